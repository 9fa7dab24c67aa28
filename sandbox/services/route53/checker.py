"""Route 53's data plane in the sandbox: health checkers that really probe, and DNS answers by health.

``HealthCheckers`` probes every health check in moto's route53 backends from one asyncio loop (the
runtime's ``aio`` loop: no thread per check) and keeps the state Route 53 would: the last observation,
consecutive results and the status that ``FailureThreshold`` of them flip. ``answer()`` gives the answer
Route 53 would give for a record name and type from those states (failover, alias chains, weighted,
multivalue, simple); TestDNSAnswer and the edge both use it.

How a check is probed (AWS semantics, as the Route 53 developer guide describes them):

- The endpoint is ``IPAddress`` (if given) else ``FullyQualifiedDomainName``, on ``Port``, resolved
  ONLY through ``rt.resolve``: a name the sandbox does not publish is a DNS failure, never a real lookup.
- HTTP / HTTPS: TCP connect within 4 s, then a 2xx/3xx status within 2 s of connecting. STR_MATCH: the
  ``SearchString`` in the first 5,120 bytes of the body (the body too must arrive within those 2 s).
  TCP: the connection alone. The Host header is the FQDN (with ``:port`` when not 80/443), else the IP.
- ``RequestInterval`` between probes; ``FailureThreshold`` consecutive results flip the status. A new
  check starts healthy, as on AWS. ``Inverted`` inverts every result; ``Disabled`` stops probing and
  counts as healthy (so Disabled + Inverted is the documented way to force "unhealthy").
- CALCULATED: healthy when at least ``HealthThreshold`` children are (0: always; more than there are
  children: never). CLOUDWATCH_METRIC: the alarm's state (OK healthy, ALARM unhealthy, INSUFFICIENT_DATA
  per ``InsufficientDataHealthStatus``), read from moto's CloudWatch backend of the alarm's region.
- Status changes, and one sample a minute per check as AWS does, go to CloudWatch ``AWS/Route53``
  ``HealthCheckStatus`` (1/0) and ``HealthCheckPercentageHealthy`` (100/0) with dimension
  ``HealthCheckId`` in moto's us-east-1 backend, so alarms and dashboards can use them.

Where the sandbox differs from AWS (said here so nobody is surprised):

- One checker, not ~16 in 8 regions: each probe is reported as one observation per checker region of the
  check (its ``Regions``, else all eight), all with the same result, time and IPAddress 127.0.0.1.
  Observations are per probe (not thresholded), like AWS's; their ``Status`` text says what was seen in
  AWS's style ("Success: HTTP Status Code 200, OK", "Failure: Connection refused ..."). The wording
  follows AWS's pattern but is not guaranteed to be character-for-character AWS's.
- The sandbox has no TLS: HTTPS checks probe plain HTTP on the published port. An HTTPS check against
  an ALB listener moto records as plain HTTP fails, as the TLS handshake would on AWS.
- ``SANDBOX_HEALTH_CHECK_SPEEDUP`` (environment, default 1 = AWS timing) or ``POST /_sandbox/route53
  {"speedup": N}`` divides every RequestInterval by N, for tests and demos only. Off by default.
- A record's A answer for an alias to an ALB is the ALB's DNS name (the sandbox gives ALBs no IP
  addresses); ``rt.resolve`` maps it to the local listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox import config, httpclient, runtime

log = logging.getLogger("sandbox.route53")

CHECKER_REGIONS = (
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
)
ENDPOINT_TYPES = frozenset({"HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP"})
CONNECT_TIMEOUT_S = 4.0
RESPONSE_TIMEOUT_S = 2.0
SEARCH_BYTES = 5120
# Route 53 answers an alias to an AWS resource (ELB, CloudFront, S3 website) with that service's TTL: 60 s.
AWS_ALIAS_TTL_S = 60
METRIC_REGION = "us-east-1"
METRIC_PERIOD_S = 60.0
MAX_ALIAS_DEPTH = 8
CHECKER_IP = config.ROUTE53_CHECKER_SOURCE  # GetHealthCheckStatus: the address the probes come from
USER_AGENT = "Amazon-Route53-Health-Check-Service (ref sandbox; report http://amzn.to/1vsZADi)"
SPEEDUP_ENV = "SANDBOX_HEALTH_CHECK_SPEEDUP"


def _now() -> datetime:
    return datetime.now(UTC)


def norm_name(name: str) -> str:
    """A DNS name as the sandbox compares them: lower case, no trailing dot, '*' for Route 53's \\052."""
    return name.lower().rstrip(".").replace("\\052", "*")


def env_speedup() -> float:
    raw = os.environ.get(SPEEDUP_ENV, "1")
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(
            f"{SPEEDUP_ENV}={raw!r} is not a number: set it to 1 (AWS timing) or a factor such as 10"
        ) from None
    if value < 1:
        raise SystemExit(f"{SPEEDUP_ENV}={raw!r} must be at least 1 (1 = AWS timing)")
    return value


# -- reading moto's state ------------------------------------------------------------------------------


def snapshot(mapping: dict[Any, Any]) -> list[Any]:
    """The values of a dict other threads may be changing (moto serves requests on many threads)."""
    for _ in range(5):
        try:
            return list(mapping.values())
        except RuntimeError:  # "dictionary changed size during iteration": try again
            continue
    return []


def route53_backends() -> list[tuple[str, Any]]:
    """(account id, backend) of every Route 53 backend moto has created (Route 53 is global)."""
    from moto.route53.models import route53_backends as backends

    found = []
    for account_id in list(backends.keys()):
        for partition in list(backends[account_id].keys()):
            found.append((account_id, backends[account_id][partition]))
    return found


def find_health_check(check_id: str) -> tuple[str, Any] | None:
    for account_id, backend in route53_backends():
        check = backend.health_checks.get(check_id)
        if check is not None:
            return account_id, check
    return None


# -- probing -------------------------------------------------------------------------------------------


@dataclass
class Probe:
    ok: bool
    text: str


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _listener_protocol(name: str, port: int) -> str | None:
    """The protocol moto records for the ALB listener name:port ("HTTP", "HTTPS"), or None if unknown."""
    from moto.elbv2.models import elbv2_backends

    region = _elb_region(name)
    if region is None:
        return None
    for account_id in list(elbv2_backends.keys()):
        backend = elbv2_backends[account_id][region]
        for lb in snapshot(backend.load_balancers):
            if norm_name(lb.dns_name) == norm_name(name):
                for listener in snapshot(lb.listeners):
                    if int(listener.port) == int(port):
                        return listener.protocol
    return None


def _elb_region(name: str) -> str | None:
    """us-east-1 from my-alb-123.us-east-1.elb.amazonaws.com (dualstack. prefix allowed), else None."""
    labels = norm_name(name).removeprefix("dualstack.").split(".")
    if len(labels) >= 5 and labels[-3:] == ["elb", "amazonaws", "com"]:
        return labels[-4]
    return None


async def probe_endpoint(rt: runtime.Runtime, check: Any) -> Probe:
    """One health checker request against the endpoint a health check names."""
    kind = check.type_
    port = int(check.port or (443 if kind.startswith("HTTPS") else 80))
    name = check.ip_address or check.fqdn or ""
    if not name:
        return Probe(False, "Failure: The health check names neither an IPAddress nor a FullyQualifiedDomainName.")
    addr = rt.resolve(name, port)
    if addr is None:
        prefix = norm_name(name) + ":"
        if any(key.startswith(prefix) for key in rt.names()):
            # The host exists (it listens on other ports): nothing accepts connections on this one.
            return Probe(
                False, f"Failure: Connection refused. The endpoint {name} did not accept a connection on port {port}."
            )
        return Probe(
            False,
            f"Failure: DNS resolution failed: {name} does not resolve (the sandbox publishes no listener for "
            f"{name}:{port}).",
        )
    try:
        conn = await httpclient.connect(addr, CONNECT_TIMEOUT_S, config.ROUTE53_CHECKER_SOURCE)
    except TimeoutError:
        return Probe(
            False,
            "Failure: Connection timed out. The endpoint or the internet connection is down, or requests are "
            "being blocked by your firewall.",
        )
    except OSError:
        return Probe(
            False, f"Failure: Connection refused. The endpoint {name} did not accept a connection on port {port}."
        )
    try:
        if kind == "TCP":
            return Probe(True, f"Success: TCP connection established to {name} on port {port}.")
        if kind.startswith("HTTPS") and check.ip_address is None and _listener_protocol(name, port) == "HTTP":
            return Probe(False, f"Failure: TLS handshake failed: the listener {name}:{port} speaks plain HTTP.")
        host = check.fqdn or check.ip_address
        if port not in (80, 443):
            host = f"{host}:{port}"
        path = check.resource_path or "/"
        if not path.startswith("/"):
            path = "/" + path
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n"
        )
        conn.writer.write(request.encode("latin-1"))
        search = check.search_string if kind.endswith("STR_MATCH") else None
        try:
            async with asyncio.timeout(RESPONSE_TIMEOUT_S):
                status_line, headers = await httpclient.read_head(conn.reader, strict=False)
                status = int(status_line.split(" ", 2)[1])
                body = (
                    await httpclient.read_body_prefix(conn.reader, headers, SEARCH_BYTES) if search is not None else b""
                )
        except TimeoutError:
            return Probe(
                False,
                f"Failure: The endpoint did not send a complete HTTP response within {RESPONSE_TIMEOUT_S:.0f} seconds "
                "of connecting.",
            )
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError, IndexError):
            return Probe(False, "Failure: The endpoint closed the connection or sent a malformed HTTP response.")
        seen = f"HTTP Status Code {status}, {_reason(status)}"
        if not 200 <= status < 400:
            return Probe(False, f"Failure: {seen}")
        if search is not None and search.encode() not in body:
            return Probe(
                False, f"Failure: {seen}. The search string {search!r} was not found in the first {SEARCH_BYTES} bytes."
            )
        return Probe(True, f"Success: {seen}")
    finally:
        conn.writer.close()
        with contextlib.suppress(Exception):
            await conn.writer.wait_closed()


# -- the checkers --------------------------------------------------------------------------------------


@dataclass
class CheckState:
    check_id: str
    account_id: str
    kind: str
    healthy: bool = True
    inverted: bool = False
    consecutive: int = 0  # results in a row that disagree with the current status
    last_text: str = ""
    last_checked: datetime | None = None
    next_due: float = 0.0
    in_flight: bool = False
    changed_at: datetime = field(default_factory=_now)
    last_metric: float = 0.0
    last_known_alarm_healthy: bool = True


class HealthCheckers:
    """Every health check's live state, driven by one scheduler coroutine on the runtime's aio loop."""

    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        self.speedup = env_speedup()
        self._lock = threading.Lock()
        self._states: dict[str, CheckState] = {}
        self._task: asyncio.Future[Any] | None = None
        self._wake: asyncio.Event | None = None
        self._probes: set[asyncio.Future[None]] = set()  # running probes (the loop keeps weak references only)

    # -- lifecycle

    def start(self) -> None:
        if self._task is None:
            self._task = self.rt.run_coro(self._run())

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()  # a concurrent.futures.Future: cancelling it cancels the scheduler on its loop
        for probe in list(self._probes):
            self.rt.aio.call_soon_threadsafe(probe.cancel)

    def reset(self) -> None:
        with self._lock:
            self._states.clear()
        self.speedup = env_speedup()

    def set_speedup(self, factor: float) -> None:
        if factor < 1:
            raise runtime.ControlError(400, f"speedup {factor} must be at least 1 (1 = AWS timing)")
        self.speedup = float(factor)
        now = time.monotonic()
        with self._lock:
            for state in self._states.values():
                state.next_due = min(state.next_due, now)
        self.poke()

    def poke(self) -> None:
        """Look at moto's health checks now (after a create/update), not at the next tick."""
        if self._wake is not None:
            self.rt.aio.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        while not self.rt.stopping.is_set():
            try:
                pause = self._tick()
            except Exception:
                log.exception("health checkers: tick failed (will retry)")
                pause = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()

    # -- one tick: sync with moto, start due probes, evaluate calculated and alarm checks

    def _tick(self) -> float:
        now = time.monotonic()
        checks = {}
        for account_id, backend in route53_backends():
            for check in snapshot(backend.health_checks):
                checks[check.id] = (account_id, check)
        with self._lock:
            for gone in set(self._states) - set(checks):
                del self._states[gone]
            for check_id, (account_id, check) in checks.items():
                state = self._states.get(check_id)
                if state is None:
                    # A little jitter so that checks created together do not probe in lockstep.
                    state = CheckState(check_id, account_id, check.type_, inverted=bool(check.inverted))
                    state.next_due = now + random.uniform(0, 0.2)  # noqa: S311 - scheduling jitter
                    self._states[check_id] = state
                if bool(check.inverted) != state.inverted:
                    # Inverting applies at once (a manual failover lever); later probes count inverted.
                    state.inverted = bool(check.inverted)
                    self._set_status(state, not state.healthy, check)
                    state.consecutive = 0
        next_due = now + 0.5
        for check_id, (_account_id, check) in checks.items():
            with self._lock:
                state = self._states.get(check_id)
            if state is None:
                continue
            if check.disabled:
                self._disabled(state, check)
            elif check.type_ in ENDPOINT_TYPES:
                if not state.in_flight and state.next_due <= now:
                    state.in_flight = True
                    task = asyncio.ensure_future(self._probe(state, check))
                    self._probes.add(task)
                    task.add_done_callback(self._probes.discard)
                elif not state.in_flight:
                    next_due = min(next_due, state.next_due)
            elif check.type_ == "CALCULATED":
                self._calculated(state, check)
            elif check.type_ == "CLOUDWATCH_METRIC":
                self._alarm(state, check)
            self._metric_tick(state, now)
        return max(0.02, next_due - now)

    def _interval(self, check: Any) -> float:
        return float(check.request_interval or 30) / self.speedup

    async def _probe(self, state: CheckState, check: Any) -> None:
        try:
            result = await probe_endpoint(self.rt, check)
        except Exception as exc:  # a bug here must not stop the checker
            log.exception("health check %s: probe failed", state.check_id)
            result = Probe(False, f"Failure: the sandbox checker failed: {exc}")
        finally:
            state.in_flight = False
        # RequestInterval counts from the response to the next request, as AWS documents.
        state.next_due = time.monotonic() + self._interval(check)
        self._record(state, check, result)
        self.poke()

    def _record(self, state: CheckState, check: Any, result: Probe) -> None:
        ok, text = result.ok, result.text
        if state.inverted:
            ok = not ok
            verdict = "Success" if ok else "Failure"
            text = f"{verdict}: Inverted health check; the endpoint reported {result.text}"
        threshold = int(check.failure_threshold or 3)
        with self._lock:
            state.last_text, state.last_checked = text, _now()
            if ok == state.healthy:
                state.consecutive = 0
                return
            state.consecutive += 1
            if state.consecutive >= threshold:
                state.consecutive = 0
                self._set_status(state, ok, check)

    def _disabled(self, state: CheckState, check: Any) -> None:
        healthy = not state.inverted
        text = "Success" if healthy else "Failure"
        text += ": Health checking is disabled; Route 53 considers the health check healthy"
        text += " (inverted: unhealthy)." if state.inverted else "."
        with self._lock:
            state.last_text, state.last_checked = text, _now()
            state.consecutive = 0
            if state.healthy != healthy:
                self._set_status(state, healthy, check)

    def _calculated(self, state: CheckState, check: Any) -> None:
        children = list(check.children or [])
        threshold = int(check.health_threshold or 0)
        healthy_children = sum(1 for child in children if self.is_healthy(child, missing=False))
        healthy = healthy_children >= threshold
        if state.inverted:
            healthy = not healthy
        text = (
            f"{'Success' if healthy else 'Failure'}: {healthy_children} of {len(children)} child health checks "
            f"healthy (HealthThreshold {threshold}){', inverted' if state.inverted else ''}."
        )
        with self._lock:
            state.last_text, state.last_checked = text, _now()
            if state.healthy != healthy:
                self._set_status(state, healthy, check)

    def _alarm(self, state: CheckState, check: Any) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        ident = getattr(check, "alarm_identifier", None) or {}
        region, name = ident.get("Region"), ident.get("Name")
        alarm = None
        if region and name:
            alarm = cloudwatch_backends[state.account_id][region].alarms.get(name)
        alarm_state = getattr(alarm, "state_value", "INSUFFICIENT_DATA") if alarm else "INSUFFICIENT_DATA"
        if alarm_state == "OK":
            healthy = state.last_known_alarm_healthy = True
        elif alarm_state == "ALARM":
            healthy = state.last_known_alarm_healthy = False
        else:
            setting = getattr(check, "insufficient_data_health_status", None) or "LastKnownStatus"
            healthy = {"Healthy": True, "Unhealthy": False}.get(setting, state.last_known_alarm_healthy)
        if state.inverted:
            healthy = not healthy
        text = (
            f"{'Success' if healthy else 'Failure'}: The CloudWatch alarm {name} ({region}) is in state {alarm_state}"
        )
        text += ", inverted." if state.inverted else "."
        if alarm is None:
            text = text[:-1] + " (the alarm does not exist)."
        with self._lock:
            state.last_text, state.last_checked = text, _now()
            if state.healthy != healthy:
                self._set_status(state, healthy, check)

    def _set_status(self, state: CheckState, healthy: bool, check: Any) -> None:
        """Flip the status (callers hold the lock) and tell CloudWatch at once."""
        state.healthy = healthy
        state.changed_at = _now()
        log.info(
            "health check %s (%s %s) is now %s",
            state.check_id,
            check.type_,
            check.fqdn or check.ip_address or "",
            "healthy" if healthy else "unhealthy",
        )
        state.last_metric = 0.0  # publish on the next tick

    def _metric_tick(self, state: CheckState, now: float) -> None:
        if now - state.last_metric < METRIC_PERIOD_S:
            return
        state.last_metric = now
        from sandbox.services.cloudwatch import metrics

        value = 1.0 if state.healthy else 0.0
        dims = [{"Name": "HealthCheckId", "Value": state.check_id}]
        try:
            metrics.put_many(  # nothing while us-east-1 is dark: its CloudWatch takes no data
                state.account_id,
                METRIC_REGION,
                "AWS/Route53",
                [
                    {"MetricName": "HealthCheckStatus", "Value": value, "Dimensions": dims, "Unit": "None"},
                    {
                        "MetricName": "HealthCheckPercentageHealthy",
                        "Value": value * 100,
                        "Dimensions": dims,
                        "Unit": "Percent",
                    },
                ],
            )
        except Exception:
            log.exception("health check %s: could not publish its CloudWatch metric", state.check_id)

    # -- what others read

    def is_healthy(self, check_id: str, missing: bool = True) -> bool:
        """The status Route 53 uses for routing; ``missing`` for an id the sandbox does not know."""
        with self._lock:
            state = self._states.get(check_id)
            if state is not None:
                return state.healthy
        # Created a moment ago and not yet seen by the scheduler: new checks start healthy.
        return True if find_health_check(check_id) is not None else missing

    def observations(self, check: Any) -> list[dict[str, Any]]:
        """GetHealthCheckStatus's HealthCheckObservations: empty until the first probe."""
        with self._lock:
            state = self._states.get(check.id)
            if state is None or state.last_checked is None:
                return []
            text, checked = state.last_text, state.last_checked
        regions = list(check.regions or CHECKER_REGIONS)
        return [
            {"Region": region, "IPAddress": CHECKER_IP, "StatusReport": {"Status": text, "CheckedTime": checked}}
            for region in regions
        ]

    def describe(self) -> list[dict[str, Any]]:
        checks = {c.id: c for _a, b in route53_backends() for c in snapshot(b.health_checks)}
        out = []
        with self._lock:
            states = list(self._states.values())
        for state in states:
            check = checks.get(state.check_id)
            if check is None:
                continue
            entry: dict[str, Any] = {
                "id": state.check_id,
                "type": check.type_,
                "healthy": state.healthy,
                "since": state.changed_at.isoformat(),
                "last_status": state.last_text,
                "last_checked": state.last_checked.isoformat() if state.last_checked else None,
                "inverted": bool(check.inverted),
                "disabled": bool(check.disabled),
            }
            if check.type_ in ENDPOINT_TYPES:
                entry.update(
                    endpoint=f"{check.ip_address or check.fqdn}:{check.port}{check.resource_path or ''}",
                    request_interval=check.request_interval,
                    effective_interval_s=self._interval(check),
                    failure_threshold=check.failure_threshold,
                    results_against_status=state.consecutive,
                )
            elif check.type_ == "CALCULATED":
                entry.update(children=list(check.children or []), health_threshold=check.health_threshold)
            out.append(entry)
        return out


# -- answers -------------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What Route 53 answers for a name and type."""

    values: list[str]
    ttl: int
    rcode: str = "NOERROR"
    # How the answer was reached: "origin.example.com A PRIMARY us-east-1 -> my-alb-...elb.amazonaws.com".
    chain: list[str] = field(default_factory=list)
    nameserver: str = "ns-2048.awsdns-64.com"


class Resolver:
    """Route 53's answers from moto's zones and the checkers' states."""

    def __init__(self, checkers: HealthCheckers) -> None:
        self.checkers = checkers

    def answer(self, name: str, rtype: str = "A", zone_id: str | None = None) -> Answer:
        zone = self.zone_by_id(zone_id) if zone_id else self.zone_for(name)
        if zone is None:
            return Answer([], 0, "NXDOMAIN")
        return self._answer_in(zone, norm_name(name), rtype.upper(), 0)

    # -- zones and records

    @staticmethod
    def _zones() -> list[Any]:
        return [z for _a, b in route53_backends() for z in snapshot(b.zones)]

    def zone_by_id(self, zone_id: str) -> Any | None:
        wanted = zone_id.split("/")[-1]
        return next((z for z in self._zones() if z.resource_id == wanted), None)

    def zone_for(self, name: str) -> Any | None:
        """The public zone with the longest name that the name falls in."""
        fqdn = norm_name(name)
        best = None
        for zone in self._zones():
            zone_name = norm_name(zone.name)
            if zone.private_zone or not (fqdn == zone_name or fqdn.endswith("." + zone_name)):
                continue
            if best is None or len(zone_name) > len(norm_name(best.name)):
                best = zone
        return best

    @staticmethod
    def _nameserver(zone: Any) -> str:
        servers = getattr(getattr(zone, "delegation_set", None), "name_servers", None) or []
        return servers[0] if servers else "ns-2048.awsdns-64.com"

    @staticmethod
    def _records(zone: Any, fqdn: str) -> list[Any]:
        records = [r for r in list(zone.rrsets) if norm_name(r.name) == fqdn]
        if records:
            return records
        # Wildcards: *.example.com answers for a.example.com when nothing more specific exists.
        labels = fqdn.split(".")
        for i in range(1, len(labels)):
            wildcard = "*." + ".".join(labels[i:])
            records = [r for r in list(zone.rrsets) if norm_name(r.name) == wildcard]
            if records:
                return records
        return []

    def _answer_in(self, zone: Any, fqdn: str, rtype: str, depth: int) -> Answer:
        nameserver = self._nameserver(zone)
        records = self._records(zone, fqdn)
        if not records:
            return Answer([], 0, "NXDOMAIN", nameserver=nameserver)
        typed = [r for r in records if r.type == rtype]
        if not typed:
            typed = [r for r in records if r.type == "CNAME"]
        if not typed:
            return Answer([], 0, "NOERROR", nameserver=nameserver)
        values: list[str] = []
        ttls: list[int] = []
        chain: list[str] = []
        for record in self._choose(typed, depth):
            label = f"{fqdn} {record.type}" + (f" {record.failover} {record.set_identifier}" if record.failover else "")
            if record.alias_target:
                sub = self._alias(zone, record, depth)
                values += sub.values
                ttls.append(sub.ttl)
                chain += [f"{label} -> {_alias_name(record)}", *sub.chain]
            else:
                own = [v["Value"] if isinstance(v, dict) else str(v) for v in record.records]
                values += own
                ttls.append(int(record.ttl or 0))
                chain.append(f"{label} -> {', '.join(own)}")
        return Answer(values, min(ttls) if ttls else 0, "NOERROR", chain, nameserver)

    def _alias(self, zone: Any, record: Any, depth: int) -> Answer:
        target = _alias_name(record)
        target_zone = self.zone_by_id(record.alias_target.get("HostedZoneId") or "") or None
        if target_zone is not None and depth < MAX_ALIAS_DEPTH:
            return self._answer_in(target_zone, target, record.type, depth + 1)
        if target_zone is not None:
            return Answer([], 0, "SERVFAIL", [f"alias chain longer than {MAX_ALIAS_DEPTH}"])
        # An AWS resource (ALB, CloudFront, S3 website): its name stands for its addresses.
        return Answer([target], AWS_ALIAS_TTL_S, "NOERROR", [])

    # -- routing policies and health

    def _choose(self, records: list[Any], depth: int) -> list[Any]:
        failover = [r for r in records if r.failover]
        if failover:
            primary = [r for r in failover if r.failover == "PRIMARY"]
            secondary = [r for r in failover if r.failover == "SECONDARY"]
            for group in (primary, secondary):
                if group and self.record_healthy(group[0], depth):
                    return group[:1]
            # Both unhealthy: Route 53 answers the primary (as if all were healthy).
            return (primary or secondary)[:1]
        healthy = [r for r in records if self.record_healthy(r, depth)] or records
        weighted = [r for r in healthy if r.weight is not None]
        if weighted:
            weights = [int(r.weight) for r in weighted]
            if sum(weights) == 0:
                weights = [1] * len(weighted)  # all zero: equal chances, as AWS does
            return random.choices(weighted, weights)  # noqa: S311 - weighted routing, not security
        if any(r.multi_value_answer for r in healthy):
            return healthy[:8]
        regional = [r for r in healthy if r.region]
        if regional:
            # Latency routing, asked from us-east-1 (TestDNSAnswer's default resolver).
            return [next((r for r in regional if r.region == "us-east-1"), regional[0])]
        return healthy[:1]

    def record_healthy(self, record: Any, depth: int = 0) -> bool:
        if record.health_check_id and not self.checkers.is_healthy(record.health_check_id):
            return False
        alias = record.alias_target
        if alias and str(alias.get("EvaluateTargetHealth")).lower() == "true":
            return self.target_healthy(record, depth)
        return True

    def target_healthy(self, record: Any, depth: int) -> bool:
        target = _alias_name(record)
        target_zone = self.zone_by_id(record.alias_target.get("HostedZoneId") or "")
        if target_zone is not None:
            if depth >= MAX_ALIAS_DEPTH:
                return False
            targets = [r for r in self._records(target_zone, target) if r.type == record.type]
            return any(self.record_healthy(r, depth + 1) for r in targets)
        if _elb_region(target) is not None:
            return alb_healthy(target)
        return True  # CloudFront, S3 websites: Route 53 does not evaluate their health


def _alias_name(record: Any) -> str:
    return norm_name(str(record.alias_target.get("DNSName") or "")).removeprefix("dualstack.")


def alb_healthy(dns_name: str) -> bool:
    """Route 53's view of an ALB alias with EvaluateTargetHealth: every target group that has targets
    has at least one healthy target (and there is at least one). Unknown ALBs are unhealthy."""
    from moto.elbv2.models import elbv2_backends

    region = _elb_region(dns_name)
    if region is None:
        return False
    for account_id in list(elbv2_backends.keys()):
        backend = elbv2_backends[account_id][region]
        lb = next(
            (lb for lb in snapshot(backend.load_balancers) if norm_name(lb.dns_name) == norm_name(dns_name)), None
        )
        if lb is None:
            continue
        groups = [tg for tg in snapshot(backend.target_groups) if lb.arn in tg.load_balancer_arns and tg.targets]
        if not groups:
            return False
        for group in groups:
            try:
                health = backend.describe_target_health(group.arn, [])
            except Exception:
                return False
            if not any(getattr(h, "status", "") == "healthy" for h in health):
                return False
        return True
    return False


# -- the process-wide instances ------------------------------------------------------------------------

_CHECKERS: HealthCheckers | None = None
_RESOLVER: Resolver | None = None
_INIT_LOCK = threading.Lock()


def checkers(rt: runtime.Runtime | None = None) -> HealthCheckers:
    """The process's checkers, made on first use with ``rt`` (or the server's runtime, ``runtime.get()``)."""
    global _CHECKERS, _RESOLVER
    with _INIT_LOCK:
        if _CHECKERS is None:
            _CHECKERS = HealthCheckers(rt if rt is not None else runtime.get())
            _RESOLVER = Resolver(_CHECKERS)
        return _CHECKERS


def resolver(rt: runtime.Runtime | None = None) -> Resolver:
    checkers(rt)
    assert _RESOLVER is not None
    return _RESOLVER


def answer(name: str, rtype: str = "A") -> tuple[list[str], int]:
    """(values, TTL) Route 53 answers for name/rtype now; ([], 0) when the sandbox has no such record."""
    result = resolver().answer(name, rtype)
    return result.values, result.ttl

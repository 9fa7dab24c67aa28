"""Event source: the primary region's health as the secondary region sees it, every ``interval`` seconds.

It runs in the secondary region and depends on nothing in the primary region to judge it (Route 53's
control plane lives in us-east-1, the region that may be gone: its verdict is read as corroboration
only). Each event is ``{"region_signals": {...}}`` with:

- ``signals.primary_http``: our own probe of the primary ALB's public health endpoint (``health_path``);
- ``signals.primary_api``: a cheap regional call in the primary region (DescribeAvailabilityZones) with
  a short timeout; an HTTP 5xx, a timeout or a refused connection is unhealthy, any 4xx is an answer;
- ``signals.replication``: the secondary region's own view of the global database: the newest minute of
  ``AuroraGlobalDBReplicationLag`` of the secondary cluster (CloudWatch in the secondary region); its
  best sample over ``replication_unhealthy_ms`` (behind all minute long), or no datapoint after there
  were some (replication stopped moving), is unhealthy; ``lag_ms`` (the minute's worst sample) is what
  the decision keeps as "the lag before the outage";
- ``signals.route53``: Route 53's health checkers' verdict on the primary, when it can be read;
- ``secondary.api`` / ``secondary.http``: the secondary region's APIs and its ALB's health endpoint;
- ``writer_region``: the global database's writer, read in the secondary region.

``healthy`` is true, false or null (unknown: never counted either way). ``connect_to`` maps
``host:port`` to ``address:port`` for the probes, as curl's --connect-to does, where a name does not
resolve from the controller's network. ``record_file`` appends every event as a JSON line (the
decision's tests replay such recordings).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import http.client
import json
import ssl
import time
import urllib.parse
from typing import Any

REQUIRED = ("primary_region", "secondary_region", "global_cluster_identifier", "primary_alb_name", "secondary_alb_name")


class SignalsError(ValueError):
    """A bad source argument; the message names it and the fix."""


class Watcher:
    """Collects one snapshot of every signal; AWS clients and looked-up names are kept between polls."""

    def __init__(self, args: dict[str, Any]) -> None:
        missing = [name for name in REQUIRED if not args.get(name)]
        if missing:
            raise SignalsError(
                f"region_signals: missing argument(s) {missing}: set them under the source in the rulebook"
            )
        self.args = args
        self.primary = str(args["primary_region"])
        self.secondary = str(args["secondary_region"])
        self.timeout = float(args.get("timeout", 2))
        self.scheme = str(args.get("scheme", "https"))
        if self.scheme not in ("http", "https"):
            raise SignalsError(f"region_signals: scheme={self.scheme!r} must be http or https")
        # The sandbox's HTTPS listeners speak plain HTTP on their port (docs/sandbox.md): tls false probes an
        # https URL's port without TLS there. On AWS it follows the scheme.
        self.tls = str(args.get("tls", self.scheme == "https")).lower() in ("true", "1", "yes")
        self.health_path = str(args.get("health_path", "/health"))
        self.unhealthy_ms = float(args.get("replication_unhealthy_ms", 5000))
        self.connect_to = {str(k).lower(): str(v) for k, v in (args.get("connect_to") or {}).items()}
        self._clients: dict[tuple[str, str], Any] = {}
        self._alb_dns: dict[str, str] = {}
        self._health_check_id: str | None = args.get("route53_health_check_id") or None
        self._lag_seen = False
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=6, thread_name_prefix="region-signals")

    def client(self, service: str, region: str) -> Any:
        import boto3
        from botocore.config import Config

        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service,
                region_name=region,
                config=Config(
                    connect_timeout=self.timeout,
                    read_timeout=self.timeout,
                    retries={"max_attempts": 1, "mode": "standard"},
                ),
            )
        return self._clients[key]

    # -- one poll ---------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        at = time.time()
        jobs = {
            "primary_http": self._pool.submit(self.probe_alb, self.primary, "primary_alb_name"),
            "primary_api": self._pool.submit(self.probe_primary_api),
            "secondary_http": self._pool.submit(self.probe_alb, self.secondary, "secondary_alb_name"),
            "database": self._pool.submit(self.probe_database),
            "route53": self._pool.submit(self.probe_route53),
        }
        results = {name: _result(job) for name, job in jobs.items()}
        database = results["database"]
        return {
            "at": round(at, 3),
            "primary_region": self.primary,
            "secondary_region": self.secondary,
            "writer_region": database.get("writer_region"),
            "signals": {
                "primary_http": results["primary_http"],
                "primary_api": results["primary_api"],
                "replication": database["replication"],
                "route53": results["route53"],
            },
            "secondary": {"api": database["api"], "http": results["secondary_http"]},
            "took_s": round(time.time() - at, 3),
            # The decision's settings travel with the events: ansible-rulebook renders source arguments only.
            "decision_settings": self.args.get("decision_settings") or {},
        }

    def probe_alb(self, region: str, name_arg: str) -> dict[str, Any]:
        dns = self._alb_dns.get(region)
        if dns is None:
            try:
                found = self.client("elbv2", region).describe_load_balancers(Names=[str(self.args[name_arg])])
                dns = self._alb_dns[region] = found["LoadBalancers"][0]["DNSName"]
            except Exception as exc:  # the name is learnt once; until then the probe cannot run
                return {"healthy": None, "detail": f"ALB {self.args[name_arg]} not looked up yet: {_brief(exc)}"}
        return http_probe(f"{self.scheme}://{dns}{self.health_path}", self.timeout, self.connect_to, tls=self.tls)

    def probe_primary_api(self) -> dict[str, Any]:
        started = time.monotonic()
        try:
            self.client("ec2", self.primary).describe_availability_zones()
        except Exception as exc:
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status is not None and status < 500:
                return {"healthy": True, "detail": f"answers (HTTP {status})"}
            if status is None and not _network_error(exc):
                # No credentials, a bad parameter: the controller's own fault says nothing about the region.
                return {"healthy": None, "detail": f"{self.primary} API not asked: {_brief(exc)}"}
            return {"healthy": False, "detail": f"{self.primary} API: {_brief(exc)}"}
        return {"healthy": True, "detail": f"answers in {(time.monotonic() - started) * 1000:.0f} ms"}

    def probe_database(self) -> dict[str, Any]:
        """The global cluster read in the secondary region (its APIs' health too), then its replication lag."""
        gid = str(self.args["global_cluster_identifier"])
        try:
            found = self.client("rds", self.secondary).describe_global_clusters(GlobalClusterIdentifier=gid)
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "GlobalClusterNotFoundFault":
                return {
                    "api": {"healthy": True, "detail": f"{self.secondary} answers"},
                    "replication": {"healthy": None, "detail": f"no global cluster {gid} (not deployed)"},
                }
            return {
                "api": {"healthy": False, "detail": f"{self.secondary} RDS API: {_brief(exc)}"},
                "replication": {"healthy": None, "detail": "the secondary region's APIs do not answer"},
            }
        api = {"healthy": True, "detail": f"{self.secondary} answers"}
        members = (found.get("GlobalClusters") or [{}])[0].get("GlobalClusterMembers", [])
        writer = next((m["DBClusterArn"] for m in members if m.get("IsWriter")), None)
        ours = next((m for m in members if m["DBClusterArn"].split(":")[3] == self.secondary), None)
        result: dict[str, Any] = {"api": api, "writer_region": writer.split(":")[3] if writer else None}
        if ours is None:
            result["replication"] = {"healthy": None, "detail": f"no member of {gid} in {self.secondary}"}
            return result
        if ours.get("IsWriter"):
            result["replication"] = {"healthy": None, "detail": f"{self.secondary} is the writer"}
            return result
        result["replication"] = self._replication(ours["DBClusterArn"].split(":")[-1])
        return result

    def _replication(self, cluster_id: str) -> dict[str, Any]:
        now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - the controller image may run an older Python
        try:
            points = self.client("cloudwatch", self.secondary).get_metric_statistics(
                Namespace="AWS/RDS",
                MetricName="AuroraGlobalDBReplicationLag",
                Dimensions=[{"Name": "DBClusterIdentifier", "Value": cluster_id}],
                StartTime=now - datetime.timedelta(minutes=3),
                EndTime=now,
                Period=60,
                Statistics=["Minimum", "Maximum"],
            )["Datapoints"]
        except Exception as exc:
            return {"healthy": None, "detail": f"CloudWatch in {self.secondary}: {_brief(exc)}"}
        if not points:
            if self._lag_seen:
                return {"healthy": False, "detail": f"{cluster_id}: no lag datapoint in 3 minutes: replication stopped"}
            return {"healthy": None, "detail": f"{cluster_id}: no lag datapoint yet"}
        self._lag_seen = True
        newest = max(points, key=lambda p: p["Timestamp"])
        # Unhealthy when even the best sample of the newest minute is over the bound (replication behind the whole
        # time, or stopped); the worst sample is the lag the decision keeps as "before the outage".
        lag, best = float(newest["Maximum"]), float(newest["Minimum"])
        detail = (
            f"{cluster_id} AuroraGlobalDBReplicationLag {best:.0f}-{lag:.0f} ms in the newest minute "
            f"(unhealthy over {self.unhealthy_ms:.0f})"
        )
        return {"healthy": best <= self.unhealthy_ms, "lag_ms": lag, "detail": detail}

    def probe_route53(self) -> dict[str, Any]:
        """Corroboration only: the checkers' verdict on the primary's health check, when Route 53 answers."""
        try:
            if self._health_check_id is None:
                dns = self._alb_dns.get(self.primary)
                if dns is None:
                    return {"healthy": None, "detail": "the primary ALB's name is not known yet"}
                checks = self.client("route53", "us-east-1").list_health_checks()["HealthChecks"]
                match = [c["Id"] for c in checks if c["HealthCheckConfig"].get("FullyQualifiedDomainName") == dns]
                if not match:
                    return {"healthy": None, "detail": f"no Route 53 health check probes {dns}"}
                self._health_check_id = match[0]
            observations = self.client("route53", "us-east-1").get_health_check_status(
                HealthCheckId=self._health_check_id
            )["HealthCheckObservations"]
        except Exception as exc:
            if "NoSuchHealthCheck" in str(exc) and not self.args.get("route53_health_check_id"):
                # The check it found was replaced (a deploy turned HTTPS on): look it up again at the next poll.
                self._health_check_id = None
            return {"healthy": None, "detail": f"Route 53 not readable: {_brief(exc)}"}
        ok = sum(1 for o in observations if o["StatusReport"]["Status"].startswith("Success"))
        detail = f"{ok} of {len(observations)} checkers see {self._health_check_id} healthy"
        return {"healthy": ok * 2 > len(observations) if observations else None, "detail": detail}


def http_probe(url: str, timeout: float, connect_to: dict[str, str], tls: bool = True) -> dict[str, Any]:
    """GET url; healthy on a 2xx. ``connect_to`` redirects the TCP connection, keeping the Host header; with tls
    false an https URL is spoken in plain HTTP on its port (the sandbox's HTTPS listeners)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host, _, mapped_port = connect_to.get(f"{parts.hostname}:{port}".lower(), f"{parts.hostname}:{port}").rpartition(
        ":"
    )
    started = time.monotonic()
    if parts.scheme == "https" and tls:
        # Like Route 53's HTTPS checks: the ALB's own name is not on the app's certificate.
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, int(mapped_port), timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(host, int(mapped_port), timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Host": parts.netloc, "User-Agent": "hawa-failover-controller"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return {"healthy": False, "detail": f"{url}: no response: {_brief(exc)}"}
    finally:
        conn.close()
    detail = f"{url}: HTTP {status} in {(time.monotonic() - started) * 1000:.0f} ms"
    return {"healthy": 200 <= status < 300, "detail": detail}


def _result(job: concurrent.futures.Future) -> dict[str, Any]:
    try:
        return job.result()
    except Exception as exc:  # a probe's own bug must not stop the watch: it reads as "unknown"
        return {"healthy": None, "detail": f"probe error: {_brief(exc)}"}


def _network_error(exc: BaseException) -> bool:
    """No answer from the endpoint: refused, reset, timed out (botocore's HTTP-level errors)."""
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, HTTPClientError

    return isinstance(exc, EndpointConnectionError | ConnectionClosedError | HTTPClientError | OSError)


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """ansible-rulebook's entry point: one snapshot every ``interval`` seconds, for as long as it runs."""
    watcher = Watcher(args)
    interval = float(args.get("interval", 10))
    record = args.get("record_file")
    try:
        while True:
            started = time.monotonic()
            snapshot = await asyncio.get_running_loop().run_in_executor(None, watcher.snapshot)
            if record:
                with open(record, "a") as handle:
                    handle.write(json.dumps({"region_signals": snapshot}) + "\n")
            await queue.put({"region_signals": snapshot})
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    except asyncio.CancelledError:
        watcher._pool.shutdown(wait=False, cancel_futures=True)
        raise

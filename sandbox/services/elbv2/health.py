"""Target health for the ALB data plane: the target groups' health-check settings, each target's state
and reason code as DescribeTargetHealth reports them, and the probes (on the runtime's asyncio loop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("sandbox.alb")
HOST = "127.0.0.1"


@dataclass(frozen=True)
class HealthCheck:
    enabled: bool = True
    protocol: str = "HTTP"
    port: str = "traffic-port"
    path: str = "/"
    interval: float = 30.0
    timeout: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"

    def matches(self, code: int) -> bool:
        for part in self.matcher.split(","):
            low, _, high = part.strip().partition("-")
            with contextlib.suppress(ValueError):
                if int(low) <= code <= int(high or low):
                    return True
        return False


@dataclass(frozen=True)
class TargetGroupSpec:
    arn: str
    name: str
    scope: tuple[str, str]
    health: HealthCheck
    deregistration_delay: float
    targets: tuple[tuple[str, int], ...]  # (Id, Port) registered
    attached: bool  # some listener of a load balancer forwards to it

    @property
    def region(self) -> str:
        return self.scope[1]


# -- target health --------------------------------------------------------------------------------------

DESCRIPTIONS = {
    "Elb.RegistrationInProgress": "Target registration is in progress",
    "Elb.InitialHealthChecking": "Initial health checks in progress",
    "Target.Timeout": "Request timed out",
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.NotInUse": "Target group is not configured to receive traffic from the load balancer",
    "Target.NotRegistered": "Target is not registered to the target group",
    "Target.DeregistrationInProgress": "Target deregistration is in progress",
    "Target.HealthCheckDisabled": "Health checks are disabled for the target group",
}


class _Target:
    """One registered target. Only the loop thread writes; ``health`` is replaced as one tuple so that
    readers on other threads (DescribeTargetHealth, Route 53's alias evaluation) never see a state
    with another state's reason."""

    __slots__ = ("drain_until", "failures", "health", "id", "next_probe", "port", "probing", "successes")

    def __init__(self, target_id: str, port: int, now: float) -> None:
        self.id = target_id
        self.port = port
        reason = "Elb.RegistrationInProgress"
        # (state, reason, description, since: epoch seconds of the last state change)
        self.health: tuple[str, str | None, str | None, float] = ("initial", reason, DESCRIPTIONS[reason], time.time())
        self.successes = 0
        self.failures = 0
        self.next_probe = now
        self.probing = False
        self.drain_until = 0.0

    @property
    def state(self) -> str:
        return self.health[0]

    def set(self, state: str, reason: str | None = None, description: str | None = None) -> bool:
        before = self.health
        changed = state != before[0]
        self.health = (
            state,
            reason,
            description if description is not None else DESCRIPTIONS.get(reason or ""),
            time.time() if changed else before[3],
        )
        return changed


class _Group:
    def __init__(self, spec: TargetGroupSpec) -> None:
        self.spec = spec
        self.targets: dict[str, _Target] = {}
        self.routable: tuple[tuple[str, int], ...] = ()
        self.rr = 0

    def refresh(self) -> None:
        """Recompute where requests go: healthy targets, else (fail open) the unhealthy ones."""
        live = [t for t in self.targets.values() if t.state in ("healthy", "unavailable")]
        if not live:
            live = [t for t in self.targets.values() if t.state == "unhealthy"]
        self.routable = tuple((t.id, t.port) for t in live)

    def pick(self) -> tuple[str, int] | None:
        routable = self.routable
        if not routable:
            return None
        self.rr += 1
        return routable[self.rr % len(routable)]


class TargetHealth:
    """The health probing of a Balancer (a Balancer part): one loop for every target, DescribeTargetHealth."""

    async def _health_loop(self) -> None:
        """One loop for every target: sleeps until the next probe or draining deadline is due."""
        while True:
            now = self.loop.time()
            next_wake = now + 5.0
            for group in list(self.groups.values()):
                dark = group.spec.region in self.dark
                for target in list(group.targets.values()):
                    if target.state == "draining":
                        if now >= target.drain_until:
                            log.info("target group %s: %s:%d drained", group.spec.name, target.id, target.port)
                            self._gone(group, target)
                        else:
                            next_wake = min(next_wake, target.drain_until)
                        continue
                    if dark or target.state in ("unused", "unavailable") or target.probing:
                        continue
                    if now >= target.next_probe:
                        target.probing = True
                        target.next_probe = now + group.spec.health.interval
                        task = self.loop.create_task(self._probe(group, target))
                        self._probes.add(task)
                        task.add_done_callback(self._probes.discard)
                    next_wake = min(next_wake, target.next_probe)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.01, next_wake - self.loop.time()))

    async def _probe(self, group: _Group, target: _Target) -> None:
        health = group.spec.health
        port = target.port if health.port == "traffic-port" else int(health.port)
        try:
            failure = await self._check(health, target.id, port)
        except Exception as exc:  # a bug here must not stop health checking
            log.exception("health check of %s:%d failed unexpectedly", target.id, port)
            failure = ("Elb.InternalError", f"Health checks failed due to an internal error: {exc}")
        finally:
            target.probing = False
        if group.targets.get(target.id) is not target or target.state in ("draining", "unused", "unavailable"):
            return
        if group.spec.region in self.dark:
            return
        self._record(group, target, failure)

    async def _check(self, health: HealthCheck, target_id: str, port: int) -> tuple[str, str] | None:
        """One health check: None when it passes, else (reason, description)."""
        addr = self.resolve(target_id, port)
        if addr is None:
            # Nothing answers on an address the sandbox does not know: the check times out.
            await asyncio.sleep(health.timeout)
            return "Target.Timeout", DESCRIPTIONS["Target.Timeout"]
        writer = None
        try:
            async with asyncio.timeout(health.timeout):
                reader, writer = await asyncio.open_connection(addr[0], addr[1])
                writer.write(
                    f"GET {health.path or '/'} HTTP/1.1\r\nHost: {target_id}:{port}\r\nUser-Agent: ELB-HealthChecker/2.0\r\n"
                    "Accept: */*\r\nConnection: close\r\n\r\n".encode()
                )
                line = await reader.readline()
        except TimeoutError:
            return "Target.Timeout", DESCRIPTIONS["Target.Timeout"]
        except (OSError, ValueError):  # refused, reset, or a status line past the reader's limit
            return "Target.FailedHealthChecks", DESCRIPTIONS["Target.FailedHealthChecks"]
        finally:
            if writer is not None:
                writer.transport.abort()
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            return "Target.FailedHealthChecks", DESCRIPTIONS["Target.FailedHealthChecks"]
        code = int(parts[1])
        if health.matches(code):
            return None
        return "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{code}]"

    def _record(self, group: _Group, target: _Target, failure: tuple[str, str] | None) -> None:
        health = group.spec.health
        before = target.state
        if failure is None:
            target.failures = 0
            target.successes += 1
            if target.state == "initial" or (
                target.state == "unhealthy" and target.successes >= health.healthy_threshold
            ):
                target.set("healthy")
        else:
            target.successes = 0
            target.failures += 1
            reason, description = failure
            if target.state == "unhealthy" or target.failures >= health.unhealthy_threshold:
                target.set("unhealthy", reason, description)
            elif target.state == "initial":
                target.set("initial", "Elb.InitialHealthChecking")
        if target.state != before:
            log.info(
                "target group %s: %s:%d %s -> %s (%s)",
                group.spec.name,
                target.id,
                target.port,
                before,
                target.state,
                target.health[1] or "passed",
            )
            group.refresh()

    # -- reports ---------------------------------------------------------------------------------------

    def health_rows(self, group_arn: str, wanted: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        """DescribeTargetHealth's rows: every registered or draining target, or the ones asked for.

        Read-only and safe from any thread (the loop thread included): it copies before iterating.
        """
        group = self.groups.get(group_arn)
        if group is None:
            return None
        health = group.spec.health

        def row(target_id: str, port: int, state: str, reason: str | None, description: str | None) -> dict[str, Any]:
            health_port = str(port) if health.port == "traffic-port" else str(health.port)
            return {
                "id": target_id,
                "port": port,
                "health_port": health_port,
                "state": state,
                "reason": reason,
                "description": description,
            }

        if not wanted:
            return [row(t.id, t.port, *t.health[:3]) for t in list(group.targets.values())]
        rows = []
        for item in wanted:
            target = group.targets.get(item["Id"])
            port = int(item.get("Port") or (target.port if target else 0) or 0)
            if target is not None and (not item.get("Port") or int(item["Port"]) == target.port):
                rows.append(row(target.id, target.port, *target.health[:3]))
            else:
                reason = "Target.NotRegistered"
                rows.append(row(item["Id"], port, "unused", reason, DESCRIPTIONS[reason]))
        return rows

"""Application Load Balancers serve traffic, and DescribeTargetHealth reports real, probed health.

Plain moto records load balancers, listeners and target groups but nothing listens, nothing is
health-checked, and DescribeTargetHealth answers ``healthy`` for any registered target. Here every
listener of every Application Load Balancer is a real HTTP listener on 127.0.0.1, published in the
sandbox's name map as ``(ALB DNSName, listener Port) -> 127.0.0.1:<local port>`` (the local port is
fixed for the listener's life, outages included), forwarding to the healthy targets of its target
groups, which are reached through the name map too (ECS tasks publish ``(private IP, containerPort)``).
The data plane -- routing, the proxy, health checks, draining, and where the sandbox cannot follow
AWS -- is described in sandbox/services/elbv2/listener.py; this module keeps it in step with the API:

- After every ELBv2 call that changes a load balancer, listener, rule, target group, its attributes
  or its targets, the region's whole configuration is re-read from moto and applied (idempotent), so
  a listener serves as soon as CreateListener returns, stops (connection refused, name unpublished)
  when DeleteListener/DeleteLoadBalancer returns, and a registered target is health-checked at once.
- DescribeTargetHealth answers the probed states: ``initial``, ``healthy``, ``unhealthy``, ``unused``
  (``Target.NotInUse`` while no listener forwards to the group), ``draining`` (listed, as AWS lists
  them, until ``deregistration_delay.timeout_seconds`` has passed), with AWS's reason codes and
  descriptions, and ``HealthCheckPort`` as the port actually probed (AWS resolves ``traffic-port``).
  A target asked for by Id that is not registered is ``unused`` / ``Target.NotRegistered``.
- Outages: ``rt.outage(region)`` closes that region's listeners (clients get connection refused; the
  names stay published, as an ALB's DNS name still resolves in a real outage) and pauses its health
  checks; ``rt.restore(region)`` reopens them on the same local ports and resumes the checks.
  ``POST /moto-api/reset`` and the server's shutdown close everything.
- Control routes: ``GET /_sandbox/alb`` lists every ALB with its listeners' local addresses and every
  target group with its targets' states (and the local address each resolves to);
  ``POST /_sandbox/names {"name", "port", "local_port"}`` publishes a name in the map (``local_port``
  null unpublishes it) -- for tests and operators that stand up targets by hand.

HTTPS listeners serve plain HTTP on their published port: the sandbox has no certificates (targets
still see ``X-Forwarded-Proto: https``). CreateListener/ModifyListener on a port the load balancer
already listens on fail with ``DuplicateListener``, as on AWS (moto accepts them). Network Load
Balancers and Gateway Load Balancers are left as moto records them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
from collections.abc import Coroutine
from typing import Any

from sandbox import config, patches, runtime
from sandbox.services.elbv2 import access
from sandbox.services.elbv2 import listener as alb
from sandbox.services.elbv2 import rules as alb_rules

log = logging.getLogger("sandbox.elbv2_listeners")

# ELBv2Backend methods after which the region's configuration is re-applied.
MUTATIONS = (
    "create_load_balancer",
    "delete_load_balancer",
    "create_listener",
    "modify_listener",
    "delete_listener",
    "create_rule",
    "modify_rule",
    "delete_rule",
    "set_rule_priorities",
    "create_target_group",
    "modify_target_group",
    "modify_target_group_attributes",
    "delete_target_group",
    "register_targets",
    "deregister_targets",
    "modify_load_balancer_attributes",
    "notify_terminate_instances",
)


def _flag(value: Any) -> bool:
    return str(value).lower() == "true"


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _rules(listener: Any) -> tuple[alb_rules.Rule, ...]:
    rules = []
    for rule in list(listener.rules.values()):
        action = alb_rules.action_from_api([a.data for a in rule.actions])
        conditions = tuple(alb_rules.condition_from_api(c) for c in rule.conditions or [])
        priority = math.inf if rule.is_default else _number(rule.priority, math.inf)
        rules.append(alb_rules.Rule(priority, conditions, action))
    rules.sort(key=lambda r: r.priority)
    return tuple(rules)


def snapshot(backend: Any) -> tuple[tuple[str, str], list[alb_rules.ListenerSpec], list[alb.TargetGroupSpec]]:
    """One region's Application Load Balancer configuration, as moto recorded it, in plain values."""
    scope = (backend.account_id, backend.region_name)
    listeners: list[alb_rules.ListenerSpec] = []
    attached: set[str] = set()
    for lb in list(backend.load_balancers.values()):
        if lb.type != "application":
            continue
        attrs = lb.attrs
        for listener in list(lb.listeners.values()):
            rules = _rules(listener)
            for rule in rules:
                attached.update(rule.action.group_arns())
            listeners.append(
                alb_rules.ListenerSpec(
                    arn=listener.arn,
                    scope=scope,
                    load_balancer_arn=lb.arn,
                    load_balancer_name=lb.name,
                    dns_name=lb.dns_name,
                    port=int(listener.port),
                    protocol=(listener.protocol or "HTTP").upper(),
                    rules=rules,
                    idle_timeout=_number(attrs.get("idle_timeout.timeout_seconds"), 60.0),
                    xff_mode=str(attrs.get("routing.http.xff_header_processing.mode") or "append"),
                    xff_client_port=_flag(attrs.get("routing.http.xff_client_port.enabled")),
                    drop_invalid_headers=_flag(attrs.get("routing.http.drop_invalid_header_fields.enabled")),
                )
            )
    groups = []
    for tg in list(backend.target_groups.values()):
        matcher = (getattr(tg, "matcher", None) or {}).get("HttpCode") or "200"
        health = alb.HealthCheck(
            enabled=bool(tg.health_check_enabled),
            protocol=str(tg.health_check_protocol or "HTTP"),
            port=str(tg.health_check_port or "traffic-port"),
            path=str(tg.health_check_path or "/"),
            interval=_number(tg.health_check_interval_seconds, 30.0),
            timeout=_number(tg.health_check_timeout_seconds, 5.0),
            healthy_threshold=int(_number(tg.healthy_threshold_count, 5)),
            unhealthy_threshold=int(_number(tg.unhealthy_threshold_count, 2)),
            matcher=str(matcher),
        )
        targets = tuple((t["Id"], int(t.get("Port") or tg.port or 0)) for t in list(tg.targets.values()))
        groups.append(
            alb.TargetGroupSpec(
                arn=tg.arn,
                name=tg.name,
                scope=scope,
                health=health,
                deregistration_delay=_number(tg.attributes.get("deregistration_delay.timeout_seconds"), 300.0),
                targets=targets,
                attached=tg.arn in attached,
            )
        )
    return scope, listeners, groups


class Plane:
    """The bridge between moto (API threads) and the balancer (on the runtime's asyncio loop)."""

    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        # Serialises syncs and outage handling from the API threads. The asyncio loop never takes it,
        # so waiting on the loop while holding it cannot deadlock.
        self._lock = threading.Lock()
        self._balancer: alb.Balancer | None = None
        self.gate = access.Gate()  # the listeners' security-group check (used on the loop only)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.rt.aio
        except RuntimeError:
            return False

    def _run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> None:
        """Run a balancer coroutine on the loop and wait for it -- or, when called from the loop itself
        (another live extension changing ELBv2 from there), schedule it: waiting would deadlock."""
        if self._on_loop():
            self.rt.aio.create_task(coro)
        else:
            self.rt.call(coro, timeout=timeout)

    def balancer(self) -> alb.Balancer:
        if self._balancer is None:
            if self._on_loop():
                raise RuntimeError("the ALB data plane must first be started from an API thread, not the loop")
            self._balancer = self.rt.call(
                alb.Balancer.create(self.rt.resolve, self.rt.publish, self._unpublish, self.gate)
            )
        return self._balancer

    def _unpublish(self, name: str, port: int) -> None:
        self.rt.unpublish(name, port)

    def sync(self, backend: Any) -> None:
        with self._lock:
            for attempt in range(3):
                try:
                    scope, listeners, groups = snapshot(backend)
                    break
                except RuntimeError:  # another API thread changed a dict mid-read: read again
                    if attempt == 2:
                        raise
            self._run(self.balancer().apply(scope, listeners, groups))

    def health_rows(self, group_arn: str, targets: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        # Read without the loop: Route 53's alias evaluation may ask from the loop thread itself.
        return None if self._balancer is None else self._balancer.health_rows(group_arn, targets)

    def outage(self, region: str) -> None:
        with self._lock:
            if self._balancer is not None:
                self._run(self._balancer.outage(region))

    def restore(self, region: str) -> None:
        with self._lock:
            if self._balancer is not None:
                self._run(self._balancer.restore(region))

    def reset(self) -> None:
        with self._lock:
            if self._balancer is not None:
                self._run(self._balancer.close())

    def shutdown(self) -> None:
        with self._lock:
            if self._balancer is not None:
                self._run(self._balancer.stop(), timeout=10)
                self._balancer = None

    def describe(self) -> dict[str, Any]:
        if self._balancer is None:
            return {"load_balancers": [], "target_groups": [], "dark_regions": [], "in_flight": 0}
        return self._balancer.describe()


def _names_route(rt: runtime.Runtime) -> runtime.Handler:
    def publish(body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        name, port, local_port = body.get("name"), body.get("port"), body.get("local_port", "missing")
        if not isinstance(name, str) or not name:
            raise runtime.ControlError(
                400, 'name the AWS host name or IP: {"name": "10.0.1.5", "port": 8000, "local_port": 41234}'
            )
        if not isinstance(port, int) or not 0 < port < 65536:
            raise runtime.ControlError(400, f"port must be an integer 1-65535 (the port AWS clients use), got {port!r}")
        if local_port is None:
            rt.unpublish(name, port)
            return 200, {"name": name, "port": port, "local": None}
        if not isinstance(local_port, int) or not 0 < local_port < 65536:
            raise runtime.ControlError(
                400,
                f"local_port must be the integer port of a listener on 127.0.0.1 (null unpublishes), got {local_port!r}",
            )
        rt.publish(name, port, local_port)
        return 200, {"name": name, "port": port, "local": f"{config.HOST}:{local_port}"}

    return publish


def install(_app: Any) -> None:
    from moto.elbv2.exceptions import DuplicateListenerError, TargetGroupNotFoundError
    from moto.elbv2.models import ELBv2Backend, FakeHealthStatus

    rt = runtime.get()
    plane = Plane(rt)

    def after(name: str) -> Any:
        """moto's method, then the data plane's sync."""
        original = getattr(ELBv2Backend, name)

        @functools.wraps(original)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            try:
                plane.sync(self)
            except Exception:
                # The API call itself succeeded; the data plane catches up on the next change.
                log.exception("could not apply %s to the sandbox's load balancers", name)
            return result

        return method

    # moto looks the new port up among the listener ARNs, so a second listener on a port is accepted
    # and would take over the first one's published name. AWS refuses with DuplicateListener.
    # One patch each composes that check with the sync: check, then moto, then sync.
    create_listener = after("create_listener")
    modify_listener = after("modify_listener")

    def _port_taken(balancer: Any, port: Any, listener_arn: str | None = None) -> bool:
        return any(
            int(other.port) == int(port) and other.arn != listener_arn for other in list(balancer.listeners.values())
        )

    @functools.wraps(create_listener)
    def create_listener_once(
        self: Any, load_balancer_arn: str, protocol: str, port: Any, *args: Any, **kwargs: Any
    ) -> Any:
        balancer = self.load_balancers.get(load_balancer_arn)
        if balancer is not None and port is not None and _port_taken(balancer, port):
            raise DuplicateListenerError()
        return create_listener(self, load_balancer_arn, protocol, port, *args, **kwargs)

    @functools.wraps(modify_listener)
    def modify_listener_once(self: Any, arn: str, port: Any = None, *args: Any, **kwargs: Any) -> Any:
        if port is not None:
            for balancer in list(self.load_balancers.values()):
                if arn in balancer.listeners and _port_taken(balancer, port, arn):
                    raise DuplicateListenerError()
        return modify_listener(self, arn, port, *args, **kwargs)

    for name in MUTATIONS:
        if name == "create_listener":
            patches.patch(ELBv2Backend, name, create_listener_once, owner=__name__)
        elif name == "modify_listener":
            patches.patch(ELBv2Backend, name, modify_listener_once, owner=__name__)
        else:
            patches.patch(ELBv2Backend, name, after(name), owner=__name__)

    original_describe = ELBv2Backend.describe_target_health

    def describe_target_health(self: Any, target_group_arn: str, targets: list[dict[str, Any]]) -> list[Any]:
        if target_group_arn not in self.target_groups:
            raise TargetGroupNotFoundError()
        rows = plane.health_rows(target_group_arn, targets)
        if rows is None:  # nothing synced yet (no change since the server started)
            return original_describe(self, target_group_arn, targets)
        return [
            FakeHealthStatus(r["id"], r["port"], r["health_port"], r["state"], r["reason"], r["description"])
            for r in rows
        ]

    patches.patch(ELBv2Backend, "describe_target_health", describe_target_health, owner=__name__)

    rt.on_outage(plane.outage)
    rt.on_restore(plane.restore)
    rt.on_reset(plane.reset)
    rt.on_shutdown(plane.shutdown)
    rt.route("GET", "alb", lambda _body, _query: (200, plane.describe()))
    rt.route("POST", "names", _names_route(rt))

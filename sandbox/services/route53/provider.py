"""Route 53 health checks really check, and TestDNSAnswer answers by health, as on AWS.

Plain moto records health checks but never probes anything: GetHealthCheckStatus always says
"Success" (even for an unreachable, disabled or inverted check), so DNS failover never happens.
This extension runs the sandbox's Route 53 data plane (sandbox/services/route53/checker.py, where the probing rules
and the places the sandbox differs from AWS are written down):

- Every health check in moto's backend, however created, updated or deleted, is probed by one
  scheduler on the runtime's asyncio loop: HTTP, HTTPS (plain HTTP on the published port: the sandbox
  has no TLS), HTTP_STR_MATCH / HTTPS_STR_MATCH, TCP, with RequestInterval, FailureThreshold, Inverted
  and Disabled; CALCULATED over ChildHealthChecks / HealthThreshold; CLOUDWATCH_METRIC from the
  alarm's state. Names resolve only through ``rt.resolve``.
- GetHealthCheckStatus returns the real last observation (``InvalidInput`` for a calculated check, as
  AWS documents that it cannot report those). Status changes and a sample a minute feed CloudWatch
  ``AWS/Route53 HealthCheckStatus`` / ``HealthCheckPercentageHealthy`` in us-east-1.
- TestDNSAnswer (moto lacks it) answers a record name and type as Route 53 would from those states:
  failover PRIMARY while healthy (its health check, and with EvaluateTargetHealth an ALB with healthy
  targets per moto's elbv2 target health), else SECONDARY; alias chains in the sandbox's zones followed;
  weighted, multivalue, latency and simple records answered. An alias to an ALB answers the ALB's DNS
  name (the sandbox has no IP addresses for ALBs).
- moto fixes: CreateHealthCheck / UpdateHealthCheck keep AlarmIdentifier and InsufficientDataHealthStatus
  (moto drops them); an HTTPS check without a Port gets 443 (moto gives every type 80); UpdateHealthCheck
  no longer wipes ChildHealthChecks and Regions when the request leaves them out, and bumps
  HealthCheckVersion as AWS does.

Control routes: ``GET /_sandbox/route53`` (every check with its state and last observation, and the
speed-up), ``POST /_sandbox/route53 {"speedup": N}`` (divide RequestInterval by N; 1 = AWS timing, the
default; ``SANDBOX_HEALTH_CHECK_SPEEDUP`` sets it at start), and the generic name map
``GET/POST/DELETE /_sandbox/names`` (``POST {"name", "port", "local_port"}``, ``local_port`` null
unpublishes; ``DELETE {"name", "port"?}``) for tests and operators that stand up a listener of their own.
Each is registered only if no other extension registered it first (services/elbv2/provider.py serves the same
POST contract).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sandbox import config, patches, runtime
from sandbox.services.route53 import checker as route53

TEST_DNS_ANSWER_PATH = r"{0}/(?P<api_version>[\d_-]+)/testdnsanswer$"


def _keep_alarm_settings(check: Any, source: dict[str, Any]) -> None:
    if source.get("AlarmIdentifier"):
        check.alarm_identifier = {
            "Region": source["AlarmIdentifier"].get("Region"),
            "Name": source["AlarmIdentifier"].get("Name"),
        }
    if source.get("InsufficientDataHealthStatus"):
        check.insufficient_data_health_status = source["InsufficientDataHealthStatus"]


def _patch_health_check_config() -> None:
    """CLOUDWATCH_METRIC settings moto drops, and a config that shows them."""
    from moto.route53.models import HealthCheck

    original_config = HealthCheck.health_check_config

    def health_check_config(self: Any) -> dict[str, Any]:
        result = dict(original_config.fget(self))  # type: ignore[attr-defined]
        if self.type_ == "CLOUDWATCH_METRIC":
            for key in ("IPAddress", "Port", "RequestInterval", "FailureThreshold", "MeasureLatency"):
                result.pop(key, None)
        if getattr(self, "alarm_identifier", None):
            result["AlarmIdentifier"] = self.alarm_identifier
        if getattr(self, "insufficient_data_health_status", None):
            result["InsufficientDataHealthStatus"] = self.insufficient_data_health_status
        return result

    patches.patch(HealthCheck, "health_check_config", property(health_check_config), owner=__name__)


def _patch_health_check_writes(checkers: route53.HealthCheckers) -> None:
    """Create / Update / DeleteHealthCheck keep what AWS keeps and wake the checkers."""
    from moto.route53.models import Route53Backend
    from moto.route53.responses import Route53

    original_create = Route53.create_health_check

    def create_health_check(self: Any) -> Any:
        config_in = self._get_param("HealthCheckConfig") or {}
        result = original_create(self)
        check = result.result["HealthCheck"]
        _keep_alarm_settings(check, config_in)
        if not config_in.get("Port") and str(config_in.get("Type", "")).startswith("HTTPS"):
            check.port = 443  # AWS's default for HTTPS checks (moto defaults every type to 80)
        checkers.poke()
        return result

    original_update = Route53.update_health_check

    def update_health_check(self: Any) -> Any:
        result = original_update(self)
        source = {
            "AlarmIdentifier": self._get_param("AlarmIdentifier"),
            "InsufficientDataHealthStatus": self._get_param("InsufficientDataHealthStatus"),
        }
        _keep_alarm_settings(result.result["HealthCheck"], source)
        checkers.poke()
        return result

    original_backend_update = Route53Backend.update_health_check

    def backend_update_health_check(self: Any, health_check_id: str, health_check_args: dict[str, Any]) -> Any:
        # moto's response passes [] for a list the request left out; AWS leaves it unchanged
        # (only ResetElements clears one).
        args = dict(health_check_args)
        for key in ("children", "regions"):
            if not args.get(key):
                args[key] = None
        check = original_backend_update(self, health_check_id, args)
        check.health_check_version = int(check.health_check_version or 1) + 1
        return check

    original_delete = Route53.delete_health_check

    def delete_health_check(self: Any) -> Any:
        result = original_delete(self)
        checkers.poke()
        return result

    patches.patch(Route53, "create_health_check", create_health_check, owner=__name__)
    patches.patch(Route53, "update_health_check", update_health_check, owner=__name__)
    patches.patch(Route53, "delete_health_check", delete_health_check, owner=__name__)
    patches.patch(Route53Backend, "update_health_check", backend_update_health_check, owner=__name__)


def _patch_health_check_reads(checkers: route53.HealthCheckers) -> None:
    """GetHealthCheckStatus reports the observations; TestDNSAnswer answers by health."""
    from moto.core.responses import ActionResult
    from moto.route53 import urls
    from moto.route53.exceptions import InvalidInput, NoSuchHostedZone
    from moto.route53.responses import Route53

    def get_health_check_status(self: Any) -> Any:
        check_id = self._get_param("HealthCheckId")
        check = self.backend.get_health_check(check_id)  # NoSuchHealthCheck, as AWS
        if check.type_ == "CALCULATED":
            raise InvalidInput(
                f"Health check {check_id} is a calculated health check: GetHealthCheckStatus cannot report those "
                "(AWS documents this). Read its children's status, or the CloudWatch metric AWS/Route53 "
                "HealthCheckStatus in us-east-1."
            )
        return ActionResult({"HealthCheckObservations": checkers.observations(check)})

    def test_dns_answer(self: Any) -> Any:
        zone_id = self._get_param("HostedZoneId") or self.querystring.get("hostedzoneid", [""])[0]
        name = self._get_param("RecordName") or self.querystring.get("recordname", [""])[0]
        rtype = self._get_param("RecordType") or self.querystring.get("recordtype", [""])[0]
        if not zone_id or not name or not rtype:
            raise InvalidInput("TestDNSAnswer needs hostedzoneid, recordname and recordtype.")
        resolver = route53.resolver()
        zone = resolver.zone_by_id(zone_id)
        if zone is None:
            raise NoSuchHostedZone(zone_id)
        result = resolver.answer(name, rtype, zone_id=zone_id)
        return ActionResult(
            {
                "Nameserver": result.nameserver,
                "RecordName": name,
                "RecordType": rtype.upper(),
                "RecordData": result.values,
                "ResponseCode": result.rcode,
                "Protocol": "UDP",
            }
        )

    patches.patch(Route53, "get_health_check_status", get_health_check_status, owner=__name__)
    patches.patch(Route53, "test_dns_answer", test_dns_answer, owner=__name__)
    # The backend app reads url_paths when it first serves Route 53, after every extension is installed.
    patches.patch_item(
        urls.url_paths, TEST_DNS_ANSWER_PATH, Route53.dispatch, where="moto.route53.urls.url_paths", owner=__name__
    )


def _install_moto_patches(checkers: route53.HealthCheckers) -> None:
    _patch_health_check_config()
    _patch_health_check_writes(checkers)
    _patch_health_check_reads(checkers)


def _install_names_routes(rt: runtime.Runtime) -> None:
    """GET/POST/DELETE /_sandbox/names: the runtime's name map, for listeners the sandbox did not start."""

    def _name(body: dict[str, Any]) -> str:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise runtime.ControlError(
                400, 'name the AWS host name: {"name": "my-alb-1.us-east-1.elb.amazonaws.com", ...}'
            )
        return name

    def _port(body: dict[str, Any], key: str, required: bool = True) -> int | None:
        value = body.get(key)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise runtime.ControlError(
                400, f'{key} must be a port number (1-65535), e.g. {{"{key}": 80}}; got {value!r}'
            )
        port = int(value)
        if not 1 <= port <= 65535:
            raise runtime.ControlError(400, f"{key} {port} is out of range: choose 1-65535")
        return port

    def publish(body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        name, port = _name(body), _port(body, "port")
        assert port is not None
        if "local_port" in body and body["local_port"] is None:  # null unpublishes (as the ELBv2 provider's route)
            rt.unpublish(name, port)
            return 200, {"name": name, "port": port, "local": None}
        local_port = _port(body, "local_port")
        local_host = body.get("local_host", config.HOST)
        try:
            loopback = ipaddress.ip_address(local_host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise runtime.ControlError(
                400, f"local_host {local_host!r} is not a loopback address: the sandbox stays on 127.0.0.0/8"
            )
        assert local_port is not None
        rt.publish(name, port, local_port, local_host)
        return 200, {"name": name, "port": port, "local": f"{local_host}:{local_port}"}

    def unpublish(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        merged = {**query, **body}
        name = _name(merged)
        port = _port(merged, "port", required=False)
        rt.unpublish(name, port)
        return 200, {"name": name, "port": port, "unpublished": True}

    def names(_body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        return 200, rt.names()

    if rt.handler("POST", "names") is None:
        rt.route("POST", "names", publish)
    if rt.handler("DELETE", "names") is None:
        rt.route("DELETE", "names", unpublish)
    if rt.handler("GET", "names") is None:
        rt.route("GET", "names", names)


def install(_app: Any) -> None:
    rt = runtime.get()
    checkers = route53.checkers()
    _install_moto_patches(checkers)
    _install_names_routes(rt)

    def describe(_body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        return 200, {"speedup": checkers.speedup, "health_checks": checkers.describe()}

    def configure(body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        if "speedup" not in body:
            raise runtime.ControlError(400, 'say how much faster than AWS to check: {"speedup": 10} (1 = AWS timing)')
        try:
            factor = float(body["speedup"])
        except (TypeError, ValueError):
            raise runtime.ControlError(400, f"speedup must be a number, got {body['speedup']!r}") from None
        checkers.set_speedup(factor)
        return 200, {"speedup": checkers.speedup}

    rt.route("GET", "route53", describe)
    rt.route("POST", "route53", configure)
    rt.on_reset(checkers.reset)
    rt.on_shutdown(checkers.stop)
    checkers.start()

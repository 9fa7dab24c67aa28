"""What an ALB listener decides, from the ELBv2 API's shapes: the parsed client request, rule conditions
as predicates on it, actions, rules and the listener's snapshot (``ListenerSpec``), the redirect's
Location, and the responses the load balancer makes itself (its error pages, redirects, fixed responses).

No sockets and no event loop here: sandbox/services/elbv2/provider.py builds the snapshots with
``condition_from_api`` and ``action_from_api``; the listener (sandbox/services/elbv2/listener.py) routes
by them and answers with the generated responses, and the proxy (sandbox/services/elbv2/proxy.py) takes
its status phrases from here. What the data plane does as a whole is described in listener.py.
"""

from __future__ import annotations

import http
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

log = logging.getLogger("sandbox.alb")

# -- what the API configured, as immutable snapshots ---------------------------------------------------


class _Request:
    """One parsed client request (bodies are read in full before forwarding)."""

    __slots__ = ("body", "headers", "keep_alive", "method", "url", "version")

    def __init__(
        self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool, version: str
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.version = version

    def header(self, lower_name: bytes) -> bytes | None:
        for name, value in self.headers:
            if name.lower() == lower_name:
                return value
        return None

    def path_query(self) -> tuple[str, str]:
        path, _, query = self.url.decode("latin-1").partition("?")
        return path, query

    def host(self, default: str) -> str:
        """The Host header without its port (what host-header conditions and #{host} see)."""
        raw = self.header(b"host")
        if not raw:
            return default
        host = raw.decode("latin-1").strip()
        if host.startswith("["):
            return host.split("]", 1)[0] + "]"
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


Matcher = Callable[[_Request, str], bool]


def _wildcard(values: Iterable[str], ignore_case: bool) -> re.Pattern[str]:
    """ALB condition values: ``*`` any run of characters, ``?`` exactly one, everything else literal."""
    patterns = ["".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in v) for v in values]
    return re.compile(
        "(?:" + "|".join(patterns or ["(?!)"]) + ")", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL
    )


def _values(condition: dict[str, Any], config_key: str) -> list[Any]:
    return list((condition.get(config_key) or {}).get("Values") or condition.get("Values") or [])


def condition_from_api(condition: dict[str, Any]) -> Matcher:
    """A listener rule condition (the ELBv2 API's RuleCondition shape) as a predicate on a request."""
    kind = condition.get("Field")
    if kind == "path-pattern":
        path_re = _wildcard(_values(condition, "PathPatternConfig"), ignore_case=False)
        return lambda req, _ip: path_re.fullmatch(req.path_query()[0]) is not None
    if kind == "host-header":
        host_re = _wildcard(_values(condition, "HostHeaderConfig"), ignore_case=True)
        return lambda req, _ip: host_re.fullmatch(req.host("")) is not None
    if kind == "http-header":
        config = condition.get("HttpHeaderConfig") or {}
        name = str(config.get("HttpHeaderName", "")).lower().encode("latin-1")
        value_re = _wildcard(config.get("Values") or [], ignore_case=True)
        return lambda req, _ip: any(
            n.lower() == name and value_re.fullmatch(v.decode("latin-1")) for n, v in req.headers
        )
    if kind == "http-request-method":
        methods = {m.encode() for m in _values(condition, "HttpRequestMethodConfig")}
        return lambda req, _ip: req.method in methods
    if kind == "query-string":
        pairs = [
            (None if p.get("Key") is None else _wildcard([p["Key"]], True), _wildcard([p.get("Value", "")], True))
            for p in _values(condition, "QueryStringConfig")
        ]

        def query_matches(req: _Request, _ip: str) -> bool:
            found = parse_qsl(req.path_query()[1], keep_blank_values=True)
            return any(
                (key_re is None or key_re.fullmatch(k)) and value_re.fullmatch(v)
                for key_re, value_re in pairs
                for k, v in found
            )

        return query_matches
    if kind == "source-ip":
        networks = [ipaddress.ip_network(v, strict=False) for v in _values(condition, "SourceIpConfig")]

        def source_matches(_req: _Request, ip: str) -> bool:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                return False
            return any(address in net for net in networks)

        return source_matches
    log.warning("listener rule condition %r is not understood by the sandbox: the rule never matches", kind)
    return lambda _req, _ip: False


@dataclass(frozen=True)
class Action:
    kind: str  # forward | redirect | fixed-response
    groups: tuple[tuple[str, int], ...] = ()  # (target group ARN, weight)
    redirect: dict[str, str] = field(default_factory=dict)
    status: int = 0
    content_type: str = "text/plain"
    body: bytes = b""

    def group_arns(self) -> list[str]:
        return [arn for arn, _weight in self.groups]


def action_from_api(actions: list[dict[str, Any]]) -> Action:
    """The terminal action of a rule (forward, redirect or fixed-response), from the API's Action shapes.

    Authentication actions come first in a rule and cannot be performed here: they are skipped.
    """
    ordered = sorted(enumerate(actions), key=lambda item: (item[1].get("Order") or 0, item[0]))
    for _index, data in reversed(ordered):
        kind = data.get("Type")
        if kind == "forward":
            groups = [
                (g["TargetGroupArn"], int(g.get("Weight", 1)))
                for g in (data.get("ForwardConfig") or {}).get("TargetGroups") or []
            ]
            if not groups and data.get("TargetGroupArn"):
                groups = [(data["TargetGroupArn"], 1)]
            return Action("forward", groups=tuple(groups))
        if kind == "redirect":
            config = data.get("RedirectConfig") or {}
            return Action("redirect", redirect={k: str(v) for k, v in config.items()})
        if kind == "fixed-response":
            config = data.get("FixedResponseConfig") or {}
            return Action(
                "fixed-response",
                status=int(config.get("StatusCode", 200)),
                content_type=str(config.get("ContentType") or "text/plain"),
                body=str(config.get("MessageBody") or "").encode(),
            )
    return Action("fixed-response", status=503, body=b"")


@dataclass(frozen=True)
class Rule:
    priority: float  # math.inf for the default rule
    conditions: tuple[Matcher, ...]
    action: Action


@dataclass(frozen=True)
class ListenerSpec:
    arn: str
    scope: tuple[str, str]  # (account, region)
    load_balancer_arn: str
    load_balancer_name: str
    dns_name: str
    port: int
    protocol: str  # HTTP | HTTPS
    rules: tuple[Rule, ...]  # by priority, the default rule last
    idle_timeout: float = 60.0
    xff_mode: str = "append"  # append | preserve | remove
    xff_client_port: bool = False
    drop_invalid_headers: bool = False

    @property
    def region(self) -> str:
        return self.scope[1]


# -- ALB-made responses -----------------------------------------------------------------------------------

_ERROR_TITLES = {
    400: "400 Bad Request",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
    301: "301 Moved Permanently",
    302: "302 Found",
}
_date_cache: list[Any] = [0, b""]


def _http_date() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode()
    return _date_cache[1]


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def _generated(
    status: int,
    body: bytes,
    content_type: bytes,
    keep_alive: bool,
    extra: Iterable[tuple[bytes, bytes]] = (),
    head_only: bool = False,
) -> bytes:
    """A response the load balancer makes itself (as AWS: with ``Server: awselb/2.0``)."""
    title = _ERROR_TITLES.get(status)  # ALB's own phrases ("503 Service Temporarily Unavailable")
    lines = [
        b"HTTP/1.1 %s\r\n" % (title.encode() if title else b"%d %s" % (status, _reason(status))),
        b"Server: awselb/2.0\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
        % (_http_date(), content_type, len(body)),
    ]
    lines.extend(b"%s: %s\r\n" % pair for pair in extra)
    lines.append(b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n")
    if not head_only:
        lines.append(body)
    return b"".join(lines)


def _error_page(status: int) -> bytes:
    title = _ERROR_TITLES.get(status, f"{status} {_reason(status).decode()}")
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def redirect_location(config: dict[str, str], req: _Request, spec: ListenerSpec) -> str:
    """RedirectConfig with its #{...} placeholders filled from the request, as ALB builds Location."""
    path, query = req.path_query()
    values = {
        "#{protocol}": spec.protocol.lower(),
        "#{host}": req.host(spec.dns_name),
        "#{port}": str(spec.port),
        "#{path}": path.lstrip("/"),
        "#{query}": query,
    }

    def fill(key: str, default: str) -> str:
        text = config.get(key) or default
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        return text

    location = f"{fill('Protocol', '#{protocol}').lower()}://{fill('Host', '#{host}')}:{fill('Port', '#{port}')}"
    location += fill("Path", "/#{path}")
    filled_query = fill("Query", "#{query}")
    return location + (f"?{filled_query}" if filled_query else "")

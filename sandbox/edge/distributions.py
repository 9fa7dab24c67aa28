"""The distributions the edge serves: compiled from moto's CloudFront records (behaviours, origins, origin
groups), chosen by Host, and their origins' names resolved as Route 53 answers them (cached for the TTL)."""

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from sandbox import config
from sandbox.services.route53 import checker as route53

log = logging.getLogger("sandbox.edge")

ALL_VIEWER_POLICY = "216adef6-5c7f-47e4-b989-5492eafa07d3"  # Managed-AllViewer: forwards the viewer's Host
REFRESH_S = 0.5  # how stale the edge's view of moto's distributions may be
S3_DOMAIN = re.compile(r"^(?P<bucket>.+?)\.s3(?:[.-](?P<region>[a-z0-9-]+))?\.amazonaws\.com$")


def path_regex(pattern: str) -> re.Pattern[str]:
    """CloudFront's path pattern as a regex: * any characters (including /), ? exactly one, the rest literal."""
    body = pattern if pattern.startswith("/") else "/" + pattern
    parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in body]
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _items(container: Any) -> list[Any]:
    if not isinstance(container, dict):
        return []
    items = container.get("Items") or []
    return items if isinstance(items, list) else [items]


# -- a distribution, compiled for serving -----------------------------------------------------------


@dataclass(frozen=True)
class OriginSpec:
    id: str
    domain: str
    path: str
    s3: bool
    protocol_policy: str
    http_port: int
    https_port: int
    attempts: int
    connect_timeout: float
    read_timeout: float
    keepalive_timeout: float
    custom_headers: tuple[tuple[str, str], ...]
    oac_id: str
    oai: str

    @property
    def port(self) -> int:
        # The viewer side is plain HTTP here, so match-viewer means HTTP.
        return self.https_port if self.protocol_policy == "https-only" else self.http_port


@dataclass(frozen=True)
class GroupSpec:
    id: str
    primary: str
    secondary: str
    codes: frozenset[int]


@dataclass(frozen=True)
class BehaviourSpec:
    pattern: str  # "*" for the default behaviour
    regex: re.Pattern[str] | None
    target: str
    methods: frozenset[str]
    viewer_protocol_policy: str
    forward_host: bool


@dataclass
class DistSpec:
    id: str
    arn: str
    account_id: str
    domain: str
    aliases: tuple[str, ...]
    comment: str
    enabled: bool
    status: str
    origins: dict[str, OriginSpec]
    groups: dict[str, GroupSpec]
    behaviours: list[BehaviourSpec]
    default: BehaviourSpec
    via: str

    def behaviour_for(self, path: str) -> BehaviourSpec:
        for behaviour in self.behaviours:
            if behaviour.regex is not None and behaviour.regex.match(path):
                return behaviour
        return self.default

    def matches_host(self, host: str) -> bool:
        if not host:
            return False
        if host == self.domain or self.has_alias(host):
            return True
        return host in self.comment.lower().split()

    def has_alias(self, host: str) -> bool:
        """Whether the distribution lists host as an alternate domain name (CNAME), wildcards included."""
        if host in self.aliases:
            return True
        return any(alias.startswith("*.") and host.endswith(alias[1:]) for alias in self.aliases)


def _compile_origin(origin: Any) -> OriginSpec:
    custom = getattr(origin, "custom_origin_config", None)
    s3_config = getattr(origin, "s3_origin_config", None)
    oac = getattr(origin, "origin_access_control_id", "") or ""
    is_s3 = custom is None and (
        s3_config is not None or bool(oac) or S3_DOMAIN.match(origin.domain_name.lower()) is not None
    )
    headers = tuple(
        (str(h.get("HeaderName")), str(h.get("HeaderValue")))
        for h in _items(getattr(origin, "custom_headers", None))
        if isinstance(h, dict)
    )
    return OriginSpec(
        id=origin.id,
        domain=origin.domain_name.lower().rstrip("."),
        path=(origin.origin_path or "").rstrip("/"),
        s3=is_s3,
        protocol_policy=(getattr(custom, "origin_protocol_policy", None) or "http-only") if custom else "https-only",
        http_port=int(getattr(custom, "http_port", None) or 80),
        https_port=int(getattr(custom, "https_port", None) or 443),
        attempts=max(1, int(origin.connection_attempts or 3)),
        connect_timeout=float(origin.connection_timeout or 10),
        read_timeout=float(getattr(custom, "origin_read_timeout", None) or 30),
        keepalive_timeout=float(getattr(custom, "origin_keepalive_timeout", None) or 5),
        custom_headers=headers,
        oac_id=oac,
        oai=(s3_config or {}).get("OriginAccessIdentity", "") if isinstance(s3_config, dict) else "",
    )


def _compile_behaviour(behaviour: Any, pattern: str | None) -> BehaviourSpec:
    methods = frozenset(str(m).upper() for m in (behaviour.allowed_methods.items or ["GET", "HEAD"]))
    forwarded = getattr(behaviour, "forwarded_values", None)
    legacy_headers = [h.lower() for h in _items(getattr(forwarded, "Headers", None))] if forwarded else []
    forward_host = (
        behaviour.origin_request_policy_id == ALL_VIEWER_POLICY or "host" in legacy_headers or "*" in legacy_headers
    )
    return BehaviourSpec(
        pattern=pattern or "*",
        regex=path_regex(pattern) if pattern else None,
        target=behaviour.target_origin_id,
        methods=methods,
        viewer_protocol_policy=behaviour.viewer_protocol_policy,
        forward_host=forward_host,
    )


def compile_distribution(dist: Any, account_id: str) -> DistSpec:
    cfg = dist.distribution_config
    origins = {o.id: _compile_origin(o) for o in _items(cfg.Origins)}
    groups = {}
    for group in _items(cfg.OriginGroups):
        members = [m.get("OriginId") for m in _items(group.get("Members"))]
        codes = frozenset(int(c) for c in _items((group.get("FailoverCriteria") or {}).get("StatusCodes")))
        if len(members) == 2:
            groups[group["Id"]] = GroupSpec(group["Id"], members[0], members[1], codes)
    behaviours = [_compile_behaviour(b, b.path_pattern) for b in _items(cfg.CacheBehaviors)]
    via_id = hashlib.md5(dist.domain_name.encode(), usedforsecurity=False).hexdigest()
    return DistSpec(
        id=dist.distribution_id,
        arn=dist.arn,
        account_id=account_id,
        domain=dist.domain_name.lower(),
        aliases=tuple(a.lower() for a in _items(cfg.Aliases)),
        comment=str(getattr(cfg, "Comment", "") or ""),
        enabled=str(cfg.Enabled).lower() == "true",
        status=str(getattr(dist, "status", "Deployed")),
        origins=origins,
        groups=groups,
        behaviours=behaviours,
        default=_compile_behaviour(cfg.DefaultCacheBehavior, None),
        via=f"1.1 {via_id}.cloudfront.net (CloudFront)",
    )


@dataclass(frozen=True)
class Choice:
    """The edge's verdict on a Host: serve ``dist``, or refuse (``refusal``: ``unknown-cname``, ``misdirected``)."""

    dist: DistSpec | None
    refusal: str = ""
    # How a name in a sandbox zone was looked up: "www.example.com -> d1.cloudfront.net".
    chain: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()  # the ids behind a 503: no enabled distribution serves the Host


def host_name(host: str) -> str:
    """The Host header's name: lower case, without the port or a trailing dot (an IPv6 literal as it is)."""
    if not host or host.startswith("["):
        return host.lower()
    return host.rsplit(":", 1)[0].lower().rstrip(".")


@dataclass
class _Cached:
    values: list[str]
    expires: float
    ttl: int
    chain: list[str]


class Routing:
    """Which distribution serves a Host, and where its origins are (an Edge part)."""

    # -- the distributions

    def distributions(self) -> list[DistSpec]:
        """Every distribution in moto (oldest first), compiled; refreshed at most every REFRESH_S."""
        now = time.monotonic()
        if now - self._view_at < REFRESH_S:
            return self._view
        from moto.cloudfront.models import cloudfront_backends

        view, keep = [], {}
        for account_id in list(cloudfront_backends.keys()):
            for partition in list(cloudfront_backends[account_id].keys()):
                for dist in route53.snapshot(cloudfront_backends[account_id][partition].distributions):
                    key = (dist.distribution_id, str(dist.etag), id(dist.distribution_config))
                    spec = self._compiled.get(key)
                    if spec is None:
                        try:
                            spec = compile_distribution(dist, account_id)
                        except Exception:
                            log.exception("edge: cannot read distribution %s", dist.distribution_id)
                            continue
                    keep[key] = spec
                    view.append(spec)
        with self._lock:
            self._compiled, self._view, self._view_at = keep, view, now
        return view

    def select(self, host: str) -> DistSpec | None:
        """For a Host outside the sandbox's zones: the distribution it names (Aliases, domain name or Comment),
        else the newest enabled one."""
        enabled = [d for d in self.distributions() if d.enabled]
        host = host_name(host)
        for dist in enabled:
            if dist.matches_host(host):
                return dist
        return enabled[-1] if enabled else None

    def choose(self, host: str) -> Choice:
        """Which distribution serves a viewer's Host. A name in one of the sandbox's public hosted zones is
        looked up as Route 53 answers it, as a viewer's resolver would: it must lead to a distribution's
        domain name, and that distribution must list the name in its Aliases (CloudFront's 403 otherwise).
        Any other Host (127.0.0.1:<port>, localhost, a distribution's own domain name) is ``select``'s."""
        name = host_name(host)
        if not name or not self._in_sandbox_zone(name, time.monotonic()):
            dist = self.select(host)
            disabled = () if dist is not None else tuple(d.id for d in self.distributions())
            return Choice(dist, disabled=disabled)
        target, chain = self._lookup(name)
        dist = next((d for d in self.distributions() if target is not None and d.domain == target), None)
        if dist is None:
            return Choice(None, "misdirected", chain)
        if not dist.enabled:
            return Choice(None, chain=chain, disabled=(dist.id,))
        if not dist.has_alias(name):
            return Choice(dist, "unknown-cname", chain)
        return Choice(dist, chain=chain)

    def _lookup(self, name: str) -> tuple[str | None, tuple[str, ...]]:
        """(the name a viewer's name leads to outside the sandbox's zones, the steps); None: no answer."""
        resolver = route53.resolver(self.rt)
        chain: list[str] = []
        for _ in range(route53.MAX_ALIAS_DEPTH):
            if not self._in_sandbox_zone(name, time.monotonic()):
                return name, tuple(chain)
            result = resolver.answer(name, "A")
            if not result.values:
                chain.append(f"{name}: {result.rcode}, no record")
                return None, tuple(chain)
            target = route53.norm_name(result.values[0])
            chain.append(f"{name} -> {target}")
            name = target
        chain.append(f"more than {route53.MAX_ALIAS_DEPTH} steps")
        return None, tuple(chain)

    # -- origin names

    def resolve_origin(self, origin: OriginSpec) -> tuple[tuple[str, int] | None, str]:
        """(local address, the name it stands for) for a custom origin, through Route 53 when it is a record."""
        name = origin.domain
        for _ in range(route53.MAX_ALIAS_DEPTH):
            now = time.monotonic()
            if not self._in_sandbox_zone(name, now):
                break
            resolver = route53.resolver(self.rt)
            with self._lock:
                cached = self._dns.get(name)
            if cached is None or cached.expires <= now:
                result = resolver.answer(name, "A")
                cached = _Cached(result.values, now + result.ttl, result.ttl, result.chain)
                if result.ttl > 0:
                    with self._lock:
                        self._dns[name] = cached
            if not cached.values:
                return None, name
            name = route53.norm_name(cached.values[0])
        return self.rt.resolve(name, origin.port), name

    def _in_sandbox_zone(self, name: str, now: float) -> bool:
        """Whether a sandbox hosted zone holds the name (remembered for REFRESH_S: this is per request)."""
        with self._lock:
            known = self._zone_names.get(name)
        if known is not None and known[1] > now:
            return known[0]
        inside = route53.resolver(self.rt).zone_for(name) is not None
        with self._lock:
            self._zone_names[name] = (inside, now + REFRESH_S)
        return inside

    def dns_cache(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            items = list(self._dns.items())
        return {
            name: {
                "answer": c.values,
                "ttl": c.ttl,
                "ttl_left_s": round(max(0.0, c.expires - now), 1),
                "chain": c.chain,
            }
            for name, c in items
        }

    # -- the control route

    def describe(self) -> dict[str, Any]:
        dists = self.distributions()
        enabled = [d for d in dists if d.enabled]
        served = enabled[-1] if enabled else None
        resolver = route53.resolver(self.rt)
        origins = []
        if served is not None:
            cache = self.dns_cache()
            for origin in served.origins.values():
                entry: dict[str, Any] = {
                    "id": origin.id,
                    "domain": origin.domain,
                    "kind": "s3" if origin.s3 else "custom",
                }
                if not origin.s3:
                    entry["port"] = origin.port
                    if resolver.zone_for(origin.domain) is not None:
                        entry["route53_record"] = True
                        entry["cached_answer"] = cache.get(origin.domain)
                        now = resolver.answer(origin.domain, "A")
                        entry["route53_answer_now"] = {"answer": now.values, "ttl": now.ttl, "chain": now.chain}
                        target = (
                            cache[origin.domain]["answer"][0] if cache.get(origin.domain, {}).get("answer") else None
                        )
                    else:
                        target = origin.domain
                    local = self.rt.resolve(route53.norm_name(target), origin.port) if target else None
                    entry["local_listener"] = f"{local[0]}:{local[1]}" if local else None
                origins.append(entry)
        return {
            "edge": f"http://{config.HOST}:{self.rt.edge_port}",
            "serving": None
            if served is None
            else {
                "id": served.id,
                "domain": served.domain,
                "aliases": list(served.aliases),
                "comment": served.comment,
                "status": served.status,
                "behaviours": [
                    {"path_pattern": b.pattern, "target": b.target, "allowed_methods": sorted(b.methods)}
                    for b in [*served.behaviours, served.default]
                ],
                "origin_groups": [
                    {"id": g.id, "primary": g.primary, "secondary": g.secondary, "status_codes": sorted(g.codes)}
                    for g in served.groups.values()
                ],
            },
            "origins": origins,
            "distributions": [{"id": d.id, "enabled": d.enabled, "aliases": list(d.aliases)} for d in dists],
            "dns_cache": self.dns_cache(),
            "stats": {
                "requests": self.stats.requests,
                "failovers": self.stats.failovers,
                "origin_failures": self.stats.origin_failures,
                "generated_errors": self.stats.generated_errors,
                "by_origin": dict(self.stats.by_origin),
            },
        }

"""The edge: one local HTTP entry point standing for the public domain and CloudFront.

It serves the sandbox's enabled CloudFront distribution from moto's cloudfront backend as CloudFront would.
Which one serves a request depends on its Host header (without the port):

- A name in one of the sandbox's Route 53 public hosted zones is looked up as Route 53 answers it
  (sandbox/services/route53/checker.py: aliases, failover and the other routing policies, CNAMEs followed
  through the sandbox's zones), as the viewer's resolver would. If it leads to a distribution's domain name
  (``<id>.cloudfront.net``) that lists the name in its Aliases, that distribution serves; if that distribution
  does not list it, CloudFront's 403 error page for an unknown CNAME ("Bad request."); if it leads to no
  distribution (no record, or an ALB), 421 Misdirected Request naming the host: a viewer would never have
  reached CloudFront. A disabled distribution: 503 as below.
- Any other Host (``127.0.0.1:<port>``, ``localhost``, a distribution's own domain name): the distribution
  whose Aliases, domain name or Comment match it, else the newest; none enabled: 503 saying to run
  ``make deploy``.

Per request:

- The cache behaviour is the first whose PathPattern matches the path (CloudFront's wildcards: ``*`` any
  run of characters including ``/``, ``?`` exactly one; case-sensitive; the leading ``/`` optional), else
  the default. A method the behaviour does not allow gets CloudFront's 403.
- The behaviour's target is an origin or an origin group. For a group, a response whose status is in
  ``FailoverCriteria.StatusCodes``, a connection failure or a timeout fails a GET, HEAD or OPTIONS over to
  the secondary; any other method gets the primary's answer or error (502, 504), never a replay.
- A custom origin whose domain is a record in a sandbox hosted zone (the write origin, ``origin.<zone>``)
  is resolved by Route 53's answer (sandbox/services/route53/checker.py: health-checked failover, alias chains) and that
  answer is cached for the record's TTL (60 s for an alias to an ALB), as a resolver in front of
  CloudFront would: after a DNS failover the edge keeps the old answer until the TTL runs out. The name it
  leads to (an ALB DNS name) and any other origin domain go through ``rt.resolve(name, port)``, the port
  being HTTPPort (80) or HTTPSPort (443) per OriginProtocolPolicy; unknown names are connection failures.
- Origin timeouts per origin: ConnectionAttempts connections of ConnectionTimeout each, then
  OriginReadTimeout for the first byte and between reads. A read timeout is retried within the remaining
  connection attempts for GET/HEAD/OPTIONS only. Connection refused or unresolvable: 502; timeouts: 504,
  with CloudFront's error page.
- An S3 origin (a bucket's domain name) is answered from moto's S3 backend (GET/HEAD): through origin
  access control the bucket policy must allow ``cloudfront.amazonaws.com`` (Condition AWS:SourceAccount /
  AWS:SourceArn / aws:SecureTransport evaluated) to ``s3:GetObject``, else 403 AccessDenied; a missing key is
  403 unless the policy also allows ``s3:ListBucket`` (then 404 NoSuchKey), as S3 answers.
- Requests go on with the viewer's method, path, query, headers and body, ``X-Forwarded-For`` (the viewer's
  address appended), ``Via`` and ``X-Amz-Cf-Id``; ``Host`` is the origin's domain name unless the
  behaviour's origin request policy is Managed-AllViewer (then the viewer's Host). Responses get ``Via: 1.1
  <id>.cloudfront.net (CloudFront)``, ``X-Cache`` (``Miss from cloudfront``, ``Error from cloudfront`` for
  4xx/5xx) and ``X-Amz-Cf-Pop``.

Where the sandbox differs from AWS:

- Plain HTTP on 127.0.0.1 only: viewer protocol policies ``redirect-to-https`` / ``https-only`` cannot be
  honoured and are served over HTTP; an ``https-only`` origin is still reached on its HTTPS port, in plain
  HTTP (the sandbox has no TLS).
- Nothing is cached: every request goes to the origin (the project's dynamic behaviours use
  CachingDisabled; its static behaviour would be cached by CloudFront). Every viewer header is forwarded
  whatever the origin request policy says (the project uses AllViewerExceptHostHeader, which does that).
- Request and response bodies are buffered whole (no streaming, no WebSocket upgrade, no Range requests on
  S3 origins); Lambda@Edge / CloudFront Functions, geo restrictions, signed URLs and custom error
  responses are not applied. S3 objects encrypted with KMS are served without checking CloudFront's
  kms:Decrypt permission.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import http
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

from sandbox import config, httpclient, runtime
from sandbox.edge.distributions import (
    S3_DOMAIN,
    Routing,
    _Cached,
    host_name,
)
from sandbox.edge.distributions import BehaviourSpec as BehaviourSpec  # re-exported: the tests build specs
from sandbox.edge.distributions import DistSpec as DistSpec
from sandbox.edge.distributions import GroupSpec as GroupSpec
from sandbox.edge.distributions import OriginSpec as OriginSpec
from sandbox.edge.distributions import compile_distribution as compile_distribution
from sandbox.edge.distributions import path_regex as path_regex

log = logging.getLogger("sandbox.edge")

POP = "SBX1-C1"  # the sandbox's one "edge location" (AWS names them like IAD89-C1)
FAILOVER_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
    }
)
MAX_BODY_BYTES = 64 * 1024 * 1024
VIEWER_IDLE_S = 60.0
MAX_IDLE_PER_ORIGIN = 256


# -- responses ----------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    reason: str = ""
    generated: bool = False  # made by the edge (an error page), not by an origin


class OriginFailure(Exception):
    """The origin could not be reached or did not answer: CloudFront answers 502 or 504 and may fail over."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Stale(Exception):
    """A pooled connection the origin had already closed: try a fresh one."""


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def error_page(status: int, message: str, request_id: str) -> Response:
    """CloudFront's own error page (text/html), as viewers see it."""
    body = (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">\n'
        '<HTML><HEAD><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=iso-8859-1">\n'
        "<TITLE>ERROR: The request could not be satisfied</TITLE>\n</HEAD><BODY>\n"
        f"<H1>{status} ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n"
        f'<HR noshade size="1px">\n{message}\n<BR clear="all">\n<HR noshade size="1px">\n<PRE>\n'
        f"Generated by cloudfront (CloudFront)\nRequest ID: {request_id}\n</PRE>\n<ADDRESS>\n</ADDRESS>\n</BODY></HTML>"
    ).encode()
    headers = [("Server", "CloudFront"), ("Date", formatdate(usegmt=True)), ("Content-Type", "text/html")]
    return Response(status, headers, body, generated=True)


# What CloudFront answers (403) for a Host that no distribution lists as an alternate domain name.
UNKNOWN_CNAME = (
    "Bad request.\nWe can't connect to the server for this app or website at this time. There might be too much "
    "traffic or a configuration error. Try again later, or contact the app or website owner.\n"
    '<BR clear="all">\nIf you provide content to customers through CloudFront, you can find steps to troubleshoot '
    "and help prevent this error by reviewing the CloudFront documentation."
)


def misdirected(host: str, chain: tuple[str, ...]) -> Response:
    """421 for a name in the sandbox's zones that does not lead to a distribution: a viewer would not reach
    CloudFront at all, so the edge says so rather than serve some distribution."""
    steps = "; ".join(chain) or "no answer"
    text = (
        f"421 Misdirected Request: {host} does not resolve to a CloudFront distribution in the sandbox's "
        f"Route 53 ({steps}). Point it at the distribution (an alias A record to its domain name, or a CNAME) "
        "and list it in the distribution's Aliases.\n"
    )
    return Response(421, [("Content-Type", "text/plain")], text.encode(), generated=True)


def _s3_error(status: int, code: str, message: str, request_id: str) -> Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>{request_id[:16]}</RequestId><HostId>{request_id}</HostId></Error>"
    ).encode()
    return Response(status, [("Content-Type", "application/xml"), ("Server", "AmazonS3")], body)


# -- the S3 origin ------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, oac: bool, oai: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if oac and "cloudfront.amazonaws.com" in _as_list(principal.get("Service")):
        return True
    aws = [str(p) for p in _as_list(principal.get("AWS"))]
    if "*" in aws:
        return True
    return bool(oai) and any(oai.rsplit("/", 1)[-1] in p for p in aws)


def _conditions_hold(conditions: Any, context: dict[str, str]) -> bool:
    if not conditions:
        return True
    if not isinstance(conditions, dict):
        return False
    for operator, tests in conditions.items():
        if not isinstance(tests, dict):
            return False
        for key, expected in tests.items():
            actual = context.get(key.lower())
            values = [str(v) for v in _as_list(expected)]
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif operator in ("StringLike", "ArnLike"):
                ok = actual is not None and any(fnmatch.fnmatchcase(actual, v) for v in values)
            elif operator == "StringNotEquals":
                ok = actual not in values
            elif operator == "Bool":
                ok = actual is not None and actual.lower() in [v.lower() for v in values]
            else:
                return False  # an operator the sandbox does not evaluate: the statement does not apply
            if not ok:
                return False
    return True


def bucket_policy_allows(
    policy: bytes | None, action: str, resource: str, context: dict[str, str], oac: bool, oai: str
) -> bool:
    """Whether a bucket policy lets CloudFront (through OAC, an OAI, or anonymously) do action on resource."""
    if not policy:
        return False
    try:
        document = json.loads(policy)
    except ValueError:
        return False
    allowed = False
    for statement in _as_list(document.get("Statement")):
        if not isinstance(statement, dict) or not _principal_matches(statement.get("Principal"), oac, oai):
            continue
        actions = [str(a).lower() for a in _as_list(statement.get("Action"))]
        resources = [str(r) for r in _as_list(statement.get("Resource"))]
        if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            continue
        if not _conditions_hold(statement.get("Condition"), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def s3_fetch(dist: DistSpec, origin: OriginSpec, method: str, path: str, request_id: str) -> Response:
    """What S3 answers CloudFront for an object of an S3 origin (signed with OAC when it has one)."""
    from moto.s3.models import s3_backends

    match = S3_DOMAIN.match(origin.domain)
    bucket_name = match.group("bucket") if match else origin.domain.split(".", 1)[0]
    if method not in ("GET", "HEAD"):
        return _s3_error(403, "AccessDenied", "Access Denied", request_id)
    key_name = unquote((origin.path + path).lstrip("/"))
    backend = bucket = None
    for account_id in list(s3_backends.keys()):
        candidate = s3_backends[account_id]["aws"]
        bucket = candidate.buckets.get(bucket_name)
        if bucket is not None:
            backend = candidate
            break
    if backend is None or bucket is None:
        return _s3_error(404, "NoSuchBucket", "The specified bucket does not exist", request_id)
    context = {
        "aws:sourceaccount": dist.account_id,
        "aws:sourcearn": dist.arn,
        "aws:securetransport": "true",  # CloudFront reaches S3 over HTTPS
    }
    oac = bool(origin.oac_id)
    arn = f"arn:aws:s3:::{bucket_name}"
    if not bucket_policy_allows(bucket.policy, "s3:GetObject", f"{arn}/{key_name}", context, oac, origin.oai):
        return _s3_error(403, "AccessDenied", "Access Denied", request_id)
    key = backend.get_object(bucket_name, key_name)
    if key is None:
        if bucket_policy_allows(bucket.policy, "s3:ListBucket", arn, context, oac, origin.oai):
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.", request_id)
        return _s3_error(403, "AccessDenied", "Access Denied", request_id)
    headers = [
        ("Content-Type", str(key.metadata.get("Content-Type") or "binary/octet-stream")),
        ("ETag", key.etag),
        ("Last-Modified", key.last_modified_RFC1123),
        ("Accept-Ranges", "bytes"),
        ("Server", "AmazonS3"),
    ]
    for name in ("Cache-Control", "Content-Encoding", "Content-Disposition", "Content-Language", "Expires"):
        if key.metadata.get(name):
            headers.append((name, str(key.metadata[name])))
    if key.encryption:
        headers.append(("x-amz-server-side-encryption", str(key.encryption)))
    body = key.value
    if method == "HEAD":
        headers.append(("Content-Length", str(len(body))))
        body = b""
    return Response(200, headers, body)


# -- the edge server ------------------------------------------------------------------------------------


@dataclass
class Stats:
    requests: int = 0
    failovers: int = 0
    origin_failures: int = 0
    generated_errors: int = 0
    by_origin: dict[str, int] = field(default_factory=dict)


class Edge(Routing):
    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        self.pool = httpclient.Pool(MAX_IDLE_PER_ORIGIN)
        self.stats = Stats()
        self._server: asyncio.base_events.Server | None = None
        self._lock = threading.Lock()
        self._dns: dict[str, _Cached] = {}
        self._zone_names: dict[str, tuple[bool, float]] = {}
        self._compiled: dict[tuple[str, str, int], DistSpec] = {}
        self._view: list[DistSpec] = []
        self._view_at = 0.0
        self._connections: set[asyncio.StreamWriter] = set()

    # -- lifecycle

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve_connection, config.HOST, self.rt.edge_port, reuse_address=True, backlog=1024
            )
        except OSError as exc:
            raise RuntimeError(
                f"the edge cannot listen on {config.HOST}:{self.rt.edge_port} ({exc}): stop whatever uses that port "
                "or choose another with SANDBOX_EDGE_PORT=<port>"
            ) from exc
        log.info("edge (CloudFront stand-in) listening on http://%s:%d", config.HOST, self.rt.edge_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._connections):
            writer.close()
        self.pool.close_all()

    def reset(self) -> None:
        with self._lock:
            self._dns.clear()
            self._zone_names.clear()
            self._compiled.clear()
            self._view, self._view_at = [], 0.0
        self.stats = Stats()
        self.rt.aio.call_soon_threadsafe(self.pool.close_all)

    # -- serving viewers

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        peer = writer.get_extra_info("peername")
        viewer_ip = peer[0] if peer else "127.0.0.1"
        try:
            while True:
                try:
                    async with asyncio.timeout(VIEWER_IDLE_S):
                        request_line, headers = await httpclient.read_head(reader)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    writer.write(_render(Response(431, [], b""), "HTTP/1.1", False, False))
                    return
                except ValueError:
                    writer.write(_render(Response(400, [], b""), "HTTP/1.1", False, False))
                    return
                try:
                    method, target, version = request_line.split(" ", 2)
                except ValueError:
                    writer.write(
                        _render(
                            Response(400, [("Content-Type", "text/plain")], b"Bad Request\n"), "HTTP/1.1", False, False
                        )
                    )
                    return
                connection = (httpclient.header(headers, "connection") or "").lower()
                keep_alive = ("close" not in connection) if version == "HTTP/1.1" else ("keep-alive" in connection)
                try:
                    body = await self._read_request_body(reader, writer, headers)
                except ValueError as exc:
                    status = 413 if "large" in str(exc) else 400
                    writer.write(
                        _render(
                            Response(status, [("Content-Type", "text/plain")], f"{exc}\n".encode()),
                            version,
                            False,
                            False,
                        )
                    )
                    return
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                response = await self.handle(method.upper(), target, headers, body, viewer_ip)
                writer.write(_render(response, version, method.upper() == "HEAD", keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except ConnectionError:
            return
        except Exception:
            log.exception("edge: connection from %s failed", viewer_ip)
        finally:
            self._connections.discard(writer)
            writer.close()

    @staticmethod
    async def _read_request_body(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: list[tuple[str, str]]
    ) -> bytes:
        length = httpclient.header(headers, "content-length")
        chunked = "chunked" in (httpclient.header(headers, "transfer-encoding") or "").lower()
        if not chunked and not length:
            return b""
        if (httpclient.header(headers, "expect") or "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            return await httpclient.read_chunked(reader, None, MAX_BODY_BYTES)
        size = int(length or "0")
        if size < 0:
            raise ValueError("negative Content-Length")
        if size > MAX_BODY_BYTES:
            raise ValueError(f"request body too large ({size} bytes; the sandbox edge buffers up to {MAX_BODY_BYTES})")
        return await reader.readexactly(size)

    async def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, viewer_ip: str
    ) -> Response:
        self.stats.requests += 1
        request_id = base64.urlsafe_b64encode(os.urandom(42)).decode()
        host = httpclient.header(headers, "host") or ""
        choice = self.choose(host)
        dist = choice.dist
        if choice.refusal == "misdirected":
            return misdirected(host_name(host), choice.chain)
        if choice.refusal == "unknown-cname":
            assert dist is not None
            return self._finish(dist, error_page(403, UNKNOWN_CNAME, request_id), request_id)
        if dist is None:
            if choice.disabled:
                text = (
                    f"The sandbox's CloudFront distribution {', '.join(choice.disabled)} is disabled: enable it "
                    "(cdn_enabled: true) and run `make deploy` again.\n"
                )
            else:
                text = (
                    "The sandbox has no CloudFront distribution to serve: run `make deploy` (site.yml against the "
                    "sandbox) first.\n"
                )
            return Response(
                503, [("Content-Type", "text/plain"), ("Server", "CloudFront")], text.encode(), generated=True
            )
        if "://" in target.split("?", 1)[0]:  # absolute-form request target (a proxy-style client)
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        elif not target.startswith("/"):
            target = "/" + target
        path = target.split("?", 1)[0]
        behaviour = dist.behaviour_for(path)
        if method not in behaviour.methods:
            response = error_page(
                403,
                "This distribution is not configured to allow the HTTP request method that was used for this request. "
                "The distribution supports only cachable requests.",
                request_id,
            )
            return self._finish(dist, response, request_id)
        group = dist.groups.get(behaviour.target)
        members = [group.primary, group.secondary] if group else [behaviour.target]
        response: Response | None = None
        failure: OriginFailure | None = None
        for index, origin_id in enumerate(members):
            origin = dist.origins.get(origin_id)
            if origin is None:
                failure = OriginFailure(502, f"The origin {origin_id} is not defined in distribution {dist.id}.")
                continue
            self.stats.by_origin[origin_id] = self.stats.by_origin.get(origin_id, 0) + 1
            try:
                response, failure = (
                    await self._fetch(dist, origin, behaviour, method, target, headers, body, viewer_ip, request_id),
                    None,
                )
            except OriginFailure as exc:
                self.stats.origin_failures += 1
                response, failure = None, exc
            last = index == len(members) - 1
            if last or group is None or method not in FAILOVER_METHODS:
                break
            if failure is None and response is not None and response.status not in group.codes:
                break
            self.stats.failovers += 1
        if response is None:
            assert failure is not None
            response = error_page(failure.status, str(failure), request_id)
        return self._finish(dist, response, request_id)

    def _finish(self, dist: DistSpec, response: Response, request_id: str) -> Response:
        if response.generated:
            self.stats.generated_errors += 1
        cache = "Error from cloudfront" if response.status >= 400 else "Miss from cloudfront"
        response.headers += [
            ("X-Cache", cache),
            ("Via", dist.via),
            ("X-Amz-Cf-Pop", POP),
            ("X-Amz-Cf-Id", request_id),
        ]
        return response

    async def _fetch(
        self,
        dist: DistSpec,
        origin: OriginSpec,
        behaviour: BehaviourSpec,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        viewer_ip: str,
        request_id: str,
    ) -> Response:
        if origin.s3:
            path = target.split("?", 1)[0]
            return s3_fetch(dist, origin, method, path, request_id)
        addr, name = self.resolve_origin(origin)
        if addr is None:
            raise OriginFailure(
                502,
                f"CloudFront wasn't able to connect to the origin. (The sandbox has no listener for {name}:{origin.port}.)",
            )
        out = [
            (k, v)
            for k, v in headers
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("host", "x-forwarded-for", "via")
        ]
        forwarded_for = httpclient.header(headers, "x-forwarded-for")
        via = httpclient.header(headers, "via")
        out += [
            (
                "Host",
                (httpclient.header(headers, "host") or origin.domain) if behaviour.forward_host else origin.domain,
            ),
            ("X-Forwarded-For", f"{forwarded_for}, {viewer_ip}" if forwarded_for else viewer_ip),
            ("Via", f"{via}, {dist.via}" if via else dist.via),
            ("X-Amz-Cf-Id", request_id),
            *origin.custom_headers,
        ]
        if body or method in ("POST", "PUT", "PATCH"):
            out.append(("Content-Length", str(len(body))))
        path = origin.path + target if target.startswith("/") else origin.path + "/" + target
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out) + "\r\n"
        request = head.encode("latin-1") + body
        return await self._exchange(addr, origin, method, request)

    async def _exchange(self, addr: tuple[str, int], origin: OriginSpec, method: str, request: bytes) -> Response:
        failure = OriginFailure(502, "CloudFront wasn't able to connect to the origin.")
        attempt = 0
        stale_retry = True
        while attempt < origin.attempts:
            conn = self.pool.take(addr, origin.keepalive_timeout)
            reused = conn is not None
            if conn is None:
                attempt += 1
                try:
                    conn = await httpclient.connect(addr, origin.connect_timeout, config.EDGE_SOURCE)
                except TimeoutError:
                    failure = OriginFailure(
                        504, "CloudFront attempted to establish a connection with the origin, but it timed out."
                    )
                    continue
                except OSError:
                    failure = OriginFailure(502, "CloudFront wasn't able to connect to the origin.")
                    continue
            try:
                response, reusable = await self._round_trip(conn, origin, method, request, reused)
            except _Stale:
                conn.close()
                # The origin went away (restart, outage): its other idle connections are just as dead.
                self.pool.drop(addr)
                if stale_retry:
                    stale_retry = False
                    continue
                raise OriginFailure(502, "CloudFront wasn't able to connect to the origin.") from None
            except TimeoutError:
                conn.close()
                failure = OriginFailure(
                    504,
                    f"The origin did not respond within the origin read timeout ({origin.read_timeout:g} s).",
                )
                if method in FAILOVER_METHODS:
                    continue
                raise failure from None
            except (
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ConnectionError,
                ValueError,
                IndexError,
            ) as exc:
                conn.close()
                raise OriginFailure(
                    502, f"The origin closed the connection or sent an invalid response ({exc})."
                ) from None
            if reusable:
                self.pool.give(addr, conn)
            else:
                conn.close()
            return response
        raise failure

    @staticmethod
    async def _round_trip(
        conn: httpclient.Conn, origin: OriginSpec, method: str, request: bytes, reused: bool
    ) -> tuple[Response, bool]:
        loop = asyncio.get_running_loop()
        reader = conn.reader
        try:
            conn.writer.write(request)
            await conn.writer.drain()
        except ConnectionError:
            if reused:
                raise _Stale from None
            raise
        async with asyncio.timeout(origin.read_timeout) as deadline:

            def progress() -> None:
                deadline.reschedule(loop.time() + origin.read_timeout)

            while True:
                try:
                    status_line, headers = await httpclient.read_head(reader)
                except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                    # Nothing at all came back on a connection we had kept: the origin closed it while idle.
                    if reused and (not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial):
                        raise _Stale from None
                    raise
                version, _, rest = status_line.partition(" ")
                code, _, reason = rest.partition(" ")
                status = int(code)
                if status >= 200 or status == 101:
                    break
                progress()  # 1xx interim responses: skip them
            progress()
            no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
            length = httpclient.header(headers, "content-length")
            chunked = "chunked" in (httpclient.header(headers, "transfer-encoding") or "").lower()
            connection = (httpclient.header(headers, "connection") or "").lower()
            reusable = (version == "HTTP/1.1" and "close" not in connection) or "keep-alive" in connection
            if no_body:
                body = b""
            elif chunked:
                body = await httpclient.read_chunked(reader, progress, MAX_BODY_BYTES)
            elif length is not None:
                size = int(length)
                if size > MAX_BODY_BYTES:
                    raise ValueError("response body too large")
                body = await reader.readexactly(size)
            else:
                parts = []
                while chunk := await reader.read(65536):
                    parts.append(chunk)
                    progress()
                body = b"".join(parts)
                reusable = False
        kept = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        if method == "HEAD" and length is not None:
            kept.append(("Content-Length", length))
        return Response(status, kept, body, reason=reason), reusable


def _render(response: Response, version: str, head_only: bool, keep_alive: bool) -> bytes:
    reason = response.reason or _reason(response.status)
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{k}: {v}" for k, v in response.headers]
    # A HEAD response keeps the origin's Content-Length (the body it would have sent); 204/304/1xx have none.
    origin_length = head_only and any(k.lower() == "content-length" for k, _ in response.headers)
    if not origin_length and response.status not in (204, 304) and not 100 <= response.status < 200:
        lines.append(f"Content-Length: {len(response.body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


_EDGE: Edge | None = None


def get() -> Edge:
    global _EDGE
    if _EDGE is None:
        _EDGE = Edge(runtime.get())
    return _EDGE

"""The data plane of the sandbox's Application Load Balancers: HTTP listeners, routing, target health.

sandbox/services/elbv2/provider.py keeps this in step with what the ELBv2 API recorded (it hands
``Balancer.apply`` plain snapshots: ``ListenerSpec`` and ``TargetGroupSpec``); everything here runs on
the runtime's shared asyncio loop (``rt.aio``) and owns its state there, so it needs no locks.

- **Listeners.** Each listener is an HTTP/1.1 server on 127.0.0.1 (a port fixed for the listener's
  life), written on asyncio protocols with httptools' C parser: it sits on the hot path of load tests
  (edge -> ALB -> app), so there is no framework, no task per request, and upstream connections are
  kept alive in a pool per target address (a pooled connection the target closed just as it was
  reused is retried once on a new one). Request bodies are read in full before they are forwarded
  (with a Content-Length; ``Expect: 100-continue`` is answered here); response bodies stream back
  (re-chunked when the target gave no length), with back-pressure from slow clients. Pipelined
  requests are answered in order. Client connections idle for ``idle_timeout.timeout_seconds`` are
  closed, as ALB does. WebSocket/``Upgrade`` requests are not supported (answered 400).
- **Security groups.** Each accepted connection is checked against the load balancer's security groups
  (``admits``: sandbox/services/elbv2/access.py); a client no ingress rule admits is never read or
  answered, as AWS drops its SYN, and its connection is closed when the client closes it or after
  ``HOLD_S`` (``Balancer._sweep_held``). The edge and Route 53's checkers connect from their own loopback
  addresses (sandbox/config.py), which the AWS-managed prefix lists hold.
- **Routing** as an ALB does it: rules by priority (path-pattern, host-header, http-header,
  http-request-method, query-string and source-ip conditions; ``*`` and ``?`` wildcards), then the
  default action. ``forward`` (one target group, or a weighted ``ForwardConfig``) goes round robin to
  the group's healthy targets; with none healthy it fails open across the unhealthy ones, as AWS does;
  with nothing routable (no targets, or only targets still in their initial health checks, which AWS
  does not route to either) the answer is 503. ``redirect`` fills the ``#{protocol}``, ``#{host}``,
  ``#{port}``, ``#{path}``, ``#{query}`` placeholders; ``fixed-response`` answers as configured.
  Authentication actions cannot be emulated and are skipped. Targets get ``X-Forwarded-For`` (per the
  ``routing.http.xff_header_processing.mode`` attribute), ``X-Forwarded-Proto``, ``X-Forwarded-Port``
  and ``X-Amzn-Trace-Id`` (kept when the client sent one with a Root); Host is passed unchanged.
  Errors are the ALB's own (status phrases and HTML bodies included): 502 when the target refuses
  the connection, breaks it or answers garbage (or its address does not resolve in the sandbox), 504
  when the target sends nothing for the load balancer's ``idle_timeout.timeout_seconds`` (checked
  once a second). Responses
  the load balancer makes itself (errors, redirects, fixed responses) carry ``Server: awselb/2.0``;
  proxied responses carry the target's headers only.
- **Target health.** Every registered target of a target group that a load balancer uses is probed
  every ``HealthCheckIntervalSeconds`` (the first probe goes out at registration) with
  ``GET <path>`` through the sandbox's name map, within ``HealthCheckTimeoutSeconds``, and matched
  against ``Matcher.HttpCode``. States and reasons are DescribeTargetHealth's: ``initial``
  (``Elb.RegistrationInProgress`` until the first probe answers, then ``Elb.InitialHealthChecking``),
  ``healthy``, ``unhealthy`` (``Target.ResponseCodeMismatch``, ``Target.Timeout``,
  ``Target.FailedHealthChecks``), ``unused`` (``Target.NotInUse`` while no listener forwards to the
  group), ``unavailable`` (``Target.HealthCheckDisabled``) and ``draining``
  (``Target.DeregistrationInProgress`` for ``deregistration_delay.timeout_seconds``, then gone).
  Transitions follow the AWS guide: a new target is healthy after ONE passing check ("After your
  target is registered, it must pass one health check to be considered healthy") and unhealthy after
  ``UnhealthyThresholdCount`` consecutive failures; an unhealthy target needs ``HealthyThresholdCount``
  consecutive passes to come back; a healthy one goes after ``UnhealthyThresholdCount`` failures.

Where the sandbox cannot follow AWS: HTTPS listeners serve plain HTTP (the sandbox has no
certificates), and HTTPS health checks are made in plain HTTP; HTTP/2 and gRPC are not spoken; a target whose address the sandbox
does not know fails its health checks as ``Target.Timeout`` (after the timeout, as an address nothing
answers on would) but a request sent to it gets 502 at once rather than a 504 after ALB's 10 s
connect timeout; stickiness, slow start and the least-outstanding-requests algorithm are not modelled.

The parts: sandbox/services/elbv2/rules.py (the request, rule conditions, actions, the snapshots and the
responses the load balancer makes itself), sandbox/services/elbv2/proxy.py (the connections to targets:
the pool, the upstream parser, the exchange relaying a response) and sandbox/services/elbv2/health.py
(target health); this module holds the client side (connections, listeners) and the ``Balancer`` that
combines them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools

from sandbox.services.elbv2 import metrics as alb_metrics
from sandbox.services.elbv2.health import HealthCheck as HealthCheck  # re-exported: the provider and tests build specs
from sandbox.services.elbv2.health import TargetGroupSpec as TargetGroupSpec
from sandbox.services.elbv2.health import TargetHealth, _Group, _Target
from sandbox.services.elbv2.proxy import _HOP, Address, _Exchange, _Pool
from sandbox.services.elbv2.rules import Action, ListenerSpec, _error_page, _generated, _Request, redirect_location

log = logging.getLogger("sandbox.alb")

HOST = "127.0.0.1"
Resolver = Callable[[str, int], Address | None]
# (scope, load balancer ARN, listener port, peer address) -> admitted by the load balancer's security
# groups? (sandbox/services/elbv2/access.py; None admits everyone: a data plane without moto, in tests)
Admits = Callable[[tuple[str, str], str, int, str], bool]

# A client no security group rule admits gets no answer, as a dropped SYN gets none on AWS: its
# connection is held, unread and unanswered, until it closes or this many seconds have passed.
HOLD_S = 60.0
_PEER_GONE = getattr(select, "POLLRDHUP", 0x2000) | select.POLLHUP | select.POLLERR | select.POLLNVAL

# -- the client side ---------------------------------------------------------------------------------------

# Request headers the load balancer sets or drops itself.
_REQUEST_SPECIAL = _HOP | {
    b"content-length",
    b"expect",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-port",
    b"x-amzn-trace-id",
}
_VALID_HEADER_NAME = re.compile(rb"[A-Za-z0-9-]+")
_METHODS_WITH_BODY = frozenset({b"POST", b"PUT", b"PATCH"})


def _trace_id() -> bytes:
    return b"Root=1-%08x-%s" % (int(time.time()), os.urandom(12).hex().encode())


class _ClientConnection(asyncio.Protocol):
    """A connection from a client to a listener: parses requests, one at a time (pipelining queued)."""

    def __init__(self, listener: _Listener) -> None:
        self.listener = listener
        self.balancer = listener.balancer
        self.loop = listener.balancer.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Request] = deque()
        self.exchange: _Exchange | None = None
        self.busy = False
        self.closed = False
        self.reading_paused = False
        self.eof = False
        self.last_active = self.loop.time()
        self.client_ip = ""
        self.client_port = 0
        self.held_until = 0.0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A response head and body often leave in two writes: without this, Nagle's algorithm
            # holds the second until the client's delayed ACK (~40 ms per request).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.client_ip, self.client_port = peer[0], peer[1]
        admits = self.balancer.admits
        spec = self.listener.spec
        if admits is not None and not admits(spec.scope, spec.load_balancer_arn, spec.port, self.client_ip):
            self._hold()
            return
        self.listener.connections.add(self)

    def _hold(self) -> None:
        """Refused by the security groups: read nothing, answer nothing (Balancer._sweep_held closes it)."""
        self.closed = True
        self.held_until = self.loop.time() + HOLD_S
        if self.transport is not None:
            self.transport.pause_reading()
        self.listener.held.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.connections.discard(self)
        self.listener.held.discard(self)
        if self.exchange is not None:
            self.exchange.client_gone()
            self.exchange = None

    def data_received(self, data: bytes) -> None:
        if self.closed:  # bytes after a response that closes the connection: nobody will answer them
            return
        self.last_active = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._bad_request()
        except httptools.HttpParserError:
            self._bad_request()

    def eof_received(self) -> bool:
        """The client half-closed: answer what it already asked (keep the transport open), then close."""
        self.eof = True
        return self.busy or bool(self.queue)

    def _bad_request(self) -> None:
        if self.closed:
            return
        if not self.busy and self.transport is not None:
            self.transport.write(_generated(400, _error_page(400), b"text/html", keep_alive=False))
            self.transport.close()
            self.closed = True
        else:
            self.abort()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        for name, value in self._headers:
            if name.lower() == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
                # The body is read here before forwarding, so the client may send it now.
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = _Request(
            self.parser.get_method(),
            self._url,
            self._headers,
            b"".join(self._body),
            self.parser.should_keep_alive(),
            self.parser.get_http_version(),
        )
        if self.busy:
            self.queue.append(request)
            if len(self.queue) > 16 and not self.reading_paused and self.transport is not None:
                self.reading_paused = True
                self.transport.pause_reading()
        else:
            self._dispatch(request)

    def _dispatch(self, request: _Request) -> None:
        self.busy = True
        self.balancer.dispatch(self, request)

    # flow control: a slow client slows the target down instead of filling memory
    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.pause()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.resume()

    # results
    def send(self, data: bytes, keep_alive: bool) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)
        self.finish(keep_alive)

    def reply_error(self, status: int, request: _Request) -> None:
        self.balancer.traffic.generated(self.listener.spec.load_balancer_arn, status)
        self.send(
            _generated(
                status, _error_page(status), b"text/html", request.keep_alive, head_only=request.method == b"HEAD"
            ),
            request.keep_alive,
        )

    def finish(self, keep_alive: bool) -> None:
        self.busy = False
        self.exchange = None
        if self.closed or self.transport is None:
            return
        if not keep_alive or (self.eof and not self.queue):
            self.transport.close()
            self.closed = True
            return
        self.last_active = self.loop.time()
        if self.queue:
            if self.reading_paused and len(self.queue) <= 4:
                self.reading_paused = False
                self.transport.resume_reading()
            self._dispatch(self.queue.popleft())

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class _Listener:
    def __init__(self, balancer: Balancer, spec: ListenerSpec) -> None:
        self.balancer = balancer
        self.spec = spec
        self.local_port = 0
        self.server: asyncio.AbstractServer | None = None
        self.connections: set[_ClientConnection] = set()
        self.held: set[_ClientConnection] = set()  # refused by the security groups, unanswered
        self._spec_headers = b""
        self.update(spec)

    def update(self, spec: ListenerSpec) -> None:
        self.spec = spec
        self._spec_headers = b"X-Forwarded-Proto: %s\r\nX-Forwarded-Port: %d\r\n" % (
            spec.protocol.lower().encode(),
            spec.port,
        )

    async def open(self) -> None:
        if self.server is not None:
            return
        sock = _bind(self.local_port)
        if self.local_port and sock.getsockname()[1] != self.local_port:
            log.warning(
                "listener %s: port %d was taken, now on %d", self.spec.arn, self.local_port, sock.getsockname()[1]
            )
        self.local_port = sock.getsockname()[1]
        self.server = await self.balancer.loop.create_server(
            lambda: _ClientConnection(self), sock=sock, backlog=_BACKLOG
        )

    def close(self) -> None:
        """Stop listening (new connections are refused) and cut the open ones."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in [*self.connections, *self.held]:
            conn.abort()
        self.connections.clear()
        self.held.clear()

    def route(self, request: _Request, client_ip: str) -> Action:
        rules = self.spec.rules
        if len(rules) == 1:
            return rules[0].action
        for rule in rules:
            if all(cond(request, client_ip) for cond in rule.conditions):
                return rule.action
        return rules[-1].action

    def upstream_request(self, request: _Request, conn: _ClientConnection) -> bytes:
        spec = self.spec
        parts = [b"%s %s HTTP/1.1\r\n" % (request.method, request.url)]
        forwarded_for: bytes | None = None
        trace: bytes | None = None
        connection_tokens: set[bytes] = set()
        for name, value in request.headers:
            lower = name.lower()
            if lower in _REQUEST_SPECIAL:
                if lower == b"x-forwarded-for":
                    forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
                elif lower == b"x-amzn-trace-id":
                    trace = value
                elif lower == b"connection":
                    connection_tokens.update(t.strip().lower() for t in value.split(b","))
                continue
            if spec.drop_invalid_headers and not _VALID_HEADER_NAME.fullmatch(name):
                continue
            parts.append(b"%s: %s\r\n" % (name, value))
        if connection_tokens - _HOP:
            parts = [parts[0]] + [p for p in parts[1:] if p.split(b":", 1)[0].lower() not in connection_tokens]
        if spec.xff_mode == "append":
            client = conn.client_ip.encode()
            if spec.xff_client_port:
                client += b":%d" % conn.client_port
            forwarded_for = client if forwarded_for is None else forwarded_for + b", " + client
        elif spec.xff_mode == "remove":
            forwarded_for = None
        if forwarded_for is not None:
            parts.append(b"X-Forwarded-For: %s\r\n" % forwarded_for)
        parts.append(self._spec_headers)
        parts.append(b"X-Amzn-Trace-Id: %s\r\n" % (trace if trace and b"Root=" in trace else _trace_id()))
        body = request.body
        if body or request.method in _METHODS_WITH_BODY:
            parts.append(b"Content-Length: %d\r\n" % len(body))
        parts.append(b"\r\n")
        parts.append(body)
        return b"".join(parts)


_BACKLOG = 1024  # load tests open many connections at once; the kernel caps it at somaxconn


def _bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1: the given port if it is free, else one the kernel picks."""
    # proto IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        if not port:
            sock.close()
            raise
        sock.bind((HOST, 0))
    sock.listen(_BACKLOG)
    sock.setblocking(False)
    return sock


# -- the balancer ------------------------------------------------------------------------------------------


class Balancer(TargetHealth):
    """Every listener and target group of every ALB the API created, on one asyncio loop.

    Create it on its loop (``await Balancer.create(...)``); call its coroutines there (``rt.call``).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        resolve: Resolver,
        publish: Callable[[str, int, int], None],
        unpublish: Callable[[str, int], None],
        admits: Admits | None = None,
    ) -> None:
        self.loop = loop
        self.resolve = resolve
        self.publish = publish
        self.unpublish = unpublish
        self.admits = admits
        self.listeners: dict[str, _Listener] = {}
        self.groups: dict[str, _Group] = {}
        self.pool = _Pool()
        self.active: set[_Exchange] = set()
        self.dark: set[str] = set()
        self._wake = asyncio.Event()
        self.traffic = alb_metrics.Traffic()
        self._tasks: list[asyncio.Task[None]] = []
        self._probes: set[asyncio.Task[None]] = set()

    @classmethod
    async def create(
        cls,
        resolve: Resolver,
        publish: Callable[[str, int, int], None],
        unpublish: Callable[[str, int], None],
        admits: Admits | None = None,
    ) -> Balancer:
        balancer = cls(asyncio.get_running_loop(), resolve, publish, unpublish, admits)
        balancer._tasks = [
            balancer.loop.create_task(balancer._health_loop()),
            balancer.loop.create_task(balancer._sweep_loop()),
            balancer.loop.create_task(balancer._metrics_loop()),
        ]
        return balancer

    # -- configuration -------------------------------------------------------------------------------

    async def apply(self, scope: tuple[str, str], listeners: list[ListenerSpec], groups: list[TargetGroupSpec]) -> None:
        """Make one (account, region)'s listeners and target groups what the API recorded."""
        wanted_groups = {spec.arn for spec in groups}
        for arn, group in list(self.groups.items()):
            if group.spec.scope == scope and arn not in wanted_groups:
                self._drop_group(group)
        for spec in groups:
            self._apply_group(spec)
        wanted = {spec.arn for spec in listeners}
        for arn, listener in list(self.listeners.items()):
            if listener.spec.scope == scope and arn not in wanted:
                self._remove_listener(listener)
        for spec in listeners:
            await self._apply_listener(spec)
        self._wake.set()

    def _apply_group(self, spec: TargetGroupSpec) -> None:
        now = self.loop.time()
        group = self.groups.get(spec.arn)
        if group is None:
            group = self.groups[spec.arn] = _Group(spec)
        group.spec = spec
        registered = dict(spec.targets)
        for target_id, port in spec.targets:
            target = group.targets.get(target_id)
            if target is None or target.port != port or target.state == "draining":
                group.targets[target_id] = _Target(target_id, port, now)
                log.info("target group %s: %s:%d registered", spec.name, target_id, port)
        for target_id, target in list(group.targets.items()):
            if target_id not in registered and target.state != "draining":
                self._deregistered(group, target, now)
        for target in group.targets.values():
            if target.state == "draining":
                continue
            if not spec.attached:
                if target.set("unused", "Target.NotInUse"):
                    target.successes = target.failures = 0
            elif not spec.health.enabled:
                target.set("unavailable", "Target.HealthCheckDisabled")
            elif target.state in ("unused", "unavailable"):
                target.set("initial", "Elb.RegistrationInProgress")
                target.successes = target.failures = 0
                target.next_probe = now
        group.refresh()

    def _deregistered(self, group: _Group, target: _Target, now: float) -> None:
        log.info("target group %s: %s:%d deregistered (draining)", group.spec.name, target.id, target.port)
        if group.spec.deregistration_delay <= 0:
            self._gone(group, target)
            return
        target.set("draining", "Target.DeregistrationInProgress")
        target.drain_until = now + group.spec.deregistration_delay

    def _gone(self, group: _Group, target: _Target) -> None:
        if group.targets.get(target.id) is target:
            del group.targets[target.id]
        addr = self.resolve(target.id, target.port)
        if addr is not None:
            self.pool.drop(addr)

    def _drop_group(self, group: _Group) -> None:
        self.groups.pop(group.spec.arn, None)
        group.targets.clear()
        group.refresh()

    async def _apply_listener(self, spec: ListenerSpec) -> None:
        listener = self.listeners.get(spec.arn)
        if listener is None:
            listener = self.listeners[spec.arn] = _Listener(self, spec)
            await listener.open()
            log.info("listener %s:%d (%s) on %s:%d", spec.dns_name, spec.port, spec.protocol, HOST, listener.local_port)
        else:
            old = listener.spec
            listener.update(spec)
            if (old.dns_name, old.port) != (spec.dns_name, spec.port):
                self.unpublish(old.dns_name, old.port)
        if spec.region in self.dark:
            listener.close()
        self.publish(spec.dns_name, spec.port, listener.local_port)

    def _remove_listener(self, listener: _Listener) -> None:
        self.listeners.pop(listener.spec.arn, None)
        listener.close()
        self.unpublish(listener.spec.dns_name, listener.spec.port)
        log.info("listener %s:%d closed", listener.spec.dns_name, listener.spec.port)

    # -- outages and teardown ----------------------------------------------------------------------------

    async def outage(self, region: str) -> None:
        """A dark region: its listeners refuse connections and its health checks pause."""
        self.dark.add(region)
        for listener in self.listeners.values():
            if listener.spec.region == region:
                listener.close()

    async def restore(self, region: str) -> None:
        self.dark.discard(region)
        now = self.loop.time()
        for listener in self.listeners.values():
            if listener.spec.region == region:
                await listener.open()
                self.publish(listener.spec.dns_name, listener.spec.port, listener.local_port)
        for group in self.groups.values():
            if group.spec.region == region:
                for target in group.targets.values():
                    target.next_probe = min(target.next_probe, now)
        self._wake.set()

    async def close(self) -> None:
        for listener in list(self.listeners.values()):
            self._remove_listener(listener)
        self.groups.clear()
        for exchange in list(self.active):
            exchange.client_gone()
        self.pool.close_all()
        self.dark.clear()

    async def stop(self) -> None:
        await self.close()
        tasks = [*self._tasks, *self._probes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- requests --------------------------------------------------------------------------------------

    def dispatch(self, conn: _ClientConnection, request: _Request) -> None:
        listener = conn.listener
        balancer_arn = listener.spec.load_balancer_arn
        self.traffic.request(balancer_arn)
        action = listener.route(request, conn.client_ip)
        head_only = request.method == b"HEAD"
        if action.kind == "forward":
            chosen = self._choose(action)
            if chosen is None:
                conn.reply_error(503, request)
                return
            group_arn, target = chosen
            self.traffic.routed(balancer_arn, group_arn)
            addr = self.resolve(target[0], target[1])
            if addr is None:
                conn.reply_error(502, request)
                return
            exchange = _Exchange(conn, request, addr, listener.upstream_request(request, conn))
            exchange.group_arn = group_arn
            conn.exchange = exchange
            exchange.start()
        elif action.kind == "redirect":
            status = 302 if action.redirect.get("StatusCode") == "HTTP_302" else 301
            self.traffic.generated(balancer_arn, status)
            location = redirect_location(action.redirect, request, listener.spec).encode("latin-1", "replace")
            conn.send(
                _generated(
                    status,
                    _error_page(status),
                    b"text/html",
                    request.keep_alive,
                    [(b"Location", location)],
                    head_only,
                ),
                request.keep_alive,
            )
        else:
            self.traffic.generated(balancer_arn, action.status)
            conn.send(
                _generated(action.status, action.body, action.content_type.encode(), request.keep_alive, (), head_only),
                request.keep_alive,
            )

    def _choose(self, action: Action) -> tuple[str, tuple[str, int]] | None:
        """(target group ARN, target) for a forward action, or None when nothing is routable."""
        groups = action.groups
        if len(groups) == 1:
            arn = groups[0][0]
        else:
            total = sum(weight for _arn, weight in groups)
            if total <= 0:
                return None
            point = random.random() * total  # noqa: S311 - load spreading, not security
            for arn, weight in groups:  # noqa: B007 - the chosen arn is used after the loop
                point -= weight
                if point < 0 and weight > 0:
                    break
            else:
                return None
        group = self.groups.get(arn)
        target = group.pick() if group is not None else None
        return None if target is None else (arn, target)

    async def _metrics_loop(self) -> None:
        """Every PUBLISH_INTERVAL_S: the interval's AWS/ApplicationELB metrics into CloudWatch."""
        while True:
            await asyncio.sleep(alb_metrics.PUBLISH_INTERVAL_S)
            try:
                self.publish_metrics()
            except Exception:
                log.exception("ALB metrics: publishing failed (will retry)")

    def publish_metrics(self) -> None:
        scopes: dict[str, tuple[str, str]] = {}
        attachments: dict[tuple[str, str], alb_metrics.Attachment] = {}
        for listener in list(self.listeners.values()):
            spec = listener.spec
            scopes[spec.load_balancer_arn] = spec.scope
            for rule in spec.rules:
                for group_arn in rule.action.group_arns():
                    group = self.groups.get(group_arn)
                    if group is None or (spec.load_balancer_arn, group_arn) in attachments:
                        continue
                    states = [t.state for t in group.targets.values()]
                    attachments[(spec.load_balancer_arn, group_arn)] = alb_metrics.Attachment(
                        spec.scope,
                        spec.load_balancer_arn,
                        group_arn,
                        healthy=states.count("healthy"),
                        unhealthy=states.count("unhealthy"),
                        registered=sum(1 for state in states if state != "draining"),
                    )
        alb_metrics.publish(self.traffic, attachments.values(), scopes, lambda region: region in self.dark)

    async def _sweep_loop(self) -> None:
        """Once a second: 504 for targets silent past the idle timeout; close idle client connections."""
        while True:
            await asyncio.sleep(1.0)
            now = self.loop.time()
            for exchange in list(self.active):
                exchange.check_idle(now, exchange.client.listener.spec.idle_timeout)
            for listener in self.listeners.values():
                idle_timeout = listener.spec.idle_timeout
                for conn in list(listener.connections):
                    if not conn.busy and now - conn.last_active >= idle_timeout and conn.transport is not None:
                        conn.closed = True
                        conn.transport.close()
            self._sweep_held(now)

    def _sweep_held(self, now: float) -> None:
        """Close held (refused) connections whose client closed or reset them, or held for HOLD_S.

        They are never read, so asyncio does not see the client go: one poll() for POLLRDHUP does.
        """
        poller = select.poll()
        by_fd: dict[int, _ClientConnection] = {}
        for listener in self.listeners.values():
            for conn in list(listener.held):
                transport = conn.transport
                sock = transport.get_extra_info("socket") if transport is not None else None
                if transport is None or sock is None or now >= conn.held_until:
                    conn.abort()
                    continue
                fd = sock.fileno()
                if fd >= 0:
                    by_fd[fd] = conn
                    poller.register(fd, _PEER_GONE)
        if by_fd:
            for fd, events in poller.poll(0):
                if events & _PEER_GONE and fd in by_fd:
                    by_fd[fd].abort()

    def describe(self) -> dict[str, Any]:
        """What GET /_sandbox/alb shows: listeners with their local addresses, target groups with states.

        Read-only and safe from any thread, like health_rows.
        """
        balancers: dict[str, dict[str, Any]] = {}
        for listener in list(self.listeners.values()):
            spec = listener.spec
            entry = balancers.setdefault(
                spec.load_balancer_arn,
                {
                    "name": spec.load_balancer_name,
                    "arn": spec.load_balancer_arn,
                    "region": spec.region,
                    "dns_name": spec.dns_name,
                    "listeners": [],
                },
            )
            entry["listeners"].append(
                {
                    "arn": spec.arn,
                    "protocol": spec.protocol,
                    "port": spec.port,
                    "local": f"{HOST}:{listener.local_port}",
                    "serving": listener.server is not None,
                    "connections": len(listener.connections),
                    "held": len(listener.held),
                    "rules": len(spec.rules),
                }
            )
        groups = []
        for group in list(self.groups.values()):
            spec = group.spec
            targets = [(t, t.health) for t in list(group.targets.values())]
            groups.append(
                {
                    "name": spec.name,
                    "arn": spec.arn,
                    "region": spec.region,
                    "attached": spec.attached,
                    "health_check": {
                        "path": spec.health.path,
                        "port": spec.health.port,
                        "interval": spec.health.interval,
                        "timeout": spec.health.timeout,
                        "healthy_threshold": spec.health.healthy_threshold,
                        "unhealthy_threshold": spec.health.unhealthy_threshold,
                        "matcher": spec.health.matcher,
                    },
                    "routable": [f"{i}:{p}" for i, p in group.routable],
                    "targets": [
                        {
                            "id": t.id,
                            "port": t.port,
                            "state": health[0],
                            "reason": health[1],
                            "description": health[2],
                            "since": health[3],
                            "local": _fmt(self.resolve(t.id, t.port)),
                        }
                        for t, health in targets
                    ],
                }
            )
        return {
            "load_balancers": list(balancers.values()),
            "target_groups": groups,
            "dark_regions": sorted(set(self.dark)),
            "in_flight": len(self.active),
        }


def _fmt(addr: Address | None) -> str | None:
    return None if addr is None else f"{addr[0]}:{addr[1]}"

"""The ALB listener's connections to targets: the keep-alive pool per target address, the upstream
protocol that parses a target's response (httptools), and the exchange that relays one forwarded
request's response back to its client connection (re-chunked when the target gave no length, with
back-pressure, a retry on a pooled connection the target had closed, 502 and 504 as the ALB answers).

The client side (sandbox/services/elbv2/listener.py) builds the request bytes and starts an exchange
per forwarded request; an exchange reaches back to its client connection and through it to the
balancer's pool, in-flight set and traffic counts (sandbox/services/elbv2/metrics.py).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httptools

from sandbox.services.elbv2.rules import _reason, _Request

if TYPE_CHECKING:
    from sandbox.services.elbv2.listener import _ClientConnection

Address = tuple[str, int]

# -- the proxy -------------------------------------------------------------------------------------------

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business on each side.
_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)


class _Pool:
    """Idle keep-alive connections to targets, per local address (most recently used first)."""

    def __init__(self, max_idle: int = 64) -> None:
        self.idle: dict[Address, list[_Upstream]] = {}
        self.max_idle = max_idle

    def take(self, addr: Address) -> _Upstream | None:
        conns = self.idle.get(addr)
        while conns:
            conn = conns.pop()
            if not conn.closed:
                return conn
        return None

    def put(self, conn: _Upstream) -> None:
        conns = self.idle.setdefault(conn.addr, [])
        if len(conns) >= self.max_idle:
            conn.close()
        else:
            conns.append(conn)

    def forget(self, conn: _Upstream) -> None:
        conns = self.idle.get(conn.addr)
        if conns and conn in conns:
            conns.remove(conn)

    def drop(self, addr: Address) -> None:
        for conn in self.idle.pop(addr, []):
            conn.close()

    def close_all(self) -> None:
        for addr in list(self.idle):
            self.drop(addr)


class _Upstream(asyncio.Protocol):
    """A connection to a target; parses the response and feeds it to the exchange that owns it."""

    def __init__(self, pool: _Pool, addr: Address) -> None:
        self.pool = pool
        self.addr = addr
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.exchange: _Exchange | None = None
        self.parser: Any = None
        self.status_text = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.informational = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.upstream_lost()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, exchange: _Exchange, data: bytes) -> None:
        self.exchange = exchange
        self.parser = httptools.HttpResponseParser(self)
        self.status_text = b""
        self.headers = []
        self.informational = False
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes on an idle connection: it is not reusable
            self.close()
            return
        exchange.got_bytes = True
        exchange.last = exchange.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.exchange = None
            self.close()
            exchange.upstream_broken()
            return
        if self.exchange is exchange:
            exchange.flush()

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self.status_text += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # 1xx (e.g. 103 Early Hints): not relayed, the final response follows
            self.informational = True
            return
        assert self.exchange is not None
        self.exchange.response_head(status, self.status_text, self.headers, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.response_body(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            self.status_text = b""
            self.headers = []
            return
        exchange, self.exchange = self.exchange, None
        if exchange is None:
            return
        reusable = self.parser.should_keep_alive() and not exchange.head_request
        exchange.response_done()
        if reusable and not self.closed:
            self.pool.put(self)
        else:
            self.close()


class _Exchange:
    """One request forwarded to one target, relayed back to the client connection."""

    __slots__ = (
        "addr",
        "chunked",
        "client",
        "client_keep_alive",
        "done",
        "got_bytes",
        "group_arn",
        "head_request",
        "head_sent",
        "last",
        "loop",
        "out",
        "paused",
        "payload",
        "request",
        "retried",
        "reused",
        "started",
        "until_close",
        "upstream",
    )

    def __init__(self, client: _ClientConnection, request: _Request, addr: Address, payload: bytes) -> None:
        self.client = client
        self.request = request
        self.addr = addr
        self.payload = payload
        self.loop = client.loop
        self.upstream: _Upstream | None = None
        self.done = False
        self.got_bytes = False
        self.head_sent = False
        self.head_request = request.method == b"HEAD"
        self.chunked = False
        self.until_close = False
        self.client_keep_alive = request.keep_alive
        self.out: list[bytes] = []
        self.reused = False
        self.retried = False
        self.paused = False
        self.last = self.started = self.loop.time()
        self.group_arn = ""  # the target group the request went to (CloudWatch's TargetGroup dimension)

    def start(self) -> None:
        self.client.balancer.active.add(self)
        upstream = self.client.balancer.pool.take(self.addr)
        if upstream is not None:
            self.reused = True
            self.upstream = upstream
            upstream.send(self, self.payload)
        else:
            self._connect()

    def _connect(self) -> None:
        pool = self.client.balancer.pool
        addr = self.addr
        task = self.loop.create_task(self.loop.create_connection(lambda: _Upstream(pool, addr), addr[0], addr[1]))
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            if not self.done:
                self._fail(502)
            return
        _transport, upstream = task.result()
        if self.done:  # timed out or the client left meanwhile: keep the connection for the next one
            self.client.balancer.pool.put(upstream)
            return
        self.reused = False
        self.upstream = upstream
        upstream.send(self, self.payload)

    # from the upstream connection
    def response_head(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], upstream_keep_alive: bool
    ) -> None:
        self.client.balancer.traffic.answered(
            self.client.listener.spec.load_balancer_arn, self.group_arn, status, self.loop.time() - self.started
        )
        kept: list[bytes] = [b"HTTP/1.1 %d %s\r\n" % (status, reason or _reason(status))]
        drop: set[bytes] = set()
        has_length = chunked = False
        for name, value in headers:
            lower = name.lower()
            if lower in _HOP:
                if lower == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif lower == b"connection":
                    drop.update(token.strip().lower() for token in value.split(b","))
                continue
            if lower == b"content-length":
                has_length = True
            kept.append(b"%s: %s\r\n" % (name, value))
        if drop:
            kept = [kept[0]] + [line for line in kept[1:] if line.split(b":", 1)[0].lower() not in drop]
        bodiless = self.head_request or status in (204, 304)
        if chunked and has_length:  # RFC 9112 6.3: Transfer-Encoding wins; the length is meaningless
            kept = [line for line in kept if not line.lower().startswith(b"content-length:")]
            has_length = False
        if not bodiless and not has_length:
            if self.request.version == "1.1":
                self.chunked = True
                kept.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.client_keep_alive = False
            self.until_close = not chunked
        if not self.client_keep_alive:
            kept.append(b"Connection: close\r\n")
        elif self.request.version == "1.0":
            kept.append(b"Connection: keep-alive\r\n")
        kept.append(b"\r\n")
        self.out.append(b"".join(kept))
        self.head_sent = True
        if self.head_request:
            # httptools cannot be told a response answers HEAD (it would wait for Content-Length bytes):
            # the response is complete now and this connection is not reused.
            upstream, self.upstream = self.upstream, None
            if upstream is not None:
                upstream.exchange = None
                upstream.close()
            self.response_done()

    def response_body(self, chunk: bytes) -> None:
        if self.done:
            return
        if self.chunked:
            if chunk:  # an empty chunk would end the body early
                self.out.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self.out.append(chunk)

    def flush(self) -> None:
        if self.out:
            client = self.client
            if not client.closed:
                assert client.transport is not None
                client.transport.write(b"".join(self.out) if len(self.out) > 1 else self.out[0])
            self.out.clear()

    def response_done(self) -> None:
        if self.done:
            return
        if self.chunked:
            self.out.append(b"0\r\n\r\n")
        self.flush()
        self._finish()
        self.client.finish(self.client_keep_alive)

    def upstream_lost(self) -> None:
        if self.done:
            return
        if not self.head_sent:
            # A kept-alive connection the target closed just as we reused it: nothing was processed,
            # try once more on a fresh connection (what any pooling proxy does).
            if self.reused and not self.got_bytes and not self.retried:
                self.retried = True
                self.upstream = None
                self._connect()
                return
            self._fail(502)
        elif self.until_close:
            self.response_done()
        else:
            self._abort()

    def upstream_broken(self) -> None:
        if self.done:
            return
        if self.head_sent:
            self._abort()
        else:
            self._fail(502)

    # from the client connection and the balancer's sweeper
    def pause(self) -> None:
        self.paused = True
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume(self) -> None:
        self.paused = False
        self.last = self.loop.time()
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def client_gone(self) -> None:
        """The client left: stop relaying and drop the target connection (its response is unwanted)."""
        if self.done:
            return
        self._finish()
        self._drop_upstream()

    def check_idle(self, now: float, idle_timeout: float) -> None:
        if self.done or self.paused or now - self.last < idle_timeout:
            return
        self._drop_upstream()
        if self.head_sent:
            self._abort()
        else:
            self._fail(504)

    def _drop_upstream(self) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.exchange = None
            if upstream.transport is not None:
                upstream.transport.abort()

    def _finish(self) -> None:
        self.done = True
        self.client.balancer.active.discard(self)

    def _fail(self, status: int) -> None:
        self._finish()
        self.client.reply_error(status, self.request)

    def _abort(self) -> None:
        self._finish()
        self.out.clear()
        self.client.abort()

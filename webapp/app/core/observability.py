"""JSON logs carrying a request id, and Prometheus request metrics, from one pure ASGI middleware.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: the latter wraps every response in a task and
a memory stream, which costs a large share of a cheap endpoint's time.

Metrics: Prometheus text at /metrics. With several uvicorn workers (WEB_CONCURRENCY > 1) the
counters live in PROMETHEUS_MULTIPROC_DIR (``python -m app`` sets one up) so that any worker's
/metrics reports the sum of all workers.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import logging
import math
import os
import re
import secrets
import sys
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes polled every few seconds: counted in the metrics, left out of the access log.
_QUIET_ROUTES = frozenset({"/health", "/api/status", "/metrics"})
_JSON = (b"content-type", b"application/json")

REQUESTS = Counter("http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from request to the end of the response",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
DB_IS_WRITER = Gauge(
    "app_database_is_writer",
    "1 when this region's database accepts writes, 0 when it is a read-only replica, -1 when unknown",
    multiprocess_mode="mostrecent",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid is not None:
            doc["request_id"] = rid
        fields = getattr(record, "fields", None)
        if fields:
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


JsonFormatter.converter = time.gmtime  # type: ignore[assignment]


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # RequestContextMiddleware writes the access log (with the request id, route and duration).
    logging.getLogger("uvicorn.access").disabled = True


access_log = logging.getLogger("app.access")


class AccessLog:
    """The access log: one JSON line per request, shaped as JsonFormatter's lines (logger ``app.access``,
    level INFO, so LOG_LEVEL=WARNING silences it), written to stdout in batches: when FLUSH_S has passed
    since the first unwritten line, when BUFFER_MAX bytes wait, and at shutdown.

    Through the logging module (a LogRecord, a formatter, a lock, a write and a flush per line) it cost
    ~30 µs a request, a quarter of a database read's whole cost here. The price: a crash loses at most
    FLUSH_S of access lines, and they may reach stdout up to FLUSH_S after other log lines.
    """

    FLUSH_S = 0.2
    BUFFER_MAX = 64 * 1024

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._second_text = ""

    @staticmethod
    def enabled() -> bool:
        return access_log.isEnabledFor(logging.INFO)

    def write(self, request_id: str, fields: dict[str, Any]) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        doc = {
            "time": f"{self._second_text}.{int((now - second) * 1000):03d}Z",
            "level": "INFO",
            "logger": access_log.name,
            "message": "request",
            "request_id": request_id,
            **fields,
        }
        self._buffer += orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
        if len(self._buffer) >= self.BUFFER_MAX:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)
            except RuntimeError:  # no event loop: write at once
                self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        stream = sys.stdout
        try:
            stream.flush()  # whatever the logging module wrote first
            binary = getattr(stream, "buffer", None)
            if binary is not None:
                binary.write(data)
                binary.flush()
            else:
                stream.write(data.decode())
                stream.flush()
        except (OSError, ValueError):  # stdout closed or gone: as logging's handlers, carry on
            pass


ACCESS_LOG = AccessLog()
atexit.register(ACCESS_LOG.flush)


def new_request_id() -> str:
    return secrets.token_hex(16)  # 128 random bits, as 32 hex digits (uuid4().hex: 122 bits, 3x the cost)


class RequestMetrics:
    """Requests counted in plain dicts, added to the Prometheus metrics (REQUESTS, LATENCY) every
    FLUSH_S and before /metrics answers.

    Counting straight into prometheus_client costs three locked writes a request (with several
    workers, into shared memory-mapped files, each checking the process id with a system call): ~4
    µs, a tenth of a cheap request. Here a request costs two dictionary updates.
    """

    FLUSH_S = 1.0

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        # (method, route) -> [count per LATENCY_BUCKETS bucket..., sum of durations]
        self._latency: dict[tuple[str, str], list[float]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def record(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        latency = self._latency.get((method, route))
        if latency is None:
            latency = self._latency[(method, route)] = [0.0] * (len(LATENCY_BUCKETS) + 1)
        latency[bisect_left(LATENCY_BUCKETS, elapsed)] += 1  # as Histogram.observe: the first bound >= elapsed
        latency[-1] += elapsed
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)
            except RuntimeError:  # no event loop: add at once
                self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counts, latencies = self._counts, self._latency
        self._counts, self._latency = {}, {}
        for (method, route, status), count in counts.items():
            REQUESTS.labels(method, route, str(status)).inc(count)
        for (method, route), latency in latencies.items():
            child = LATENCY.labels(method, route)
            # Histogram.observe() takes one sample; its per-bucket values take a count (the same
            # objects observe() increments: private to prometheus_client, pinned in requirements).
            for bucket, count in zip(child._buckets, latency, strict=False):
                if count:
                    bucket.inc(count)
            child._sum.inc(latency[-1])


REQUEST_METRICS = RequestMetrics()


class RequestContextMiddleware:
    """Request id (X-Request-ID in, or a new one; echoed back), metrics and one access-log line.

    ``liveness``: the body of ``GET /health``, answered here at once (no metrics, no log line).
    ``probes``: path -> function returning the body of a GET answered here from memory (counted in
    the metrics, not logged): ``/api/status``.
    ``edge``: ``edge(scope)`` -> ``(route template, handler)`` for the requests answered before
    FastAPI (app/api/edge.py); a handler returns ``(status, body, headers)``, or None (or a ``Defer``
    carrying a replaying ``receive``) to go on to FastAPI after all.
    """

    def __init__(
        self,
        app: Any,
        *,
        access_log_enabled: bool = True,
        liveness: bytes | None = None,
        probes: dict[str, Callable[[], bytes]] | None = None,
        edge: Callable[[dict[str, Any]], tuple[str, Any] | None] | None = None,
    ) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled
        self._liveness = liveness
        self._probes = probes or {}
        self._edge = edge

    @staticmethod
    async def _answer(
        send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]], rid_header: tuple[bytes, bytes]
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [_JSON, (b"content-length", str(len(body)).encode()), rid_header, *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID_OK.match(candidate):
                    rid = candidate
                break
        if rid is None:
            rid = new_request_id()
        rid_header = (b"x-request-id", rid.encode())
        if scope["method"] == "GET":
            if self._liveness is not None and scope["path"] == "/health":
                # Liveness touches nothing else: no metrics, no log line, just the answer.
                await self._answer(send, 200, self._liveness, [], rid_header)
                return
            probe = self._probes.get(scope["path"])
            if probe is not None:
                # A probe polled by machines: counted, not logged, answered from memory.
                start = time.perf_counter()
                status = 500
                try:
                    body = probe()
                    status = 200
                    await self._answer(send, 200, body, [], rid_header)
                finally:
                    REQUEST_METRICS.record("GET", scope["path"], status, time.perf_counter() - start)
                return
        route = self._edge(scope) if self._edge is not None else None
        token = request_id_var.set(rid)
        status = 500
        start = time.perf_counter()
        template = None
        try:
            outcome = None
            if route is not None:
                template, handler = route
                outcome = await handler(scope, receive)
            if type(outcome) is tuple:
                status = outcome[0]
                await self._answer(send, status, outcome[1], outcome[2], rid_header)
            else:
                template = None  # FastAPI answers: its route (scope["route"]) names the template
                answered = [500]
                try:
                    receive = outcome.receive if outcome is not None else receive
                    await self.app(scope, receive, _with_id(send, rid_header, answered))
                finally:
                    status = answered[0]
        finally:
            elapsed = time.perf_counter() - start
            if template is None:
                template = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            REQUEST_METRICS.record(method, template, status, elapsed)
            if self.access_log_enabled and template not in _QUIET_ROUTES and ACCESS_LOG.enabled():
                ACCESS_LOG.write(
                    rid,
                    {
                        "method": method,
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)


def _with_id(send: Any, rid_header: tuple[bytes, bytes], answered: list[int]) -> Any:
    """``send`` adding the request id header, and noting the status in ``answered[0]``."""

    async def send_with_id(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answered[0] = message["status"]
            message["headers"] = [*message.get("headers", ()), rid_header]
        await send(message)

    return send_with_id


def metrics_payload() -> bytes:
    REQUEST_METRICS.flush()  # this worker's latest; the others' are at most FLUSH_S old
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)


METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

"""The observability layer: request ids, JSON logs, Prometheus metrics.

``Observability`` is a pure ASGI middleware around everything that answers requests (the fast path,
app/api/edge.py, then FastAPI): it gives each request an id (X-Request-ID in, or a new one; echoed
back), then counts it and writes its access-log line. It answers nothing itself.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: the latter wraps every response in a task and
a memory stream, which costs a large share of a cheap endpoint's time.

Metrics: Prometheus text at /metrics. With several uvicorn workers (WEB_CONCURRENCY > 1) any worker's
/metrics reports the sum of all workers: through PROMETHEUS_MULTIPROC_DIR (``python -m app`` sets one
up), where prometheus_client keeps its gauge and ``RequestMetrics`` its files.
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
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes polled every few seconds: counted in the metrics, left out of the access log.
_QUIET_ROUTES = frozenset({"/health", "/api/status", "/metrics"})

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf)
DB_IS_WRITER = Gauge(
    "app_database_is_writer",
    "1 when this region's database accepts writes, 0 when it is a read-only replica, -1 when unknown",
    multiprocess_mode="mostrecent",
)


# --- logs -------------------------------------------------------------------------------------------


class JsonLog:
    """The one writer of the log: JSON lines on stdout, ``{"time", "level", "logger", "message", ...}``.

    The logging module's records (``JsonHandler``) are written at once; access-log lines are batched
    (``batched=True``): written when FLUSH_S has passed since the first unwritten one, when BUFFER_MAX
    bytes wait, with the next record written at once, and at shutdown. Through the logging module (a
    LogRecord, a formatter, a lock, a write and a flush per line) an access line cost ~30 µs a
    request, a quarter of a database read's whole cost here. The price: a crash loses at most FLUSH_S
    of access lines. One buffer keeps the lines in the order they were written.
    """

    FLUSH_S = 0.2
    BUFFER_MAX = 64 * 1024

    def __init__(self) -> None:
        self._buffer = bytearray()
        # Records also come from other threads (asyncio.to_thread, the pools' workers).
        self._lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None  # touched on the event loop's thread only
        self._second: tuple[int, str] = (-1, "")

    def timestamp(self, now: float) -> str:
        second = int(now)
        cached = self._second
        if cached[0] != second:  # strftime once a second, not once a line
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{cached[1]}.{int((now - second) * 1000):03d}Z"

    def write(self, doc: dict[str, Any], *, batched: bool = False) -> None:
        line = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            self._buffer += line
            full = len(self._buffer) >= self.BUFFER_MAX
        if not batched or full:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.FLUSH_S, self._tick)
            except RuntimeError:  # no event loop: write at once
                self.flush()

    def _tick(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._buffer:
                return
            data = bytes(self._buffer)
            self._buffer.clear()
            stream = sys.stdout
            try:
                binary = getattr(stream, "buffer", None)
                if binary is not None:
                    stream.flush()  # anything printed before
                    binary.write(data)
                    binary.flush()
                else:
                    stream.write(data.decode())
                    stream.flush()
            except (OSError, ValueError):  # stdout closed or gone: as logging's handlers, carry on
                pass


LOG = JsonLog()
atexit.register(LOG.flush)
_EXCEPTIONS = logging.Formatter()


class JsonHandler(logging.Handler):
    """The logging module's records, through ``LOG``: with the request id, and ``extra={"fields": {...}}``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            doc: dict[str, Any] = {
                "time": LOG.timestamp(record.created),
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
                doc["exception"] = _EXCEPTIONS.formatException(record.exc_info)
            LOG.write(doc)
        except Exception:
            self.handleError(record)


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    root.handlers[:] = [JsonHandler()]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Observability writes the access log (with the request id, route and duration).
    logging.getLogger("uvicorn.access").disabled = True


# Logger ``app.access``, level INFO: LOG_LEVEL=WARNING silences the access log.
access_log = logging.getLogger("app.access")


def new_request_id() -> str:
    return secrets.token_hex(16)  # 128 random bits, as 32 hex digits (uuid4().hex: 122 bits, 3x the cost)


# --- metrics ----------------------------------------------------------------------------------------

_BUCKET_LABELS = tuple(floatToGoString(bound) for bound in LATENCY_BUCKETS)


class RequestMetrics:
    """``http_requests_total`` and ``http_request_duration_seconds``, counted in plain dicts and
    exposed by this collector (registered with prometheus_client) when /metrics is asked.

    Counting through prometheus_client's Counter and Histogram costs three locked writes a request
    (with several workers, into shared memory-mapped files, each checking the process id with a system
    call): ~4 µs, a tenth of a cheap request. Here a request costs two dictionary updates.

    With several workers (``directory``, PROMETHEUS_MULTIPROC_DIR), each writes its totals to a file
    of its own there every FLUSH_S and before it answers /metrics, and the collector adds up all the
    files: the other workers' counts are at most FLUSH_S old. A worker that exits leaves its file, so
    that counters never go down (prometheus_client keeps a dead worker's counters the same way).
    """

    FLUSH_S = 1.0

    def __init__(self, directory: str | None = None, name: str | None = None) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        # (method, route) -> [count per LATENCY_BUCKETS bucket..., sum of durations]
        self._latency: dict[tuple[str, str], list[float]] = {}
        # Label set -> when first counted: the ``_created`` series prometheus_client's own metrics have
        # (one process only, as prometheus_client's multiprocess mode).
        self._created: dict[tuple[Any, ...], float] = {}
        self._directory = Path(directory) if directory else None
        self._file = self._directory / f"http-{name or os.getpid()}.json" if self._directory else None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def shared(self) -> bool:
        return self._directory is not None

    def record(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        count = self._counts.get(key)
        if count is None:
            count = 0
            self._created[key] = time.time()
        self._counts[key] = count + 1
        latency = self._latency.get((method, route))
        if latency is None:
            latency = self._latency[(method, route)] = [0.0] * (len(LATENCY_BUCKETS) + 1)
            self._created[(method, route)] = time.time()
        latency[bisect_left(LATENCY_BUCKETS, elapsed)] += 1  # as Histogram.observe: the first bound >= elapsed
        latency[-1] += elapsed
        if self._file is not None and self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.FLUSH_S, self._tick)
            except RuntimeError:  # no event loop: write at once
                self.save()

    def _tick(self) -> None:
        self._timer = None
        self.save()

    def save(self) -> None:
        """This worker's totals to its file (several workers only)."""
        if self._file is None:
            return
        doc = {
            "counts": [[*key, count] for key, count in self._counts.items()],
            "latency": [[*key, values] for key, values in self._latency.items()],
        }
        partial = self._file.with_suffix(".tmp")
        partial.write_bytes(orjson.dumps(doc))
        partial.replace(self._file)  # readers see the old file or the new one, never half of one

    def _totals(self) -> tuple[dict[tuple[str, str, int], int], dict[tuple[str, str], list[float]]]:
        if self._directory is None:
            return self._counts, self._latency
        self.save()
        counts: dict[tuple[str, str, int], int] = {}
        latency: dict[tuple[str, str], list[float]] = {}
        for path in sorted(self._directory.glob("http-*.json")):
            try:
                doc = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):  # gone meanwhile
                continue
            for method, route, status, count in doc["counts"]:
                counts[(method, route, status)] = counts.get((method, route, status), 0) + count
            for method, route, values in doc["latency"]:
                total = latency.setdefault((method, route), [0.0] * len(values))
                for i, value in enumerate(values):
                    total[i] += value
        return counts, latency

    def collect(self) -> Iterator[Metric]:
        counts, latency = self._totals()
        created = self._created if self._directory is None else {}
        requests = CounterMetricFamily(
            "http_requests_total", "HTTP requests served", labels=["method", "route", "status"]
        )
        for (method, route, status), count in counts.items():
            requests.add_metric([method, route, str(status)], count, created=created.get((method, route, status)))
        yield requests
        durations = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Time from request to the end of the response",
            labels=["method", "route"],
        )
        for (method, route), values in latency.items():
            buckets = list(zip(_BUCKET_LABELS, accumulate(values[:-1]), strict=True))  # cumulative, as Prometheus'
            durations.add_metric([method, route], buckets, values[-1])
            if (method, route) in created:
                labels = {"method": method, "route": route}
                durations.samples.append(Sample(f"{durations.name}_created", labels, created[(method, route)]))
        yield durations


REQUEST_METRICS = RequestMetrics(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
DEFAULT_REGISTRY.register(REQUEST_METRICS)


def metrics_payload() -> bytes:
    if REQUEST_METRICS.shared:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # the gauge, from every worker's files
        registry.register(REQUEST_METRICS)
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)


METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


# --- the middleware ---------------------------------------------------------------------------------


class Observability:
    """Request id, metrics and one access-log line per request, around ``app``.

    The route a request is counted and logged under is ``scope["route"].path``: FastAPI's route that
    answered, or the one the fast path answered for (app/api/edge.py), else "unmatched".
    ``GET /health`` (liveness) gets its request id and nothing else: no metrics, no log line.
    """

    def __init__(self, app: Any, *, access_log_enabled: bool = True) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled

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
        status = 500  # unless an answer starts

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        method = scope["method"]
        if method == "GET" and scope["path"] == "/health":
            await self.app(scope, receive, send_with_id)
            return
        token = request_id_var.set(rid)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_METRICS.record(method, route, status, elapsed)
            if self.access_log_enabled and route not in _QUIET_ROUTES and access_log.isEnabledFor(logging.INFO):
                doc = {
                    "time": LOG.timestamp(time.time()),
                    "level": "INFO",
                    "logger": access_log.name,
                    "message": "request",
                    "request_id": rid,
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                }
                LOG.write(doc, batched=True)
            request_id_var.reset(token)

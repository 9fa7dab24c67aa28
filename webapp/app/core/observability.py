"""JSON logs carrying a request id, and Prometheus request metrics, from one pure ASGI middleware.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: the latter wraps every response in a task and
a memory stream, which costs a large share of a cheap endpoint's time.

Metrics: Prometheus text at /metrics. With several uvicorn workers (WEB_CONCURRENCY > 1) the
counters live in PROMETHEUS_MULTIPROC_DIR (``python -m app`` sets one up) so that any worker's
/metrics reports the sum of all workers.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import time
import uuid
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

REQUESTS = Counter("http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from request to the end of the response",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
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


class RequestContextMiddleware:
    """Request id (X-Request-ID in, or a new one; echoed back), metrics and one access-log line."""

    def __init__(self, app: Any, *, access_log_enabled: bool = True, fast_paths: dict[str, Any] | None = None) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled
        self._children: dict[tuple[str, str], Any] = {}
        self._counters: dict[tuple[str, str, int], Any] = {}
        # GET endpoints without input or database access (liveness, cached status), answered here
        # without FastAPI's routing and dependency machinery, which costs more than the whole
        # endpoint: path -> function() returning the JSON body. The FastAPI routes with the same
        # paths stay for the OpenAPI schema and for other methods.
        self._fast = fast_paths or {}

    async def _answer_fast(self, body: bytes, rid_header: tuple[bytes, bytes], send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), rid_header]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
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
            rid = uuid.uuid4().hex
        rid_header = (b"x-request-id", rid.encode())
        fast = self._fast.get(scope["path"]) if scope["method"] == "GET" else None
        if fast is not None and scope["path"] == "/health":
            # Liveness touches nothing else: no metrics, no log line, just the answer.
            await self._answer_fast(fast(), rid_header, send)
            return
        token = request_id_var.set(rid)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        try:
            if fast is not None:
                status = 200
                await self._answer_fast(fast(), rid_header, send)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = scope["path"] if fast is not None else getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            ckey = (method, template, status)
            counter = self._counters.get(ckey)
            if counter is None:
                counter = self._counters[ckey] = REQUESTS.labels(method, template, str(status))
            counter.inc()
            key = (method, template)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = LATENCY.labels(method, template)
            child.observe(elapsed)
            if self.access_log_enabled and template not in _QUIET_ROUTES:
                access_log.info(
                    "request",
                    extra={
                        "fields": {
                            "method": method,
                            "path": scope["path"],
                            "route": template,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                        }
                    },
                )
            request_id_var.reset(token)


def metrics_payload() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)


METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

"""The FastAPI application: ``app.main:app`` (built on first access from the environment) or ``create_app()``."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response

from app import __version__
from app.api import data, health, status
from app.api.edge import FastPath
from app.core import errors
from app.core.config import Settings, get_settings
from app.core.credentials import credentials_for
from app.core.db import Database
from app.core.limits import BodyLimit
from app.core.observability import (
    METRICS_CONTENT_TYPE,
    REQUEST_METRICS,
    Observability,
    configure_logging,
    metrics_payload,
)
from app.records import Records

log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        credentials = await asyncio.to_thread(credentials_for, settings)
        db = Database(settings, credentials)
        app.state.db = db
        app.state.records = Records(db, settings.region)
        app.state.task = await asyncio.to_thread(lambda: settings.task)
        await db.open()
        db.start_monitor()
        # Everything built so far (modules, FastAPI's routes and models, pools) lives as long as the
        # process: move it out of the collector's sight, or each full collection walks it all again
        # (measured: 40-90 ms pauses every second or two under load, the whole p99).
        gc.collect()
        gc.freeze()
        log.info("serving", extra={"fields": {"region": settings.region, "version": __version__}})
        try:
            yield
        finally:
            # uvicorn has stopped accepting and drained in-flight requests (GRACEFUL_TIMEOUT) by now. Closing
            # the pools is bounded: a close stuck on a connection being opened (seen once, on a loaded machine,
            # when stopped a tenth of a second after start) must not keep the task from stopping.
            try:
                await asyncio.wait_for(db.close(), timeout=10)
            except TimeoutError:
                log.warning("the database pools did not close within 10 s; stopping anyway")
            REQUEST_METRICS.save()
            log.info("stopped")  # written at once, and the access lines waiting before it

    app = FastAPI(
        title="webapp",
        version=__version__,
        summary="A multi-region service on Aurora PostgreSQL that knows its region and survives a failover",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry hooks: off. Metrics are Prometheus (docs/webapp.md) and no
        # OpenTelemetry provider is set up, yet with the hooks on FastAPI asks the OpenTelemetry API
        # for one on every request (environment lookups, ~17 µs, a third of /health's cost).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # No 307 from /api/data/ to /api/data: Starlette builds the Location from the Host header, which
        # behind the load balancer and the edge is the internal origin's name; the redirect would leak it
        # and send the client away from the public entry. A path with a trailing slash is a 404 like any
        # other unknown path.
        redirect_slashes=False,
        # The API's description: off the public path unless INTERNAL_ENDPOINTS (a 404 like any unknown path).
        docs_url="/docs" if settings.internal_endpoints else None,
        redoc_url="/redoc" if settings.internal_endpoints else None,
        openapi_url="/openapi.json" if settings.internal_endpoints else None,
    )
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(status.router)
    app.include_router(data.router)

    if settings.internal_endpoints:  # else a 404 like any unknown path: the ALB sends every path here

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(metrics_payload(), media_type=METRICS_CONTENT_TYPE)

    errors.install(app)

    def openapi() -> dict[str, Any]:
        # FastAPI's schema, plus GET /health, which the fast path answers alone (app/api/health.py).
        if app.openapi_schema is None:
            routes = [*health.liveness.routes, *app.routes]
            app.openapi_schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Each middleware added wraps the ones before: the observability layer (request ids, metrics, the
    # access log) around the body limit (app/core/limits.py), around the fast path (the hot requests,
    # app/api/edge.py), around FastAPI.
    app.add_middleware(FastPath, api=app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Observability, access_log_enabled=settings.access_log)
    return app


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    # `uvicorn app.main:app` reads this attribute; building it lazily keeps `import app.main`
    # free of environment requirements (tests build their own with create_app(settings)).
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(name)

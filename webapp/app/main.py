"""The FastAPI application: ``app.main:app`` (built on first access from the environment) or ``create_app()``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from app import __version__
from app.api import data, health, status
from app.core import errors
from app.core.config import Settings, get_settings, resolve_password
from app.core.db import Database
from app.core.observability import (
    METRICS_CONTENT_TYPE,
    RequestContextMiddleware,
    configure_logging,
    metrics_payload,
)

log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        password = await asyncio.to_thread(resolve_password, settings)
        db = Database(settings, password)
        app.state.db = db
        app.state.task = await asyncio.to_thread(lambda: settings.task)
        await db.open()
        db.start_monitor()
        log.info("serving", extra={"fields": {"region": settings.region, "version": __version__}})
        try:
            yield
        finally:
            # uvicorn has stopped accepting and drained in-flight requests (GRACEFUL_TIMEOUT) by now.
            await db.close()
            log.info("stopped")

    app = FastAPI(
        title="webapp",
        version=__version__,
        summary="A multi-region service on Aurora PostgreSQL that knows its region and survives a failover",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(status.router)
    app.include_router(data.router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(metrics_payload(), media_type=METRICS_CONTENT_TYPE)

    errors.install(app)
    app.add_middleware(
        RequestContextMiddleware,
        access_log_enabled=settings.access_log,
        fast_paths={"/health": health.health_body, "/api/status": lambda: status.status_body(app)},
    )
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

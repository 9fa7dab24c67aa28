"""Liveness for the ALB and readiness for Route 53."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.schemas import Health, Ready

router = APIRouter(tags=["health"])
log = logging.getLogger("app.health")

LIVENESS_BODY = b'{"status":"ok"}'

# GET /health is answered by the fast path (app/api/edge.py) alone: liveness touches nothing else, and
# FastAPI's routing and request machinery would cost more than the rest of the answer. FastAPI has no such route; this router only documents it
# (main.py adds it to the OpenAPI schema).
liveness = APIRouter(tags=["health"])


@liveness.get("/health", response_model=Health, summary="Liveness: the process answers (touches nothing else)")
async def health() -> Response:  # pragma: no cover - documentation only, never routed
    raise NotImplementedError


@router.get(
    "/health/ready",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "this region cannot serve; `reason` says why"}},
    summary="Readiness: this region's database answers within READY_TIMEOUT",
)
async def ready(request: Request) -> Response:
    db = request.app.state.db
    settings = request.app.state.settings
    start = time.perf_counter()
    body: dict[str, object] = {"region": settings.region}
    try:
        # A connection of its own, not the pool's: it proves that new connections work too, and a
        # timed-out probe is simply closed instead of leaving a pooled connection in doubt.
        state = await asyncio.wait_for(db.probe(), timeout=settings.ready_timeout_s)
    except TimeoutError:
        log.warning("not ready: the database did not answer within %ss", settings.ready_timeout_s)
        body |= {"status": "unavailable", "reason": "database timeout"}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    except psycopg.Error as exc:
        # The error's text (host names, addresses, user and database names) goes to the log, not to whoever
        # asks: this answer is public (Route 53 checks it through the ALB).
        log.warning("not ready: %s", f"{exc.__class__.__name__}: {exc}".strip()[:500])
        body |= {"status": "unavailable", "reason": "database unavailable"}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    body |= {"status": "ready", "role": state.role, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
    return Response(orjson.dumps(body), media_type="application/json")

"""What this copy of the app is and where its database stands, for people and failover drills."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import __version__
from app.schemas import Status

router = APIRouter(prefix="/api", tags=["status"])


@router.get("/status", response_model=Status, summary="Region, database role and replication lag, version, task")
async def status(request: Request) -> Response:
    return Response(status_body(request.app), media_type="application/json")


_cache: dict[str, Any] = {"role": None, "prefix": b"", "body": b"", "until": 0.0}
# Answers within this long of each other share their body, "time" included (a poll every few
# seconds never sees the difference; under load it spares rebuilding the same bytes).
TIME_RESOLUTION_S = 0.001


def status_body(app: Any) -> bytes:
    """The role comes from the background monitor (refreshed every ROLE_REFRESH_INTERVAL seconds), so
    this costs no database round trip; role_checked_at says how fresh it is. Everything but the time
    is serialised once per role check, the time at most once per TIME_RESOLUTION_S."""
    role = app.state.db.role
    now = time.time()
    if _cache["role"] is role and now < _cache["until"]:
        return _cache["body"]
    if _cache["role"] is not role:
        settings = app.state.settings
        body = {
            "region": settings.region,
            "role": role.role,
            "role_checked_at": datetime.fromtimestamp(role.checked_at, UTC) if role.checked_at else None,
            "replication_lag_s": role.lag_s,
            "role_error": role.error,
            "writes_to": "writer-endpoint" if settings.db_writer_host else "local",
            "version": __version__,
            "task": app.state.task,
        }
        _cache["prefix"] = orjson.dumps(body)[:-1] + b',"time":'
        _cache["role"] = role
    _cache["body"] = _cache["prefix"] + orjson.dumps(datetime.fromtimestamp(now, UTC)) + b"}"
    _cache["until"] = now + TIME_RESOLUTION_S
    return _cache["body"]

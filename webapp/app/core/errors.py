"""Database failures as clear 503s: a read-only region, an unreachable or slow database. Never a 500.

``database_problem`` classifies an exception once for both paths that answer requests: the FastAPI
exception handlers installed here, and the edge (app/api/edge.py). The same goes for a body over the
limit (``BodyTooLarge``, app/core/limits.py) and an Idempotency-Key used before for another body
(``IdempotencyKeyReused``, app/records.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson
import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException

from app.core.batching import Abandoned
from app.core.config import Settings

log = logging.getLogger("app.errors")

READ_ONLY = "this region ({region}) is read-only at the moment: its database is a read-only replica; retry later"
NO_WRITER = "no writable database is reachable from this region ({region}) at the moment; retry later"
UNAVAILABLE = "the database is unavailable from this region ({region}) at the moment; retry later"
TIMEOUT = "the database did not answer in time; retry later"
BUSY = "all database connections are busy; retry later"
INTERNAL = "internal error"

SQLSTATE_READ_ONLY = "25006"  # read_only_sql_transaction: a write reached a hot standby
SQLSTATE_QUERY_CANCELED = "57014"  # statement_timeout
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08003", "08006"})

JSON = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class Problem:
    """An error answer: JSON ``{"detail", "reason"}``, with ``Retry-After`` when retrying may help."""

    status: int
    reason: str
    detail: str
    retry_after: int | None = None
    close: bool = False  # end the connection after the answer (Connection: close)

    def body(self) -> bytes:
        return orjson.dumps({"detail": self.detail, "reason": self.reason})

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        headers = []
        if self.retry_after is not None:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        if self.close:
            headers.append((b"connection", b"close"))
        return headers

    def response(self) -> Response:
        response = Response(self.body(), status_code=self.status, media_type="application/json")
        response.raw_headers.extend(self.raw_headers())
        return response


def problem(status: int, reason: str, detail: str, retry_after: int | None = None) -> Response:
    return Problem(status, reason, detail, retry_after).response()


def body_too_large(limit: int) -> Problem:
    # Connection: close, or uvicorn would read (and drop) the rest of the body to find the next request.
    return Problem(413, "body-too-large", f"the request body is larger than {limit} bytes (MAX_BODY_BYTES)", close=True)


class BodyTooLarge(HTTPException):
    """A body over MAX_BODY_BYTES, raised while it is received (app/core/limits.py). An HTTPException, so
    that FastAPI's body reading lets it through to its handler (it turns any other exception into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, body_too_large(limit).detail)
        self.limit = limit


IDEMPOTENCY_KEY_LOC = ["header", "Idempotency-Key"]


class IdempotencyKeyReused(Exception):
    """``POST /api/data`` with an Idempotency-Key that created a record of another key or value."""

    def __init__(self, record_id: int) -> None:
        super().__init__(record_id)
        self.record_id = record_id

    def body(self) -> bytes:
        # A 422 as FastAPI's validation errors are, naming the header: the request is invalid as it stands.
        msg = (
            f"already used for record {self.record_id}, stored with another key or value:"
            " send a new Idempotency-Key for a new record"
        )
        return orjson.dumps({"detail": [{"type": "idempotency_key_reused", "loc": IDEMPOTENCY_KEY_LOC, "msg": msg}]})


def _classify(settings: Settings, orig: BaseException | None, disconnected: bool) -> Problem:
    region = settings.region
    sqlstate = getattr(orig, "sqlstate", None)
    message = str(orig) if orig is not None else ""
    if sqlstate == SQLSTATE_READ_ONLY:
        log.info("write refused: database is read-only")
        return Problem(503, "read-only", READ_ONLY.format(region=region), settings.read_only_retry_after_s)
    if sqlstate == SQLSTATE_QUERY_CANCELED:
        log.warning("statement timeout")
        return Problem(503, "database-timeout", TIMEOUT, 1)
    if disconnected or sqlstate in RETRYABLE_SQLSTATES or sqlstate is None:
        # No SQLSTATE: the connection itself failed (refused, reset, or no server was read-write).
        if "read-only" in message or "hot standby" in message:
            log.warning("no read-write server among the writer hosts")
            return Problem(503, "no-writer", NO_WRITER.format(region=region), 1)
        log.warning("database unavailable: %s", orig.__class__.__name__)
        return Problem(503, "database-unavailable", UNAVAILABLE.format(region=region), 1)
    log.error("database error %s", sqlstate, exc_info=orig)
    return Problem(500, "internal", INTERNAL)


def database_problem(settings: Settings, exc: BaseException) -> Problem | None:
    """The answer to a database failure; None when ``exc`` is not one."""
    if isinstance(exc, DBAPIError):
        return _classify(settings, exc.orig, exc.connection_invalidated)
    if isinstance(exc, psycopg.Error):
        # Reads and writes run on the driver connection (Database.fetch, Database.execute_write).
        return _classify(
            settings, exc, isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and not exc.sqlstate
        )
    if isinstance(exc, psycopg_pool.PoolTimeout | PoolTimeoutError):
        log.warning("connection pool exhausted")
        return Problem(503, "database-busy", BUSY, 1)
    if isinstance(exc, Abandoned):
        return Problem(503, "database-unavailable", UNAVAILABLE.format(region=settings.region), 1)
    return None


def install(app: FastAPI) -> None:
    settings: Settings = app.state.settings

    @app.exception_handler(DBAPIError)
    @app.exception_handler(psycopg.Error)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(Abandoned)
    async def database_error(request: Request, exc: Exception) -> Response:
        found = database_problem(settings, exc)
        assert found is not None
        return found.response()

    @app.exception_handler(BodyTooLarge)
    async def body_too_large_handler(request: Request, exc: BodyTooLarge) -> Response:
        return body_too_large(exc.limit).response()

    @app.exception_handler(IdempotencyKeyReused)
    async def idempotency_key_reused(request: Request, exc: IdempotencyKeyReused) -> Response:
        return Response(exc.body(), status_code=422, media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's default echoes the offending input, which may not even be encodable (a lone
        # surrogate) and would turn a 422 into a 500; the location and message name the field.
        detail = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return Response(orjson.dumps({"detail": detail}), status_code=422, media_type="application/json")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s", exc.__class__.__name__, exc_info=exc)
        return problem(500, "internal", INTERNAL)

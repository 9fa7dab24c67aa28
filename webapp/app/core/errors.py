"""Database failures as clear 503s: a read-only region, an unreachable or slow database. Never a 500."""

from __future__ import annotations

import logging

import orjson
import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

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


def problem(status: int, reason: str, detail: str, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(
        orjson.dumps({"detail": detail, "reason": reason}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def install(app: FastAPI) -> None:
    settings = app.state.settings
    region = settings.region

    def classify(orig: BaseException | None, disconnected: bool) -> Response:
        sqlstate = getattr(orig, "sqlstate", None)
        message = str(orig) if orig is not None else ""
        if sqlstate == SQLSTATE_READ_ONLY:
            log.info("write refused: database is read-only")
            return problem(503, "read-only", READ_ONLY.format(region=region), settings.read_only_retry_after_s)
        if sqlstate == SQLSTATE_QUERY_CANCELED:
            log.warning("statement timeout")
            return problem(503, "database-timeout", TIMEOUT, 1)
        if disconnected or sqlstate in RETRYABLE_SQLSTATES or sqlstate is None:
            # No SQLSTATE: the connection itself failed (refused, reset, or no server was read-write).
            if "read-only" in message or "hot standby" in message:
                log.warning("no read-write server among the writer hosts")
                return problem(503, "no-writer", NO_WRITER.format(region=region), 1)
            log.warning("database unavailable: %s", orig.__class__.__name__)
            return problem(503, "database-unavailable", UNAVAILABLE.format(region=region), 1)
        log.error("database error %s", sqlstate, exc_info=orig)
        return problem(500, "internal", INTERNAL)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> Response:
        return classify(exc.orig, exc.connection_invalidated)

    @app.exception_handler(psycopg.Error)
    async def driver_error(request: Request, exc: psycopg.Error) -> Response:
        # Reads run on the driver connection directly (Database.fetch).
        return classify(exc, isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and not exc.sqlstate)

    @app.exception_handler(psycopg_pool.PoolTimeout)
    @app.exception_handler(PoolTimeoutError)
    async def pool_timeout(request: Request, exc: Exception) -> Response:
        log.warning("connection pool exhausted")
        return problem(503, "database-busy", BUSY, 1)

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

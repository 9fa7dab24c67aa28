"""The records: paginated reads from this region's database, writes to the writer."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects import postgresql

from app.core.db import DatabaseDep
from app.core.errors import problem
from app.models import Record
from app.schemas import Problem, RecordIn, RecordOut, RecordPage

router = APIRouter(prefix="/api/data", tags=["data"])

BIGINT_MAX = 2**63 - 1
NOT_FOUND = "no record with this id"
_COLUMNS = (Record.id, Record.key, Record.value, Record.region, Record.created_at)
_FIELDS = ("id", "key", "value", "region", "created_at")
_UNAVAILABLE: dict[int | str, dict[str, object]] = {
    503: {"model": Problem, "description": "database unavailable or (for writes) read-only; see Retry-After"}
}

# Built and compiled once by SQLAlchemy; psycopg prepares them server-side after a few executions on
# a connection (fewer parse round trips).
_PAGE = select(*_COLUMNS).order_by(Record.id.desc()).limit(bindparam("limit"))
_PAGE_BEFORE = (
    select(*_COLUMNS).where(Record.id < bindparam("before")).order_by(Record.id.desc()).limit(bindparam("limit"))
)
_ONE = select(*_COLUMNS).where(Record.id == bindparam("id"))
_INSERT = (
    insert(Record)
    .values(key=bindparam("key"), value=bindparam("value"), region=bindparam("region"))
    .returning(*_COLUMNS)
)
_DIALECT = postgresql.psycopg.dialect()
_PAGE_SQL, _PAGE_BEFORE_SQL, _ONE_SQL, _INSERT_SQL = (
    str(stmt.compile(dialect=_DIALECT)) for stmt in (_PAGE, _PAGE_BEFORE, _ONE, _INSERT)
)


def _json(body: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


@router.get("", response_model=RecordPage, responses=_UNAVAILABLE, summary="Newest records first, keyset-paginated")
async def list_records(
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
    before: Annotated[int | None, Query(ge=1, le=BIGINT_MAX, description="`next_before` of the previous page")] = None,
) -> Response:
    if before is None:
        rows = await db.fetch(_PAGE_SQL, {"limit": limit})
    else:
        rows = await db.fetch(_PAGE_BEFORE_SQL, {"limit": limit, "before": before})
    items = [dict(zip(_FIELDS, row, strict=True)) for row in rows]
    next_before = items[-1]["id"] if len(items) == limit else None
    return _json({"items": items, "next_before": next_before})


@router.get(
    "/{record_id}",
    response_model=RecordOut,
    responses={404: {"model": Problem}, **_UNAVAILABLE},
    summary="One record",
)
async def get_record(db: DatabaseDep, record_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)]) -> Response:
    rows = await db.fetch(_ONE_SQL, {"id": record_id})
    if not rows:
        return problem(404, "not-found", NOT_FOUND)
    return _json(dict(zip(_FIELDS, rows[0], strict=True)))


@router.post(
    "",
    status_code=201,
    response_model=RecordOut,
    responses=_UNAVAILABLE,
    summary="Store a record; answered with the stored record and the region that wrote it",
)
async def create_record(body: RecordIn, db: DatabaseDep, request: Request) -> Response:
    params = {"key": body.key, "value": body.value, "region": request.app.state.settings.region}
    rows = await db.execute_write(_INSERT_SQL, params)
    return _json(dict(zip(_FIELDS, rows[0], strict=True)), status_code=201)

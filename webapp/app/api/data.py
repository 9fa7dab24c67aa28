"""The records: paginated reads from this region's database, writes to the writer.

These routes define the API (validation, OpenAPI). Well-formed requests to them are answered by the
edge (app/api/edge.py) through the same ``Records`` paths; everything else comes here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response

from app.core.errors import problem
from app.models import IDEMPOTENCY_KEY_MAX
from app.records import BIGINT_MAX, PAGE_DEFAULT, PAGE_MAX, Records
from app.schemas import IDEMPOTENCY_KEY_PATTERN, Problem, RecordIn, RecordOut, RecordPage

router = APIRouter(prefix="/api/data", tags=["data"])

NOT_FOUND = "no record with this id"
REPLAYED = (b"idempotent-replayed", b"true")
_UNAVAILABLE: dict[int | str, dict[str, object]] = {
    503: {"model": Problem, "description": "database unavailable or (for writes) read-only; see Retry-After"}
}


def _records(request: Request) -> Records:
    return request.app.state.records


def _json(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


@router.get("", response_model=RecordPage, responses=_UNAVAILABLE, summary="Newest records first, keyset-paginated")
async def list_records(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="page size")] = PAGE_DEFAULT,
    before: Annotated[int | None, Query(ge=1, le=BIGINT_MAX, description="`next_before` of the previous page")] = None,
) -> Response:
    return _json(await _records(request).page(limit, before))


@router.get(
    "/{record_id}",
    response_model=RecordOut,
    responses={404: {"model": Problem}, **_UNAVAILABLE},
    summary="One record",
)
async def get_record(request: Request, record_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)]) -> Response:
    body = await _records(request).one(record_id)
    if body is None:
        return problem(404, "not-found", NOT_FOUND)
    return _json(body)


@router.post(
    "",
    status_code=201,
    response_model=RecordOut,
    responses=_UNAVAILABLE,
    summary="Store a record; answered with the stored record and the region that wrote it",
)
async def create_record(
    body: RecordIn,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description=(
                "1-255 printable ASCII characters. A retry with the same key (after a 503, a timeout, a lost"
                " answer) gets the record the first try stored, 201 with `Idempotent-Replayed: true`, instead"
                " of storing another; the same key with another key or value is a 422."
            ),
        ),
    ] = None,
) -> Response:
    stored, replayed = await _records(request).create(body.key, body.value, idempotency_key)
    response = _json(stored, status_code=201)
    if replayed:
        response.raw_headers.append(REPLAYED)
    return response

"""The records' SQL and the paths behind /api/data: coalesced reads, group-committed writes, JSON bytes.

The statements are SQLAlchemy 2 (built from the ``Record`` mapping, compiled once at import) and run
by psycopg on pooled driver connections (app/core/db.py); psycopg prepares them server-side after a
few executions on a connection. Reads and writes go through app/core/batching.py, so that 64
concurrent clients cost a handful of statements instead of 64: the answers are serialised to JSON
once per statement, not once per request.
"""

from __future__ import annotations

from operator import itemgetter

import orjson
from sqlalchemy import BigInteger, String, Text, bindparam, cast, func, insert, select
from sqlalchemy.dialects import postgresql

from app.core.batching import Batcher, Coalescer
from app.core.db import Database
from app.models import Record

BIGINT_MAX = 2**63 - 1
PAGE_DEFAULT = 20
PAGE_MAX = 100
# Rows per INSERT, ids per lookup at most: beyond that a batch waits for the next statement (which
# starts at once).
BATCH_MAX = 256

_COLUMNS = (Record.id, Record.key, Record.value, Record.region, Record.created_at)
_FIELDS = ("id", "key", "value", "region", "created_at")

_PAGE = select(*_COLUMNS).order_by(Record.id.desc()).limit(bindparam("limit"))
_PAGE_BEFORE = (
    select(*_COLUMNS).where(Record.id < bindparam("before")).order_by(Record.id.desc()).limit(bindparam("limit"))
)
_ONE = select(*_COLUMNS).where(Record.id == bindparam("id"))
_MANY = select(*_COLUMNS).where(Record.id == func.any(cast(bindparam("ids"), postgresql.ARRAY(BigInteger))))
_INSERT_ONE = (
    insert(Record)
    .values(key=bindparam("key"), value=bindparam("value"), region=bindparam("region"))
    .returning(*_COLUMNS)
)
# A batch: the rows as arrays, unnested in their order (WITH ORDINALITY, so that ids follow it).
# Each request gets back a returned row with its key and value: rows with the same key and value
# differ by id alone (created_at is the statement's time), so any of them is the request's own.
_ROWS = (
    func.unnest(cast(bindparam("keys"), postgresql.ARRAY(String)), cast(bindparam("values"), postgresql.ARRAY(Text)))
    .table_valued("key", "value", with_ordinality="n")
    .render_derived()
)
_INSERT_MANY = (
    insert(Record)
    .from_select(
        ["key", "value", "region"],
        select(_ROWS.c.key, _ROWS.c.value, bindparam("region", type_=String)).order_by(_ROWS.c.n),
    )
    .returning(*_COLUMNS)
)
_DIALECT = postgresql.psycopg.dialect()
PAGE_SQL, PAGE_BEFORE_SQL, ONE_SQL, MANY_SQL, INSERT_ONE_SQL, INSERT_MANY_SQL = (
    str(stmt.compile(dialect=_DIALECT)) for stmt in (_PAGE, _PAGE_BEFORE, _ONE, _MANY, _INSERT_ONE, _INSERT_MANY)
)
_BY_ID = itemgetter(0)


def record_json(row: tuple[object, ...]) -> bytes:
    return orjson.dumps(dict(zip(_FIELDS, row, strict=True)))


class Records:
    """The records of one app process (one per worker): created by the lifespan, on ``app.state.records``."""

    def __init__(self, db: Database, region: str) -> None:
        self.db = db
        self.region = region
        self._pages: Coalescer[tuple[int, int], bytes] = Coalescer()
        self._lookups: Batcher[int, bytes | None] = Batcher(self._lookup, BATCH_MAX)
        self._writes: Batcher[tuple[str, str], bytes] = Batcher(self._insert, BATCH_MAX)

    async def page(self, limit: int = PAGE_DEFAULT, before: int | None = None) -> bytes:
        """``{"items": [...], "next_before": id | null}``, newest first, older than ``before`` if given."""
        return await self._pages.run((limit, before or 0), self._page)

    async def one(self, record_id: int) -> bytes | None:
        """The record as JSON, or None when there is none with this id."""
        return await self._lookups.submit(record_id)

    async def create(self, key: str, value: str) -> bytes:
        """Store a record (committed when this returns); the stored record as JSON."""
        return await self._writes.submit((key, value))

    async def _page(self, key: tuple[int, int]) -> bytes:
        limit, before = key
        if before:
            rows = await self.db.fetch(PAGE_BEFORE_SQL, {"limit": limit, "before": before})
        else:
            rows = await self.db.fetch(PAGE_SQL, {"limit": limit})
        items = [dict(zip(_FIELDS, row, strict=True)) for row in rows]
        next_before = items[-1]["id"] if len(items) == limit else None
        return orjson.dumps({"items": items, "next_before": next_before})

    async def _lookup(self, ids: list[int]) -> list[bytes | None]:
        if len(ids) == 1:
            rows = await self.db.fetch(ONE_SQL, {"id": ids[0]})
        else:
            rows = await self.db.fetch(MANY_SQL, {"ids": list(set(ids))})
        found = {row[0]: record_json(row) for row in rows}
        return [found.get(record_id) for record_id in ids]

    async def _insert(self, items: list[tuple[str, str]]) -> list[bytes | Exception]:
        if len(items) == 1:
            key, value = items[0]
            rows = await self.db.execute_write(INSERT_ONE_SQL, {"key": key, "value": value, "region": self.region})
            return [record_json(rows[0])]
        params = {"keys": [k for k, _ in items], "values": [v for _, v in items], "region": self.region}
        try:
            rows = await self.db.execute_write(INSERT_MANY_SQL, params)
        except Exception as exc:
            if not _about_the_data(exc):
                raise  # the database's trouble, the same for every row: every request gets the 503
            # One row the database refuses must not fail the others: write them one by one.
            return [await _outcome(self._insert([item])) for item in items]
        rows.sort(key=_BY_ID)
        by_content: dict[tuple[object, object], list[tuple[object, ...]]] = {}
        for row in rows:
            by_content.setdefault((row[1], row[2]), []).append(row)
        return [record_json(by_content[item].pop(0)) for item in items]


def _about_the_data(exc: Exception) -> bool:
    """A data exception or constraint violation (SQLSTATE classes 22 and 23): one row's fault."""
    sqlstate = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    return sqlstate[:2] in ("22", "23")


async def _outcome(write: object) -> bytes | Exception:
    try:
        return (await write)[0]  # type: ignore[misc]
    except Exception as exc:
        return exc

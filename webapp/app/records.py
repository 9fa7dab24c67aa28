"""The records' SQL and the paths behind /api/data: coalesced reads, group-committed writes, JSON bytes.

The statements are SQLAlchemy 2 (built from the ``Record`` mapping, compiled once at import) and run
by psycopg on pooled driver connections (app/core/db.py); psycopg prepares them server-side after a
few executions on a connection. Reads and writes go through app/core/batching.py, so that 64
concurrent clients cost a handful of statements instead of 64: the answers are serialised to JSON
once per statement, not once per request.

A write may carry the client's Idempotency-Key (POST /api/data): stored with the record, under a unique
index, so that a retry (after a 503, a timeout, a lost answer) finds the record its first try stored
instead of storing another. Such writes go as ``INSERT ... ON CONFLICT DO NOTHING``: whichever
statement inserts a key first wins (the unique index decides between concurrent ones, across processes
and regions' apps alike; in one statement, the first row in the batch's order), and a write whose key
is taken is answered, from the writer, with the record that holds it: the same record when the key and
value match, else ``IdempotencyKeyReused``. Writes without a key keep the plain INSERT.
"""

from __future__ import annotations

from operator import itemgetter

import orjson
from sqlalchemy import BigInteger, String, Text, bindparam, cast, func, insert, select
from sqlalchemy.dialects import postgresql

from app.core.batching import Batcher, Coalescer
from app.core.db import Database
from app.core.errors import IdempotencyKeyReused
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
# Writes with Idempotency-Keys (some of the batch's may have none): a row whose key is taken, by a
# committed record or by an earlier row of the same statement, is skipped; the rows stored come back with
# their key. The partial unique index is named by its column and predicate.
_KEYED_ROWS = (
    func.unnest(
        cast(bindparam("keys"), postgresql.ARRAY(String)),
        cast(bindparam("values"), postgresql.ARRAY(Text)),
        cast(bindparam("idempotency_keys"), postgresql.ARRAY(String)),
    )
    .table_valued("key", "value", "idempotency_key", with_ordinality="n")
    .render_derived()
)
_INSERT_KEYED = (
    postgresql.insert(Record)
    .from_select(
        ["key", "value", "idempotency_key", "region"],
        select(
            _KEYED_ROWS.c.key, _KEYED_ROWS.c.value, _KEYED_ROWS.c.idempotency_key, bindparam("region", type_=String)
        ).order_by(_KEYED_ROWS.c.n),
    )
    .on_conflict_do_nothing(index_elements=[Record.idempotency_key], index_where=Record.idempotency_key.isnot(None))
    .returning(*_COLUMNS, Record.idempotency_key)
)
# The records holding keys that were taken. A statement of its own, on the writer: the one that inserted
# them may have committed after the INSERT's snapshot was taken (it waited for it), and a replica may not
# have them yet.
_BY_IDEMPOTENCY_KEYS = select(*_COLUMNS, Record.idempotency_key).where(
    Record.idempotency_key == func.any(cast(bindparam("idempotency_keys"), postgresql.ARRAY(String)))
)
_DIALECT = postgresql.psycopg.dialect()
PAGE_SQL, PAGE_BEFORE_SQL, ONE_SQL, MANY_SQL, INSERT_ONE_SQL, INSERT_MANY_SQL, INSERT_KEYED_SQL, BY_KEYS_SQL = (
    str(stmt.compile(dialect=_DIALECT))
    for stmt in (_PAGE, _PAGE_BEFORE, _ONE, _MANY, _INSERT_ONE, _INSERT_MANY, _INSERT_KEYED, _BY_IDEMPOTENCY_KEYS)
)
_BY_ID = itemgetter(0)


def record_json(row: tuple[object, ...]) -> bytes:
    return orjson.dumps(dict(zip(_FIELDS, row[:5], strict=True)))


# What a write answers: the record as JSON, and whether it was stored before (a retry with its
# Idempotency-Key) rather than by this request.
Stored = tuple[bytes, bool]
WriteItem = tuple[str, str, str | None]  # key, value, Idempotency-Key


class Records:
    """The records of one app process (one per worker): created by the lifespan, on ``app.state.records``."""

    def __init__(self, db: Database, region: str) -> None:
        self.db = db
        self.region = region
        self._pages: Coalescer[tuple[int, int], bytes] = Coalescer()
        self._lookups: Batcher[int, bytes | None] = Batcher(self._lookup, BATCH_MAX)
        self._writes: Batcher[WriteItem, Stored] = Batcher(self._insert, BATCH_MAX)

    async def page(self, limit: int = PAGE_DEFAULT, before: int | None = None) -> bytes:
        """``{"items": [...], "next_before": id | null}``, newest first, older than ``before`` if given."""
        return await self._pages.run((limit, before or 0), self._page)

    async def one(self, record_id: int) -> bytes | None:
        """The record as JSON, or None when there is none with this id."""
        return await self._lookups.submit(record_id)

    async def create(self, key: str, value: str, idempotency_key: str | None = None) -> Stored:
        """Store a record (committed when this returns): (the stored record as JSON, False). With an
        ``idempotency_key`` already stored: (the record that holds it, True) when its key and value are
        these, else ``IdempotencyKeyReused``."""
        return await self._writes.submit((key, value, idempotency_key))

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

    async def _insert(self, items: list[WriteItem]) -> list[Stored | Exception]:
        keyed = any(item[2] is not None for item in items)
        if len(items) == 1 and not keyed:
            key, value, _ = items[0]
            rows = await self.db.execute_write(INSERT_ONE_SQL, {"key": key, "value": value, "region": self.region})
            return [(record_json(rows[0]), False)]
        params: dict[str, object] = {
            "keys": [item[0] for item in items],
            "values": [item[1] for item in items],
            "region": self.region,
        }
        if keyed:
            params["idempotency_keys"] = [item[2] for item in items]
        try:
            rows = await self.db.execute_write(INSERT_KEYED_SQL if keyed else INSERT_MANY_SQL, params)
        except Exception as exc:
            if not _about_the_data(exc) or len(items) == 1:
                raise  # the database's trouble, the same for every row: every request gets the 503
            # One row the database refuses must not fail the others: write them one by one.
            return [await _outcome(self._insert([item])) for item in items]
        rows.sort(key=_BY_ID)
        if keyed:
            return await self._keyed_results(items, rows)
        by_content: dict[tuple[object, object], list[tuple[object, ...]]] = {}
        for row in rows:
            by_content.setdefault((row[1], row[2]), []).append(row)
        return [(record_json(by_content[item[:2]].pop(0)), False) for item in items]

    async def _keyed_results(self, items: list[WriteItem], rows: list[tuple[object, ...]]) -> list[Stored | Exception]:
        """Each item's answer after an INSERT_KEYED_SQL that stored ``rows`` (sorted by id)."""
        by_content: dict[tuple[object, object], list[tuple[object, ...]]] = {}
        inserted: dict[object, tuple[object, ...]] = {}
        for row in rows:
            if row[5] is None:
                by_content.setdefault((row[1], row[2]), []).append(row)
            else:
                inserted[row[5]] = row
        # Keys this statement did not store: taken before it, by a record committed meanwhile.
        taken = {item[2] for item in items if item[2] is not None and item[2] not in inserted}
        held: dict[object, tuple[object, ...]] = {}
        lookup_failed: Exception | None = None
        if taken:
            try:
                found = await self.db.execute_write(BY_KEYS_SQL, {"idempotency_keys": sorted(taken)})
                held = {row[5]: row for row in found}
            except Exception as exc:  # the rows this statement stored are answered all the same
                lookup_failed = exc
        results: list[Stored | Exception] = []
        answered: set[object] = set()  # keys whose inserted row went to the first item holding it
        for key, value, idempotency_key in items:
            if idempotency_key is None:
                results.append((record_json(by_content[(key, value)].pop(0)), False))
                continue
            row = inserted.get(idempotency_key)
            if row is not None and idempotency_key not in answered:
                answered.add(idempotency_key)  # the first of the batch with this key: it stored the row
                results.append((record_json(row), False))
                continue
            row = row or held.get(idempotency_key)
            if row is None:
                # Not found where it was taken: the lookup failed (its 503), or nothing can explain it (a 500).
                results.append(lookup_failed or RuntimeError(f"no record holds Idempotency-Key {idempotency_key!r}"))
            elif (row[1], row[2]) == (key, value):
                results.append((record_json(row), True))
            else:
                results.append(IdempotencyKeyReused(row[0]))  # type: ignore[arg-type]
        return results


def _about_the_data(exc: Exception) -> bool:
    """A data exception or constraint violation (SQLSTATE classes 22 and 23): one row's fault."""
    sqlstate = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    return sqlstate[:2] in ("22", "23")


async def _outcome(write: object) -> Stored | Exception:
    try:
        return (await write)[0]  # type: ignore[misc]
    except Exception as exc:
        return exc

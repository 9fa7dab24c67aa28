"""POST /api/data with an Idempotency-Key: a retry gets the record its first try stored, never a second one."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from app.api.edge import _post_headers
from app.core.errors import IdempotencyKeyReused
from app.records import BY_KEYS_SQL, INSERT_KEYED_SQL, Records
from webapp_support import DB_NAME, AppProcess, db_env

EDGE = {"content-type": "application/json"}  # the fast path reads it
FASTAPI = {"content-type": "application/vnd.api+json"}  # it goes on to FastAPI
PATHS = [(EDGE, EDGE), (EDGE, FASTAPI), (FASTAPI, EDGE)]
PATH_IDS = ["edge-edge", "edge-fastapi", "fastapi-edge"]


def _post(http: httpx.Client, body: dict, key: str | bytes | None, headers: dict) -> httpx.Response:
    extra = {"idempotency-key": key} if key is not None else {}
    return http.post("/api/data", content=json.dumps(body), headers={**headers, **extra})


def _rows(pg, key: str) -> list[tuple]:
    return pg.execute("SELECT id, key, value FROM records WHERE idempotency_key = %s", (key,), dbname=DB_NAME)


@pytest.mark.parametrize(("first", "retry"), PATHS, ids=PATH_IDS)
def test_a_retry_gets_the_record_its_first_try_stored(client: httpx.Client, pg, first: dict, retry: dict) -> None:
    body = {"key": "order-7", "value": "2 apples"}
    created = _post(client, body, "client-41f3 attempt", first)
    assert created.status_code == 201, created.text
    assert "idempotent-replayed" not in created.headers
    again = _post(client, body, "client-41f3 attempt", retry)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert again.json() == created.json()
    assert _rows(pg, "client-41f3 attempt") == [(created.json()["id"], "order-7", "2 apples")]
    assert pg.execute("SELECT count(*) FROM records", dbname=DB_NAME) == [(1,)]
    # Without a key, or with another one, the same body is a new record.
    assert _post(client, body, None, first).json()["id"] != created.json()["id"]
    assert _post(client, body, "another", first).json()["id"] != created.json()["id"]


@pytest.mark.parametrize(("first", "retry"), PATHS, ids=PATH_IDS)
def test_a_key_reused_for_another_body_is_422(client: httpx.Client, pg, first: dict, retry: dict) -> None:
    created = _post(client, {"key": "k", "value": "v"}, "key-1", first).json()
    for other in ({"key": "k", "value": "w"}, {"key": "j", "value": "v"}):
        resp = _post(client, other, "key-1", retry)
        assert resp.status_code == 422, resp.text
        [error] = resp.json()["detail"]
        assert (error["type"], error["loc"]) == ("idempotency_key_reused", ["header", "Idempotency-Key"])
        assert f"record {created['id']}" in error["msg"]
    assert _rows(pg, "key-1") == [(created["id"], "k", "v")]


@pytest.mark.parametrize("headers", [EDGE, FASTAPI], ids=["edge", "fastapi"])
@pytest.mark.parametrize("key", ["", "k" * 256, b"caf\xe9", "tab\there"], ids=["empty", "256", "latin-1", "tab"])
def test_an_invalid_key_is_422_naming_the_header(client: httpx.Client, pg, headers: dict, key: str | bytes) -> None:
    resp = _post(client, {"key": "k", "value": "v"}, key, headers)
    assert resp.status_code == 422, resp.text
    assert [err["loc"] for err in resp.json()["detail"]] == [["header", "Idempotency-Key"]]
    assert pg.execute("SELECT count(*) FROM records", dbname=DB_NAME) == [(0,)]


def test_the_longest_and_odd_keys_are_taken_as_they_are(client: httpx.Client, pg) -> None:
    for key in ("k" * 255, '"8e03978e-40d5-43e8-bc93-6894a57f9324"', "a b ~!", "x"):
        assert _post(client, {"key": "k", "value": "v"}, key, EDGE).status_code == 201
        assert _post(client, {"key": "k", "value": "v"}, key, FASTAPI).headers["idempotent-replayed"] == "true"
        assert len(_rows(pg, key)) == 1


def test_concurrent_requests_with_one_key_store_one_record(start_app, app: AppProcess, pg) -> None:
    """The same key sent at once to two app processes (as two tasks behind the ALB would get it), with
    requests without a key and with other keys in the same batches: the unique index decides; every
    answer for a key is the one record stored for it, and exactly one answer says it stored it."""
    other = start_app(db_env(host=f"127.0.0.1:{pg.port}"))
    plan = [("same", {"key": "k", "value": "v"})] * 30
    plan += [(None, {"key": f"free-{i}", "value": "v"}) for i in range(10)]
    plan += [(f"own-{i}", {"key": f"own-{i}", "value": "v"}) for i in range(10)]

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(plan))
        async with (
            httpx.AsyncClient(base_url=app.url, timeout=10, limits=limits) as one,
            httpx.AsyncClient(base_url=other.url, timeout=10, limits=limits) as two,
        ):
            return await asyncio.gather(
                *(
                    (one, two)[i % 2].post(
                        "/api/data", json=body, headers={"idempotency-key": key} if key is not None else {}
                    )
                    for i, (key, body) in enumerate(plan)
                )
            )

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [201] * len(plan), [r.text for r in responses if r.status_code != 201]
    same = responses[:30]
    assert len({r.json()["id"] for r in same}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in same) == 1
    assert [r.json()["key"] for r in responses[30:]] == [body["key"] for _, body in plan[30:]]
    assert all("idempotent-replayed" not in r.headers for r in responses[30:])
    assert _rows(pg, "same") == [(same[0].json()["id"], "k", "v")]
    assert pg.execute("SELECT count(*) FROM records", dbname=DB_NAME) == [(21,)]


class _UniqueKeysDatabase:
    """INSERT_KEYED_SQL and BY_KEYS_SQL as PostgreSQL runs them: a row whose Idempotency-Key is held (by a
    stored row or an earlier row of the statement) is skipped; ``held`` are records stored before."""

    def __init__(self, held: dict[str, tuple[str, str]], lookup_error: Exception | None = None) -> None:
        self.rows: dict[str, tuple] = {}
        self.next_id = 100
        for ikey, (key, value) in held.items():
            self._store(key, value, ikey)
        self.statements: list[tuple[str, dict]] = []
        self.lookup_error = lookup_error

    def _store(self, key: str, value: str, ikey: str | None) -> tuple:
        self.next_id += 1
        row = (self.next_id, key, value, "eu-west-1", "2024-01-01T00:00:00Z", ikey)
        if ikey is not None:
            self.rows[ikey] = row
        return row

    async def execute_write(self, sql: str, params: dict) -> list[tuple]:
        self.statements.append((sql, params))
        await asyncio.sleep(0.01)
        if sql == BY_KEYS_SQL:
            if self.lookup_error is not None:
                raise self.lookup_error
            return [self.rows[k] for k in params["idempotency_keys"] if k in self.rows]
        if sql != INSERT_KEYED_SQL:  # a write without a key
            keys = params.get("keys") or [params["key"]]
            values = params.get("values") or [params["value"]]
            return [self._store(k, v, None)[:5] for k, v in zip(keys, values, strict=True)]
        stored = []
        for key, value, ikey in zip(params["keys"], params["values"], params["idempotency_keys"], strict=True):
            if ikey is None or ikey not in self.rows:
                stored.append(self._store(key, value, ikey))
        return stored[::-1]  # whatever order the server returns: rows are matched by id and key


def _batch(db: _UniqueKeysDatabase, items: list[tuple[str, str, str | None]]) -> list[object]:
    async def scenario() -> list[object]:
        records = Records(db, "eu-west-1")  # type: ignore[arg-type]
        first = asyncio.ensure_future(records.create("first", "v"))
        await asyncio.sleep(0)  # "first" is being written: the others go together in the next statement
        rest = [asyncio.ensure_future(records.create(*item)) for item in items]
        await first
        return await asyncio.gather(*rest, return_exceptions=True)

    return asyncio.run(scenario())


BATCH = [
    ("a", "1", "new"),  # stores the key
    ("b", "2", None),
    ("a", "1", "new"),  # the same request again, in the same statement: the row the first stored
    ("x", "9", "new"),  # the same key with another body
    ("c", "3", "old"),  # a retry of a request stored before
    ("d", "4", "old-other"),  # a key stored before, with another body
    ("b", "2", None),
]


def test_one_batch_answers_each_key_from_the_row_that_holds_it() -> None:
    db = _UniqueKeysDatabase({"old": ("c", "3"), "old-other": ("z", "0")})
    results = _batch(db, BATCH)
    [insert, lookup] = db.statements[1:]
    assert insert[0] == INSERT_KEYED_SQL and insert[1]["idempotency_keys"] == [item[2] for item in BATCH]
    assert lookup == (BY_KEYS_SQL, {"idempotency_keys": ["old", "old-other"]})  # only the keys not stored now
    answers = [(json.loads(r[0]), r[1]) if isinstance(r, tuple) else r for r in results]
    new = db.rows["new"][0]
    assert (answers[0][0]["id"], answers[0][1]) == (new, False)
    assert answers[1][0]["key"] == "b" and not answers[1][1]
    assert (answers[2][0]["id"], answers[2][1]) == (new, True)
    assert isinstance(answers[3], IdempotencyKeyReused) and answers[3].record_id == new
    assert (answers[4][0]["id"], answers[4][0]["key"], answers[4][1]) == (db.rows["old"][0], "c", True)
    assert isinstance(answers[5], IdempotencyKeyReused) and answers[5].record_id == db.rows["old-other"][0]
    assert answers[6][0]["key"] == "b" and answers[6][0]["id"] != answers[1][0]["id"]


def test_a_failed_lookup_fails_only_the_requests_that_needed_it() -> None:
    down = ConnectionError("the writer went away")
    db = _UniqueKeysDatabase({"old": ("c", "3"), "old-other": ("z", "0")}, lookup_error=down)
    results = _batch(db, BATCH)
    assert [r is down for r in results] == [False, False, False, False, True, True, False]
    assert [r[1] for r in results if isinstance(r, tuple)] == [False, False, True, False]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"content-type", b"application/json")], (True, True, None)),
        ([(b"idempotency-key", b"k-1"), (b"content-type", b"application/json")], (True, True, "k-1")),
        ([(b"content-type", b"text/plain"), (b"idempotency-key", b"k-1")], (False, True, "k-1")),
        ([(b"idempotency-key", b"k-1"), (b"idempotency-key", b"k\x01")], (False, True, "k-1")),  # the first, as FastAPI
        ([(b"idempotency-key", b"k" * 256)], (False, False, None)),  # FastAPI's 422
        ([(b"idempotency-key", b"")], (False, False, None)),
        ([(b"idempotency-key", b"caf\xe9")], (False, False, None)),
    ],
)
def test_the_fast_path_takes_the_keys_fastapi_takes(headers: list, expected: tuple) -> None:
    assert _post_headers(headers) == expected

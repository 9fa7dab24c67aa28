"""In process, without a database: coalesced reads, batches, the edge's parsing, metrics by the batch, the
replication lag's arithmetic."""

from __future__ import annotations

import asyncio
import json

import pytest
from app.api.edge import page_query, record_fields
from app.core.batching import Abandoned, Batcher, Coalescer
from app.core.db import ReplicaLag
from app.core.observability import LATENCY_BUCKETS, RequestMetrics
from app.records import Records
from app.schemas import RecordIn
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import ValidationError


def run(coro):
    return asyncio.run(coro)


async def _tick() -> None:
    await asyncio.sleep(0.001)


def test_a_read_never_takes_the_answer_of_a_query_started_before_it() -> None:
    async def scenario() -> list[int]:
        calls: list[asyncio.Event] = []

        async def query(key: str) -> int:
            gate = asyncio.Event()
            calls.append(gate)
            number = len(calls)
            await gate.wait()
            return number

        coalescer: Coalescer[str, int] = Coalescer()
        first = asyncio.ensure_future(coalescer.run("page", query))
        await _tick()
        assert len(calls) == 1
        # These arrive while query 1 runs: they wait for the next query, and share it.
        late = [asyncio.ensure_future(coalescer.run("page", query)) for _ in range(5)]
        other = asyncio.ensure_future(coalescer.run("other", query))  # another key: at once
        await _tick()
        assert len(calls) == 2
        calls[0].set()
        await _tick()
        assert len(calls) == 3  # started as soon as query 1 ended, for the five late readers
        calls[1].set()
        calls[2].set()
        return [await first, *[await f for f in late], await other]

    assert run(scenario()) == [1, 3, 3, 3, 3, 3, 2]


def test_coalesced_errors_reach_every_waiter_and_the_next_query_runs_afresh() -> None:
    async def scenario() -> None:
        outcomes = [RuntimeError("down"), RuntimeError("still down"), 42]

        async def query(key: str) -> int:
            await asyncio.sleep(0.01)
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        coalescer: Coalescer[str, int] = Coalescer()
        first = asyncio.ensure_future(coalescer.run("k", query))
        await _tick()
        late = [asyncio.ensure_future(coalescer.run("k", query)) for _ in range(3)]
        results = await asyncio.gather(first, *late, return_exceptions=True)
        assert [str(r) for r in results] == ["down", "still down", "still down", "still down"]
        assert await coalescer.run("k", query) == 42

    run(scenario())


def test_batches_gather_what_arrives_meanwhile_and_fail_items_alone() -> None:
    async def scenario() -> None:
        batches: list[list[int]] = []

        async def run_many(items: list[int]) -> list[int | Exception]:
            batches.append(items)
            await asyncio.sleep(0.01)
            return [ValueError(item) if item == 13 else item * 10 for item in items]

        batcher: Batcher[int, int] = Batcher(run_many, max_batch=4)
        futures = [asyncio.ensure_future(batcher.submit(1))]
        await asyncio.sleep(0.001)  # its batch is running
        futures += [asyncio.ensure_future(batcher.submit(i)) for i in (2, 13, 4, 5, 6, 7)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        # The first item went alone; the others arrived meanwhile: batches of at most 4.
        assert batches == [[1], [2, 13, 4, 5], [6, 7]]
        assert results[:2] == [10, 20] and isinstance(results[2], ValueError) and results[3:] == [40, 50, 60, 70]

    run(scenario())


def test_a_cancelled_waiter_does_not_cancel_the_batch() -> None:
    async def scenario() -> None:
        async def run_many(items: list[int]) -> list[int]:
            await asyncio.sleep(0.02)
            return items

        batcher: Batcher[int, int] = Batcher(run_many, max_batch=10)
        leaver = asyncio.ensure_future(batcher.submit(1))
        stayer = asyncio.ensure_future(batcher.submit(2))
        await _tick()
        leaver.cancel()
        assert await stayer == 2

    run(scenario())


@pytest.mark.parametrize("started", [False, True])
def test_stopped_statements_fail_their_waiters_instead_of_leaving_them_waiting(started: bool) -> None:
    """At shutdown the loop cancels what is left, maybe before it even started."""

    async def scenario() -> None:
        async def hang(arg: object) -> list[int]:
            await asyncio.sleep(10)
            return [0]

        coalescer: Coalescer[str, list[int]] = Coalescer()
        batcher: Batcher[int, int] = Batcher(hang, max_batch=10)  # type: ignore[arg-type]
        waiters = [asyncio.ensure_future(coalescer.run("k", hang)), asyncio.ensure_future(batcher.submit(1))]
        await asyncio.sleep(0)  # the waiters have created the tasks, which have not run yet
        if started:
            await _tick()
            waiters.append(asyncio.ensure_future(batcher.submit(2)))  # queued behind the running batch
            await _tick()
        for task in [*coalescer._tasks, batcher._task]:
            assert task is not None
            task.cancel()
        for waiter in waiters:
            with pytest.raises(Abandoned):
                await asyncio.wait_for(waiter, 1)
        # and both work again afterwards
        assert await asyncio.wait_for(Coalescer().run("k", lambda key: asyncio.sleep(0, "ok")), 1) == "ok"

    run(scenario())


class _FakeDatabase:
    """execute_write refuses a batch holding the key "bad" with a data error (SQLSTATE 22001)."""

    def __init__(self) -> None:
        self.statements: list[dict] = []
        self.next_id = 0

    async def execute_write(self, sql: str, params: dict) -> list[tuple]:
        self.statements.append(params)
        keys = params.get("keys") or [params["key"]]
        values = params.get("values") or [params["value"]]
        if "bad" in keys:
            error = RuntimeError("value too long")
            error.sqlstate = "22001"  # type: ignore[attr-defined]
            raise error
        rows = []
        for key, value in zip(keys, values, strict=True):
            self.next_id += 1
            rows.append((self.next_id, key, value, params["region"], "2024-01-01T00:00:00Z"))
        return rows[::-1]  # whatever order the server returns: rows are matched by id


def test_one_bad_row_does_not_fail_its_batch() -> None:
    async def scenario() -> list[object]:
        db = _FakeDatabase()
        records = Records(db, "eu-west-1")  # type: ignore[arg-type]
        futures = [asyncio.ensure_future(records.create("a", "v"))]
        await asyncio.sleep(0)  # "a" is being written
        futures += [asyncio.ensure_future(records.create(key, "v")) for key in ("b", "bad", "c")]
        results = await asyncio.gather(*futures, return_exceptions=True)
        # "a" alone, then the others' batch (refused), then its rows one by one.
        assert [len(p.get("keys", [p.get("key")])) for p in db.statements] == [1, 3, 1, 1, 1]
        return results

    results = run(scenario())
    assert [json.loads(r[0])["key"] for r in (results[0], results[1], results[3])] == ["a", "b", "c"]  # type: ignore[index]
    assert isinstance(results[2], RuntimeError)


def test_a_batch_answers_each_request_with_a_row_of_its_own() -> None:
    async def scenario() -> list[tuple[bytes, bool]]:
        db = _FakeDatabase()
        records = Records(db, "eu-west-1")  # type: ignore[arg-type]
        first = asyncio.ensure_future(records.create("first", ""))
        await asyncio.sleep(0)
        items = [("same", "v"), ("other", "w"), ("same", "v"), ("x", ""), ("same", "v")]
        rest = [asyncio.ensure_future(records.create(k, v)) for k, v in items]
        await first
        assert len(db.statements[-1]["keys"]) == len(items)  # one statement for the five
        return await asyncio.gather(*rest)

    results = [json.loads(body) for body, _ in run(scenario())]
    assert [(r["key"], r["value"]) for r in results] == [
        ("same", "v"), ("other", "w"), ("same", "v"), ("x", ""), ("same", "v")
    ]  # fmt: skip
    assert len({r["id"] for r in results}) == 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", (20, None)),
        (b"limit=5", (5, None)),
        (b"before=9&limit=100", (100, 9)),
        (b"before=9223372036854775807", (20, 2**63 - 1)),
        # everything else goes on to FastAPI, which validates (422) or ignores (unknown names)
        (b"limit=0", None),
        (b"limit=101", None),
        (b"limit=05", None),
        (b"limit=-1", None),
        (b"limit=5&limit=6", None),
        (b"before=9223372036854775808", None),
        (b"limit", None),
        (b"limit=", None),
        (b"foo=1", None),
        (b"limit=5&", None),
        (b"limit=%35", None),
    ],
)
def test_page_query(query: bytes, expected: tuple[int, int | None] | None) -> None:
    assert page_query(query) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"key": "k", "value": "v"}', ("k", "v")),
        (b'{"key": "k", "value": ""}', ("k", "")),
        ('{"key": "ключ", "value": "😀"}'.encode(), ("ключ", "😀")),
        (json.dumps({"key": "k" * 128, "value": "v" * 4096}).encode(), ("k" * 128, "v" * 4096)),
        # everything else goes on to FastAPI and its 422
        (b'{"key": ""}', None),
        (json.dumps({"key": "k" * 129}).encode(), None),
        (json.dumps({"key": "k", "value": "v" * 4097}).encode(), None),
        (b'{"key": "k"}', None),  # value is required too
        (b'{"value": "v"}', None),
        (b"{}", None),
        (b'{"key": 5}', None),
        (b'{"key": "k", "value": null}', None),
        (b'{"key": "k", "extra": 1}', None),
        (b'{"key": "nul\\u0000"}', None),
        (b'{"key": "\\ud800"}', None),
        (b'["key"]', None),
        (b"{", None),
        (b"", None),
    ],
)
def test_record_fields(body: bytes, expected: tuple[str, str] | None) -> None:
    assert record_fields(body) == expected


def _exposed(registry: CollectorRegistry) -> list[str]:
    """The exposition's lines, without the ``_created`` times (when a series started)."""
    lines = generate_latest(registry).decode().splitlines()
    return [line.rsplit(" ", 1)[0] if "_created{" in line else line for line in lines]


def test_metrics_collector_exposes_what_prometheus_own_metrics_would() -> None:
    """Same names, types, help, labels, buckets and values as a Counter and a Histogram counting the
    same requests (the metrics before the custom collector)."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    metrics = RequestMetrics()
    ours.register(metrics)
    requests = Counter("http_requests_total", "HTTP requests served", ["method", "route", "status"], registry=theirs)
    latency = Histogram(
        "http_request_duration_seconds",
        "Time from request to the end of the response",
        ["method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=theirs,
    )
    assert _exposed(ours) == _exposed(theirs)  # nothing counted yet
    samples = [("GET", "/a", 200, e) for e in (0.0005, 0.001, 0.003, 7.0, 5.0, 0.0)]
    samples += [("GET", "/a", 503, 0.001), ("POST", "/a", 201, 0.02), ("GET", "unmatched", 404, 1e-6)]

    async def count() -> None:  # on an event loop, as the app counts
        for method, route, status, elapsed in samples:
            metrics.record(method, route, status, elapsed)

    run(count())
    for method, route, status, elapsed in samples:
        requests.labels(method, route, str(status)).inc()
        latency.labels(method, route).observe(elapsed)
    assert _exposed(ours) == _exposed(theirs)
    assert 'http_request_duration_seconds_bucket{le="0.001",method="GET",route="/a"} 4.0' in _exposed(ours)


def test_metrics_of_several_workers_add_up(tmp_path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, any worker's /metrics reports the sum of all workers' counts."""
    one, two = RequestMetrics(str(tmp_path), "1"), RequestMetrics(str(tmp_path), "2")
    one.record("GET", "/a", 200, 0.002)
    one.record("GET", "/a", 200, 0.02)
    two.record("GET", "/a", 200, 0.002)
    two.record("POST", "/a", 201, 0.5)
    registry = CollectorRegistry()
    registry.register(one)
    text = generate_latest(registry).decode()
    assert 'http_requests_total{method="GET",route="/a",status="200"} 3.0' in text
    assert 'http_requests_total{method="POST",route="/a",status="201"} 1.0' in text
    assert 'http_request_duration_seconds_bucket{le="0.0025",method="GET",route="/a"} 2.0' in text
    assert 'http_request_duration_seconds_count{method="GET",route="/a"} 3.0' in text
    assert "_created" not in text  # as prometheus_client's multiprocess mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["http-1.json", "http-2.json"]


def test_replica_lag() -> None:
    """ReplicaLag.measure(streaming, in_sync, writer_end_at, replayed_commit_at, now), times in seconds."""
    lag = ReplicaLag()
    assert lag.measure(None, True, None, None, 100.0) is None  # a writer: no WAL receiver
    # Never seen in sync (just started): from the last replayed commit to the writer's reported end.
    assert lag.measure(True, False, 500.0, 490.0, 500.5) == pytest.approx(10.0)
    # In sync: 0, however old the last replayed commit (the writer idle for long).
    assert lag.measure(True, True, 10.0, 10.0, 1000.0) == 0.0
    # The writer writes again after that idle time; replay is a moment behind: not the idle time.
    assert lag.measure(True, False, 1000.1, 10.0, 1000.2) == pytest.approx(0.1)
    # Replay does not follow while the writer works: the lag grows with the writer's work...
    assert lag.measure(True, False, 1005.0, 10.0, 1005.1) == pytest.approx(5.0)
    # ... and stays put while the writer is idle.
    assert lag.measure(True, False, 1005.0, 10.0, 1060.0) == pytest.approx(5.0)
    assert lag.measure(True, True, 1005.0, 1005.0, 1061.0) == 0.0
    # Not streaming: unknown, and the moment seen in sync is forgotten (the history may change).
    assert lag.measure(False, True, None, 1005.0, 1062.0) is None
    assert lag.measure(True, False, 2000.0, 1005.0, 2000.5) == pytest.approx(995.0)
    assert lag.measure(True, False, 2000.0, None, 2000.5) is None  # nothing replayed to count from


def _as_fastapi_reads(body: bytes) -> tuple[str, str] | None:
    """What FastAPI makes of a JSON body for ``RecordIn``: (key, value), or None for its 422."""
    try:
        return tuple(RecordIn.model_validate(json.loads(body)).model_dump().values())
    except (ValueError, ValidationError):  # json.JSONDecodeError is a ValueError
        return None


@pytest.mark.parametrize(
    "body",
    [
        b'{"key": "k", "value": "v"}',
        b'{"value": "v", "key": "k"}',
        b'{"key": "k", "value": "v", "key": "z"}',  # duplicate names: the last one, both ways
        b'{"key": "k", "value": ""}',
        b'{"key": "", "value": ""}',
        b'{"key": " ", "value": " "}',
        json.dumps({"key": "k" * 128, "value": "v" * 4096}).encode(),
        json.dumps({"key": "k" * 129, "value": "v"}).encode(),
        json.dumps({"key": "k", "value": "v" * 4097}).encode(),
        json.dumps({"key": "😀" * 128, "value": "ключ" * 1024}).encode(),
        json.dumps({"key": "😀" * 129, "value": ""}).encode(),
        b'{"key": "nul\\u0000", "value": "v"}',
        b'{"key": "k", "value": "\\u0000"}',
        b'{"key": "\\ud800", "value": "v"}',
        b'{"key": "k", "value": "\\udfff"}',
        b'{"key": "\\ud83d\\ude00", "value": "v"}',
        b'{"key": "k", "value": null}',
        b'{"key": 5, "value": "v"}',
        b'{"key": "k", "value": 1.5}',
        b'{"key": "k", "value": ["v"]}',
        b'{"key": "k", "value": "v", "other": 1}',
        b'{"key": "k"}',
        b"{}",
        b'["k", "v"]',
        b'"k"',
        b"null",
        b"{",
        b"",
        b'{"key": "k", "value": NaN}',
        b'{"key": "\xff", "value": "v"}',  # not UTF-8
    ],
)
def test_the_fast_path_takes_a_body_exactly_when_fastapi_would(body: bytes) -> None:
    """One definition of a valid body (``RecordIn``): the fast path may pass a valid body on to FastAPI,
    but never takes one FastAPI would refuse, nor reads one differently."""
    assert record_fields(body) == _as_fastapi_reads(body)


def test_a_valid_body_the_fast_path_passes_on() -> None:
    body = b'\xef\xbb\xbf{"key": "k", "value": "v"}'  # a byte order mark: json.loads skips it, orjson not
    assert (record_fields(body), _as_fastapi_reads(body)) == (None, ("k", "v"))


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["key", "value", "other"]),
        st.one_of(st.text(max_size=140), st.text(alphabet="ab\x00\ud800", max_size=3), st.integers(), st.none()),
    )
)
def test_the_fast_path_agrees_with_recordin_on_any_document(doc: dict) -> None:
    body = json.dumps(doc).encode()  # lone surrogates as \\u escapes, as a client may send them
    assert record_fields(body) == _as_fastapi_reads(body)

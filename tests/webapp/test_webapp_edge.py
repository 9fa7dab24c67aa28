"""The edge (app/api/edge.py) and FastAPI answer alike; batched writes and reads under concurrency."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from webapp_support import DB_NAME, AppProcess


def _post_many(app: AppProcess, bodies: list[dict]) -> list[httpx.Response]:
    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(bodies))
        async with httpx.AsyncClient(base_url=app.url, timeout=10, limits=limits) as http:
            return await asyncio.gather(*(http.post("/api/data", json=body) for body in bodies))

    return asyncio.run(post_all())


def test_concurrent_writes_each_get_their_own_record(client: httpx.Client, app: AppProcess, pg) -> None:
    """Writes arriving together are one INSERT: every answer must still be the caller's own row."""
    bodies = [{"key": f"key-{i}", "value": f"value-{i}" * (i % 7)} for i in range(120)]
    responses = _post_many(app, bodies)
    assert [r.status_code for r in responses] == [201] * len(bodies)
    records = [r.json() for r in responses]
    assert [(r["key"], r["value"]) for r in records] == [(b["key"], b["value"]) for b in bodies]
    assert len({r["id"] for r in records}) == len(bodies)
    stored = dict(pg.execute("SELECT id, key FROM records", dbname=DB_NAME))
    assert {r["id"]: r["key"] for r in records} == stored

    async def read_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
            ids = [r["id"] for r in records] + [10**9, 10**9]  # and two that do not exist
            return await asyncio.gather(*(http.get(f"/api/data/{i}") for i in ids))

    reads = asyncio.run(read_all())
    assert [r.json() for r in reads[:-2]] == records
    assert [r.status_code for r in reads[-2:]] == [404, 404]


def test_a_read_sees_the_write_acknowledged_before_it(client: httpx.Client) -> None:
    for i in range(20):
        created = client.post("/api/data", json={"key": f"k{i}", "value": "v"}).json()
        assert client.get("/api/data", params={"limit": 1}).json()["items"] == [created]


@pytest.mark.parametrize(
    ("edge", "fastapi"),
    [
        # The same question, asked so that the edge answers it, and so that it goes on to FastAPI.
        ("/api/data?limit=2", "/api/data?limit=2&unrelated=1"),
        ("/api/data?limit=2&before=3", "/api/data?before=3&limit=02"),
        ("/api/data", "/api/data?limit=20&x="),
        ("/api/data/2", "/api/data/2?x=1"),
        ("/api/data/99", "/api/data/099"),
    ],
)
def test_edge_and_fastapi_answer_alike(client: httpx.Client, edge: str, fastapi: str) -> None:
    for i in range(4):
        client.post("/api/data", json={"key": f"k{i}", "value": "v"})
    a, b = client.get(edge), client.get(fastapi)
    assert (a.status_code, a.headers["content-type"], a.json()) == (b.status_code, b.headers["content-type"], b.json())
    assert re.fullmatch(r"[0-9a-f]{32}", a.headers["x-request-id"])


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"key": "k", "value": "v"}', {"content-type": "application/json; charset=utf-8"}, 201),
        (b'{"key": "k", "value": "v"}', {"content-type": "Application/JSON"}, 201),
        (b'{"key": "k", "value": "v"}', {}, 422),  # no content type: FastAPI does not read it as JSON
        (b'{"key": "k", "value": "v"}', {"content-type": "text/plain"}, 422),
        (b'{"key": "k", "value": "v", "other": 1}', {"content-type": "application/json"}, 422),
        (b"not json", {"content-type": "application/json"}, 422),
    ],
)
def test_post_bodies_the_edge_passes_on(client: httpx.Client, content: bytes, headers: dict, status: int) -> None:
    resp = client.post("/api/data", content=content, headers=headers)
    assert resp.status_code == status, resp.text
    if status == 201:
        assert resp.json()["key"] == "k"


def test_chunked_and_oversized_bodies(client: httpx.Client) -> None:
    def chunks():
        yield b'{"key": "chunk'
        yield b'ed", "value": "'
        yield b'v"}'

    resp = client.post("/api/data", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["key"] == "chunked"
    # A value too long for the record, in a body within MAX_BODY_BYTES: FastAPI answers, naming the field.
    resp = client.post("/api/data", json={"key": "k", "value": "v" * 60_000})
    assert resp.status_code == 422
    assert ["body", "value"] in [err["loc"] for err in resp.json()["detail"]]


def test_edge_requests_are_counted_and_logged(client: httpx.Client, app: AppProcess) -> None:
    client.post("/api/data", json={"key": "k", "value": "v"}, headers={"X-Request-ID": "edge-post-1"})
    client.get("/api/data", headers={"X-Request-ID": "edge-list-1"})
    client.get("/api/status", headers={"X-Request-ID": "edge-status-1"})
    text = client.get("/metrics").text
    assert re.search(r'http_requests_total\{method="GET",route="/api/status",status="200"\} [1-9]', text)
    assert re.search(r'http_requests_total\{method="POST",route="/api/data",status="201"\} [1-9]', text)
    assert re.search(r'http_requests_total\{method="GET",route="/api/data",status="200"\} [1-9]', text)
    deadline = time.monotonic() + 5
    while "edge-list-1" not in app.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = app.logs().splitlines()
    post = next(line for line in lines if "edge-post-1" in line)
    assert '"route":"/api/data"' in post and '"status":201' in post and '"method":"POST"' in post
    assert any('"route":"/api/data"' in line and '"status":200' in line for line in lines if "edge-list-1" in line)
    assert "edge-status-1" not in app.logs()  # a probe: counted, not logged

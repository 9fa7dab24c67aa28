"""The app on a real streaming hot standby, and through a real promotion while a client writes."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from webapp_support import DB_NAME, PASSWORD, db_env, free_port, migrate

from sandbox.postgres import PostgresNode


@pytest.fixture
def pair(pg_base: Path, request: pytest.FixtureRequest) -> Iterator[tuple[PostgresNode, PostgresNode]]:
    """A migrated primary and its streaming hot standby, of this test's own."""
    name = request.node.name[:40]
    primary = PostgresNode(pg_base / f"{name}-a", free_port(), PASSWORD, fast=True)
    standby = None
    try:
        primary.init().start()
        migrate(primary)
        standby = primary.create_standby(pg_base / f"{name}-b", free_port())
        yield primary, standby
    finally:
        for node in (standby, primary):
            if node is not None:
                node.destroy()


def test_read_only_region_reads_and_refuses_writes_with_503(pair, start_app) -> None:
    primary, standby = pair
    primary.execute("INSERT INTO records (key, value, region) VALUES ('k', 'v', 'us-east-1')", dbname=DB_NAME)
    standby.wait_for_replay(primary)

    replica_app = start_app(db_env(host=f"127.0.0.1:{standby.port}", REGION="us-west-2", READ_ONLY_RETRY_AFTER="7"))
    with replica_app.client() as http:
        assert [r["key"] for r in http.get("/api/data").json()["items"]] == ["k"]
        assert http.get("/api/data/1").json()["region"] == "us-east-1"
        status = http.get("/api/status").json()
        assert (status["region"], status["role"], status["writes_to"]) == ("us-west-2", "replica", "local")
        assert status["replication_lag_s"] is not None and status["replication_lag_s"] >= 0
        assert http.get("/health/ready").json()["role"] == "replica"

        resp = http.post("/api/data", json={"key": "nope"})
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "7"
        assert resp.json()["reason"] == "read-only"
        assert "us-west-2" in resp.json()["detail"] and "read-only" in resp.json()["detail"]
    assert "Traceback" not in replica_app.logs()


def test_writes_go_to_the_writer_endpoint_when_configured(pair, start_app) -> None:
    primary, standby = pair
    env = db_env(host=f"127.0.0.1:{standby.port}", REGION="us-west-2", DB_WRITER_HOST=f"127.0.0.1:{primary.port}")
    with start_app(env).client() as http:
        resp = http.post("/api/data", json={"key": "forwarded"})
        assert resp.status_code == 201, resp.text
        assert resp.json()["region"] == "us-west-2"
        status = http.get("/api/status").json()
        assert (status["role"], status["writes_to"]) == ("replica", "writer-endpoint")
        # The write reached the primary and replicates back to this region's reader.
        standby.wait_for_replay(primary)
        assert http.get(f"/api/data/{resp.json()['id']}").json()["key"] == "forwarded"


def test_writes_resume_within_a_second_of_promotion(pair, start_app) -> None:
    """Writer = a multi-host list (old primary, standby) with target_session_attrs=read-write: no restart."""
    primary, standby = pair
    hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
    app = start_app(db_env(host=hosts, DB_WRITER_HOST=hosts, DB_READER_HOST=f"127.0.0.1:{standby.port}"))

    results: list[tuple[float, int]] = []  # (monotonic time, status; 0 = no HTTP answer)
    stop = threading.Event()

    def writer() -> None:
        with app.client() as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    code = http.post("/api/data", json={"key": f"w{i}"}, timeout=3).status_code
                except httpx.HTTPError:
                    code = 0
                results.append((time.monotonic(), code))
                time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(1.0)
        assert any(code == 201 for _, code in results), results[-5:]
        crash_at = time.monotonic()
        primary.stop("immediate")  # the writer region "fails"
        time.sleep(0.5)  # an outage before someone promotes
        standby.promote()
        promoted_at = time.monotonic()
        time.sleep(2.0)
    finally:
        stop.set()
        thread.join(timeout=10)

    after = [(t, c) for t, c in results if t >= promoted_at]
    first_ok = next((t for t, c in after if c == 201), None)
    failed = [(t, c) for t, c in results if c != 201]
    oks = [t for t, c in results if c == 201]
    gap = max(b - a for a, b in itertools.pairwise(oks))
    print(
        f"\nfailover: {len(results)} writes, {len(failed)} failed, longest gap without a successful write "
        f"{gap:.2f}s (crash to promotion {promoted_at - crash_at:.2f}s), first success "
        f"{(first_ok or float('nan')) - promoted_at:.3f}s after promotion"
    )
    assert first_ok is not None and first_ok - promoted_at <= 1.0
    # Every failure was a clear 503, never a 500 nor a hung request.
    assert {c for _, c in failed} <= {503}, failed
    assert all(t >= crash_at for t, _ in failed)
    assert gap < (promoted_at - crash_at) + 1.0
    # The records written after the promotion are on the new writer.
    assert standby.execute("SELECT count(*) FROM records", dbname=DB_NAME)[0][0] >= len(after) - len(failed)
    assert "Traceback" not in app.logs()

"""The app on a real streaming hot standby (roles, replication lag), through a real promotion while a client
writes, and across the loss of its connections (as a switchover or a restart kills them)."""

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


@pytest.fixture
def node(pg_base: Path, request: pytest.FixtureRequest) -> Iterator[PostgresNode]:
    """A migrated writer of this test's own (to be restarted without disturbing the session's)."""
    node = PostgresNode(pg_base / request.node.name[:40], free_port(), PASSWORD, fast=True)
    try:
        node.init().start()
        migrate(node)
        yield node
    finally:
        node.destroy()


def _kill_connections(node: PostgresNode, region: str) -> None:
    """pg_terminate_backend on every connection of the app serving ``region`` (application_name
    webapp-<region>), as a switchover or a restart ends them; returns once they are gone. All at once and
    without pg_terminate_backend's own wait (10 ms polls, one backend after the other): the app's last
    write connection must still be within its ping bypass window after this."""
    app_connections = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
    with node.connect() as conn:
        deadline = time.monotonic() + 10
        while not (pids := [pid for (pid,) in conn.execute(app_connections, (f"webapp-{region}",))]):
            assert time.monotonic() < deadline, "the app has no connection to kill"
            time.sleep(0.01)
        conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone()[0]:
            assert time.monotonic() < deadline, pids
            time.sleep(0.002)


def _status(http: httpx.Client) -> dict:
    resp = http.get("/api/status")
    assert resp.status_code == 200, resp.text
    return resp.json()


def _wait_status(http: httpx.Client, done, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while not done(status := _status(http)):
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    return status


def test_requests_after_the_connections_were_killed_are_answered(node, start_app) -> None:
    """The first read and the first write after the app's connections were killed (a switchover, a restart)
    are answered, not 503s: a dead read connection is found by its failure and the read retried; a dead
    write connection is found at checkout, before the write is sent (a write must not be sent twice)."""
    # The role monitor shares the writer's pool, and its own failure would replace the dead connections
    # before the requests meet them: slowed down here.
    region = "eu-west-1"
    app = start_app(db_env(host=f"127.0.0.1:{node.port}", REGION=region, ROLE_REFRESH_INTERVAL="60"))
    with app.client() as http:
        first = http.post("/api/data", json={"key": "first", "value": "v"})
        assert first.status_code == 201, first.text
        # Reads: a page, then a lookup by id, each the first request after the kill.
        assert http.get("/api/data").status_code == 200
        _kill_connections(node, region)
        resp = http.get("/api/data")
        assert resp.status_code == 200, resp.text
        assert [r["key"] for r in resp.json()["items"]] == ["first"]
        assert http.get(f"/api/data/{first.json()['id']}").status_code == 200
        _kill_connections(node, region)
        resp = http.get(f"/api/data/{first.json()['id']}")
        assert resp.status_code == 200, resp.text

        # Writes: right after the previous one (its connection within the ping bypass window), and later.
        for pause in (0.0, 1.0):
            assert http.post("/api/data", json={"key": "warm", "value": "v"}).status_code == 201
            _kill_connections(node, region)
            time.sleep(pause)
            resp = http.post("/api/data", json={"key": f"after-{pause}", "value": "v"})
            assert resp.status_code == 201, resp.text

        # The server restarted under the app (a planned switchover in the sandbox).
        node.stop("fast")
        node.start()
        assert http.get("/api/data/1").status_code == 200
        assert http.post("/api/data", json={"key": "restarted", "value": "v"}).status_code == 201
        assert http.get("/api/data", params={"limit": 1}).json()["items"][0]["key"] == "restarted"
    assert "Traceback" not in app.logs()


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

        resp = http.post("/api/data", json={"key": "nope", "value": "v"})
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "7"
        assert resp.json()["reason"] == "read-only"
        assert "us-west-2" in resp.json()["detail"] and "read-only" in resp.json()["detail"]
    assert "Traceback" not in replica_app.logs()


def test_an_idle_replica_in_sync_reports_no_lag(pair, start_app) -> None:
    """The lag of an idle, in-sync replica stays 0: it used to climb with the age of the last replayed
    transaction (85 s seen) once pg_last_wal_receive_lsn() and pg_last_wal_replay_lsn() differed, as they
    do after the standby restarts (the receiver counts from the start of the WAL segment it streams from)."""
    primary, standby = pair
    # As around a switchover: a WAL switch and a checkpoint on the writer, a last write, a standby restart.
    primary.execute("SELECT pg_switch_wal()")
    primary.execute("CHECKPOINT")
    primary.execute("INSERT INTO records (key, value, region) VALUES ('k', 'v', 'us-east-1')", dbname=DB_NAME)
    standby.wait_for_replay(primary)
    standby.stop()
    standby.start()

    app = start_app(db_env(host=f"127.0.0.1:{standby.port}", REGION="us-west-2"))
    with app.client() as http:
        _wait_status(http, lambda s: s["role"] == "replica" and s["replication_lag_s"] is not None)
        lags = []
        deadline = time.monotonic() + 11  # idle for longer than the old measure took to show it
        while time.monotonic() < deadline:
            lags.append(_status(http)["replication_lag_s"])
            time.sleep(0.25)
    assert lags and all(lag is not None and lag < 1 for lag in lags), lags


def test_a_replica_behind_reports_a_lag_that_grows_while_the_writer_works(pair, start_app) -> None:
    """Replay paused while the writer writes: the lag grows with the writer's work the replica lacks; it
    stays put while the writer is idle, and is 0 again once replay has caught up."""
    primary, standby = pair
    insert = "INSERT INTO records (key, value, region) VALUES ('k', 'v', 'us-east-1')"
    primary.execute(insert, dbname=DB_NAME)
    standby.wait_for_replay(primary)
    app = start_app(db_env(host=f"127.0.0.1:{standby.port}", REGION="us-west-2"))
    with app.client() as http:
        _wait_status(http, lambda s: s["role"] == "replica" and s["replication_lag_s"] == 0)
        standby.execute("SELECT pg_wal_replay_pause()")

        lags = []
        with primary.connect(DB_NAME) as conn:
            for _ in range(3):
                stop = time.monotonic() + 1
                while time.monotonic() < stop:
                    conn.execute(insert)
                    time.sleep(0.05)
                time.sleep(0.5)  # a role check or two
                lags.append(_status(http)["replication_lag_s"])
        assert None not in lags and lags[0] > 0, lags
        assert lags[1] > lags[0] + 0.5 and lags[2] > lags[1] + 0.5, lags

        # The writer idle: the lag does not grow (checked over a stretch without any WAL from the
        # writer: its background processes write some now and then).
        for _ in range(5):
            position = primary.execute("SELECT pg_current_wal_lsn()::text")
            before = _status(http)["replication_lag_s"]
            time.sleep(1.5)
            after = _status(http)["replication_lag_s"]
            if primary.execute("SELECT pg_current_wal_lsn()::text") == position:
                assert after == before, (before, after)
                break
        else:
            pytest.fail("the writer never stayed idle for 1.5 s")

        standby.execute("SELECT pg_wal_replay_resume()")
        _wait_status(http, lambda s: s["replication_lag_s"] == 0)


def test_writes_go_to_the_writer_endpoint_when_configured(pair, start_app) -> None:
    primary, standby = pair
    env = db_env(host=f"127.0.0.1:{standby.port}", REGION="us-west-2", DB_WRITER_HOST=f"127.0.0.1:{primary.port}")
    with start_app(env).client() as http:
        resp = http.post("/api/data", json={"key": "forwarded", "value": "v"})
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
                    code = http.post("/api/data", json={"key": f"w{i}", "value": "v"}, timeout=3).status_code
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


def test_a_write_during_a_promotion_is_held_until_the_new_writer_takes_it(pair, start_app) -> None:
    """The writer instance crashes and a reader is promoted 1.5 s later (Aurora within one region): a write
    sent in between waits for the new writer (WRITE_WAIT) instead of failing; with WRITE_WAIT=0 it fails."""
    primary, standby = pair
    hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
    env = db_env(host=hosts, DB_WRITER_HOST=hosts, DB_READER_HOST=f"127.0.0.1:{standby.port}")
    held, impatient = start_app(env), start_app(env | {"WRITE_WAIT": "0"})
    with held.client() as http, impatient.client() as http_impatient:
        for client in (http, http_impatient):
            assert client.post("/api/data", json={"key": "before", "value": "v"}).status_code == 201
        primary.stop("immediate")
        promotion = threading.Timer(1.5, standby.promote)
        promotion.start()
        try:
            refused = http_impatient.post("/api/data", json={"key": "impatient", "value": "v"}, timeout=10)
            started = time.monotonic()
            answer = http.post("/api/data", json={"key": "during", "value": "v"}, timeout=10)
            waited = time.monotonic() - started
        finally:
            promotion.join()
    assert refused.status_code == 503, refused.text
    assert answer.status_code == 201, answer.text
    assert 0.5 < waited < 5.0, waited
    assert standby.execute("SELECT count(*) FROM records WHERE key = 'during'", dbname=DB_NAME)[0][0] == 1
    assert "Traceback" not in held.logs()


def test_reads_go_to_the_writer_while_the_reader_is_down_and_come_back(pair, start_app) -> None:
    """The old primary's instances restart as it rejoins after a switchover while the edge may still send
    it API reads: they are answered from the writer endpoint, then from the reader again once it is back."""
    primary, standby = pair
    primary.execute("INSERT INTO records (key, value, region) VALUES ('k', 'v', 'us-east-1')", dbname=DB_NAME)
    standby.wait_for_replay(primary)
    env = db_env(host=f"127.0.0.1:{standby.port}", REGION="us-west-2", DB_WRITER_HOST=f"127.0.0.1:{primary.port}")
    app = start_app(env)
    # The reader's sessions that ran a read (the role monitor's session runs no query on records).
    reads_on_reader = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'webapp-us-west-2' AND query LIKE '%records%'"
    )
    with app.client() as http:
        assert http.get("/api/data?limit=1").json()["items"][0]["key"] == "k"
        standby.stop("immediate")
        for _ in range(20):
            started = time.monotonic()
            resp = http.get("/api/data?limit=1")
            assert resp.status_code == 200, resp.text
            assert resp.json()["items"][0]["key"] == "k"
            assert time.monotonic() - started < 3, "a read waited for the pool instead of going to the writer"
        # A statement's answer from the writer is still the client's answer (nothing hides a missing record).
        assert http.get("/api/data/999999").status_code == 404

        standby.start()
        deadline = time.monotonic() + 20
        while "reader back" not in app.logs():
            assert time.monotonic() < deadline, "the reads never came back to the reader"
            assert http.get("/api/data?limit=1").status_code == 200
            time.sleep(0.1)
        for _ in range(5):
            assert http.get("/api/data?limit=1").status_code == 200
        assert standby.execute(reads_on_reader)[0][0] > 0, "reads did not go back to the reader"
    logs = app.logs()
    assert "reading from the writer endpoint" in logs and "reader back" in logs, logs[-2000:]
    assert "Traceback" not in logs

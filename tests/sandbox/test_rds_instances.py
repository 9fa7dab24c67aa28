"""Aurora DB instances are nodes (sandbox/services/rds/instances.py): readers stream from the writer, the reader
endpoint balances over them, a crashed writer fails over by itself, FailoverDBCluster and RebootDBInstance."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from sandbox.config import SandboxConfig
from tests.support import sandbox_control, wait_until

ENGINE = "aurora-postgresql"
USER = "hawa_admin"
PASSWORD = "first-password-1"
DATABASE = "app"
REGION = "us-east-1"
# A server restarting refuses connections, and a listing may miss a key meanwhile: both count as "not yet".
_wait = functools.partial(wait_until, ignoring=(psycopg.Error, KeyError))


def _connect(sandbox: SandboxConfig, name: str, port: int = 5432, **extra: Any) -> psycopg.Connection:
    host, local_port = sandbox_control(sandbox, "GET", "")["names"][f"{name}:{port}"].rsplit(":", 1)
    return psycopg.connect(
        host=host, port=int(local_port), user=USER, password=PASSWORD, dbname=DATABASE, autocommit=True,
        connect_timeout=3, **extra,
    )  # fmt: skip


def _create_cluster(rds: Any, cid: str) -> dict[str, Any]:
    return rds.create_db_cluster(
        DBClusterIdentifier=cid, Engine=ENGINE, EngineVersion="16.4", MasterUsername=USER,
        MasterUserPassword=PASSWORD, DatabaseName=DATABASE,
    )["DBCluster"]  # fmt: skip


def _cluster(rds: Any, cid: str) -> dict[str, Any]:
    return rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]


def _writer(rds: Any, cid: str) -> str:
    writers = [m["DBInstanceIdentifier"] for m in _cluster(rds, cid)["DBClusterMembers"] if m["IsClusterWriter"]]
    assert len(writers) == 1, writers
    return writers[0]


def _instance_status(rds: Any, iid: str) -> str:
    return rds.describe_db_instances(DBInstanceIdentifier=iid)["DBInstances"][0]["DBInstanceStatus"]


def _all_available(rds: Any, cid: str, instances: list[str]) -> bool:
    return _cluster(rds, cid)["Status"] == "available" and all(
        _instance_status(rds, i) == "available" for i in instances
    )


def _described(sandbox: SandboxConfig, cid: str) -> dict[str, Any]:
    return next(c for c in sandbox_control(sandbox, "GET", "aurora")["clusters"] if c["DBClusterIdentifier"] == cid)


def _streaming_readers(sandbox: SandboxConfig, cid: str) -> list[str]:
    return [i["DBInstanceIdentifier"] for i in _described(sandbox, cid)["Instances"] if i["InSyncQuorum"]]


def _messages(rds: Any, cid: str) -> list[str]:
    events = rds.describe_events(SourceIdentifier=cid, SourceType="db-cluster", Duration=10)["Events"]
    return [e["Message"] for e in events]


@pytest.fixture
def cluster(aws: Callable[..., Any], sandbox: SandboxConfig) -> Iterator[dict[str, Any]]:
    """A cluster with a writer (tier 1) and two readers (tiers 0 and 2), all available and in the quorum."""
    rds = aws("rds", REGION)
    cid = f"i-{uuid.uuid4().hex[:8]}"
    record = _create_cluster(rds, cid)
    instances = [f"{cid}-1", f"{cid}-2", f"{cid}-3"]
    endpoints = {}
    for iid, tier in zip(instances, (1, 0, 2), strict=True):
        created = rds.create_db_instance(
            DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine=ENGINE, DBInstanceClass="db.r6g.large",
            PromotionTier=tier,
        )["DBInstance"]  # fmt: skip
        endpoints[iid] = created["Endpoint"]["Address"]
    _wait("every instance available", lambda: _all_available(rds, cid, instances), 60)
    _wait("both readers in the quorum", lambda: len(_streaming_readers(sandbox, cid)) == 2, 20)
    yield {"rds": rds, "cid": cid, "record": record, "instances": instances, "endpoints": endpoints}
    for iid in instances:
        with contextlib.suppress(ClientError):
            rds.delete_db_instance(DBInstanceIdentifier=iid, SkipFinalSnapshot=True)
    with contextlib.suppress(ClientError):
        rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)


def test_a_create_answers_creating_once_the_node_is_up(aws: Callable[..., Any]) -> None:
    """CreateDBCluster / CreateDBInstance answer "creating", as AWS does, but only once the node is up: the
    collection's waiters poll at once and would otherwise sleep 20 s or 60 s (sandbox/services/rds/provider.py)."""
    rds = aws("rds", REGION)
    cid = f"s-{uuid.uuid4().hex[:8]}"
    created = _create_cluster(rds, cid)
    try:
        assert created["Status"] == "creating"
        assert _cluster(rds, cid)["Status"] == "available"
        # The writer takes the cluster's node, which is up already; the reader is a node of its own (a base backup).
        for iid in (f"{cid}-1", f"{cid}-2"):
            instance = rds.create_db_instance(
                DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine=ENGINE, DBInstanceClass="db.r6g.large"
            )["DBInstance"]
            assert instance["DBInstanceStatus"] == ("creating" if iid.endswith("-2") else "available")
            assert _instance_status(rds, iid) == "available"
    finally:
        for iid in (f"{cid}-2", f"{cid}-1"):
            with contextlib.suppress(ClientError):
                rds.delete_db_instance(DBInstanceIdentifier=iid, SkipFinalSnapshot=True)
        rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)


def test_each_instance_is_its_own_server_and_the_reader_endpoint_balances(
    cluster: dict[str, Any], sandbox: SandboxConfig
) -> None:
    rds, cid, record = cluster["rds"], cluster["cid"], cluster["record"]
    first, second, third = cluster["instances"]
    assert _writer(rds, cid) == first
    described = {i["DBInstanceIdentifier"]: i for i in _described(sandbox, cid)["Instances"]}
    assert len({i["LocalPort"] for i in described.values()}) == 3
    assert {i: d["Role"] for i, d in described.items()} == {first: "writer", second: "reader", third: "reader"}
    with _connect(sandbox, record["Endpoint"]) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        conn.execute("CREATE TABLE t (id int)")
        conn.execute("INSERT INTO t VALUES (1)")
    # Each instance endpoint reaches its own server; the readers have the row the writer acknowledged.
    for iid in (second, third):
        with _connect(sandbox, cluster["endpoints"][iid]) as conn:
            assert conn.execute("SELECT pg_is_in_recovery(), current_setting('cluster_name')").fetchone() == (True, iid)
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    # The reader endpoint: read-only servers, both readers in turn.
    seen = set()
    for _ in range(6):
        with _connect(sandbox, record["ReaderEndpoint"]) as conn:
            in_recovery, name = conn.execute("SELECT pg_is_in_recovery(), current_setting('cluster_name')").fetchone()
            assert in_recovery is True
            seen.add(name)
    assert seen == {second, third}
    # Commits are acknowledged once a reader has them, and locally durable.
    with _connect(sandbox, record["Endpoint"]) as conn:
        settings = conn.execute(
            "SELECT current_setting('synchronous_commit'), current_setting('synchronous_standby_names')"
        ).fetchone()
    assert settings[0] == "on" and settings[1].startswith("ANY 1 (")


def test_a_crashed_writer_fails_over_to_a_reader_without_losing_an_acknowledged_write(
    cluster: dict[str, Any], sandbox: SandboxConfig
) -> None:
    rds, cid, record = cluster["rds"], cluster["cid"], cluster["record"]
    first, second, _third = cluster["instances"]
    with _connect(sandbox, record["Endpoint"]) as conn:
        conn.execute("CREATE TABLE ledger (id int PRIMARY KEY)")
    acknowledged: list[int] = []
    stop = threading.Event()

    def write_continuously() -> None:
        conn, next_id = None, 0
        while not stop.is_set():
            try:
                conn = conn or _connect(sandbox, record["Endpoint"])
                next_id += 1
                conn.execute("INSERT INTO ledger VALUES (%s)", (next_id,))
                acknowledged.append(next_id)
            except psycopg.Error:
                conn = None
                time.sleep(0.02)

    writer = threading.Thread(target=write_continuously, daemon=True)
    writer.start()
    try:
        _wait("writes flowing", lambda: len(acknowledged) > 100, 10)
        crashed = sandbox_control(sandbox, "POST", "faults/crash-db-instance", {"region": REGION})
        killed_at = time.monotonic()
        assert crashed["instance"] == first and crashed["role"] == "writer" and crashed["killed_pids"]
        # The promotion tier decides: the tier-0 reader becomes the writer.
        _wait("the tier-0 reader to be the writer", lambda: _writer(rds, cid) == second, 20)
        count = len(acknowledged)
        _wait("writes through the cluster endpoint again", lambda: len(acknowledged) > count + 20, 20)
        print(f"writes back {time.monotonic() - killed_at:.2f}s after the crash")
    finally:
        stop.set()
        writer.join(10)
    with _connect(sandbox, record["Endpoint"]) as conn:
        assert conn.execute("SELECT current_setting('cluster_name')").fetchone() == (second,)
        stored = {row[0] for row in conn.execute("SELECT id FROM ledger")}
    assert acknowledged and set(acknowledged) <= stored, f"lost {sorted(set(acknowledged) - stored)[:10]}"
    messages = _messages(rds, cid)
    assert f"Started cross AZ failover to DB instance: {second}." in messages or (
        f"Started same AZ failover to DB instance: {second}." in messages
    )
    assert f"Completed failover to DB instance: {second}." in messages
    categories = rds.describe_events(SourceIdentifier=cid, SourceType="db-cluster", EventCategories=["failover"])
    assert len(categories["Events"]) >= 2
    # The old writer comes back as a reader (pg_rewind) with every write.
    _wait("the old writer back as a reader", lambda: _instance_status(rds, first) == "available", 30)
    _wait("the old writer streaming", lambda: first in _streaming_readers(sandbox, cid), 20)
    with _connect(sandbox, cluster["endpoints"][first]) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        _wait(
            "every write on the old writer",
            lambda: conn.execute("SELECT count(*) FROM ledger").fetchone()[0] == len(stored),
        )


def test_failover_db_cluster_with_and_without_target(cluster: dict[str, Any], sandbox: SandboxConfig) -> None:
    rds, cid, record = cluster["rds"], cluster["cid"], cluster["record"]
    first, second, third = cluster["instances"]
    answer = rds.failover_db_cluster(DBClusterIdentifier=cid, TargetDBInstanceIdentifier=third)["DBCluster"]
    assert answer["Status"] == "failing-over"
    _wait("the failover to finish", lambda: _writer(rds, cid) == third and _cluster(rds, cid)["Status"] == "available")
    with _connect(sandbox, record["Endpoint"]) as conn:
        assert conn.execute("SELECT pg_is_in_recovery(), current_setting('cluster_name')").fetchone() == (False, third)
    assert f"Completed failover to DB instance: {third}." in _messages(rds, cid)
    _wait("every instance available again", lambda: _all_available(rds, cid, cluster["instances"]), 30)
    _wait("both readers in the quorum", lambda: len(_streaming_readers(sandbox, cid)) == 2, 20)
    # Without a target: the reader of the best promotion tier (the tier-0 one).
    rds.failover_db_cluster(DBClusterIdentifier=cid)
    _wait("the second failover", lambda: _writer(rds, cid) == second and _cluster(rds, cid)["Status"] == "available")
    # Refusals: the writer as target, an unknown target.
    _wait("every instance available again", lambda: _all_available(rds, cid, cluster["instances"]), 30)
    with pytest.raises(ClientError) as refused:
        rds.failover_db_cluster(DBClusterIdentifier=cid, TargetDBInstanceIdentifier=second)
    assert refused.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    with pytest.raises(ClientError) as unknown:
        rds.failover_db_cluster(DBClusterIdentifier=cid, TargetDBInstanceIdentifier="no-such-instance")
    assert unknown.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert first in {m["DBInstanceIdentifier"] for m in _cluster(rds, cid)["DBClusterMembers"]}


def test_reboot_db_instance(cluster: dict[str, Any], sandbox: SandboxConfig) -> None:
    rds, cid = cluster["rds"], cluster["cid"]
    first, second, third = cluster["instances"]
    with pytest.raises(ClientError) as forced:
        rds.reboot_db_instance(DBInstanceIdentifier=first, ForceFailover=True)
    assert forced.value.response["Error"]["Code"] == "InvalidParameterCombination"
    # A reader alone.
    answer = rds.reboot_db_instance(DBInstanceIdentifier=third)["DBInstance"]
    assert answer["DBInstanceStatus"] == "rebooting"
    assert _instance_status(rds, first) == "available"
    _wait("the reader back", lambda: _instance_status(rds, third) == "available", 30)
    # The writer: it and its readers restart; no failover on Aurora.
    rds.reboot_db_instance(DBInstanceIdentifier=first)
    assert {_instance_status(rds, i) for i in cluster["instances"]} == {"rebooting"}
    _wait("every instance back", lambda: _all_available(rds, cid, cluster["instances"]), 30)
    assert _writer(rds, cid) == first
    with _connect(sandbox, cluster["record"]["Endpoint"]) as conn:
        conn.execute("CREATE TABLE after_reboot (id int)")
    _wait("both readers in the quorum", lambda: len(_streaming_readers(sandbox, cid)) == 2, 20)
    assert second in _streaming_readers(sandbox, cid)


def test_crash_without_a_reader_restarts_the_writer_in_place(aws: Callable[..., Any], sandbox: SandboxConfig) -> None:
    rds = aws("rds", REGION)
    cid = f"solo-{uuid.uuid4().hex[:8]}"
    record = rds.create_db_cluster(
        DBClusterIdentifier=cid, Engine=ENGINE, MasterUsername=USER, MasterUserPassword=PASSWORD, DatabaseName=DATABASE
    )["DBCluster"]
    rds.create_db_instance(
        DBInstanceIdentifier=f"{cid}-1", DBClusterIdentifier=cid, Engine=ENGINE, DBInstanceClass="db.r6g.large"
    )
    try:
        _wait("available", lambda: _all_available(rds, cid, [f"{cid}-1"]), 60)
        with _connect(sandbox, record["Endpoint"]) as conn:
            conn.execute("CREATE TABLE kept (id int)")
            conn.execute("INSERT INTO kept VALUES (1)")
        crashed = sandbox_control(
            sandbox, "POST", "faults/crash-db-instance", {"region": REGION, "instance": f"{cid}-1"}
        )
        assert crashed["instance"] == f"{cid}-1"
        _wait("the writer restarted", lambda: _connect(sandbox, record["Endpoint"]).execute("SELECT 1"), 30)
        with _connect(sandbox, record["Endpoint"]) as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1,)
        assert _writer(rds, cid) == f"{cid}-1"
        assert not any("failover" in m for m in _messages(rds, cid))
        with pytest.raises(urllib.error.HTTPError) as unknown:
            sandbox_control(
                sandbox, "POST", "faults/crash-db-instance", {"region": REGION, "instance": "no-such-instance"}
            )
        assert unknown.value.code == 404 and "no-such-instance" in unknown.value.read().decode()
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=f"{cid}-1", SkipFinalSnapshot=True)
        rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)


def _sync_status(rds: Any, gid: str, cid: str) -> str | None:
    glob = rds.describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0]
    for member in glob["GlobalClusterMembers"]:
        if member["DBClusterArn"].rsplit(":", 1)[1] == cid:
            return member.get("SynchronizationStatus")
    return None


def test_global_database_keeps_working_across_a_crash_and_a_switchover(
    aws: Callable[..., Any], sandbox: SandboxConfig
) -> None:
    """Primary: writer + reader; secondary: one instance following the primary region's writer."""
    east, west = aws("rds", REGION), aws("rds", "us-west-2")
    suffix = uuid.uuid4().hex[:8]
    gid, pid, sid = f"g-{suffix}", f"p-{suffix}", f"s-{suffix}"
    primary = east.create_db_cluster(
        DBClusterIdentifier=pid, Engine=ENGINE, EngineVersion="16.4", MasterUsername=USER,
        MasterUserPassword=PASSWORD, DatabaseName=DATABASE,
    )["DBCluster"]  # fmt: skip
    p1, p2, s1 = f"{pid}-1", f"{pid}-2", f"{sid}-1"
    for iid in (p1, p2):
        east.create_db_instance(
            DBInstanceIdentifier=iid, DBClusterIdentifier=pid, Engine=ENGINE, DBInstanceClass="db.r6g.large"
        )
    _wait("the primary available", lambda: _all_available(east, pid, [p1, p2]), 60)
    glob = east.create_global_cluster(GlobalClusterIdentifier=gid, SourceDBClusterIdentifier=primary["DBClusterArn"])
    endpoint = glob["GlobalCluster"]["Endpoint"]
    secondary = west.create_db_cluster(
        DBClusterIdentifier=sid, Engine=ENGINE, EngineVersion="16.4", GlobalClusterIdentifier=gid
    )["DBCluster"]
    west.create_db_instance(
        DBInstanceIdentifier=s1, DBClusterIdentifier=sid, Engine=ENGINE, DBInstanceClass="db.r6g.large"
    )
    try:
        _wait("the secondary connected", lambda: _sync_status(east, gid, sid) == "connected", 60)
        _wait("the secondary's instance available", lambda: _instance_status(west, s1) == "available", 30)
        assert [m["IsClusterWriter"] for m in _cluster(west, sid)["DBClusterMembers"]] == [False]
        with _connect(sandbox, endpoint) as conn:
            conn.execute("CREATE TABLE g (id int PRIMARY KEY)")
            conn.execute("INSERT INTO g VALUES (1)")
        with _connect(sandbox, secondary["ReaderEndpoint"]) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            _wait("the row in us-west-2", lambda: conn.execute("SELECT count(*) FROM g").fetchone() == (1,), 10)

        # The primary region's writer crashes: its reader takes over; the global endpoint and the secondary follow.
        _wait("the reader in the quorum", lambda: _streaming_readers(sandbox, pid) == [p2], 20)
        assert sandbox_control(sandbox, "POST", "faults/crash-db-instance", {"region": REGION})["instance"] == p1
        _wait("the reader promoted", lambda: _writer(east, pid) == p2, 20)
        _wait(
            "writes through the global endpoint",
            lambda: _connect(sandbox, endpoint).execute("INSERT INTO g VALUES (2)"),
            20,
        )
        _wait("the secondary connected again", lambda: _sync_status(east, gid, sid) == "connected", 30)
        with _connect(sandbox, secondary["Endpoint"]) as conn:
            _wait("the new row in us-west-2", lambda: conn.execute("SELECT count(*) FROM g").fetchone() == (2,), 20)
        _wait("the old writer a reader", lambda: _all_available(east, pid, [p1, p2]), 30)
        # A secondary has no writer instance to fail over: the global operations move the writer between regions.
        with pytest.raises(ClientError) as refused:
            west.failover_db_cluster(DBClusterIdentifier=sid)
        assert refused.value.response["Error"]["Code"] == "InvalidDBClusterStateFault"

        # A switchover under writes loses nothing and keeps every instance serving.
        _wait("the old writer in the quorum", lambda: _streaming_readers(sandbox, pid) == [p1], 20)
        acknowledged: list[int] = []
        stop = threading.Event()

        def write_continuously() -> None:
            conn, next_id = None, 100
            while not stop.is_set():
                try:
                    conn = conn or _connect(sandbox, endpoint)
                    next_id += 1
                    conn.execute("INSERT INTO g VALUES (%s)", (next_id,))
                    acknowledged.append(next_id)
                except psycopg.Error:
                    conn = None
                    time.sleep(0.02)

        writer = threading.Thread(target=write_continuously, daemon=True)
        writer.start()
        try:
            _wait("writes flowing", lambda: len(acknowledged) > 50, 10)
            west.switchover_global_cluster(
                GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=secondary["DBClusterArn"]
            )
            _wait(
                "the switchover",
                lambda: (
                    not east.describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0].get(
                        "FailoverState"
                    )
                ),
                60,
            )
            count = len(acknowledged)
            _wait("writes on the new primary", lambda: len(acknowledged) > count + 20, 20)
        finally:
            stop.set()
            writer.join(10)
        assert _writer(west, sid) == s1
        assert not any(m["IsClusterWriter"] for m in _cluster(east, pid)["DBClusterMembers"])
        with _connect(sandbox, endpoint) as conn:
            stored = {row[0] for row in conn.execute("SELECT id FROM g")}
        assert set(acknowledged) <= stored, f"lost {sorted(set(acknowledged) - stored)[:10]}"
        # us-east-1 is now the secondary: both its instances read-only, with every write.
        _wait("us-east-1 connected", lambda: _sync_status(east, gid, pid) == "connected", 30)
        _wait("us-east-1's instances available", lambda: _all_available(east, pid, [p1, p2]), 60)
        for name in (primary["Endpoint"], primary["ReaderEndpoint"]):
            with _connect(sandbox, name) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
                _wait(
                    f"every write through {name}",
                    lambda conn=conn: conn.execute("SELECT count(*) FROM g").fetchone()[0] == len(stored),
                    20,
                )
    finally:
        for client, iid in ((west, s1), (east, p1), (east, p2)):
            with contextlib.suppress(Exception):
                client.delete_db_instance(DBInstanceIdentifier=iid, SkipFinalSnapshot=True)
        for client, record in ((west, secondary), (east, primary)):
            with contextlib.suppress(Exception):
                _wait(
                    "no operation running",
                    lambda: (
                        not east.describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0].get(
                            "FailoverState"
                        )
                    ),
                    30,
                )
                client.remove_from_global_cluster(
                    GlobalClusterIdentifier=gid, DbClusterIdentifier=record["DBClusterArn"]
                )
        for client, record in ((west, secondary), (east, primary)):
            with contextlib.suppress(Exception):
                client.delete_db_cluster(DBClusterIdentifier=record["DBClusterIdentifier"], SkipFinalSnapshot=True)
        with contextlib.suppress(Exception):
            east.delete_global_cluster(GlobalClusterIdentifier=gid)

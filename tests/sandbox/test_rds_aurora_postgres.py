"""Aurora PostgreSQL runs for real in the sandbox (sandbox/services/rds/: provider.py, engine.py)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from sandbox.config import SandboxConfig
from tests.support import sandbox_control, wait_until

ENGINE = "aurora-postgresql"
VERSION = "16.4"
USER = "hawa_admin"
PASSWORD = "first-password-1"
DATABASE = "app"
PRIMARY_REGION, SECONDARY_REGION = "us-east-1", "us-west-2"


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def _address(sandbox: SandboxConfig, name: str, port: int = 5432) -> tuple[str, int]:
    """Where the sandbox's name map sends name:port (the rt.resolve an AWS client's DNS stands for)."""
    names = sandbox_control(sandbox, "GET", "")["names"]
    host, local_port = names[f"{name}:{port}"].rsplit(":", 1)
    return host, int(local_port)


def _connect(sandbox: SandboxConfig, name: str, password: str = PASSWORD, **extra: Any) -> psycopg.Connection:
    host, port = _address(sandbox, name)
    return psycopg.connect(
        host=host, port=port, user=USER, password=password, dbname=DATABASE, autocommit=True, connect_timeout=3, **extra
    )


def _rows(conn: psycopg.Connection, query: str) -> list[tuple[Any, ...]] | None:
    """The rows of query, or None while what it reads has not been replicated yet."""
    try:
        return conn.execute(query).fetchall()
    except psycopg.errors.UndefinedTable:
        return None


def _status(rds: Any, cluster_id: str) -> str:
    return rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["Status"]


def _members(rds: Any, gid: str) -> dict[str, dict[str, Any]]:
    glob = rds.describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0]
    return {m["DBClusterArn"].rsplit(":", 1)[1]: m for m in glob["GlobalClusterMembers"]}


def _messages(rds: Any, cluster_id: str) -> list[str]:
    events = rds.describe_events(SourceIdentifier=cluster_id, SourceType="db-cluster", Duration=10)["Events"]
    return [e["Message"] for e in events]


def _create_primary(rds: Any, cluster_id: str) -> dict[str, Any]:
    return rds.create_db_cluster(
        DBClusterIdentifier=cluster_id,
        Engine=ENGINE,
        EngineVersion=VERSION,
        MasterUsername=USER,
        MasterUserPassword=PASSWORD,
        DatabaseName=DATABASE,
    )["DBCluster"]


@pytest.fixture
def regions_back(sandbox: SandboxConfig) -> Iterator[None]:
    """Whatever a test darkens or stops comes back afterwards."""
    yield
    for region in (PRIMARY_REGION, SECONDARY_REGION):
        sandbox_control(sandbox, "POST", "restore", {"region": region})
        sandbox_control(sandbox, "POST", "faults/start-database", {"region": region})


@pytest.fixture
def global_db(aws: Callable[..., Any], sandbox: SandboxConfig, regions_back: None) -> Iterator[dict[str, Any]]:
    """A primary in us-east-1, its global cluster, and a connected secondary in us-west-2."""
    east, west = aws("rds", PRIMARY_REGION), aws("rds", SECONDARY_REGION)
    suffix = uuid.uuid4().hex[:8]
    gid, pid, sid = f"g-{suffix}", f"p-{suffix}", f"s-{suffix}"
    primary = _create_primary(east, pid)
    wait_until("the primary to be available", lambda: _status(east, pid) == "available")
    glob = east.create_global_cluster(GlobalClusterIdentifier=gid, SourceDBClusterIdentifier=primary["DBClusterArn"])
    secondary = west.create_db_cluster(
        DBClusterIdentifier=sid, Engine=ENGINE, EngineVersion=VERSION, GlobalClusterIdentifier=gid
    )["DBCluster"]
    wait_until(
        "the secondary to be connected", lambda: _members(east, gid)[sid].get("SynchronizationStatus") == "connected"
    )
    yield {
        "east": east,
        "west": west,
        "gid": gid,
        "pid": pid,
        "sid": sid,
        "primary": primary,
        "secondary": secondary,
        "endpoint": glob["GlobalCluster"]["Endpoint"],
    }
    for region in (PRIMARY_REGION, SECONDARY_REGION):
        sandbox_control(sandbox, "POST", "restore", {"region": region})
    for client, cluster in ((west, secondary), (east, primary)):
        with contextlib.suppress(ClientError):
            wait_until("no operation running", lambda: not _get_failover_state(east, gid), timeout=30)
            client.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=cluster["DBClusterArn"])
    for client, cluster in ((west, secondary), (east, primary)):
        with contextlib.suppress(ClientError):
            client.delete_db_cluster(DBClusterIdentifier=cluster["DBClusterIdentifier"], SkipFinalSnapshot=True)
    with contextlib.suppress(ClientError):
        east.delete_global_cluster(GlobalClusterIdentifier=gid)


def _get_failover_state(rds: Any, gid: str) -> dict[str, Any] | None:
    return rds.describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0].get("FailoverState")


def test_cluster_is_a_real_postgresql_with_the_master_user(
    aws: Callable[..., Any], sandbox: SandboxConfig, regions_back: None
) -> None:
    rds = aws("rds", SECONDARY_REGION)
    cid = f"c-{uuid.uuid4().hex[:8]}"
    # Stopped databases hold the node back: "creating" (and the instance with it) until it accepts connections.
    sandbox_control(sandbox, "POST", "faults/stop-database", {"region": SECONDARY_REGION})
    cluster = _create_primary(rds, cid)
    assert cluster["Status"] == "creating"
    instance = rds.create_db_instance(
        DBInstanceIdentifier=f"{cid}-1", DBClusterIdentifier=cid, Engine=ENGINE, DBInstanceClass="db.r6g.large"
    )["DBInstance"]
    time.sleep(0.5)
    assert _status(rds, cid) == "creating"
    assert (
        rds.describe_db_instances(DBInstanceIdentifier=f"{cid}-1")["DBInstances"][0]["DBInstanceStatus"] == "creating"
    )
    sandbox_control(sandbox, "POST", "faults/start-database", {"region": SECONDARY_REGION})
    started = time.monotonic()
    wait_until("the cluster to be available", lambda: _status(rds, cid) == "available")
    print(f"node available {time.monotonic() - started:.2f}s after start-database")
    assert (
        rds.describe_db_instances(DBInstanceIdentifier=f"{cid}-1")["DBInstances"][0]["DBInstanceStatus"] == "available"
    )
    try:
        # Endpoint, ReaderEndpoint and the instance's endpoint all lead to the node, on the cluster's port.
        for name in (cluster["Endpoint"], cluster["ReaderEndpoint"], instance["Endpoint"]["Address"]):
            with _connect(sandbox, name) as conn:
                assert conn.execute("SELECT current_user, current_database()").fetchone() == (USER, DATABASE)
        with _connect(sandbox, cluster["Endpoint"]) as conn:
            # As on Aurora: CREATEDB and CREATEROLE, a member of rds_superuser, not a superuser; owns DatabaseName.
            assert conn.execute(
                "SELECT rolsuper, rolcreatedb, rolcreaterole, pg_has_role(current_user, 'rds_superuser', 'MEMBER')"
                " FROM pg_roles WHERE rolname = current_user"
            ).fetchone() == (False, True, True, True)
            owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (DATABASE,))
            assert owner.fetchone() == (USER,)
            conn.execute("CREATE TABLE notes (body text)")
            conn.execute("CREATE DATABASE other")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _connect(sandbox, cluster["Endpoint"], password="wrong-password")

        rds.modify_db_cluster(DBClusterIdentifier=cid, MasterUserPassword="second-password-2", ApplyImmediately=True)
        _connect(sandbox, cluster["Endpoint"], password="second-password-2").close()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _connect(sandbox, cluster["Endpoint"])
        described = json.dumps(sandbox_control(sandbox, "GET", "aurora"))
        assert "second-password-2" not in described and PASSWORD not in described
        assert "DB cluster created." in _messages(rds, cid)
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=f"{cid}-1", SkipFinalSnapshot=True)
        data_dir = next(
            c for c in sandbox_control(sandbox, "GET", "aurora")["clusters"] if c["DBClusterIdentifier"] == cid
        )["DataDirectory"]
        assert (
            rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)["DBCluster"]["Status"] == "deleting"
        )
    # Deleted: names unpublished, node stopped, data gone.
    assert f"{cluster['Endpoint']}:5432" not in sandbox_control(sandbox, "GET", "")["names"]
    wait_until("the data folder to be deleted", lambda: not Path(data_dir).exists(), timeout=15)


def test_secondary_streams_from_the_primary_and_refuses_writes(
    global_db: dict[str, Any], sandbox: SandboxConfig, aws: Callable[..., Any]
) -> None:
    east, gid, pid, sid = global_db["east"], global_db["gid"], global_db["pid"], global_db["sid"]
    members = _members(east, gid)
    assert members[pid]["IsWriter"] is True and members[sid]["IsWriter"] is False
    assert members[pid]["Readers"] == [global_db["secondary"]["DBClusterArn"]]
    assert {m["SynchronizationStatus"] for m in members.values()} == {"connected"}
    assert global_db["endpoint"].startswith(f"{gid}.global-") and global_db["endpoint"].endswith(
        ".global.rds.amazonaws.com"
    )
    with _connect(sandbox, global_db["endpoint"]) as writer:
        writer.execute("CREATE TABLE items (id int PRIMARY KEY)")
        writer.execute("INSERT INTO items VALUES (1)")
    with _connect(sandbox, global_db["secondary"]["Endpoint"]) as reader:
        wait_until("the row on the secondary", lambda: _rows(reader, "SELECT id FROM items") == [(1,)], 10)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as excinfo:
            reader.execute("INSERT INTO items VALUES (2)")
        assert excinfo.value.sqlstate == "25006"
    # A secondary has no master password of its own.
    with pytest.raises(ClientError) as refused:
        global_db["west"].modify_db_cluster(DBClusterIdentifier=sid, MasterUserPassword="other-password-3")
    assert _code(refused) == "InvalidDBClusterStateFault"

    cloudwatch = aws("cloudwatch", SECONDARY_REGION)

    def lag_points() -> dict[str, list[float]]:
        found = {}
        for name in ("AuroraGlobalDBReplicationLag", "AuroraGlobalDBRPOLag"):
            stats = cloudwatch.get_metric_statistics(
                Namespace="AWS/RDS",
                MetricName=name,
                Dimensions=[{"Name": "DBClusterIdentifier", "Value": sid}],
                StartTime=time.time() - 300,
                EndTime=time.time() + 60,
                Period=60,
                Statistics=["Maximum"],
            )["Datapoints"]
            if stats:
                found[name] = [p["Maximum"] for p in stats]
        return found if len(found) == 2 else {}

    points = wait_until("lag metrics of the secondary", lag_points, timeout=15, interval=0.5)
    assert all(0 <= value < 60_000 for values in points.values() for value in values)
    described = {c["DBClusterIdentifier"]: c for c in sandbox_control(sandbox, "GET", "aurora")["clusters"]}
    assert described[sid]["ReplicationLagMs"] is not None and described[sid]["RPOLagMs"] is not None
    assert described[pid]["Role"] == "writer" and described[sid]["Role"] == "standby"


def test_switchover_moves_the_writer_without_losing_an_acknowledged_write(
    global_db: dict[str, Any], sandbox: SandboxConfig
) -> None:
    east, west, gid = global_db["east"], global_db["west"], global_db["gid"]
    pid, sid = global_db["pid"], global_db["sid"]
    target = global_db["secondary"]["DBClusterArn"]
    with _connect(sandbox, global_db["endpoint"]) as conn:
        conn.execute("CREATE TABLE ledger (id int PRIMARY KEY)")
    acknowledged: list[int] = []
    stop = threading.Event()

    def write_continuously() -> None:
        conn, next_id = None, 0
        while not stop.is_set():
            try:
                conn = conn or _connect(sandbox, global_db["endpoint"])
                next_id += 1
                conn.execute("INSERT INTO ledger VALUES (%s)", (next_id,))
                acknowledged.append(next_id)
            except psycopg.Error:
                conn = None
                time.sleep(0.02)

    writer = threading.Thread(target=write_continuously, daemon=True)
    writer.start()
    wait_until("writes flowing", lambda: len(acknowledged) > 50, 10)
    started = time.monotonic()
    answer = west.switchover_global_cluster(GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=target)
    assert answer["GlobalCluster"]["FailoverState"] == {
        "Status": "pending",
        "FromDbClusterArn": global_db["primary"]["DBClusterArn"],
        "ToDbClusterArn": target,
        "IsDataLossAllowed": False,
    }
    # One operation at a time.
    with pytest.raises(ClientError) as busy:
        east.switchover_global_cluster(GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=target)
    assert _code(busy) == "InvalidGlobalClusterStateFault"
    seen = set()

    def finished() -> bool:
        state = _get_failover_state(east, gid)
        if state:
            seen.add(state["Status"])
        return not state

    wait_until("the switchover to finish", finished, 60, 0.02)
    duration = time.monotonic() - started
    print(f"switchover took {duration:.2f}s; FailoverState seen: {sorted(seen)}")
    assert seen and seen <= {"pending", "switching-over"}
    time.sleep(0.5)  # a few writes on the new writer
    stop.set()
    writer.join(10)

    members = _members(east, gid)
    assert members[sid]["IsWriter"] is True and members[pid]["IsWriter"] is False
    with _connect(sandbox, global_db["endpoint"]) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM ledger")}
        assert not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    assert acknowledged and set(acknowledged) <= stored, f"lost {sorted(set(acknowledged) - stored)[:10]}"
    # Topology kept: the old primary is now a connected standby of the new one.
    wait_until(
        "the old primary connected", lambda: _members(east, gid)[pid]["SynchronizationStatus"] == "connected", 30
    )
    with (
        _connect(sandbox, global_db["primary"]["Endpoint"]) as old,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        old.execute("INSERT INTO ledger VALUES (-1)")
    assert _status(west, sid) == "available" and _status(east, pid) == "available"
    messages = _messages(west, sid)
    for expected in (
        f"Global switchover to DB cluster {sid} in Region {SECONDARY_REGION} started.",
        f"New primary DB cluster {sid} in Region {SECONDARY_REGION} was successfully promoted.",
        f"Global switchover to DB cluster {sid} in Region {SECONDARY_REGION} finished.",
    ):
        assert expected in messages
    assert f"Old primary DB cluster {pid} in Region {PRIMARY_REGION} successfully shut down." in _messages(east, pid)
    # The same target again is now refused: it is already the writer.
    with pytest.raises(ClientError) as again:
        west.switchover_global_cluster(GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=target)
    assert _code(again) == "InvalidGlobalClusterStateFault"


def test_failover_in_an_outage_and_the_old_primary_rejoins_as_a_standby(
    global_db: dict[str, Any], sandbox: SandboxConfig
) -> None:
    east, west, gid = global_db["east"], global_db["west"], global_db["gid"]
    pid, sid = global_db["pid"], global_db["sid"]
    target = global_db["secondary"]["DBClusterArn"]
    with _connect(sandbox, global_db["endpoint"]) as conn:
        conn.execute("CREATE TABLE orders (id int)")
        conn.execute("INSERT INTO orders VALUES (1)")
    with _connect(sandbox, global_db["secondary"]["Endpoint"]) as reader:
        wait_until("the row replicated", lambda: _rows(reader, "SELECT id FROM orders") == [(1,)], 10)
    sandbox_control(sandbox, "POST", "outage", {"region": PRIMARY_REGION})
    wait_until(
        "the secondary to see its primary gone",
        lambda: _members(west, gid)[sid]["SynchronizationStatus"] != "connected",
        10,
    )
    # A switchover needs a healthy global database.
    with pytest.raises(ClientError) as refused:
        west.switchover_global_cluster(GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=target)
    assert _code(refused) == "InvalidGlobalClusterStateFault"
    started = time.monotonic()
    answer = west.failover_global_cluster(
        GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=target, AllowDataLoss=True
    )
    assert answer["GlobalCluster"]["FailoverState"]["IsDataLossAllowed"] is True
    assert answer["GlobalCluster"]["FailoverState"]["Status"] == "pending"
    wait_until("the failover to finish", lambda: not _get_failover_state(west, gid), 30, 0.02)
    print(f"failover took {time.monotonic() - started:.2f}s")
    members = _members(west, gid)
    assert members[sid]["IsWriter"] is True and members[pid]["IsWriter"] is False
    assert members[pid]["SynchronizationStatus"] == "pending-resync"
    with _connect(sandbox, global_db["endpoint"]) as conn:
        conn.execute("INSERT INTO orders VALUES (2)")
    assert f"Global failover to DB cluster {sid} in Region {SECONDARY_REGION} completed." in _messages(west, sid)

    sandbox_control(sandbox, "POST", "restore", {"region": PRIMARY_REGION})
    restored = time.monotonic()
    wait_until(
        "the old primary to rejoin", lambda: _members(east, gid)[pid]["SynchronizationStatus"] == "connected", 30
    )
    print(f"old primary connected {time.monotonic() - restored:.2f}s after restore")
    # Never a second writer: the old primary is a read-only copy of the new one, with the write made meanwhile.
    with _connect(sandbox, global_db["primary"]["Endpoint"]) as old:
        assert old.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        wait_until(
            "the new write on the old primary",
            lambda: _rows(old, "SELECT count(*) FROM orders") == [(2,)],
            10,
        )
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            old.execute("INSERT INTO orders VALUES (3)")
    messages = _messages(east, pid)
    assert (
        f"Finished resynchronizing members of DB cluster {pid} in Region {PRIMARY_REGION} after global failover."
        in messages
    )


def test_bad_requests_get_the_documented_faults(
    global_db: dict[str, Any], sandbox: SandboxConfig, aws: Callable[..., Any]
) -> None:
    east, west, gid = global_db["east"], global_db["west"], global_db["gid"]
    secondary, primary = global_db["secondary"]["DBClusterArn"], global_db["primary"]["DBClusterArn"]
    cases: list[tuple[str, Callable[[], Any]]] = [
        (
            "GlobalClusterNotFoundFault",
            lambda: west.switchover_global_cluster(
                GlobalClusterIdentifier="no-such-global", TargetDbClusterIdentifier=secondary
            ),
        ),
        (
            "GlobalClusterNotFoundFault",
            lambda: west.failover_global_cluster(
                GlobalClusterIdentifier="no-such-global", TargetDbClusterIdentifier=secondary, AllowDataLoss=True
            ),
        ),
        (
            "DBClusterNotFoundFault",
            lambda: west.switchover_global_cluster(
                GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=secondary + "-gone"
            ),
        ),
        (
            "InvalidGlobalClusterStateFault",  # already the writer
            lambda: east.failover_global_cluster(
                GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=primary, AllowDataLoss=True
            ),
        ),
        (
            "InvalidParameterCombination",
            lambda: west.failover_global_cluster(
                GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=secondary, AllowDataLoss=True, Switchover=True
            ),
        ),
        (
            "GlobalClusterNotFoundFault",
            lambda: west.create_db_cluster(
                DBClusterIdentifier="orphan", Engine=ENGINE, GlobalClusterIdentifier="no-such-global"
            ),
        ),
        ("DBClusterAlreadyExistsFault", lambda: _create_primary(east, global_db["pid"])),
    ]
    for expected, call in cases:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _code(excinfo) == expected, excinfo.value

    # A standalone cluster is not a member of the global cluster.
    loner = f"l-{uuid.uuid4().hex[:8]}"
    loner_arn = _create_primary(west, loner)["DBClusterArn"]
    try:
        with pytest.raises(ClientError) as excinfo:
            west.switchover_global_cluster(GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=loner_arn)
        assert _code(excinfo) == "InvalidGlobalClusterStateFault"
    finally:
        west.delete_db_cluster(DBClusterIdentifier=loner, SkipFinalSnapshot=True)

    # A target whose database is down cannot be promoted.
    sandbox_control(sandbox, "POST", "faults/stop-database", {"region": SECONDARY_REGION})
    with pytest.raises(ClientError) as excinfo:
        west.failover_global_cluster(
            GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=secondary, AllowDataLoss=True
        )
    assert _code(excinfo) == "InvalidDBClusterStateFault"
    sandbox_control(sandbox, "POST", "faults/start-database", {"region": SECONDARY_REGION})
    wait_until(
        "the secondary connected again",
        lambda: _members(east, gid)[global_db["sid"]]["SynchronizationStatus"] == "connected",
    )
    assert not _get_failover_state(east, gid)


def test_control_routes_name_their_input(sandbox: SandboxConfig) -> None:
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        sandbox_control(sandbox, "POST", "faults/stop-database", {"region": "mars-east-1"})
    assert excinfo.value.code == 400
    assert "mars-east-1" in excinfo.value.read().decode()


@pytest.fixture
def own_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxConfig]:
    """A sandbox of this test's own: reset and shutdown must not touch the session's."""
    from tests.conftest import start_sandbox

    yield from start_sandbox(tmp_path_factory)


def _postmasters_under(folder: Path) -> list[int]:
    found = []
    for pidfile in folder.glob("**/postmaster.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().split()[0])
            if Path(f"/proc/{pid}").exists():
                found.append(pid)
    return found


def test_reset_deletes_and_shutdown_stops_every_node(own_sandbox: SandboxConfig) -> None:
    import boto3

    from sandbox import cli
    from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY

    rds = boto3.client(
        "rds",
        region_name=PRIMARY_REGION,
        endpoint_url=own_sandbox.endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    first = _create_primary(rds, "before-reset")
    wait_until("the cluster available", lambda: _status(rds, "before-reset") == "available")
    data_root = (own_sandbox.state_dir / "aurora").resolve()
    running = _postmasters_under(data_root)
    assert running
    reset = urllib.request.Request(f"{own_sandbox.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    urllib.request.urlopen(reset, timeout=60).close()  # noqa: S310 - loopback
    wait_until("the node stopped", lambda: not [pid for pid in running if Path(f"/proc/{pid}").exists()], 10)
    assert not list(data_root.glob("*/before-reset/*"))
    assert f"{first['Endpoint']}:5432" not in sandbox_control(own_sandbox, "GET", "")["names"]
    assert sandbox_control(own_sandbox, "GET", "aurora")["clusters"] == []

    _create_primary(rds, "before-shutdown")
    wait_until("the cluster available", lambda: _status(rds, "before-shutdown") == "available")
    running = _postmasters_under(data_root)
    assert running
    cli.down(own_sandbox)
    wait_until("the node stopped", lambda: not [pid for pid in running if Path(f"/proc/{pid}").exists()], 10)

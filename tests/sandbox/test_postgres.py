"""sandbox/postgres.py on its own: a real server, a streaming hot standby, promotion and pg_rewind."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sandbox.postgres import PostgresError, PostgresNode, make_base_dir, server_user
from tests.support import free_port

PASSWORD = "pg-test-password"


@pytest.fixture
def base_dir() -> Iterator[Path]:
    base = make_base_dir("test-postgres-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def nodes() -> Iterator[list[PostgresNode]]:
    """Every node a test creates; all destroyed afterwards, even when the test fails."""
    made: list[PostgresNode] = []
    yield made
    for node in made:
        node.destroy()


def test_primary_runs_unprivileged_on_loopback_with_password(base_dir: Path, nodes: list[PostgresNode]) -> None:
    node = PostgresNode(base_dir / "primary", free_port(), PASSWORD, fast=True)
    nodes.append(node)
    node.init().start()

    assert node.running
    assert node.execute("SELECT current_setting('data_checksums'), current_setting('listen_addresses')") == [
        ("on", "127.0.0.1")
    ]
    assert node.execute("SELECT current_setting('fsync')") == [("off",)]
    # The server process belongs to the unprivileged user (sandboxpg when the tests run as root).
    pid = int((node.data_dir / "postmaster.pid").read_text().split()[0])
    assert os.stat(f"/proc/{pid}").st_uid == server_user().uid
    if os.geteuid() == 0:
        assert server_user().name == "sandboxpg"
    # Authentication is enforced.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"host=127.0.0.1 port={node.port} user=postgres password=wrong dbname=postgres")

    node.stop()
    assert not node.running


def test_not_fast_keeps_fsync_on(base_dir: Path, nodes: list[PostgresNode]) -> None:
    node = PostgresNode(base_dir / "durable", free_port(), PASSWORD)
    nodes.append(node)
    node.init().start()
    assert node.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit')") == [("on", "on")]


def test_init_refuses_a_non_empty_folder(base_dir: Path) -> None:
    target = base_dir / "busy"
    target.mkdir()
    (target / "something").write_text("x")
    with pytest.raises(PostgresError, match="not empty"):
        PostgresNode(target, free_port(), PASSWORD).init()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_unreachable_data_folder_is_named(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    with pytest.raises(PostgresError, match=r"not searchable by the user 'sandboxpg'"):
        PostgresNode(locked / "data", free_port(), PASSWORD).init()


def test_standby_promote_and_rewind(base_dir: Path, nodes: list[PostgresNode]) -> None:
    primary = PostgresNode(base_dir / "a", free_port(), PASSWORD, fast=True)
    nodes.append(primary)
    primary.init().start()
    primary.execute("CREATE TABLE t (x int)")
    primary.execute("INSERT INTO t VALUES (1)")

    standby = primary.create_standby(base_dir / "b", free_port())
    nodes.append(standby)
    assert standby.is_in_recovery() and not primary.is_in_recovery()
    primary.execute("INSERT INTO t VALUES (2)")
    standby.wait_for_replay(primary)
    assert standby.execute("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    assert standby.execute("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
    # A hot standby is read-only: the error the web app turns into a 503.
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        standby.execute("INSERT INTO t VALUES (3)")

    # The primary "crashes", the standby is promoted and takes writes.
    primary.stop("immediate")
    standby.promote()
    assert not standby.is_in_recovery()
    standby.execute("INSERT INTO t VALUES (3)")

    # The old primary comes back as a standby of the new one.
    primary.rewind_from(standby)
    assert primary.is_in_recovery()
    primary.wait_for_replay(standby)
    assert primary.execute("SELECT x FROM t ORDER BY x") == [(1,), (2,), (3,)]
    assert primary.execute("SELECT status, sender_port FROM pg_stat_wal_receiver") == [("streaming", standby.port)]


def test_rewind_refuses_a_running_target(base_dir: Path, nodes: list[PostgresNode]) -> None:
    node = PostgresNode(base_dir / "a", free_port(), PASSWORD, fast=True)
    nodes.append(node)
    node.init().start()
    with pytest.raises(PostgresError, match="still running"):
        node.rewind_from(node)


def test_start_failure_names_the_port_and_log(base_dir: Path, nodes: list[PostgresNode]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        node = PostgresNode(base_dir / "a", port, PASSWORD, fast=True)
        nodes.append(node)
        node.init()
        with pytest.raises(PostgresError, match=rf"pg_ctl failed .*port {port}"):
            node.start(timeout=10)


def test_stop_mode_is_validated(base_dir: Path) -> None:
    with pytest.raises(PostgresError, match="stop mode 'hard'"):
        PostgresNode(base_dir / "x", free_port(), PASSWORD).stop("hard")


def test_server_processes_do_not_run_as_root(base_dir: Path, nodes: list[PostgresNode]) -> None:
    node = PostgresNode(base_dir / "a", free_port(), PASSWORD, fast=True)
    nodes.append(node)
    node.init().start()
    out = subprocess.run(["ps", "-o", "user=", "--ppid", str(_postmaster_pid(node))], capture_output=True, text=True)
    users = set(out.stdout.split())
    assert users and "root" not in users


def _postmaster_pid(node: PostgresNode) -> int:
    return int((node.data_dir / "postmaster.pid").read_text().split()[0])

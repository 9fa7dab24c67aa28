"""The sandbox's life cycle: up, status, reset, down; a clear error when the port is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import boto3
import pytest

from sandbox import cli
from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SandboxConfig
from tests.support import REPO_ROOT, free_port, free_ports


def _sandbox_cli(*args: str, port: int, state_dir) -> subprocess.CompletedProcess:
    env = dict(os.environ, SANDBOX_PORT=str(port), SANDBOX_STATE_DIR=str(state_dir))
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_port_taken_is_a_clear_error_and_starts_nothing(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = _sandbox_cli("up", port=port, state_dir=tmp_path)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "SANDBOX_PORT" in result.stderr
    assert not (tmp_path / "sandbox.pid").exists()


def test_bad_port_setting_names_the_variable(tmp_path):
    result = _sandbox_cli("status", port="http", state_dir=tmp_path)  # type: ignore[arg-type]
    assert result.returncode != 0
    assert "SANDBOX_PORT='http' is not a port number" in result.stderr


def test_life_cycle(tmp_path):
    port, edge_port = free_ports(2)
    cfg = SandboxConfig(port=port, state_dir=tmp_path, edge_port=edge_port)
    text, running = cli.status(cfg)
    assert not running and "stopped" in text
    with pytest.raises(cli.SandboxError, match="make sandbox-up"):
        cli.reset(cfg)
    try:
        assert "sandbox up" in cli.up(cfg)
        pid = int(cfg.pidfile.read_text())
        assert "already running" in cli.up(cfg), "a second up must reuse the running sandbox"
        assert int(cfg.pidfile.read_text()) == pid

        ec2 = boto3.client(
            "ec2",
            region_name="us-west-2",
            endpoint_url=cfg.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )
        ec2.create_vpc(
            CidrBlock="10.77.0.0/16",
            TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "probe"}]}],
        )
        text, running = cli.status(cfg)
        assert running and 'us-west-2: 1 project VPC(s) ["probe"]' in text, text

        cli.reset(cfg)
        assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []

        # IAM managed policies are loaded (the compute role attaches AmazonECSTaskExecutionRolePolicy).
        iam = boto3.client(
            "iam",
            endpoint_url=cfg.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name="us-east-1",
        )
        iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
    finally:
        assert "stopped" in cli.down(cfg)
    assert not cli._alive(pid)
    assert cli.down(cfg) == "sandbox not running"


def test_env_prints_export_lines(tmp_path):
    result = _sandbox_cli("env", port=4999, state_dir=tmp_path)
    assert result.returncode == 0
    exports = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    lines = dict(line.removeprefix("export ").split("=", 1) for line in exports)
    assert lines["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4999"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"} <= set(lines)
    assert lines["SANDBOX_URL"] == "http://127.0.0.1:5000", (
        "the edge listens next to the API unless SANDBOX_EDGE_PORT says otherwise"
    )
    assert '--endpoint-url "$AWS_ENDPOINT_URL"' in result.stdout, "AWS CLI v1 users are told what it needs"


def test_status_of_a_stopped_sandbox_is_an_answer_not_an_error(tmp_path):
    result = _sandbox_cli("status", port=free_port(), state_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sandbox: stopped" in result.stdout and "make sandbox-up" in result.stdout


def test_liveness_and_status_do_not_depend_on_what_the_sandbox_holds(tmp_path):
    """moto's state dump (/moto-api/data.json) fails once an Aurora cluster snapshot exists ("Password not
    retrievable") and grows with every resource: up and status must not read it."""
    port, edge_port = free_ports(2)
    cfg = SandboxConfig(port=port, state_dir=tmp_path, edge_port=edge_port)
    try:
        cli.up(cfg)
        rds = boto3.client(
            "rds",
            region_name="us-east-1",
            endpoint_url=cfg.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )
        rds.create_db_cluster(
            DBClusterIdentifier="probe",
            Engine="aurora-postgresql",
            EngineVersion="15.4",
            MasterUsername="probe",
            MasterUserPassword="probe-password-1",
        )
        # The live sandbox starts a PostgreSQL node for the cluster: "creating" until it is up.
        deadline = time.monotonic() + 120
        while rds.describe_db_clusters(DBClusterIdentifier="probe")["DBClusters"][0]["Status"] != "available":
            assert time.monotonic() < deadline, "the probe cluster never became available"
            time.sleep(0.5)
        rds.create_db_cluster_snapshot(DBClusterIdentifier="probe", DBClusterSnapshotIdentifier="probe-snapshot")
        assert "already running" in cli.up(cfg)
        result = _sandbox_cli("status", port=cfg.port, state_dir=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"running (pid {cfg.pidfile.read_text().strip()})" in result.stdout
        assert "us-east-1: 0 project VPC(s) []; Aurora probe available" in result.stdout
        assert "edge: " in result.stdout and "global database: none" in result.stdout
    finally:
        cli.down(cfg)

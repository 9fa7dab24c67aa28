"""plugins/modules/ecs_one_off_task.py: pure helpers (unit) and the module on the sandbox with the real app (integration)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.waiter
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.support import REPO_ROOT, load_module_file, run_playbook

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "ecs_one_off_task.py")

DEFINITION = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
    "containerDefinitions": [
        {
            "name": "web",
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ecs/x/web", "awslogs-stream-prefix": "web"},
            },
        },
        {"name": "sidecar"},
    ],
}


# --- unit ----------------------------------------------------------------------------------------


def test_pick_container() -> None:
    assert mod.pick_container(DEFINITION, None)["name"] == "web"
    assert mod.pick_container(DEFINITION, "sidecar")["name"] == "sidecar"
    assert mod.pick_container(DEFINITION, "nope") is None
    assert mod.pick_container({"containerDefinitions": []}, None) is None


def test_log_target() -> None:
    assert mod.log_target(DEFINITION["containerDefinitions"][0], "abc") == ("/ecs/x/web", "web/web/abc")
    assert mod.log_target({"name": "s"}, "abc") == ("", "")
    no_prefix = {"name": "w", "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}}
    assert mod.log_target(no_prefix, "abc") == ("g", "abc")


def test_outcome_and_failure_message() -> None:
    task = {
        "stopCode": "TaskFailedToStart",
        "stoppedReason": "CannotPullContainerError: not found",
        "containers": [{"name": "web", "reason": "CannotPullContainerError: not found"}],
    }
    facts = mod.outcome(task, "web")
    assert facts["exit_code"] is None and facts["stop_code"] == "TaskFailedToStart"
    message = mod.failure_message("arn:task", "arn:td", ["migrate"], "web", facts, "/ecs/x/web", "web/web/t", ["boom"])
    assert "arn:task of arn:td (command: migrate) did not succeed" in message
    assert "container web never started" in message and "TaskFailedToStart: CannotPullContainerError" in message
    assert "Container reason" not in message  # already in stoppedReason
    assert "Logs: log group /ecs/x/web, stream web/web/t." in message and message.endswith("Last log lines:\nboom")
    exited = mod.outcome(
        {"stopCode": "EssentialContainerExited", "containers": [{"name": "web", "exitCode": 3}]}, "web"
    )
    assert "exited with code 3" in mod.failure_message("t", "d", None, "web", exited, "", "", [])


def _stubbed_ecs(statuses: list[str]) -> tuple[Any, Stubber]:
    """A real ECS client (so botocore's own tasks_stopped waiter runs) answering DescribeTasks from statuses,
    wrapped as AnsibleAWSModule wraps its clients (aws_retry=True)."""
    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for status in statuses:
        stubber.add_response("describe_tasks", {"tasks": [{"taskArn": "t", "lastStatus": status}]}, {
            "cluster": "c", "tasks": ["t"],
        })  # fmt: skip
    stubber.activate()
    return RetryingBotoClientWrapper(client, AWSRetry.jittered_backoff()), stubber


def test_wait_stopped_uses_the_tasks_stopped_waiter_until_stopped_or_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.waiter.time, "sleep", lambda _s: None)
    # Three polls by the waiter, then one DescribeTasks for the stopped task's facts.
    client, stubber = _stubbed_ecs(["PENDING", "RUNNING", "STOPPED", "STOPPED"])
    task, last = mod.wait_stopped(client, "c", "t", 60, 2)
    assert task["lastStatus"] == "STOPPED" and last is task
    stubber.assert_no_pending_responses()
    # timeout 4 s at 2 s apart: polls at 0, 2 and 4 s, then the last task seen.
    client, stubber = _stubbed_ecs(["RUNNING"] * 3)
    task, last = mod.wait_stopped(client, "c", "t", 4, 2)
    assert task is None and last["lastStatus"] == "RUNNING"
    stubber.assert_no_pending_responses()


def test_wait_stopped_raises_an_api_error_as_the_call_would() -> None:
    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_client_error("describe_tasks", "ClusterNotFoundException", "Cluster not found.")
    stubber.activate()
    with pytest.raises(ClientError, match="ClusterNotFoundException"):
        mod.wait_stopped(client, "c", "t", 60, 2)


# --- integration ---------------------------------------------------------------------------------


def test_ansible_doc_renders() -> None:
    proc = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "ansible-doc"), "-M", "plugins/modules", "ecs_one_off_task"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "once_tag" in proc.stdout


@pytest.fixture
def postgres() -> Any:
    from sandbox.postgres import PostgresNode, make_base_dir
    from sandbox.runtime import free_port

    node = PostgresNode(make_base_dir("it-one-off-") / "pg", free_port(), "it-one-off-password", fast=True)
    node.init().start()
    node.create_database("app")
    yield node
    node.destroy()


def test_module_on_sandbox(sandbox: Any, aws: Any, postgres: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    ec2, ecs, logs, secrets = aws("ec2"), aws("ecs"), aws("logs"), aws("secretsmanager")
    vpc = ec2.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.61.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName=f"it-{suffix}", Description="it")["GroupId"]
    cluster = f"it-one-off-{suffix}"
    ecs.create_cluster(clusterName=cluster)
    log_group = f"/ecs/it-one-off-{suffix}"
    logs.create_log_group(logGroupName=log_group)
    secret = secrets.create_secret(
        Name=f"it-one-off-{suffix}", SecretString=json.dumps({"password": postgres.password})
    )

    def task_definition(db_host: str) -> str:
        container = {
            "name": "web",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/hawa/web:latest",
            "portMappings": [{"containerPort": 8000}],
            "environment": [
                {"name": "DB_HOST", "value": db_host},
                {"name": "DB_USER", "value": "postgres"},
                {"name": "DB_NAME", "value": "app"},
            ],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": f"{secret['ARN']}:password::"}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": log_group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"},
            },
        }
        return ecs.register_task_definition(
            family=f"it-one-off-{suffix}",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[container],
        )["taskDefinition"]["taskDefinitionArn"]

    good, bad = task_definition(f"127.0.0.1:{postgres.port}"), task_definition("127.0.0.1:1")
    try:
        run = run_playbook(
            Path("tests/modules/targets/ecs_one_off_task.yml"),
            sandbox_port=sandbox.port,
            extra_vars={
                "target_cluster": cluster,
                "target_good": good,
                "target_bad": bad,
                "target_subnets": [subnet],
                "target_security_groups": [group],
                "target_log_group": log_group,
            },
        )
        assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
        changed = sorted(t.split(": ", 1)[1] for t in run.changed_tasks())
        assert changed == sorted(["Migrate (check mode)", "Migrate", "A migration whose database refuses connections"])
        assert postgres.execute("SELECT count(*) FROM alembic_version", dbname="app") == [(1,)]
    finally:
        ecs.delete_cluster(cluster=cluster)

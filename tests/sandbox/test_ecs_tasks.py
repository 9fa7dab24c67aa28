"""ECS services and RunTask run the web app as real processes (sandbox/services/ecs/: scheduler.py, containers.py)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox import cli
from sandbox.config import SandboxConfig
from sandbox.postgres import PostgresNode, make_base_dir
from sandbox.runtime import free_port
from sandbox.services.ecs import containers as ecs

ACCOUNT = "123456789012"
APP_IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/hawa/web:latest"
PASSWORD = f"pw-{uuid.uuid4().hex[:12]}"


# -- unit: sandbox/services/ecs/containers.py --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/hawa/web:latest", "hawa/web"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/hawa/web@sha256:abc", "hawa/web"),
        ("hawa/web", "hawa/web"),
        ("nginx:1.27", "nginx"),
        ("localhost:5000/team/app:v1", "team/app"),
        ("docker.io/library/python:3.11", "library/python"),
    ],
)
def test_image_repository(image: str, repository: str) -> None:
    assert ecs.image_repository(image) == repository


def test_app_repositories_default_and_override() -> None:
    assert ecs.app_repositories({}) == {"hawa/web"}
    assert ecs.app_repositories({"SANDBOX_APP_IMAGE_REPOSITORIES": "a/web, b/web ,"}) == {"a/web", "b/web"}
    assert ecs.is_app_image(APP_IMAGE, {"hawa/web"})
    assert not ecs.is_app_image("molecule/web:latest", {"hawa/web"})


def test_parse_value_from() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
    assert ecs.parse_value_from(arn) == ecs.SecretRef(arn)
    assert ecs.parse_value_from(f"{arn}:password::") == ecs.SecretRef(arn, "password")
    assert ecs.parse_value_from(f"{arn}:password:AWSPREVIOUS:") == ecs.SecretRef(arn, "password", "AWSPREVIOUS")
    assert ecs.parse_value_from(f"{arn}:::v1") == ecs.SecretRef(arn, "", "", "v1")
    with pytest.raises(ecs.TaskStartError, match="not a Secrets Manager secret ARN"):
        ecs.parse_value_from("arn:aws:s3:::bucket")


def test_pick_json_key() -> None:
    ref = ecs.SecretRef("arn", "password")
    assert ecs.pick_json_key('{"username": "app", "password": "s3cret"}', ref) == "s3cret"
    assert ecs.pick_json_key("plain", ecs.SecretRef("arn")) == "plain"
    with pytest.raises(ecs.TaskStartError, match="did not contain json key password"):
        ecs.pick_json_key('{"username": "app"}', ref)
    with pytest.raises(ecs.TaskStartError, match="json key"):
        ecs.pick_json_key("not json", ref)


def test_rewrite_hosts_uses_the_name_map_and_never_dns() -> None:
    names = {
        ("db.cluster-x.us-east-1.rds.amazonaws.com", 5432): ("127.0.0.1", 41000),
        ("10.0.1.5", 8000): ("127.0.0.1", 42000),
    }

    def lookup(host: str, port: int | None) -> tuple[str, int] | None:
        if port is None:
            ports = [p for h, p in names if h == host]
            return names[(host, ports[0])] if len(ports) == 1 else None
        return names.get((host, port))

    rds = "db.cluster-x.us-east-1.rds.amazonaws.com"
    assert ecs.rewrite_hosts(f"{rds}:5432", lookup, None) == "127.0.0.1:41000"
    assert ecs.rewrite_hosts(rds, lookup, 5432) == "127.0.0.1:41000"
    assert ecs.rewrite_hosts(rds, lookup, None) == "127.0.0.1:41000"  # the only published port
    assert ecs.rewrite_hosts("10.0.1.5", lookup, 5432) == "127.0.0.1:42000"  # DB_PORT not published: the only one
    assert ecs.rewrite_hosts(f"{rds}:5432,10.0.1.5:8000", lookup, 5432) == "127.0.0.1:41000,127.0.0.1:42000"
    for unchanged in ("us-east-1", "app", "5432", "http://example.com/x", "", "db.internal:5432", "a b"):
        assert ecs.rewrite_hosts(unchanged, lookup, 5432) == unchanged
    # An AWS name the map does not know: a loopback port that refuses at once, not a DNS lookup.
    unknown = ecs.rewrite_hosts("nothing.cluster-ro-y.us-east-1.rds.amazonaws.com", lookup, 5432)
    host, port = unknown.split(":")
    assert host == "127.0.0.1"
    with socket.socket() as sock:
        sock.settimeout(2)
        assert sock.connect_ex((host, int(port))) != 0


def test_allocate_ip_stays_in_the_subnet_and_skips_reserved_and_taken() -> None:
    net = ip_network("10.0.3.0/28")
    usable = {str(net[i]) for i in range(4, 15)}
    taken = set(list(usable)[:10])
    for seed in range(20):
        ip = ecs.allocate_ip(str(net), taken, random.Random(seed))
        assert ip in usable - taken
    with pytest.raises(ecs.TaskStartError, match="no free IPv4 address"):
        ecs.allocate_ip(str(net), usable)


def test_health_command_maps_the_container_port() -> None:
    check = {"command": ["CMD-SHELL", "curl -f http://localhost:8000/health || exit 1"]}
    assert ecs.health_command(check, [8000], 45000) == [
        "/bin/sh",
        "-c",
        "curl -f http://127.0.0.1:45000/health || exit 1",
    ]
    assert ecs.health_command({"command": ["CMD", "probe", "127.0.0.1:8000"]}, [8000], 1) == ["probe", "127.0.0.1:1"]
    assert ecs.health_command({"command": ["NONE"]}, [8000], 1) is None


# -- integration: a sandbox server, a real PostgreSQL ----------------------------------------------


def _get(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
        return json.load(resp)


def _wait(what: str, predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _ip(task: dict[str, Any]) -> str:
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    return details["privateIPv4Address"]


def _local(sandbox: SandboxConfig, ip: str, port: int = 8000) -> str | None:
    return _get(f"{sandbox.endpoint}/_sandbox/")["names"].get(f"{ip}:{port}")


def _live(sandbox: SandboxConfig, region: str | None = None) -> list[dict[str, Any]]:
    query = f"?region={region}" if region else ""
    return _get(f"{sandbox.endpoint}/_sandbox/ecs/tasks{query}")["tasks"]


def _pid_of(sandbox: SandboxConfig, task_arn: str) -> int:
    return next(t["pid"] for t in _live(sandbox) if t["taskArn"] == task_arn)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as raw:
        pairs = [item.decode().split("=", 1) for item in raw.read().split(b"\0") if b"=" in item]
    return dict(pairs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/status") as status:
        return "zombie" not in status.read()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresNode]:
    base = make_base_dir("sandbox-ecs-pg-")
    node = PostgresNode(base / "pg", free_port(), PASSWORD, fast=True).init().start()
    node.create_database("app")
    yield node
    node.destroy()


class Env:
    """A VPC, subnets in two AZs, a cluster, the DB secret and a target group in one region."""

    def __init__(self, aws: Callable[..., Any], region: str, cidr: str) -> None:
        self.region = region
        self.ec2, self.ecs, self.elb = aws("ec2", region), aws("ecs", region), aws("elbv2", region)
        self.logs, self.secrets = aws("logs", region), aws("secretsmanager", region)
        suffix = uuid.uuid4().hex[:8]
        vpc = self.ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        net = ip_network(cidr)
        blocks = list(net.subnets(new_prefix=24))
        self.subnets = {}
        for zone, block in zip(("a", "b"), blocks[:2], strict=True):
            subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock=str(block), AvailabilityZone=f"{region}{zone}")
            self.subnets[subnet["Subnet"]["SubnetId"]] = (f"{region}{zone}", block)
        self.sg = self.ec2.create_security_group(VpcId=vpc, GroupName=f"app-{suffix}", Description="app")["GroupId"]
        self.cluster = f"c-{suffix}"
        self.ecs.create_cluster(clusterName=self.cluster)
        self.secret_arn = self.secrets.create_secret(
            Name=f"db-{suffix}", SecretString=json.dumps({"username": "postgres", "password": PASSWORD})
        )["ARN"]
        self.tg_arn = self.elb.create_target_group(
            Name=f"tg-{suffix}", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip", HealthCheckPath="/health"
        )["TargetGroups"][0]["TargetGroupArn"]
        self.elb.modify_target_group_attributes(
            TargetGroupArn=self.tg_arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "1"}]
        )
        self.log_group = f"/ecs/test-{suffix}"
        self.logs.create_log_group(logGroupName=self.log_group)
        self.family = f"web-{suffix}"
        self.vpc = {"awsvpcConfiguration": {"subnets": list(self.subnets), "securityGroups": [self.sg]}}

    def task_definition(self, pg_port: int, *, image: str = APP_IMAGE, health: bool = False, **extra_env: str) -> str:
        env = {
            "DB_HOST": f"127.0.0.1:{pg_port}",
            "DB_USER": "postgres",
            "DB_NAME": "app",
            "DB_PORT": "5432",
            "REGION": self.region,
            **extra_env,
        }
        container: dict[str, Any] = {
            "name": "web",
            "image": image,
            "essential": True,
            "portMappings": [{"containerPort": 8000, "hostPort": 8000, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in env.items()],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": f"{self.secret_arn}:password::"}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.log_group,
                    "awslogs-region": self.region,
                    "awslogs-stream-prefix": "web",
                },
            },
        }
        if health:
            probe = (
                "python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)\""
            )
            container["healthCheck"] = {
                "command": ["CMD-SHELL", f"{probe} || exit 1"],
                "interval": 5,
                "timeout": 3,
                "retries": 2,
                "startPeriod": 5,
            }
        return self.ecs.register_task_definition(
            family=self.family,
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[container],
        )["taskDefinition"]["taskDefinitionArn"]

    def tasks(self, arns: list[str]) -> list[dict[str, Any]]:
        return self.ecs.describe_tasks(cluster=self.cluster, tasks=arns)["tasks"] if arns else []

    def service_tasks(self, service: str, desired: str = "RUNNING") -> list[dict[str, Any]]:
        return self.tasks(
            self.ecs.list_tasks(cluster=self.cluster, serviceName=service, desiredStatus=desired)["taskArns"]
        )

    def run(self, task_definition: str, **kwargs: Any) -> dict[str, Any]:
        return self.ecs.run_task(
            cluster=self.cluster,
            taskDefinition=task_definition,
            launchType="FARGATE",
            networkConfiguration=self.vpc,
            **kwargs,
        )["tasks"][0]

    def wait_stopped(self, arn: str, timeout: float = 30) -> dict[str, Any]:
        return _wait(
            f"task {arn} STOPPED",
            lambda: next((t for t in self.tasks([arn]) if t["lastStatus"] == "STOPPED"), None),
            timeout,
        )

    def cleanup(self) -> None:
        for arn in self.ecs.list_services(cluster=self.cluster)["serviceArns"]:
            with contextlib.suppress(ClientError):
                self.ecs.delete_service(cluster=self.cluster, service=arn, force=True)
        for arn in self.ecs.list_tasks(cluster=self.cluster)["taskArns"]:
            with contextlib.suppress(ClientError):
                self.ecs.stop_task(cluster=self.cluster, task=arn)


@pytest.fixture(scope="module")
def east(sandbox: SandboxConfig, postgres: PostgresNode) -> Iterator[Env]:
    import boto3

    from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY

    def aws(service: str, region: str) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=sandbox.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    env = Env(aws, "us-east-1", f"10.{random.randrange(100, 200)}.0.0/16")
    yield env
    env.cleanup()
    _wait("every test task stopped", lambda: all(t["lastStatus"] == "STOPPED" for t in _live(sandbox, "us-east-1")), 40)


def test_service_runs_app_tasks_replaces_killed_ones_and_scales_to_zero(
    sandbox: SandboxConfig, east: Env, postgres: PostgresNode
) -> None:
    task_definition = east.task_definition(postgres.port)
    started = time.monotonic()
    east.ecs.create_service(
        cluster=east.cluster,
        serviceName="web",
        taskDefinition=task_definition,
        desiredCount=2,
        launchType="FARGATE",
        networkConfiguration=east.vpc,
        healthCheckGracePeriodSeconds=30,
        loadBalancers=[{"targetGroupArn": east.tg_arn, "containerName": "web", "containerPort": 8000}],
    )
    tasks = _wait(
        "2 RUNNING tasks",
        lambda: (ts := east.service_tasks("web")) and [t["lastStatus"] for t in ts] == ["RUNNING"] * 2 and ts,
    )
    to_running = time.monotonic() - started
    # Each task answers /health at its published address (private IP, containerPort).
    for task in tasks:
        address = _wait("the task's published address", lambda task=task: _local(sandbox, _ip(task)))
        _wait("/health", lambda address=address: _health(address), timeout=20)
    to_serving = time.monotonic() - started
    zones = sorted(t["availabilityZone"] for t in tasks)
    assert zones == ["us-east-1a", "us-east-1b"]  # spread over the service's AZs
    for task in tasks:
        block = next(b for zone, b in east.subnets.values() if zone == task["availabilityZone"])
        assert ip_address(_ip(task)) in block
        assert task["group"] == "service:web" and task["startedBy"].startswith("ecs-svc/")
        assert task["launchType"] == "FARGATE" and task["desiredStatus"] == "RUNNING"
        assert task["attachments"][0]["status"] == "ATTACHED" and task["startedAt"] >= task["createdAt"]
        assert task["containers"][0]["lastStatus"] == "RUNNING" and "exitCode" not in task["containers"][0]

    # Registered in the target group (Id = private IP, Port = containerPort) once up.
    def registered() -> set[tuple[str, int]]:
        found = east.elb.describe_target_health(TargetGroupArn=east.tg_arn)["TargetHealthDescriptions"]
        return {(d["Target"]["Id"], d["Target"]["Port"]) for d in found}

    _wait("both targets registered", lambda: registered() == {(_ip(t), 8000) for t in tasks})
    service = _wait(
        "steady state",
        lambda: (
            (s := east.ecs.describe_services(cluster=east.cluster, services=["web"])["services"][0])
            and any("has reached a steady state" in e["message"] for e in s["events"])
            and s
        ),
    )
    assert service["runningCount"] == 2 and service["pendingCount"] == 0
    assert service["deployments"][0]["rolloutState"] == "COMPLETED" and service["deployments"][0]["runningCount"] == 2
    rss = [_rss_mb(_pid_of(sandbox, t["taskArn"])) for t in tasks]
    print(
        f"\nCreateService -> 2 RUNNING: {to_running:.2f}s, answering /health: {to_serving:.2f}s, RSS per task (MB): "
        + ", ".join(f"{r:.0f}" for r in rss)
    )

    # Kill one task: it stops with the exit code of a SIGKILL, and the service replaces it.
    killed = cli._control(sandbox, "faults/kill-task", {"region": "us-east-1", "task": tasks[0]["taskArn"]})
    assert killed["taskArn"] == tasks[0]["taskArn"] and killed["killed"]
    stopped = east.wait_stopped(tasks[0]["taskArn"])
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["containers"][0]["exitCode"] == 137 and stopped["desiredStatus"] == "STOPPED"
    assert stopped["stoppedAt"] >= stopped["startedAt"]
    assert _local(sandbox, _ip(stopped)) is None  # unpublished
    replaced = _wait(
        "a replacement",
        lambda: (
            (ts := east.service_tasks("web")) and len(ts) == 2 and all(t["lastStatus"] == "RUNNING" for t in ts) and ts
        ),
    )
    assert tasks[0]["taskArn"] not in {t["taskArn"] for t in replaced}
    _wait("targets follow the tasks", lambda: registered() == {(_ip(t), 8000) for t in replaced})

    # Kill an AZ: every task there dies and is replaced.
    in_a = [t["taskArn"] for t in replaced if t["availabilityZone"] == "us-east-1a"]
    result = cli._control(sandbox, "faults/kill-az", {"az": "us-east-1a"})
    assert sorted(k["taskArn"] for k in result["killed"]) == sorted(in_a)
    _wait(
        "replacements after the AZ kill",
        lambda: (
            (ts := east.service_tasks("web"))
            and len(ts) == 2
            and all(t["lastStatus"] == "RUNNING" for t in ts)
            and not set(in_a) & {t["taskArn"] for t in ts}
        ),
    )

    # Scale to zero: every task drains and stops (ServiceSchedulerInitiated), nothing stays registered.
    last = east.service_tasks("web")
    east.ecs.update_service(cluster=east.cluster, service="web", desiredCount=0)
    for task in last:
        done = east.wait_stopped(task["taskArn"], timeout=20)
        assert done["stopCode"] == "ServiceSchedulerInitiated"
        assert done["stoppedReason"].startswith("Scaling activity initiated by (deployment ecs-svc/")
        # SIGTERM: uvicorn shuts down gracefully, then re-raises the signal: 128 + 15, as Docker reports it.
        assert done["containers"][0]["exitCode"] == 143
    assert east.service_tasks("web") == [] and registered() == set()
    assert {t["taskArn"] for t in last} <= set(
        east.ecs.list_tasks(cluster=east.cluster, serviceName="web", desiredStatus="STOPPED")["taskArns"]
    )
    service = east.ecs.describe_services(cluster=east.cluster, services=["web"])["services"][0]
    assert service["runningCount"] == 0
    east.ecs.delete_service(cluster=east.cluster, service="web")


def _health(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/health", timeout=2) as resp:
            return resp.status == 200 and json.load(resp) == {"status": "ok"}
    except (urllib.error.URLError, OSError):
        return False


def test_rolling_deployment_and_circuit_breaker_rollback(east: Env, postgres: PostgresNode) -> None:
    first = east.task_definition(postgres.port, health=True)
    east.ecs.create_service(
        cluster=east.cluster,
        serviceName="roll",
        taskDefinition=first,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration=east.vpc,
        deploymentConfiguration={
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        },
    )

    def settled(task_definition: str) -> dict[str, Any] | None:
        service = east.ecs.describe_services(cluster=east.cluster, services=["roll"])["services"][0]
        primary = service["deployments"][0]
        ok = (
            len(service["deployments"]) == 1
            and primary["taskDefinition"] == task_definition
            and primary["rolloutState"] == "COMPLETED"
            and service["runningCount"] == 1
        )
        return service if ok else None

    _wait("the first deployment COMPLETED (health check passed)", lambda: settled(first), timeout=30)
    [old] = east.service_tasks("roll")
    assert old["healthStatus"] == "HEALTHY" and old["containers"][0]["healthStatus"] == "HEALTHY"

    # A new revision: a new PRIMARY deployment; the old task stops only once the new one serves
    # (minimumHealthyPercent 100: one healthy task at all times).
    second = east.task_definition(postgres.port, RELEASE="2")
    east.ecs.update_service(cluster=east.cluster, service="roll", taskDefinition=second)
    during = east.ecs.describe_services(cluster=east.cluster, services=["roll"])["services"][0]
    assert [d["status"] for d in during["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert during["deployments"][0]["rolloutState"] == "IN_PROGRESS" and during["taskDefinition"] == second
    service = _wait("the second deployment COMPLETED", lambda: settled(second), timeout=30)
    [new] = east.service_tasks("roll")
    assert new["startedBy"] == service["deployments"][0]["id"] and new["taskDefinitionArn"] == second
    assert east.wait_stopped(old["taskArn"])["stopCode"] == "ServiceSchedulerInitiated"

    # A revision whose image cannot be pulled: 3 failed tasks trip the breaker, which rolls back.
    broken = east.task_definition(postgres.port, image="public.ecr.aws/nginx/nginx:latest")
    east.ecs.update_service(cluster=east.cluster, service="roll", taskDefinition=broken)
    service = _wait(
        "the rollback",
        lambda: (
            (s := east.ecs.describe_services(cluster=east.cluster, services=["roll"])["services"][0])
            and s["deployments"][0]["rolloutStateReason"].startswith("ECS deployment circuit breaker: rolling back")
            and s
        ),
        timeout=30,
    )
    assert service["taskDefinition"] == second
    failed = next(d for d in service["deployments"] if d["taskDefinition"] == broken)
    assert failed["rolloutState"] == "FAILED" and failed["failedTasks"] >= 3
    assert any("deployment failed: tasks failed to start" in e["message"] for e in service["events"])
    assert service["runningCount"] >= 1  # the healthy task kept serving meanwhile
    _wait("the rollback COMPLETED", lambda: settled(second), timeout=30)
    east.ecs.delete_service(cluster=east.cluster, service="roll", force=True)


def test_run_task_environment_secrets_and_name_rewriting(
    sandbox: SandboxConfig, east: Env, postgres: PostgresNode
) -> None:
    peer = east.run(east.task_definition(postgres.port))
    peer = _wait("the peer RUNNING", lambda: (t := east.tasks([peer["taskArn"]])[0])["lastStatus"] == "RUNNING" and t)
    assert peer["group"] == f"family:{east.family}" and peer["startedBy"] == ""
    peer_local = _wait("the peer published", lambda: _local(sandbox, _ip(peer)))
    unknown = "nowhere.cluster-ro-abc.us-east-1.rds.amazonaws.com"
    task = east.run(
        east.task_definition(
            postgres.port,
            PEER=f"{_ip(peer)}:8000",
            PEERS=f"{_ip(peer)},{unknown}:5432",
            OTHER="not-a-host value",
            BUCKET="assets.example",
        )
    )
    assert task["lastStatus"] == "PROVISIONING" and task["desiredStatus"] == "RUNNING"
    running = _wait("RUNNING", lambda: (t := east.tasks([task["taskArn"]])[0])["lastStatus"] == "RUNNING" and t)
    _wait("the app serving", lambda: _health(_local(sandbox, _ip(running)) or "127.0.0.1:1"), timeout=20)
    live = next(t for t in _live(sandbox) if t["taskArn"] == task["taskArn"])
    env = _environ(live["pid"])
    assert env["DB_PASSWORD"] == PASSWORD  # injected from the secret's JSON key
    assert env["PEER"] == peer_local  # a published AWS name -> its local listener
    refused = env["PEERS"].split(",")
    assert refused[0] == peer_local and refused[1].startswith("127.0.0.1:")  # unknown AWS name: refused, no DNS
    assert env["OTHER"] == "not-a-host value" and env["BUCKET"] == "assets.example"
    assert env["DB_HOST"] == f"127.0.0.1:{postgres.port}" and env["REGION"] == "us-east-1"
    assert env["PORT"] == str(live["localPort"]) and env["HOST"] == "127.0.0.1" and env["WEB_CONCURRENCY"] == "1"
    assert env["TASK_ID"] == task["taskArn"].rsplit("/", 1)[1]
    assert env["AWS_ENDPOINT_URL"] == sandbox.endpoint and env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert "DB_SECRET_ARN" not in env

    # StopTask: UserInitiated, drained and stopped gracefully; the secret is in no log.
    stop = east.ecs.stop_task(cluster=east.cluster, task=task["taskArn"], reason="test is done")["task"]
    assert stop["desiredStatus"] == "STOPPED" and stop["stopCode"] == "UserInitiated"
    east.ecs.stop_task(cluster=east.cluster, task=peer["taskArn"])
    done = east.wait_stopped(task["taskArn"])
    assert done["stoppedReason"] == "test is done" and done["containers"][0]["exitCode"] == 143
    assert east.wait_stopped(peer["taskArn"])["stoppedReason"] == "Task stopped by user"
    with open(live["log"]) as log_file:
        output = log_file.read()
    assert "Application shutdown complete" in output and PASSWORD not in output
    assert PASSWORD not in (sandbox.state_dir / "sandbox.log").read_text()


def test_migrate_one_off_task_exits_zero_and_ships_its_log(east: Env, postgres: PostgresNode) -> None:
    task_definition = east.task_definition(postgres.port)
    task = east.run(task_definition, overrides={"containerOverrides": [{"name": "web", "command": ["migrate"]}]})
    done = east.wait_stopped(task["taskArn"], timeout=60)
    container = done["containers"][0]
    assert container["exitCode"] == 0, done
    assert done["stopCode"] == "EssentialContainerExited" and done["desiredStatus"] == "STOPPED"
    assert done["overrides"]["containerOverrides"][0]["command"] == ["migrate"]
    assert postgres.execute("SELECT version_num FROM alembic_version", dbname="app")
    streams = east.logs.describe_log_streams(logGroupName=east.log_group)["logStreams"]
    assert f"web/web/{task['taskArn'].rsplit('/', 1)[1]}" in {s["logStreamName"] for s in streams}

    # A migration that cannot reach its database exits non-zero; its traceback reaches the log stream.
    bad = east.run(
        task_definition,
        overrides={
            "containerOverrides": [
                {"name": "web", "command": ["migrate"], "environment": [{"name": "DB_HOST", "value": "127.0.0.1:1"}]}
            ]
        },
    )
    failed = east.wait_stopped(bad["taskArn"], timeout=60)
    assert failed["containers"][0]["exitCode"] == 1 and failed["stopCode"] == "EssentialContainerExited"
    stream = f"web/web/{bad['taskArn'].rsplit('/', 1)[1]}"
    events = east.logs.get_log_events(logGroupName=east.log_group, logStreamName=stream)["events"]
    assert any("Connection refused" in e["message"] or "OperationalError" in e["message"] for e in events)


def test_missing_log_group_fails_the_task_as_ecs_does(east: Env, postgres: PostgresNode) -> None:
    task_definition = east.task_definition(postgres.port)
    east.logs.delete_log_group(logGroupName=east.log_group)
    try:
        done = east.wait_stopped(east.run(task_definition)["taskArn"])
        assert done["stopCode"] == "TaskFailedToStart"
        assert "The specified log group does not exist" in done["stoppedReason"]
    finally:
        east.logs.create_log_group(logGroupName=east.log_group)


def test_image_the_sandbox_cannot_run_fails_to_start(east: Env, postgres: PostgresNode) -> None:
    foreign = east.run(east.task_definition(postgres.port, image="docker.io/library/nginx:1.27"))
    done = east.wait_stopped(foreign["taskArn"])
    assert done["stopCode"] == "TaskFailedToStart"
    assert done["stoppedReason"].startswith("CannotPullContainerError:")
    assert done["containers"][0]["reason"].startswith("CannotPullContainerError:")
    assert "exitCode" not in done["containers"][0]
    # A secret that does not exist: ResourceInitializationError, as ECS says.
    east.secrets.delete_secret(SecretId=east.secret_arn, ForceDeleteWithoutRecovery=True)
    try:
        missing = east.run(east.task_definition(postgres.port))
        done = east.wait_stopped(missing["taskArn"])
        assert done["stopCode"] == "TaskFailedToStart"
        assert done["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets")
    finally:
        east.secret_arn = east.secrets.create_secret(
            Name=f"db-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"password": PASSWORD})
        )["ARN"]


def test_api_shapes_missing_tasks_and_filters(east: Env) -> None:
    described = east.ecs.describe_tasks(cluster=east.cluster, tasks=["0123456789abcdef0123456789abcdef"])
    assert described["tasks"] == []
    assert described["failures"][0]["reason"] == "MISSING"
    assert east.ecs.list_tasks(cluster=east.cluster, serviceName="no-such-service")["taskArns"] == []
    with pytest.raises(ClientError):
        east.ecs.run_task(cluster=east.cluster, taskDefinition=east.task_definition(5432), launchType="FARGATE")


def test_outage_stops_tasks_and_restore_starts_them_again(
    sandbox: SandboxConfig, aws: Callable[..., Any], postgres: PostgresNode
) -> None:
    west = Env(aws, "us-west-2", f"10.{random.randrange(200, 250)}.0.0/16")
    try:
        west.ecs.create_service(
            cluster=west.cluster,
            serviceName="web",
            taskDefinition=west.task_definition(postgres.port),
            desiredCount=1,
            launchType="FARGATE",
            networkConfiguration=west.vpc,
        )
        [before] = _wait(
            "a RUNNING task", lambda: (ts := west.service_tasks("web")) and ts[0]["lastStatus"] == "RUNNING" and ts
        )
        pid = _pid_of(sandbox, before["taskArn"])
        assert cli.outage(sandbox, "us-west-2") == "region us-west-2 is dark"
        try:
            assert not _alive(pid)
            assert _local(sandbox, _ip(before)) is None
            time.sleep(1.5)  # nothing is replaced while the region is dark
            running = [t for t in _live(sandbox, "us-west-2") if t["lastStatus"] != "STOPPED"]
            assert running == []
        finally:
            cli.restore(sandbox, "us-west-2")
        stopped = west.tasks([before["taskArn"]])[0]
        assert stopped["lastStatus"] == "STOPPED" and stopped["containers"][0]["exitCode"] == 137
        [after] = _wait(
            "a new RUNNING task after restore",
            lambda: (ts := west.service_tasks("web")) and ts[0]["lastStatus"] == "RUNNING" and ts,
        )
        assert after["taskArn"] != before["taskArn"]
    finally:
        west.cleanup()
        _wait(
            "us-west-2 tasks stopped",
            lambda: all(t["lastStatus"] == "STOPPED" for t in _live(sandbox, "us-west-2")),
            30,
        )

"""The sandbox keeps what CreateService was given, as AWS does (sandbox/services/ecs/patches.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

REGION = "us-west-2"


@pytest.fixture
def service_env(aws: Callable[..., Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    ec2 = aws("ec2", REGION)
    ecs = aws("ecs", REGION)
    name = request.node.name.replace("[", "-").replace("]", "")[:40]
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName=name, Description="test", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName=name)
    arn = ecs.register_task_definition(
        family=name,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "web", "image": "example/web:1", "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    return {"ecs": ecs, "cluster": name, "task_definition": arn, "subnet": subnet, "sg": sg}


def _create(env: dict[str, Any], awsvpc: dict[str, Any], **extra: Any) -> dict[str, Any]:
    env["ecs"].create_service(
        cluster=env["cluster"],
        serviceName="web",
        taskDefinition=env["task_definition"],
        desiredCount=2,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": awsvpc},
        **extra,
    )
    return env["ecs"].describe_services(cluster=env["cluster"], services=["web"])["services"][0]


def test_create_service_keeps_grace_period_and_circuit_breaker(service_env: dict[str, Any]) -> None:
    deployment = {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 200,
        "minimumHealthyPercent": 50,
    }
    service = _create(
        service_env,
        {"subnets": [service_env["subnet"]], "securityGroups": [service_env["sg"]]},
        healthCheckGracePeriodSeconds=45,
        deploymentConfiguration=deployment,
        enableExecuteCommand=True,
    )
    assert service["healthCheckGracePeriodSeconds"] == 45
    assert service["deploymentConfiguration"] == deployment
    assert service["enableExecuteCommand"] is True


def test_create_service_reports_default_deployment_configuration(service_env: dict[str, Any]) -> None:
    service = _create(service_env, {"subnets": [service_env["subnet"]], "securityGroups": [service_env["sg"]]})
    assert service["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }
    assert "healthCheckGracePeriodSeconds" not in service


def test_update_service_changes_grace_period(service_env: dict[str, Any]) -> None:
    _create(
        service_env,
        {"subnets": [service_env["subnet"]], "securityGroups": [service_env["sg"]]},
        healthCheckGracePeriodSeconds=30,
    )
    service_env["ecs"].update_service(cluster=service_env["cluster"], service="web", healthCheckGracePeriodSeconds=90)
    service = service_env["ecs"].describe_services(cluster=service_env["cluster"], services=["web"])["services"][0]
    assert service["healthCheckGracePeriodSeconds"] == 90


def test_create_service_without_security_groups_is_accepted(service_env: dict[str, Any]) -> None:
    service = _create(service_env, {"subnets": [service_env["subnet"]]})
    assert service["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == [service_env["subnet"]]


def test_create_service_with_unknown_subnet_is_still_refused(service_env: dict[str, Any]) -> None:
    ecs = service_env["ecs"]
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="subnet-0000"):
        _create(service_env, {"subnets": ["subnet-00000000000000000"]})

"""ALBs report their full attribute set, defaults included (sandbox/services/elbv2/patches.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _alb(aws: Callable[..., Any], name: str, lb_type: str = "application") -> tuple[Any, str]:
    ec2 = aws("ec2", "us-east-1")
    elb = aws("elbv2", "us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.78.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    arn = elb.create_load_balancer(Name=name, Subnets=subnets, Type=lb_type)["LoadBalancers"][0]["LoadBalancerArn"]
    return elb, arn


def _attributes(elb: Any, arn: str) -> dict[str, str]:
    found = elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    return {item["Key"]: item["Value"] for item in found}


def test_alb_reports_aws_defaults(aws: Callable[..., Any]) -> None:
    elb, arn = _alb(aws, "attrs-defaults")
    attributes = _attributes(elb, arn)
    assert attributes["idle_timeout.timeout_seconds"] == "60"
    assert attributes["routing.http2.enabled"] == "true"
    assert attributes["routing.http.desync_mitigation_mode"] == "defensive"
    assert attributes["access_logs.s3.enabled"] == "false"
    assert attributes["load_balancing.cross_zone.enabled"] == "true"


def test_modified_attribute_wins_over_default(aws: Callable[..., Any]) -> None:
    elb, arn = _alb(aws, "attrs-modified")
    elb.modify_load_balancer_attributes(
        LoadBalancerArn=arn,
        Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "30"}],
    )
    assert _attributes(elb, arn)["idle_timeout.timeout_seconds"] == "30"


def test_network_load_balancer_is_left_alone(aws: Callable[..., Any]) -> None:
    elb, arn = _alb(aws, "attrs-nlb", lb_type="network")
    assert "routing.http2.enabled" not in _attributes(elb, arn)

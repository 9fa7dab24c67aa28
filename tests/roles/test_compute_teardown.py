"""roles/compute's teardown and a deletion-protected load balancer (production's): refused, naming the input,
until compute_alb_deletion_protection is false; then the protection is lifted and the ALB deleted."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import run_playbook

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  environment: "{{ aws_environment }}"
  tasks:
    - ansible.builtin.include_role:
        name: compute
      vars:
        compute_state: absent
        compute_region: us-east-1
        compute_name_prefix: "{{ prefix }}"
"""


def _protected_alb(aws: Callable[..., Any], name: str) -> str:
    ec2, elbv2 = aws("ec2"), aws("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    group = ec2.create_security_group(GroupName=f"{name}-sg", Description="alb", VpcId=vpc)["GroupId"]
    arn = elbv2.create_load_balancer(Name=name, Subnets=subnets, SecurityGroups=[group])["LoadBalancers"][0]
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn["LoadBalancerArn"], Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}]
    )
    return arn["LoadBalancerArn"]


def _alb_names(aws: Callable[..., Any]) -> list[str]:
    return [lb["LoadBalancerName"] for lb in aws("elbv2").describe_load_balancers()["LoadBalancers"]]


def test_a_protected_load_balancer_is_refused_then_deleted_on_request(
    sandbox: Any, aws: Callable[..., Any], tmp_path: Path
) -> None:
    prefix = f"td{uuid.uuid4().hex[:6]}"
    _protected_alb(aws, f"{prefix}-alb")
    playbook = tmp_path / "teardown.yml"
    playbook.write_text(PLAY)

    run = run_playbook(
        playbook, sandbox_port=sandbox.port, extra_vars={"prefix": prefix, "compute_alb_deletion_protection": True}
    )
    assert run.returncode != 0
    assert any("-e app_alb_deletion_protection=false" in m for m in run.failure_messages()), run.failure_messages()
    assert f"{prefix}-alb" in _alb_names(aws), "a refused teardown must remove nothing"

    run = run_playbook(
        playbook, sandbox_port=sandbox.port, extra_vars={"prefix": prefix, "compute_alb_deletion_protection": False}
    )
    assert run.returncode == 0, run.failure_messages() or run.stderr[-2000:]
    assert f"{prefix}-alb" not in _alb_names(aws)

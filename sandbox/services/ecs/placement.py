"""Where a new ECS task lands and the records it gets: its ENI in a subnet, moto's Task and Container.

The Task object is built here rather than by moto's constructor, which puts the ENI on the first subnet
with an address from no subnet at all and fails in VPCs without DNS host names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.services.ecs import containers as ecs

FARGATE_PLATFORM_VERSION = "1.4.0"


@dataclass(frozen=True)
class Eni:
    """The task's network interface: in the subnet, with a free private address of it."""

    subnet: Any
    eni: Any
    ip: str
    attachment_id: str


def attach_eni(backend: Any, subnet_id: str, awsvpc: dict[str, Any]) -> Eni:
    from moto.ec2 import ec2_backends

    account, region = backend.account_id, backend.region_name
    ec2 = ec2_backends[account][region]
    subnet = ec2.get_subnet(subnet_id)
    taken = {e.private_ip_address for e in ec2.enis.values() if getattr(e.subnet, "id", None) == subnet_id}
    ip = ecs.allocate_ip(subnet.cidr_block, taken)
    attachment_id = str(uuid.uuid4())
    eni = ec2.create_network_interface(
        subnet=subnet,
        private_ip_address=ip,
        group_ids=awsvpc.get("securityGroups") or [],
        description=f"arn:aws:ecs:{region}:{account}:attachment/{attachment_id}",
    )
    eni.status = "in-use"
    eni.requester_managed = True
    return Eni(subnet, eni, ip, attachment_id)


def new_task(
    backend: Any,
    cluster: Any,
    definition: Any,
    awsvpc: dict[str, Any],
    nic: Eni,
    *,
    overrides: dict[str, Any] | None,
    started_by: str,
    tags: list[dict[str, str]] | None,
    launch_type: str | None,
    group: str | None,
    platform_version: str | None,
    capacity_provider_name: str | None,
    now: Any,
) -> Any:
    """moto's Task record (PROVISIONING, no container yet) for a task on ``nic``."""
    from moto.ecs.models import Task
    from moto.moto_api._internal.managed_state_model import ManagedState

    account, region = backend.account_id, backend.region_name
    task = Task.__new__(Task)
    # Only the sandbox moves these tasks between states: a one-state machine that never advances.
    ManagedState.__init__(task, model_name="ecs::task", transitions=[("PROVISIONING", "PROVISIONING")])
    task.id = str(uuid.uuid4())
    task.cluster_name, task.cluster_arn = cluster.name, cluster.arn
    task.container_instance_arn = None
    task.task_definition_arn = definition.arn
    task.overrides = overrides or {}
    task.started_by = started_by or ""
    task.tags = tags or []
    task.launch_type = launch_type or ("FARGATE" if not capacity_provider_name else None)
    task.capacity_provider_name = capacity_provider_name
    task.platform_version = platform_version or FARGATE_PLATFORM_VERSION
    task.platform_family = "Linux"
    task.region_name = region
    task._account_id = account
    task._backend = backend
    task.group = group or f"family:{definition.family}"
    task.network_configuration = {"awsvpcConfiguration": awsvpc}
    task.resource_requirements = None
    task.attachments = [
        {
            "id": nic.attachment_id,
            "type": "ElasticNetworkInterface",
            "status": "PRECREATED",
            "details": [
                {"name": "subnetId", "value": nic.subnet.id},
                {"name": "networkInterfaceId", "value": nic.eni.id},
                {"name": "macAddress", "value": nic.eni.mac_address},
                {"name": "privateDnsName", "value": f"ip-{nic.ip.replace('.', '-')}.ec2.internal"},
                {"name": "privateIPv4Address", "value": nic.ip},
            ],
        }
    ]
    task.last_status = "PROVISIONING"
    task.desired_status = "RUNNING"
    task.created_at = now
    task.availability_zone = nic.subnet.availability_zone
    task.health_status = "UNKNOWN"
    task.stop_code = None
    task.stopped_reason = None
    task.cpu = definition.cpu
    task.memory = definition.memory
    task.enable_execute_command = False
    task.version = 1
    return task


def container_override(task: Any, container_definition: dict[str, Any]) -> dict[str, Any]:
    """The task's containerOverrides entry for the container, or {}."""
    overrides = task.overrides.get("containerOverrides") or []
    return next((o for o in overrides if o.get("name") == container_definition.get("name")), {})


def new_container(task: Any, cluster: Any, definition: Any, nic: Eni) -> Any:
    """moto's Container record (PENDING) of the task's first container definition."""
    from moto.ecs.models import Container

    container_definition = definition.container_definitions[0]
    container = Container(definition)
    container.task_arn = task.task_arn
    container.container_arn = (
        f"arn:aws:ecs:{task.region_name}:{task._account_id}:container/{cluster.name}/{task.id}/{uuid.uuid4()}"
    )
    container.last_status = "PENDING"
    container.exitCode = None
    container.reason = None
    container.health_status = "UNKNOWN"
    container.cpu = str(container_definition.get("cpu", 0))
    container.memory = str(container_definition["memory"]) if container_definition.get("memory") else None
    container.network_interfaces = [{"attachmentId": nic.attachment_id, "privateIpv4Address": nic.ip}]
    return container

"""ListServices lists ACTIVE services only; deleted clusters stay listed (sandbox/services/ecs/patches.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

REGION = "us-west-2"


def _ecs_with_service(aws: Callable[..., Any]) -> tuple[Any, str]:
    """A cluster with one service "web" of an EC2 (bridge) task definition: a record only, no task runs."""
    ecs = aws("ecs", REGION)
    cluster = f"list-active-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=cluster, containerDefinitions=[{"name": "web", "image": "example/web:1", "memory": 128}]
    )
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=cluster, desiredCount=0)
    return ecs, cluster


def _listed(ecs: Any, cluster: str) -> list[str]:
    return [arn.split("/")[-1] for arn in ecs.list_services(cluster=cluster)["serviceArns"]]


def test_deleted_service_is_not_listed_but_still_described(aws: Callable[..., Any]) -> None:
    ecs, cluster = _ecs_with_service(aws)
    assert _listed(ecs, cluster) == ["web"]

    ecs.delete_service(cluster=cluster, service="web", force=True)

    assert _listed(ecs, cluster) == []
    (service,) = ecs.describe_services(cluster=cluster, services=["web"])["services"]
    assert service["status"] == "INACTIVE"


def test_a_service_created_again_under_the_same_name_is_listed(aws: Callable[..., Any]) -> None:
    ecs, cluster = _ecs_with_service(aws)
    ecs.delete_service(cluster=cluster, service="web", force=True)
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=cluster, desiredCount=0)
    assert _listed(ecs, cluster) == ["web"]
    assert ecs.describe_services(cluster=cluster, services=["web"])["services"][0]["status"] == "ACTIVE"


def test_other_services_of_the_cluster_stay_listed(aws: Callable[..., Any]) -> None:
    ecs, cluster = _ecs_with_service(aws)
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition=cluster, desiredCount=0)
    ecs.delete_service(cluster=cluster, service="web", force=True)
    assert _listed(ecs, cluster) == ["api"]


def test_a_deleted_cluster_stays_listed_as_inactive_as_on_aws(aws: Callable[..., Any]) -> None:
    ecs, cluster = _ecs_with_service(aws)
    ecs.delete_service(cluster=cluster, service="web", force=True)
    arn = ecs.delete_cluster(cluster=cluster)["cluster"]["clusterArn"]
    # AWS: "Clusters with an INACTIVE status might remain discoverable in your account for a period of time."
    assert arn in ecs.list_clusters()["clusterArns"]
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"] == "INACTIVE"

"""Clusters report empty capacity-provider lists, as AWS does (sandbox/services/ecs/patches.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_cluster_without_capacity_providers_reports_empty_lists(aws: Callable[..., Any]) -> None:
    ecs = aws("ecs", "us-east-1")
    ecs.create_cluster(clusterName="cp-none")
    cluster = ecs.describe_clusters(clusters=["cp-none"])["clusters"][0]
    assert cluster["capacityProviders"] == []
    assert cluster["defaultCapacityProviderStrategy"] == []


def test_cluster_with_capacity_providers_keeps_them(aws: Callable[..., Any]) -> None:
    ecs = aws("ecs", "us-east-1")
    strategy = [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]
    ecs.create_cluster(
        clusterName="cp-set",
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=strategy,
    )
    cluster = ecs.describe_clusters(clusters=["cp-set"])["clusters"][0]
    assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert cluster["defaultCapacityProviderStrategy"] == strategy

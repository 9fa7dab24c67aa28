"""plugins/modules/ecs_service_scale.py against scripted ECS and Application Auto Scaling clients (unit). On
the live sandbox it runs in every failover.yml run (tests/test_readme.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import REPO_ROOT, load_module_file

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "ecs_service_scale.py")

CLUSTER = "arn:aws:ecs:us-west-2:123456789012:cluster/app-us-west-2-cluster"
RESOURCE = "service/app-us-west-2-cluster/web"


class FakeEcs:
    def __init__(self, desired: int, status: str = "ACTIVE") -> None:
        self.service = {"clusterArn": CLUSTER, "serviceName": "web", "status": status, "desiredCount": desired}
        self.service["runningCount"] = desired
        self.updates: list[int] = []

    def describe_services(self, **kwargs: Any) -> dict[str, Any]:
        return {"services": [self.service]}

    def update_service(self, **kwargs: Any) -> None:
        self.updates.append(kwargs["desiredCount"])


class FakeAutoscaling:
    def __init__(self, bounds: tuple[int, int] | None) -> None:
        self.targets = [] if bounds is None else [{"MinCapacity": bounds[0], "MaxCapacity": bounds[1]}]
        self.registered: list[tuple[int, int]] = []

    def describe_scalable_targets(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["ResourceIds"] == [RESOURCE] and kwargs["ScalableDimension"] == "ecs:service:DesiredCount"
        return {"ScalableTargets": self.targets}

    def register_scalable_target(self, **kwargs: Any) -> None:
        assert kwargs["ResourceId"] == RESOURCE
        self.registered.append((kwargs["MinCapacity"], kwargs["MaxCapacity"]))


def _params(**given: Any) -> dict[str, Any]:
    return (
        {"cluster": CLUSTER, "service": "web", "desired_count": None, "minimum": False}
        | {"autoscaling_min_capacity": None}
        | given
    )


def test_a_failover_raises_the_count_and_the_autoscaling_floor_together() -> None:
    ecs, autoscaling = FakeEcs(1), FakeAutoscaling((1, 12))
    result = mod.scale(ecs, autoscaling, _params(desired_count=3, minimum=True, autoscaling_min_capacity=3), False)
    assert result["changed"] and ecs.updates == [3] and autoscaling.registered == [(3, 12)]
    assert result["autoscaling"] == {"min_capacity": 3, "max_capacity": 12, "previous_min_capacity": 1}
    assert (result["previous_desired_count"], result["desired_count"]) == (1, 3)


def test_a_floor_above_the_maximum_raises_the_maximum_too() -> None:
    autoscaling = FakeAutoscaling((1, 2))
    mod.scale(FakeEcs(3), autoscaling, _params(autoscaling_min_capacity=3), False)
    assert autoscaling.registered == [(3, 3)]


def test_lowering_only_the_floor_keeps_the_tasks_running() -> None:
    ecs, autoscaling = FakeEcs(3), FakeAutoscaling((3, 12))
    result = mod.scale(ecs, autoscaling, _params(autoscaling_min_capacity=1), False)
    assert result["changed"] and ecs.updates == [] and autoscaling.registered == [(1, 12)]
    assert result["desired_count"] == 3


def test_nothing_to_do_is_no_call_and_check_mode_writes_nothing() -> None:
    ecs, autoscaling = FakeEcs(3), FakeAutoscaling((3, 12))
    assert not mod.scale(ecs, autoscaling, _params(desired_count=3, autoscaling_min_capacity=3), False)["changed"]
    ecs, autoscaling = FakeEcs(1), FakeAutoscaling((1, 12))
    assert mod.scale(ecs, autoscaling, _params(desired_count=3, autoscaling_min_capacity=3), True)["changed"]
    assert ecs.updates == [] and autoscaling.registered == []


def test_a_service_without_autoscaling_is_scaled_and_left_without_it() -> None:
    ecs, autoscaling = FakeEcs(1), FakeAutoscaling(None)
    result = mod.scale(ecs, autoscaling, _params(desired_count=3, autoscaling_min_capacity=3), False)
    assert ecs.updates == [3] and autoscaling.registered == [] and result["autoscaling"] == {}


def test_minimum_keeps_a_larger_autoscaled_count() -> None:
    ecs = FakeEcs(5)
    assert mod.scale(ecs, FakeAutoscaling(None), _params(desired_count=3, minimum=True), False)["desired_count"] == 5
    assert ecs.updates == []


def test_a_missing_service_is_named() -> None:
    with pytest.raises(mod.ServiceNotFound, match="ECS service web not found"):
        mod.scale(FakeEcs(1, status="INACTIVE"), FakeAutoscaling(None), _params(desired_count=3), False)

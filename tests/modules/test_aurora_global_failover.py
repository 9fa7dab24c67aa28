"""plugins/modules/aurora_global_failover.py against a scripted RDS (unit). The module on the live sandbox
runs in failover.yml's end-to-end tests (tests/test_readme.py, tests/eda/test_controller.py)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tests.support import REPO_ROOT, load_module_file

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "aurora_global_failover.py")

EAST = "arn:aws:rds:us-east-1:123456789012:cluster:hawa-east"
WEST = "arn:aws:rds:us-west-2:123456789012:cluster:hawa-west"


def cluster(writer: str, *, sync: str = "connected", state: dict | None = None) -> dict[str, Any]:
    found = {
        "GlobalClusterIdentifier": "g",
        "GlobalClusterMembers": [
            {
                "DBClusterArn": arn,
                "IsWriter": arn == writer,
                **({} if arn == writer else {"SynchronizationStatus": sync}),
            }
            for arn in (EAST, WEST)
        ],
    }
    if state:
        found["FailoverState"] = state
    return found


class FakeAWS:
    """Serves describe_global_clusters from a script (the last entry repeats) and records every write."""

    def __init__(self, script: list[dict | None], lag: float | None = 120.0, versions=("16.4", "16.4")) -> None:
        self.script = list(script)
        self.lag = lag
        self.versions = dict(zip((EAST, WEST), versions, strict=True))
        self.writes: list[tuple[str, dict]] = []

    def describe_global_clusters(self, **_: Any) -> dict:
        current = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return {"GlobalClusters": [current] if current else []}

    def describe_db_clusters(self, DBClusterIdentifier: str, **_: Any) -> dict:
        return {"DBClusters": [{"EngineVersion": self.versions[DBClusterIdentifier]}]}

    def get_metric_statistics(self, **_: Any) -> dict:
        now = datetime.datetime.now(datetime.UTC)
        return {"Datapoints": [] if self.lag is None else [{"Timestamp": now, "Maximum": self.lag}]}

    def _write(name: str):
        def record(self: FakeAWS, **kwargs: Any) -> dict:
            self.writes.append((name, kwargs))
            return {}

        return record

    switchover_global_cluster = _write("switchover")
    failover_global_cluster = _write("failover")
    remove_from_global_cluster = _write("detach")


class FakeModule:
    def __init__(self, check_mode: bool = False, **params: Any) -> None:
        self.params = {
            "global_cluster_identifier": "g", "target_cluster": None, "target_region": None, "allow_data_loss": False,
            "max_replication_lag_ms": 1000, "wait": True, "wait_timeout": 60,
        } | params  # fmt: skip
        self.check_mode = check_mode
        self.region = "us-west-2"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def run(aws: FakeAWS, **params: Any) -> dict:
    clock = Clock()
    clients = {(s, r): aws for s in ("rds", "cloudwatch") for r in ("us-east-1", "us-west-2")}
    check_mode = params.pop("check_mode", False)
    return mod.Failover(FakeModule(check_mode, **params), clients, clock, clock.sleep).run()


def test_switchover_runs_preflight_then_waits_and_records_a_timeline() -> None:
    pending = {"Status": "switching-over", "FromDbClusterArn": EAST, "ToDbClusterArn": WEST}
    aws = FakeAWS([cluster(EAST), cluster(EAST, state=pending), cluster(WEST, sync="pending-resync"), cluster(WEST)])
    result = run(aws, mode="switchover", target_region="us-west-2")
    assert result["changed"] and aws.writes == [
        ("switchover", {"GlobalClusterIdentifier": "g", "TargetDbClusterIdentifier": WEST})
    ]
    assert result["writer_cluster_arn"] == WEST and result["previous_writer_arn"] == EAST
    assert [c["check"] for c in result["preflight"]] == [
        "every secondary connected", "a writer to switch from", "engine versions match", "replication lag within bound",
    ]  # fmt: skip
    events = [e["event"] for e in result["timeline"]]
    assert events[1] == "SwitchoverGlobalCluster requested for hawa-west"
    assert (
        "operation switching-over" in events[2]
        and "writer hawa-west" in events[3]
        and events[-1].endswith("hawa-east connected")
    )
    assert {"arn": EAST, "region": "us-east-1", "is_writer": False, "synchronization_status": "connected"} in result[
        "topology"
    ]


def test_target_already_writer_changes_nothing() -> None:
    aws = FakeAWS([cluster(WEST)])
    result = run(aws, mode="switchover", target_cluster="hawa-west")
    assert not result["changed"] and aws.writes == [] and result["preflight"] == []


@pytest.mark.parametrize(
    ("aws", "params", "message"),
    [
        (
            FakeAWS([cluster(EAST)], lag=4000),
            {"mode": "switchover"},
            "replication lag within bound' failed: found 4000 ms",
        ),
        (FakeAWS([cluster(EAST)], lag=None), {"mode": "switchover"}, "no AuroraGlobalDBReplicationLag datapoint"),
        (FakeAWS([cluster(EAST, sync="pending-resync")]), {"mode": "switchover"}, "hawa-west pending-resync"),
        (FakeAWS([cluster(EAST)], versions=("16.4", "15.6")), {"mode": "switchover"}, "engine versions match"),
        (FakeAWS([cluster(EAST)]), {"mode": "failover"}, "set allow_data_loss: true"),
    ],
)
def test_preflight_refusals_change_nothing(aws: FakeAWS, params: dict, message: str) -> None:
    with pytest.raises(mod.FailoverError, match="pre-flight check") as excinfo:
        run(aws, target_region="us-west-2", **params)
    assert message in str(excinfo.value)
    assert aws.writes == []


def test_unknown_target_and_missing_global_cluster() -> None:
    with pytest.raises(mod.FailoverError, match=r"it is not a member \(members: .*hawa-east"):
        run(FakeAWS([cluster(EAST)]), mode="switchover", target_region="eu-west-1")
    with pytest.raises(mod.FailoverError, match=r"global cluster g exists .* not found"):
        run(FakeAWS([None]), mode="switchover", target_region="us-west-2")


def test_operation_in_flight_to_another_target_is_refused_and_to_the_same_one_resumed() -> None:
    toward_east = {"Status": "failing-over", "FromDbClusterArn": WEST, "ToDbClusterArn": EAST}
    with pytest.raises(mod.FailoverError, match="failing-over operation from hawa-west to hawa-east is running"):
        run(
            FakeAWS([cluster(WEST, state=toward_east)]),
            mode="failover",
            target_region="us-west-2",
            allow_data_loss=True,
        )

    toward_west = {"Status": "failing-over", "FromDbClusterArn": EAST, "ToDbClusterArn": WEST}
    aws = FakeAWS(
        [cluster(EAST, state=toward_west), cluster(EAST, state=toward_west), cluster(WEST, sync="pending-resync")]
    )
    result = run(aws, mode="failover", target_region="us-west-2", allow_data_loss=True)
    assert result["resumed"] and not result["changed"] and aws.writes == []
    assert result["writer_cluster_arn"] == WEST


def test_failover_reports_the_lag_as_data_loss_estimate_and_does_not_wait_for_the_old_writer() -> None:
    aws = FakeAWS([cluster(EAST), cluster(WEST, sync="pending-resync")], lag=350)
    result = run(aws, mode="failover", target_region="us-west-2", allow_data_loss=True)
    assert aws.writes == [
        ("failover", {"GlobalClusterIdentifier": "g", "TargetDbClusterIdentifier": WEST, "AllowDataLoss": True})
    ]
    assert result["rpo_lag_ms"] == 350 and result["writer_cluster_arn"] == WEST


def test_check_mode_runs_the_checks_but_starts_nothing() -> None:
    aws = FakeAWS([cluster(EAST)])
    result = run(aws, mode="switchover", target_region="us-west-2", check_mode=True)
    assert result["changed"] and aws.writes == [] and len(result["preflight"]) == 4


def test_detach_is_idempotent() -> None:
    aws = FakeAWS(
        [
            cluster(EAST),
            {"GlobalClusterIdentifier": "g", "GlobalClusterMembers": [{"DBClusterArn": EAST, "IsWriter": True}]},
        ]
    )
    assert run(aws, mode="detach", target_region="us-west-2")["changed"]
    assert aws.writes[0][0] == "detach"
    again = FakeAWS(
        [{"GlobalClusterIdentifier": "g", "GlobalClusterMembers": [{"DBClusterArn": EAST, "IsWriter": True}]}]
    )
    assert not run(again, mode="detach", target_region="us-west-2")["changed"] and again.writes == []


def test_timeout_says_what_was_found_and_what_to_do() -> None:
    stuck = {"Status": "switching-over", "FromDbClusterArn": EAST, "ToDbClusterArn": WEST}
    aws = FakeAWS([cluster(EAST), cluster(EAST, state=stuck)])
    with pytest.raises(
        mod.FailoverError, match=r"waited 60 s .* found writer hawa-east, operation switching-over; .*re-run"
    ):
        run(aws, mode="switchover", target_region="us-west-2")

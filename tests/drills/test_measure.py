"""The drills' figures from recorded outcomes and events (no sandbox needed)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from scripts.drills import measure
from scripts.drills.load import Outcome
from scripts.drills.scenarios import SCENARIOS
from scripts.drills.stack import HealthCheckJudge, Snapshot
from scripts.drills.watch import Event, is_trouble


def _reads(times: list[float], ok: bool = True) -> list[Outcome]:
    return [Outcome("read", t, t + 0.01, 200 if ok else 502, ok) for t in times]


def test_impact_counts_failures_and_the_longest_gap_between_successes():
    outcomes = _reads([0.0, 0.5, 1.0]) + _reads([1.5, 2.0, 2.5], ok=False) + _reads([3.0, 3.5])
    figures = measure.impact(outcomes, 0.0, 4.0)["read"]
    assert (figures["total"], figures["failed"]) == (8, 3)
    assert figures["error_rate"] == 0.375
    assert figures["longest_gap_s"] == 2.0  # last success at 1.01, next at 3.01
    assert figures["errors"] == {"502": 3}


def test_impact_counts_the_time_before_the_first_success_and_after_the_last():
    figures = measure.impact(_reads([2.0]), 0.0, 10.0)["read"]
    assert figures["longest_gap_s"] == 7.99  # 2.01 .. 10.0
    assert measure.impact([], 0.0, 10.0)["write"] == {
        "total": 0, "failed": 0, "error_rate": None, "longest_gap_s": 10.0, "errors": {}
    }  # fmt: skip


def test_recovery_is_the_first_success_after_the_first_failure_and_none_when_uninterrupted():
    outcomes = _reads([10.0, 11.0], ok=False) + _reads([12.0, 13.0])
    outcomes += [Outcome("write", 10.5, 10.6, 201, True, "k", 1)]
    found = measure.recovery(outcomes, fault=9.0)
    assert found["first_read_s"] == 3.01
    assert found["first_write_s"] is None


def test_detection_takes_the_first_trouble_of_each_kind_after_the_fault():
    events = [
        Event(1.0, "target", "us-east-1 10.0.0.1:8000", "initial", "healthy"),  # before the fault, and healthy
        Event(6.0, "ecs", "us-east-1", "3/3", "2/3"),
        Event(8.0, "target", "us-east-1 10.0.0.1:8000", "healthy", "draining"),
        Event(9.0, "ecs", "us-east-1", "2/3", "3/3"),  # recovery, not trouble
        Event(20.0, "alarm", "hawa-sandbox-us-east-1-unhealthy-hosts", "OK", "ALARM"),
        Event(21.0, "sns", "email oncall@example.com", "", "ALARM: ..."),
    ]
    found = measure.detection(events, fault=5.0)
    assert found["first"] == 1.0 and found["ecs"] == 1.0
    assert found["target"] == 3.0 and found["alarm"] == 15.0 and found["notification"] == 16.0
    assert found["health_check"] is None
    assert not is_trouble(events[3]) and is_trouble(events[1])


def test_the_verdict_names_each_budget_line_and_fails_on_a_lost_write():
    scenario = SCENARIOS["single-container"]
    result = {
        "detection": {"first": 2.0},
        "recovery": {"full_capacity_s": 20.0, "first_read_s": None, "first_write_s": None, "recovered_s": 20.0},
        "impact": measure.impact(_reads([6.0, 7.0]), 5.0, 8.0) | {"write": measure.impact([], 5.0, 8.0)["write"]},
        "rpo": {"lost_writes": 1, "rpo_s": 0.4},
        "failovers": 1,
        "as_deployed_after": True,
    }
    verdict = measure.verdict(scenario, result)
    lines = {x["what"]: x for x in verdict["lines"]}
    assert lines["detection (s)"]["met"] and lines["recovery (s)"]["met"]
    assert not lines["lost writes"]["met"] and not verdict["met"]
    assert "failovers (writer moves)" not in lines  # not a budget line of this scenario
    flapping = {x["what"]: x for x in measure.verdict(SCENARIOS["flapping-primary"], result)["lines"]}
    assert not flapping["failovers (writer moves)"]["met"]  # the flapping drill allows none


def test_a_stack_not_as_deployed_names_what_differs():
    from scripts.deployment import Deployment

    deployment = Deployment(
        "hawa", "sandbox", ["us-east-1", "us-west-2"], True, {"us-east-1": "primary", "us-west-2": "secondary"}
    )
    snap = Snapshot()
    for region in deployment.regions:
        snap.facts[("api", region)] = "answers"
        snap.facts[("ecs", region)] = "3/3"
        snap.facts[("aurora", region)] = "available"
        for n in range(3):
            snap.facts[("target", region, f"10.0.0.{n}:8000")] = "healthy"
    snap.facts[("target", "us-east-1", "10.0.0.9:8000")] = "draining"  # a stopped task's target on its way out
    snap.facts[("global-writer",)] = "us-east-1"
    snap.facts[("replication", "us-west-2")] = "within bound"
    assert snap.problems(deployment) == []
    snap.facts[("ecs", "us-east-1")] = "2/3"
    snap.facts[("target", "us-east-1", "10.0.0.1:8000")] = "unhealthy"
    snap.facts[("target", "us-west-2", "10.0.0.1:8000")] = "initial"
    snap.facts[("global-writer",)] = "us-west-2"
    snap.facts[("replication", "us-west-2")] = "over 1000 ms"
    assert any("still resynchronising" in p for p in snap.problems(deployment))
    assert not any("still resynchronising" in p for p in snap.problems(deployment, replication=False))
    snap.facts[("api", "us-west-2")] = "ServiceUnavailable"
    problems = snap.problems(deployment)
    assert "us-east-1: ECS service running/desired 2/3" in problems
    assert "us-east-1: targets not healthy: 10.0.0.1:8000" in problems
    assert "us-east-1: 2 healthy target(s) for 3 desired task(s)" in problems
    assert any("writer is us-west-2" in p for p in problems)
    assert any(p.startswith("us-west-2: its APIs do not answer") for p in problems)


def test_route53s_verdict_waits_for_the_failure_threshold_of_each_checker():
    judge = HealthCheckJudge()

    def observe(status: str, at: int, checkers: int = 8) -> str:
        report = {"Status": f"{status}: HTTP Status Code 200", "CheckedTime": f"2026-01-01T00:00:{at:02d}Z"}
        observations = [{"Region": f"r{n}", "IPAddress": "1.2.3.4", "StatusReport": report} for n in range(checkers)]
        return judge.verdict("check-1", 3, observations)

    assert observe("Success", 0) == "healthy"
    assert observe("Failure", 10) == "healthy"  # one failed check is not a failover
    assert observe("Failure", 10) == "healthy"  # the same observation read again counts once
    assert observe("Failure", 20) == "healthy"
    assert observe("Failure", 30) == "unhealthy"  # the third in a row
    assert observe("Success", 40) == "unhealthy"
    assert observe("Failure", 50) == "unhealthy"  # a success streak broken: still unhealthy
    assert [observe("Success", at) for at in (51, 52, 53)] == ["unhealthy", "unhealthy", "healthy"]
    assert judge.verdict("check-2", 3, []) == "unhealthy"  # no observation yet: not healthy


def test_failovers_count_the_writer_moving_between_regions_after_the_fault():
    def writer(t: float, old: str, new: str) -> Event:
        return Event(t, "global-writer", "", old, new)

    assert measure.failovers([], 5.0) == 0
    flapping = [writer(6, "us-east-1", "unknown (dark)"), writer(9, "unknown (dark)", "us-east-1")]
    assert measure.failovers(flapping, 5.0) == 0  # unknown for a while, then home: no move
    region_lost = [writer(6, "us-east-1", "unknown (dark)"), writer(40, "unknown (dark)", "us-west-2")]
    assert measure.failovers(region_lost, 5.0) == 1
    there_and_back = [writer(10, "us-east-1", "us-west-2"), writer(50, "us-west-2", "us-east-1")]
    assert measure.failovers(there_and_back, 5.0) == 2
    assert measure.failovers(there_and_back, 20.0) == 1  # the first move was before the fault


def _drill(scenario: str, outcomes: list[Outcome], marks: dict[str, float]) -> Any:
    load = SimpleNamespace(outcomes=outcomes, now=lambda: 20.0, acknowledged=list, stalls=[])
    watcher = SimpleNamespace(events=[])
    return SimpleNamespace(
        scenario=SCENARIOS[scenario], marks=marks, load=load, watcher=watcher, operator_steps=[], problems_after=[]
    )


def test_a_crash_loses_the_requests_under_way_shown_apart_and_counts_those_sent_after_it():
    # A write sent as the task was killed (5.201 s; the kill returned at 5.22 s) fails, as on AWS.
    writes = [Outcome("write", t, t + 0.01, 201, True) for t in (5.1, 5.3, 6.0)]
    outcomes = [*_reads([4.0, 5.1, 5.3, 6.0]), *writes, Outcome("write", 5.201, 5.218, 502, False)]
    marks = {"fault": 5.2, "fault_in_force": 5.22, "undo": 12.0}
    result = measure.drill_result(_drill("single-container", outcomes, marks), [])
    assert (result["impact"]["write"]["failed"], result["impact"]["write"]["total"]) == (0, 2)
    assert result["in_flight_at_fault"]["write"] == {
        "total": 1, "failed": 1, "error_rate": 1.0, "longest_gap_s": 0.02, "errors": {"502": 1}
    }  # fmt: skip
    assert {x["what"]: x["met"] for x in result["verdict"]["lines"]}["write error rate"] is True
    # A request sent after the fault took hold still counts: a failure then is the system's.
    late = measure.drill_result(
        _drill("single-container", [*outcomes, Outcome("write", 5.5, 5.6, 502, False)], marks), []
    )
    assert late["impact"]["write"]["failed"] == 1 and not late["verdict"]["met"]
    # Scenarios whose budget does not excuse them count every request from the fault on.
    zone = measure.drill_result(_drill("availability-zone", outcomes, marks), [])
    assert zone["impact"]["write"]["failed"] == 1 and zone["in_flight_at_fault"] is None

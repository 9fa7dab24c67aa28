"""The drills: one per row of the design's failure table, plus the planned switchover.

Each scenario says what the design promises (`design`), what the sandbox must meet (`budget`, from
issue 10's table), how to inject its fault and undo it (`plan`), and when the stack is back to full
capacity (`recovered`). A scenario that needs an operator (the complete region, until the automatic
failover controller acts) says so in `operator`; the report then marks its recovery as not automatic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scripts.drills.faults import Step, subnets
from scripts.drills.stack import Snapshot


@dataclass(frozen=True)
class Design:
    detection: str
    recovery: str
    impact: str


@dataclass(frozen=True)
class Budget:
    detection_s: float | None = None  # first transition seen through the APIs, after the fault
    recovery_s: float | None = None  # the scenario's own recovery (see Scenario.recovery_measure)
    max_error_rate: float | None = None  # failed / total, reads and writes each, during the fault
    max_gap_s: float | None = None  # longest time without a successful request (reads and writes each)
    max_read_gap_s: float | None = None
    max_write_gap_s: float | None = None
    max_failed_reads: int | None = None
    max_lost_writes: int | None = 0
    max_rpo_s: float | None = 0
    max_failovers: int | None = None  # times the global database's writer moved during the drill
    # Requests already sent when the fault took hold (until its injection returned) are shown apart and not
    # counted: a container that crashes loses the requests it is serving, on AWS as here.
    excuse_in_flight_at_fault: bool = False


@dataclass
class Plan:
    inject: list[Step]
    undo: list[Step] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    design: Design | None
    budget: Budget
    plan: Callable[[Any], Plan]
    recovered: Callable[[Any, Snapshot], bool]
    # What "recovery" means in the budget: full capacity, the first write back, ...
    recovery_measure: str = "full_capacity"
    # Operator steps, after the fault (context, drill) -> None; None when the stack recovers by itself.
    operator: Callable[[Any, Any], None] | None = None
    # After the undo, before the final check: e.g. fail back to the primary region.
    restore: Callable[[Any, Any], None] | None = None
    timeout_s: float = 240
    # What operator and restore run, as --check prints it.
    playbooks: tuple[str, ...] = ()


# -- single container ---------------------------------------------------------------------------------


def _single_container(ctx: Any) -> Plan:
    region = ctx.deployment.primary
    tasks = sorted(ctx.snapshot.tasks.get(region, []), key=lambda t: t["availabilityZone"])
    if not tasks:
        raise SystemExit(f"no running task in {region} to stop: run `make deploy`")
    cluster, _service = ctx.snapshot.services[region]
    return Plan([ctx.faults.stop_task(region, cluster, tasks[0])])


def _full_capacity(ctx: Any, snap: Snapshot) -> bool:
    """Every region's service at its desired count with every target healthy, the writer where it was."""
    return not snap.problems(ctx.deployment, replication=False)


# -- availability zone ---------------------------------------------------------------------------------


def _zone(ctx: Any) -> str:
    """The AZ of the primary region's writer instance when tasks run there (the harder case: the database
    fails over too), else the AZ of the first task."""
    region = ctx.deployment.primary
    task_zones = sorted({t["availabilityZone"] for t in ctx.snapshot.tasks.get(region, [])})
    if not task_zones:
        raise SystemExit(f"no running task in {region}: run `make deploy`")
    writer_zone = ctx.snapshot.writer_instances.get(region, {}).get("az", "")
    return writer_zone if writer_zone in task_zones else task_zones[0]


def _availability_zone(ctx: Any) -> Plan:
    region = ctx.deployment.primary
    zone = _zone(ctx)
    cluster, _service = ctx.snapshot.services[region]
    steps = ctx.faults.stop_tasks_in_az(region, cluster, zone, ctx.snapshot.tasks[region])
    undo: list[Step] = []
    if ctx.faults.where == "AWS":  # the AZ's network is cut too, for the drill's length
        cut, restore = ctx.faults.isolate_subnets(
            region, subnets(ctx.session, ctx.deployment, region, zone), f"isolate {zone}", 300
        )
        steps.insert(0, cut)
        undo.append(restore)
    writer = ctx.snapshot.writer_instances.get(region, {})
    note = f"zone {zone}"
    if writer.get("az") == zone:
        steps.append(ctx.faults.crash_writer(region, f"{ctx.deployment.prefix}-{region}-aurora", writer["id"]))
        note += f", with the writer instance {writer['id']}"
    return Plan(steps, undo, note)


# -- regional database ---------------------------------------------------------------------------------


def _regional_database(ctx: Any) -> Plan:
    region = ctx.deployment.primary
    writer = ctx.snapshot.writer_instances.get(region)
    if not writer:
        raise SystemExit(f"the Aurora cluster in {region} has no writer instance: run `make deploy`")
    return Plan([ctx.faults.crash_writer(region, f"{ctx.deployment.prefix}-{region}-aurora", writer["id"])])


def _writes_back(ctx: Any, snap: Snapshot) -> bool:
    region = ctx.deployment.primary
    return snap.get("aurora", region) == "available" and snap.get("aurora-writer", region) not in (None, "none")


# -- complete region -----------------------------------------------------------------------------------


def _complete_region(ctx: Any) -> Plan:
    region = ctx.deployment.primary
    dark, back = ctx.faults.isolate_subnets(
        region, subnets(ctx.session, ctx.deployment, region), f"take {region} dark", 900
    )
    return Plan([dark], [back], f"{region} goes dark")


def _region_operator(ctx: Any, drill: Any) -> None:
    """The automatic failover controller moves the writer when the inventory says `automatic`; otherwise
    (or when it has not acted within its time) the drill does what the on-call operator would: once Route
    53 calls the primary unhealthy, run failover.yml unplanned towards the secondary."""
    secondary = ctx.deployment.secondary
    if ctx.automatic_failover:
        if drill.wait_for(lambda s: s.get("global-writer") == secondary, ctx.automatic_wait_s, "automatic failover"):
            return
        drill.watcher.note("step", f"no automatic failover within {ctx.automatic_wait_s:.0f} s: operator steps in")
    drill.wait_for(
        lambda s: any(k[0] == "health-check" and v == "unhealthy" for k, v in s.facts.items()),
        120,
        "Route 53 calling the primary unhealthy (the operator's page)",
    )
    drill.operator_step(
        f"failover.yml unplanned to {secondary}",
        [
            "-e",
            "failover_mode=unplanned",
            "-e",
            f"failover_target_region={secondary}",
            "-e",
            "failover_confirm_data_loss=true",
        ],
    )


def _failed_over(ctx: Any, snap: Snapshot) -> bool:
    return snap.get("global-writer") == ctx.deployment.secondary


def _fail_back(ctx: Any, drill: Any) -> None:
    """The old primary rejoins as a secondary; then the planned failback puts the writer home (no data loss)."""
    primary = ctx.deployment.primary
    drill.wait_for(lambda s: s.get("api", primary) == "answers", 120, f"{primary}'s APIs answering again")
    drill.operator_step("failover.yml failback", ["-e", "failover_mode=failback"])


# -- flapping primary ----------------------------------------------------------------------------------

FLAP_S = 10  # dark 10 s, back 10 s, dark 10 s (issue 11): shorter than the controller's dwell each time


def _pause(seconds: float) -> Step:
    return Step(f"wait {seconds:.0f} s", f"sleep {seconds:.0f}", lambda: time.sleep(seconds))


def _flapping_primary(ctx: Any) -> Plan:
    region = ctx.deployment.primary
    all_subnets = subnets(ctx.session, ctx.deployment, region)
    first_dark, first_back = ctx.faults.isolate_subnets(region, all_subnets, f"take {region} dark", FLAP_S)
    again_dark, again_back = ctx.faults.isolate_subnets(region, all_subnets, f"take {region} dark again", FLAP_S)
    # After the last flap, longer than the controller's dwell (25 s on the sandbox): a failover it had
    # wrongly armed would happen now, inside the drill.
    settle = _pause(FLAP_SETTLE_S)
    return Plan(
        [first_dark, _pause(FLAP_S), first_back, _pause(FLAP_S), again_dark, _pause(FLAP_S), again_back, settle],
        [again_back],
        f"{region} dark {FLAP_S} s, back {FLAP_S} s, dark {FLAP_S} s: nothing may fail over",
    )


FLAP_SETTLE_S = 35


# -- planned switchover --------------------------------------------------------------------------------


def _planned(ctx: Any) -> Plan:
    return Plan([], note=f"switch the writer to {ctx.deployment.secondary} and back, under load")


def _switch_over(ctx: Any, drill: Any) -> None:
    drill.operator_step(
        f"failover.yml planned to {ctx.deployment.secondary}",
        ["-e", "failover_mode=planned", "-e", f"failover_target_region={ctx.deployment.secondary}"],
    )


def _switched(ctx: Any, snap: Snapshot) -> bool:
    return snap.get("global-writer") == ctx.deployment.secondary


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "single-container",
            "Single container: one task of the primary region is stopped",
            Design("30 s", "< 2 min", "none"),
            Budget(
                detection_s=30, recovery_s=60, max_error_rate=0.0, max_failed_reads=0, excuse_in_flight_at_fault=True
            ),
            _single_container,
            _full_capacity,
        ),
        Scenario(
            "availability-zone",
            "Availability zone: every task in one AZ of the primary region, and the writer instance there",
            Design("30 s", "< 1 min", "minimal"),
            Budget(detection_s=30, recovery_s=60, max_error_rate=0.01, max_gap_s=5),
            _availability_zone,
            _full_capacity,
        ),
        Scenario(
            "regional-database",
            "Regional database: the primary's writer instance crashes; Aurora promotes a reader there",
            Design("30 s", "< 1 min", "brief pause"),
            Budget(detection_s=30, recovery_s=60, max_failed_reads=0),
            _regional_database,
            _writes_back,
            recovery_measure="first_write",
        ),
        Scenario(
            "complete-region",
            "Complete region: the primary region goes dark",
            Design("90 s", "< 5 min", "2-5 min outage"),
            Budget(detection_s=30, recovery_s=60, max_read_gap_s=5, max_lost_writes=None, max_rpo_s=1),
            _complete_region,
            _failed_over,
            recovery_measure="first_write",
            operator=_region_operator,
            restore=_fail_back,
            timeout_s=600,
            playbooks=(
                "wait for the automatic failover controller (failover_automation_mode: automatic), else, once Route 53 "
                "calls the primary unhealthy: ansible-playbook failover.yml -e failover_mode=unplanned "
                "-e failover_target_region=<secondary> -e failover_confirm_data_loss=true",
                "after the undo: ansible-playbook failover.yml -e failover_mode=failback",
            ),
        ),
        Scenario(
            "flapping-primary",
            "Flapping primary: the primary region dark 10 s, back 10 s, dark 10 s; the writer must not move",
            None,
            Budget(max_failovers=0, max_lost_writes=0, max_rpo_s=0),
            _flapping_primary,
            _full_capacity,
            recovery_measure="none",
            timeout_s=300,
        ),
        Scenario(
            "planned-switchover",
            "Planned switchover to the secondary region and failback, under load",
            None,
            Budget(max_write_gap_s=1, max_failed_reads=0),
            _planned,
            _switched,
            recovery_measure="none",
            operator=_switch_over,
            restore=_fail_back,
            playbooks=(
                "ansible-playbook failover.yml -e failover_mode=planned -e failover_target_region=<secondary>",
                "ansible-playbook failover.yml -e failover_mode=failback",
            ),
        ),
    )
}

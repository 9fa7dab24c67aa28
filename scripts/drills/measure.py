"""The figures of a drill, from what the load saw and what the watcher saw, and their verdict against the
budget. Times are seconds after the fault unless a name says otherwise."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from scripts.drills.load import Outcome
from scripts.drills.watch import Event, is_trouble


def _after(t: float | None, fault: float) -> float | None:
    return None if t is None else round(t - fault, 2)


def detection(events: list[Event], fault: float) -> dict[str, float | None]:
    """The first transition of each kind seen through the APIs after the fault, and the first alert out."""

    def first(*sources: str) -> float | None:
        hit = next((e for e in events if e.t >= fault and e.source in sources and is_trouble(e)), None)
        return _after(hit.t if hit else None, fault)

    found = {
        "target": first("target"),
        "ecs": first("ecs"),
        "health_check": first("health-check"),
        "alarm": first("alarm"),
        "database": first("aurora", "aurora-writer", "global-writer"),
        "api": first("api"),
    }
    seen = [v for v in found.values() if v is not None]
    notification = next((e for e in events if e.t >= fault and e.source == "sns"), None)
    return found | {
        "first": min(seen) if seen else None,
        "notification": _after(notification and notification.t, fault),
    }


def impact(outcomes: list[Outcome], start: float, end: float) -> dict[str, Any]:
    """Per kind, in [start, end): requests, failures, the error rate, and the longest gap without a success
    (between successive successful answers, and from `start` to the first one)."""
    figures: dict[str, Any] = {}
    for kind in ("read", "write"):
        chosen = sorted((o for o in outcomes if o.kind == kind and start <= o.start < end), key=lambda o: o.start)
        failed = [o for o in chosen if not o.ok]
        ends = sorted(o.end for o in chosen if o.ok)
        gaps = [b - a for a, b in zip([start, *ends], [*ends, end], strict=True)]
        errors: dict[str, int] = {}
        for o in failed:
            label = str(o.status) if o.status else o.error or "no answer"
            errors[label] = errors.get(label, 0) + 1
        figures[kind] = {
            "total": len(chosen),
            "failed": len(failed),
            "error_rate": round(len(failed) / len(chosen), 4) if chosen else None,
            "longest_gap_s": round(max(gaps), 2) if gaps else None,
            "errors": errors,
        }
    return figures


def recovery(outcomes: list[Outcome], fault: float) -> dict[str, float | None]:
    """Per kind: the first success after the fault's first failure (None when nothing failed: uninterrupted)."""
    found: dict[str, float | None] = {}
    for kind in ("read", "write"):
        after = sorted((o for o in outcomes if o.kind == kind and o.start >= fault), key=lambda o: o.start)
        first_failure = next((o for o in after if not o.ok), None)
        if first_failure is None:
            found[f"first_{kind}_s"] = None
            continue
        back = next((o for o in after if o.ok and o.start >= first_failure.start), None)
        found[f"first_{kind}_s"] = _after(back.end if back else None, fault)
    return found


def drill_result(drill: Any, missing: list[Outcome]) -> dict[str, Any]:
    scenario, marks, load = drill.scenario, drill.marks, drill.load
    fault = marks["fault"]
    counted_from = marks.get("fault_in_force", fault) if scenario.budget.excuse_in_flight_at_fault else fault
    end = marks.get("undo", load.now())
    acknowledged = load.acknowledged()
    lost_before = [o.end for o in missing]
    result = {
        "scenario": scenario.name,
        "title": scenario.title,
        "design": asdict(scenario.design) if scenario.design else None,
        "marks": {k: round(v, 2) for k, v in marks.items()},
        "detection": detection(drill.watcher.events, fault),
        "recovery": recovery(load.outcomes, fault)
        | {
            "recovered_s": _after(marks.get("recovered"), fault),
            "full_capacity_s": _after(marks.get("full_capacity"), fault),
            # Recovery without a person: no operator step before the fault was undone (a failback afterwards
            # is the restore, operator-driven by design); a planned switchover is the operator's own drill.
            "automatic": scenario.name == "planned-switchover"
            or not [s for s in drill.operator_steps if s["phase"] == "recovery"],
            "operator_steps": drill.operator_steps,
        },
        # A crash loses the requests under way when it hits (Budget.excuse_in_flight_at_fault): shown, not counted.
        "impact": impact(load.outcomes, counted_from, end),
        "in_flight_at_fault": impact(load.outcomes, fault, counted_from) if counted_from > fault else None,
        "impact_whole_drill": impact(load.outcomes, 0, load.now()),
        # Times the client itself lagged its schedule by over a second (a starved machine): no requests
        # were sent then, so a gap there is the client's, not the system's.
        "client_stalls": [[round(a, 2), round(b, 2)] for a, b in load.stalls],
        "rpo": {
            "acknowledged_writes": len(acknowledged),
            "lost_writes": len(missing),
            "lost_keys": [o.key for o in missing][:50],
            # How far before the fault the oldest lost write was acknowledged.
            "rpo_s": round(max(0.0, fault - min(lost_before)), 2) if lost_before else 0.0,
        },
        # Times the global database's writer moved from one region to another after the fault.
        "failovers": failovers(drill.watcher.events, fault),
        "as_deployed_after": not drill.problems_after,
        "problems_after": drill.problems_after,
        "events": [asdict(e) for e in drill.watcher.events],
        "outcomes": [[o.kind, round(o.start, 3), round(o.end, 3), o.status, o.ok] for o in load.outcomes],
    }
    result["verdict"] = verdict(scenario, result)
    return result


def _recovery_figure(scenario: Any, result: dict[str, Any]) -> float | None:
    rec = result["recovery"]
    if scenario.recovery_measure == "first_write":
        # The first acknowledged write after the fault's first failed one; writes that never failed: 0.
        return rec["first_write_s"] if rec["first_write_s"] is not None else (0.0 if rec["recovered_s"] else None)
    return rec["full_capacity_s"]


def failovers(events: list[Any], fault: float) -> int:
    """Moves of the global database's writer from one region to another after the fault. A writer that is
    unknown for a while (both regions' APIs silent) or none is no region: the move is counted once the
    writer is known again, and only if it is elsewhere."""

    def known(value: str) -> bool:
        return bool(value) and value != "none" and not value.startswith("unknown")

    moves, where = 0, None
    for event in sorted((e for e in events if e.source == "global-writer"), key=lambda e: e.t):
        if where is None and known(event.old):
            where = event.old
        if not known(event.new):
            continue
        if event.t >= fault and where is not None and event.new != where:
            moves += 1
        where = event.new
    return moves


def verdict(scenario: Any, result: dict[str, Any]) -> dict[str, Any]:
    """Each budget line: the figure, the bound, and whether it was met."""
    b, lines = scenario.budget, []

    def line(name: str, figure: float | None, bound: float | None) -> None:
        if bound is not None:
            lines.append(
                {"what": name, "figure": figure, "bound": bound, "met": figure is not None and figure <= bound}
            )

    line("detection (s)", result["detection"]["first"], b.detection_s)
    line("recovery (s)", _recovery_figure(scenario, result), b.recovery_s)
    for kind in ("read", "write"):
        figures = result["impact"][kind]
        line(f"{kind} error rate", figures["error_rate"], b.max_error_rate)
        line(f"longest {kind} gap (s)", figures["longest_gap_s"], b.max_gap_s)
    line("longest read gap (s)", result["impact"]["read"]["longest_gap_s"], b.max_read_gap_s)
    line("longest write gap (s)", result["impact"]["write"]["longest_gap_s"], b.max_write_gap_s)
    line("failed reads", result["impact"]["read"]["failed"], b.max_failed_reads)
    line("lost writes", result["rpo"]["lost_writes"], b.max_lost_writes)
    line("RPO (s)", result["rpo"]["rpo_s"], b.max_rpo_s)
    line("failovers (writer moves)", result["failovers"], b.max_failovers)
    lines.append({"what": "stack as deployed afterwards", "figure": result["as_deployed_after"], "bound": True,
                  "met": result["as_deployed_after"]})  # fmt: skip
    return {"met": all(x["met"] for x in lines), "lines": lines}


def recap(output: str) -> dict[str, dict[str, int]]:
    """The last PLAY RECAP of an ansible-playbook output: host -> {ok, changed, failed, ...}."""
    hosts: dict[str, dict[str, int]] = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        hosts[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return hosts


def changed_tasks(output: str) -> list[str]:
    """'<task> [<host>]' for every task an ansible-playbook output reports changed."""
    found, task = [], ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK [") : line.rfind("]")]
        elif line.startswith("changed: ["):
            found.append(f"{task} [{line[len('changed: [') : line.index(']')]}]")
    return found

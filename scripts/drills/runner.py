"""One drill from start to end: check the stack, start the load and the watcher, inject, wait for recovery
(stepping in as the operator where the scenario needs one), undo, check the stack is as deployed again,
and measure.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.deployment import REPO_ROOT, Deployment
from scripts.drills import measure
from scripts.drills.load import SteadyLoad
from scripts.drills.scenarios import Scenario
from scripts.drills.stack import Snapshot
from scripts.drills.watch import Watcher, is_trouble

BASELINE_S = 5  # steady load before the fault: the report's reference
SETTLE_S = 5  # steady load after recovery, before the undo


@dataclass
class Context:
    """What every drill of a run shares."""

    deployment: Deployment
    session: Any
    inventory: str
    base_url: str  # the public entry point
    faults: Any  # SandboxFaults | AwsFaults
    read: Callable[[], Snapshot]
    outbox_url: str | None
    automatic_failover: bool
    automatic_wait_s: float
    verify_tls: bool
    run_id: str
    report_dir: Path
    snapshot: Snapshot = field(default_factory=Snapshot)
    log: Callable[[str], None] = print


class Interrupted(Exception):
    """SIGTERM, turned into an exception so that the undo in `finally:` runs as it does for Ctrl-C."""


class Drill:
    def __init__(self, ctx: Context, scenario: Scenario) -> None:
        self.ctx, self.scenario = ctx, scenario
        self.load = SteadyLoad(ctx.base_url, f"{ctx.run_id}-{scenario.name}", verify=ctx.verify_tls)
        self.watcher = Watcher(ctx.read, self.load.now, ctx.outbox_url)
        self.marks: dict[str, float] = {}
        self.operator_steps: list[dict[str, Any]] = []
        self.problems_after: list[str] = []

    # -- what scenarios call ----------------------------------------------------------------------------

    def wait_for(self, condition: Callable[[Snapshot], bool], timeout: float, what: str) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.watcher.latest is not None and condition(self.watcher.latest):
                return True
            time.sleep(0.5)
        self.ctx.log(f"  ... {what}: not within {timeout:.0f} s")
        return False

    def operator_step(self, title: str, extra_args: list[str]) -> None:
        """Run failover.yml as the operator would, with the same inventory; its report stays in reports/."""
        command = [str(REPO_ROOT / ".venv/bin/ansible-playbook"), "-i", self.ctx.inventory, "failover.yml", *extra_args]
        self.ctx.log(f"  operator: {' '.join(command[1:])}")
        start = self.watcher.note("step", f"operator: {title}", "", "started").t
        proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        end = self.watcher.note("step", f"operator: {title}", "started", f"exit {proc.returncode}").t
        # A step after the fault is undone (a failback) restores the stack; it is not part of the recovery.
        phase = "restore" if "undo" in self.marks else "recovery"
        self.operator_steps.append(
            {"title": title, "start_s": start, "end_s": end, "exit": proc.returncode, "phase": phase}
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{title} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")

    # -- the drill ---------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        ctx, scenario = self.ctx, self.scenario
        plan = scenario.plan(ctx)
        ctx.log(f"{scenario.name}: {scenario.title}" + (f" ({plan.note})" if plan.note else ""))
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
        self.watcher.start()
        self.load.start()
        undone = False
        try:
            time.sleep(BASELINE_S)
            self.marks["fault"] = self.load.now()
            for step in plan.inject:
                ctx.log(f"  fault: {step.title}")
                step.run()
                self.watcher.note("step", f"fault: {step.title}")
            self.marks["fault_in_force"] = self.load.now()
            if scenario.operator is not None:
                scenario.operator(ctx, self)
            self._wait_recovered()
            time.sleep(SETTLE_S)
            self.marks["undo"] = self.load.now()
            undone = self._undo(plan)
            if scenario.restore is not None:
                scenario.restore(ctx, self)
            self._wait_as_deployed()
        finally:
            if not undone:
                self._undo(plan)  # Ctrl-C, SIGTERM or an error: never leave the fault in place
            self.load.stop()
            self.watcher.stop()
            signal.signal(signal.SIGTERM, previous)
        missing = self.load.missing_writes()
        return measure.drill_result(self, missing)

    def _undo(self, plan: Any) -> bool:
        for step in plan.undo:
            self.ctx.log(f"  undo: {step.title}")
            step.run()
            self.watcher.note("step", f"undo: {step.title}")
        return True

    def _wait_recovered(self) -> None:
        """Recovered: the fault's first effect seen through the APIs, then a snapshot read after it in which
        the scenario's condition holds. (Until the effect shows, the stack still looks as before the fault.)"""
        scenario, fault = self.scenario, self.marks["fault"]
        deadline = time.monotonic() + scenario.timeout_s
        effect = None
        while effect is None and time.monotonic() < deadline:
            effect = self.watcher.first(is_trouble, after=fault)
            time.sleep(0.2)
        if effect is None:
            self.ctx.log(f"  ... no effect of the fault seen through the APIs within {scenario.timeout_s:.0f} s")
            return
        recovered = self.wait_for(
            lambda s: s.taken_at > effect.t and scenario.recovered(self.ctx, s),
            max(1.0, deadline - time.monotonic()),
            "recovery",
        )
        if recovered:
            self.marks["recovered"] = self.watcher.latest.taken_at
            if scenario.recovery_measure == "full_capacity":
                self.marks["full_capacity"] = self.marks["recovered"]

    def _wait_as_deployed(self) -> None:
        ok = self.wait_for(lambda s: not s.problems(self.ctx.deployment), 300, "the stack as deployed")
        self.marks["as_deployed"] = self.load.now()
        if not ok and self.watcher.latest is not None:
            self.problems_after = self.watcher.latest.problems(self.ctx.deployment)


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(f"signal {signum}")


def site_check(inventory: str) -> dict[str, Any]:
    """`ansible-playbook site.yml --check`: a drill leaves nothing for site.yml to change."""
    command = [str(REPO_ROOT / ".venv/bin/ansible-playbook"), "-i", inventory, "site.yml", "--check"]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    recap = measure.recap(proc.stdout)
    return {
        "command": "ansible-playbook site.yml --check",
        "exit": proc.returncode,
        "changed": {host: counts.get("changed", 0) for host, counts in recap.items()},
        "changed_tasks": measure.changed_tasks(proc.stdout),
        "tail": proc.stdout[-2000:] if proc.returncode else "",
    }

"""`make bench-failover`: time failover.yml's modes on a deployed sandbox and print each run's figures.

Starts a sandbox of its own on a free loopback port (a running `make sandbox-up` is not touched; no
automatic failover controller runs beside it), deploys site.yml, waits until the edge serves, then runs:

1. planned failover to us-west-2 (no data loss), then failback to us-east-1;
2. an outage of us-east-1, the unplanned failover to us-west-2 (data loss confirmed), the region's restore,
   then failback once it has rejoined.

For each run: the wall time of ansible-playbook from start to exit (its report written, the write through the
public endpoint verified), the CPU-seconds of ansible-playbook and its workers (not the sandbox's), the time
until the writer had moved (the switch_writer step's end: the promoted writer takes writes), the time until
the verify step had read its write back through the public endpoint, and each step's seconds from the run's
report. Beside them, issue 15's targets and the figures it measured before.
"""

from __future__ import annotations

import datetime
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import cli
from sandbox.config import SandboxConfig
from tests.support import free_ports, run_playbook

PRIMARY, SECONDARY = "us-east-1", "us-west-2"
# Issue 15: (target seconds or None, what it measured before) per run.
TARGETS = {
    "planned": (20.0, "66 s"),
    "failback": (None, "62-81 s"),
    "unplanned": (15.0, "57 s"),
    "failback after outage": (None, "-"),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _epoch(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()  # the report's UTC times, "...Z"


def _failover(cfg: SandboxConfig, reports: Path, label: str, extra_vars: dict[str, Any]) -> dict[str, Any]:
    started, cpu = time.time(), _children_cpu()
    run = run_playbook(
        "failover.yml", sandbox_port=cfg.port, extra_vars={"failover_report_dir": str(reports), **extra_vars}
    )
    elapsed, cpu = time.time() - started, _children_cpu() - cpu
    if run.returncode != 0:
        raise SystemExit(f"failover.yml ({label}) failed:\n" + "\n".join(run.failure_messages()))
    report = json.loads((reports / "failover-latest.json").read_text())
    steps = {step["name"]: step for step in report["steps"]}
    verify, switch = steps.get("verify"), steps.get("switch_writer")
    return {
        "label": label,
        "seconds": elapsed,
        "cpu": cpu,
        "verified_after": _epoch(verify["ended"]) - started if verify and verify["outcome"] == "ok" else None,
        "writer_after": _epoch(switch["ended"]) - started if switch and switch["outcome"] == "ok" else None,
        "database": report["database"].get("duration_s"),
        "steps": [(step["name"], float(step["seconds"]), step["outcome"]) for step in report["steps"]],
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as state:
        # Both ports checked free (the edge is otherwise the API port + 1, which may be some connection's own port).
        port, edge_port = free_ports(2)
        cfg = SandboxConfig(port=port, state_dir=Path(state) / "sandbox", edge_port=edge_port)
        reports = Path(state) / "reports"
        print(cli.up(cfg), flush=True)
        try:
            deployed = run_playbook("site.yml", sandbox_port=cfg.port, timeout=1800)
            if deployed.returncode != 0:
                print("site.yml failed:\n" + "\n".join(deployed.failure_messages()), file=sys.stderr)
                return 1
            print(cli.serving(cfg, 300), flush=True)
            runs = [
                _failover(cfg, reports, "planned", {"failover_mode": "planned", "failover_target_region": SECONDARY}),
                _failover(cfg, reports, "failback", {"failover_mode": "failback"}),
            ]
            print(cli.outage(cfg, PRIMARY), flush=True)
            unplanned = {"failover_mode": "unplanned", "failover_target_region": SECONDARY}
            runs.append(_failover(cfg, reports, "unplanned", {**unplanned, "failover_confirm_data_loss": True}))
            print(cli.restore(cfg, PRIMARY), flush=True)
            runs.append(_failover(cfg, reports, "failback after outage", {"failover_mode": "failback"}))
        finally:
            cli.down(cfg)
    print(
        f"\n{'run':<22} {'seconds':>8} {'CPU-s':>6} {'writer':>7} {'verified':>9} {'database':>9}   target   issue 15 measured"
    )
    for run in runs:
        target, before = TARGETS[run["label"]]
        writer = f"{run['writer_after']:.1f}" if run["writer_after"] is not None else "-"
        verified = f"{run['verified_after']:.1f}" if run["verified_after"] is not None else "-"
        database = f"{float(run['database']):.1f}" if run["database"] not in (None, "") else "-"
        print(
            f"{run['label']:<22} {run['seconds']:>8.1f} {run['cpu']:>6.1f} {writer:>7} {verified:>9} {database:>9}"
            f"   {f'{target:.0f} s' if target else '-':>6}   {before}"
        )
    print("\nseconds per step (from each run's report):")
    for run in runs:
        print(f"  {run['label']}: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds, _ in run["steps"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench-deploy`: time site.yml on an empty sandbox, a no-op re-run and --check on the deployed stack.

Starts a sandbox of its own on a free loopback port (a running `make sandbox-up` is not touched),
so the first run really starts from nothing. For each run it prints the wall time and the CPU-seconds
of ansible-playbook and the workers it waits for (user + system of the reaped child processes), not
the sandbox's. Beside them, Terraform's figures for the same architecture on the same emulator, as
issue 15 measured them on this machine kind (Terraform 1.11, AWS provider 5.100, 127 resources); beside
--check, its multiple of the no-op run (issue 15's target: at most 1.5).

The runs share an ANSIBLE_HOME of their own: the deploy from empty starts, as on a new machine, without the
compiled templates earlier runs keep there (plugins/plugin_utils/template_cache.py); the re-runs find what it
compiled, as every re-run does.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import cli
from sandbox.config import SandboxConfig
from tests.support import free_ports, run_playbook

# Terraform on the project's sandbox (issue 15): (wall seconds, CPU-seconds) per run.
TERRAFORM = {"from empty": (155.7, 42.4), "no-op re-run": (23.2, 38.8)}
CHECK = "--check"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _task_count(run) -> int:
    return sum(len(task.get("hosts", {})) for play in run.plays for task in play.get("tasks", []))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as state:
        # Both ports checked free (the edge is otherwise the API port + 1, which may be some connection's own port).
        port, edge_port = free_ports(2)
        cfg = SandboxConfig(port=port, state_dir=Path(state), edge_port=edge_port)
        ansible_home = Path(state) / "ansible-home"
        print(cli.up(cfg), flush=True)
        try:
            figures = []
            for label in [*TERRAFORM, CHECK]:
                started, cpu = time.monotonic(), _children_cpu()
                run = run_playbook(
                    "site.yml",
                    sandbox_port=cfg.port,
                    check=label == CHECK,
                    timeout=1800,
                    env={"ANSIBLE_HOME": str(ansible_home)},
                )
                elapsed, cpu = time.monotonic() - started, _children_cpu() - cpu
                if run.returncode != 0:
                    print(f"site.yml {label} failed:\n" + "\n".join(run.failure_messages()), file=sys.stderr)
                    return 1
                figures.append((label, elapsed, cpu, _task_count(run), run.changed))
        finally:
            cli.down(cfg)
    print(
        f"{'run':<14} {'seconds':>8} {'CPU-s':>7} {'task results':>13} {'changed':>8}   Terraform's seconds, CPU-s (ours as a multiple)"
    )
    for label, elapsed, cpu, tasks, changed in figures:
        if label == CHECK:
            noop = figures[1][1]
            print(
                f"{label:<14} {elapsed:>8.1f} {cpu:>7.1f} {tasks:>13} {changed:>8}   {elapsed / noop:.2f} x the no-op run"
            )
            continue
        tf_wall, tf_cpu = TERRAFORM[label]
        print(
            f"{label:<14} {elapsed:>8.1f} {cpu:>7.1f} {tasks:>13} {changed:>8}"
            f"   {tf_wall:>6.1f} ({elapsed / tf_wall:.2f} x), {tf_cpu:>5.1f} ({cpu / tf_cpu:.2f} x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

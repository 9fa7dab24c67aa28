"""`make bench-deploy`: time site.yml on an empty sandbox, then a no-op re-run, and print both.

Starts a sandbox of its own on a free loopback port (a running `make sandbox-up` is not touched),
so the first run really starts from nothing. Reference on this machine kind: Terraform applying the
same architecture to the same emulator takes about 145 s from empty and 11 s for a no-op plan.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import cli
from sandbox.config import SandboxConfig
from tests.support import run_playbook


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _task_count(run) -> int:
    return sum(len(task.get("hosts", {})) for play in run.plays for task in play.get("tasks", []))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as state:
        cfg = SandboxConfig(port=_free_port(), state_dir=Path(state))
        print(cli.up(cfg), flush=True)
        try:
            figures = []
            for label in ("from empty", "no-op re-run"):
                started = time.monotonic()
                run = run_playbook("site.yml", sandbox_port=cfg.port, timeout=1800)
                elapsed = time.monotonic() - started
                if run.returncode != 0:
                    print(f"site.yml {label} failed:\n" + "\n".join(run.failure_messages()), file=sys.stderr)
                    return 1
                figures.append((label, elapsed, _task_count(run), run.changed))
        finally:
            cli.down(cfg)
    print(f"{'run':<14} {'seconds':>8} {'task results':>13} {'changed':>8}")
    for label, elapsed, tasks, changed in figures:
        print(f"{label:<14} {elapsed:>8.1f} {tasks:>13} {changed:>8}")
    print("reference (Terraform, same emulator): 145 s from empty, 11 s no-op plan")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers shared by the test suites: running real playbooks and reading their results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    returncode: int
    stats: dict[str, dict[str, int]]
    plays: list[dict[str, Any]]
    stdout: str
    stderr: str

    @property
    def changed(self) -> int:
        return sum(host.get("changed", 0) for host in self.stats.values())

    @property
    def failed(self) -> int:
        return sum(host.get("failures", 0) + host.get("unreachable", 0) for host in self.stats.values())

    def changed_tasks(self) -> list[str]:
        """'host: task name' for every task that reported changed, to explain a failed idempotence check."""
        found = []
        for play in self.plays:
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    if result.get("changed"):
                        found.append(f"{host}: {task['task']['name']}")
        return found

    def failure_messages(self) -> list[str]:
        found = []
        for play in self.plays:
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    if result.get("failed") or result.get("unreachable"):
                        found.append(f"{host}: {task['task']['name']}: {result.get('msg', result)}")
                        # A loop's own message is only "One or more items failed": add each item's.
                        for item in result.get("results", []):
                            if isinstance(item, dict) and item.get("failed"):
                                found.append(f"{host}: {task['task']['name']}: {item.get('msg', item)}")
        return found


def load_module_file(path: Path) -> Any:
    """Import a plugin file (filter, module) that does not live in an importable package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_under_test_{path.stem}", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ansible_env(
    sandbox_port: int | None, extra: dict[str, str] | None = None, *, root: Path = REPO_ROOT
) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(root / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    # Nothing in the caller's environment may point a test at a real account.
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(key, None)
    if sandbox_port is not None:
        env["SANDBOX_PORT"] = str(sandbox_port)
    env.update(extra or {})
    return env


def run_playbook(
    playbook: str | Path,
    *,
    sandbox_port: int | None,
    inventory: str | Path = "inventories/sandbox/hosts.yml",
    extra_vars: dict[str, Any] | None = None,
    check: bool = False,
    args: list[str] | None = None,
    timeout: int = 900,
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
) -> PlaybookRun:
    """Run ansible-playbook with the JSON callback and return its parsed result (cwd: a copy of the repository
    to run from, with its own ansible.cfg and reports/)."""
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_vars:
        cmd += ["--extra-vars", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    cmd += args or []
    run_env = ansible_env(sandbox_port, {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", **(env or {})}, root=cwd)
    run_env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.json"
    proc = subprocess.run(cmd, cwd=cwd, env=run_env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        doc = json.loads(proc.stdout[proc.stdout.index("{") :])
    except ValueError:
        doc = {"stats": {}, "plays": []}
    return PlaybookRun(proc.returncode, doc.get("stats", {}), doc.get("plays", []), proc.stdout, proc.stderr)


def sandbox_control(sandbox: Any, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the sandbox's control route /_sandbox/<path> (sandbox/control.py)."""
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{sandbox.endpoint}/_sandbox/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return json.load(response)

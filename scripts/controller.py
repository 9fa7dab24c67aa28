"""The automatic failover controller: `python scripts/controller.py {run,start,stop,status}`.

`run` renders the controller's settings from the inventory (rulebooks/playbooks/controller_vars.yml),
then runs ansible-rulebook in this process with rulebooks/regional_failover.yml, the project's event
source and filter (extensions/eda/plugins/) and the inventory; the rulebook runs playbooks through
ansible-runner, as AWX does, and each run's artifacts (ansible-runner's artifacts/<job id>/) are kept in
<state dir>/runs/. `start` does the same as a background process (pidfile and log in the state
folder) unless failover_automation_mode is off; `stop` ends it; `status` shows its state, mode,
current signals and last decisions with their evidence (from <state dir>/status.json, which the
decision filter rewrites every poll).

The state folder is --state-dir, else CONTROLLER_STATE_DIR, else the sandbox's state folder's
controller/ (SANDBOX_STATE_DIR, .sandbox/ by default). On AWS the same `run` is the container's command
(docs/automatic-failover.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox import cli as sandbox_cli  # noqa: E402 - the repository root is on the path only now
from sandbox import config as sandbox_config  # noqa: E402

RULEBOOK = REPO / "rulebooks" / "regional_failover.yml"
# start waits this long for the controller's first status (it fails fast on a bad rulebook or settings).
START_WAIT_S = 10
BIN = Path(sys.executable).parent


class ControllerError(Exception):
    """A failure with a message fit for the person at the terminal."""


def state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir:
        return Path(args.state_dir).resolve()
    if os.environ.get("CONTROLLER_STATE_DIR"):
        return Path(os.environ["CONTROLLER_STATE_DIR"]).resolve()
    return sandbox_config.load().state_dir / "controller"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def render_vars(inventory: Path, state: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """The inventory's settings for the controller, as controller_vars.yml renders them (vars.json); `extra` are
    ansible-playbook -e values that override the inventory (e.g. failover_automation_mode=notify for a drill)."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / "vars.json"
    proc = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            str(REPO / "rulebooks" / "playbooks" / "controller_vars.yml"),
            "-e",
            json.dumps(
                {
                    "controller_vars_path": str(path),
                    "controller_state_dir": str(state),
                    "controller_inventory": str(inventory),
                }
            ),
            *[arg for value in extra or [] for arg in ("-e", value)],
        ],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ControllerError(
            f"could not render the controller's settings from {inventory}:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
        )
    settings = json.loads(path.read_text())
    mode = settings["failover_automation_mode"]
    if mode not in ("off", "notify", "automatic"):
        raise ControllerError(
            f"failover_automation_mode={mode!r} in {inventory}: must be off, notify or automatic "
            "(inventories/<env>/group_vars/all/failover.yml)"
        )
    settings["connect_to"] = _sandbox_names(settings)
    # The sandbox's HTTPS listeners speak plain HTTP on their port (docs/sandbox.md); on AWS https means TLS.
    settings["tls"] = settings.get("scheme") == "https" and not settings.get("aws_endpoint_url")
    settings["record_file"] = str(state / "signals.jsonl")
    path.write_text(json.dumps(settings, indent=1) + "\n")
    return settings


def _sandbox_names(settings: dict[str, Any]) -> dict[str, str]:
    """The sandbox's ALB names, which resolve only inside the sandbox, as connect_to entries (host:port ->
    127.0.0.1:port, curl's --connect-to). Empty on AWS: there the names are in DNS."""
    endpoint = settings.get("aws_endpoint_url") or ""
    if not endpoint:
        return {}
    try:
        with urllib.request.urlopen(f"{endpoint}/_sandbox/", timeout=10) as resp:  # noqa: S310 - loopback sandbox
            names = json.load(resp).get("names", {})
    except OSError as exc:
        raise ControllerError(
            f"the sandbox at {endpoint} does not answer ({exc}): start it with `make sandbox-up`"
        ) from None
    return {name: target for name, target in names.items() if ".elb.amazonaws.com:" in name}


def run(inventory: Path, state: Path, extra: list[str]) -> int:
    settings = render_vars(inventory, state, extra)
    if settings["failover_automation_mode"] == "off":
        print(f"controller: failover_automation_mode is off in {inventory}: not running")
        return 0
    runs = state / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    # ansible-rulebook makes each run_playbook's private data dir with mkdtemp: keep them in the state folder.
    # This process's temporary folder only, not TMPDIR: the playbooks it runs would inherit it, and Mitogen's
    # Unix sockets there outgrow the 108-byte limit of a socket path under a deep state folder.
    tempfile.tempdir = str(runs)
    os.environ.update({key: value for key, value in _env().items() if key in ("ANSIBLE_CONFIG", "PATH")})
    # The source's own AWS calls go where the inventory's plays go (the sandbox's endpoint; nothing on AWS).
    os.environ.update({key: str(value) for key, value in (settings.get("aws_environment") or {}).items()})
    # failover.yml runs from a copy of rulebooks/playbooks/: its reports go to the repository's reports/ still.
    os.environ.setdefault("FAILOVER_REPORT_DIR", str(REPO / "reports"))
    _keep_artifacts(runs)
    from ansible_rulebook import cli

    os.chdir(REPO)
    argv = [
        "--rulebook", str(RULEBOOK), "--inventory", str(inventory), "--vars", str(state / "vars.json"),
        "--source-dir", str(REPO / "extensions/eda/plugins/event_source"),
        "--filter-dir", str(REPO / "extensions/eda/plugins/event_filter"),
        "--execution-strategy", "sequential", "-v",
    ]  # fmt: skip
    print(f"controller: mode {settings['failover_automation_mode']}, watching {settings['primary_region']} from "
          f"{settings['secondary_region']}; state {state}", flush=True)  # fmt: skip
    return int(cli.main(argv) or 0)


def _keep_artifacts(runs: Path) -> None:
    """ansible-rulebook removes a run's private data dir when the run ends; copy its artifacts first so that
    each run leaves what an AWX job leaves (stdout, status, rc, job events) in <state>/runs/<time>-<job id>."""
    from ansible_rulebook.action import run_playbook

    original = run_playbook.RunPlaybook._post_process

    async def post_process(self: Any) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")  # noqa: UP017
        source = Path(self.private_data_dir) / "artifacts"
        if source.is_dir():
            shutil.copytree(source, runs / f"{stamp}-{self.job_id}", dirs_exist_ok=True)
            (runs / f"{stamp}-{self.job_id}" / "playbook").write_text(f"{self.name}\n")
        await original(self)

    run_playbook.RunPlaybook._post_process = post_process


def _pid(state: Path) -> int | None:
    try:
        pid = int((state / "controller.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if sandbox_cli._alive(pid) else None


def start(inventory: Path, state: Path, extra: list[str]) -> str:
    pid = _pid(state)
    running = _read_json(state / "vars.json") if pid is not None else {}
    settings = render_vars(inventory, state, extra)
    restarted = ""
    if pid is not None:
        # A deploy that changed what it watches (HTTPS turned on, a restarted sandbox's ports, another mode) must
        # not leave it probing the old: it reads its settings once, at start.
        if settings == running:
            return f"controller already running (pid {pid}); `python scripts/controller.py status` shows it"
        changed = sorted(key for key in settings.keys() | running.keys() if settings.get(key) != running.get(key))
        stop(state)
        restarted = f" (restarted: its settings changed: {', '.join(changed)})"
    if settings["failover_automation_mode"] == "off":
        return f"controller: failover_automation_mode is off in {inventory}: not started{restarted}"
    (state / "status.json").unlink(missing_ok=True)
    log = state / "controller.log"
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--state-dir", str(state), "run", "-i", str(inventory),
             *[arg for value in extra for arg in ("-e", value)]],
            # Unbuffered: its log is a file, and a decision must be in it when it is made, not a few KB later.
            cwd=REPO, env={**_env(), "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL, stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop ends the playbooks it runs too
        )  # fmt: skip
    (state / "controller.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (state / "controller.pid").unlink(missing_ok=True)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise ControllerError(f"the controller exited with code {proc.returncode} while starting; {log}:\n{tail}")
        if (state / "status.json").exists():
            break
        time.sleep(0.5)
    return (
        f"controller started (pid {proc.pid}), mode {settings['failover_automation_mode']}, watching "
        f"{settings['primary_region']} from {settings['secondary_region']}; log {log}; `make controller-status`"
        f"{restarted}"
    )


def stop(state: Path) -> str:
    pid = _pid(state)
    (state / "controller.pid").unlink(missing_ok=True)
    if pid is None:
        return "controller not running"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sandbox_cli._alive(pid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return f"controller stopped (pid {pid})"


def status(state: Path, as_json: bool) -> tuple[str, int]:
    pid = _pid(state)
    settings = _read_json(state / "vars.json")
    current = _read_json(state / "status.json")
    report = {
        "running": pid is not None,
        "pid": pid,
        "mode": settings.get("failover_automation_mode"),
        "watching": f"{settings.get('primary_region')} from {settings.get('secondary_region')}" if settings else None,
        "state_dir": str(state),
        "phase": current.get("phase"),
        "verdict": current.get("verdict"),
        "updated_at": current.get("updated_at"),
        "writer_region": current.get("writer_region"),
        "signals": current.get("signals"),
        "secondary": current.get("secondary"),
        "decisions": current.get("decisions", []),
        "runs": _runs(state / "runs"),
    }
    if as_json:
        return json.dumps(report, indent=1), 0
    return _format(report), 0


def _format(report: dict[str, Any]) -> str:
    if not report["mode"]:
        return f"controller: never started here (state {report['state_dir']}); `make deploy` starts it"
    running = f"running (pid {report['pid']})" if report["running"] else "stopped"
    lines = [
        f"controller: {running}, mode {report['mode']}, watching {report['watching']}",
        f"phase {report['phase']}, verdict {report['verdict']}, writer {report['writer_region']}, "
        f"updated {_when(report['updated_at'])}",
        "signals (healthy: detail):",
    ]
    for name, signal_ in (report["signals"] or {}).items():
        lines.append(f"  {name}: {signal_.get('healthy')}: {signal_.get('detail')}")
    for name, signal_ in (report["secondary"] or {}).items():
        lines.append(f"  secondary {name}: {signal_.get('healthy')}: {signal_.get('detail')}")
    lines.append(f"last decisions ({len(report['decisions'])}):")
    for decision in report["decisions"][-10:]:
        evidence = decision.get("evidence", {})
        lines.append(
            f"  {_when(decision['at'])} {decision['verdict']}: {'; '.join(decision.get('reasons', []))} "
            f"[unhealthy: {', '.join(evidence.get('unhealthy_signals', [])) or 'none'}; lag before outage "
            f"{evidence.get('lag_before_outage_ms')} ms]"
        )
    lines.append(f"playbook runs ({len(report['runs'])}, artifacts in {report['state_dir']}/runs):")
    lines += [f"  {run['id']}: {run['playbook']} {run['status']} (rc {run['rc']})" for run in report["runs"][-10:]]
    return "\n".join(lines)


def _runs(folder: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted(folder.glob("*Z-*")) if folder.is_dir() else []:
        jobs = [p for p in path.iterdir() if p.is_dir()]
        job = jobs[0] if jobs else path
        runs.append(
            {
                "id": path.name,
                "playbook": _read_text(path / "playbook"),
                "status": _read_text(job / "status"),
                "rc": _read_text(job / "rc"),
            }
        )
    return runs


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "?"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.datetime.fromtimestamp(float(epoch), datetime.timezone.utc).strftime("%H:%M:%SZ")  # noqa: UP017


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/controller.py", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", help="where the pidfile, log, settings, status and run artifacts live")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "run in the foreground"), ("start", "start in the background unless the mode is off")):
        command = sub.add_parser(name, help=text)
        command.add_argument(
            "-i", "--inventory", default=str(REPO / "inventories" / "sandbox"), help="the inventory folder"
        )
        command.add_argument("-e", "--extra-vars", action="append", default=[], help="override inventory settings")
    sub.add_parser("stop", help="stop the background controller")
    sub.add_parser("status", help="state, mode, signals and last decisions").add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    state = state_dir(args)
    try:
        if args.command in ("run", "start"):
            inventory = Path(args.inventory).resolve()
            if inventory.is_file():
                inventory = inventory.parent  # the folder: the rulebook's playbooks need its group_vars too
            if args.command == "run":
                return run(inventory, state, args.extra_vars)
            print(start(inventory, state, args.extra_vars))
            return 0
        if args.command == "stop":
            print(stop(state))
            return 0
        text, code = status(state, args.json)
        print(text)
        return code
    except ControllerError as exc:
        print(f"controller {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""Start, stop, reset and report on the sandbox: `python -m sandbox {up,down,reset,status,env,serve}`."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sandbox import config
from sandbox.config import SandboxConfig

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15
REGIONS = ("us-east-1", "us-west-2")


class SandboxError(Exception):
    """A failure with a message fit for the person at the terminal."""


def _read_pid(cfg: SandboxConfig) -> int | None:
    try:
        return int(cfg.pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state != "Z"


def _responding(cfg: SandboxConfig, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(f"{cfg.endpoint}/moto-api/data.json", timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _log_tail(cfg: SandboxConfig, lines: int = 20) -> str:
    try:
        return "\n".join(cfg.logfile.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def up(cfg: SandboxConfig) -> str:
    pid = _read_pid(cfg)
    if pid is not None and _alive(pid):
        if _responding(cfg):
            return f"sandbox already running (pid {pid}) at {cfg.endpoint}"
        raise SandboxError(
            f"sandbox process {pid} is running but {cfg.endpoint} does not answer; "
            f"see {cfg.logfile}, then run `make sandbox-down` and `make sandbox-up`"
        )
    cfg.pidfile.unlink(missing_ok=True)
    if not _port_free(cfg.port):
        raise SandboxError(
            f"port {cfg.port} on {config.HOST} is already in use by another process; "
            f"stop that process or choose another port with SANDBOX_PORT=<port> (see `ss -ltnp 'sport = :{cfg.port}'`)"
        )
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with cfg.logfile.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "serve", "--port", str(cfg.port)],
            cwd=config.REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group: `down` stops the server and everything it started.
            start_new_session=True,
        )
    cfg.pidfile.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            cfg.pidfile.unlink(missing_ok=True)
            raise SandboxError(
                f"sandbox exited with code {proc.returncode} while starting; last lines of {cfg.logfile}:\n{_log_tail(cfg)}"
            )
        if _responding(cfg, timeout=1.0):
            return f"sandbox up (pid {proc.pid}) at {cfg.endpoint}; log: {cfg.logfile}"
        time.sleep(0.2)
    _terminate(proc.pid)
    cfg.pidfile.unlink(missing_ok=True)
    raise SandboxError(f"sandbox did not answer at {cfg.endpoint} within {START_TIMEOUT_S}s; see {cfg.logfile}")


def _terminate(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # stragglers in the group, or a server that ignored SIGTERM


def down(cfg: SandboxConfig) -> str:
    pid = _read_pid(cfg)
    if pid is None:
        return "sandbox not running"
    if _alive(pid):
        _terminate(pid)
    cfg.pidfile.unlink(missing_ok=True)
    return f"sandbox stopped (pid {pid})"


def _require_running(cfg: SandboxConfig) -> int:
    pid = _read_pid(cfg)
    if pid is None or not _alive(pid):
        raise SandboxError("sandbox is not running: start it with `make sandbox-up`")
    return pid


def reset(cfg: SandboxConfig) -> str:
    _require_running(cfg)
    req = urllib.request.Request(f"{cfg.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our own loopback endpoint
        if resp.status != 200:
            raise SandboxError(f"reset failed: HTTP {resp.status}")
    return "sandbox reset: every resource in every region is gone"


def status(cfg: SandboxConfig) -> tuple[str, bool]:
    pid = _read_pid(cfg)
    if pid is None or not _alive(pid):
        return f"sandbox: stopped (endpoint would be {cfg.endpoint})", False
    if not _responding(cfg):
        return f"sandbox: process {pid} alive but {cfg.endpoint} not answering; see {cfg.logfile}", False
    import boto3

    lines = [f"sandbox: running (pid {pid}) at {cfg.endpoint}", f"log: {cfg.logfile}"]
    env = cfg.client_env()
    for region in REGIONS:
        ec2 = boto3.client(
            "ec2",
            region_name=region,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        vpcs = [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
        names = [next((t["Value"] for t in v.get("Tags", []) if t["Key"] == "Name"), v["VpcId"]) for v in vpcs]
        lines.append(f"{region}: {len(vpcs)} project VPC(s) {json.dumps(names)}")
    return "\n".join(lines), True


def env_lines(cfg: SandboxConfig) -> str:
    return "\n".join(f"export {key}={value}" for key, value in cfg.client_env().items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down", "reset", "status", "env"):
        sub.add_parser(name)
    serve_parser = sub.add_parser("serve", help="run the server in the foreground")
    serve_parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    cfg = config.load()
    try:
        if args.command == "serve":
            from sandbox.server import serve

            serve(args.port or cfg.port)
            return 0
        if args.command == "status":
            text, ok = status(cfg)
            print(text)
            return 0 if ok else 3
        action = {"up": up, "down": down, "reset": reset, "env": env_lines}[args.command]
        print(action(cfg))
        return 0
    except SandboxError as exc:
        print(f"sandbox {args.command}: {exc}", file=sys.stderr)
        return 1

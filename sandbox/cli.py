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
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

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


def _responding(cfg: SandboxConfig, timeout: float = 10.0) -> bool:
    """The server answers its liveness route. Cheap whatever the sandbox holds: moto's own state dump
    (/moto-api/data.json) grows with every resource and cannot serialise some of them."""
    try:
        with urllib.request.urlopen(f"{cfg.endpoint}/_sandbox/health", timeout=timeout) as resp:  # noqa: S310 - loopback
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
            f"sandbox process {pid} is running but {cfg.endpoint} did not answer its liveness check within 10 s; "
            f"it may be busy: try again in a minute and see {cfg.logfile}. If it stays silent, `make sandbox-down` "
            "stops it (the sandbox keeps its resources in memory: a restart forgets the deployment)"
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
            [
                sys.executable,
                "-m",
                "sandbox",
                "serve",
                "--port",
                str(cfg.port),
                "--state-dir",
                str(cfg.state_dir),
                "--edge-port",
                str(cfg.edge.rsplit(":", 1)[1]),
            ],
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
        strays = _stop_stray_postgres(cfg)
        return "sandbox not running" + (f"; stopped {strays} stray PostgreSQL server(s)" if strays else "")
    if _alive(pid):
        _terminate(pid)  # the server stops its databases itself; what is left after that is a stray
    strays = _stop_stray_postgres(cfg)
    cfg.pidfile.unlink(missing_ok=True)
    return f"sandbox stopped (pid {pid})" + (f"; stopped {strays} stray PostgreSQL server(s)" if strays else "")


def _stop_stray_postgres(cfg: SandboxConfig) -> int:
    """Stop PostgreSQL servers still running on data folders under the state folder.

    pg_ctl detaches the postmaster into a session of its own, so killing the sandbox's process group
    does not reach it; a server that died without its shutdown hooks would leave them running.
    """
    stopped = 0
    # followlinks: the Aurora data may sit behind a symlink when the state folder is not searchable by
    # PostgreSQL's unprivileged user (see sandbox/services/rds/engine.py).
    pidfiles = [
        Path(root, "postmaster.pid")
        for root, _dirs, files in os.walk(cfg.state_dir, followlinks=True)
        if "postmaster.pid" in files
    ]
    for pidfile in pidfiles:
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            continue
        if not _alive(pid):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)  # PostgreSQL's "immediate shutdown"
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped += 1
    return stopped


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
    """What runs and what it holds, read through the AWS APIs; (text, running). Stopped is an answer."""
    pid = _read_pid(cfg)
    if pid is None or not _alive(pid):
        return f"sandbox: stopped (endpoint would be {cfg.endpoint}); start it with `make sandbox-up`", False
    if not _responding(cfg):
        raise SandboxError(f"process {pid} is alive but {cfg.endpoint} does not answer; see {cfg.logfile}")
    with urllib.request.urlopen(f"{cfg.endpoint}/_sandbox/", timeout=10) as resp:  # noqa: S310 - loopback
        dark = set(json.load(resp).get("dark_regions", []))
    lines = [
        f"sandbox: running (pid {pid}) at {cfg.endpoint}; edge (SANDBOX_URL) {cfg.edge}",
        f"log: {cfg.logfile}",
    ]
    for region in REGIONS:
        if region in dark:
            lines.append(f"{region}: dark (make sandbox-restore REGION={region} brings it back)")
        else:
            lines.append(f"{region}: " + "; ".join(_region_summary(cfg, region)))
    lines.append(f"global database: {_global_writer(cfg)}")
    lines.append(f"edge: {_edge_summary(cfg)}")
    return "\n".join(lines), True


def _client(cfg: SandboxConfig, service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    env = cfg.client_env()
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}, read_timeout=20),
    )


def _tag(tags: list[dict[str, str]] | None, key: str = "Name") -> str | None:
    return next((t["Value"] for t in tags or [] if t["Key"] == key), None)


def _region_summary(cfg: SandboxConfig, region: str) -> list[str]:
    """The project's VPCs, ECS services (running/desired) and Aurora clusters (role, status) in a region."""
    vpcs = [v for v in _client(cfg, "ec2", region).describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
    parts = [f"{len(vpcs)} project VPC(s) {json.dumps([_tag(v.get('Tags')) or v['VpcId'] for v in vpcs])}"]
    ecs = _client(cfg, "ecs", region)
    services = []
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        if arns:
            services += ecs.describe_services(cluster=cluster, services=arns[:10])["services"]
    parts += [
        f"ECS {s['serviceName']} {s['runningCount']}/{s['desiredCount']} running"
        for s in services
        if s["status"] == "ACTIVE"
    ]
    parts += [
        f"Aurora {c['DBClusterIdentifier']} {c['Status']}"
        for c in _client(cfg, "rds", region).describe_db_clusters()["DBClusters"]
    ]
    return parts


def _global_writer(cfg: SandboxConfig) -> str:
    from botocore.exceptions import ClientError

    for region in REGIONS:
        try:
            clusters = _client(cfg, "rds", region).describe_global_clusters()["GlobalClusters"]
        except ClientError:  # a dark region answers 503: ask the other one
            continue
        if not clusters:
            return "none"
        texts = []
        for cluster in clusters:
            writers = [m["DBClusterArn"].split(":")[3] for m in cluster["GlobalClusterMembers"] if m["IsWriter"]]
            texts.append(f"{cluster['GlobalClusterIdentifier']} writer in {', '.join(writers) or 'no region'}")
        return "; ".join(texts)
    return "unknown (no region answers)"


def _edge_summary(cfg: SandboxConfig) -> str:
    try:
        with urllib.request.urlopen(f"{cfg.edge}/api/status", timeout=5) as resp:  # noqa: S310 - loopback
            body = json.load(resp)
        return f"serving {cfg.edge} from {body.get('region')} (database {body.get('role')})"
    except urllib.error.HTTPError as exc:
        return f"{cfg.edge} answers HTTP {exc.code} (nothing deployed? `make deploy`)"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{cfg.edge} does not answer ({exc})"


def env_lines(cfg: SandboxConfig) -> str:
    lines = [f"export {key}={value}" for key, value in cfg.client_env().items()]
    # The edge: the sandbox's stand-in for the public domain and CloudFront.
    lines.append(f"export SANDBOX_URL={cfg.edge}")
    # Measured with AWS CLI 1.46: v1 replaces AWS_ENDPOINT_URL with a built-in endpoint for a few services
    # (rds, docdb, neptune and sqs in us-east-1, emr), so its commands would go to real AWS.
    lines.append('# AWS CLI v1: add --endpoint-url "$AWS_ENDPOINT_URL" (v1 ignores it for rds in us-east-1)')
    return "\n".join(lines)


def _control(cfg: SandboxConfig, path: str, body: dict[str, object]) -> dict[str, object]:
    _require_running(cfg)
    req = urllib.request.Request(  # noqa: S310 - our own loopback endpoint
        f"{cfg.endpoint}/_sandbox/{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - loopback
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise SandboxError(str(message)) from None


def fault(cfg: SandboxConfig, name: str, pairs: list[str]) -> str:
    """POST /_sandbox/faults/<name> with key=value arguments (e.g. kill-az az=us-east-1a)."""
    body: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SandboxError(f"fault argument {pair!r} is not key=value (e.g. region=us-east-1)")
        body[key] = value
    return json.dumps(_control(cfg, f"faults/{name}", body), indent=1)


def serving(cfg: SandboxConfig, timeout: float) -> str:
    """Wait until the edge serves the app (GET /api/status answers 200) and say who serves."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{cfg.edge}/api/status", timeout=5) as resp:  # noqa: S310 - loopback
                status = json.load(resp)
            return (
                f"serving at {cfg.edge}: region {status.get('region')}, database {status.get('role')}\n"
                f"try: curl {cfg.edge}/health; curl {cfg.edge}/api/status; curl {cfg.edge}/api/data"
            )
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(1)
    raise SandboxError(
        f"the edge {cfg.edge} did not serve /api/status within {timeout:.0f}s (last: {last}); "
        "check `make sandbox-status` and the logs under the sandbox state folder"
    )


def outage(cfg: SandboxConfig, region: str) -> str:
    result = _control(cfg, "outage", {"region": region})
    return f"region {region} is dark" + ("" if result.get("changed") else " (it already was)")


def restore(cfg: SandboxConfig, region: str) -> str:
    result = _control(cfg, "restore", {"region": region})
    return f"region {region} restored" + ("" if result.get("changed") else " (it was not dark)")


def outbox(cfg: SandboxConfig, since: str | None, as_json: bool, confirm: str | None) -> str:
    """The SNS outbox (GET /_sandbox/sns/outbox): every delivery attempt, oldest first; or "click" the
    confirmation link of an address's pending email subscriptions (--confirm)."""
    if confirm:
        result = _control(cfg, "sns/confirm", {"endpoint": confirm})
        return "\n".join(f"confirmed {arn}" for arn in result["confirmed"])  # type: ignore[union-attr]
    _require_running(cfg)
    query = "?" + urllib.parse.urlencode({"since": since}) if since else ""
    try:
        with urllib.request.urlopen(f"{cfg.endpoint}/_sandbox/sns/outbox{query}", timeout=30) as resp:  # noqa: S310 - loopback
            records = json.load(resp)["messages"]
    except urllib.error.HTTPError as exc:
        raise SandboxError(json.load(exc).get("error", exc.reason)) from None
    if as_json:
        return json.dumps({"messages": records}, indent=1)
    lines = []
    for r in records:
        outcome = "delivered" if r["delivered"] else "FAILED"
        status = f" HTTP {r['status']}" if r["status"] is not None else ""
        topic = (r["topic_arn"] or "(direct)").rsplit(":", 3)[-3:]
        lines.append(f"{r['time']}  {r['type']:<24} {r['protocol']:<10} {r['endpoint']}  {outcome}{status}")
        lines.append(f"    topic {':'.join(topic)}  message {r['message_id']}  subject {r['subject'] or '-'}")
        if r.get("error"):
            lines.append(f"    error: {r['error']}")
        first = (r["message"] or "").splitlines()[0] if r["message"] else ""
        lines.append(f"    {first[:160]}")
    return "\n".join(lines) if lines else "the outbox is empty" + (f" since {since}" if since else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down", "reset", "status", "env"):
        sub.add_parser(name)
    for name, text in (("outage", "take a region dark"), ("restore", "bring a dark region back")):
        sub.add_parser(name, help=text).add_argument("region", choices=REGIONS)
    fault_parser = sub.add_parser(
        "fault",
        help="inject a finer fault: kill-task, kill-az, stop-database, start-database,"
        " crash-db-instance region=R [instance=ID] (SIGKILL an Aurora instance's PostgreSQL; default: the writer)",
    )
    fault_parser.add_argument("name")
    fault_parser.add_argument("args", nargs="*", metavar="key=value", default=[])
    serving_parser = sub.add_parser("serving", help="wait until the edge (SANDBOX_URL) serves the app")
    serving_parser.add_argument("--timeout", type=float, default=120)
    outbox_parser = sub.add_parser("outbox", help="SNS deliveries: email, SMS and HTTP attempts, oldest first")
    outbox_parser.add_argument("--since", help="only those at or after this ISO 8601 time (UTC if no zone)")
    outbox_parser.add_argument("--json", action="store_true", help="print the JSON of GET /_sandbox/sns/outbox")
    outbox_parser.add_argument("--confirm", metavar="ADDRESS", help="follow the confirmation link sent to ADDRESS")
    serve_parser = sub.add_parser("serve", help="run the server in the foreground")
    serve_parser.add_argument("--port", type=int)
    serve_parser.add_argument("--state-dir", type=Path)
    serve_parser.add_argument("--edge-port", type=int)
    args = parser.parse_args(argv)
    cfg = config.load()
    try:
        if args.command == "serve":
            from sandbox.server import serve

            serve(
                SandboxConfig(
                    port=args.port or cfg.port,
                    state_dir=args.state_dir or cfg.state_dir,
                    edge_port=args.edge_port or cfg.edge_port,
                )
            )
            return 0
        if args.command == "fault":
            print(fault(cfg, args.name, args.args))
            return 0
        if args.command == "outbox":
            print(outbox(cfg, args.since, args.json, args.confirm))
            return 0
        if args.command == "serving":
            print(serving(cfg, args.timeout))
            return 0
        if args.command in ("outage", "restore"):
            print({"outage": outage, "restore": restore}[args.command](cfg, args.region))
            return 0
        if args.command == "status":
            print(status(cfg)[0])
            return 0
        action = {"up": up, "down": down, "reset": reset, "env": env_lines}[args.command]
        print(action(cfg))
        return 0
    except SandboxError as exc:
        print(f"sandbox {args.command}: {exc}", file=sys.stderr)
        return 1

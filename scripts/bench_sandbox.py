"""`make bench-sandbox`: the live sandbox's budgets, measured and printed.

Starts a sandbox of its own on free loopback ports (a running `make sandbox-up` is not touched), then:

1. deploys site.yml and times it, then times how much longer until the edge serves the app
   (budget: serving within 30 s of the end of the deploy);
2. sums the memory of every process the sandbox runs (the server, the app tasks, the PostgreSQL
   servers) with both regions deployed (budget: 2 GB resident);
3. takes us-east-1 dark and times until Route 53 answers the failover record with us-west-2
   (TestDNSAnswer: the health check has failed FailureThreshold times) and until the edge serves
   from us-west-2 (budget for both: request interval x failure threshold + one interval).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3

from sandbox import cli
from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SandboxConfig
from tests.support import free_ports, run_playbook

MEMORY_BUDGET_MB = 2048
SERVING_BUDGET_S = 30


def _status(edge: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{edge}/api/status", timeout=5) as resp:  # noqa: S310 - loopback
            return json.load(resp)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _proc_field(pid: int, name: str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _pgid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def sandbox_memory(cfg: SandboxConfig) -> tuple[str, float, float]:
    """(processes by name, RSS MB, PSS MB) of the sandbox server's process group and its PostgreSQL servers.

    PostgreSQL's postmaster detaches into a process group of its own, found from postmaster.pid files
    under the state folder; its children are found by their parent. RSS counts shared pages once per process (an overstatement for
    PostgreSQL's shared buffers); PSS shares them out fairly.
    """
    groups = {int(cfg.pidfile.read_text())}
    for root, _dirs, files in os.walk(cfg.state_dir, followlinks=True):
        if "postmaster.pid" not in files:
            continue
        pidfile = Path(root, "postmaster.pid")
        try:
            groups.add(int(pidfile.read_text().splitlines()[0]))
        except (OSError, ValueError, IndexError):
            continue
    # Every PostgreSQL child makes itself a process-group leader: follow parent links instead.
    parents = {pid: _ppid(pid) for pid in (int(p) for p in os.listdir("/proc") if p.isdigit())}
    pids = {pid for pid in parents if _pgid(pid) in groups}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in pids} - pids
        pids |= more
        grew = bool(more)
    rss = sum(_proc_field(pid, "status", "VmRSS") for pid in pids)
    pss = sum(_proc_field(pid, "smaps_rollup", "Pss") for pid in pids)
    kinds: dict[str, int] = {}
    for pid in pids:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        kinds[name] = kinds.get(name, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in sorted(kinds.items())), rss / 1024, pss / 1024


def _health_check(route53, region: str) -> dict:
    for check in route53.list_health_checks()["HealthChecks"]:
        tags = route53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=check["Id"])
        if {"Key": "Region", "Value": region} in tags["ResourceTagSet"]["Tags"]:
            return check
    raise SystemExit(f"no Route 53 health check tagged Region={region}: did site.yml deploy the dns role?")


def _dns_answer(route53) -> str:
    """Where Route 53 sends origin.<zone> now (TestDNSAnswer follows the failover records' health)."""
    (zone,) = route53.list_hosted_zones()["HostedZones"]
    answer = route53.test_dns_answer(HostedZoneId=zone["Id"], RecordName=f"origin.{zone['Name']}", RecordType="A")
    return " ".join(answer["RecordData"])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as state:
        Path(state).chmod(0o755)  # PostgreSQL runs as an unprivileged user when this runs as root
        port, edge_port = free_ports(2)
        cfg = SandboxConfig(port=port, state_dir=Path(state), edge_port=edge_port)
        started = time.monotonic()
        print(cli.up(cfg), flush=True)
        try:
            run = run_playbook("site.yml", sandbox_port=cfg.port, timeout=1800)
            deployed = time.monotonic()
            if run.returncode != 0:
                print("site.yml failed:\n" + "\n".join(run.failure_messages()), file=sys.stderr)
                return 1
            print(cli.serving(cfg, timeout=300), flush=True)
            serving = time.monotonic()
            time.sleep(5)  # let every task and checker settle before measuring memory
            processes, rss_mb, pss_mb = sandbox_memory(cfg)

            route53 = boto3.client(
                "route53", region_name="us-east-1", endpoint_url=cfg.endpoint,
                aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
            )  # fmt: skip
            check = _health_check(route53, "us-east-1")
            config = check["HealthCheckConfig"]
            detect_budget = config["RequestInterval"] * (config["FailureThreshold"] + 1)
            print(cli.outage(cfg, "us-east-1"), flush=True)
            dark = time.monotonic()
            detected = edge_moved = None
            while time.monotonic() - dark < detect_budget * 3 and (detected is None or edge_moved is None):
                now = time.monotonic() - dark
                if detected is None and "us-west-2" in _dns_answer(route53):
                    detected = now
                status = _status(cfg.edge)
                if edge_moved is None and status and status.get("region") == "us-west-2":
                    edge_moved = now
                time.sleep(0.5)
            print(cli.restore(cfg, "us-east-1"), flush=True)
        finally:
            print(cli.down(cfg), flush=True)

    def verdict(ok: bool) -> str:
        return "within budget" if ok else "OVER BUDGET"

    after_deploy = serving - deployed
    print()
    print(f"deploy (site.yml)                     {deployed - started:7.1f} s  ({run.changed} changed)")
    print(
        f"serving after the deploy               {after_deploy:7.1f} s  budget {SERVING_BUDGET_S} s: {verdict(after_deploy <= SERVING_BUDGET_S)}"
    )
    print(
        f"memory (RSS)                          {rss_mb:7.0f} MB  budget {MEMORY_BUDGET_MB} MB: {verdict(rss_mb <= MEMORY_BUDGET_MB)}"
        f" (PSS {pss_mb:.0f} MB; processes: {processes})"
    )
    for label, value in (("Route 53 answers us-west-2", detected), ("edge serving us-west-2", edge_moved)):
        figure = f"{value:7.1f} s" if value is not None else "  never"
        ok = value is not None and value <= detect_budget
        print(f"us-east-1 dark -> {label:<22}{figure}  budget {detect_budget} s: {verdict(ok)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

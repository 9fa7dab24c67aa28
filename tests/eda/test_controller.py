"""The automatic failover controller end to end on the test sandbox (scripts/controller.py, the rulebook, the
event source and filter, failover.yml with its lock), on one deployed stack for the whole file. In order:
inputs it refuses, a controller that cannot see, notify mode, a flapping primary, then the outage: the
controller fails over while an operator's failover.yml started at the same time is refused (or refuses
it), and writes are served from us-west-2 through the edge. Prints the seconds from the outage to the first
acknowledged write from us-west-2.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import cli
from sandbox.config import SandboxConfig
from tests.support import REPO_ROOT, ansible_env, run_job_template, run_playbook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

CONTROLLER = REPO_ROOT / "scripts" / "controller.py"
GLOBAL_ID = "hawa-sandbox-global"


def _env(sandbox: SandboxConfig, reports: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = ansible_env(sandbox.port, {"SANDBOX_STATE_DIR": str(sandbox.state_dir), "FAILOVER_REPORT_DIR": str(reports)})
    env["SANDBOX_URL"] = sandbox.edge
    env.update(extra or {})
    return env


def _controller(env: dict[str, str], state: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CONTROLLER), "--state-dir", str(state), *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _status(env: dict[str, str], state: Path) -> dict[str, Any]:
    proc = _controller(env, state, "status", "--json", timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _writer_region(aws: Callable[..., Any]) -> str:
    cluster = aws("rds", "us-west-2").describe_global_clusters(GlobalClusterIdentifier=GLOBAL_ID)["GlobalClusters"][0]
    return next(m["DBClusterArn"].split(":")[3] for m in cluster["GlobalClusterMembers"] if m["IsWriter"])


def _webhook(sandbox: SandboxConfig) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{sandbox.endpoint}/_sandbox/webhook?name=alarms", timeout=10) as resp:  # noqa: S310
        return json.load(resp)["messages"]


def _primary_serves(env: dict[str, str], state: Path) -> bool:
    signals = _status(env, state)["signals"] or {}
    return all((signals.get(name) or {}).get("healthy") is True for name in ("primary_http", "primary_api"))


def _replication_settled(env: dict[str, str], state: Path) -> bool:
    """The newest minute of replication lag is within the failover bound (after earlier outages' resync)."""
    replication = (_status(env, state)["signals"] or {}).get("replication") or {}
    return replication.get("healthy") is True and replication.get("lag_ms", 1e9) <= 1000


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxConfig]:
    """A sandbox of this file's own: its tests leave the stack failed over, with outages behind it, which the
    files that share a worker's session sandbox after this one must not inherit."""
    from tests.conftest import start_sandbox

    yield from start_sandbox(tmp_path_factory)


@pytest.fixture(scope="module")
def stack(sandbox: SandboxConfig, tmp_path_factory: pytest.TempPathFactory) -> SandboxConfig:
    # Deployed as AWX deploys it: the "hawa site" job template through ansible-runner (the controller then
    # runs failover.yml through ansible-runner too), so the job artifacts are checked on a real deploy.
    runner = run_job_template(
        "hawa site", sandbox_port=sandbox.port, private_data_dir=tmp_path_factory.mktemp("awx-site"), timeout=2400
    )
    stdout = Path(runner.config.artifact_dir, "stdout")
    assert (runner.status, runner.rc) == ("successful", 0), stdout.read_text()[-4000:]
    assert not runner.stats["failures"] and not runner.stats["dark"], runner.stats
    assert set(runner.stats["changed"]) >= {"us-east-1", "us-west-2", "global"}, runner.stats
    print(cli.serving(sandbox, 300))
    return sandbox


@pytest.fixture
def controller(stack: SandboxConfig, tmp_path: Path) -> Iterator[Callable[..., tuple[dict[str, str], Path]]]:
    """start(*extra_vars, env=...) starts a controller of this test's own; it is stopped afterwards."""
    started: list[tuple[dict[str, str], Path]] = []

    def start(*extra_vars: str, env: dict[str, str] | None = None) -> tuple[dict[str, str], Path]:
        full_env = _env(stack, tmp_path / "reports", env)
        state = tmp_path / f"controller{len(started)}"
        args = [arg for value in extra_vars for arg in ("-e", value)]
        proc = _controller(full_env, state, "start", "-i", "inventories/sandbox/hosts.yml", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        started.append((full_env, state))
        _wait("the controller's first signals", lambda: _status(full_env, state)["signals"], 120)
        return full_env, state

    yield start
    for env, state in started:
        print(_controller(env, state, "status", timeout=30).stdout)
        _controller(env, state, "stop", timeout=60)


def test_an_invalid_mode_is_stopped_by_inventory_validation(sandbox: SandboxConfig, tmp_path: Path) -> None:
    run = run_playbook(
        "playbooks/validate.yml", sandbox_port=sandbox.port, extra_vars={"failover_automation_mode": "sometimes"}
    )
    assert run.returncode != 0
    assert any(
        'failover_automation_mode="sometimes" must be one of off, notify, automatic' in message
        for message in run.failure_messages()
    ), run.failure_messages()
    proc = _controller(_env(sandbox, tmp_path), tmp_path / "c", "start", "-e", "failover_automation_mode=sometimes")
    assert proc.returncode == 1 and "failover_automation_mode='sometimes'" in proc.stderr, proc.stderr


def test_mode_off_does_not_start(sandbox: SandboxConfig, tmp_path: Path) -> None:
    env = _env(sandbox, tmp_path)
    proc = _controller(env, tmp_path / "c", "start", "-e", "failover_automation_mode=off")
    assert proc.returncode == 0 and "mode is off" in proc.stdout, proc.stdout + proc.stderr
    assert not _status(env, tmp_path / "c")["running"]


def test_a_controller_that_cannot_reach_the_secondary_says_so_and_does_nothing(
    stack: SandboxConfig, controller: Callable[..., tuple[dict[str, str], Path]], aws: Callable[..., Any]
) -> None:
    # Its RDS calls go to a closed port: the secondary region's database API does not answer it.
    env, state = controller(env={"AWS_ENDPOINT_URL_RDS": "http://127.0.0.1:9"})
    status = _wait("the blind verdict", lambda: (s := _status(env, state))["verdict"] == "blind" and s, 60)
    assert "the secondary region's APIs do not answer" in status["decisions"][-1]["reasons"][0]
    message = _wait(
        "the blind notification",
        lambda: [m for m in _webhook(stack) if "automatic failover: blind" in (m.get("subject") or "")],
        120,
    )[-1]
    assert "cannot reach us-west-2's APIs" in message["message"]
    # The log rule runs beside the notify rule: its line may land a moment after the notification.
    _wait("the blind decision in the log", lambda: "decision blind" in (state / "controller.log").read_text(), 30)
    assert _writer_region(aws) == "us-east-1"
    assert not [run for run in _status(env, state)["runs"] if run["playbook"].endswith("failover.yml")]


def test_notify_mode_tells_the_on_call_and_moves_nothing(
    stack: SandboxConfig, controller: Callable[..., tuple[dict[str, str], Path]], aws: Callable[..., Any]
) -> None:
    env, state = controller("failover_automation_mode=notify")
    cli.outage(stack, "us-east-1")
    try:
        message = _wait(
            "the approval request",
            lambda: [m for m in _webhook(stack) if "automatic failover: failover (notify)" in (m.get("subject") or "")],
            180,
        )[-1]["message"]
        assert (
            "ansible-playbook failover.yml -i inventories/sandbox -e failover_mode=unplanned "
            "-e failover_target_region=us-west-2 -e failover_confirm_data_loss=true" in message
        ), message
        assert 'the AWX job template "hawa failover"' in message
        # The lag the decision saw before the outage (an idle replica's is 0; a deploy's last writes may still
        # show for the newest minute), within the bound, as the on-call must weigh it.
        decision = next(d for d in reversed(_status(env, state)["decisions"]) if d["verdict"] == "failover")
        lag = decision["evidence"]["lag_before_outage_ms"]
        assert lag is not None and lag <= 1000, decision
        assert "primary_http | False" in message and f"replication lag before the outage: {lag} ms" in message
        assert _writer_region(aws) == "us-east-1"
        assert not [run for run in _status(env, state)["runs"] if run["playbook"].endswith("failover.yml")]
    finally:
        cli.restore(stack, "us-east-1")
    _wait("us-east-1 serving again", lambda: _primary_serves(env, state), 240, every=2)


def test_a_flapping_primary_moves_nothing(
    stack: SandboxConfig, controller: Callable[..., tuple[dict[str, str], Path]], aws: Callable[..., Any]
) -> None:
    env, state = controller()
    for _spell in range(2):  # dark 10 s, back, dark 10 s
        cli.outage(stack, "us-east-1")
        time.sleep(10)
        cli.restore(stack, "us-east-1")
        time.sleep(10)
    _wait("us-east-1 serving again", lambda: _primary_serves(env, state), 240, every=2)
    time.sleep(10)
    verdicts = [d["verdict"] for d in _status(env, state)["decisions"]]
    assert "suspect" in verdicts, verdicts  # it saw the flaps...
    assert "failover" not in verdicts and "refuse" not in verdicts, verdicts  # ...and let them pass
    assert _writer_region(aws) == "us-east-1"


class Writer(threading.Thread):
    """Writes through the edge (SANDBOX_URL) every half second; notes when us-west-2 first acknowledged one."""

    def __init__(self, edge: str) -> None:
        super().__init__(daemon=True)
        self.edge, self.stop, self.first_west = edge, threading.Event(), None

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            body = json.dumps({"key": f"eda-{n}", "value": str(n)}).encode()
            req = urllib.request.Request(f"{self.edge}/api/data", data=body, method="POST")  # noqa: S310 - loopback
            req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=3) as resp:  # noqa: S310 - the loopback edge
                    if json.load(resp).get("region") == "us-west-2" and self.first_west is None:
                        self.first_west = time.monotonic()
            except (urllib.error.URLError, OSError, ValueError):
                pass
            self.stop.wait(0.5)


def test_an_outage_fails_over_and_an_operator_run_at_the_same_time_is_refused(
    stack: SandboxConfig,
    controller: Callable[..., tuple[dict[str, str], Path]],
    aws: Callable[..., Any],
    tmp_path: Path,
) -> None:
    env, state = controller()
    # The lag before the outage must be within the bound (a refusal otherwise): let earlier drills' resync age out.
    _wait("the replication lag within the bound", lambda: _replication_settled(env, state), 240, every=3)
    writer = Writer(stack.edge)
    writer.start()
    outage_at = time.monotonic()
    cli.outage(stack, "us-east-1")
    _wait("the failover decision", lambda: "failover" in [d["verdict"] for d in _status(env, state)["decisions"]], 120)
    decided_s = time.monotonic() - outage_at
    # The on-call starts the same failover by hand as the controller's run begins.
    operator = subprocess.Popen(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/sandbox/hosts.yml", "failover.yml",
         "-e", "failover_mode=unplanned", "-e", "failover_target_region=us-west-2", "-e", "failover_confirm_data_loss=true",
         "-e", "failover_lock_holder=operator@test"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    operator_out, _ = operator.communicate(timeout=900)
    runs = _wait(
        "the controller's failover run to end",
        lambda: [
            r for r in _status(env, state)["runs"] if r["playbook"].endswith("failover.yml") and r["status"] != "?"
        ],
        900,
        every=3,
    )
    _wait("a write acknowledged by us-west-2 through the edge", lambda: writer.first_west, 240)
    writer.stop.set()
    first_write_s = writer.first_west - outage_at
    controller_ok = runs[0]["status"] == "successful"
    controller_stdout = next((state / "runs").glob(f"{runs[0]['id']}/*/stdout")).read_text()
    print(
        f"\noutage -> decision {decided_s:.1f} s; outage -> first write acknowledged by us-west-2 through the edge "
        f"{first_write_s:.1f} s; controller's run {runs[0]['status']}, operator's run rc {operator.returncode}"
    )
    # Exactly one of them moved the writer; the other refused before any change, naming the holder.
    assert controller_ok != (operator.returncode == 0), (runs, operator_out[-3000:])
    loser_out = operator_out if controller_ok else controller_stdout
    holder = "automatic failover controller" if controller_ok else "operator@test"
    assert f"is held by {holder}" in loser_out, loser_out[-3000:]
    assert "Nothing was changed" in loser_out
    assert _writer_region(aws) == "us-west-2"
    with urllib.request.urlopen(f"{stack.edge}/api/status", timeout=10) as resp:  # noqa: S310
        assert json.load(resp)["region"] == "us-west-2"
    report = json.loads((tmp_path / "reports" / "failover-latest.json").read_text())
    assert report["moved"] and report["lock"]["without"] == ["us-east-1"]
    if controller_ok:
        assert report["automation"]["verdict"] == "failover"
        assert set(report["automation"]["evidence"]["unhealthy_signals"]) >= {"primary_http", "primary_api"}

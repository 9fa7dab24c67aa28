"""A drill interrupted with Ctrl-C or SIGTERM still undoes the fault it injected (on the test's own sandbox)."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

import pytest

from scripts.deployment import Deployment
from scripts.drills import runner, stack
from scripts.drills.faults import SandboxFaults
from scripts.drills.scenarios import Budget, Plan, Scenario
from scripts.drills.stack import Snapshot

DEPLOYMENT = Deployment(
    "hawa", "drilltest", ["us-east-1", "us-west-2"], True, {"us-east-1": "primary", "us-west-2": "secondary"}
)


def _dark(sandbox) -> list[str]:
    with urllib.request.urlopen(f"{sandbox.endpoint}/_sandbox/", timeout=10) as resp:  # noqa: S310 - loopback
        return json.load(resp)["dark_regions"]


def _context(sandbox, tmp_path: Path) -> runner.Context:
    """A drill context on the test's sandbox (the caller sets AWS_ENDPOINT_URL to it)."""
    import boto3

    from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY

    boto_session = boto3.session.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
    return runner.Context(
        deployment=DEPLOYMENT,
        session=boto_session,
        inventory="inventories/sandbox/hosts.yml",
        base_url=sandbox.edge,
        faults=SandboxFaults(sandbox),
        read=lambda: stack.read(DEPLOYMENT, boto_session),
        outbox_url=None,
        automatic_failover=False,
        automatic_wait_s=0,
        verify_tls=False,
        run_id="interrupt",
        report_dir=tmp_path,
        log=lambda _line: None,
    )


def _region_drill(interrupt) -> Scenario:
    def plan(ctx) -> Plan:
        dark, back = ctx.faults.isolate_subnets("us-east-1", [], "take us-east-1 dark", 60)
        return Plan([dark], [back])

    return Scenario(
        "interrupted", "an outage interrupted", None, Budget(), plan, lambda _ctx, _snap: False,
        operator=lambda _ctx, _drill: interrupt(),
    )  # fmt: skip


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_drill_undoes_its_fault(sandbox, tmp_path, monkeypatch, how):
    monkeypatch.setattr(runner, "BASELINE_S", 0)
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint)
    ctx = _context(sandbox, tmp_path)
    seen: list[list[str]] = []

    def interrupt() -> None:
        seen.append(_dark(sandbox))  # the fault is in place when the interruption comes
        if how == "ctrl-c":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt if how == "ctrl-c" else runner.Interrupted):
        runner.Drill(ctx, _region_drill(interrupt)).run()
    assert seen == [["us-east-1"]]
    assert _dark(sandbox) == []
    assert signal.getsignal(signal.SIGTERM) is not runner._raise_interrupted  # the handler is put back


def test_a_snapshot_of_an_empty_sandbox_has_no_stack(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint)
    snap: Snapshot = _context(sandbox, tmp_path).read()
    assert snap.get("api", "us-east-1") == "answers" and not snap.services
    assert any("no ECS service" in p for p in snap.problems(DEPLOYMENT))

"""plugins/modules/failover_lock.py: its lock protocol against SSM (moto in-process: PutParameter's
conditional create as AWS answers it) and the module on the sandbox (integration)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support import REPO_ROOT, load_module_file, run_playbook

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "failover_lock.py")

NAME = "/hawa/test/failover-lock"
T0 = datetime.datetime(2026, 12, 2, 18, 0, tzinfo=datetime.UTC)


class Retrying:
    """boto3's client with the aws_retry keyword AnsibleAWSModule's retry decorator takes."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        return lambda aws_retry=False, **kwargs: method(**kwargs)


class Clients:
    def __init__(self) -> None:
        self.made: dict[str, Retrying] = {}

    def get(self, service: str, region: str) -> Retrying:
        assert service == "ssm"
        return self.made.setdefault(region, Retrying(boto3.client("ssm", region_name=region)))


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield Clients()


def params(run_id: str, regions: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": NAME,
        "regions": regions,
        "absent_regions": [],
        "holder": f"holder of {run_id}",
        "run_id": run_id,
        "purpose": "test",
        "lease_seconds": 600,
        **extra,
    }


def test_first_run_takes_it_in_sorted_order_and_second_is_refused(clients: Clients) -> None:
    record, done = mod.acquire(clients, params("a", ["us-west-2", "us-east-1"]), T0, False)
    assert done == {"us-east-1": "taken", "us-west-2": "taken"}
    assert record["since"] == "2026-12-02T18:00:00Z" and record["expires"] == "2026-12-02T18:10:00Z"
    with pytest.raises(mod.Held) as held:
        mod.acquire(clients, params("b", ["us-west-2"], absent_regions=["us-east-1"]), T0, False)
    assert held.value.region == "us-west-2"
    message = mod.held_message(params("b", ["us-west-2"]), held.value)
    assert "held by holder of a since 2026-12-02T18:00:00Z (run a: test; lease until 2026-12-02T18:10:00Z)" in message


def test_a_refusal_in_the_second_region_lets_go_of_the_first(clients: Clients) -> None:
    mod.acquire(clients, params("controller", ["us-west-2"], absent_regions=["us-east-1"]), T0, False)
    with pytest.raises(mod.Held):
        mod.acquire(clients, params("operator", ["us-east-1", "us-west-2"]), T0, False)
    record, _version = mod.read(clients.get("ssm", "us-east-1"), NAME)
    assert record is None  # the operator's us-east-1 lock was released again
    record, _version = mod.read(clients.get("ssm", "us-west-2"), NAME)
    assert record["run_id"] == "controller" and record["without"] == ["us-east-1"]


def test_an_expired_lease_is_taken_over_once(clients: Clients) -> None:
    mod.acquire(clients, params("dead", ["us-west-2"]), T0, False)
    later = T0 + datetime.timedelta(seconds=601)
    ssm = clients.get("ssm", "us-west-2")
    _record, seen = mod.read(ssm, NAME)
    # Two runs saw the same expired version; the first takes it over, the second finds it changed.
    assert mod.take_over(
        ssm, NAME, seen, dict(params("one", ["us-west-2"]), since="x", expires="2027-01-01T00:00:00Z"), later
    )
    assert not mod.take_over(ssm, NAME, seen, dict(params("two", ["us-west-2"]), since="x", expires="x"), later)
    record, _version = mod.read(ssm, NAME)
    assert record["run_id"] == "one"
    assert mod.read(ssm, NAME + "-takeover") == (None, None)
    with pytest.raises(mod.Held):
        mod.acquire(clients, params("three", ["us-west-2"]), later, False)


def test_a_running_takeover_blocks_another_and_a_stale_one_does_not(clients: Clients) -> None:
    ssm = clients.get("ssm", "us-west-2")
    mod.acquire(clients, params("dead", ["us-west-2"]), T0, False)
    later = T0 + datetime.timedelta(seconds=700)
    _record, seen = mod.read(ssm, NAME)
    mod.create(ssm, NAME + "-takeover", {"run_id": "other", "at": mod.iso(later), "version": seen})
    assert not mod.take_over(ssm, NAME, seen, dict(params("one", ["us-west-2"]), since="x", expires="x"), later)
    stale = later + datetime.timedelta(seconds=mod.TAKEOVER_STALE_S + 1)
    assert mod.take_over(ssm, NAME, seen, dict(params("one", ["us-west-2"]), since="x", expires="x"), stale)


def test_renew_keeps_since_and_release_only_by_the_holder(clients: Clients) -> None:
    mod.acquire(clients, params("a", ["us-east-1"]), T0, False)
    _record, done = mod.acquire(clients, params("a", ["us-east-1"]), T0 + datetime.timedelta(seconds=30), False)
    assert done == {"us-east-1": "renewed"}
    stored, _version = mod.read(clients.get("ssm", "us-east-1"), NAME)
    assert stored["since"] == "2026-12-02T18:00:00Z" and stored["expires"] == "2026-12-02T18:10:30Z"
    assert mod.release_region(clients.get("ssm", "us-east-1"), NAME, "b")[0] == "held by another run"
    assert mod.release_region(clients.get("ssm", "us-east-1"), NAME, "a")[0] == "released"
    assert mod.release_region(clients.get("ssm", "us-east-1"), NAME, "a") == ("not held", None)


def test_check_mode_reads_only(clients: Clients) -> None:
    _record, done = mod.acquire(clients, params("a", ["us-east-1", "us-west-2"]), T0, True)
    assert done == {"us-east-1": "would take", "us-west-2": "would take"}
    assert mod.read(clients.get("ssm", "us-east-1"), NAME) == (None, None)
    mod.acquire(clients, params("b", ["us-west-2"]), T0, False)
    with pytest.raises(mod.Held):
        mod.acquire(clients, params("a", ["us-east-1", "us-west-2"]), T0, True)


def test_an_unreadable_lease_counts_as_run_out() -> None:
    assert mod.expired({"holder": "x"}, T0)
    assert mod.expired({"expires": "soon"}, T0)
    assert not mod.expired({"expires": "2026-12-02T18:00:01Z"}, T0)


def test_module_on_sandbox(sandbox: Any) -> None:
    run = run_playbook(
        Path("tests/modules/targets/failover_lock.yml"),
        sandbox_port=sandbox.port,
        extra_vars={"target_suffix": uuid.uuid4().hex[:8]},
    )
    assert run.failed == 0, run.failure_messages()

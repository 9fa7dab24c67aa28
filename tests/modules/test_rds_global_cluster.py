"""plugins/modules/rds_global_cluster.py: pure helpers (unit) and the module on the sandbox (integration)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO_ROOT, run_playbook

_spec = importlib.util.spec_from_file_location(
    "rds_global_cluster", REPO_ROOT / "plugins" / "modules" / "rds_global_cluster.py"
)
assert _spec and _spec.loader
mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mod)

TARGET = Path("tests/modules/targets/rds_global_cluster.yml")
PRIMARY = "arn:aws:rds:us-east-1:123456789012:cluster:p"
SECONDARY = "arn:aws:rds:us-west-2:123456789012:cluster:s"
THIRD = "arn:aws:rds:eu-west-1:123456789012:cluster:t"


def _global(*members: tuple[str, bool], **extra: Any) -> dict[str, Any]:
    return {
        "GlobalClusterIdentifier": "g",
        "Engine": "aurora-postgresql",
        "StorageEncrypted": True,
        "GlobalClusterMembers": [{"DBClusterArn": arn, "IsWriter": writer} for arn, writer in members],
        **extra,
    }


# --- unit: member ordering --------------------------------------------------------------------------


def test_secondaries_are_removed_before_the_writer() -> None:
    current = _global((PRIMARY, True), (SECONDARY, False), (THIRD, False))
    assert mod.members_in_removal_order(current) == [SECONDARY, THIRD, PRIMARY]
    assert mod.writer_arn(current) == PRIMARY


def test_no_members_and_no_cluster() -> None:
    assert mod.members_in_removal_order(_global()) == []
    assert mod.members_in_removal_order(None) == []
    assert mod.writer_arn(None) == ""
    assert mod.writer_arn(_global((SECONDARY, False))) == ""


def test_result_lists_writer_first_and_snake_cases() -> None:
    result = mod.result_for(_global((SECONDARY, False), (PRIMARY, True), Endpoint="g.global-x"), False)
    assert result["member_cluster_arns"] == [PRIMARY, SECONDARY]
    assert result["writer_cluster_arn"] == PRIMARY
    assert result["global_cluster"]["endpoint"] == "g.global-x"
    assert result["exists"] is True
    assert mod.result_for(None, True)["global_cluster"] == {}


# --- unit: creation parameters ------------------------------------------------------------------------


def test_creation_from_source_leaves_engine_and_encryption_to_aws() -> None:
    params = mod.creation_params("g", PRIMARY, None, "16.4", True, True)
    assert params == {"GlobalClusterIdentifier": "g", "SourceDBClusterIdentifier": PRIMARY, "DeletionProtection": True}


def test_standalone_creation_passes_engine_settings() -> None:
    params = mod.creation_params("g", None, "aurora-postgresql", "16.4", True, None)
    assert params == {
        "GlobalClusterIdentifier": "g",
        "Engine": "aurora-postgresql",
        "EngineVersion": "16.4",
        "StorageEncrypted": True,
    }


@pytest.mark.parametrize(
    ("source", "engine", "message"),
    [
        (PRIMARY, "aurora-postgresql", "mutually exclusive"),
        (None, None, "set source_db_cluster_identifier"),
        ("my-cluster", None, "must be a DB cluster ARN"),
    ],
)
def test_invalid_creation_names_the_fix(source: str | None, engine: str | None, message: str) -> None:
    with pytest.raises(mod.GlobalClusterError, match=message):
        mod.creation_params("g", source, engine, None, None, None)


def test_conflicts_only_for_settings_that_were_asked() -> None:
    current = _global((PRIMARY, True))
    assert mod.conflicts(current, None, None) == []
    assert mod.conflicts(current, "aurora-postgresql", True) == []
    found = mod.conflicts(current, "aurora-mysql", False)
    assert len(found) == 2
    assert "aurora-mysql" in found[0]
    assert "storage_encrypted" in found[1]


# --- unit: waiting ----------------------------------------------------------------------------------


class _FakeClient:
    """describe_global_clusters answers from a script; the last answer repeats."""

    def __init__(self, answers: list[dict[str, Any] | None]) -> None:
        self.answers = answers
        self.calls = 0

    def describe_global_clusters(self, **_kwargs: Any) -> dict[str, Any]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return {"GlobalClusters": [answer] if answer else []}


def test_wait_polls_until_the_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mod, "POLL_DELAY_S", 0)
    client = _FakeClient([_global(Status="creating"), _global(Status="modifying"), _global(Status="available")])
    current = mod.wait_for(client, "g", "to be available", mod._available, 60)
    assert current["Status"] == "available"
    assert client.calls == 3


def test_wait_times_out_with_the_last_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mod, "POLL_DELAY_S", 0)
    client = _FakeClient([_global(Status="modifying")])
    with pytest.raises(
        mod.GlobalClusterError, match=r"Timeout waiting for 'g' to be available \(last state: modifying\)"
    ):
        mod.wait_for(client, "g", "to be available", mod._available, 0)


def test_describe_ignores_other_clusters_an_api_might_return() -> None:
    assert mod.describe(_FakeClient([_global() | {"GlobalClusterIdentifier": "other"}]), "g") is None
    assert mod.describe(_FakeClient([_global() | {"GlobalClusterIdentifier": "G"}]), "g") is not None


# --- integration: the module on the sandbox -------------------------------------------------------


def test_module_create_modify_delete(sandbox: Any, aws: Callable[..., Any]) -> None:
    prefix = f"rgc-{uuid.uuid4().hex[:10]}"
    run = run_playbook(TARGET, sandbox_port=sandbox.port, extra_vars={"rgc_prefix": prefix})
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    # Exactly these report changed: each real step once, each check-mode step that would act, and the
    # set-up / clean-up of the regional clusters. Nothing on a repeat, nothing when describing.
    changed = sorted(t.split(": ", 1)[1] for t in run.changed_tasks())
    assert changed == sorted(
        [
            "Create the primary regional cluster",
            "Create (check mode)",
            "Create",
            "Join a secondary cluster in us-west-2 (as the database role does)",
            "Modify (check mode)",
            "Modify",
            "Delete (check mode)",
            "Delete",
            "Remove the regional clusters",
        ]
    ), changed
    east, west = aws("rds", "us-east-1"), aws("rds", "us-west-2")
    assert not [
        g for g in east.describe_global_clusters()["GlobalClusters"] if g["GlobalClusterIdentifier"].startswith(prefix)
    ]
    for client in (east, west):
        assert not [
            c for c in client.describe_db_clusters()["DBClusters"] if c["DBClusterIdentifier"].startswith(prefix)
        ]

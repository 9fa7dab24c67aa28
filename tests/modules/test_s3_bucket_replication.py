"""plugins/modules/s3_bucket_replication.py: pure helpers (unit) and the module on the sandbox (integration)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO_ROOT, run_playbook

_spec = importlib.util.spec_from_file_location(
    "s3_bucket_replication", REPO_ROOT / "plugins" / "modules" / "s3_bucket_replication.py"
)
assert _spec and _spec.loader
mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mod)

TARGET = Path("tests/modules/targets/s3_bucket_replication.yml")
ROLE = "arn:aws:iam::123456789012:role/replication"
KEY = "arn:aws:kms:us-west-2:123456789012:key/abc"


def _rule(**overrides: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "r1",
        "priority": 0,
        "status": "enabled",
        "prefix": "",
        "tags": None,
        "destination_bucket": "dest",
        "storage_class": None,
        "delete_marker_replication": True,
        "replicate_kms_encrypted_objects": False,
        "replica_kms_key_id": None,
        "replication_time_control": False,
        "metrics": False,
    }
    rule.update(overrides)
    return rule


# --- unit: building the API configuration ---------------------------------------------------------


def test_build_minimal_rule_uses_v2_schema() -> None:
    config = mod.build_configuration(ROLE, [_rule()])
    assert config == {
        "Role": ROLE,
        "Rules": [
            {
                "ID": "r1",
                "Priority": 0,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "Destination": {"Bucket": "arn:aws:s3:::dest"},
            }
        ],
    }


def test_build_full_rule() -> None:
    rule = mod.build_rule(
        _rule(
            status="disabled",
            replicate_kms_encrypted_objects=True,
            replica_kms_key_id=KEY,
            replication_time_control=True,
            storage_class="STANDARD_IA",
            delete_marker_replication=False,
        )
    )
    assert rule["Status"] == "Disabled"
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    assert rule["Destination"] == {
        "Bucket": "arn:aws:s3:::dest",
        "StorageClass": "STANDARD_IA",
        "EncryptionConfiguration": {"ReplicaKmsKeyID": KEY},
        "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
        "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}},
    }


def test_metrics_alone_without_rtc() -> None:
    destination = mod.build_rule(_rule(metrics=True))["Destination"]
    assert "ReplicationTime" not in destination
    assert destination["Metrics"]["Status"] == "Enabled"


@pytest.mark.parametrize(
    ("prefix", "tags", "expected"),
    [
        ("", {"a": "1"}, {"Tag": {"Key": "a", "Value": "1"}}),
        ("p/", {"a": "1"}, {"And": {"Prefix": "p/", "Tags": [{"Key": "a", "Value": "1"}]}}),
        (
            "",
            {"b": "2", "a": 1},
            {"And": {"Prefix": "", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}},
        ),
        ("logs/", None, {"Prefix": "logs/"}),
    ],
)
def test_filter_shapes(prefix: str, tags: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    assert mod.build_rule(_rule(prefix=prefix, tags=tags))["Filter"] == expected


def test_destination_arn_kept_and_partition_from_role() -> None:
    assert mod.build_rule(_rule(destination_bucket="arn:aws:s3:::x"))["Destination"]["Bucket"] == "arn:aws:s3:::x"
    config = mod.build_configuration("arn:aws-cn:iam::1:role/r", [_rule()])
    assert config["Rules"][0]["Destination"]["Bucket"] == "arn:aws-cn:s3:::dest"


@pytest.mark.parametrize(
    ("role", "rules", "message"),
    [
        (None, [_rule()], "role is required"),
        (ROLE, [], "rules is required"),
        (ROLE, [_rule(), _rule()], "repeated: r1"),
        (ROLE, [_rule(replicate_kms_encrypted_objects=True)], "needs replica_kms_key_id"),
    ],
)
def test_invalid_input_names_the_fix(role: str | None, rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(mod.ReplicationError, match=message):
        mod.build_configuration(role, rules)


# --- unit: normalised comparison ------------------------------------------------------------------


def test_what_aws_returns_equals_what_was_put() -> None:
    desired = mod.build_configuration(ROLE, [_rule(id="b"), _rule(id="a", tags={"x": "1", "y": "2"})])
    returned = {
        "Role": ROLE,
        "Rules": [
            {
                "ID": "a",
                "Priority": 0,
                "Status": "Enabled",
                "Filter": {"And": {"Tags": [{"Key": "y", "Value": "2"}, {"Key": "x", "Value": "1"}]}},
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "Destination": {"Bucket": "arn:aws:s3:::dest", "Metrics": {"Status": "Disabled"}},
                "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Disabled"}},
            },
            {
                "ID": "b",
                "Priority": 0,
                "Status": "Enabled",
                "Filter": {},
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "Destination": {"Bucket": "arn:aws:s3:::dest"},
            },
        ],
    }
    assert not mod.configuration_differs(returned, desired)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.update(Status="Disabled"),
        lambda r: r.update(Priority=3),
        lambda r: r.update(DeleteMarkerReplication={"Status": "Disabled"}),
        lambda r: r.update(Filter={"Prefix": "other/"}),
        lambda r: r["Destination"].update(Bucket="arn:aws:s3:::elsewhere"),
        lambda r: r["Destination"].update(StorageClass="GLACIER"),
        lambda r: r.update(SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}}),
        lambda r: r["Destination"].update(ReplicationTime={"Status": "Enabled", "Time": {"Minutes": 15}}),
    ],
)
def test_every_setting_is_compared(change: Callable[[dict[str, Any]], None]) -> None:
    desired = mod.build_configuration(ROLE, [_rule()])
    live = mod.build_configuration(ROLE, [_rule()])
    change(live["Rules"][0])
    assert mod.configuration_differs(live, desired)


def test_role_and_presence_are_compared() -> None:
    desired = mod.build_configuration(ROLE, [_rule()])
    assert mod.configuration_differs(None, desired)
    assert mod.configuration_differs(dict(desired, Role="arn:aws:iam::1:role/other"), desired)
    assert not mod.configuration_differs(None, None)


def test_legacy_prefix_rule_differs_from_v2_rule() -> None:
    desired = mod.build_configuration(ROLE, [_rule(delete_marker_replication=False)])
    legacy = {
        "Role": ROLE,
        "Rules": [{"ID": "r1", "Prefix": "", "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::dest"}}],
    }
    assert mod.configuration_differs(legacy, desired)


# --- integration: the module on the sandbox -------------------------------------------------------


def test_module_create_modify_delete(sandbox: Any, aws: Callable[..., Any]) -> None:
    prefix = f"s3r-{uuid.uuid4().hex[:10]}"
    run = run_playbook(TARGET, sandbox_port=sandbox.port, extra_vars={"s3r_prefix": prefix}, args=["--diff"])
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    # create (1 real), modify (1 real), delete (1 real), plus 2 bucket creations and the
    # clean-up of 2 buckets: exactly these, nothing in check mode or on a repeat.
    changed = run.changed_tasks()
    assert sorted(t.split(": ", 1)[1] for t in changed) == sorted(
        [
            "Create the versioned source and destination buckets",
            "Create",
            "Modify",
            "Delete",
            "Check mode on a source bucket that does not exist yet plans the configuration",
            "Create (check mode)",
            "Create in check mode again still sees no configuration",
            "Modify (check mode)",
            "Modify again in check mode sees the unmodified rule still live",
            "Delete (check mode)",
            "Remove the buckets",
        ]
    ), changed
    names = {b["Name"] for b in aws("s3").list_buckets()["Buckets"]}
    assert not {n for n in names if n.startswith(prefix)}, "the target left buckets behind"

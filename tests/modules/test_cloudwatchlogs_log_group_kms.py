"""plugins/modules/cloudwatchlogs_log_group_kms.py: its helpers against a fake CloudWatch Logs (unit) and the
module on the sandbox (integration), whose CloudWatch Logs checks the key policy as AWS does."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO_ROOT, load_module_file, run_playbook

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "cloudwatchlogs_log_group_kms.py")

KEY = "arn:aws:kms:us-east-1:123456789012:key/"


class _Paginator:
    def __init__(self, groups: list[dict[str, Any]]) -> None:
        self.groups = groups

    def paginate(self, logGroupNamePrefix: str) -> list[dict[str, Any]]:
        found = [g for g in self.groups if g["logGroupName"].startswith(logGroupNamePrefix)]
        return [{"logGroups": found[:1]}, {"logGroups": found[1:]}]  # two pages


class FakeLogs:
    """Log groups by name with their key, recording every write."""

    def __init__(self, **keys: str | None) -> None:
        self.keys = dict(keys)
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "describe_log_groups"
        groups = [{"logGroupName": n} | ({"kmsKeyId": k} if k else {}) for n, k in sorted(self.keys.items())]
        return _Paginator(groups)

    def associate_kms_key(self, aws_retry: bool, **kwargs: Any) -> None:
        self.writes.append(("associate", kwargs))
        self.keys[kwargs["logGroupName"]] = kwargs["kmsKeyId"]

    def disassociate_kms_key(self, aws_retry: bool, **kwargs: Any) -> None:
        self.writes.append(("disassociate", kwargs))
        self.keys[kwargs["logGroupName"]] = None


def test_associates_once_and_only_on_the_exact_name() -> None:
    # "/web" is a prefix of "/web-old", which already has the key: it must not count for "/web".
    logs = FakeLogs(**{"/web": None, "/web-old": KEY + "1"})
    first = mod.ensure_key(logs, "/web", "present", KEY + "1", check_mode=False)
    again = mod.ensure_key(logs, "/web", "present", KEY + "1", check_mode=False)
    assert (first["changed"], again["changed"]) == (True, False)
    assert first["previous_kms_key_arn"] == "" and first["kms_key_arn"] == KEY + "1"
    assert logs.writes == [("associate", {"logGroupName": "/web", "kmsKeyId": KEY + "1"})]


def test_another_key_replaces_and_absent_disassociates() -> None:
    logs = FakeLogs(**{"/web": KEY + "1"})
    assert mod.ensure_key(logs, "/web", "present", KEY + "2", check_mode=False)["previous_kms_key_arn"] == KEY + "1"
    off = mod.ensure_key(logs, "/web", "absent", None, check_mode=False)
    assert off["changed"] and off["previous_kms_key_arn"] == KEY + "2" and off["kms_key_arn"] == ""
    assert mod.ensure_key(logs, "/web", "absent", None, check_mode=False)["changed"] is False
    assert [w[0] for w in logs.writes] == ["associate", "disassociate"]


def test_check_mode_reports_without_writing_even_before_the_log_group_exists() -> None:
    logs = FakeLogs(**{"/web": KEY + "1"})
    assert mod.ensure_key(logs, "/web", "present", KEY + "2", check_mode=True)["changed"] is True
    assert mod.ensure_key(logs, "/web", "absent", None, check_mode=True)["changed"] is True
    planned = mod.ensure_key(logs, "/new", "present", KEY + "2", check_mode=True)
    assert planned["changed"] is True and planned["kms_key_arn"] == KEY + "2"
    assert logs.writes == []


def test_a_missing_log_group_is_refused_for_present_and_fine_for_absent() -> None:
    with pytest.raises(mod.LogGroupNotFound):
        mod.ensure_key(FakeLogs(), "/gone", "present", KEY + "1", check_mode=False)
    assert mod.ensure_key(FakeLogs(), "/gone", "absent", None, check_mode=False)["changed"] is False


def test_module_on_sandbox(sandbox: Any) -> None:
    run = run_playbook(
        Path("tests/modules/targets/cloudwatchlogs_log_group_kms.yml"),
        sandbox_port=sandbox.port,
        extra_vars={"target_suffix": uuid.uuid4().hex[:8]},
    )
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    changed = sorted(t.split(": ", 1)[1] for t in run.changed_tasks())
    assert changed == sorted(
        [
            "Create the key, its policy letting CloudWatch Logs use it for this log group",
            "Create the log group without a key",
            "Associate the key (check mode)",
            "Associate the key",
            "Disassociate the key (check mode)",
            "Disassociate the key",
            "Remove the log group",
            "Schedule the key's deletion",
            "Remove the key's alias",
        ]
    )

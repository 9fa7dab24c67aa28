"""plugins/modules/kms_alias.py: its helpers against a fake KMS (unit) and the module on the sandbox (integration)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.support import REPO_ROOT, load_module_file, run_playbook

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "kms_alias.py")

ARN = "arn:aws:kms:us-east-1:123456789012:"


class _Paginator:
    def __init__(self, aliases: list[dict[str, Any]]) -> None:
        self.aliases = aliases

    def paginate(self) -> list[dict[str, Any]]:
        # Two pages, so that an alias on the second one is found too.
        return [{"Aliases": self.aliases[:1]}, {"Aliases": self.aliases[1:]}]


class FakeKms:
    """Just enough of KMS: aliases by name, keys by id or ARN, recording every write."""

    def __init__(self, aliases: dict[str, str] | None = None) -> None:
        self.aliases = dict(aliases or {})
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "list_aliases"
        entries = [{"AliasName": "alias/aws/s3", "AliasArn": ARN + "alias/aws/s3"}]  # AWS's own, no target
        entries += [
            {"AliasName": n, "AliasArn": ARN + n, "TargetKeyId": key} for n, key in sorted(self.aliases.items())
        ]
        return _Paginator(entries)

    def describe_key(self, aws_retry: bool, KeyId: str) -> dict[str, Any]:
        return {"KeyMetadata": {"KeyId": self.aliases.get(KeyId, KeyId.split("/")[-1])}}

    def create_alias(self, aws_retry: bool, **kwargs: Any) -> None:
        self.writes.append(("create", kwargs))
        self.aliases[kwargs["AliasName"]] = kwargs["TargetKeyId"]

    def update_alias(self, aws_retry: bool, **kwargs: Any) -> None:
        self.writes.append(("update", kwargs))
        self.aliases[kwargs["AliasName"]] = kwargs["TargetKeyId"]

    def delete_alias(self, aws_retry: bool, **kwargs: Any) -> None:
        self.writes.append(("delete", kwargs))
        del self.aliases[kwargs["AliasName"]]


# --- unit ----------------------------------------------------------------------------------------


def test_canonical_name_adds_the_prefix_once() -> None:
    assert mod.canonical_name("hawa-static") == "alias/hawa-static"
    assert mod.canonical_name("alias/hawa-static") == "alias/hawa-static"


def test_create_by_key_arn_stores_the_key_id() -> None:
    kms = FakeKms()
    result = mod.ensure_alias(kms, "alias/a", "present", ARN + "key/k1", check_mode=False)
    assert result["changed"] is True
    assert kms.writes == [("create", {"AliasName": "alias/a", "TargetKeyId": "k1"})]
    assert result["alias"] == {"name": "alias/a", "arn": ARN + "alias/a", "target_key_id": "k1"}
    assert result["previous_target_key_id"] == ""


def test_same_key_is_no_change_whatever_the_key_is_called() -> None:
    kms = FakeKms({"alias/a": "k1", "alias/other": "k1"})
    for name_of_key in ("k1", ARN + "key/k1", "alias/other"):
        assert mod.ensure_alias(kms, "alias/a", "present", name_of_key, check_mode=False)["changed"] is False
    assert kms.writes == []


def test_repoint_updates_and_reports_the_previous_key() -> None:
    kms = FakeKms({"alias/a": "k1"})
    result = mod.ensure_alias(kms, "alias/a", "present", "k2", check_mode=False)
    assert result["changed"] is True and result["previous_target_key_id"] == "k1"
    assert kms.writes == [("update", {"AliasName": "alias/a", "TargetKeyId": "k2"})]


def test_check_mode_reports_without_writing() -> None:
    kms = FakeKms({"alias/a": "k1"})
    assert mod.ensure_alias(kms, "alias/a", "present", "k2", check_mode=True)["changed"] is True
    assert mod.ensure_alias(kms, "alias/b", "present", "k2", check_mode=True)["changed"] is True
    assert mod.ensure_alias(kms, "alias/a", "absent", None, check_mode=True)["changed"] is True
    assert kms.writes == []


def test_absent_deletes_once() -> None:
    kms = FakeKms({"alias/a": "k1"})
    first = mod.ensure_alias(kms, "alias/a", "absent", None, check_mode=False)
    again = mod.ensure_alias(kms, "alias/a", "absent", None, check_mode=False)
    assert (first["changed"], again["changed"]) == (True, False)
    assert first["previous_target_key_id"] == "k1" and first["alias"] == {}
    assert kms.writes == [("delete", {"AliasName": "alias/a"})]


# --- integration ---------------------------------------------------------------------------------


def test_module_on_sandbox(sandbox: Any) -> None:
    run = run_playbook(
        Path("tests/modules/targets/kms_alias.yml"),
        sandbox_port=sandbox.port,
        extra_vars={"target_suffix": uuid.uuid4().hex[:8]},
    )
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    changed = sorted(t.split(": ", 1)[1] for t in run.changed_tasks())
    assert changed == sorted(
        [
            "Two keys, each with an alias of its own (amazon.aws.kms_key wants one for a new key)",
            "Point the alias at the first key (check mode)",
            "Point the alias at the first key",
            "Repoint the alias at the second key (check mode)",
            "Repoint the alias at the second key",
            "Delete the alias (check mode)",
            "Delete the alias",
            "Schedule the keys' deletion",
            "Remove the keys' own aliases",
        ]
    )

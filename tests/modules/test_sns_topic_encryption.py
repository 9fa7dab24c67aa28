"""plugins/modules/sns_topic_encryption.py: its helpers against a fake SNS (unit) and the module on the sandbox
(integration)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import REPO_ROOT, load_module_file, run_playbook

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "sns_topic_encryption.py")

TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms"


class FakeSns:
    """One topic's attributes, recording every write; any other ARN is NotFound, as SNS answers."""

    def __init__(self, key: str | None = None) -> None:
        self.attributes: dict[str, str] = {"TopicArn": TOPIC}
        if key is not None:
            self.attributes["KmsMasterKeyId"] = key
        self.writes: list[dict[str, Any]] = []

    def get_topic_attributes(self, aws_retry: bool, TopicArn: str) -> dict[str, Any]:
        if TopicArn != TOPIC:
            raise ClientError({"Error": {"Code": "NotFound", "Message": "Topic does not exist"}}, "GetTopicAttributes")
        return {"Attributes": dict(self.attributes)}

    def set_topic_attributes(self, aws_retry: bool, **kwargs: Any) -> None:
        self.writes.append(kwargs)
        if kwargs["AttributeValue"]:
            self.attributes[kwargs["AttributeName"]] = kwargs["AttributeValue"]
        else:  # SNS drops an attribute set to ""
            self.attributes.pop(kwargs["AttributeName"], None)


def test_encrypting_sets_the_key_once() -> None:
    sns = FakeSns()
    first = mod.ensure_key(sns, TOPIC, "arn:key/1", check_mode=False)
    again = mod.ensure_key(sns, TOPIC, "arn:key/1", check_mode=False)
    assert (first["changed"], again["changed"]) == (True, False)
    assert first["previous_kms_master_key_id"] == "" and first["kms_master_key_id"] == "arn:key/1"
    assert sns.writes == [{"TopicArn": TOPIC, "AttributeName": "KmsMasterKeyId", "AttributeValue": "arn:key/1"}]


def test_another_key_or_none_is_a_change_and_reports_the_previous_key() -> None:
    sns = FakeSns("arn:key/1")
    assert mod.ensure_key(sns, TOPIC, "arn:key/2", check_mode=False)["previous_kms_master_key_id"] == "arn:key/1"
    off = mod.ensure_key(sns, TOPIC, "", check_mode=False)
    assert off["changed"] and off["previous_kms_master_key_id"] == "arn:key/2"
    assert mod.ensure_key(sns, TOPIC, "", check_mode=False)["changed"] is False


def test_check_mode_reports_without_writing() -> None:
    sns = FakeSns("arn:key/1")
    assert mod.ensure_key(sns, TOPIC, "arn:key/2", check_mode=True)["changed"] is True
    assert mod.ensure_key(sns, TOPIC, "", check_mode=True)["changed"] is True
    assert sns.writes == []


def test_a_missing_topic_is_named() -> None:
    with pytest.raises(mod.TopicNotFound):
        mod.ensure_key(FakeSns(), TOPIC + "-gone", "arn:key/1", check_mode=True)


def test_module_on_sandbox(sandbox: Any) -> None:
    run = run_playbook(
        Path("tests/modules/targets/sns_topic_encryption.yml"),
        sandbox_port=sandbox.port,
        extra_vars={"target_suffix": uuid.uuid4().hex[:8]},
    )
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    changed = sorted(t.split(": ", 1)[1] for t in run.changed_tasks())
    assert changed == sorted(
        [
            "Create the topic",
            "Create the key",
            "Encrypt the topic (check mode)",
            "Encrypt the topic",
            "Turn encryption off (check mode)",
            "Turn encryption off",
            "Remove the topic",
            "Schedule the key's deletion",
            "Remove the key's alias",
        ]
    )

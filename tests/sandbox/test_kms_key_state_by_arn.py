"""EnableKey / DisableKey / ScheduleKeyDeletion / CancelKeyDeletion take a key ARN as well as a key id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.parametrize("identifier", ["KeyId", "Arn"])
def test_key_state_changes_by_id_or_arn(aws: Callable[..., Any], identifier: str) -> None:
    kms = aws("kms", "us-west-2")
    key = kms.create_key(Description="state changes by ARN")["KeyMetadata"]

    def state() -> str:
        return kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"]

    kms.disable_key(KeyId=key[identifier])
    assert state() == "Disabled"
    kms.enable_key(KeyId=key[identifier])
    assert state() == "Enabled"
    kms.schedule_key_deletion(KeyId=key[identifier], PendingWindowInDays=7)
    assert state() == "PendingDeletion"
    kms.cancel_key_deletion(KeyId=key[identifier])
    assert state() == "Disabled"
    assert "DeletionDate" not in kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    kms.enable_key(KeyId=key[identifier])
    assert state() == "Enabled"

"""ScheduleKeyDeletion / CancelKeyDeletion take a key ARN as well as a key id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.parametrize("identifier", ["KeyId", "Arn"])
def test_schedule_and_cancel_by_id_or_arn(aws: Callable[..., Any], identifier: str) -> None:
    kms = aws("kms", "us-west-2")
    key = kms.create_key(Description="deletion by ARN")["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=key[identifier], PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    kms.cancel_key_deletion(KeyId=key[identifier])
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "Disabled"
    assert "DeletionDate" not in meta

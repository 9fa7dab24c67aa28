"""A log group's KMS key is checked as CloudWatch Logs checks it (sandbox/services/logs/patches.py): the key
must exist in the log group's region, be enabled and let logs.<region>.amazonaws.com use it for that log
group; AssociateKmsKey and DisassociateKmsKey change the key of an existing log group."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

REGION = "us-west-2"


def _policy(account: str, *statements: dict[str, Any]) -> str:
    root = {
        "Sid": "Account",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [root, *statements]})


def _logs_may_use(account: str, group_arn_pattern: str) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        "Resource": "*",
        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": group_arn_pattern}},
    }


@pytest.fixture
def account(aws: Callable[..., Any]) -> str:
    return aws("sts", REGION).get_caller_identity()["Account"]


def _denied(call: Callable[[], Any], group_arn: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"The specified KMS key does not exist or is not allowed to be used with Arn '{group_arn}'"
    )


def test_create_and_associate_need_a_key_the_logs_service_may_use(aws: Callable[..., Any], account: str) -> None:
    logs, kms = aws("logs", REGION), aws("kms", REGION)
    name = f"/test/kms-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:logs:{REGION}:{account}:log-group:{name}"
    plain = kms.create_key(Description="no statement for logs")["KeyMetadata"]["Arn"]
    other_group = kms.create_key(
        Policy=_policy(account, _logs_may_use(account, f"arn:aws:logs:{REGION}:{account}:log-group:/other"))
    )["KeyMetadata"]["Arn"]
    good = kms.create_key(Policy=_policy(account, _logs_may_use(account, arn)))["KeyMetadata"]["Arn"]
    elsewhere = aws("kms", "us-east-1").create_key(Policy=_policy(account, _logs_may_use(account, arn)))
    missing = f"arn:aws:kms:{REGION}:{account}:key/{uuid.uuid4()}"

    for key in (plain, other_group, elsewhere["KeyMetadata"]["Arn"], missing):
        _denied(lambda key=key: logs.create_log_group(logGroupName=name, kmsKeyId=key), arn)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []

    logs.create_log_group(logGroupName=name)
    try:
        _denied(lambda: logs.associate_kms_key(logGroupName=name, kmsKeyId=plain), arn)
        logs.associate_kms_key(logGroupName=name, kmsKeyId=good)
        (group,) = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        assert group["kmsKeyId"] == good
        logs.disassociate_kms_key(logGroupName=name)
        (group,) = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        assert "kmsKeyId" not in group
        kms.disable_key(KeyId=good)
        _denied(lambda: logs.associate_kms_key(logGroupName=name, kmsKeyId=good), arn)
    finally:
        logs.delete_log_group(logGroupName=name)

    kms.enable_key(KeyId=good)
    logs.create_log_group(logGroupName=name, kmsKeyId=good)
    (group,) = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert group["kmsKeyId"] == good
    logs.delete_log_group(logGroupName=name)


def test_associate_on_a_missing_log_group_is_not_found(aws: Callable[..., Any]) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        aws("logs", REGION).associate_kms_key(logGroupName="/test/none", kmsKeyId="alias/none")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"

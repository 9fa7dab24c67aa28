"""S3 server access logging is accepted when the target bucket's policy grants logging.s3.amazonaws.com, as on AWS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.services.s3.patches import logging_allowed_by_policy

ARN = "arn:aws:s3:::logs"
TLS_ONLY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [ARN, f"{ARN}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
GRANT = {
    "Effect": "Allow",
    "Principal": {"Service": "logging.s3.amazonaws.com"},
    "Action": "s3:PutObject",
    "Resource": f"{ARN}/s3/*",
}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_a_grant_beside_a_principal_star_statement_counts() -> None:
    assert logging_allowed_by_policy(_policy(TLS_ONLY, GRANT), ARN, "s3/")


def test_lists_and_wildcards_are_read_as_iam_reads_them() -> None:
    listed = dict(GRANT, Principal={"Service": ["logging.s3.amazonaws.com"]}, Action=["s3:Put*"], Resource=[f"{ARN}/*"])
    assert logging_allowed_by_policy(_policy(listed), ARN, "s3/")


def test_no_grant_under_the_prefix_or_a_deny_does_not_count() -> None:
    assert not logging_allowed_by_policy(_policy(TLS_ONLY, GRANT), ARN, "alb/")
    assert not logging_allowed_by_policy(_policy(TLS_ONLY, dict(GRANT, Effect="Deny")), ARN, "s3/")
    assert not logging_allowed_by_policy(None, ARN, "s3/")


@pytest.fixture
def s3(aws: Callable[..., Any]) -> Any:
    return aws("s3", "us-east-1")


def test_put_bucket_logging_with_a_tls_only_log_bucket(s3: Any) -> None:
    source, target = f"src-{uuid.uuid4().hex[:12]}", f"logs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=source)
    s3.create_bucket(Bucket=target)
    arn = f"arn:aws:s3:::{target}"
    deny = dict(TLS_ONLY, Resource=[arn, f"{arn}/*"])
    status = {"LoggingEnabled": {"TargetBucket": target, "TargetPrefix": "s3/"}}
    s3.put_bucket_policy(Bucket=target, Policy=_policy(deny))
    with pytest.raises(ClientError, match="InvalidTargetBucketForLogging"):
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=status)
    s3.put_bucket_policy(Bucket=target, Policy=_policy(deny, dict(GRANT, Resource=f"{arn}/s3/*")))
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=status)
    assert s3.get_bucket_logging(Bucket=source)["LoggingEnabled"] == status["LoggingEnabled"]


def test_a_tls_only_bucket_can_be_emptied(s3: Any) -> None:
    name = f"tls-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    arn = f"arn:aws:s3:::{name}"
    s3.put_bucket_policy(Bucket=name, Policy=_policy(dict(TLS_ONLY, Resource=[arn, f"{arn}/*"])))
    s3.put_object(Bucket=name, Key="s3/log", Body=b"x")
    assert s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "s3/log"}]}).get("Errors", []) == []
    s3.delete_bucket(Bucket=name)

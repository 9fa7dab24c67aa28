"""The sandbox returns a bucket's replication configuration as it was put, and refuses what AWS refuses."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE_ARN = "arn:aws:iam::123456789012:role/replication"


def _bucket(s3: Any, region: str, *, versioned: bool = True) -> str:
    name = f"repl-{uuid.uuid4().hex[:12]}"
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def buckets(aws: Callable[..., Any]) -> tuple[Any, str, str]:
    source_client = aws("s3", "us-east-1")
    source = _bucket(source_client, "us-east-1")
    destination = _bucket(aws("s3", "us-west-2"), "us-west-2")
    return source_client, source, destination


def test_v2_rule_round_trips_unchanged(buckets: tuple[Any, str, str]) -> None:
    s3, source, destination = buckets
    config = {
        "Role": ROLE_ARN,
        "Rules": [
            {
                "ID": "static-assets",
                "Priority": 7,
                "Status": "Enabled",
                "Filter": {
                    "And": {"Prefix": "static/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}
                },
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                "Destination": {
                    "Bucket": f"arn:aws:s3:::{destination}",
                    "StorageClass": "STANDARD",
                    "EncryptionConfiguration": {"ReplicaKmsKeyID": "arn:aws:kms:us-west-2:123456789012:key/abc"},
                    "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
                    "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}},
                },
            }
        ],
    }
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=config)
    assert s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"] == config


def test_several_rules_and_v1_prefix_kept(buckets: tuple[Any, str, str]) -> None:
    s3, source, destination = buckets
    config = {
        "Role": ROLE_ARN,
        "Rules": [
            {
                "ID": "v1",
                "Prefix": "logs/",
                "Status": "Disabled",
                "Destination": {"Bucket": f"arn:aws:s3:::{destination}"},
            },
            {"ID": "v1b", "Prefix": "", "Status": "Enabled", "Destination": {"Bucket": f"arn:aws:s3:::{destination}"}},
        ],
    }
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=config)
    assert s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"] == config


def test_missing_rule_id_is_assigned(buckets: tuple[Any, str, str]) -> None:
    s3, source, destination = buckets
    rule = {
        "Priority": 0,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {"Bucket": f"arn:aws:s3:::{destination}"},
    }
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration={"Role": ROLE_ARN, "Rules": [rule]})
    got = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Rules"][0]
    assert got.pop("ID")
    assert got == rule


def test_delete_then_get_is_not_found(buckets: tuple[Any, str, str]) -> None:
    s3, source, destination = buckets
    rule = {"ID": "r", "Prefix": "", "Status": "Enabled", "Destination": {"Bucket": f"arn:aws:s3:::{destination}"}}
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration={"Role": ROLE_ARN, "Rules": [rule]})
    s3.delete_bucket_replication(Bucket=source)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_replication(Bucket=source)
    assert err.value.response["Error"]["Code"] == "ReplicationConfigurationNotFoundError"


def _rule(destination: str, **overrides: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "ID": "r",
        "Priority": 1,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": {"Bucket": f"arn:aws:s3:::{destination}"},
    }
    rule.update(overrides)
    return rule


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rule, dest: rule.pop("DeleteMarkerReplication"), "DeleteMarkerReplication must be specified"),
        (
            lambda rule, dest: rule.update(SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}}),
            "ReplicaKmsKeyID must be specified",
        ),
        (
            lambda rule, dest: rule["Destination"].update(Bucket="arn:aws:s3:::no-such-bucket-anywhere"),
            "Destination bucket must exist",
        ),
    ],
    ids=["filter-without-delete-marker", "kms-without-replica-key", "missing-destination"],
)
def test_invalid_configurations_refused(buckets: tuple[Any, str, str], mutate: Any, message: str) -> None:
    s3, source, destination = buckets
    rule = _rule(destination)
    mutate(rule, destination)
    with pytest.raises(ClientError) as err:
        s3.put_bucket_replication(Bucket=source, ReplicationConfiguration={"Role": ROLE_ARN, "Rules": [rule]})
    assert err.value.response["Error"]["Code"] == "InvalidRequest"
    assert message in err.value.response["Error"]["Message"]


def test_unversioned_destination_refused(aws: Callable[..., Any]) -> None:
    s3 = aws("s3", "us-east-1")
    source = _bucket(s3, "us-east-1")
    destination = _bucket(aws("s3", "us-west-2"), "us-west-2", versioned=False)
    with pytest.raises(ClientError) as err:
        s3.put_bucket_replication(
            Bucket=source, ReplicationConfiguration={"Role": ROLE_ARN, "Rules": [_rule(destination)]}
        )
    assert "Destination bucket must have versioning enabled" in err.value.response["Error"]["Message"]


def test_duplicate_rule_ids_refused(buckets: tuple[Any, str, str]) -> None:
    s3, source, destination = buckets
    rules = [_rule(destination, Priority=1), _rule(destination, Priority=2)]
    with pytest.raises(ClientError) as err:
        s3.put_bucket_replication(Bucket=source, ReplicationConfiguration={"Role": ROLE_ARN, "Rules": rules})
    assert "Rule Id must be unique" in err.value.response["Error"]["Message"]

"""S3 replication really copies objects to the other region's bucket (sandbox/services/s3/replication.py)."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SandboxConfig

EAST, WEST = "us-east-1", "us-west-2"
ROLE_ARN = "arn:aws:iam::123456789012:role/s3-replication"
WAIT_S = 10.0


@pytest.fixture(scope="module")
def client(sandbox: SandboxConfig) -> Callable[..., Any]:
    """client("s3", "us-west-2") -> a boto3 client bound to the test sandbox (module-scoped fixtures need it)."""
    cache: dict[tuple[str, str], Any] = {}

    def make(service: str, region: str = EAST) -> Any:
        if (service, region) not in cache:
            cache[(service, region)] = boto3.client(
                service,
                region_name=region,
                endpoint_url=sandbox.endpoint,
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY,
            )
        return cache[(service, region)]

    return make


@pytest.fixture(scope="module")
def keys(client: Callable[..., Any]) -> Iterator[dict[str, str]]:
    """A KMS key per region, as the storage role makes (the source's default key, the replicas' key)."""
    made = {
        region: client("kms", region).create_key(Description="s3 replication test")["KeyMetadata"]["Arn"]
        for region in (EAST, WEST)
    }
    yield made
    for region, arn in made.items():
        client("kms", region).schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)


@pytest.fixture
def make_bucket(client: Callable[..., Any]) -> Iterator[Callable[..., str]]:
    """make_bucket(region, kms_key_arn=None) -> a new versioned bucket; every one is emptied and deleted after the test."""
    made: list[tuple[str, str]] = []

    def make(region: str, kms_key_arn: str | None = None) -> str:
        s3 = client("s3", region)
        name = f"repl-{region[3:7]}-{uuid.uuid4().hex[:10]}"
        kwargs: dict[str, Any] = {"Bucket": name}
        if region != EAST:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
        made.append((region, name))
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if kms_key_arn:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": kms_key_arn,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
        return name

    yield make
    for region, name in made:
        s3 = client("s3", region)
        with contextlib.suppress(ClientError):
            s3.delete_bucket_replication(Bucket=name)
        try:
            listing = s3.list_object_versions(Bucket=name)
        except ClientError:
            continue  # the test deleted it
        for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=entry["Key"], VersionId=entry["VersionId"])
        s3.delete_bucket(Bucket=name)


def _rule(rule_id: str, destination: str, *, prefix: str = "", priority: int = 0, **extra: Any) -> dict[str, Any]:
    """A V2 rule as plugins/modules/s3_bucket_replication.py builds it."""
    rule: dict[str, Any] = {
        "ID": rule_id,
        "Priority": priority,
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {"Bucket": f"arn:aws:s3:::{destination}"},
    }
    rule.update(extra)
    return rule


def _replicate(s3: Any, bucket: str, *rules: dict[str, Any]) -> None:
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={"Role": ROLE_ARN, "Rules": list(rules)})


def _status(s3: Any, bucket: str, key: str, version_id: str) -> str | None:
    return s3.head_object(Bucket=bucket, Key=key, VersionId=version_id).get("ReplicationStatus")


def _wait_status(s3: Any, bucket: str, key: str, version_id: str, wanted: str) -> float:
    """Seconds until the source version's ReplicationStatus is `wanted` (fails after WAIT_S)."""
    started = time.monotonic()
    status = None
    while time.monotonic() - started < WAIT_S:
        status = _status(s3, bucket, key, version_id)
        if status == wanted:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"s3://{bucket}/{key} ({version_id}) is {status}, not {wanted}, after {WAIT_S}s")


def _control(sandbox: SandboxConfig, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{sandbox.endpoint}/_sandbox/{path}", data=data, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.load(response)


def _versions(s3: Any, bucket: str, key: str) -> tuple[list[str], list[str]]:
    """(object version IDs, delete-marker version IDs) of one key."""
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return (
        [v["VersionId"] for v in listing.get("Versions", []) if v["Key"] == key],
        [m["VersionId"] for m in listing.get("DeleteMarkers", []) if m["Key"] == key],
    )


def test_put_replicates_bytes_version_metadata_tags_and_kms_key(
    client: Callable[..., Any], make_bucket: Callable[..., str], keys: dict[str, str]
) -> None:
    east, west = client("s3", EAST), client("s3", WEST)
    destination = make_bucket(WEST, keys[WEST])
    source = make_bucket(EAST, keys[EAST])
    # The rule the storage role puts: everything, delete markers, KMS objects re-encrypted, metrics.
    _replicate(
        east,
        source,
        _rule(
            "static-assets",
            destination,
            DeleteMarkerReplication={"Status": "Enabled"},
            SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}},
            Destination={
                "Bucket": f"arn:aws:s3:::{destination}",
                "EncryptionConfiguration": {"ReplicaKmsKeyID": keys[WEST]},
                "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}},
            },
        ),
    )
    body = b"<h1>hello from the primary</h1>"
    put = east.put_object(
        Bucket=source,
        Key="index.html",
        Body=body,
        ContentType="text/html",
        CacheControl="max-age=60",
        Metadata={"build": "42"},
        Tagging="team=web&tier=static",
    )
    version = put["VersionId"]
    # PENDING the moment the PUT returns (COMPLETED only if a pass ran in between).
    assert _status(east, source, "index.html", version) in ("PENDING", "COMPLETED")
    took = _wait_status(east, source, "index.html", version, "COMPLETED")
    print(f"put -> COMPLETED in {took:.2f}s")
    assert took < 3

    original = east.head_object(Bucket=source, Key="index.html", VersionId=version)
    replica = west.get_object(Bucket=destination, Key="index.html")
    assert replica["Body"].read() == body
    assert replica["VersionId"] == version
    assert replica["ReplicationStatus"] == "REPLICA"
    assert replica["ETag"] == original["ETag"]
    assert replica["LastModified"] == original["LastModified"]
    assert replica["ContentType"] == "text/html"
    assert replica["CacheControl"] == "max-age=60"
    assert replica["Metadata"] == {"build": "42"}
    assert replica["ServerSideEncryption"] == "aws:kms"
    assert replica["SSEKMSKeyId"] == keys[WEST]
    assert original["SSEKMSKeyId"] == keys[EAST]
    tags = west.get_object_tagging(Bucket=destination, Key="index.html", VersionId=version)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("team", "web"), ("tier", "static")]

    # Metrics on: the latency of this operation is in CloudWatch of the source's region.
    metrics = client("cloudwatch", EAST).list_metrics(
        Namespace="AWS/S3", MetricName="ReplicationLatency", Dimensions=[{"Name": "SourceBucket", "Value": source}]
    )["Metrics"]
    assert {d["Name"]: d["Value"] for d in metrics[0]["Dimensions"]} == {
        "SourceBucket": source,
        "DestinationBucket": destination,
        "RuleId": "static-assets",
    }


def test_copy_and_multipart_upload_replicate(client: Callable[..., Any], make_bucket: Callable[..., str]) -> None:
    east, west = client("s3", EAST), client("s3", WEST)
    destination = make_bucket(WEST)
    source = make_bucket(EAST)
    _replicate(east, source, _rule("all", destination))
    first = east.put_object(Bucket=source, Key="a.txt", Body=b"a", ContentType="text/plain")["VersionId"]
    copied = east.copy_object(Bucket=source, Key="b.txt", CopySource={"Bucket": source, "Key": "a.txt"})["VersionId"]
    upload = east.create_multipart_upload(Bucket=source, Key="big.bin", ContentType="application/x-test")
    part = east.upload_part(Bucket=source, Key="big.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)
    completed = east.complete_multipart_upload(
        Bucket=source,
        Key="big.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    for key, version in (("a.txt", first), ("b.txt", copied), ("big.bin", completed["VersionId"])):
        _wait_status(east, source, key, version, "COMPLETED")
        replica = west.head_object(Bucket=destination, Key=key)
        assert replica["VersionId"] == version
        assert replica["ReplicationStatus"] == "REPLICA"
    big = west.head_object(Bucket=destination, Key="big.bin")
    assert big["ETag"] == completed["ETag"]
    assert big["ContentType"] == "application/x-test"
    assert west.head_object(Bucket=destination, Key="b.txt")["ContentType"] == "text/plain"


def test_filter_prefix_tags_and_kms_opt_in_are_honoured(
    client: Callable[..., Any], make_bucket: Callable[..., str], keys: dict[str, str]
) -> None:
    east, west = client("s3", EAST), client("s3", WEST)
    destination = make_bucket(WEST)
    source = make_bucket(EAST)
    rule = _rule("tagged-assets", destination)
    rule["Filter"] = {"And": {"Prefix": "assets/", "Tags": [{"Key": "env", "Value": "prod"}]}}
    _replicate(east, source, rule)
    skipped = {
        "other/x": east.put_object(Bucket=source, Key="other/x", Body=b"1", Tagging="env=prod")["VersionId"],
        "assets/untagged": east.put_object(Bucket=source, Key="assets/untagged", Body=b"2")["VersionId"],
        # SSE-KMS objects need SseKmsEncryptedObjects in the rule, which this one lacks.
        "assets/kms": east.put_object(
            Bucket=source,
            Key="assets/kms",
            Body=b"3",
            Tagging="env=prod",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=keys[EAST],
        )["VersionId"],
    }
    tagged = east.put_object(Bucket=source, Key="assets/tagged", Body=b"4", Tagging="env=prod")["VersionId"]
    _wait_status(east, source, "assets/tagged", tagged, "COMPLETED")
    # Queued in order: had the others been eligible they would have been copied by now.
    for key, version in skipped.items():
        assert _status(east, source, key, version) is None, key
        with pytest.raises(ClientError) as excinfo:
            west.head_object(Bucket=destination, Key=key)
        assert excinfo.value.response["Error"]["Code"] == "404"
    assert west.head_object(Bucket=destination, Key="assets/tagged")["VersionId"] == tagged


def test_priority_decides_between_overlapping_rules(
    client: Callable[..., Any], make_bucket: Callable[..., str]
) -> None:
    east, west = client("s3", EAST), client("s3", WEST)
    destination = make_bucket(WEST)
    source = make_bucket(EAST)
    catch_all = _rule("all", destination, priority=1)
    catch_all["Destination"]["StorageClass"] = "STANDARD_IA"
    hot = _rule("hot", destination, prefix="hot/", priority=2)
    hot["Destination"]["StorageClass"] = "ONEZONE_IA"
    _replicate(east, source, catch_all, hot)
    hot_version = east.put_object(Bucket=source, Key="hot/a", Body=b"a")["VersionId"]
    cold_version = east.put_object(Bucket=source, Key="cold/b", Body=b"b")["VersionId"]
    _wait_status(east, source, "hot/a", hot_version, "COMPLETED")
    _wait_status(east, source, "cold/b", cold_version, "COMPLETED")
    assert west.head_object(Bucket=destination, Key="hot/a")["StorageClass"] == "ONEZONE_IA"
    assert west.head_object(Bucket=destination, Key="cold/b")["StorageClass"] == "STANDARD_IA"
    assert "StorageClass" not in east.head_object(Bucket=source, Key="hot/a")  # the source keeps STANDARD


def test_delete_markers_replicate_only_when_enabled_and_version_deletes_never(
    client: Callable[..., Any], make_bucket: Callable[..., str]
) -> None:
    east, west = client("s3", EAST), client("s3", WEST)
    destination = make_bucket(WEST)
    source = make_bucket(EAST)
    _replicate(
        east,
        source,
        _rule("keep", destination, prefix="keep/", priority=1, DeleteMarkerReplication={"Status": "Enabled"}),
        _rule("drop", destination, prefix="drop/", priority=2),
    )
    versions = {
        key: east.put_object(Bucket=source, Key=key, Body=key.encode())["VersionId"]
        for key in ("keep/x", "keep/z", "drop/y")
    }
    for key, version in versions.items():
        _wait_status(east, source, key, version, "COMPLETED")

    marker_x = east.delete_object(Bucket=source, Key="keep/x")
    assert marker_x["DeleteMarker"] is True
    east.delete_objects(Bucket=source, Delete={"Objects": [{"Key": "drop/y"}]})
    east.delete_object(Bucket=source, Key="keep/z", VersionId=versions["keep/z"])  # a version: never replicated
    sentinel = east.put_object(Bucket=source, Key="keep/sentinel", Body=b"s")["VersionId"]
    _wait_status(east, source, "keep/sentinel", sentinel, "COMPLETED")

    assert _versions(west, destination, "keep/x") == ([versions["keep/x"]], [marker_x["VersionId"]])
    assert _versions(west, destination, "drop/y") == ([versions["drop/y"]], [])
    assert _versions(west, destination, "keep/z") == ([versions["keep/z"]], [])
    with pytest.raises(ClientError):
        west.head_object(Bucket=destination, Key="keep/x")  # hidden by the replicated marker
    assert west.get_object(Bucket=destination, Key="drop/y")["Body"].read() == b"drop/y"


def test_two_way_rules_do_not_replicate_replicas_back(
    client: Callable[..., Any], make_bucket: Callable[..., str]
) -> None:
    east, west = client("s3", EAST), client("s3", WEST)
    bucket_east, bucket_west = make_bucket(EAST), make_bucket(WEST)
    _replicate(east, bucket_east, _rule("to-west", bucket_west))
    _replicate(west, bucket_west, _rule("to-east", bucket_east))

    from_east = east.put_object(Bucket=bucket_east, Key="k", Body=b"east")["VersionId"]
    _wait_status(east, bucket_east, "k", from_east, "COMPLETED")
    from_west = west.put_object(Bucket=bucket_west, Key="sentinel", Body=b"west")["VersionId"]
    _wait_status(west, bucket_west, "sentinel", from_west, "COMPLETED")

    # Had the replica of k been queued back to the east, it would have been handled before the sentinel.
    assert _versions(east, bucket_east, "k") == ([from_east], [])
    assert _versions(west, bucket_west, "k") == ([from_east], [])
    assert _versions(east, bucket_east, "sentinel") == ([from_west], [])
    assert _status(west, bucket_west, "k", from_east) == "REPLICA"
    assert _status(east, bucket_east, "sentinel", from_west) == "REPLICA"


def test_outage_of_the_destination_region_keeps_pending_until_restore(
    sandbox: SandboxConfig, client: Callable[..., Any], make_bucket: Callable[..., str]
) -> None:
    east, west = client("s3", EAST), client("s3", WEST)
    destination = make_bucket(WEST)
    source = make_bucket(EAST)
    _replicate(east, source, _rule("all", destination))
    _control(sandbox, "POST", "outage", {"region": WEST})
    try:
        version = east.put_object(Bucket=source, Key="during-outage", Body=b"x")["VersionId"]
        assert _status(east, source, "during-outage", version) == "PENDING"
        time.sleep(4 * 0.5)  # several replication passes
        assert _status(east, source, "during-outage", version) == "PENDING"
        pending = [p for p in _control(sandbox, "GET", "s3-replication")["pending"] if p["bucket"] == source]
        assert pending[0]["destinations"][0]["waiting"] == f"the destination region {WEST} is dark"
    finally:
        _control(sandbox, "POST", "restore", {"region": WEST})
    took = _wait_status(east, source, "during-outage", version, "COMPLETED")
    print(f"restore -> COMPLETED in {took:.2f}s")
    assert west.get_object(Bucket=destination, Key="during-outage")["Body"].read() == b"x"


def test_missing_unversioned_or_unusable_key_destination_fails(
    sandbox: SandboxConfig, client: Callable[..., Any], make_bucket: Callable[..., str], keys: dict[str, str]
) -> None:
    east, west, kms_west = client("s3", EAST), client("s3", WEST), client("kms", WEST)
    gone, suspended, kms_destination = make_bucket(WEST), make_bucket(WEST), make_bucket(WEST)
    source = make_bucket(EAST)
    disabled_key = kms_west.create_key(Description="disabled replica key")["KeyMetadata"]["Arn"]
    metrics = {"Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}}
    kms_rule = _rule(
        "kms",
        kms_destination,
        prefix="kms/",
        SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}},
        Destination={
            "Bucket": f"arn:aws:s3:::{kms_destination}",
            "EncryptionConfiguration": {"ReplicaKmsKeyID": disabled_key},
            **metrics,
        },
    )
    gone_rule = _rule("gone", gone, prefix="gone/")
    gone_rule["Destination"].update(metrics)
    _replicate(east, source, gone_rule, _rule("suspended", suspended, prefix="suspended/"), kms_rule)
    west.delete_bucket(Bucket=gone)
    west.put_bucket_versioning(Bucket=suspended, VersioningConfiguration={"Status": "Suspended"})
    kms_west.disable_key(KeyId=disabled_key)
    try:
        puts = {
            "gone/a": east.put_object(Bucket=source, Key="gone/a", Body=b"a")["VersionId"],
            "suspended/b": east.put_object(Bucket=source, Key="suspended/b", Body=b"b")["VersionId"],
            "kms/c": east.put_object(
                Bucket=source, Key="kms/c", Body=b"c", ServerSideEncryption="aws:kms", SSEKMSKeyId=keys[EAST]
            )["VersionId"],
        }
        for key, version in puts.items():
            _wait_status(east, source, key, version, "FAILED")
    finally:
        kms_west.schedule_key_deletion(KeyId=disabled_key, PendingWindowInDays=7)
    reasons = {
        f["key"]: f["reason"] for f in _control(sandbox, "GET", "s3-replication")["failures"] if f["bucket"] == source
    }
    assert reasons == {
        "gone/a": f"{gone}: the destination bucket {gone} does not exist",
        "suspended/b": f"{suspended}: versioning of the destination bucket {suspended} is Suspended, not Enabled",
        "kms/c": f"{kms_destination}: the replica KMS key {disabled_key} is Disabled",
    }
    # The monitoring role's alarm watches this metric (rules with metrics on only).
    failed = client("cloudwatch", EAST).list_metrics(
        Namespace="AWS/S3",
        MetricName="OperationsFailedReplication",
        Dimensions=[{"Name": "SourceBucket", "Value": source}],
    )["Metrics"]
    assert sorted(next(d["Value"] for d in m["Dimensions"] if d["Name"] == "RuleId") for m in failed) == ["gone", "kms"]


# -- rule selection, in process (no sandbox needed) ----------------------------------------------------


def _plan(
    rules: list[dict[str, Any]], key: str, kind: str = "object", tags: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    from sandbox.services.s3.replication import plan_legs

    legs = plan_legs({"Role": ROLE_ARN, "Rules": rules}, key, kind, tags or {}, None)
    return sorted((leg.destination, leg.rule_id) for leg in legs)


def test_rule_selection_v1_disabled_not_and_several_destinations() -> None:
    v1 = {"ID": "v1", "Prefix": "logs/", "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::d1"}}
    # V1 rules replicate delete markers (no DeleteMarkerReplication element in that schema).
    assert _plan([v1], "logs/a", "delete-marker") == [("d1", "v1")]
    assert _plan([{**v1, "Status": "Disabled"}], "logs/a") == []
    excluding = _rule("not", "d1")
    excluding["Filter"] = {"Not": {"Or": {"Prefixes": ["tmp/"], "Tags": [{"Key": "private", "Value": "yes"}]}}}
    assert _plan([excluding], "tmp/x") == []
    assert _plan([excluding], "a", tags={"private": "yes"}) == []
    assert _plan([excluding], "a") == [("d1", "not")]
    # Rules to different buckets all apply; a tag rule never matches a delete marker (it has no tags).
    tagged = _rule("tagged", "d2")
    tagged["Filter"] = {"Tag": {"Key": "env", "Value": "prod"}}
    both = [_rule("all", "d1", DeleteMarkerReplication={"Status": "Enabled"}), tagged]
    assert _plan(both, "k", tags={"env": "prod"}) == [("d1", "all"), ("d2", "tagged")]
    assert _plan(both, "k", "delete-marker") == [("d1", "all")]

"""GetBucketReplication returns the replication configuration that was put, as AWS does.

Plain moto keeps the parsed XML of PutBucketReplication but answers GetBucketReplication with a
rewritten copy: every rule gets ``DeleteMarkerReplication: Disabled`` and ``Filter: {Prefix: ""}``
whatever was put, and ``SourceSelectionCriteria`` (SseKmsEncryptedObjects), ``ExistingObjectReplication``
and the V1 ``Prefix`` are dropped. A module that compares the live configuration with the wanted one
then sees a difference on every run, and a test cannot check that delete markers or KMS-encrypted
objects are replicated.

This extension stores the configuration typed by botocore's S3 model (integers, booleans, lists)
and returns it as put. It also restores the checks AWS makes on PutBucketReplication that the
design relies on (the destination bucket must exist with versioning enabled, which is why the
secondary region's bucket is created before the primary's rule; a ``Filter`` rule must say
``DeleteMarkerReplication``; ``SseKmsEncryptedObjects`` needs ``ReplicaKmsKeyID``; rule IDs are
unique). AWS assigns a rule ID when none is given; so does this.

Server access logging (PutBucketLogging): S3 accepts a target bucket whose policy lets the service principal
``logging.s3.amazonaws.com`` put objects under the target prefix, whatever else the policy says. Moto's
check read every statement's ``Principal`` as a dict and failed with HTTP 500 on a policy that also holds a
``"Principal": "*"`` statement (every TLS-only policy has one), and it compared ``Resource`` as one exact
string. The check here reads the policy as IAM does: principals, actions and resources as a string or a
list, resources as wildcard patterns.

Bucket policies and TLS: moto evaluates a bucket policy on DeleteObjects with no request context, so a
``Deny`` on condition ``aws:SecureTransport = false`` (every TLS-only policy) applied to every call and
emptying such a bucket failed with AccessDenied. The sandbox stands for AWS's HTTPS endpoints (it serves
plain HTTP on loopback only, docs/sandbox.md), so a request counts as made over TLS.
"""

from __future__ import annotations

import fnmatch
import json
import secrets
from typing import Any

from sandbox import patches

RULE_ID_LENGTH = 30


def _typed(node: Any, shape: Any) -> Any:
    """Convert xmltodict output (strings, dict-or-list) into the Python types of a botocore shape."""
    kind = shape.type_name
    if kind == "structure":
        node = node if isinstance(node, dict) else {}
        result: dict[str, Any] = {}
        for name, member in shape.members.items():
            xml_name = member.serialization.get("name", name)
            if xml_name not in node:
                continue
            value = node[xml_name]
            if member.type_name == "list" and not member.serialization.get("flattened"):
                value = (value or {}).get(member.member.serialization.get("name", "member"))
            result[name] = _typed(value, member)
        return result
    if kind == "list":
        items = node if isinstance(node, list) else ([] if node is None else [node])
        return [_typed(item, shape.member) for item in items]
    if kind in ("integer", "long"):
        return int(node)
    if kind == "boolean":
        return str(node).lower() == "true"
    if isinstance(node, dict):  # an element with attributes: keep its text
        node = node.get("#text")
    return "" if node is None else str(node)


def _replication_shape() -> Any:
    from moto.core.responses import get_service_model

    return get_service_model("s3").shape_for("ReplicationConfiguration")


def _invalid(message: str) -> Exception:
    from moto.s3.exceptions import S3ClientError

    return S3ClientError("InvalidRequest", message)


def validate(backend: Any, config: dict[str, Any]) -> None:
    """Raise the InvalidRequest AWS answers for a configuration it refuses."""
    from moto.s3.exceptions import MissingBucket

    seen_ids: set[str] = set()
    for rule in config.get("Rules", []):
        rule_id = rule.get("ID")
        if rule_id:
            if rule_id in seen_ids:
                raise _invalid(f"Rule Id must be unique. Found same ID for more than one rule: {rule_id}")
            seen_ids.add(rule_id)
        if "Filter" in rule and "DeleteMarkerReplication" not in rule:
            raise _invalid(
                "DeleteMarkerReplication must be specified for this version of Cross Region Replication "
                "configuration schema."
            )
        kms = rule.get("SourceSelectionCriteria", {}).get("SseKmsEncryptedObjects", {})
        destination = rule.get("Destination", {})
        if kms.get("Status") == "Enabled" and not destination.get("EncryptionConfiguration", {}).get("ReplicaKmsKeyID"):
            raise _invalid("ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present.")
        bucket_arn = destination.get("Bucket", "")
        target_name = bucket_arn.split(":::", 1)[-1]
        try:
            target = backend.get_bucket(target_name)
        except MissingBucket:
            raise _invalid("Destination bucket must exist.") from None
        if not target.is_versioned:
            raise _invalid("Destination bucket must have versioning enabled.")


# --- server access logging: the target bucket's policy ------------------------------------------

LOGGING_SERVICE = "logging.s3.amazonaws.com"


def over_tls(policy: bytes | str) -> str:
    """The policy as it applies to a request made over TLS: without the statements conditioned on plain HTTP.

    Moto's evaluator ignores Bool conditions, so such a statement would apply to every request.
    """
    document = json.loads(policy.decode() if isinstance(policy, bytes) else policy)
    statements = _as_list(document.get("Statement"))

    def applies(statement: dict[str, Any]) -> bool:
        value = (statement.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
        return value is None or str(value).lower() == "true"

    return json.dumps(dict(document, Statement=[s for s in statements if applies(s)]))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def logging_allowed_by_policy(policy: bytes | str | None, bucket_arn: str, target_prefix: str | None) -> bool:
    """Whether a bucket policy lets S3 server access logging put objects under the target prefix."""
    if not policy:
        return False
    document = json.loads(policy.decode() if isinstance(policy, bytes) else policy)
    log_object = f"{bucket_arn}/{target_prefix or ''}log-object"
    for statement in _as_list(document.get("Statement")):
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if statement.get("Effect") != "Allow" or LOGGING_SERVICE not in services:
            continue
        if not any(fnmatch.fnmatchcase("s3:putobject", str(a).lower()) for a in _as_list(statement.get("Action"))):
            continue
        if any(fnmatch.fnmatchcase(log_object, r) for r in _as_list(statement.get("Resource"))):
            return True
    return False


def install(_app: Any) -> None:
    from moto.core.responses import ActionResult
    from moto.s3.exceptions import ReplicationConfigurationNotFoundError
    from moto.s3.models import FakeBucket, S3Backend
    from moto.s3.responses import S3Response

    shape = _replication_shape()

    def put_bucket_replication(self: Any, bucket_name: str, replication: dict[str, Any]) -> None:
        bucket = self.get_bucket(bucket_name)
        config = _typed(replication, shape)
        validate(self, config)
        for rule in config.get("Rules", []):
            rule.setdefault("ID", secrets.token_urlsafe(RULE_ID_LENGTH)[:RULE_ID_LENGTH])
        bucket.replication = config

    def get_bucket_replication(self: Any) -> Any:
        self.data["Action"] = "GetBucketReplication"
        config = self.backend.get_bucket_replication(self.bucket_name)
        if not config:
            raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
        return self.serialized(ActionResult({"ReplicationConfiguration": config}))

    patches.patch(S3Backend, "put_bucket_replication", put_bucket_replication, owner=__name__)
    patches.patch(S3Response, "get_bucket_replication", get_bucket_replication, owner=__name__)

    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import IAMPolicy, PermissionResult

        if self.policy is None:
            return PermissionResult.NEUTRAL
        return IAMPolicy(over_tls(self.policy)).is_action_permitted(action, resource)

    patches.patch(FakeBucket, "get_permission", get_permission, owner=__name__)

    def log_permissions_enabled_policy(target_bucket: Any, target_prefix: str | None) -> bool:
        bucket_arn = f"arn:{target_bucket.partition}:s3:::{target_bucket.name}"
        return logging_allowed_by_policy(target_bucket.policy, bucket_arn, target_prefix)

    patches.patch(
        FakeBucket, "_log_permissions_enabled_policy", staticmethod(log_permissions_enabled_policy), owner=__name__
    )

#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: s3_bucket_replication
short_description: Manage the replication configuration of an S3 bucket
description:
  - Put, update or delete the replication configuration of an S3 bucket
    (C(PutBucketReplication), C(GetBucketReplication), C(DeleteBucketReplication)).
  - The configuration is compared with the live one after normalising both (rule order, defaults
    AWS fills in, bucket names versus ARNs, disabled optional blocks), so a second run with the same
    input reports C(changed=false).
  - Rules always use the current schema (C(Filter) plus C(DeleteMarkerReplication)); the legacy
    rule-level C(Prefix) is not written.
  - The source bucket must have versioning enabled and every destination bucket must exist with
    versioning enabled before the configuration is put; AWS refuses it otherwise.
  - Objects are replicated by S3 itself; this module only manages the configuration.
  - In check mode a source bucket that does not exist yet counts as one without a configuration
    (C(changed=true)), so that a dry run of a first deployment does not fail.
options:
  bucket:
    description:
      - Name of the source bucket.
    required: true
    type: str
  state:
    description:
      - C(present) puts the configuration, C(absent) deletes it.
    default: present
    choices: [present, absent]
    type: str
  role:
    description:
      - ARN of the IAM role S3 assumes to replicate objects.
      - Required when I(state=present).
    type: str
  rules:
    description:
      - The replication rules. Required (non-empty) when I(state=present).
      - The whole configuration is replaced, so rules not listed here are removed.
    type: list
    elements: dict
    suboptions:
      id:
        description: Unique identifier of the rule (up to 255 characters).
        required: true
        type: str
      priority:
        description: Priority of the rule when several rules match an object (higher wins).
        default: 0
        type: int
      status:
        description: Whether the rule is applied.
        default: enabled
        choices: [enabled, disabled]
        type: str
      prefix:
        description: Replicate only object keys starting with this prefix. The empty string means every object.
        default: ""
        type: str
      tags:
        description: Replicate only objects carrying all these tags.
        type: dict
      destination_bucket:
        description: Name or ARN of the destination bucket.
        required: true
        type: str
      storage_class:
        description: Storage class of the replicas. Omitted means the source object's class.
        type: str
        choices:
          - STANDARD
          - REDUCED_REDUNDANCY
          - STANDARD_IA
          - ONEZONE_IA
          - INTELLIGENT_TIERING
          - GLACIER
          - DEEP_ARCHIVE
          - GLACIER_IR
      delete_marker_replication:
        description: Replicate delete markers to the destination.
        default: false
        type: bool
      replicate_kms_encrypted_objects:
        description:
          - Replicate objects encrypted with AWS KMS (C(SourceSelectionCriteria.SseKmsEncryptedObjects)).
          - Requires I(replica_kms_key_id).
        default: false
        type: bool
      replica_kms_key_id:
        description:
          - ARN of the KMS key (in the destination region) that encrypts the replicas.
        type: str
      replication_time_control:
        description:
          - Enable S3 Replication Time Control (replicates 99.99 % of objects within 15 minutes).
          - Also enables replication metrics, which RTC requires.
        default: false
        type: bool
      metrics:
        description:
          - Enable replication metrics and events (C(Destination.Metrics)) without RTC.
          - Always on when I(replication_time_control=true).
        default: false
        type: bool
  wait:
    description:
      - Wait until C(GetBucketReplication) returns the configuration that was put (or none after delete).
    default: true
    type: bool
  wait_timeout:
    description:
      - How many seconds to wait when I(wait=true).
    default: 60
    type: int
author:
  - hawa platform team (!UNKNOWN)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Replicate every object, delete markers and KMS-encrypted objects to the secondary bucket
  s3_bucket_replication:
    bucket: hawa-prod-us-east-1-static-123456789012
    region: us-east-1
    role: arn:aws:iam::123456789012:role/hawa-prod-us-east-1-s3-replication
    rules:
      - id: static-assets-to-us-west-2
        destination_bucket: hawa-prod-us-west-2-static-123456789012
        delete_marker_replication: true
        replicate_kms_encrypted_objects: true
        replica_kms_key_id: arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
        replication_time_control: true

- name: Remove the replication configuration
  s3_bucket_replication:
    bucket: hawa-prod-us-east-1-static-123456789012
    region: us-east-1
    state: absent
"""

RETURN = r"""
replication:
  description:
    - The replication configuration after the task (what would be put, in check mode), normalised,
      with keys in snake_case. Empty after I(state=absent).
  returned: always
  type: dict
  contains:
    role:
      description: ARN of the replication role.
      type: str
      sample: arn:aws:iam::123456789012:role/replication
    rules:
      description: The rules, sorted by ID, in the shape of the S3 API.
      type: list
      elements: dict
      sample:
        - id: static-assets-to-us-west-2
          priority: 0
          status: Enabled
          filter: {prefix: ""}
          delete_marker_replication: {status: Enabled}
          destination: {bucket: "arn:aws:s3:::hawa-prod-us-west-2-static-123456789012"}
"""

import contextlib
import copy

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing botocore
    import botocore

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, wait_until

WAIT_DELAY = 1
NOT_FOUND = "ReplicationConfigurationNotFoundError"


class ReplicationError(Exception):
    """An input or state problem, reported as the task's message."""


def bucket_arn(name_or_arn, partition="aws"):
    """A destination bucket as the ARN S3 stores, whether a name or an ARN was given."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"arn:{partition}:s3:::{name_or_arn}"


def partition_of(arn):
    parts = (arn or "").split(":")
    return parts[1] if len(parts) > 2 and parts[0] == "arn" and parts[1] else "aws"


def _status(flag):
    return "Enabled" if flag else "Disabled"


def build_rule(rule, partition="aws"):
    """One module rule (snake_case options) as an S3 API ReplicationRule."""
    if rule.get("replicate_kms_encrypted_objects") and not rule.get("replica_kms_key_id"):
        raise ReplicationError(
            "rule '{}': replicate_kms_encrypted_objects=true needs replica_kms_key_id "
            "(the ARN of a KMS key in the destination region)".format(rule["id"])
        )
    tags = rule.get("tags") or {}
    prefix = rule.get("prefix") or ""
    if tags:
        tag_list = [{"Key": k, "Value": str(v)} for k, v in sorted(tags.items())]
        if len(tag_list) == 1 and not prefix:
            rule_filter = {"Tag": tag_list[0]}
        else:
            rule_filter = {"And": {"Prefix": prefix, "Tags": tag_list}}
    else:
        rule_filter = {"Prefix": prefix}
    destination = {"Bucket": bucket_arn(rule["destination_bucket"], partition)}
    if rule.get("storage_class"):
        destination["StorageClass"] = rule["storage_class"]
    if rule.get("replica_kms_key_id"):
        destination["EncryptionConfiguration"] = {"ReplicaKmsKeyID": rule["replica_kms_key_id"]}
    if rule.get("replication_time_control"):
        destination["ReplicationTime"] = {"Status": "Enabled", "Time": {"Minutes": 15}}
    if rule.get("replication_time_control") or rule.get("metrics"):
        destination["Metrics"] = {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    api_rule = {
        "ID": rule["id"],
        "Priority": rule.get("priority") or 0,
        "Status": "Enabled" if (rule.get("status") or "enabled") == "enabled" else "Disabled",
        "Filter": rule_filter,
        "DeleteMarkerReplication": {"Status": _status(rule.get("delete_marker_replication"))},
        "Destination": destination,
    }
    if rule.get("replicate_kms_encrypted_objects"):
        api_rule["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    return api_rule


def build_configuration(role, rules):
    """The ReplicationConfiguration to put for the module's options."""
    if not role:
        raise ReplicationError("role is required with state=present: pass the ARN of the replication IAM role")
    if not rules:
        raise ReplicationError("rules is required with state=present: give at least one rule")
    ids = [r["id"] for r in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ReplicationError("rule ids must be unique; repeated: {}".format(", ".join(duplicates)))
    partition = partition_of(role)
    return {"Role": role, "Rules": [build_rule(r, partition) for r in rules]}


def _drop_disabled(block):
    """Optional blocks whose Status is Disabled mean the same as absent ones."""
    return {k: v for k, v in block.items() if not (isinstance(v, dict) and v.get("Status") == "Disabled")}


def normalise_rule(rule):
    """A rule in one canonical form, so that what AWS returns compares equal to what was put."""
    rule = copy.deepcopy(rule)
    out = {
        "ID": rule.get("ID", ""),
        "Priority": int(rule.get("Priority") or 0),
        "Status": rule.get("Status", "Enabled"),
    }
    if "Filter" in rule or "Prefix" not in rule:
        rule_filter = rule.get("Filter") or {}
        if "And" in rule_filter:
            and_ = rule_filter["And"]
            tags = sorted(and_.get("Tags") or [], key=lambda t: t["Key"])
            if and_.get("Prefix") or len(tags) != 1:
                rule_filter = {"And": {"Prefix": and_.get("Prefix") or "", "Tags": tags}}
            else:
                rule_filter = {"Tag": tags[0]}
        elif "Tag" in rule_filter:
            rule_filter = {"Tag": rule_filter["Tag"]}
        else:
            rule_filter = {"Prefix": rule_filter.get("Prefix") or ""}
        out["Filter"] = rule_filter
        out["DeleteMarkerReplication"] = {
            "Status": (rule.get("DeleteMarkerReplication") or {}).get("Status", "Disabled")
        }
    else:
        # Legacy (V1) rule: a Prefix at rule level, delete markers never replicated.
        out["Prefix"] = rule.get("Prefix") or ""
    criteria = {k: v for k, v in (rule.get("SourceSelectionCriteria") or {}).items() if v.get("Status") == "Enabled"}
    if criteria:
        out["SourceSelectionCriteria"] = criteria
    destination = _drop_disabled(rule.get("Destination") or {})
    if "Bucket" in destination:
        destination["Bucket"] = bucket_arn(destination["Bucket"])
    if not (destination.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID"):
        destination.pop("EncryptionConfiguration", None)
    if "Metrics" in destination:
        destination["Metrics"] = {
            "Status": "Enabled",
            "EventThreshold": {"Minutes": int((destination["Metrics"].get("EventThreshold") or {}).get("Minutes", 15))},
        }
    if "ReplicationTime" in destination:
        destination["ReplicationTime"] = {
            "Status": "Enabled",
            "Time": {"Minutes": int((destination["ReplicationTime"].get("Time") or {}).get("Minutes", 15))},
        }
    out["Destination"] = destination
    for key in ("ExistingObjectReplication",):
        if (rule.get(key) or {}).get("Status") == "Enabled":
            out[key] = {"Status": "Enabled"}
    return out


def normalise_configuration(config):
    """A whole ReplicationConfiguration (or None) in canonical form; None when there is none."""
    if not config:
        return None
    rules = sorted((normalise_rule(r) for r in config.get("Rules") or []), key=lambda r: r["ID"])
    return {"Role": config.get("Role", ""), "Rules": rules}


def configuration_differs(current, desired):
    return normalise_configuration(current) != normalise_configuration(desired)


def get_replication(client, bucket):
    try:
        return client.get_bucket_replication(Bucket=bucket, aws_retry=True)["ReplicationConfiguration"]
    except is_boto3_error_code(NOT_FOUND):
        return None


def wait_for(client, bucket, desired, timeout):
    """Poll until the live configuration matches (S3 configuration reads are eventually consistent)."""
    try:
        return wait_until(
            lambda: get_replication(client, bucket),
            lambda current: not configuration_differs(current, desired),
            f"the replication configuration of bucket '{bucket}'",
            timeout,
            delay=WAIT_DELAY,
            state=lambda current: "none" if current is None else "a different configuration",
        )
    except WaitTimeout as e:
        raise ReplicationError(str(e)) from None


def _result(config):
    normalised = normalise_configuration(config)
    return camel_dict_to_snake_dict(normalised) if normalised else {}


def ensure_present(client, module, bucket, desired):
    try:
        current = get_replication(client, bucket)
    except is_boto3_error_code("NoSuchBucket"):
        if not module.check_mode:
            raise
        # In check mode the bucket may be planned by an earlier task that could not run: the
        # configuration would be put once it exists.
        current = None
    changed = configuration_differs(current, desired)
    diff = {"before": _result(current), "after": _result(desired)}
    if not changed or module.check_mode:
        return {"changed": changed, "replication": _result(desired if changed else current), "diff": diff}
    try:
        client.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=desired, aws_retry=True)
    except is_boto3_error_code("InvalidRequest") as e:
        message = e.response.get("Error", {}).get("Message", "")
        raise ReplicationError(
            f"S3 refused the replication configuration of bucket '{bucket}': {message} (the source and "
            "every destination bucket need versioning enabled, and destination buckets must exist first)"
        ) from None
    live = wait_for(client, bucket, desired, module.params["wait_timeout"]) if module.params["wait"] else desired
    return {"changed": True, "replication": _result(live), "diff": diff}


def ensure_absent(client, module, bucket):
    try:
        current = get_replication(client, bucket)
    except is_boto3_error_code("NoSuchBucket"):
        return {"changed": False, "replication": {}, "diff": {"before": {}, "after": {}}}
    diff = {"before": _result(current), "after": {}}
    if current is None:
        return {"changed": False, "replication": {}, "diff": diff}
    if not module.check_mode:
        client.delete_bucket_replication(Bucket=bucket, aws_retry=True)
        if module.params["wait"]:
            wait_for(client, bucket, None, module.params["wait_timeout"])
    return {"changed": True, "replication": {}, "diff": diff}


def main():
    rule_spec = dict(
        id=dict(type="str", required=True),
        priority=dict(type="int", default=0),
        status=dict(type="str", default="enabled", choices=["enabled", "disabled"]),
        prefix=dict(type="str", default=""),
        tags=dict(type="dict"),
        destination_bucket=dict(type="str", required=True),
        storage_class=dict(
            type="str",
            choices=[
                "STANDARD",
                "REDUCED_REDUNDANCY",
                "STANDARD_IA",
                "ONEZONE_IA",
                "INTELLIGENT_TIERING",
                "GLACIER",
                "DEEP_ARCHIVE",
                "GLACIER_IR",
            ],
        ),
        delete_marker_replication=dict(type="bool", default=False),
        replicate_kms_encrypted_objects=dict(type="bool", default=False),
        replica_kms_key_id=dict(type="str"),
        replication_time_control=dict(type="bool", default=False),
        metrics=dict(type="bool", default=False),
    )
    argument_spec = dict(
        bucket=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        role=dict(type="str"),
        rules=dict(type="list", elements="dict", options=rule_spec),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=60),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["role", "rules"])],
        supports_check_mode=True,
    )
    client = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
    bucket = module.params["bucket"]
    try:
        if module.params["state"] == "present":
            desired = build_configuration(module.params["role"], module.params["rules"])
            result = ensure_present(client, module, bucket, desired)
        else:
            result = ensure_absent(client, module, bucket)
    except ReplicationError as e:
        module.fail_json(msg=f"Failed to manage the replication of bucket '{bucket}': {e}")
    except is_boto3_error_code("NoSuchBucket"):
        module.fail_json(
            msg=f"Failed to manage the replication of bucket '{bucket}': the bucket does not exist; create it "
            "(with versioning enabled) before its replication configuration"
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Failed to manage the replication of bucket '{bucket}'")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

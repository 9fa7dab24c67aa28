#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: s3_bucket_logging
short_description: Turn S3 server access logging of a bucket on or off, granted by bucket policy
version_added: 1.0.0
description:
  - Puts (C(PutBucketLogging)) or removes the server access logging configuration of a bucket. Nothing else
    is touched; the target bucket's own policy must let C(logging.s3.amazonaws.com) write (s3:PutObject under
    the prefix, with C(aws:SourceAccount) / C(aws:SourceArn) conditions), as AWS recommends.
  - M(community.aws.s3_logging) instead adds a C(LogDelivery) group ACL grant to the target bucket on every call,
    which AWS refuses on a bucket whose object ownership is C(BucketOwnerEnforced) (ACLs disabled) and which
    a bucket-policy grant makes unnecessary.
author:
  - hawa platform team (!UNKNOWN)
options:
  bucket:
    description: The bucket whose requests are logged.
    type: str
    required: true
  target_bucket:
    description:
      - The bucket the logs go to, in the same region and account. Required with O(state=present).
    type: str
  target_prefix:
    description: Key prefix of the log objects in the target bucket (e.g. V(s3/)).
    type: str
    default: ""
  state:
    description: Whether the bucket's requests should be logged.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Log the assets bucket's requests into the log bucket
  s3_bucket_logging:
    region: us-east-1
    bucket: hawa-production-us-east-1-static-123456789012
    target_bucket: hawa-production-us-east-1-logs-123456789012
    target_prefix: s3/

- name: Stop logging
  s3_bucket_logging:
    region: us-east-1
    bucket: hawa-production-us-east-1-static-123456789012
    state: absent
"""

RETURN = r"""
logging:
  description: The bucket's logging configuration after the task; empty when logging is off.
  returned: always
  type: dict
  contains:
    target_bucket:
      description: The bucket the logs go to.
      type: str
    target_prefix:
      description: The key prefix of the log objects.
      type: str
      sample: s3/
previous:
  description: The logging configuration before the task (same shape; empty when logging was off).
  returned: always
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def current_logging(client, bucket):
    """The bucket's logging as {target_bucket, target_prefix}, or {} when it is off."""
    enabled = client.get_bucket_logging(aws_retry=True, Bucket=bucket).get("LoggingEnabled") or {}
    if not enabled.get("TargetBucket"):
        return {}
    return {"target_bucket": enabled["TargetBucket"], "target_prefix": enabled.get("TargetPrefix", "")}


def ensure_logging(client, bucket, state, target_bucket, target_prefix, check_mode):
    """Make the bucket's logging match state; returns the module result."""
    previous = current_logging(client, bucket)
    wanted = {"target_bucket": target_bucket, "target_prefix": target_prefix} if state == "present" else {}
    if previous == wanted:
        return {"changed": False, "logging": previous, "previous": previous}
    if not check_mode:
        status = {"LoggingEnabled": {"TargetBucket": target_bucket, "TargetPrefix": target_prefix}} if wanted else {}
        client.put_bucket_logging(aws_retry=True, Bucket=bucket, BucketLoggingStatus=status)
    return {"changed": True, "logging": wanted, "previous": previous}


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            bucket=dict(type="str", required=True),
            target_bucket=dict(type="str"),
            target_prefix=dict(type="str", default=""),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        required_if=[["state", "present", ["target_bucket"]]],
        supports_check_mode=True,
    )
    bucket = module.params["bucket"]
    # A bucket policy just put may take a moment to reach the logging service's check.
    client = module.client(
        "s3", retry_decorator=AWSRetry.jittered_backoff(catch_extra_error_codes=["InvalidTargetBucketForLogging"])
    )
    try:
        result = ensure_logging(
            client,
            bucket,
            module.params["state"],
            module.params["target_bucket"],
            module.params["target_prefix"],
            module.check_mode,
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage the server access logging of bucket {bucket}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

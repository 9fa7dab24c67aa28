#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: sns_topic_encryption
short_description: Set the KMS key that encrypts an SNS topic at rest
version_added: 1.0.0
description:
  - Sets an existing SNS topic's C(KmsMasterKeyId) attribute (server-side encryption), or clears it. The topic
    itself, its subscriptions and its policy are left alone.
  - M(community.aws.sns_topic) has no option for the topic's encryption.
  - A service that publishes to the topic (CloudWatch alarms, C(cloudwatch.amazonaws.com)) needs
    C(kms:GenerateDataKey*) and C(kms:Decrypt) on the key through the key policy, so it needs a customer
    managed key; the AWS managed C(alias/aws/sns) key never allows it.
author:
  - hawa platform team (!UNKNOWN)
options:
  topic_arn:
    description: The topic's ARN.
    type: str
    required: true
  kms_master_key_id:
    description:
      - The key, as SNS takes it (key id, key ARN, alias name or alias ARN); compared as written, so name the key
        the same way every run.
      - An empty string turns server-side encryption off.
    type: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Encrypt the alarm topic with the region's alarm key
  sns_topic_encryption:
    region: us-east-1
    topic_arn: arn:aws:sns:us-east-1:123456789012:hawa-production-us-east-1-alarms
    kms_master_key_id: "{{ alarm_key.key_arn }}"

- name: Turn the topic's encryption off
  sns_topic_encryption:
    region: us-east-1
    topic_arn: arn:aws:sns:us-east-1:123456789012:hawa-production-us-east-1-alarms
    kms_master_key_id: ""
"""

RETURN = r"""
topic_arn:
  description: The topic's ARN.
  returned: always
  type: str
kms_master_key_id:
  description: The topic's key after the task (empty when not encrypted).
  returned: always
  type: str
previous_kms_master_key_id:
  description: The topic's key before the task (empty when it was not encrypted).
  returned: always
  type: str
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


class TopicNotFound(Exception):
    pass


def current_key(client, topic_arn):
    """The topic's KmsMasterKeyId ('' when unencrypted); TopicNotFound when there is no such topic."""
    try:
        attributes = client.get_topic_attributes(aws_retry=True, TopicArn=topic_arn)["Attributes"]
    except is_boto3_error_code("NotFound"):
        raise TopicNotFound(topic_arn) from None
    return attributes.get("KmsMasterKeyId", "")


def ensure_key(client, topic_arn, wanted, check_mode):
    """Make the topic's key wanted; returns the module result."""
    previous = current_key(client, topic_arn)
    changed = previous != wanted
    if changed and not check_mode:
        client.set_topic_attributes(
            aws_retry=True, TopicArn=topic_arn, AttributeName="KmsMasterKeyId", AttributeValue=wanted
        )
    return {
        "changed": changed,
        "topic_arn": topic_arn,
        "kms_master_key_id": wanted,
        "previous_kms_master_key_id": previous,
    }


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            topic_arn=dict(type="str", required=True),
            kms_master_key_id=dict(type="str", required=True, no_log=False),
        ),
        supports_check_mode=True,
    )
    topic_arn = module.params["topic_arn"]
    client = module.client("sns", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = ensure_key(client, topic_arn, module.params["kms_master_key_id"], module.check_mode)
    except TopicNotFound:
        module.fail_json(msg=f"Failed to find SNS topic {topic_arn}: create the topic first")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to set the KMS key of SNS topic {topic_arn}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

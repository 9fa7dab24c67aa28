#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: cloudwatchlogs_log_group_kms
short_description: Associate a KMS key with an existing CloudWatch Logs log group, or remove it
version_added: 1.0.0
description:
  - Makes an existing log group's KMS key the one given (C(AssociateKmsKey)), or removes the key
    (C(DisassociateKmsKey)). The log group itself, its retention and its tags are left alone.
  - M(amazon.aws.cloudwatchlogs_log_group) sets a key only when it creates the log group; on an existing one it
    never changes the key (short of C(overwrite), which deletes the group and its logs).
  - CloudWatch Logs accepts the key only if the key policy lets C(logs.<region>.amazonaws.com) use it for the log
    group (the encryption context C(kms:EncryptionContext:aws:logs:arn) is the log group's ARN); otherwise AWS
    answers C(AccessDeniedException).
  - Data written before the association stays readable; only new events are encrypted under the key. After a
    disassociation CloudWatch Logs keeps the key to read what it encrypted, so keep the key enabled.
author:
  - hawa platform team (!UNKNOWN)
options:
  log_group_name:
    description: The log group's name.
    type: str
    required: true
  kms_key_arn:
    description:
      - ARN of the key (CloudWatch Logs takes a key ARN only, not an alias). Required with O(state=present).
    type: str
  state:
    description: Whether the log group should be encrypted with O(kms_key_arn) (V(present)) or have no key (V(absent)).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Encrypt the task log group with the region's log key
  cloudwatchlogs_log_group_kms:
    region: us-east-1
    log_group_name: /ecs/hawa-production-us-east-1/web
    kms_key_arn: "{{ logs_key.key_arn }}"

- name: Take the key off the log group
  cloudwatchlogs_log_group_kms:
    region: us-east-1
    log_group_name: /ecs/hawa-production-us-east-1/web
    state: absent
"""

RETURN = r"""
log_group_name:
  description: The log group's name.
  returned: always
  type: str
kms_key_arn:
  description:
    - The log group's key after the task (empty when it has none).
    - In check mode on a log group that does not exist yet, the key it would get.
  returned: always
  type: str
previous_kms_key_arn:
  description: The log group's key before the task (empty when it had none, or the log group does not exist yet).
  returned: always
  type: str
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


class LogGroupNotFound(Exception):
    pass


def find_log_group(client, name):
    """The DescribeLogGroups entry of exactly that name, or None (the prefix filter also matches longer names)."""
    for page in client.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
        for group in page.get("logGroups", []):
            if group["logGroupName"] == name:
                return group
    return None


def ensure_key(client, name, state, kms_key_arn, check_mode):
    """Make the log group's key match state; returns the module result."""
    group = find_log_group(client, name)
    if group is None:
        # In check mode the log group is typically one an earlier task would create: it would get the key.
        if check_mode and state == "present":
            return {"changed": True, "log_group_name": name, "kms_key_arn": kms_key_arn, "previous_kms_key_arn": ""}
        if state == "present":
            raise LogGroupNotFound(name)
        return {"changed": False, "log_group_name": name, "kms_key_arn": "", "previous_kms_key_arn": ""}
    previous = group.get("kmsKeyId", "")
    wanted = kms_key_arn if state == "present" else ""
    changed = previous != wanted
    if changed and not check_mode:
        if wanted:
            client.associate_kms_key(aws_retry=True, logGroupName=name, kmsKeyId=wanted)
        else:
            client.disassociate_kms_key(aws_retry=True, logGroupName=name)
    return {"changed": changed, "log_group_name": name, "kms_key_arn": wanted, "previous_kms_key_arn": previous}


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            log_group_name=dict(type="str", required=True),
            kms_key_arn=dict(type="str", no_log=False),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        required_if=[["state", "present", ["kms_key_arn"]]],
        supports_check_mode=True,
    )
    name = module.params["log_group_name"]
    kms_key_arn = module.params["kms_key_arn"]
    if module.params["state"] == "present" and not kms_key_arn.startswith("arn:"):
        module.fail_json(
            msg=f"kms_key_arn must be a key ARN (CloudWatch Logs takes no alias or key id): got {kms_key_arn!r}"
        )
    client = module.client("logs", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = ensure_key(client, name, module.params["state"], kms_key_arn, module.check_mode)
    except LogGroupNotFound:
        module.fail_json(msg=f"Failed to find log group {name}: create it first (amazon.aws.cloudwatchlogs_log_group)")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to set the KMS key of log group {name}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

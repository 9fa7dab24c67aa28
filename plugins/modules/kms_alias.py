#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: kms_alias
short_description: Point a KMS alias at a key, or delete the alias
version_added: 1.0.0
description:
  - Creates, repoints (C(UpdateAlias)) and deletes a KMS alias. The key itself is left alone.
  - M(amazon.aws.kms_key) only ever adds aliases and never removes one. A key scheduled for deletion keeps
    its aliases until KMS deletes it at the end of the waiting period; a teardown removes them at once so
    that nothing resolves the alias to a key that can no longer be used and a later deploy makes a new key.
author:
  - hawa platform team (!UNKNOWN)
options:
  name:
    description: The alias; the C(alias/) prefix is optional. Names starting with C(alias/aws/) belong to AWS.
    type: str
    required: true
  target_key_id:
    description:
      - The key the alias points at (key id, key ARN or another alias). Required with O(state=present).
    type: str
  state:
    description: Whether the alias should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Name the bucket's key
  kms_alias:
    region: us-east-1
    name: alias/hawa-production-us-east-1-static
    target_key_id: "{{ key.key_arn }}"

- name: Remove the alias once the key is scheduled for deletion
  kms_alias:
    region: us-east-1
    name: alias/hawa-production-us-east-1-static
    state: absent
"""

RETURN = r"""
alias:
  description: The alias after the task; empty when absent.
  returned: always
  type: dict
  contains:
    name:
      description: The alias name, with its C(alias/) prefix.
      type: str
      sample: alias/hawa-production-us-east-1-static
    arn:
      description: The alias ARN.
      type: str
    target_key_id:
      description: The id of the key it points at.
      type: str
previous_target_key_id:
  description: The key the alias pointed at before the task (empty if it did not exist).
  returned: always
  type: str
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def canonical_name(name):
    return name if name.startswith("alias/") else "alias/" + name


def find_alias(client, name):
    """The ListAliases entry called name, or None (ListAliases has no name filter: read every page)."""
    for page in client.get_paginator("list_aliases").paginate():
        for alias in page.get("Aliases", []):
            if alias["AliasName"] == name:
                return alias
    return None


def describe(alias, target_key_id):
    if alias is None:
        return {}
    return {"name": alias["AliasName"], "arn": alias.get("AliasArn", ""), "target_key_id": target_key_id}


def ensure_alias(client, name, state, target_key_id, check_mode):
    """Make the alias match state; returns the module result (without touching the key)."""
    current = find_alias(client, name)
    previous = (current or {}).get("TargetKeyId", "")
    if state == "absent":
        if current is not None and not check_mode:
            client.delete_alias(aws_retry=True, AliasName=name)
        return {"changed": current is not None, "alias": {}, "previous_target_key_id": previous}
    # Compare key ids: the caller may name the key by ARN or by another alias.
    wanted = client.describe_key(aws_retry=True, KeyId=target_key_id)["KeyMetadata"]["KeyId"]
    if current is not None and previous == wanted:
        return {"changed": False, "alias": describe(current, wanted), "previous_target_key_id": previous}
    if not check_mode:
        if current is None:
            client.create_alias(aws_retry=True, AliasName=name, TargetKeyId=wanted)
        else:
            client.update_alias(aws_retry=True, AliasName=name, TargetKeyId=wanted)
        current = find_alias(client, name) or {"AliasName": name}
    return {
        "changed": True,
        "alias": describe(current or {"AliasName": name}, wanted),
        "previous_target_key_id": previous,
    }


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            target_key_id=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        required_if=[["state", "present", ["target_key_id"]]],
        supports_check_mode=True,
    )
    name = canonical_name(module.params["name"])
    if name.startswith("alias/aws/"):
        module.fail_json(msg=f"{name} is an AWS-managed alias: choose a name that does not start with alias/aws/")
    client = module.client("kms", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = ensure_alias(client, name, module.params["state"], module.params["target_key_id"], module.check_mode)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage KMS alias {name} in {module.region}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

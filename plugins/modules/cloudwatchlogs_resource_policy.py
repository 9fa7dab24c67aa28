#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: cloudwatchlogs_resource_policy
short_description: Put or delete a CloudWatch Logs resource policy
version_added: 1.0.0
description:
  - Puts (C(PutResourcePolicy)) or deletes a resource policy of CloudWatch Logs in a region, the account-wide
    policy through which AWS services write to log groups (Route 53 query logging, for one).
  - The policy is compared as a document (key order and whitespace do not count), so a second run with the same
    document reports C(changed=false). An account has at most 10 resource policies per region.
  - No module of amazon.aws or community.aws manages these policies.
author:
  - hawa platform team (!UNKNOWN)
options:
  name:
    description: The policy's name.
    type: str
    required: true
  policy:
    description: The policy document (a dict, or its JSON text). Required with O(state=present).
    type: json
  state:
    description: Whether the policy should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Let Route 53 write the zone's query logs
  cloudwatchlogs_resource_policy:
    region: us-east-1
    name: hawa-production-route53-query-logging
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: {Service: route53.amazonaws.com}
          Action: [logs:CreateLogStream, logs:PutLogEvents]
          Resource: arn:aws:logs:us-east-1:123456789012:log-group:/aws/route53/example.com:*

- name: Remove it
  cloudwatchlogs_resource_policy:
    region: us-east-1
    name: hawa-production-route53-query-logging
    state: absent
"""

RETURN = r"""
policy:
  description: The policy document after the task; empty when absent.
  returned: always
  type: dict
previous:
  description: The policy document before the task; empty when there was none.
  returned: always
  type: dict
"""

import json

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def find_policy(client, name):
    """The named policy's document (a dict), or None. DescribeResourcePolicies has no name filter."""
    kwargs = {}
    while True:
        response = client.describe_resource_policies(aws_retry=True, **kwargs)
        for policy in response.get("resourcePolicies", []):
            if policy["policyName"] == name:
                return json.loads(policy["policyDocument"])
        if not response.get("nextToken"):
            return None
        kwargs["nextToken"] = response["nextToken"]


def ensure_policy(client, name, state, document, check_mode):
    """Make the named policy match state; returns the module result."""
    current = find_policy(client, name)
    previous = current or {}
    if state == "absent":
        if current is not None and not check_mode:
            client.delete_resource_policy(aws_retry=True, policyName=name)
        return {"changed": current is not None, "policy": {}, "previous": previous}
    if current == document:
        return {"changed": False, "policy": document, "previous": previous}
    if not check_mode:
        client.put_resource_policy(aws_retry=True, policyName=name, policyDocument=json.dumps(document))
    return {"changed": True, "policy": document, "previous": previous}


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            policy=dict(type="json"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        required_if=[["state", "present", ["policy"]]],
        supports_check_mode=True,
    )
    name = module.params["name"]
    document = json.loads(module.params["policy"]) if module.params["policy"] else None
    client = module.client("logs", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = ensure_policy(client, name, module.params["state"], document, module.check_mode)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage CloudWatch Logs resource policy {name} in {module.region}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_managed_prefix_list_info
short_description: Look up managed prefix lists by name, with their weight against a security group's rules
version_added: 1.0.0
description:
  - Finds each named managed prefix list of the region (C(DescribeManagedPrefixLists) filtered by
    C(prefix-list-name)), such as the AWS-managed C(com.amazonaws.global.cloudfront.origin-facing) or
    C(com.amazonaws.us-east-1.route53-healthchecks), and returns its id, which a security group rule names
    (M(amazon.aws.ec2_security_group)'s C(rules[].ip_prefix)).
  - A rule that references a prefix list counts as its C(MaxEntries) rules against the security group's rule
    quota (60 by default); AWS calls it the list's weight (CloudFront's 55, Route 53's health checkers' 25).
    The module returns it, so that a play can check a group's rules fit before it asks.
  - Fails, naming every name it did not find, when a list does not exist in the region.
  - Read-only; runs in check mode. No module of amazon.aws or community.aws reads prefix lists.
author:
  - hawa platform team (!UNKNOWN)
options:
  names:
    description: The prefix lists' names (C(PrefixListName)); each must exist in the region.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Find CloudFront's origin-facing servers and Route 53's health checkers
  ec2_managed_prefix_list_info:
    region: us-east-1
    names:
      - com.amazonaws.global.cloudfront.origin-facing
      - com.amazonaws.us-east-1.route53-healthchecks
  register: prefix_lists

- name: Admit CloudFront on port 443
  amazon.aws.ec2_security_group:
    name: hawa-prod-us-east-1-alb
    description: Load balancer - CloudFront only
    vpc_id: vpc-0123456789abcdef0
    rules:
      - proto: tcp
        ports: [443]
        ip_prefix: "{{ prefix_lists.ids['com.amazonaws.global.cloudfront.origin-facing'] }}"
"""

RETURN = r"""
ids:
  description: Each name's prefix list id.
  returned: always
  type: dict
  sample: {"com.amazonaws.global.cloudfront.origin-facing": "pl-3b927c52"}
prefix_lists:
  description: The lists, in the order of O(names).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The list's name.
      type: str
    id:
      description: The list's id (C(pl-...)).
      type: str
    arn:
      description: The list's ARN.
      type: str
    owner_id:
      description: Its owner (C(AWS) for an AWS-managed list, otherwise an account id).
      type: str
    address_family:
      description: C(IPv4) or C(IPv6).
      type: str
    max_entries:
      description: Its C(MaxEntries), the rules a reference to it counts against a security group's quota.
      type: int
    state:
      description: Its state, e.g. C(create-complete).
      type: str
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.prefix_lists import PrefixListNotFound, find_prefix_lists


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(names=dict(type="list", elements="str", required=True)),
        supports_check_mode=True,
    )
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    names = module.params["names"]
    try:
        result = find_prefix_lists(client, names, module.region)
    except PrefixListNotFound as e:
        module.fail_json(msg=str(e))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to describe the managed prefix lists {', '.join(names)}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()

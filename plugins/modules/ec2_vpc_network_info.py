#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_vpc_network_info
short_description: Read a VPC and everything in it that the networking role manages, in one task
version_added: 1.0.0
description:
  - Finds the VPC by its C(Name) tag and CIDR block, as M(amazon.aws.ec2_vpc_net) does, and reads what lives in
    it, namely its DNS attributes, subnets, internet gateways, NAT gateways (pending or available), route tables, VPC
    endpoints and security groups. Also the region's available zones and, by name, the managed prefix lists the
    load balancer admits.
  - One task with about ten C(Describe*) calls, where one task per resource read the same state. The networking
    role compares the result with the design (P(hawa.platform.network_drift#filter)) and runs the collection's
    modules, which do the changing, only when something differs.
  - Read-only; runs in check mode. Fails, naming every name it did not find, when a prefix list does not exist.
author:
  - hawa platform team (!UNKNOWN)
options:
  vpc_name:
    description: The VPC's C(Name) tag.
    type: str
    required: true
  cidr_block:
    description:
      - The VPC's primary IPv4 CIDR block; a VPC of the same name with another block is not this one, as for
        M(amazon.aws.ec2_vpc_net).
      - Omitted, the VPC is found by its C(Name) tag alone.
    type: str
  prefix_list_names:
    description: Managed prefix lists to find by name (C(PrefixListName)); each must exist in the region.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read the network as it stands
  hawa.platform.ec2_vpc_network_info:
    region: us-east-1
    vpc_name: hawa-prod-us-east-1-vpc
    cidr_block: 10.10.0.0/16
    prefix_list_names: [com.amazonaws.global.cloudfront.origin-facing]
  register: network
"""

RETURN = r"""
availability_zones:
  description: The names of the region's zones in state C(available), sorted.
  returned: always
  type: list
  elements: str
  sample: [us-east-1a, us-east-1b, us-east-1c]
prefix_lists:
  description: Each named prefix list, by name, as P(hawa.platform.ec2_managed_prefix_list_info#module) returns it.
  returned: always
  type: dict
  sample: {"com.amazonaws.global.cloudfront.origin-facing": {"id": "pl-3b927c52", "max_entries": 55}}
vpcs:
  description:
    - The VPCs with this C(Name) tag and CIDR block (one, or none before the first run), with C(enable_dns_support)
      and C(enable_dns_hostnames) (C(DescribeVpcAttribute)). Keys in snake case; C(tags) a dict.
    - The lists below are empty unless exactly one VPC matched.
  returned: always
  type: list
  elements: dict
subnets:
  description: The VPC's subnets (C(DescribeSubnets)).
  returned: always
  type: list
  elements: dict
internet_gateways:
  description: The internet gateways attached to the VPC.
  returned: always
  type: list
  elements: dict
nat_gateways:
  description: The VPC's NAT gateways in state C(pending) or C(available).
  returned: always
  type: list
  elements: dict
route_tables:
  description: The VPC's route tables, with their routes and associations.
  returned: always
  type: list
  elements: dict
vpc_endpoints:
  description: The VPC's endpoints, except those deleted or being deleted.
  returned: always
  type: list
  elements: dict
security_groups:
  description: The VPC's security groups, with their ingress (C(ip_permissions)) and egress (C(ip_permissions_egress)).
  returned: always
  type: list
  elements: dict
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.hawa.platform.plugins.module_utils.prefix_lists import PrefixListNotFound, find_prefix_lists

# Each collection: (the Describe call, the key of its items in a page, the filter naming the VPC).
_IN_VPC = {
    "subnets": ("describe_subnets", "Subnets", "vpc-id"),
    "internet_gateways": ("describe_internet_gateways", "InternetGateways", "attachment.vpc-id"),
    "nat_gateways": ("describe_nat_gateways", "NatGateways", "vpc-id"),
    "route_tables": ("describe_route_tables", "RouteTables", "vpc-id"),
    "vpc_endpoints": ("describe_vpc_endpoints", "VpcEndpoints", "vpc-id"),
    "security_groups": ("describe_security_groups", "SecurityGroups", "vpc-id"),
}
_EXTRA_FILTERS = {
    "nat_gateways": [{"Name": "state", "Values": ["pending", "available"]}],
    "vpc_endpoints": [{"Name": "vpc-endpoint-state", "Values": ["pending", "available", "pendingAcceptance"]}],
}


def snake(item):
    """An item in snake case, as amazon.aws's info modules return it: `tags` a dict, and each tag kept as written."""
    tags = boto3_tag_list_to_ansible_dict(item.get("Tags", []))
    result = camel_dict_to_snake_dict({key: value for key, value in item.items() if key != "Tags"})
    result["tags"] = tags
    return result


def describe_all(client, method, key, **request):
    items = []
    while True:
        page = getattr(client, method)(aws_retry=True, **request)
        items.extend(page.get(key, []))
        if not page.get("NextToken"):
            return items
        request["NextToken"] = page["NextToken"]


def read_network(client, vpc_name, cidr_block, prefix_list_names, region):
    zones = client.describe_availability_zones(aws_retry=True, Filters=[{"Name": "state", "Values": ["available"]}])[
        "AvailabilityZones"
    ]
    result = {
        "availability_zones": sorted(zone["ZoneName"] for zone in zones),
        "prefix_lists": {},
        "vpcs": [],
        **{name: [] for name in _IN_VPC},
    }
    if prefix_list_names:
        found = find_prefix_lists(client, prefix_list_names, region)["prefix_lists"]
        result["prefix_lists"] = {pl["name"]: pl for pl in found}
    vpcs = describe_all(client, "describe_vpcs", "Vpcs", Filters=[{"Name": "tag:Name", "Values": [vpc_name]}])
    vpcs = [vpc for vpc in vpcs if cidr_block in (None, vpc.get("CidrBlock"))]
    for vpc in vpcs:
        for attribute, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
            answer = client.describe_vpc_attribute(aws_retry=True, VpcId=vpc["VpcId"], Attribute=attribute)
            vpc[key] = answer[key]["Value"]
    result["vpcs"] = [snake(vpc) for vpc in vpcs]
    if len(vpcs) != 1:
        return result
    vpc_id = vpcs[0]["VpcId"]
    for name, (method, key, vpc_filter) in _IN_VPC.items():
        filters = [{"Name": vpc_filter, "Values": [vpc_id]}, *_EXTRA_FILTERS.get(name, [])]
        # DescribeNatGateways names its filter parameter Filter, not Filters.
        request = {"Filter": filters} if method == "describe_nat_gateways" else {"Filters": filters}
        result[name] = [snake(item) for item in describe_all(client, method, key, **request)]
    return result


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            vpc_name=dict(type="str", required=True),
            cidr_block=dict(type="str"),
            prefix_list_names=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    params = module.params
    try:
        result = read_network(
            client, params["vpc_name"], params["cidr_block"], params["prefix_list_names"], module.region
        )
    except PrefixListNotFound as e:
        module.fail_json(msg=str(e))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to read the VPC {params['vpc_name']} and its network")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()

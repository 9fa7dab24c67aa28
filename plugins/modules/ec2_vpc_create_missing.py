#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_vpc_create_missing
short_description: Create the route tables and security groups a VPC lacks, without a fixed pause after each
description:
  - Creates each route table (with its routes and subnet associations) and each security group (bare, with its
    tags) that the VPC does not have yet, then waits until EC2 lists it, and changes nothing that exists.
  - It runs before M(amazon.aws.ec2_vpc_route_table) and M(amazon.aws.ec2_security_group), which still converge
    every table and group. Those modules pause for a fixed time after each change (5 s after a route table
    changes, 3 s after a group is created, and poll again after that); on a new VPC that is about 35 s a region.
    A table or group made here is found by them as they would have made it, so they change nothing and do not
    pause. A group's rules are still theirs to add.
  - A route table is found as M(amazon.aws.ec2_vpc_route_table) finds it with O(route_tables[].tags) and
    C(lookup=tag), a table of the VPC whose tags include all of them; a security group by its name in the VPC.
  - A subnet already associated with another route table is left to M(amazon.aws.ec2_vpc_route_table), which
    moves it.
  - A route table whose routes or associations fail is deleted again before the module fails.
author:
  - hawa platform team (!UNKNOWN)
options:
  vpc_id:
    description: The VPC.
    required: true
    type: str
  route_tables:
    description: The route tables the VPC should have.
    type: list
    elements: dict
    default: []
    suboptions:
      tags:
        description: The tags that identify the table (and that it is created with). At least one.
        required: true
        type: dict
      routes:
        description: Routes besides the local one.
        type: list
        elements: dict
        default: []
        suboptions:
          dest:
            description: The destination IPv4 CIDR block.
            required: true
            type: str
          gateway_id:
            description: An internet gateway. Exactly one of O(route_tables[].routes[].gateway_id) and O(route_tables[].routes[].nat_gateway_id).
            type: str
          nat_gateway_id:
            description: A NAT gateway.
            type: str
      subnets:
        description: IDs of the subnets to associate with the table.
        type: list
        elements: str
        default: []
  security_groups:
    description: The security groups the VPC should have.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The group's name.
        required: true
        type: str
      description:
        description: The group's description (AWS cannot change it later).
        required: true
        type: str
      tags:
        description: The group's tags.
        type: dict
        default: {}
  wait_timeout:
    description: Seconds to wait for EC2 to list each table or group made.
    type: int
    default: 120
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Make the missing route table and group; ec2_vpc_route_table and ec2_security_group then find them
  hawa.platform.ec2_vpc_create_missing:
    region: us-east-1
    vpc_id: vpc-0123456789abcdef0
    route_tables:
      - tags: {Name: app-public}
        routes: [{dest: 0.0.0.0/0, gateway_id: igw-0123456789abcdef0}]
        subnets: [subnet-0123456789abcdef0]
    security_groups:
      - name: app-alb
        description: Load balancer
        tags: {Name: app-alb}
"""

RETURN = r"""
route_tables:
  description: The route tables created (none in check mode), with the Name tag each was created with.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "rtb-0123456789abcdef0", "name": "app-public"}]
security_groups:
  description: The security groups created (none in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "sg-0123456789abcdef0", "name": "app-alb"}]
missing:
  description: The Name tag (route tables) or name (groups) of everything that was missing, in check mode too.
  returned: always
  type: list
  elements: str
"""

import contextlib

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    ansible_dict_to_boto3_tag_list,
    boto3_tag_list_to_ansible_dict,
)
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, wait_until


def describe_all(client, method, key, **request):
    items = []
    while True:
        page = getattr(client, method)(aws_retry=True, **request)
        items.extend(page.get(key, []))
        if not page.get("NextToken"):
            return items
        request["NextToken"] = page["NextToken"]


def _in_vpc(vpc_id, *filters):
    return [{"Name": "vpc-id", "Values": [vpc_id]}, *filters]


def _tags(item):
    return boto3_tag_list_to_ansible_dict(item.get("Tags", []))


def _label(tags):
    return tags.get("Name") or ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


def missing_route_tables(existing, wanted):
    """The wanted tables no existing table matches: as ec2_vpc_route_table's lookup=tag, a table whose tags include
    all of the wanted table's tags."""
    tag_sets = [_tags(table) for table in existing]
    return [table for table in wanted if not any(table["tags"].items() <= tags.items() for tags in tag_sets)]


def explicit_associations(existing):
    """Subnet ID -> the route table it is explicitly associated with."""
    return {
        association["SubnetId"]: table["RouteTableId"]
        for table in existing
        for association in table.get("Associations", [])
        if not association.get("Main") and association.get("SubnetId")
    }


def missing_security_groups(existing, wanted):
    names = {group["GroupName"] for group in existing}
    return [group for group in wanted if group["name"] not in names]


def _route_target(route):
    if route.get("nat_gateway_id"):
        return {"NatGatewayId": route["nat_gateway_id"]}
    return {"GatewayId": route["gateway_id"]}


def create_route_table(client, vpc_id, table, associated, timeout):
    """Create one table with its routes and associations, wait until EC2 lists it by its tags, and return its ID.
    On a failure after CreateRouteTable, the table is deleted again and the error raised."""
    tag_list = ansible_dict_to_boto3_tag_list(table["tags"])
    created = client.create_route_table(
        aws_retry=True, VpcId=vpc_id, TagSpecifications=[{"ResourceType": "route-table", "Tags": tag_list}]
    )["RouteTable"]
    table_id = created["RouteTableId"]
    association_ids = []
    try:
        for route in table["routes"]:
            client.create_route(
                aws_retry=True, RouteTableId=table_id, DestinationCidrBlock=route["dest"], **_route_target(route)
            )
        for subnet_id in table["subnets"]:
            if subnet_id in associated:
                continue  # ec2_vpc_route_table moves it
            answer = client.associate_route_table(aws_retry=True, RouteTableId=table_id, SubnetId=subnet_id)
            association_ids.append(answer["AssociationId"])
        by_tags = _in_vpc(vpc_id, *({"Name": f"tag:{k}", "Values": [v]} for k, v in table["tags"].items()))
        wait_until(
            lambda: describe_all(client, "describe_route_tables", "RouteTables", Filters=by_tags),
            lambda found: any(item["RouteTableId"] == table_id for item in found),
            what=f"route table {_label(table['tags'])} ({table_id}) to be listed by its tags",
            timeout=timeout,
            delay=0.5,
            max_delay=4,
            state=lambda found: f"{len(found)} tables with its tags",
        )
    except BaseException:
        # Nothing half-made stays behind: the error that brought us here is the one to report.
        with contextlib.suppress(Exception):
            for association_id in association_ids:
                client.disassociate_route_table(aws_retry=True, AssociationId=association_id)
            client.delete_route_table(aws_retry=True, RouteTableId=table_id)
        raise
    return table_id


def create_security_group(client, vpc_id, group, timeout):
    """Create one group, as ec2_security_group does (name, description, tags), and wait until EC2 lists it by name
    with the outbound rule AWS adds to every new group (which ec2_security_group also waits for)."""
    request = {"GroupName": group["name"], "Description": group["description"], "VpcId": vpc_id}
    if group["tags"]:
        request["TagSpecifications"] = [
            {"ResourceType": "security-group", "Tags": ansible_dict_to_boto3_tag_list(group["tags"])}
        ]
    group_id = client.create_security_group(aws_retry=True, **request)["GroupId"]
    by_name = _in_vpc(vpc_id, {"Name": "group-name", "Values": [group["name"]]})
    wait_until(
        lambda: describe_all(client, "describe_security_groups", "SecurityGroups", Filters=by_name),
        lambda found: any(item["GroupId"] == group_id and item.get("IpPermissionsEgress") for item in found),
        what=f"security group {group['name']} ({group_id}) to be listed with its outbound rule",
        timeout=timeout,
        delay=0.5,
        max_delay=4,
        state=lambda found: "listed" if found else "not listed",
    )
    return group_id


def ensure(client, params, check_mode):
    vpc_id = params["vpc_id"]
    tables = describe_all(client, "describe_route_tables", "RouteTables", Filters=_in_vpc(vpc_id))
    groups = describe_all(client, "describe_security_groups", "SecurityGroups", Filters=_in_vpc(vpc_id))
    tables_missing = missing_route_tables(tables, params["route_tables"])
    groups_missing = missing_security_groups(groups, params["security_groups"])
    result = {
        "changed": bool(tables_missing or groups_missing),
        "missing": [_label(table["tags"]) for table in tables_missing] + [group["name"] for group in groups_missing],
        "route_tables": [],
        "security_groups": [],
    }
    if check_mode:
        return result
    associated = explicit_associations(tables)
    timeout = params["wait_timeout"]
    for group in groups_missing:
        group_id = create_security_group(client, vpc_id, group, timeout)
        result["security_groups"].append({"id": group_id, "name": group["name"]})
    for table in tables_missing:
        table_id = create_route_table(client, vpc_id, table, associated, timeout)
        result["route_tables"].append({"id": table_id, "name": table["tags"].get("Name", "")})
    return result


def validate(params):
    """Errors in the input, each naming the item and the fix."""
    errors = []
    for index, table in enumerate(params["route_tables"]):
        if not table["tags"]:
            errors.append(
                f"route_tables[{index}].tags is empty: give the tags that identify the table (a Name at least)"
            )
        for number, route in enumerate(table["routes"]):
            if bool(route.get("gateway_id")) == bool(route.get("nat_gateway_id")):
                errors.append(
                    f"route_tables[{index}].routes[{number}] ({route['dest']}) needs exactly one of gateway_id and nat_gateway_id"
                )
    return errors


def main():
    route = dict(dest=dict(type="str", required=True), gateway_id=dict(type="str"), nat_gateway_id=dict(type="str"))
    table = dict(
        tags=dict(type="dict", required=True),
        routes=dict(type="list", elements="dict", default=[], options=route),
        subnets=dict(type="list", elements="str", default=[]),
    )
    group = dict(
        name=dict(type="str", required=True),
        description=dict(type="str", required=True),
        tags=dict(type="dict", default={}),
    )
    module = AnsibleAWSModule(
        argument_spec=dict(
            vpc_id=dict(type="str", required=True),
            route_tables=dict(type="list", elements="dict", default=[], options=table),
            security_groups=dict(type="list", elements="dict", default=[], options=group),
            wait_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    errors = validate(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors))
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = ensure(client, module.params, module.check_mode)
    except WaitTimeout as e:
        module.fail_json(msg=f"{e}: raise wait_timeout if EC2 is slow to list what it made")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(
            e, msg=f"Failed to create the missing route tables and security groups of {module.params['vpc_id']}"
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()

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
  - A subnet associated with another route table is moved to the new one (C(ReplaceRouteTableAssociation)).
  - It waits after each create for what those modules read next. A new table, until it exists, then until the VPC's
    tables listed by its tags include it with every route and association made here and C(DescribeTags) gives its
    tags. A new group, until it is listed by name in the VPC with the outbound rule AWS adds.
  - A route table whose routes, associations or wait fail is deleted again and its subnets moved back before the
    module fails; the message names anything that could not be undone. A group made but not yet listed is left for
    M(amazon.aws.ec2_security_group) to adopt by name.
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
        description: The tags that identify the table (and that it is created with). At least one. Values are made strings, as AWS keeps them.
        required: true
        type: dict
      routes:
        description: Routes besides the local one.
        type: list
        elements: dict
        default: []
        suboptions:
          dest:
            description: The destination IPv4 CIDR block (IPv6 routes are left to M(amazon.aws.ec2_vpc_route_table)).
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

import ipaddress

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.ec2 import (
    AnsibleEC2Error,
    associate_route_table,
    create_route,
    create_route_table,
    create_security_group,
    delete_route_table,
    describe_route_tables,
    describe_security_groups,
    disassociate_route_table,
)
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    boto3_tag_list_to_ansible_dict,
    boto3_tag_specifications,
)
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, wait_until

# Polls for what EC2 has just made: at once, then from 0.5 s, doubling up to 4 s.
_POLL = {"delay": 0.5, "max_delay": 4}


class CreateError(Exception):
    """A table or group could not be made; the message names it and what was left behind."""


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
    """Subnet ID -> (its association ID, the route table it is explicitly associated with)."""
    return {
        association["SubnetId"]: (association["RouteTableAssociationId"], table["RouteTableId"])
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


def _table_settled(client, table_id, table, association_ids):
    """What ec2_vpc_route_table reads next, as it reads it: the table among the VPC's tables with its tags (its tags
    through DescribeTags, as its lookup reads them), every route and association made here listed."""

    def read():
        by_tags = _in_vpc(table["vpc_id"], *({"Name": f"tag:{k}", "Values": [v]} for k, v in table["tags"].items()))
        listed = [item for item in describe_route_tables(client, Filters=by_tags) if item["RouteTableId"] == table_id]
        if not listed:
            return None
        pages = client.get_paginator("describe_tags").paginate(Filters=[{"Name": "resource-id", "Values": [table_id]}])
        tags = {tag["Key"]: tag["Value"] for tag in pages.build_full_result().get("Tags", [])}
        return {"table": listed[0], "tags": tags}

    def done(seen):
        if not seen or not table["tags"].items() <= seen["tags"].items():
            return False
        routes = {route.get("DestinationCidrBlock") for route in seen["table"].get("Routes", [])}
        associations = {a.get("RouteTableAssociationId") for a in seen["table"].get("Associations", [])}
        return all(route["dest"] in routes for route in table["routes"]) and set(association_ids) <= associations

    return read, done


def create_route_table_as_designed(client, vpc_id, table, associated, timeout):
    """Create one table with its routes and associations (a subnet associated with another table is moved to it),
    wait until EC2 lists all of it where ec2_vpc_route_table looks, and return its ID. On any failure the table is
    deleted again and the subnets moved back, and CreateError names what could not be undone."""
    label = _label(table["tags"])
    table_id = create_route_table(client, vpc_id, table["tags"])["RouteTableId"]
    made, moved = [], []  # association IDs made here; (association ID, table it came from) moved here
    try:
        # A new table is not at once visible to every EC2 endpoint (ec2_vpc_route_table waits the same way).
        wait_until(
            lambda: describe_route_tables(client, RouteTableIds=[table_id]),
            bool,
            what=f"route table {label} ({table_id}) to exist",
            timeout=timeout,
            state=lambda found: "not found" if not found else "found",
            **_POLL,
        )
        for route in table["routes"]:
            create_route(client, table_id, DestinationCidrBlock=route["dest"], **_route_target(route))
        for subnet_id in table["subnets"]:
            if subnet_id in associated:
                association_id, previous = associated[subnet_id]
                answer = client.replace_route_table_association(
                    aws_retry=True, AssociationId=association_id, RouteTableId=table_id
                )
                moved.append((answer["NewAssociationId"], previous))
            else:
                made.append(associate_route_table(client, table_id, SubnetId=subnet_id)["AssociationId"])
        read, done = _table_settled(client, table_id, dict(table, vpc_id=vpc_id), made + [m[0] for m in moved])
        wait_until(
            read,
            done,
            what=f"route table {label} ({table_id}) to be listed by its tags with its routes and subnets",
            timeout=timeout,
            state=lambda seen: "not listed by its tags" if not seen else "listed, not yet complete",
            **_POLL,
        )
    except (AnsibleEC2Error, WaitTimeout, botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        left = _undo_route_table(client, table_id, made, moved)
        undone = f"; left behind: {'; '.join(left)}" if left else f"; the table {table_id} was deleted again"
        raise CreateError(f"could not make route table {label}: {e}{undone}") from e
    return table_id


def _undo_route_table(client, table_id, made, moved):
    """Put the subnets back and delete the table; what could not be undone, each in a phrase."""
    left = []
    for association_id, previous in moved:
        try:
            client.replace_route_table_association(aws_retry=True, AssociationId=association_id, RouteTableId=previous)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            left.append(f"association {association_id} still on {table_id}, not back on {previous} ({e})")
    for association_id in made:
        try:
            disassociate_route_table(client, association_id)
        except AnsibleEC2Error as e:
            left.append(f"association {association_id} of {table_id} ({e})")
    try:
        delete_route_table(client, table_id)
    except AnsibleEC2Error as e:
        left.append(f"route table {table_id} ({e})")
    return left


def create_security_group_as_designed(client, vpc_id, group, timeout):
    """Create one group, as ec2_security_group does (name, description, tags), and wait until EC2 lists it by name
    in the VPC, as that module looks it up, with the outbound rule AWS adds to every new group (which it also waits
    for)."""
    request = {"GroupName": group["name"], "Description": group["description"], "VpcId": vpc_id}
    if group["tags"]:
        request["TagSpecifications"] = boto3_tag_specifications(group["tags"], types="security-group")
    try:
        group_id = create_security_group(client, **request)["GroupId"]
        by_name = _in_vpc(vpc_id, {"Name": "group-name", "Values": [group["name"]]})
        wait_until(
            lambda: describe_security_groups(client, Filters=by_name),
            lambda found: any(item["GroupId"] == group_id and item.get("IpPermissionsEgress") for item in found),
            what=f"security group {group['name']} ({group_id}) to be listed with its outbound rule",
            timeout=timeout,
            state=lambda found: "listed" if found else "not listed",
            **_POLL,
        )
    except (AnsibleEC2Error, WaitTimeout) as e:
        # A group made but not yet listed is left: ec2_security_group adopts it by name once EC2 lists it.
        raise CreateError(f"could not make security group {group['name']}: {e}") from e
    return group_id


def ensure(client, params, check_mode, made=None):
    """Make what is missing; `made` (a dict, filled as things are made) tells the caller what exists when one fails."""
    vpc_id = params["vpc_id"]
    tables = describe_route_tables(client, Filters=_in_vpc(vpc_id))
    groups = describe_security_groups(client, Filters=_in_vpc(vpc_id))
    tables_missing = missing_route_tables(tables, params["route_tables"])
    groups_missing = missing_security_groups(groups, params["security_groups"])
    result = made if made is not None else {}
    result.update(
        changed=bool(tables_missing or groups_missing),
        missing=[_label(table["tags"]) for table in tables_missing] + [group["name"] for group in groups_missing],
        route_tables=[],
        security_groups=[],
    )
    if check_mode:
        return result
    associated = explicit_associations(tables)
    timeout = params["wait_timeout"]
    for group in groups_missing:
        group_id = create_security_group_as_designed(client, vpc_id, group, timeout)
        result["security_groups"].append({"id": group_id, "name": group["name"]})
    for table in tables_missing:
        table_id = create_route_table_as_designed(client, vpc_id, table, associated, timeout)
        result["route_tables"].append({"id": table_id, "name": table["tags"].get("Name", "")})
    return result


def normalize(params):
    """Tags as AWS keeps them, strings (an inventory's `Owner: 42` is an integer)."""
    for item in params["route_tables"] + params["security_groups"]:
        item["tags"] = {str(key): str(value) for key, value in (item["tags"] or {}).items()}
    return params


def validate(params):
    """Errors in the input, each naming the item and the fix."""
    errors = []
    for index, table in enumerate(params["route_tables"]):
        if not table["tags"]:
            errors.append(
                f"route_tables[{index}].tags is empty: give the tags that identify the table (a Name at least)"
            )
        for number, route in enumerate(table["routes"]):
            where = f"route_tables[{index}].routes[{number}] ({route['dest']})"
            try:
                if ipaddress.ip_network(route["dest"]).version != 4:
                    errors.append(f"{where}: dest must be an IPv4 CIDR block; leave IPv6 routes to ec2_vpc_route_table")
            except ValueError:
                errors.append(f"{where}: dest is not a CIDR block; give one such as 0.0.0.0/0")
            if bool(route.get("gateway_id")) == bool(route.get("nat_gateway_id")):
                errors.append(f"{where} needs exactly one of gateway_id and nat_gateway_id")
            elif route.get("gateway_id") and not route["gateway_id"].startswith("igw-"):
                errors.append(
                    f"{where}: gateway_id must be an internet gateway (igw-...); a NAT gateway goes in nat_gateway_id"
                )
            elif route.get("nat_gateway_id") and not route["nat_gateway_id"].startswith("nat-"):
                errors.append(f"{where}: nat_gateway_id must be a NAT gateway (nat-...)")
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
    params = normalize(module.params)
    errors = validate(params)
    if errors:
        module.fail_json(msg="; ".join(errors))
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    made = {}
    try:
        ensure(client, params, module.check_mode, made)
    except CreateError as e:
        module.fail_json(msg=f"{e} (raise wait_timeout if EC2 is slow to list what it made)", **made)
    except AnsibleEC2Error as e:
        module.fail_json_aws_error(e)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to read the route tables and security groups of {params['vpc_id']}")
    module.exit_json(**made)


if __name__ == "__main__":
    main()

"""plugins/modules/ec2_vpc_create_missing.py: what counts as missing, what it makes on the sandbox, that a failure
leaves nothing behind, and that amazon.aws's modules find what it made as they would have made it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support import REPO_ROOT, load_module_file, run_playbook

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "ec2_vpc_create_missing.py")
TARGET = "tests/modules/targets/ec2_vpc_create_missing.yml"


class Retrying:
    """A plain boto3 client called as the module calls its AWSRetry-decorated one (aws_retry=True)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        return lambda *args, aws_retry=False, **request: method(*args, **request)


def _table(tags: dict[str, str], routes: list[dict[str, str]] | None = None, subnets: list[str] | None = None):
    return {"tags": tags, "routes": routes or [], "subnets": subnets or []}


def _params(vpc_id: str, tables: list[dict[str, Any]], groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"vpc_id": vpc_id, "route_tables": tables, "security_groups": groups, "wait_timeout": 10}


def test_a_table_is_found_by_a_subset_of_its_tags_as_the_route_table_module_looks_it_up() -> None:
    existing = [{"RouteTableId": "rtb-1", "Tags": [{"Key": "Name", "Value": "a"}, {"Key": "Project", "Value": "p"}]}]
    found = _table({"Name": "a"})
    also_found = _table({"Name": "a", "Project": "p"})
    other_value = _table({"Name": "a", "Project": "q"})
    more_tags = _table({"Name": "a", "Owner": "me"})
    assert mod.missing_route_tables(existing, [found, also_found, other_value, more_tags]) == [other_value, more_tags]


def test_explicit_associations_leave_out_the_main_table() -> None:
    existing = [
        {"RouteTableId": "rtb-main", "Associations": [{"Main": True, "RouteTableAssociationId": "rtbassoc-0"}]},
        {
            "RouteTableId": "rtb-1",
            "Associations": [{"Main": False, "SubnetId": "subnet-1", "RouteTableAssociationId": "rtbassoc-1"}],
        },
    ]
    assert mod.explicit_associations(existing) == {"subnet-1": ("rtbassoc-1", "rtb-1")}


def test_a_new_table_counts_as_listed_only_with_its_tags_routes_and_subnets() -> None:
    wanted = {"vpc_id": "vpc-1", "tags": {"Name": "t", "Project": "p"}, "routes": [{"dest": "0.0.0.0/0"}]}
    _, done = mod._table_settled(None, "rtb-1", wanted, ["rtbassoc-1", "rtbassoc-2"])
    table = {
        "Routes": [{"DestinationCidrBlock": "10.0.0.0/16"}, {"DestinationCidrBlock": "0.0.0.0/0"}],
        "Associations": [{"RouteTableAssociationId": "rtbassoc-1"}, {"RouteTableAssociationId": "rtbassoc-2"}],
    }
    tags = {"Name": "t", "Project": "p"}
    assert done({"table": table, "tags": tags})
    assert not done(None), "not listed by its tags"
    assert not done({"table": table, "tags": {"Name": "t"}}), "DescribeTags not yet giving every tag"
    assert not done({"table": dict(table, Routes=table["Routes"][:1]), "tags": tags}), "the route not yet listed"
    assert not done({"table": dict(table, Associations=table["Associations"][:1]), "tags": tags}), "a subnet not yet"


def test_groups_are_missing_by_name() -> None:
    wanted = [{"name": "web"}, {"name": "db"}]
    assert mod.missing_security_groups([{"GroupName": "web"}, {"GroupName": "default"}], wanted) == [{"name": "db"}]


def test_bad_input_is_named_with_its_fix() -> None:
    errors = mod.validate(
        _params(
            "vpc-1",
            [
                _table({}),
                _table({"Name": "x"}, [{"dest": "0.0.0.0/0", "gateway_id": "igw-1", "nat_gateway_id": "nat-1"}]),
                _table({"Name": "y"}, [{"dest": "0.0.0.0/0", "gateway_id": None, "nat_gateway_id": None}]),
                _table(
                    {"Name": "z"}, [{"dest": "::/0", "gateway_id": "igw-1"}, {"dest": "any", "gateway_id": "nat-1"}]
                ),
            ],
            [],
        )
    )
    assert errors == [
        "route_tables[0].tags is empty: give the tags that identify the table (a Name at least)",
        "route_tables[1].routes[0] (0.0.0.0/0) needs exactly one of gateway_id and nat_gateway_id",
        "route_tables[2].routes[0] (0.0.0.0/0) needs exactly one of gateway_id and nat_gateway_id",
        "route_tables[3].routes[0] (::/0): dest must be an IPv4 CIDR block; leave IPv6 routes to ec2_vpc_route_table",
        "route_tables[3].routes[1] (any): dest is not a CIDR block; give one such as 0.0.0.0/0",
        "route_tables[3].routes[1] (any): gateway_id must be an internet gateway (igw-...); a NAT gateway goes in nat_gateway_id",
    ]


def test_tag_values_are_made_strings_as_aws_keeps_them() -> None:
    params = mod.normalize(
        _params("vpc-1", [_table({"Name": "t", "Cost": 42})], [{"name": "g", "description": "d", "tags": None}])
    )
    assert params["route_tables"][0]["tags"] == {"Name": "t", "Cost": "42"}
    assert params["security_groups"][0]["tags"] == {}


@pytest.fixture
def network(sandbox, aws):
    """A VPC with two subnets and an internet gateway; removed with whatever a test made in it."""
    ec2 = aws("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.57.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.57.{i}.0/24", AvailabilityZone="us-east-1a")["Subnet"][
            "SubnetId"
        ]
        for i in range(2)
    ]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    yield {"ec2": ec2, "vpc_id": vpc_id, "subnets": subnets, "igw": igw}
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    for group in ec2.describe_security_groups(Filters=in_vpc)["SecurityGroups"]:
        if group["GroupName"] != "default":
            ec2.delete_security_group(GroupId=group["GroupId"])
    for table in ec2.describe_route_tables(Filters=in_vpc)["RouteTables"]:
        if any(a.get("Main") for a in table.get("Associations", [])):
            continue
        for association in table.get("Associations", []):
            ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    for subnet in subnets:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc_id)


def _tables_named(ec2: Any, vpc_id: str, name: str) -> list[dict[str, Any]]:
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "tag:Name", "Values": [name]}]
    return ec2.describe_route_tables(Filters=filters)["RouteTables"]


def test_makes_what_is_missing_with_routes_associations_and_tags_then_nothing(network) -> None:
    ec2, vpc_id, (first, second) = network["ec2"], network["vpc_id"], network["subnets"]
    # The second subnet already has a table of its own: it is moved to the new one, as the design says.
    own = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=own, SubnetId=second)
    tables = [
        _table(
            {"Name": "cm-public", "Project": "p"},
            [{"dest": "0.0.0.0/0", "gateway_id": network["igw"]}],
            [first, second],
        )
    ]
    groups = [{"name": "cm-web", "description": "Web servers", "tags": {"Name": "cm-web"}}]
    params = _params(vpc_id, tables, groups)

    planned = mod.ensure(Retrying(ec2), params, check_mode=True)
    assert planned == {"changed": True, "missing": ["cm-public", "cm-web"], "route_tables": [], "security_groups": []}
    assert _tables_named(ec2, vpc_id, "cm-public") == []

    made = mod.ensure(Retrying(ec2), params, check_mode=False)
    assert made["changed"] and made["missing"] == ["cm-public", "cm-web"]
    (table,) = _tables_named(ec2, vpc_id, "cm-public")
    assert table["RouteTableId"] == made["route_tables"][0]["id"]
    assert {"Key": "Project", "Value": "p"} in table["Tags"]
    assert [
        (r["DestinationCidrBlock"], r.get("GatewayId")) for r in table["Routes"] if r.get("GatewayId") != "local"
    ] == [("0.0.0.0/0", network["igw"])]
    assert sorted(a["SubnetId"] for a in table["Associations"]) == sorted([first, second])
    (left,) = ec2.describe_route_tables(RouteTableIds=[own])["RouteTables"]
    assert left["Associations"] == []
    (group,) = ec2.describe_security_groups(GroupIds=[made["security_groups"][0]["id"]])["SecurityGroups"]
    assert (group["GroupName"], group["Description"], group["Tags"]) == (
        "cm-web",
        "Web servers",
        [{"Key": "Name", "Value": "cm-web"}],
    )
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"], "a new group: no inbound, AWS's outbound"

    assert mod.ensure(Retrying(ec2), params, check_mode=False) == {
        "changed": False,
        "missing": [],
        "route_tables": [],
        "security_groups": [],
    }


def test_a_table_whose_association_fails_is_deleted_again_and_its_subnets_moved_back(network) -> None:
    ec2, vpc_id, (first, second) = network["ec2"], network["vpc_id"], network["subnets"]
    own = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=own, SubnetId=second)
    routes = [{"dest": "0.0.0.0/0", "gateway_id": network["igw"]}]
    tables = [_table({"Name": "cm-broken"}, routes, [second, first, "subnet-0000000000000000f"])]
    with pytest.raises(
        mod.CreateError, match=r"could not make route table cm-broken: .*subnet-0000000000000000f.*was deleted again"
    ):
        mod.ensure(Retrying(ec2), _params(vpc_id, tables, []), check_mode=False)
    assert _tables_named(ec2, vpc_id, "cm-broken") == []
    (back,) = ec2.describe_route_tables(RouteTableIds=[own])["RouteTables"]
    assert [a["SubnetId"] for a in back["Associations"]] == [second]


def test_the_collection_modules_find_what_it_made_and_do_not_change_it(sandbox) -> None:
    prefix = f"cm-{uuid.uuid4().hex[:8]}"
    run = run_playbook(TARGET, sandbox_port=sandbox.port, extra_vars={"create_missing_prefix": prefix})
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]

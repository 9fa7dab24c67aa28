"""plugins/modules/ec2_vpc_network_info.py: what it reads, against a fake EC2 (unit; the networking role runs it on
the sandbox in every deployment and in its molecule scenario)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import REPO_ROOT, load_module_file

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "ec2_vpc_network_info.py")

VPC = {"VpcId": "vpc-1", "CidrBlock": "10.10.0.0/16", "Tags": [{"Key": "Name", "Value": "net-vpc"}]}


class FakeEC2:
    """Answers each Describe call from `items`, two items a page, and records the filters it was given."""

    def __init__(self, vpcs: list[dict[str, Any]], items: dict[str, list[dict[str, Any]]]) -> None:
        self.vpcs, self.items = vpcs, items
        self.requests: dict[str, list[dict[str, Any]]] = {}

    def _page(self, method: str, key: str, items: list[dict[str, Any]], request: dict[str, Any]) -> dict[str, Any]:
        self.requests.setdefault(method, []).append(request)
        start = int(request.get("NextToken", 0))
        page: dict[str, Any] = {key: items[start : start + 2]}
        if start + 2 < len(items):
            page["NextToken"] = str(start + 2)
        return page

    def describe_availability_zones(self, aws_retry: bool, Filters: list[dict[str, Any]]) -> dict[str, Any]:
        assert Filters == [{"Name": "state", "Values": ["available"]}]
        return {"AvailabilityZones": [{"ZoneName": "us-east-1b"}, {"ZoneName": "us-east-1a"}]}

    def describe_vpcs(self, aws_retry: bool, **request: Any) -> dict[str, Any]:
        return self._page("describe_vpcs", "Vpcs", self.vpcs, request)

    def describe_vpc_attribute(self, aws_retry: bool, VpcId: str, Attribute: str) -> dict[str, Any]:
        key = Attribute[0].upper() + Attribute[1:]
        return {key: {"Value": Attribute == "enableDnsSupport"}}

    def __getattr__(self, method: str) -> Any:
        keys = {
            "describe_subnets": "Subnets",
            "describe_internet_gateways": "InternetGateways",
            "describe_nat_gateways": "NatGateways",
            "describe_route_tables": "RouteTables",
            "describe_vpc_endpoints": "VpcEndpoints",
            "describe_security_groups": "SecurityGroups",
        }
        if method not in keys:
            raise AttributeError(method)
        return lambda aws_retry, **request: self._page(method, keys[method], self.items.get(method, []), request)


def test_reads_every_collection_of_the_one_vpc_across_pages() -> None:
    subnets = [{"SubnetId": f"subnet-{i}", "Tags": [{"Key": "Tier", "Value": "public"}]} for i in range(5)]
    ec2 = FakeEC2(
        [VPC, {**VPC, "VpcId": "vpc-other", "CidrBlock": "10.99.0.0/16"}],
        {"describe_subnets": subnets, "describe_nat_gateways": [{"NatGatewayId": "nat-1", "State": "available"}]},
    )
    result = mod.read_network(ec2, "net-vpc", "10.10.0.0/16", [], "us-east-1")
    assert result["availability_zones"] == ["us-east-1a", "us-east-1b"]
    assert [vpc["vpc_id"] for vpc in result["vpcs"]] == [
        "vpc-1"
    ]  # the VPC of the same name with another block is not it
    assert result["vpcs"][0]["enable_dns_support"] is True and result["vpcs"][0]["enable_dns_hostnames"] is False
    assert result["vpcs"][0]["tags"] == {"Name": "net-vpc"}
    assert [subnet["subnet_id"] for subnet in result["subnets"]] == [f"subnet-{i}" for i in range(5)]  # three pages
    assert result["subnets"][0]["tags"] == {"Tier": "public"}
    assert result["nat_gateways"] == [{"nat_gateway_id": "nat-1", "state": "available", "tags": {}}]
    # DescribeNatGateways takes Filter, the others Filters; each names the VPC, NAT gateways and endpoints a state.
    (nat_request,) = ec2.requests["describe_nat_gateways"]
    assert nat_request["Filter"] == [
        {"Name": "vpc-id", "Values": ["vpc-1"]},
        {"Name": "state", "Values": ["pending", "available"]},
    ]
    assert ec2.requests["describe_internet_gateways"][0]["Filters"] == [
        {"Name": "attachment.vpc-id", "Values": ["vpc-1"]}
    ]
    assert ec2.requests["describe_vpc_endpoints"][0]["Filters"][1]["Name"] == "vpc-endpoint-state"
    assert ec2.requests["describe_vpcs"][0]["Filters"] == [{"Name": "tag:Name", "Values": ["net-vpc"]}]


def test_without_a_cidr_block_the_vpc_is_found_by_name_alone() -> None:
    ec2 = FakeEC2([{**VPC, "CidrBlock": "10.99.0.0/16"}], {})
    assert [vpc["vpc_id"] for vpc in mod.read_network(ec2, "net-vpc", None, [], "us-east-1")["vpcs"]] == ["vpc-1"]


@pytest.mark.parametrize("vpcs", [[], [VPC, {**VPC, "VpcId": "vpc-2"}]], ids=["none", "two"])
def test_nothing_inside_is_read_unless_exactly_one_vpc_matches(vpcs: list[dict[str, Any]]) -> None:
    ec2 = FakeEC2(vpcs, {"describe_subnets": [{"SubnetId": "subnet-1"}]})
    result = mod.read_network(ec2, "net-vpc", "10.10.0.0/16", [], "us-east-1")
    assert len(result["vpcs"]) == len(vpcs) and result["subnets"] == [] and "describe_subnets" not in ec2.requests

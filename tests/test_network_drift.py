"""plugins/filter/network_drift.py: every difference the networking role must converge is named, and a network that
matches its design gives none (unit; the drift drills of tests/test_readme.py run it against the sandbox)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from tests.support import REPO_ROOT, load_module_file

network_drift = load_module_file(REPO_ROOT / "plugins" / "filter" / "network_drift.py").network_drift

P = "hawa-t-us-east-1"
TAGS = {"Project": "hawa"}
ALL_OUT = [{"ip_protocol": "-1", "ip_ranges": [{"cidr_ip": "0.0.0.0/0"}]}]


def _design() -> dict[str, Any]:
    def tagged(name: str, **extra: str) -> dict[str, str]:
        return {**TAGS, "Name": name, **extra}

    return {
        "vpc": {"name": f"{P}-vpc", "cidr": "10.10.0.0/16", "tags": tagged(f"{P}-vpc")},
        "subnets": [
            {"name": f"{P}-public-a", "cidr": "10.10.0.0/20", "az": "us-east-1a", "tags": tagged(f"{P}-public-a", Tier="public")},
            {"name": f"{P}-private-a", "cidr": "10.10.128.0/20", "az": "us-east-1a", "tags": tagged(f"{P}-private-a", Tier="private")},
        ],
        "internet_gateway": {"tags": tagged(f"{P}-igw")},
        "nat_gateways": [{"subnet": f"{P}-public-a", "tags": tagged(f"{P}-nat-a")}],
        "route_tables": [
            {"name": f"{P}-public", "tags": tagged(f"{P}-public"), "subnets": [f"{P}-public-a"]},
            {"name": f"{P}-private-a", "tags": tagged(f"{P}-private-a"), "subnets": [f"{P}-private-a"], "nat_gateway_subnet": f"{P}-public-a"},
        ],
        "s3_endpoint": {"service": "com.amazonaws.us-east-1.s3", "route_tables": [f"{P}-private-a"], "tags": tagged(f"{P}-s3")},
        "security_groups": [
            {"name": f"{P}-alb", "description": "LB", "tags": tagged(f"{P}-alb"),
             "ingress": [{"proto": "tcp", "ports": [443], "ip_prefix": ["pl-cf"]}]},
            {"name": f"{P}-probes", "description": "probes", "tags": tagged(f"{P}-probes"),
             "ingress": [{"proto": "tcp", "ports": [80, 443], "cidr_ip": ["203.0.113.0/24", "198.51.100.7/32"]}]},
            {"name": f"{P}-app", "description": "app", "tags": tagged(f"{P}-app"),
             "ingress": [{"proto": "tcp", "ports": ["8000"], "group_name": f"{P}-alb"}]},
            {"name": "default", "description": "default VPC security group", "ingress": [], "egress": [], "tags": None},
        ],
    }  # fmt: skip


def _state() -> dict[str, Any]:
    """The network exactly as the design wants it, as hawa.platform.ec2_vpc_network_info returns it."""
    aws = {"aws:cloudformation:stack-name": "kept"}  # AWS's own tags are never purged, so never a difference
    return {
        "availability_zones": ["us-east-1a", "us-east-1b"],
        "prefix_lists": {},
        "vpcs": [{"vpc_id": "vpc-1", "cidr_block": "10.10.0.0/16", "enable_dns_support": True,
                  "enable_dns_hostnames": True, "tags": {**TAGS, "Name": f"{P}-vpc", **aws}}],
        "subnets": [
            {"subnet_id": "subnet-pub", "cidr_block": "10.10.0.0/20", "availability_zone": "us-east-1a",
             "map_public_ip_on_launch": False, "tags": {**TAGS, "Name": f"{P}-public-a", "Tier": "public"}},
            {"subnet_id": "subnet-priv", "cidr_block": "10.10.128.0/20", "availability_zone": "us-east-1a",
             "map_public_ip_on_launch": False, "tags": {**TAGS, "Name": f"{P}-private-a", "Tier": "private"}},
            # A subnet someone else added: the role neither manages nor removes it.
            {"subnet_id": "subnet-other", "cidr_block": "10.10.200.0/24", "availability_zone": "us-east-1b",
             "map_public_ip_on_launch": True, "tags": {}},
        ],
        "internet_gateways": [{"internet_gateway_id": "igw-1", "tags": {**TAGS, "Name": f"{P}-igw"}}],
        "nat_gateways": [
            {"nat_gateway_id": "nat-1", "subnet_id": "subnet-pub", "state": "available", "tags": {**TAGS, "Name": f"{P}-nat-a"}},
        ],
        "route_tables": [
            {"route_table_id": "rtb-main", "tags": {}, "associations": [{"main": True}],
             "routes": [{"destination_cidr_block": "10.10.0.0/16", "gateway_id": "local", "origin": "CreateRouteTable"}]},
            {"route_table_id": "rtb-pub", "tags": {**TAGS, "Name": f"{P}-public"},
             "associations": [{"main": False, "subnet_id": "subnet-pub"}],
             "routes": [{"destination_cidr_block": "10.10.0.0/16", "gateway_id": "local", "origin": "CreateRouteTable"},
                        {"destination_cidr_block": "0.0.0.0/0", "gateway_id": "igw-1", "origin": "CreateRoute"}]},
            {"route_table_id": "rtb-priv", "tags": {**TAGS, "Name": f"{P}-private-a"},
             "associations": [{"main": False, "subnet_id": "subnet-priv"}],
             "routes": [{"destination_cidr_block": "10.10.0.0/16", "gateway_id": "local", "origin": "CreateRouteTable"},
                        {"destination_cidr_block": "0.0.0.0/0", "nat_gateway_id": "nat-1", "origin": "CreateRoute"},
                        # The S3 endpoint's route: a prefix list, kept by ec2_vpc_route_table.
                        {"destination_prefix_list_id": "pl-s3", "gateway_id": "vpce-1", "origin": "CreateRoute"}]},
        ],
        "vpc_endpoints": [{"vpc_endpoint_id": "vpce-1", "service_name": "com.amazonaws.us-east-1.s3",
                           "route_table_ids": ["rtb-priv"], "tags": {**TAGS, "Name": f"{P}-s3"}}],
        "security_groups": [
            {"group_id": "sg-alb", "group_name": f"{P}-alb", "description": "LB", "tags": {**TAGS, "Name": f"{P}-alb"},
             "ip_permissions": [{"ip_protocol": "tcp", "from_port": 443, "to_port": 443, "prefix_list_ids": [{"prefix_list_id": "pl-cf"}]}],
             "ip_permissions_egress": ALL_OUT},
            {"group_id": "sg-probes", "group_name": f"{P}-probes", "description": "probes", "tags": {**TAGS, "Name": f"{P}-probes"},
             "ip_permissions": [
                 {"ip_protocol": "tcp", "from_port": port, "to_port": port,
                  "ip_ranges": [{"cidr_ip": "198.51.100.7/32"}, {"cidr_ip": "203.0.113.0/24"}]}
                 for port in (443, 80)],
             "ip_permissions_egress": ALL_OUT},
            {"group_id": "sg-app", "group_name": f"{P}-app", "description": "app", "tags": {**TAGS, "Name": f"{P}-app"},
             "ip_permissions": [{"ip_protocol": "tcp", "from_port": 8000, "to_port": 8000,
                                 "user_id_group_pairs": [{"group_id": "sg-alb", "user_id": "123456789012"}]}],
             "ip_permissions_egress": ALL_OUT},
            {"group_id": "sg-default", "group_name": "default", "description": "default VPC security group",
             "tags": {"Owner": "someone"}, "ip_permissions": [], "ip_permissions_egress": []},
        ],
    }  # fmt: skip


def test_a_network_as_designed_has_no_drift() -> None:
    assert network_drift(_design(), _state()) == []


def _group(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(group for group in state["security_groups"] if group["group_name"] == name)


def _table(state: dict[str, Any], table_id: str) -> dict[str, Any]:
    return next(table for table in state["route_tables"] if table["route_table_id"] == table_id)


DRIFTS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "no VPC yet": (lambda s: s.update(vpcs=[]), f"VPC {P}-vpc (10.10.0.0/16): missing"),
    "two VPCs": (lambda s: s["vpcs"].append(dict(s["vpcs"][0], vpc_id="vpc-2")), "2 found where one belongs"),
    "DNS hostnames off": (
        lambda s: s["vpcs"][0].update(enable_dns_hostnames=False),
        "DNS support or DNS hostnames off",
    ),
    "a tag added to the VPC": (lambda s: s["vpcs"][0]["tags"].update(Team="x"), f"VPC {P}-vpc: tags differ (Team)"),
    "a subnet deleted": (lambda s: s["subnets"].pop(1), f"subnet {P}-private-a (10.10.128.0/20): missing"),
    "a subnet retagged": (lambda s: s["subnets"][0]["tags"].update(Tier="x"), "tags differ (Tier)"),
    "public addresses on launch": (
        lambda s: s["subnets"][0].update(map_public_ip_on_launch=True),
        "assigns public addresses",
    ),
    "the internet gateway detached": (lambda s: s.update(internet_gateways=[]), "internet gateway: missing"),
    "a NAT gateway failed": (
        lambda s: s["nat_gateways"][0].update(state="failed"),
        f"NAT gateway in {P}-public-a: missing",
    ),
    "a NAT gateway lost a tag": (lambda s: s["nat_gateways"][0]["tags"].pop("Project"), "tags differ (Project)"),
    "the default route deleted": (
        lambda s: _table(s, "rtb-pub")["routes"].pop(1),
        f"route table {P}-public: routes differ",
    ),
    "a route to somewhere else": (
        lambda s: _table(s, "rtb-priv")["routes"][1].update(nat_gateway_id="nat-9"),
        f"route table {P}-private-a: routes differ",
    ),
    "an extra route": (
        lambda s: _table(s, "rtb-pub")["routes"].append(
            {"destination_cidr_block": "192.0.2.0/24", "gateway_id": "igw-1", "origin": "CreateRoute"}
        ),
        "routes differ",
    ),
    "a subnet moved to another table": (
        lambda s: _table(s, "rtb-priv")["associations"].append({"main": False, "subnet_id": "subnet-pub"}),
        f"route table {P}-private-a: subnet associations differ",
    ),
    "a route table deleted": (lambda s: s["route_tables"].pop(1), f"route table {P}-public: missing"),
    "the endpoint off a table": (
        lambda s: s["vpc_endpoints"][0].update(route_table_ids=[]),
        "missing or on other route tables",
    ),
    "a rule added by hand": (
        lambda s: _group(s, f"{P}-app")["ip_permissions"].append(
            {"ip_protocol": "tcp", "from_port": 8000, "to_port": 8000, "ip_ranges": [{"cidr_ip": "0.0.0.0/0"}]}
        ),
        f"security group {P}-app: inbound rules differ",
    ),
    "a rule removed": (lambda s: _group(s, f"{P}-probes")["ip_permissions"].pop(), "inbound rules differ"),
    "a rule's description": (
        lambda s: _group(s, f"{P}-alb")["ip_permissions"][0]["prefix_list_ids"][0].update(description="hand"),
        "inbound rules differ",
    ),
    "an egress rule narrowed": (
        lambda s: _group(s, f"{P}-app").update(ip_permissions_egress=[]),
        f"security group {P}-app: outbound rules differ",
    ),
    "the default group opened": (
        lambda s: _group(s, "default").update(ip_permissions_egress=ALL_OUT),
        "security group default: outbound rules differ",
    ),
    "a group deleted": (lambda s: s["security_groups"].pop(0), f"security group {P}-alb: missing"),
    "a group a rule names deleted": (
        lambda s: s["security_groups"].pop(0),
        f"security group {P}-app: inbound rules differ",
    ),
    "a group's tag": (
        lambda s: _group(s, f"{P}-alb")["tags"].pop("Name"),
        f"security group {P}-alb: tags differ (Name)",
    ),
}


@pytest.mark.parametrize("drift", DRIFTS, ids=list(DRIFTS))
def test_each_drift_is_named(drift: str) -> None:
    state = copy.deepcopy(_state())
    change, expected = DRIFTS[drift]
    change(state)
    named = network_drift(_design(), state)
    assert any(expected in line for line in named), named


def test_nat_gateways_shared_by_one_az_route_every_private_table_through_it() -> None:
    design, state = _design(), _state()
    design["nat_gateways"] = [{"subnet": f"{P}-public-a", "tags": {**TAGS, "Name": f"{P}-nat-a"}}]
    assert network_drift(design, state) == []
    state["nat_gateways"][0]["subnet_id"] = "subnet-other"
    assert f"NAT gateway in {P}-public-a: missing" in network_drift(design, state)


def test_a_malformed_state_is_an_error_that_names_the_filter() -> None:
    with pytest.raises(AnsibleFilterError, match="network_drift"):
        network_drift(_design(), {"vpcs": [{"tags": {}}], "subnets": [{"no": "cidr"}]})

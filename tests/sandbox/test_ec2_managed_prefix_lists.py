"""AWS-managed prefix lists (sandbox/services/ec2/patches.py): CloudFront's origin-facing list and Route 53's
health checkers' list exist in every region, in AWS's shapes, holding the sandbox's edge and checker sources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.session
import pytest

from sandbox import config

LISTS = {
    "com.amazonaws.global.cloudfront.origin-facing": (55, config.EDGE_SOURCE),
    "com.amazonaws.{region}.route53-healthchecks": (25, config.ROUTE53_CHECKER_SOURCE),
}


def _members(shape: str) -> set[str]:
    return set(botocore.session.get_session().get_service_model("ec2").shape_for(shape).members)


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
@pytest.mark.parametrize("template", sorted(LISTS))
def test_managed_list_by_name_in_aws_shape(aws: Callable[..., Any], region: str, template: str) -> None:
    ec2 = aws("ec2", region)
    name = template.format(region=region)
    weight, source = LISTS[template]
    found = ec2.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])["PrefixLists"]
    assert len(found) == 1
    pl = found[0]
    assert set(pl) <= _members("ManagedPrefixList")
    assert pl["PrefixListId"].startswith("pl-")
    assert {k: pl[k] for k in ("PrefixListName", "OwnerId", "AddressFamily", "MaxEntries", "State", "Version")} == {
        "PrefixListName": name,
        "OwnerId": "AWS",
        "AddressFamily": "IPv4",
        "MaxEntries": weight,
        "State": "create-complete",
        "Version": 1,
    }
    assert pl["PrefixListArn"] == f"arn:aws:ec2:{region}:aws:prefix-list/{pl['PrefixListId']}"
    # By id too, and its entries: the one loopback address the sandbox's client connects from.
    by_id = ec2.describe_managed_prefix_lists(PrefixListIds=[pl["PrefixListId"]])["PrefixLists"]
    assert [p["PrefixListName"] for p in by_id] == [name]
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=pl["PrefixListId"])["Entries"]
    assert entries == [{"Cidr": f"{source}/32"}]
    assert all(set(entry) <= _members("PrefixListEntry") for entry in entries)


def test_owner_filter_lists_the_aws_managed_lists(aws: Callable[..., Any]) -> None:
    ec2 = aws("ec2", "eu-west-1")
    names = {
        pl["PrefixListName"]
        for pl in ec2.describe_managed_prefix_lists(Filters=[{"Name": "owner-id", "Values": ["AWS"]}])["PrefixLists"]
    }
    assert {"com.amazonaws.global.cloudfront.origin-facing", "com.amazonaws.eu-west-1.route53-healthchecks"} <= names
    assert "com.amazonaws.us-east-1.route53-healthchecks" not in names


def _list_id(ec2: Any, name: str) -> str:
    found = ec2.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])["PrefixLists"]
    return str(found[0]["PrefixListId"])


def test_a_prefix_list_counts_as_its_max_entries_against_the_rules_quota(aws: Callable[..., Any]) -> None:
    ec2 = aws("ec2", "us-east-1")
    cloudfront = _list_id(ec2, "com.amazonaws.global.cloudfront.origin-facing")
    route53 = _list_id(ec2, "com.amazonaws.us-east-1.route53-healthchecks")
    vpc = ec2.create_vpc(CidrBlock="10.84.0.0/16")["Vpc"]["VpcId"]
    edge = ec2.create_security_group(VpcId=vpc, GroupName="edge", Description="edge")["GroupId"]
    checkers = ec2.create_security_group(VpcId=vpc, GroupName="checkers", Description="checkers")["GroupId"]
    two_ports = ec2.create_security_group(VpcId=vpc, GroupName="two-ports", Description="two ports")["GroupId"]

    def allow(group: str, **source: Any) -> None:
        ec2.authorize_security_group_ingress(
            GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, **source}]
        )

    def sources(group: str) -> list[Any]:
        permissions = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
        return [s for p in permissions for s in p.get("IpRanges", []) + p.get("PrefixListIds", [])]

    try:
        allow(edge, PrefixListIds=[{"PrefixListId": cloudfront}])  # 55
        allow(edge, IpRanges=[{"CidrIp": f"198.51.100.{i}/32"} for i in range(5)])  # 60: the quota, reached
        allow(edge, Ipv6Ranges=[{"CidrIpv6": "2001:db8::/64"}])  # IPv6 rules are counted apart
        with pytest.raises(ec2.exceptions.ClientError) as refused:
            allow(edge, IpRanges=[{"CidrIp": "198.51.100.200/32"}])
        assert refused.value.response["Error"]["Code"] == "RulesPerSecurityGroupLimitExceeded"
        with pytest.raises(ec2.exceptions.ClientError) as refused:
            allow(edge, PrefixListIds=[{"PrefixListId": route53}])
        assert refused.value.response["Error"]["Code"] == "RulesPerSecurityGroupLimitExceeded"
        assert len(sources(edge)) == 6  # nothing of the refused calls was added
        # Route 53's checkers (25) need a group of their own, as production gives them.
        allow(checkers, PrefixListIds=[{"PrefixListId": route53}])
        assert sources(checkers) == [{"PrefixListId": route53}]
        # Each rule naming a list counts: CloudFront's on two ports is 110. AWS refuses the whole call.
        with pytest.raises(ec2.exceptions.ClientError) as refused:
            ec2.authorize_security_group_ingress(
                GroupId=two_ports,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "PrefixListIds": [{"PrefixListId": cloudfront}],
                    }
                    for port in (80, 443)
                ],
            )
        assert refused.value.response["Error"]["Code"] == "RulesPerSecurityGroupLimitExceeded"
        assert sources(two_ports) == []
    finally:
        for group in (edge, checkers, two_ports):
            ec2.delete_security_group(GroupId=group)
        ec2.delete_vpc(VpcId=vpc)


def test_a_prefix_list_rule_keeps_its_description(aws: Callable[..., Any]) -> None:
    ec2 = aws("ec2", "us-east-1")
    cloudfront = _list_id(ec2, "com.amazonaws.global.cloudfront.origin-facing")
    vpc = ec2.create_vpc(CidrBlock="10.85.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="described", Description="described")["GroupId"]
    try:
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "PrefixListIds": [{"PrefixListId": cloudfront, "Description": "CloudFront"}],
                    "IpRanges": [{"CidrIp": "198.51.100.7/32", "Description": "operator"}],
                }
            ],
        )
        permissions = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
        assert len(permissions) == 1
        assert permissions[0]["PrefixListIds"] == [{"PrefixListId": cloudfront, "Description": "CloudFront"}]
        assert permissions[0]["IpRanges"] == [{"CidrIp": "198.51.100.7/32", "Description": "operator"}]
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
        described = {
            r.get("PrefixListId") or r.get("CidrIpv4"): r.get("Description") for r in rules["SecurityGroupRules"]
        }
        assert described[cloudfront] == "CloudFront" and described["198.51.100.7/32"] == "operator"
    finally:
        ec2.delete_security_group(GroupId=group)
        ec2.delete_vpc(VpcId=vpc)

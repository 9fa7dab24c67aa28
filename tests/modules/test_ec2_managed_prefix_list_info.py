"""plugins/modules/ec2_managed_prefix_list_info.py: its lookup against a fake EC2 (unit)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import REPO_ROOT, load_module_file

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "ec2_managed_prefix_list_info.py")

CLOUDFRONT = "com.amazonaws.global.cloudfront.origin-facing"
ROUTE53 = "com.amazonaws.us-east-1.route53-healthchecks"


def _list(name: str, pl_id: str, max_entries: int) -> dict[str, Any]:
    return {
        "PrefixListName": name,
        "PrefixListId": pl_id,
        "PrefixListArn": f"arn:aws:ec2:us-east-1:aws:prefix-list/{pl_id}",
        "OwnerId": "AWS",
        "AddressFamily": "IPv4",
        "MaxEntries": max_entries,
        "State": "create-complete",
    }


class FakeEC2:
    """DescribeManagedPrefixLists over pages of one list each, honouring the prefix-list-name filter."""

    def __init__(self, lists: list[dict[str, Any]]) -> None:
        self.lists = lists
        self.calls: list[dict[str, Any]] = []

    def describe_managed_prefix_lists(self, aws_retry: bool, Filters: list[dict[str, Any]], NextToken: str = "0"):
        self.calls.append({"Filters": Filters, "NextToken": NextToken})
        (name_filter,) = Filters
        assert name_filter["Name"] == "prefix-list-name"
        matching = [pl for pl in self.lists if pl["PrefixListName"] in name_filter["Values"]]
        index = int(NextToken)
        page: dict[str, Any] = {"PrefixLists": matching[index : index + 1]}
        if index + 1 < len(matching):
            page["NextToken"] = str(index + 1)
        return page


def test_finds_each_list_across_pages_in_the_order_asked() -> None:
    ec2 = FakeEC2([_list(CLOUDFRONT, "pl-3b927c52", 55), _list("other", "pl-0", 1), _list(ROUTE53, "pl-0123", 25)])
    result = mod.find_prefix_lists(ec2, [ROUTE53, CLOUDFRONT], "us-east-1")
    assert result["ids"] == {ROUTE53: "pl-0123", CLOUDFRONT: "pl-3b927c52"}
    assert [pl["name"] for pl in result["prefix_lists"]] == [ROUTE53, CLOUDFRONT]
    assert [pl["max_entries"] for pl in result["prefix_lists"]] == [25, 55]
    assert result["prefix_lists"][0]["owner_id"] == "AWS"
    assert len(ec2.calls) == 2  # two matching lists, one per page


def test_a_name_asked_twice_is_returned_once() -> None:
    ec2 = FakeEC2([_list(CLOUDFRONT, "pl-3b927c52", 55)])
    result = mod.find_prefix_lists(ec2, [CLOUDFRONT, CLOUDFRONT], "us-east-1")
    assert [pl["id"] for pl in result["prefix_lists"]] == ["pl-3b927c52"]


def test_names_every_missing_list_and_the_region() -> None:
    ec2 = FakeEC2([_list(CLOUDFRONT, "pl-3b927c52", 55)])
    with pytest.raises(mod.PrefixListNotFound) as raised:
        mod.find_prefix_lists(ec2, [CLOUDFRONT, ROUTE53, "com.amazonaws.global.cloudfront.orign-facing"], "us-west-2")
    message = str(raised.value)
    assert ROUTE53 in message and "orign-facing" in message and "us-west-2" in message
    assert "pl-3b927c52" not in message

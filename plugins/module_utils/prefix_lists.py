# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding managed prefix lists by name (DescribeManagedPrefixLists), for the modules that read them.

plugins/modules/ec2_managed_prefix_list_info.py returns them; plugins/modules/ec2_vpc_network_info.py reads them
with the rest of a network, whose load balancer's security groups admit them.
"""

from __future__ import annotations


class PrefixListNotFound(Exception):
    pass


def describe(prefix_list):
    return {
        "name": prefix_list["PrefixListName"],
        "id": prefix_list["PrefixListId"],
        "arn": prefix_list.get("PrefixListArn", ""),
        "owner_id": prefix_list.get("OwnerId", ""),
        "address_family": prefix_list.get("AddressFamily", ""),
        "max_entries": int(prefix_list.get("MaxEntries") or 0),
        "state": prefix_list.get("State", ""),
    }


def find_prefix_lists(client, names, region):
    """The named lists in the order asked; PrefixListNotFound names every one the region lacks."""
    found = {}
    request = {"Filters": [{"Name": "prefix-list-name", "Values": list(names)}]}
    while True:
        page = client.describe_managed_prefix_lists(aws_retry=True, **request)
        for prefix_list in page.get("PrefixLists", []):
            found.setdefault(prefix_list["PrefixListName"], describe(prefix_list))
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    missing = [name for name in names if name not in found]
    if missing:
        raise PrefixListNotFound(
            f"no managed prefix list named {', '.join(missing)} in {region}: check the name (AWS-managed lists are "
            "com.amazonaws.global.cloudfront.origin-facing and com.amazonaws.<region>.route53-healthchecks, for example)"
        )
    lists = [found[name] for name in dict.fromkeys(names)]
    return {"ids": {pl["name"]: pl["id"] for pl in lists}, "prefix_lists": lists}

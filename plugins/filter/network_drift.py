"""network_drift: how a VPC as it stands (hawa.platform.ec2_vpc_network_info) differs from the networking role's design.

The role reads its network in one task and compares it here; only when this names a difference does it run the
collection's modules (amazon.aws.ec2_vpc_net, ec2_vpc_subnet, ... ec2_security_group), which do the changing, as
every run did before. So a difference this misses is a drift a re-run would leave in place: each check follows the
module that converges the resource, with its defaults (purge_tags, purge_routes, purge_subnets, purge_rules), and
when in doubt names a difference, which costs a full run and nothing else.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

Rule = tuple[str, Any, Any, str, str, Any]


def _own_tags(tags: dict[str, str] | None) -> dict[str, str]:
    """Tags a module's purge_tags manages: AWS's own (aws:...) are neither set nor purged."""
    return {key: value for key, value in (tags or {}).items() if not key.startswith("aws:")}


def _tag_drift(label: str, actual: dict[str, str] | None, wanted: dict[str, str]) -> list[str]:
    have, want = _own_tags(actual), {key: str(value) for key, value in wanted.items()}
    if have == want:
        return []
    changed = sorted(key for key in set(have) | set(want) if have.get(key) != want.get(key))
    return [f"{label}: tags differ ({', '.join(changed)})"]


def _ports(ports: Any) -> list[tuple[int, int]]:
    spans = []
    for port in ports if isinstance(ports, list) else [ports]:
        if isinstance(port, str) and "-" in port:
            low, high = port.split("-", 1)
            spans.append((int(low), int(high)))
        else:
            spans.append((int(port), int(port)))
    return spans


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _wanted_rules(rules: list[dict[str, Any]], group_ids: dict[str, str]) -> set[Rule] | None:
    """A module's `rules` as the set of permissions AWS keeps, or None when a group it names does not exist yet."""
    wanted: set[Rule] = set()
    for rule in rules:
        proto = str(rule.get("proto", "tcp"))
        proto = "-1" if proto in ("-1", "all") else proto
        spans = [(None, None)] if proto == "-1" else _ports(rule.get("ports", rule.get("from_port")))
        targets = [("cidr", cidr) for cidr in _as_list(rule.get("cidr_ip"))]
        targets += [("prefix", prefix) for prefix in _as_list(rule.get("ip_prefix"))]
        for name in _as_list(rule.get("group_name")):
            if name not in group_ids:
                return None
            targets.append(("group", group_ids[name]))
        for low, high in spans:
            for kind, value in targets:
                wanted.add((proto, low, high, kind, str(value), rule.get("rule_desc")))
    return wanted


def _actual_rules(permissions: list[dict[str, Any]]) -> set[Rule]:
    rules: set[Rule] = set()
    for permission in permissions:
        proto = str(permission.get("ip_protocol"))
        low, high = (None, None) if proto == "-1" else (permission.get("from_port"), permission.get("to_port"))
        for item in permission.get("ip_ranges", []):
            rules.add((proto, low, high, "cidr", item["cidr_ip"], item.get("description")))
        for item in permission.get("ipv6_ranges", []):
            rules.add((proto, low, high, "cidr6", item["cidr_ipv6"], item.get("description")))
        for item in permission.get("prefix_list_ids", []):
            rules.add((proto, low, high, "prefix", item["prefix_list_id"], item.get("description")))
        for item in permission.get("user_id_group_pairs", []):
            rules.add((proto, low, high, "group", item["group_id"], item.get("description")))
    return rules


# ec2_security_group without rules_egress: the VPC default, all traffic out, and nothing else (purge_rules_egress).
_ALL_OUT: set[Rule] = {("-1", None, None, "cidr", "0.0.0.0/0", None)}


def _group_drift(group: dict[str, Any], actual: dict[str, Any] | None, group_ids: dict[str, str]) -> list[str]:
    label = f"security group {group['name']}"
    if actual is None:
        return [f"{label}: missing"]
    drift = []
    if actual.get("description") != group["description"]:
        drift.append(f"{label}: description differs")
    ingress = _wanted_rules(group.get("ingress", []), group_ids)
    if ingress is None or _actual_rules(actual.get("ip_permissions", [])) != ingress:
        drift.append(f"{label}: inbound rules differ")
    egress = _ALL_OUT if group.get("egress") is None else _wanted_rules(group["egress"], group_ids)
    if egress is None or _actual_rules(actual.get("ip_permissions_egress", [])) != egress:
        drift.append(f"{label}: outbound rules differ")
    if group.get("tags") is not None:
        drift += _tag_drift(label, actual.get("tags"), group["tags"])
    return drift


def _one(items: list[dict[str, Any]], label: str, drift: list[str]) -> dict[str, Any] | None:
    if len(items) == 1:
        return items[0]
    drift.append(f"{label}: {'missing' if not items else f'{len(items)} found where one belongs'}")
    return None


def network_drift(design: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """The differences between the design and the network as it stands, one line each; [] when they match.

    design: what roles/networking/vars/main.yml's _networking_design describes (names, CIDRs, tags, routes, rules).
    state: hawa.platform.ec2_vpc_network_info's result.
    """
    try:
        return _drift(design, state)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"network_drift: the design or the state is malformed ({exc!r})") from exc


def _drift(design: dict[str, Any], state: dict[str, Any]) -> list[str]:
    drift: list[str] = []
    vpc = _one(state.get("vpcs", []), f"VPC {design['vpc']['name']} ({design['vpc']['cidr']})", drift)
    if vpc is None:
        return drift
    label = f"VPC {design['vpc']['name']}"
    if not (vpc.get("enable_dns_support") and vpc.get("enable_dns_hostnames")):
        drift.append(f"{label}: DNS support or DNS hostnames off")
    drift += _tag_drift(label, vpc.get("tags"), design["vpc"]["tags"])

    subnets_by_cidr = {subnet["cidr_block"]: subnet for subnet in state.get("subnets", [])}
    subnet_ids = {}
    for subnet in design["subnets"]:
        label = f"subnet {subnet['name']} ({subnet['cidr']})"
        actual = subnets_by_cidr.get(subnet["cidr"])
        if actual is None:
            drift.append(f"{label}: missing")
            continue
        subnet_ids[subnet["name"]] = actual["subnet_id"]
        if actual.get("availability_zone") != subnet["az"]:
            drift.append(f"{label}: in {actual.get('availability_zone')}, not {subnet['az']}")
        if actual.get("map_public_ip_on_launch"):
            drift.append(f"{label}: assigns public addresses on launch")
        drift += _tag_drift(label, actual.get("tags"), subnet["tags"])

    igw = _one(state.get("internet_gateways", []), "internet gateway", drift)
    if igw is not None:
        drift += _tag_drift("internet gateway", igw.get("tags"), design["internet_gateway"]["tags"])

    nat_ids = {}
    for nat in design["nat_gateways"]:
        label = f"NAT gateway in {nat['subnet']}"
        found = [
            gateway
            for gateway in state.get("nat_gateways", [])
            if gateway.get("subnet_id") == subnet_ids.get(nat["subnet"]) and gateway.get("state") == "available"
        ]
        if not found:
            drift.append(f"{label}: missing")
            continue
        nat_ids[nat["subnet"]] = found[0]["nat_gateway_id"]
        drift += _tag_drift(label, found[0].get("tags"), nat["tags"])

    tables_by_name: dict[str, list[dict[str, Any]]] = {}
    for table in state.get("route_tables", []):
        tables_by_name.setdefault(table.get("tags", {}).get("Name", ""), []).append(table)
    table_ids = {}
    for table in design["route_tables"]:
        label = f"route table {table['name']}"
        actual = _one(tables_by_name.get(table["name"], []), label, drift)
        if actual is None:
            continue
        table_ids[table["name"]] = actual["route_table_id"]
        target = (
            ("gateway_id", igw["internet_gateway_id"] if igw else None)
            if "nat_gateway_subnet" not in table
            else ("nat_gateway_id", nat_ids.get(table["nat_gateway_subnet"]))
        )
        # ec2_vpc_route_table keeps routes others made (local, propagated, an endpoint's prefix lists) and
        # purges the CIDR routes made by CreateRoute that it was not given.
        routes = {
            (route["destination_cidr_block"], route.get("gateway_id"), route.get("nat_gateway_id"))
            for route in actual.get("routes", [])
            if route.get("destination_cidr_block") and route.get("origin") == "CreateRoute"
        }
        wanted = {("0.0.0.0/0", *((target[1], None) if target[0] == "gateway_id" else (None, target[1])))}
        if target[1] is None or routes != wanted:
            drift.append(f"{label}: routes differ")
        associated = {
            association.get("subnet_id")
            for association in actual.get("associations", [])
            if association.get("subnet_id") and not association.get("main")
        }
        if associated != {subnet_ids.get(name) for name in table["subnets"]}:
            drift.append(f"{label}: subnet associations differ")
        drift += _tag_drift(label, actual.get("tags"), table["tags"])

    endpoint = design.get("s3_endpoint")
    if endpoint:
        label = f"S3 gateway endpoint {endpoint['service']}"
        wanted_tables = sorted(table_ids.get(name, "") for name in endpoint["route_tables"])
        # ec2_vpc_endpoint matches an endpoint by service and its exact set of route tables.
        found = [
            candidate
            for candidate in state.get("vpc_endpoints", [])
            if candidate.get("service_name") == endpoint["service"]
            and sorted(candidate.get("route_table_ids", [])) == wanted_tables
        ]
        if not found:
            drift.append(f"{label}: missing or on other route tables")
        else:
            drift += _tag_drift(label, found[0].get("tags"), endpoint["tags"])

    groups_by_name = {group["group_name"]: group for group in state.get("security_groups", [])}
    group_ids = {name: group["group_id"] for name, group in groups_by_name.items()}
    for group in design["security_groups"]:
        drift += _group_drift(group, groups_by_name.get(group["name"]), group_ids)
    return drift


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"network_drift": network_drift}

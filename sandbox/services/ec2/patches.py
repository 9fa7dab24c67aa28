"""EC2: where the sandbox corrects moto's EC2 API (moto fidelity).

- ``NAT gateway tags``: DescribeTags reports NAT gateways with the resource type ``natgateway``, as AWS
  does. moto reports ``nat-gateway``, so a ``resource-type=natgateway`` filter (which
  amazon.aws.ec2_vpc_nat_gateway uses to read a gateway's tags) finds nothing and the module re-applies
  the tags on every run: changed=true forever. Fixing the emulator, not the playbook, keeps the playbook
  exactly what runs against real AWS.
- ``AWS-managed prefix lists``: every region has ``com.amazonaws.global.cloudfront.origin-facing``
  (MaxEntries 55, its weight in a security group) and ``com.amazonaws.<region>.route53-healthchecks``
  (MaxEntries 25), owner ``AWS``, IPv4, as DescribeManagedPrefixLists and GetManagedPrefixListEntries
  show them on AWS. Their entries are the loopback addresses the sandbox's edge and Route 53 checker
  connect from (sandbox/config.py), so that a security group rule naming the list admits exactly them
  at the sandbox's ALB listeners (sandbox/services/elbv2/access.py). moto made the CloudFront list with
  AWS's public CIDRs and no MaxEntries or Version, and had no Route 53 list.
- ``prefix list weights``: a rule that references a prefix list counts as the list's MaxEntries rules
  against the 60 inbound (and 60 outbound) rules of a VPC security group, IPv4 and IPv6 rules counted
  apart, as the VPC quotas page documents, for each rule that names the list (one per port range);
  AuthorizeSecurityGroupIngress / Egress past it fail with ``RulesPerSecurityGroupLimitExceeded`` and add
  none of the call's permissions. So CloudFront's list (55) and Route 53's (25)
  cannot share one group, on AWS or here. moto counted a prefix-list rule as one.
- ``prefix list rule descriptions``: a rule's ``PrefixListIds[].Description`` is kept and shown by
  DescribeSecurityGroups (``IpPermissions[].PrefixListIds[]``) and DescribeSecurityGroupRules
  (``Description``), as for CIDR rules. moto dropped it, so amazon.aws.ec2_security_group's second run
  over a rule with ``ip_prefix`` and ``rule_desc`` tried to update the description and failed.
"""

from __future__ import annotations

from typing import Any

from sandbox import config, patches

AWS_RESOURCE_TYPE = "natgateway"

CLOUDFRONT_ORIGIN_FACING = "com.amazonaws.global.cloudfront.origin-facing"
CLOUDFRONT_WEIGHT = 55
ROUTE53_HEALTHCHECKS_WEIGHT = 25


def route53_healthchecks(region: str) -> str:
    return f"com.amazonaws.{region}.route53-healthchecks"


def _nat_gateway_tags() -> None:
    from moto.ec2 import utils

    # tags.py imported this dict object itself, so mutate it in place rather than rebinding.
    prefix = utils.EC2_RESOURCE_TO_PREFIX["nat-gateway"]
    patches.patch_item(
        utils.EC2_PREFIX_TO_RESOURCE,
        prefix,
        AWS_RESOURCE_TYPE,
        where="moto.ec2.utils.EC2_PREFIX_TO_RESOURCE",
        owner=__name__,
    )


# -- AWS-managed prefix lists --------------------------------------------------------------------------


def _managed_lists(region: str) -> dict[str, tuple[str, int]]:
    """name -> (the one source address it holds, MaxEntries)."""
    return {
        CLOUDFRONT_ORIGIN_FACING: (config.EDGE_SOURCE, CLOUDFRONT_WEIGHT),
        route53_healthchecks(region): (config.ROUTE53_CHECKER_SOURCE, ROUTE53_HEALTHCHECKS_WEIGHT),
    }


def sandbox_managed_lists(backend: Any) -> None:
    """Make one regional EC2 backend's CloudFront and Route 53 lists the sandbox's (idempotent)."""
    region = backend.region_name
    by_name = {pl.prefix_list_name: pl for pl in list(backend.managed_prefix_lists.values())}
    for name, (source, weight) in _managed_lists(region).items():
        pl = by_name.get(name)
        if pl is None:
            pl = backend.create_managed_prefix_list(
                address_family="IPv4", entry=[], prefix_list_name=name, owner_id="AWS"
            )
        pl.address_family = "IPv4"
        pl.max_entries = weight
        pl.version = 1
        pl.entries = {1: [{"Cidr": f"{source}/32"}]}
        # AWS-managed lists' ARNs name the owner "aws": arn:aws:ec2:us-east-1:aws:prefix-list/pl-3b927c52.
        pl.prefix_list_arn = f"arn:aws:ec2:{region}:aws:prefix-list/{pl.id}"


def _managed_prefix_lists() -> None:
    from moto.ec2 import ec2_backends
    from moto.ec2.models.managed_prefixes import ManagedPrefixListBackend

    @patches.wraps(ManagedPrefixListBackend, "create_default_pls", owner=__name__)
    def create_default_pls(original: Any, self: Any) -> None:
        original(self)
        sandbox_managed_lists(self)

    # Backends made before the patch (none in a fresh server) get the lists now.
    for regional in list(ec2_backends.values()):
        for backend in list(regional.values()):
            sandbox_managed_lists(backend)


# -- prefix list weights --------------------------------------------------------------------------------

RULES_PER_VPC_GROUP = 60  # per direction and address family (the default quota)


def _rule_weight(backend: Any, rule: Any) -> tuple[str, int]:
    """(address family, how many rules it counts as)."""
    if rule.prefix_list_id:
        pl = backend.managed_prefix_lists.get(rule.prefix_list_id)
        if pl is None:
            return "IPv4", 1
        try:
            weight = int(pl.max_entries) if pl.max_entries is not None else 1
        except (TypeError, ValueError):
            weight = 1
        return pl.address_family or "IPv4", weight
    return ("IPv6" if rule.ip_range.get("CidrIpv6") else "IPv4"), 1


def over_quota(backend: Any, group: Any, rules: list[Any]) -> bool:
    if not group.vpc_id:
        return False
    totals: dict[str, int] = {}
    for rule in rules:
        family, weight = _rule_weight(backend, rule)
        totals[family] = totals.get(family, 0) + weight
    return any(total > RULES_PER_VPC_GROUP for total in totals.values())


def _prefix_list_weights() -> None:
    from moto.ec2.exceptions import RulesPerSecurityGroupLimitExceededError
    from moto.ec2.responses.security_groups import SecurityGroups

    def weighed(action: str, rules_of: str) -> None:
        # On the API action, not the backend method: one call may carry several IpPermissions (moto adds
        # them one by one), and AWS refuses the whole call, adding none of them.
        @patches.wraps(SecurityGroups, action, owner=__name__)
        def authorize(original: Any, self: Any) -> Any:
            name_or_id = self._get_param("GroupId") or self._get_param("GroupName")
            group = self.ec2_backend.get_security_group_by_name_or_id(name_or_id) if name_or_id else None
            before = list(getattr(group, rules_of)) if group is not None else []
            result = original(self)
            if group is not None and over_quota(self.ec2_backend, group, getattr(group, rules_of)):
                getattr(group, rules_of)[:] = before
                raise RulesPerSecurityGroupLimitExceededError()
            return result

    weighed("authorize_security_group_ingress", "ingress_rules")
    weighed("authorize_security_group_egress", "egress_rules")


# -- prefix list rule descriptions ----------------------------------------------------------------------


def _prefix_list_descriptions() -> None:
    import inspect

    from moto.ec2.models.security_groups import GroupedSecurityRuleView, SecurityGroup, SecurityGroupRule

    signature = inspect.signature(SecurityGroupRule.__init__)

    @patches.wraps(SecurityGroupRule, "__init__", owner=__name__)
    def init(original: Any, self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        given = signature.bind(self, *args, **kwargs).arguments.get("prefix_list_id")
        self.prefix_list_description = given.get("Description") if isinstance(given, dict) else None

    def description(self: Any) -> str | None:
        if self.ip_range:
            return self.ip_range.get("Description")
        return getattr(self, "prefix_list_description", None)

    patches.patch(SecurityGroupRule, "description", property(description), owner=__name__)

    def flattened_rules(self: Any, rules: list[Any]) -> list[Any]:
        """moto's grouping of rules by (ports, protocol) into IpPermissions, with prefix-list descriptions."""
        views: dict[tuple[Any, Any, Any], Any] = {}
        for rule in rules:
            key = (rule.from_port, rule.to_port, rule.ip_protocol)
            view = views.get(key)
            if view is None:
                view = views[key] = GroupedSecurityRuleView(rule.from_port, rule.to_port, rule.ip_protocol)
            if rule.ip_range:
                view.all_ip_ranges.append(rule.ip_range)
            if rule.source_group:
                view.source_groups.append(rule.source_group)
            if rule.prefix_list_id:
                entry = {"PrefixListId": rule.prefix_list_id}
                if getattr(rule, "prefix_list_description", None):
                    entry["Description"] = rule.prefix_list_description
                view.prefix_list_ids.append(entry)
        return list(views.values())

    patches.patch(SecurityGroup, "_flattened_rules", flattened_rules, owner=__name__)


def install(_app: Any) -> None:
    _nat_gateway_tags()
    _managed_prefix_lists()
    _prefix_list_weights()
    _prefix_list_descriptions()

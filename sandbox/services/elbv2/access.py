"""Who may connect to an ALB listener: the load balancer's security groups, as moto records them now.

A client connection to a listener on port P is admitted when an ingress rule of one of the load
balancer's security groups admits its peer address: protocol ``tcp`` with FromPort <= P <= ToPort, or
protocol ``-1`` (all); and a source that is an ``IpRanges`` CIDR holding the peer, or a
``PrefixListIds`` list whose current entries hold it. ``UserIdGroupPairs`` (another group's members)
never match: no client of the sandbox is a member of a security group. A load balancer with no security
groups has its VPC's default group, as on AWS (whose rule admits only its own members: no client).

The decision is read from moto's EC2 and ELBv2 backends on the asyncio loop, at accept, and kept for
``CACHE_S`` per (load balancer, port, peer address): an accept costs a dict lookup, and a change to the
rules (Authorize/RevokeSecurityGroupIngress, SetSecurityGroups, ModifyManagedPrefixList) takes effect
within that time, as AWS applies it at once. The check sees only new connections: an established one
stays, as a security group's connection tracking keeps it on AWS.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

log = logging.getLogger("sandbox.alb")

CACHE_S = 0.5


def _tcp_port_matches(rule: Any, port: int) -> bool:
    if rule.ip_protocol == "-1":
        return True
    if rule.ip_protocol != "tcp" or rule.from_port is None or rule.to_port is None:
        return False
    return int(rule.from_port) <= port <= int(rule.to_port)


def _in_cidr(peer: ipaddress.IPv4Address | ipaddress.IPv6Address, cidr: str | None) -> bool:
    if not cidr:
        return False
    try:
        return peer in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _prefix_list_cidrs(ec2: Any, prefix_list_id: str) -> list[str]:
    pl = ec2.managed_prefix_lists.get(prefix_list_id)
    if pl is None or not pl.entries or pl.state == "delete-complete":
        return []
    entries = pl.entries.get(pl.version) if pl.version in pl.entries else list(pl.entries.values())[-1]
    return [entry.get("Cidr", "") for entry in entries or []]


def security_groups(ec2: Any, balancer: Any) -> list[Any]:
    """The load balancer's security groups (moto's objects); its VPC's default group when it names none."""
    ids = list(balancer.security_groups or [])
    if not ids:
        default = ec2.get_default_security_group(balancer.vpc_id) if balancer.vpc_id else None
        return [default] if default is not None else []
    groups = []
    for group_id in ids:
        group = ec2.get_security_group_from_id(group_id)
        if group is not None:
            groups.append(group)
    return groups


def admitted(ec2: Any, balancer: Any, port: int, peer_ip: str) -> bool:
    """Does an ingress rule of the balancer's security groups admit peer_ip on the listener's port?"""
    try:
        peer = ipaddress.ip_address(peer_ip)
    except ValueError:
        return False
    for group in security_groups(ec2, balancer):
        for rule in list(group.ingress_rules):
            if not _tcp_port_matches(rule, port):
                continue
            if _in_cidr(peer, rule.ip_range.get("CidrIp") or rule.ip_range.get("CidrIpv6")):
                return True
            if rule.prefix_list_id and any(
                _in_cidr(peer, cidr) for cidr in _prefix_list_cidrs(ec2, rule.prefix_list_id)
            ):
                return True
    return False


class Gate:
    """The listeners' admission check against moto, with a short cache; runs on the loop only."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, str], tuple[float, bool]] = {}
        self._refused_logged: set[tuple[str, int, str]] = set()

    def __call__(self, scope: tuple[str, str], balancer_arn: str, port: int, peer_ip: str) -> bool:
        key = (balancer_arn, port, peer_ip)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        verdict = self._decide(scope, balancer_arn, port, peer_ip)
        if len(self._cache) > 4096:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        self._cache[key] = (now + CACHE_S, verdict)
        if verdict:
            self._refused_logged.discard(key)
        elif key not in self._refused_logged:
            self._refused_logged.add(key)
            log.info(
                "load balancer %s:%d: no ingress rule of its security groups admits %s (connection held unanswered,"
                " as AWS drops it)",
                balancer_arn.rsplit("/", 2)[-2] if balancer_arn.count("/") >= 2 else balancer_arn,
                port,
                peer_ip,
            )
        return verdict

    def forget(self) -> None:
        self._cache.clear()
        self._refused_logged.clear()

    @staticmethod
    def _decide(scope: tuple[str, str], balancer_arn: str, port: int, peer_ip: str) -> bool:
        from moto.ec2 import ec2_backends
        from moto.elbv2.models import elbv2_backends

        account, region = scope
        for attempt in range(3):
            try:
                balancer = elbv2_backends[account][region].load_balancers.get(balancer_arn)
                if balancer is None:
                    return False
                return admitted(ec2_backends[account][region], balancer, port, peer_ip)
            except RuntimeError:  # an API thread changed a moto dict mid-read: read again
                if attempt == 2:
                    log.warning(
                        "load balancer %s: could not read its security groups; refusing %s", balancer_arn, peer_ip
                    )
        return False

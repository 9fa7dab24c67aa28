"""Address arithmetic for the networking role, with no dependency beyond the standard library.

ansible.utils' ipsubnet needs the netaddr package; Python's ipaddress does all we need.
"""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError


def cidr_subnet(prefix: str, newbits: int, netnum: int) -> str:
    """Terraform's cidrsubnet(): the netnum-th subnet of prefix with newbits more prefix bits.

    cidr_subnet('10.10.0.0/16', 4, 2) == '10.10.32.0/20'
    """
    try:
        network = ipaddress.ip_network(prefix, strict=True)
    except ValueError as exc:
        raise AnsibleFilterError(
            f"cidr_subnet: {prefix!r} is not a network in CIDR form (e.g. 10.10.0.0/16): {exc}"
        ) from exc
    new_prefix = network.prefixlen + int(newbits)
    if new_prefix > network.max_prefixlen:
        raise AnsibleFilterError(f"cidr_subnet: {prefix} has no room for {newbits} more prefix bits")
    count = 2 ** int(newbits)
    if not 0 <= int(netnum) < count:
        raise AnsibleFilterError(
            f"cidr_subnet: netnum {netnum} is outside 0..{count - 1} for {prefix} + {newbits} bits"
        )
    size = 2 ** (network.max_prefixlen - new_prefix)
    first = int(network.network_address) + int(netnum) * size
    return str(ipaddress.ip_network((first, new_prefix)))


def cidrs_overlap(first: str, second: str) -> bool:
    """True when two CIDR blocks share any address."""
    try:
        return ipaddress.ip_network(first, strict=False).overlaps(ipaddress.ip_network(second, strict=False))
    except ValueError as exc:
        raise AnsibleFilterError(f"cidrs_overlap: {exc}") from exc


def is_cidr(value: object) -> bool:
    """True for a valid IPv4 network in CIDR form with host bits clear (10.10.0.0/16)."""
    if not isinstance(value, str) or "/" not in value:
        return False
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return True


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"cidr_subnet": cidr_subnet, "cidrs_overlap": cidrs_overlap, "is_cidr": is_cidr}

"""DescribeTags reports NAT gateways with the resource type ``natgateway``, as AWS does.

moto reports ``nat-gateway``, so a ``resource-type=natgateway`` filter (which
amazon.aws.ec2_vpc_nat_gateway uses to read a gateway's tags) finds nothing and the module
re-applies the tags on every run: changed=true forever. Fixing the emulator, not the
playbook, keeps the playbook exactly what runs against real AWS.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches

AWS_RESOURCE_TYPE = "natgateway"


def install(_app: Any) -> None:
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

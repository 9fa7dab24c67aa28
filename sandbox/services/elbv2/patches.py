"""DescribeLoadBalancerAttributes lists every attribute of an Application Load Balancer, as AWS does.

AWS answers the full set for an ALB, defaults included (idle timeout 60 s, HTTP/2 on, desync
mitigation "defensive", ...). moto leaves several out ("commented out for TF compatibility"), so
amazon.aws.elb_application_lb, which reads e.g. ``idle_timeout.timeout_seconds`` to compare it
with the wanted value, fails with a KeyError. The defaults below are AWS's documented ones for an
ALB; a value set with ModifyLoadBalancerAttributes still wins.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches

ALB_DEFAULT_ATTRIBUTES = {
    "access_logs.s3.enabled": "false",
    "access_logs.s3.bucket": "",
    "access_logs.s3.prefix": "",
    "connection_logs.s3.enabled": "false",
    "connection_logs.s3.bucket": "",
    "connection_logs.s3.prefix": "",
    "client_keep_alive.seconds": "3600",
    "deletion_protection.enabled": "false",
    "idle_timeout.timeout_seconds": "60",
    # ALBs always balance across zones; the attribute reads true.
    "load_balancing.cross_zone.enabled": "true",
    "routing.http.desync_mitigation_mode": "defensive",
    "routing.http.drop_invalid_header_fields.enabled": "false",
    "routing.http.preserve_host_header.enabled": "false",
    "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": "false",
    "routing.http.xff_client_port.enabled": "false",
    "routing.http.xff_header_processing.mode": "append",
    "routing.http2.enabled": "true",
    "waf.fail_open.enabled": "false",
    "zonal_shift.config.enabled": "false",
}


def install(_app: Any) -> None:
    from moto.elbv2.models import FakeLoadBalancer

    original_init = FakeLoadBalancer.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.type == "application":
            self.attrs = {**ALB_DEFAULT_ATTRIBUTES, **self.attrs}
            self.attrs["load_balancing.cross_zone.enabled"] = "true"

    patches.patch(FakeLoadBalancer, "__init__", __init__, owner=__name__)

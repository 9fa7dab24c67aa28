"""An ALB's security groups are enforced at its listeners (sandbox/services/elbv2/access.py), as on AWS.

The ALB here is what production builds: one security group admitting CloudFront's origin-facing prefix
list and one admitting Route 53's health checkers' list. From 127.0.0.1 (a test, an operator) it gives
no answer at all, as AWS drops the SYN; the edge (connecting from config.EDGE_SOURCE) and the Route 53
checker (config.ROUTE53_CHECKER_SOURCE) get through; a rule for 127.0.0.1/32 lets the test in at once,
and revoking it shuts the door again.
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SandboxConfig
from tests.support import sandbox_control as control

REGION = "us-east-1"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
TARGET_IP = "10.83.0.10"
NO_ANSWER_S = 1.0  # a refused client's own timeout


class _App(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"app"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def _wait(what: str, predicate: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.1)


def _prefix_list(ec2: Any, name: str) -> str:
    found = ec2.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])["PrefixLists"]
    return str(found[0]["PrefixListId"])


def _group(ec2: Any, vpc: str, name: str, prefix_list: str) -> str:
    group = ec2.create_security_group(VpcId=vpc, GroupName=name, Description=name)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "PrefixListIds": [{"PrefixListId": prefix_list}]}
        ],
    )
    return str(group)


def _client(sandbox: SandboxConfig, service: str, region: str = REGION) -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=sandbox.endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


class Site:
    def __init__(self, sandbox: SandboxConfig) -> None:
        self.sandbox = sandbox
        self.ec2, self.elb, self.cloudfront = (_client(sandbox, name) for name in ("ec2", "elbv2", "cloudfront"))
        self.vpc = ""
        self.subnets: list[str] = []
        self.cloudfront_group = self.route53_group = ""
        self.lb_arn = self.dns = self.dist_domain = ""

    def local_port(self, lb_arn: str | None = None) -> int:
        for lb in control(self.sandbox, "GET", "alb")["load_balancers"]:
            if lb["arn"] == (lb_arn or self.lb_arn):
                return int(lb["listeners"][0]["local"].rsplit(":", 1)[1])
        raise AssertionError("the load balancer has no listener")

    def direct(self, lb_arn: str | None = None) -> int | None:
        """GET / straight to the listener from 127.0.0.1: the status, or None when nothing answers."""
        conn = http.client.HTTPConnection("127.0.0.1", self.local_port(lb_arn), timeout=NO_ANSWER_S)
        try:
            conn.request("GET", "/", headers={"Host": self.dns})
            return conn.getresponse().status
        except TimeoutError:
            return None
        finally:
            conn.close()

    def through_edge(self) -> tuple[int, bytes]:
        port = int(self.sandbox.edge.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/hello", headers={"Host": self.dist_domain})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def loopback_rule(self, action: str) -> None:
        permission = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}
        getattr(self.ec2, f"{action}_security_group_ingress")(GroupId=self.cloudfront_group, IpPermissions=[permission])


@pytest.fixture(scope="module")
def site(sandbox: SandboxConfig) -> Iterator[Site]:
    s = Site(sandbox)
    suffix = uuid.uuid4().hex[:8]
    app = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    control(sandbox, "POST", "names", {"name": TARGET_IP, "port": 8000, "local_port": app.server_address[1]})
    s.vpc = s.ec2.create_vpc(CidrBlock="10.83.0.0/16")["Vpc"]["VpcId"]
    s.subnets = [
        s.ec2.create_subnet(VpcId=s.vpc, CidrBlock=f"10.83.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    s.cloudfront_group = _group(
        s.ec2, s.vpc, "alb-cloudfront", _prefix_list(s.ec2, "com.amazonaws.global.cloudfront.origin-facing")
    )
    s.route53_group = _group(
        s.ec2, s.vpc, "alb-route53", _prefix_list(s.ec2, f"com.amazonaws.{REGION}.route53-healthchecks")
    )
    lb = s.elb.create_load_balancer(
        Name=f"sg-{suffix}", Subnets=s.subnets, SecurityGroups=[s.cloudfront_group, s.route53_group]
    )["LoadBalancers"][0]
    s.lb_arn, s.dns = lb["LoadBalancerArn"], lb["DNSName"]
    group = s.elb.create_target_group(
        Name=f"sg-{suffix}",
        Protocol="HTTP",
        Port=8000,
        VpcId=s.vpc,
        TargetType="ip",
        HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5,
        HealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    s.elb.register_targets(TargetGroupArn=group, Targets=[{"Id": TARGET_IP, "Port": 8000}])
    s.elb.create_listener(
        LoadBalancerArn=s.lb_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    dist = s.cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": f"sg-{suffix}",
            "Comment": f"security groups {suffix}",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "alb",
                        "DomainName": s.dns,
                        "CustomOriginConfig": {
                            "HTTPPort": 80,
                            "HTTPSPort": 443,
                            "OriginProtocolPolicy": "http-only",
                            "OriginReadTimeout": 5,
                        },
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "alb",
                "ViewerProtocolPolicy": "allow-all",
                "CachePolicyId": CACHING_DISABLED,
            },
        }
    )["Distribution"]
    s.dist_domain = dist["DomainName"]
    # The ALB's own health checks reach the target whatever the ALB's security groups say.
    _wait(
        "the target healthy",
        lambda: (
            s.elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"][0]["TargetHealth"]["State"]
            == "healthy"
        ),
    )
    yield s
    current = s.cloudfront.get_distribution_config(Id=dist["Id"])
    disabled = {**current["DistributionConfig"], "Enabled": False}
    etag = s.cloudfront.update_distribution(Id=dist["Id"], IfMatch=current["ETag"], DistributionConfig=disabled)["ETag"]
    s.cloudfront.delete_distribution(Id=dist["Id"], IfMatch=etag)
    s.elb.delete_load_balancer(LoadBalancerArn=s.lb_arn)
    s.elb.delete_target_group(TargetGroupArn=group)
    control(sandbox, "POST", "names", {"name": TARGET_IP, "port": 8000, "local_port": None})
    app.shutdown()


def test_only_the_edge_gets_an_answer(site: Site) -> None:
    started = time.monotonic()
    assert site.direct() is None  # no answer at all, not a refusal or an error page
    assert time.monotonic() - started >= NO_ANSWER_S * 0.9
    assert site.through_edge() == (200, b"app")
    # The held connection is closed once the client gives up (it is not kept for the full cap).
    _wait(
        "the held connection closed",
        lambda: all(
            listener["held"] == 0
            for lb in control(site.sandbox, "GET", "alb")["load_balancers"]
            if lb["arn"] == site.lb_arn
            for listener in lb["listeners"]
        ),
        timeout=5,
    )


def test_a_rule_for_the_operator_takes_effect_at_once_and_its_revocation_too(site: Site) -> None:
    site.loopback_rule("authorize")
    try:
        assert _wait("the direct request answered", site.direct, timeout=3) == 200
    finally:
        site.loopback_rule("revoke")
    _wait("the direct request unanswered again", lambda: site.direct() is None, timeout=5)
    assert site.through_edge() == (200, b"app")


def test_set_security_groups_applies_to_the_next_connection(site: Site) -> None:
    loopback = site.ec2.create_security_group(VpcId=site.vpc, GroupName="alb-operator", Description="operator")[
        "GroupId"
    ]
    site.ec2.authorize_security_group_ingress(
        GroupId=loopback,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "127.0.0.0/30"}]}],
    )
    groups = [site.cloudfront_group, site.route53_group]
    site.elb.set_security_groups(LoadBalancerArn=site.lb_arn, SecurityGroups=[*groups, loopback])
    try:
        assert _wait("the direct request answered", site.direct, timeout=3) == 200
    finally:
        site.elb.set_security_groups(LoadBalancerArn=site.lb_arn, SecurityGroups=groups)
        site.ec2.delete_security_group(GroupId=loopback)
    _wait("the direct request unanswered again", lambda: site.direct() is None, timeout=5)


def test_route53_checkers_are_admitted_by_their_prefix_list(
    site: Site, sandbox: SandboxConfig, aws: Callable[..., Any]
) -> None:
    route53 = aws("route53")
    control(sandbox, "POST", "route53", {"speedup": 20})
    check = route53.create_health_check(
        CallerReference=uuid.uuid4().hex,
        HealthCheckConfig={
            "Type": "HTTP",
            "FullyQualifiedDomainName": site.dns,
            "Port": 80,
            "ResourcePath": "/health",
            "RequestInterval": 10,
            "FailureThreshold": 1,
        },
    )["HealthCheck"]["Id"]

    def state() -> dict[str, Any]:
        """The checker's record of the check ({} until its first probe is scheduled)."""
        return next((c for c in control(sandbox, "GET", "route53")["health_checks"] if c["id"] == check), {})

    try:
        _wait("the health check healthy", lambda: (s := state()).get("healthy") and s.get("last_checked"), timeout=15)
        # Without the Route 53 group the checkers get no answer, and the check fails.
        site.elb.set_security_groups(LoadBalancerArn=site.lb_arn, SecurityGroups=[site.cloudfront_group])
        try:
            _wait("the health check unhealthy", lambda: state().get("healthy") is False, timeout=15)
        finally:
            site.elb.set_security_groups(
                LoadBalancerArn=site.lb_arn, SecurityGroups=[site.cloudfront_group, site.route53_group]
            )
        _wait("the health check healthy again", lambda: state().get("healthy"), timeout=15)
    finally:
        route53.delete_health_check(HealthCheckId=check)
        control(sandbox, "POST", "route53", {"speedup": 1})


def test_an_alb_without_security_groups_has_its_vpcs_default_group(site: Site) -> None:
    lb = site.elb.create_load_balancer(Name=f"sg-default-{uuid.uuid4().hex[:6]}", Subnets=site.subnets)[
        "LoadBalancers"
    ][0]
    try:
        site.elb.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[
                {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain"}}
            ],
        )
        assert site.direct(lb["LoadBalancerArn"]) is None
    finally:
        site.elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])

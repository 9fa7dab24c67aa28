"""Route 53 health checks probe for real and TestDNSAnswer answers by health (sandbox/services/route53/).

The checks run against local HTTP servers published in the sandbox's name map. The sandbox-wide
speed-up (POST /_sandbox/route53 {"speedup": N}) keeps the file quick: RequestInterval 10 becomes 0.5 s.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.config import ROUTE53_CHECKER_SOURCE, SandboxConfig
from tests.support import sandbox_control as control

SPEEDUP = 20  # RequestInterval 10 s -> 0.5 s


class Endpoint:
    """A local HTTP server standing for an ALB: per-path status and body, switchable at run time."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b'{"status": "ready"}'
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(endpoint.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(endpoint.body)))
                self.end_headers()
                self.wfile.write(endpoint.body)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast(sandbox: SandboxConfig) -> Iterator[None]:
    control(sandbox, "POST", "route53", {"speedup": SPEEDUP})
    yield
    control(sandbox, "POST", "route53", {"speedup": 1})


@pytest.fixture
def endpoints(sandbox: SandboxConfig) -> Iterator[Callable[[], tuple[str, Endpoint]]]:
    """endpoints() -> (an ALB-like DNS name published on port 80, its server)."""
    made: list[tuple[str, Endpoint]] = []

    def make() -> tuple[str, Endpoint]:
        endpoint = Endpoint()
        name = f"hc-{uuid.uuid4().hex[:10]}.us-east-1.elb.amazonaws.com"
        control(sandbox, "POST", "names", {"name": name, "port": 80, "local_port": endpoint.port})
        made.append((name, endpoint))
        return name, endpoint

    yield make
    for name, endpoint in made:
        control(sandbox, "POST", "names", {"name": name, "port": 80, "local_port": None})
        endpoint.close()


@pytest.fixture
def checks(aws: Callable[..., Any]) -> Iterator[Callable[..., str]]:
    """checks(Type=..., ...) -> a new health check's id (deleted afterwards)."""
    route53 = aws("route53")
    made: list[str] = []

    def make(**config: Any) -> str:
        defaults = {"RequestInterval": 10, "FailureThreshold": 1} if config.get("Type") not in ("CALCULATED",) else {}
        check = route53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig={**defaults, **config})
        made.append(check["HealthCheck"]["Id"])
        return check["HealthCheck"]["Id"]

    yield make
    for check_id in reversed(made):
        with contextlib.suppress(ClientError):
            route53.delete_health_check(HealthCheckId=check_id)


def state(sandbox: SandboxConfig, check_id: str) -> dict[str, Any]:
    (found,) = [c for c in control(sandbox, "GET", "route53")["health_checks"] if c["id"] == check_id]
    return found


def wait_for(predicate: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.05)


def statuses(aws: Callable[..., Any], check_id: str) -> list[str]:
    observations = aws("route53").get_health_check_status(HealthCheckId=check_id)["HealthCheckObservations"]
    return [o["StatusReport"]["Status"] for o in observations]


def test_healthy_endpoint_reports_success_observations(
    aws: Callable[..., Any], sandbox: SandboxConfig, fast: None, endpoints: Any, checks: Any
) -> None:
    name, _endpoint = endpoints()
    check_id = checks(Type="HTTP", FullyQualifiedDomainName=name, Port=80, ResourcePath="/health/ready")
    wait_for(lambda: statuses(aws, check_id), what="a first observation")
    response = aws("route53").get_health_check_status(HealthCheckId=check_id)
    observations = response["HealthCheckObservations"]
    assert {o["Region"] for o in observations} == {
        "us-east-1",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "sa-east-1",
    }
    first = observations[0]
    assert first["StatusReport"]["Status"] == "Success: HTTP Status Code 200, OK"
    assert isinstance(first["StatusReport"]["CheckedTime"], datetime.datetime)
    age = datetime.datetime.now(datetime.UTC) - first["StatusReport"]["CheckedTime"]
    assert age < datetime.timedelta(seconds=10)
    assert first["IPAddress"] == ROUTE53_CHECKER_SOURCE  # the address its probes come from
    assert state(sandbox, check_id)["healthy"] is True


def test_status_flips_only_after_failure_threshold_consecutive_failures(
    aws: Callable[..., Any], sandbox: SandboxConfig, fast: None, endpoints: Any, checks: Any
) -> None:
    name, endpoint = endpoints()
    check_id = checks(Type="HTTP", FullyQualifiedDomainName=name, Port=80, ResourcePath="/", FailureThreshold=3)
    wait_for(lambda: statuses(aws, check_id), what="a first observation")
    endpoint.status = 503
    failing_since = time.monotonic()
    # The first failing probe is reported at once, but the status holds until three in a row.
    wait_for(lambda: statuses(aws, check_id)[0].startswith("Failure"), what="a failing observation")
    assert statuses(aws, check_id)[0] == "Failure: HTTP Status Code 503, Service Unavailable"
    seen = state(sandbox, check_id)
    assert seen["healthy"] is True and seen["results_against_status"] in (1, 2)
    wait_for(lambda: not state(sandbox, check_id)["healthy"], what="unhealthy")
    took = time.monotonic() - failing_since
    interval = 10 / SPEEDUP
    # Three failures at 0.5 s spacing: at least two intervals after the first failing probe.
    assert 2 * interval - 0.1 <= took <= 4 * interval + 1, took
    # And back: three successes in a row.
    endpoint.status = 200
    wait_for(lambda: state(sandbox, check_id)["healthy"], what="healthy again")


def test_str_match_searches_the_body(aws: Callable[..., Any], fast: None, endpoints: Any, checks: Any) -> None:
    name, endpoint = endpoints()
    found = checks(Type="HTTP_STR_MATCH", FullyQualifiedDomainName=name, Port=80, SearchString="ready")
    missing = checks(Type="HTTP_STR_MATCH", FullyQualifiedDomainName=name, Port=80, SearchString="writer")
    endpoint.body = b"x" * 6000 + b"late"  # beyond the first 5,120 bytes
    late = checks(Type="HTTP_STR_MATCH", FullyQualifiedDomainName=name, Port=80, SearchString="late")
    wait_for(lambda: statuses(aws, late), what="a first observation")
    assert statuses(aws, late)[0].startswith(
        "Failure: HTTP Status Code 200, OK. The search string 'late' was not found"
    )
    endpoint.body = b'{"status": "ready"}'
    wait_for(lambda: statuses(aws, found) and statuses(aws, found)[0].startswith("Success"), what="found")
    wait_for(lambda: statuses(aws, missing), what="a first observation")
    assert statuses(aws, missing)[0].startswith("Failure")


def test_tcp_check_and_unresolvable_name(aws: Callable[..., Any], fast: None, endpoints: Any, checks: Any) -> None:
    name, _endpoint = endpoints()
    tcp = checks(Type="TCP", FullyQualifiedDomainName=name, Port=80)
    nowhere = checks(Type="HTTP", FullyQualifiedDomainName="not-published.us-east-1.elb.amazonaws.com", Port=80)
    wait_for(lambda: statuses(aws, tcp) and statuses(aws, nowhere), what="observations")
    assert statuses(aws, tcp)[0].startswith("Success: TCP connection established")
    # A name the sandbox does not publish never reaches a real DNS server: it simply does not resolve.
    assert statuses(aws, nowhere)[0].startswith("Failure: DNS resolution failed")


def test_connection_refused_is_a_failure(
    aws: Callable[..., Any], sandbox: SandboxConfig, fast: None, checks: Any
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    name = f"dead-{uuid.uuid4().hex[:8]}.us-east-1.elb.amazonaws.com"
    control(sandbox, "POST", "names", {"name": name, "port": 80, "local_port": dead_port})
    try:
        check_id = checks(Type="HTTP", FullyQualifiedDomainName=name, Port=80)
        wait_for(lambda: statuses(aws, check_id), what="an observation")
        assert statuses(aws, check_id)[0].startswith("Failure: Connection refused")
        wait_for(lambda: not state(sandbox, check_id)["healthy"], what="unhealthy")
    finally:
        control(sandbox, "POST", "names", {"name": name, "port": 80, "local_port": None})


def test_inverted_and_disabled(
    aws: Callable[..., Any], sandbox: SandboxConfig, fast: None, endpoints: Any, checks: Any
) -> None:
    name, _endpoint = endpoints()
    inverted = checks(Type="HTTP", FullyQualifiedDomainName=name, Port=80, Inverted=True)
    disabled_dead = checks(
        Type="HTTP", FullyQualifiedDomainName="not-published.us-east-1.elb.amazonaws.com", Port=80, Disabled=True
    )
    wait_for(lambda: not state(sandbox, inverted)["healthy"], what="the inverted check unhealthy")
    assert statuses(aws, inverted)[0].startswith("Failure: Inverted health check; the endpoint reported Success")
    # Disabled: no probing, considered healthy however dead the endpoint is.
    wait_for(lambda: statuses(aws, disabled_dead), what="an observation")
    assert state(sandbox, disabled_dead)["healthy"] is True
    assert statuses(aws, disabled_dead)[0].startswith("Success: Health checking is disabled")
    # Disabled + Inverted is AWS's documented lever to force a check unhealthy.
    aws("route53").update_health_check(HealthCheckId=disabled_dead, Inverted=True)
    wait_for(lambda: not state(sandbox, disabled_dead)["healthy"], what="disabled+inverted unhealthy")
    # Un-inverting applies at once too.
    aws("route53").update_health_check(HealthCheckId=inverted, Inverted=False)
    wait_for(lambda: state(sandbox, inverted)["healthy"], what="healthy once no longer inverted")


def test_calculated_counts_healthy_children(
    aws: Callable[..., Any], sandbox: SandboxConfig, fast: None, endpoints: Any, checks: Any
) -> None:
    name, _endpoint = endpoints()
    good = checks(Type="HTTP", FullyQualifiedDomainName=name, Port=80)
    bad = checks(Type="HTTP", FullyQualifiedDomainName="not-published.us-east-1.elb.amazonaws.com", Port=80)
    calculated = checks(Type="CALCULATED", ChildHealthChecks=[good, bad], HealthThreshold=1)
    wait_for(lambda: not state(sandbox, bad)["healthy"], what="the bad child unhealthy")
    assert state(sandbox, calculated)["healthy"] is True
    route53 = aws("route53")
    route53.update_health_check(HealthCheckId=calculated, HealthThreshold=2)
    wait_for(lambda: not state(sandbox, calculated)["healthy"], what="calculated unhealthy at threshold 2")
    config = route53.get_health_check(HealthCheckId=calculated)["HealthCheck"]
    # The update named no children: they stay (moto used to wipe them), and the version moves on.
    assert sorted(config["HealthCheckConfig"]["ChildHealthChecks"]) == sorted([good, bad])
    assert config["HealthCheckVersion"] == 2
    with pytest.raises(ClientError) as excinfo:
        route53.get_health_check_status(HealthCheckId=calculated)
    assert excinfo.value.response["Error"]["Code"] == "InvalidInput"
    route53.update_health_check(HealthCheckId=calculated, HealthThreshold=0)
    wait_for(lambda: state(sandbox, calculated)["healthy"], what="threshold 0: always healthy")


def test_cloudwatch_metric_checks_follow_their_alarm(
    aws: Callable[..., Any], sandbox: SandboxConfig, fast: None, checks: Any
) -> None:
    cloudwatch = aws("cloudwatch", "us-west-2")
    alarm = f"hc-alarm-{uuid.uuid4().hex[:8]}"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        Namespace="Sandbox/Test",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    try:
        check_id = checks(
            Type="CLOUDWATCH_METRIC",
            AlarmIdentifier={"Region": "us-west-2", "Name": alarm},
            InsufficientDataHealthStatus="Unhealthy",
        )
        config = aws("route53").get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
        assert config["AlarmIdentifier"] == {"Region": "us-west-2", "Name": alarm}
        assert config["InsufficientDataHealthStatus"] == "Unhealthy"
        # (moto starts alarms in OK where AWS starts them in INSUFFICIENT_DATA: set it explicitly.)
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="INSUFFICIENT_DATA", StateReason="test")
        wait_for(lambda: not state(sandbox, check_id)["healthy"], what="unhealthy on insufficient data")
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test")
        wait_for(lambda: state(sandbox, check_id)["healthy"], what="healthy when OK")
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
        wait_for(lambda: not state(sandbox, check_id)["healthy"], what="unhealthy in ALARM")
        assert statuses(aws, check_id)[0].startswith("Failure: The CloudWatch alarm")
    finally:
        cloudwatch.delete_alarms(AlarmNames=[alarm])


def test_status_feeds_cloudwatch_in_us_east_1(
    aws: Callable[..., Any], sandbox: SandboxConfig, fast: None, endpoints: Any, checks: Any
) -> None:
    name, endpoint = endpoints()
    check_id = checks(Type="HTTP", FullyQualifiedDomainName=name, Port=80)
    wait_for(lambda: statuses(aws, check_id), what="a first observation")
    endpoint.status = 500
    wait_for(lambda: not state(sandbox, check_id)["healthy"], what="unhealthy")
    now = datetime.datetime.now(datetime.UTC)

    def datapoints() -> list[dict[str, Any]]:
        return aws("cloudwatch", "us-east-1").get_metric_statistics(
            Namespace="AWS/Route53",
            MetricName="HealthCheckStatus",
            Dimensions=[{"Name": "HealthCheckId", "Value": check_id}],
            StartTime=now - datetime.timedelta(minutes=5),
            EndTime=now + datetime.timedelta(minutes=5),
            Period=60,
            Statistics=["Minimum", "Maximum"],
        )["Datapoints"]

    points = wait_for(lambda: [p for p in datapoints() if p["Minimum"] == 0.0], what="a 0 sample")
    assert any(p["Maximum"] == 1.0 for p in datapoints()), points  # the healthy sample at creation


@pytest.fixture
def zone(aws: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    route53 = aws("route53")
    name = f"hc-{uuid.uuid4().hex[:8]}.example.com"
    created = route53.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))["HostedZone"]
    yield {"id": created["Id"].split("/")[-1], "name": name}
    records = route53.list_resource_record_sets(HostedZoneId=created["Id"])["ResourceRecordSets"]
    changes = [{"Action": "DELETE", "ResourceRecordSet": r} for r in records if r["Type"] not in ("NS", "SOA")]
    if changes:
        route53.change_resource_record_sets(HostedZoneId=created["Id"], ChangeBatch={"Changes": changes})
    route53.delete_hosted_zone(Id=created["Id"])


def _failover_pair(zone: dict[str, Any], primary: str, secondary: str, check_id: str, evaluate: bool) -> list[Any]:
    def record(role: str, target: str, check: str | None) -> dict[str, Any]:
        rrset: dict[str, Any] = {
            "Name": f"origin.{zone['name']}",
            "Type": "A",
            "SetIdentifier": role.lower(),
            "Failover": role,
            "AliasTarget": {
                "HostedZoneId": "Z35SXDOTRQ7X7K",
                "DNSName": f"dualstack.{target}.",
                "EvaluateTargetHealth": evaluate,
            },
        }
        if check:
            rrset["HealthCheckId"] = check
        return {"Action": "UPSERT", "ResourceRecordSet": rrset}

    app = {
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": f"app.{zone['name']}",
            "Type": "A",
            "AliasTarget": {
                "HostedZoneId": zone["id"],
                "DNSName": f"origin.{zone['name']}",
                "EvaluateTargetHealth": True,
            },
        },
    }
    return [record("PRIMARY", primary, check_id), record("SECONDARY", secondary, None), app]


def test_dns_answer_fails_over_when_the_primary_check_fails(
    aws: Callable[..., Any], sandbox: SandboxConfig, fast: None, endpoints: Any, checks: Any, zone: dict[str, Any]
) -> None:
    route53 = aws("route53")
    primary, endpoint = endpoints()
    secondary = "standby-1.us-west-2.elb.amazonaws.com"
    check_id = checks(Type="HTTP", FullyQualifiedDomainName=primary, Port=80, ResourcePath="/health/ready")
    route53.change_resource_record_sets(
        HostedZoneId=zone["id"], ChangeBatch={"Changes": _failover_pair(zone, primary, secondary, check_id, False)}
    )

    def answer(name: str) -> dict[str, Any]:
        return route53.test_dns_answer(HostedZoneId=zone["id"], RecordName=name, RecordType="A")

    first = answer(f"app.{zone['name']}")
    assert first["RecordData"] == [primary] and first["ResponseCode"] == "NOERROR" and first["Protocol"] == "UDP"
    assert first["Nameserver"].startswith("ns-")
    endpoint.status = 503
    wait_for(lambda: answer(f"app.{zone['name']}")["RecordData"] == [secondary], what="the secondary answered")
    assert answer(f"origin.{zone['name']}")["RecordData"] == [secondary]
    endpoint.status = 200
    wait_for(lambda: answer(f"app.{zone['name']}")["RecordData"] == [primary], what="the primary answered again")
    # A name without records, a type without records, a zone that does not exist.
    assert answer(f"nothing.{zone['name']}")["ResponseCode"] == "NXDOMAIN"
    aaaa = route53.test_dns_answer(HostedZoneId=zone["id"], RecordName=f"origin.{zone['name']}", RecordType="AAAA")
    assert aaaa["ResponseCode"] == "NOERROR" and aaaa["RecordData"] == []
    with pytest.raises(ClientError) as excinfo:
        route53.test_dns_answer(HostedZoneId="ZNOSUCHZONE", RecordName="x.example.com", RecordType="A")
    assert excinfo.value.response["Error"]["Code"] == "NoSuchHostedZone"


def test_both_unhealthy_answers_the_primary_and_simple_records_answer_plainly(
    aws: Callable[..., Any], fast: None, checks: Any, zone: dict[str, Any], sandbox: SandboxConfig
) -> None:
    route53 = aws("route53")
    dead = checks(Type="HTTP", FullyQualifiedDomainName="not-published.us-east-1.elb.amazonaws.com", Port=80)
    changes = _failover_pair(zone, "a-1.us-east-1.elb.amazonaws.com", "b-1.us-west-2.elb.amazonaws.com", dead, False)
    secondary_check = checks(Type="HTTP", FullyQualifiedDomainName="not-published.us-west-2.elb.amazonaws.com", Port=80)
    changes[1]["ResourceRecordSet"]["HealthCheckId"] = secondary_check
    changes.append(
        {
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": f"www.{zone['name']}",
                "Type": "A",
                "TTL": 300,
                "ResourceRecords": [{"Value": "192.0.2.10"}, {"Value": "192.0.2.11"}],
            },
        }
    )
    route53.change_resource_record_sets(HostedZoneId=zone["id"], ChangeBatch={"Changes": changes})
    wait_for(
        lambda: not state(sandbox, dead)["healthy"] and not state(sandbox, secondary_check)["healthy"],
        what="both unhealthy",
    )
    origin = route53.test_dns_answer(HostedZoneId=zone["id"], RecordName=f"origin.{zone['name']}", RecordType="A")
    assert origin["RecordData"] == ["a-1.us-east-1.elb.amazonaws.com"]
    www = route53.test_dns_answer(HostedZoneId=zone["id"], RecordName=f"www.{zone['name']}", RecordType="A")
    assert www["RecordData"] == ["192.0.2.10", "192.0.2.11"]


@pytest.fixture
def alb(aws: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """An Application Load Balancer in us-east-1 with no listener and no target group, whose security group
    admits Route 53's health checkers (their AWS-managed prefix list), as an ALB they probe must."""
    ec2, elbv2 = aws("ec2"), aws("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.77.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    checkers = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.route53-healthchecks"]}]
    )["PrefixLists"][0]["PrefixListId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="alb-route53", Description="Route 53 health checkers")
    ec2.authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "PrefixListIds": [{"PrefixListId": checkers}]}
        ],
    )
    lb = elbv2.create_load_balancer(
        Name=f"hc-{uuid.uuid4().hex[:8]}", Subnets=subnets, SecurityGroups=[group["GroupId"]]
    )["LoadBalancers"][0]
    yield lb
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    ec2.delete_security_group(GroupId=group["GroupId"])
    for subnet in subnets:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def test_evaluate_target_health_needs_healthy_alb_targets(
    aws: Callable[..., Any], fast: None, endpoints: Any, checks: Any, zone: dict[str, Any], alb: dict[str, Any]
) -> None:
    """An alias to an ALB with EvaluateTargetHealth is unhealthy while the ALB has no healthy target."""
    route53 = aws("route53")
    name, _endpoint = endpoints()
    passing_check = checks(Type="HTTP", FullyQualifiedDomainName=name, Port=80)
    secondary = "standby-2.us-west-2.elb.amazonaws.com"
    changes = _failover_pair(zone, alb["DNSName"], secondary, passing_check, True)
    # The secondary stands for a healthy region (if both were unhealthy Route 53 would answer the primary).
    changes[1]["ResourceRecordSet"]["AliasTarget"]["EvaluateTargetHealth"] = False
    route53.change_resource_record_sets(HostedZoneId=zone["id"], ChangeBatch={"Changes": changes[:2]})
    record = f"origin.{zone['name']}"
    answer = route53.test_dns_answer(HostedZoneId=zone["id"], RecordName=record, RecordType="A")
    # The primary's health check passes, but its ALB has no target at all: Route 53 answers the secondary.
    assert answer["RecordData"] == [secondary]
    for change in changes[:2]:
        change["ResourceRecordSet"]["AliasTarget"]["EvaluateTargetHealth"] = False
    route53.change_resource_record_sets(HostedZoneId=zone["id"], ChangeBatch={"Changes": changes[:2]})
    answer = route53.test_dns_answer(HostedZoneId=zone["id"], RecordName=record, RecordType="A")
    assert answer["RecordData"] == [alb["DNSName"].lower()]


def test_https_check_against_a_plain_http_listener_fails(
    aws: Callable[..., Any], fast: None, checks: Any, alb: dict[str, Any]
) -> None:
    """The check's protocol must match the listener's, as on AWS (the TLS handshake would fail)."""
    aws("elbv2").create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain", "MessageBody": "ok"},
            }
        ],
    )
    plain = checks(Type="HTTP", FullyQualifiedDomainName=alb["DNSName"], Port=80)
    tls_on_plain = checks(Type="HTTPS", FullyQualifiedDomainName=alb["DNSName"], Port=80)
    tls_default = checks(Type="HTTPS", FullyQualifiedDomainName=alb["DNSName"])
    config = aws("route53").get_health_check(HealthCheckId=tls_default)["HealthCheck"]["HealthCheckConfig"]
    assert config["Port"] == 443  # AWS's default port for HTTPS checks
    wait_for(lambda: all(statuses(aws, c) for c in (plain, tls_on_plain, tls_default)), what="observations")
    assert statuses(aws, plain)[0] == "Success: HTTP Status Code 200, OK"
    assert statuses(aws, tls_on_plain)[0].startswith("Failure: TLS handshake failed")
    assert statuses(aws, tls_default)[0].startswith("Failure: Connection refused")  # no listener on 443


def test_control_route_rejects_a_bad_speedup(sandbox: SandboxConfig) -> None:
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        control(sandbox, "POST", "route53", {"speedup": 0.5})
    assert excinfo.value.code == 400
    assert "at least 1" in json.load(excinfo.value)["error"]

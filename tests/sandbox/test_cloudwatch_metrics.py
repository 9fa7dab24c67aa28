"""The live parts publish the metrics the monitoring role's alarms read (sandbox/services/elbv2/metrics.py,
sandbox/services/ecs/metrics.py, through sandbox/services/cloudwatch/metrics.py).

The ALB test builds a small load balancer in the test sandbox whose targets are HTTP servers in this
process (published under made-up private IPs, as tests/sandbox/test_elbv2_listeners.py does), serves a
few requests, and reads AWS/ApplicationELB back with GetMetricStatistics; then an UnHealthyHostCount
alarm goes to ALARM when a target fails its checks. The ECS test samples a real busy process.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sandbox.config import SandboxConfig
from tests.support import loopback_security_group

REGION = "us-east-1"


class _Target:
    """An app task standing in: /health answers ``health``, /boom answers 500, anything else 200."""

    def __init__(self) -> None:
        self.health = 200
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status = target.health if self.path == "/health" else 500 if self.path == "/boom" else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _control(sandbox: SandboxConfig, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = b"{}" if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{sandbox.endpoint}/_sandbox/{path}", data=data if method == "POST" else None, method=method
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)
    return result


@dataclass
class Stack:
    sandbox: SandboxConfig
    elb: Any
    cloudwatch: Any
    lb_arn: str = ""
    dns: str = ""
    group: str = ""
    targets: dict[str, _Target] = field(default_factory=dict)

    @property
    def dimensions(self) -> list[dict[str, str]]:
        return [
            {"Name": "TargetGroup", "Value": self.group.rsplit(":", 1)[1]},
            {"Name": "LoadBalancer", "Value": self.lb_arn.split(":loadbalancer/", 1)[1]},
        ]

    def get(self, path: str) -> int:
        local = _control(self.sandbox, "GET", "")["names"][f"{self.dns}:80"]
        conn = http.client.HTTPConnection("127.0.0.1", int(local.rsplit(":", 1)[1]), timeout=10)
        try:
            conn.request("GET", path, headers={"Host": self.dns})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def states(self) -> list[str]:
        found = self.elb.describe_target_health(TargetGroupArn=self.group)["TargetHealthDescriptions"]
        return sorted(d["TargetHealth"]["State"] for d in found)

    def statistic(self, name: str, statistic: str, dimensions: list[dict[str, str]]) -> float | None:
        now = dt.datetime.now(dt.UTC)
        points = self.cloudwatch.get_metric_statistics(
            Namespace="AWS/ApplicationELB",
            MetricName=name,
            Dimensions=dimensions,
            StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=1),
            Period=300,
            Statistics=[statistic],
        )["Datapoints"]
        return points[0][statistic] if points else None


@pytest.fixture
def stack(aws: Callable[..., Any], sandbox: SandboxConfig) -> Iterator[Stack]:
    ec2, elb = aws("ec2", REGION), aws("elbv2", REGION)
    s = Stack(sandbox, elb, aws("cloudwatch", REGION))
    vpc = ec2.create_vpc(CidrBlock="10.81.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.81.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    lb = elb.create_load_balancer(
        Name="metrics-alb", Subnets=subnets, SecurityGroups=[loopback_security_group(ec2, vpc)], Type="application"
    )["LoadBalancers"][0]
    s.lb_arn, s.dns = lb["LoadBalancerArn"], lb["DNSName"]

    def group(name: str) -> str:
        return elb.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=8000,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath="/health",
            HealthCheckIntervalSeconds=5,
            HealthCheckTimeoutSeconds=2,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]

    s.group, empty = group("metrics-web"), group("metrics-empty")
    elb.modify_target_group_attributes(
        TargetGroupArn=s.group, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}]
    )
    for ip in ("10.81.0.10", "10.81.1.10"):
        s.targets[ip] = _Target()
        _control(sandbox, "POST", "names", {"name": ip, "port": 8000, "local_port": s.targets[ip].port})
    elb.register_targets(TargetGroupArn=s.group, Targets=[{"Id": ip, "Port": 8000} for ip in s.targets])
    listener = elb.create_listener(
        LoadBalancerArn=s.lb_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": s.group}],
    )["Listeners"][0]["ListenerArn"]
    elb.create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/empty/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": empty}],
    )
    try:
        yield s
    finally:
        elb.delete_load_balancer(LoadBalancerArn=s.lb_arn)
        for arn in (s.group, empty):
            elb.delete_target_group(TargetGroupArn=arn)
        for ip, target in s.targets.items():
            _control(sandbox, "POST", "names", {"name": ip, "port": 8000, "local_port": None})
            target.close()


def test_alb_publishes_requests_5xx_and_host_counts_and_the_unhealthy_alarm_fires(stack: Stack) -> None:
    _wait("both targets healthy", lambda: stack.states() == ["healthy", "healthy"], 15)
    statuses = [stack.get(path) for path in ("/", "/boom", "/boom", "/boom", "/empty/x")]
    assert statuses == [200, 500, 500, 500, 503]
    balancer = stack.dimensions[1:]
    # Published every 10 s: the first interval after the requests carries them.
    assert _wait("target 5XX", lambda: stack.statistic("HTTPCode_Target_5XX_Count", "Sum", stack.dimensions), 25) == 3
    assert stack.statistic("HTTPCode_ELB_5XX_Count", "Sum", balancer) == 1
    # (moto's GetMetricStatistics matches any datum whose dimensions include those asked for, so the
    # load balancer's own RequestCount cannot be read apart from its target groups' here.)
    assert stack.statistic("RequestCount", "Sum", stack.dimensions) == 4
    assert stack.statistic("TargetResponseTime", "SampleCount", stack.dimensions) == 4
    assert stack.statistic("HealthyHostCount", "Maximum", stack.dimensions) == 2
    assert stack.statistic("UnHealthyHostCount", "Maximum", stack.dimensions) == 0

    name = "metrics-unhealthy-hosts"
    stack.cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="UnHealthyHostCount",
        Dimensions=stack.dimensions,
        Statistic="Maximum",
        Period=10,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="breaching",
    )
    try:

        def state() -> str:
            _control(stack.sandbox, "POST", "cloudwatch/evaluate")
            return str(stack.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])

        _wait("the alarm OK on healthy hosts", lambda: state() == "OK", 25)
        stack.targets["10.81.1.10"].health = 500
        _wait("one target unhealthy", lambda: stack.states() == ["healthy", "unhealthy"], 20)
        _wait("the alarm in ALARM", lambda: state() == "ALARM", 25)
        reason = stack.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateReason"]
        assert "was greater than or equal to the threshold (1.0)" in reason
    finally:
        stack.cloudwatch.delete_alarms(AlarmNames=[name])


def test_ecs_usage_measures_the_task_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    from sandbox.services.ecs import metrics as ecs_metrics

    account, region = "123456789012", "us-west-2"
    cloudwatch_backends[account][region].reset()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        service = type("Service", (), {"cluster_name": "web-cluster", "name": "web"})()
        task = type("Task", (), {"last_status": "RUNNING", "cpu": "512", "memory": "1024"})()
        run = type("Run", (), {"status": "RUNNING", "proc": busy, "service": service, "task": task})()
        run.account, run.region, run.container = account, region, {}
        scheduler = type("Scheduler", (), {"lock": threading.RLock(), "runs": {"t": run}})()
        usage = ecs_metrics.Usage(scheduler, lambda _region: False)
        real = ecs_metrics._cpu_seconds(busy.pid)
        assert real is not None
        # The CPU the process tree used: half a second per sampled second, whatever the machine's load.
        used = iter([real, real + 0.5])
        monkeypatch.setattr(ecs_metrics, "_cpu_seconds", lambda _pid: next(used))
        usage.sample()
        time.sleep(1.0)
        usage.sample()
    finally:
        busy.kill()
        busy.wait()
    data = {d.name: d for d in cloudwatch_backends[account][region].metric_data}
    assert {d.name for d in data.values()} == {"CPUUtilization", "MemoryUtilization"}
    cpu, memory = data["CPUUtilization"], data["MemoryUtilization"]
    assert {(d.name, d.value) for d in cpu.dimensions} == {("ClusterName", "web-cluster"), ("ServiceName", "web")}
    # 0.5 s of CPU in a little over 1 s, on a reservation of half a core (512 units): just under 100 %.
    assert 70 < cpu.value <= 100 and cpu.unit == "Percent"
    assert 0 < memory.value < 10  # a bare interpreter's few MiB of 1024

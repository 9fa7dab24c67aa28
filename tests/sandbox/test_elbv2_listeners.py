"""ALB listeners serve real HTTP and target health is probed (sandbox/services/elbv2/: provider.py,
listener.py, rules.py, proxy.py).

One load balancer is built for the whole module (VPC, subnets, target groups, listeners, rules) with
boto3; its targets are small HTTP servers in this test process, published in the sandbox's name map
under made-up private IPs with POST /_sandbox/names, as the ECS slice publishes task IPs.
Health checks use AWS's smallest interval (5 s), so the waits below are a few seconds each.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SandboxConfig
from tests.support import free_port, loopback_security_group

REGION = "us-east-1"
INTERVAL = 5
DEREGISTRATION_DELAY = 2


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The 504 test makes the ALB hang up on a slow target: a broken pipe there is expected.
        pass


class FakeTask:
    """A local HTTP server standing for one app task: /health answers health_status, anything else echoes."""

    def __init__(self, name: str, ip: str) -> None:
        self.name = name
        self.ip = ip
        self.health_status = 200
        self.delay = 0.0
        self.hits = 0
        self.seen: list[dict[str, Any]] = []
        task = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so the ALB's connection pool is exercised

            def log_message(self, *_args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/health":
                    self._reply(task.health_status, b'{"ok": true}')
                    return
                if self.path.startswith("/slow"):
                    time.sleep(task.delay)
                task.hits += 1
                task.seen.append({"path": self.path, "headers": dict(self.headers.items())})
                self._reply(200, json.dumps({"target": task.name, "path": self.path}).encode())

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                task.hits += 1
                self._reply(200, json.dumps({"target": task.name, "echo": body.decode()}).encode())

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _control(sandbox: SandboxConfig, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{sandbox.endpoint}/_sandbox/{path}", data=data, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _publish(sandbox: SandboxConfig, name: str, port: int, local_port: int | None) -> None:
    _control(sandbox, "POST", "names", {"name": name, "port": port, "local_port": local_port})


def _client(sandbox: SandboxConfig, service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=sandbox.endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


class Env:
    def __init__(self, sandbox: SandboxConfig, elb: Any) -> None:
        self.sandbox = sandbox
        self.elb = elb
        self.tasks: dict[str, FakeTask] = {}
        self.groups: dict[str, str] = {}
        self.lb_arn = ""
        self.dns = ""
        self.listeners: dict[int, str] = {}

    def local_port(self, port: int) -> int:
        found = _control(self.sandbox, "GET", "")["names"].get(f"{self.dns}:{port}")
        assert found, f"{self.dns}:{port} is not published"
        return int(found.rsplit(":", 1)[1])

    def request(
        self, path: str, port: int = 80, host: str | None = None, method: str = "GET", body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.local_port(port), timeout=15)
        try:
            conn.request(method, path, body=body, headers={"Host": host or self.dns})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def health(self, group: str, **kwargs: Any) -> dict[str, dict[str, Any]]:
        found = self.elb.describe_target_health(TargetGroupArn=self.groups[group], **kwargs)["TargetHealthDescriptions"]
        return {d["Target"]["Id"]: d for d in found}

    def wait_state(self, group: str, target_ip: str, state: str, timeout: float = 3 * INTERVAL) -> dict[str, Any]:
        return _wait(
            f"{target_ip} in {group} to be {state}",
            lambda: (d := self.health(group).get(target_ip)) and d["TargetHealth"]["State"] == state and d,
            timeout,
        )


@pytest.fixture(scope="module")
def env(sandbox: SandboxConfig) -> Iterator[Env]:
    ec2, elb, acm = (_client(sandbox, service) for service in ("ec2", "elbv2", "acm"))
    e = Env(sandbox, elb)
    vpc = ec2.create_vpc(CidrBlock="10.79.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.79.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    lb = elb.create_load_balancer(
        Name="live-alb",
        Subnets=subnets,
        SecurityGroups=[loopback_security_group(ec2, vpc)],
        Scheme="internet-facing",
        Type="application",
    )
    e.lb_arn, e.dns = lb["LoadBalancers"][0]["LoadBalancerArn"], lb["LoadBalancers"][0]["DNSName"]

    def group(name: str) -> str:
        arn = elb.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=8000,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckProtocol="HTTP",
            HealthCheckPort="traffic-port",
            HealthCheckPath="/health",
            HealthCheckIntervalSeconds=INTERVAL,
            HealthCheckTimeoutSeconds=2,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=2,
            Matcher={"HttpCode": "200"},
        )["TargetGroups"][0]["TargetGroupArn"]
        elb.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(DEREGISTRATION_DELAY)}],
        )
        e.groups[name] = arn
        return arn

    web, empty, sick, dead, idle = (group(n) for n in ("live-web", "live-empty", "live-sick", "live-dead", "live-idle"))
    for name, ip in (("a", "10.79.0.10"), ("b", "10.79.0.11"), ("c", "10.79.1.12"), ("d", "10.79.1.20")):
        e.tasks[name] = FakeTask(name, ip)
        _publish(sandbox, ip, 8000, e.tasks[name].port)
    e.tasks["d"].health_status = 500
    # e: published, but nothing listens there (a stopped process); f: an address nobody published.
    _publish(sandbox, "10.79.1.30", 8000, free_port())

    def register(arn: str, *ips: str) -> None:
        elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 8000} for ip in ips])

    register(web, "10.79.0.10", "10.79.0.11", "10.79.1.12")
    register(sick, "10.79.1.20")
    register(dead, "10.79.1.30", "10.79.1.31")
    register(idle, "10.79.0.10")
    listener = elb.create_listener(
        LoadBalancerArn=e.lb_arn, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": web}]
    )
    e.listeners[80] = arn80 = listener["Listeners"][0]["ListenerArn"]
    rules: list[tuple[int, list[dict[str, Any]], dict[str, Any]]] = [
        (10, [{"Field": "path-pattern", "Values": ["/empty/*"]}], {"Type": "forward", "TargetGroupArn": empty}),
        (20, [{"Field": "path-pattern", "Values": ["/sick/*"]}], {"Type": "forward", "TargetGroupArn": sick}),
        (30, [{"Field": "path-pattern", "Values": ["/dead/*"]}], {"Type": "forward", "TargetGroupArn": dead}),
        (
            40,
            [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/old/*"]}}],
            {
                "Type": "redirect",
                "RedirectConfig": {
                    "Protocol": "HTTPS",
                    "Port": "443",
                    "Path": "/new/#{path}",
                    "StatusCode": "HTTP_301",
                },
            },
        ),
        (
            50,
            [{"Field": "host-header", "HostHeaderConfig": {"Values": ["tea*.example.com"]}}],
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "418", "ContentType": "text/plain", "MessageBody": "teapot"},
            },
        ),
    ]
    for priority, conditions, action in rules:
        elb.create_rule(ListenerArn=arn80, Priority=priority, Conditions=conditions, Actions=[action])
    certificate = acm.request_certificate(DomainName="live.example.com")["CertificateArn"]
    e.listeners[443] = elb.create_listener(
        LoadBalancerArn=e.lb_arn,
        Protocol="HTTPS",
        Port=443,
        Certificates=[{"CertificateArn": certificate}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": web}],
    )["Listeners"][0]["ListenerArn"]
    try:
        yield e
    finally:
        with contextlib.suppress(Exception):
            _control(sandbox, "POST", "restore", {"region": REGION})
        elb.delete_load_balancer(LoadBalancerArn=e.lb_arn)
        for arn in e.groups.values():
            elb.delete_target_group(TargetGroupArn=arn)
        for task in e.tasks.values():
            _publish(sandbox, task.ip, 8000, None)
            task.close()
        _publish(sandbox, "10.79.1.30", 8000, None)


def _rows(e: Env, group: str) -> dict[str, dict[str, Any]]:
    return e.health(group)


def test_new_targets_pass_one_check_then_serve_round_robin_with_forwarded_headers(env: Env) -> None:
    for ip in ("10.79.0.10", "10.79.0.11", "10.79.1.12"):
        described = env.wait_state("live-web", ip, "healthy", timeout=INTERVAL)
        assert described["HealthCheckPort"] == "8000"
        assert "Reason" not in described["TargetHealth"]
    for task in env.tasks.values():
        task.hits, task.seen = 0, []
    conn = http.client.HTTPConnection("127.0.0.1", env.local_port(80), timeout=10)
    served = []
    for _ in range(6):  # one kept-alive client connection, as a browser or the edge would use
        conn.request("GET", "/hello?x=1", headers={"Host": env.dns, "X-Forwarded-For": "203.0.113.7"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Server") != "awselb/2.0"
        served.append(json.loads(response.read())["target"])
    conn.close()
    assert sorted(served) == ["a", "a", "b", "b", "c", "c"]
    assert served[:3] == served[3:]  # round robin: the same order each turn
    headers = env.tasks["a"].seen[-1]["headers"]
    assert headers["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Port"] == "80"
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert headers["Host"] == env.dns
    status, _headers, body = env.request("/api/data", method="POST", body=b'{"v": 1}')
    assert status == 200
    assert json.loads(body)["echo"] == '{"v": 1}'


def test_https_listener_is_plain_http_with_forwarded_proto_https(env: Env) -> None:
    env.wait_state("live-web", "10.79.0.10", "healthy", timeout=INTERVAL)
    status, _headers, _body = env.request("/secure", port=443)
    assert status == 200
    seen = next(s for t in env.tasks.values() for s in t.seen if s["path"] == "/secure")
    assert seen["headers"]["X-Forwarded-Proto"] == "https"
    assert seen["headers"]["X-Forwarded-Port"] == "443"


def test_redirect_and_fixed_response_rules(env: Env) -> None:
    status, headers, _body = env.request("/old/page?q=1")
    assert status == 301
    assert headers["Location"] == f"https://{env.dns}:443/new/old/page?q=1"
    assert headers["Server"] == "awselb/2.0"
    status, headers, body = env.request("/anything", host="teapot.example.com")
    assert (status, body, headers["Content-Type"]) == (418, b"teapot", "text/plain")
    assert headers["Server"] == "awselb/2.0"


def test_no_registered_targets_is_503(env: Env) -> None:
    status, headers, body = env.request("/empty/x")
    assert status == 503
    assert headers["Server"] == "awselb/2.0"
    assert b"503 Service Temporarily Unavailable" in body
    with socket.create_connection(("127.0.0.1", env.local_port(80)), timeout=5) as sock:
        sock.sendall(f"GET /empty/y HTTP/1.1\r\nHost: {env.dns}\r\nConnection: close\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 503 Service Temporarily Unavailable\r\n")  # ALB's phrase


def test_failing_checks_make_a_target_unhealthy_and_all_unhealthy_fails_open(env: Env) -> None:
    described = env.wait_state("live-sick", "10.79.1.20", "unhealthy")
    assert described["TargetHealth"]["Reason"] == "Target.ResponseCodeMismatch"
    assert described["TargetHealth"]["Description"] == "Health checks failed with these codes: [500]"
    status, _headers, body = env.request("/sick/page")
    assert status == 200  # the only target is unhealthy: the ALB fails open
    assert json.loads(body)["target"] == "d"


def test_unreachable_targets_fail_checks_and_requests_get_502(env: Env) -> None:
    refused = env.wait_state("live-dead", "10.79.1.30", "unhealthy")
    assert refused["TargetHealth"]["Reason"] == "Target.FailedHealthChecks"
    unknown = env.wait_state("live-dead", "10.79.1.31", "unhealthy")
    assert unknown["TargetHealth"]["Reason"] == "Target.Timeout"
    for _ in range(2):  # fail open across both; neither can be reached
        status, headers, _body = env.request("/dead/x")
        assert status == 502
        assert headers["Server"] == "awselb/2.0"


def test_target_group_without_listener_is_unused(env: Env) -> None:
    described = env.health("live-idle")["10.79.0.10"]
    assert described["TargetHealth"]["State"] == "unused"
    assert described["TargetHealth"]["Reason"] == "Target.NotInUse"


def test_target_failing_checks_leaves_rotation_and_comes_back(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.wait_state("live-web", "10.79.1.12", "healthy", timeout=INTERVAL)
    env.tasks["c"].health_status = 503
    started = time.monotonic()
    described = env.wait_state("live-web", "10.79.1.12", "unhealthy", timeout=3 * INTERVAL)
    took = time.monotonic() - started
    assert described["TargetHealth"]["Reason"] == "Target.ResponseCodeMismatch"
    assert took <= 2 * INTERVAL + 1  # UnhealthyThresholdCount (2) checks, one interval apart
    env.tasks["c"].hits = 0
    for _ in range(6):
        assert json.loads(env.request("/after")[2])["target"] in ("a", "b")
    assert env.tasks["c"].hits == 0
    env.tasks["c"].health_status = 200
    started = time.monotonic()
    env.wait_state("live-web", "10.79.1.12", "healthy", timeout=3 * INTERVAL)
    back = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\n  unhealthy after {took:.1f} s, healthy again after {back:.1f} s (interval {INTERVAL} s, thresholds 2)"
        )


def test_idle_timeout_gives_504(env: Env) -> None:
    env.elb.modify_load_balancer_attributes(
        LoadBalancerArn=env.lb_arn, Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "1"}]
    )
    for task in env.tasks.values():
        task.delay = 3.0
    try:
        started = time.monotonic()
        status, headers, _body = env.request("/slow")
        assert status == 504
        assert headers["Server"] == "awselb/2.0"
        assert time.monotonic() - started < 2.9
    finally:
        for task in env.tasks.values():
            task.delay = 0.0
        env.elb.modify_load_balancer_attributes(
            LoadBalancerArn=env.lb_arn, Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "60"}]
        )


def test_deregistered_target_drains_then_is_gone(env: Env) -> None:
    env.wait_state("live-web", "10.79.0.10", "healthy", timeout=INTERVAL)
    env.elb.deregister_targets(TargetGroupArn=env.groups["live-web"], Targets=[{"Id": "10.79.0.10", "Port": 8000}])
    draining = env.health("live-web")["10.79.0.10"]["TargetHealth"]
    assert draining == {
        "State": "draining",
        "Reason": "Target.DeregistrationInProgress",
        "Description": "Target deregistration is in progress",
    }
    env.tasks["a"].hits = 0
    for _ in range(4):
        assert json.loads(env.request("/drain")[2])["target"] != "a"
    _wait("the drained target to leave", lambda: "10.79.0.10" not in env.health("live-web"), DEREGISTRATION_DELAY + 3)
    asked = env.health("live-web", Targets=[{"Id": "10.79.0.10", "Port": 8000}])["10.79.0.10"]["TargetHealth"]
    assert (asked["State"], asked["Reason"]) == ("unused", "Target.NotRegistered")
    # Registered again while failing its checks: initial until it passes one (or fails two).
    env.tasks["a"].health_status = 500
    env.elb.register_targets(TargetGroupArn=env.groups["live-web"], Targets=[{"Id": "10.79.0.10", "Port": 8000}])
    again = _wait(
        "the first health check of the re-registered target",
        lambda: (
            (h := env.health("live-web")["10.79.0.10"]["TargetHealth"])["Reason"] == "Elb.InitialHealthChecking" and h
        ),
        2,
    )
    assert again == {
        "State": "initial",
        "Reason": "Elb.InitialHealthChecking",
        "Description": "Initial health checks in progress",
    }
    for _ in range(4):  # a target in its initial checks gets no traffic
        assert json.loads(env.request("/initial")[2])["target"] != "a"
    env.tasks["a"].health_status = 200


def test_outage_refuses_connections_and_restore_reopens_same_port(env: Env) -> None:
    port = env.local_port(80)
    env.wait_state("live-web", "10.79.0.11", "healthy", timeout=INTERVAL)
    _control(env.sandbox, "POST", "outage", {"region": REGION})
    try:
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        listed = _control(env.sandbox, "GET", "alb")
        ours = next(lb for lb in listed["load_balancers"] if lb["dns_name"] == env.dns)
        assert not any(listener["serving"] for listener in ours["listeners"])
    finally:
        _control(env.sandbox, "POST", "restore", {"region": REGION})
    assert env.local_port(80) == port
    status, _headers, _body = env.request("/back")
    assert status == 200


def test_control_route_lists_listeners_and_target_states(env: Env) -> None:
    listed = _control(env.sandbox, "GET", "alb")
    ours = next(lb for lb in listed["load_balancers"] if lb["dns_name"] == env.dns)
    assert {listener["port"] for listener in ours["listeners"]} == {80, 443}
    assert all(listener["local"].startswith("127.0.0.1:") for listener in ours["listeners"])
    web = next(g for g in listed["target_groups"] if g["name"] == "live-web")
    assert {t["id"] for t in web["targets"]} >= {"10.79.0.11", "10.79.1.12"}
    with pytest.raises(urllib.error.HTTPError) as raised:
        _control(env.sandbox, "POST", "names", {"name": "10.0.0.1", "port": 8000, "local_port": "x"})
    assert raised.value.code == 400


def test_listener_port_change_and_delete(env: Env) -> None:
    port = env.local_port(443)
    with pytest.raises(env.elb.exceptions.DuplicateListenerException):
        env.elb.create_listener(
            LoadBalancerArn=env.lb_arn,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": env.groups["live-web"]}],
        )
    env.elb.modify_listener(ListenerArn=env.listeners[443], Port=8443)
    names = _control(env.sandbox, "GET", "")["names"]
    assert f"{env.dns}:443" not in names
    assert env.local_port(8443) == port  # same local listener, published under its new port
    assert env.request("/moved", port=8443)[0] == 200
    env.elb.delete_listener(ListenerArn=env.listeners.pop(443))
    assert f"{env.dns}:8443" not in _control(env.sandbox, "GET", "")["names"]
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


# -- the proxy's HTTP handling, on a balancer of the test's own (no sandbox server, no waits) ------------

SCRIPTS: dict[str, bytes] = {
    "/health": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close",
    "/head": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Kind: head\r\n\r\n",
    "/early": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/garbage": b"NOT HTTP AT ALL\r\n\r\n",
    "/doom": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbye!",
}


class ScriptedTarget:
    """A raw HTTP/1.1 target answering canned bytes per path. After /doom it keeps the connection open
    but hangs up on the next request sent there without answering: the race a pooling proxy meets when
    a server's keep-alive timeout closes a connection just as it is reused."""

    def __init__(self) -> None:
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        doomed = False
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = next(
                    (int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"), 0
                )
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                if doomed:
                    return
                doomed = path == "/doom"
                if path == "/echo":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                else:
                    conn.sendall(SCRIPTS.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
                if path in ("/close", "/garbage"):
                    return

    def close(self) -> None:
        self.sock.close()


class LocalPlane:
    def __init__(self) -> None:
        from sandbox.services.elbv2 import listener as alb
        from sandbox.services.elbv2 import rules as alb_rules

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.target = ScriptedTarget()
        names = {("10.0.0.9", 8000): ("127.0.0.1", self.target.port)}
        self.published: dict[tuple[str, int], int] = {}
        self.balancer = self.call(
            alb.Balancer.create(
                lambda n, p: names.get((n, p)),
                lambda n, p, lp: self.published.__setitem__((n, p), lp),
                lambda n, p: None,
            )
        )
        scope = ("000000000000", "us-east-1")
        rules = (alb_rules.Rule(float("inf"), (), alb_rules.Action("forward", groups=(("tg", 1),))),)
        listener = alb_rules.ListenerSpec("l", scope, "lb", "lb", "lb.example.com", 80, "HTTP", rules)
        group = alb.TargetGroupSpec(
            "tg", "tg", scope, alb.HealthCheck(path="/health", interval=30), 0, (("10.0.0.9", 8000),), True
        )
        self.call(self.balancer.apply(scope, [listener], [group]))
        _wait(
            "the scripted target to pass its check",
            lambda: self.balancer.health_rows("tg", [])[0]["state"] == "healthy",
            5,
        )
        self.port = self.published[("lb.example.com", 80)]

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def raw(self, data: bytes, until_close: bool = True) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(data)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                if not until_close and b"".join(chunks).count(b"HTTP/1.1 ") >= data.count(b" HTTP/1."):
                    return b"".join(chunks)

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, headers={"Host": "lb.example.com"})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.call(self.balancer.stop())
        self.target.close()
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def plane() -> Iterator[LocalPlane]:
    local = LocalPlane()
    yield local
    local.close()


def test_proxy_rechunks_bodies_without_length_and_relays_close_delimited_ones(plane: LocalPlane) -> None:
    status, headers, body = plane.get("/chunked")
    assert (status, body, headers.get("Transfer-Encoding")) == (200, b"hello world", "chunked")
    status, headers, body = plane.get("/close")
    assert (status, body, headers.get("Transfer-Encoding")) == (200, b"until-close", "chunked")
    answer = plane.raw(b"GET /close HTTP/1.0\r\nHost: lb.example.com\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\nuntil-close")


def test_proxy_head_informational_and_garbage(plane: LocalPlane) -> None:
    status, headers, body = plane.get("/head", method="HEAD")
    assert (status, headers["Content-Length"], headers["X-Kind"], body) == (200, "10", "head", b"")
    assert plane.get("/early")[::2] == (200, b"ok")
    status, headers, _body = plane.get("/garbage")
    assert (status, headers["Server"]) == (502, "awselb/2.0")


def test_proxy_answers_a_client_that_half_closed(plane: LocalPlane) -> None:
    with socket.create_connection(("127.0.0.1", plane.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: lb.example.com\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"\r\n\r\nok")


def test_proxy_answers_pipelined_requests_in_order(plane: LocalPlane) -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: lb.example.com\r\nContent-Length: %d\r\n\r\n%s"
    answer = plane.raw(request % (5, b"first") + request % (6, b"second"), until_close=False)
    assert answer.index(b"first") < answer.index(b"second")
    assert answer.count(b"HTTP/1.1 200 OK") == 2


def test_proxy_retries_a_pooled_connection_the_target_closed(plane: LocalPlane) -> None:
    assert plane.get("/doom")[::2] == (200, b"bye!")
    before = plane.target.connections
    # The pool hands out its most recently used connection: the doomed one. Its hang-up comes before
    # any response byte, so the request is sent again on a new connection instead of failing with 502.
    assert plane.get("/health")[::2] == (200, b"ok")
    assert plane.target.connections == before + 1


def test_proxy_answers_expect_100_continue(plane: LocalPlane) -> None:
    with socket.create_connection(("127.0.0.1", plane.port), timeout=5) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: lb.example.com\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"data")
        answer = b""
        while not answer.endswith(b"data"):
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK")


def test_rule_conditions_and_redirect_placeholders() -> None:
    from sandbox.services.elbv2 import rules as alb

    request = alb._Request(
        b"GET",
        b"/api/v1/items?color=Blue&x=",
        [(b"Host", b"Shop.Example.com:8080"), (b"User-Agent", b"curl/8.0")],
        b"",
        True,
        "1.1",
    )
    matches = [
        ({"Field": "path-pattern", "Values": ["/api/*"]}, True),
        ({"Field": "path-pattern", "PathPatternConfig": {"Values": ["/API/*"]}}, False),  # paths are case-sensitive
        ({"Field": "path-pattern", "Values": ["/api/v?/items"]}, True),
        ({"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}}, True),
        ({"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "user-agent", "Values": ["CURL/*"]}}, True),
        ({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}, False),
        ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "color", "Value": "blue"}]}}, True),
        ({"Field": "source-ip", "SourceIpConfig": {"Values": ["127.0.0.0/8"]}}, True),
        ({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}, False),
    ]
    for condition, expected in matches:
        assert alb.condition_from_api(condition)(request, "127.0.0.1") is expected, condition
    spec = alb.ListenerSpec("l", ("a", "r"), "lb", "lb", "lb.example.com", 80, "HTTP", ())
    assert alb.redirect_location({"Protocol": "HTTPS", "Port": "443"}, request, spec) == (
        "https://Shop.Example.com:443/api/v1/items?color=Blue&x="
    )
    assert alb.redirect_location({"Host": "#{host}.new", "Path": "/#{path}/x", "Query": "a=1"}, request, spec) == (
        "http://Shop.Example.com.new:80/api/v1/items/x?a=1"
    )
    weighted = alb.action_from_api(
        [
            {
                "Type": "forward",
                "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "a", "Weight": 0}, {"TargetGroupArn": "b"}]},
            }
        ]
    )
    assert weighted.groups == (("a", 0), ("b", 1))

"""plugins/modules/health_check_gate.py: input validation, the polling logic and each probe (unit),
and the module against the live sandbox (integration, in tests/modules/test_health_check_gate_live.py)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import REPO_ROOT, load_module_file

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "health_check_gate.py")


# --- validation ----------------------------------------------------------------------------------


def test_each_type_names_what_it_needs_and_what_does_not_apply() -> None:
    with pytest.raises(mod.GateError, match=r"checks\[0\]: a target_group check needs target_group_arn"):
        mod.validate([{"type": "target_group"}])
    with pytest.raises(mod.GateError, match=r"checks\[1\] \(api\): url do not apply to a route53 check"):
        mod.validate(
            [
                {"type": "http", "url": "http://127.0.0.1/"},
                {"name": "api", "type": "route53", "health_check_id": "x", "url": "u"},
            ]
        )
    with pytest.raises(mod.GateError, match="checks is empty"):
        mod.validate([])
    with pytest.raises(mod.GateError, match="min_healthy must be at least 1"):
        mod.validate([{"type": "target_group", "target_group_arn": "arn:aws:x:us-east-1:1:tg", "min_healthy": 0}])


def test_defaults_and_names_are_filled_in() -> None:
    (http_check, lag) = mod.validate(
        [
            {"type": "http", "url": "http://127.0.0.1:1/health"},
            {"type": "aurora_replication_lag", "global_cluster_identifier": "g"},
        ]
    )
    assert http_check["status_codes"] == [200] and http_check["name"] == "http http://127.0.0.1:1/health"
    assert lag["max_lag_ms"] == 1000 and lag["name"] == "aurora_replication_lag g"


# --- the polling loop ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_passes_after_n_consecutive_healthy_polls_and_a_relapse_resets_the_streak() -> None:
    clock = FakeClock()
    answers = {"a": iter([True, True, False, True, True, True]), "b": iter([True] * 10)}
    checks = [{"name": "a", "type": "http"}, {"name": "b", "type": "http"}]
    passed, report, polls, _ = mod.run_gate(
        checks, lambda c: (next(answers[c["name"]]), "seen"), "healthy", 3, 5, 100, clock, clock.sleep
    )
    assert passed and polls == 6
    assert report[0]["passed_after_s"] == 25 and report[1]["passed_after_s"] == 10
    assert report[1]["streak"] == 3, "a passed check is not polled again"


def test_times_out_with_a_report_naming_what_failed() -> None:
    clock = FakeClock()
    checks = [{"name": "east", "type": "route53"}, {"name": "west", "type": "route53"}]
    passed, report, polls, elapsed = mod.run_gate(
        checks,
        lambda c: (c["name"] == "west", "0/1 checkers report success" if c["name"] == "east" else "ok"),
        "healthy", 2, 5, 30, clock, clock.sleep,
    )  # fmt: skip
    assert not passed and elapsed <= 30 and polls == 7  # t = 0, 5, ..., 30
    message = mod.failure_message(report, "healthy", 2, 30)
    assert message.startswith("1 of 2 check(s) were not healthy for 2 consecutive polls within 30 s")
    assert "east: 0/1 checkers report success (streak 0/2)" in message and "west" not in message


def test_expect_unhealthy_waits_for_failure() -> None:
    clock = FakeClock()
    seq = iter([True, True, False])
    passed, report, _, _ = mod.run_gate(
        [{"name": "a", "type": "route53"}], lambda c: (next(seq), "x"), "unhealthy", 1, 1, 10, clock, clock.sleep
    )
    assert passed and report[0]["passed_after_s"] == 2


# --- the probes (fake AWS clients, a real local HTTP server) ------------------------------------------


class FakeClients:
    def __init__(self, **responses: Any) -> None:
        self.responses = responses
        self.calls: list[tuple[str, str]] = []

    def get(self, service: str, region: str) -> Any:
        self.calls.append((service, region))
        outer = self

        class Client:
            def __getattr__(self, name: str) -> Any:
                return lambda **_: outer.responses[name]

        return Client()


def test_route53_needs_more_than_18_percent_of_checkers() -> None:
    def obs(*statuses: str) -> FakeClients:
        return FakeClients(
            get_health_check_status={"HealthCheckObservations": [{"StatusReport": {"Status": s}} for s in statuses]}
        )

    assert mod.probe_route53(obs("Success: HTTP Status Code 200", "Failure: timeout"), {"health_check_id": "x"})
    with pytest.raises(mod.Unhealthy, match="0/2 checkers report success"):
        mod.probe_route53(obs("Failure: Connection refused", "Failure: Connection refused"), {"health_check_id": "x"})


def test_target_group_counts_healthy_targets_in_the_arns_region() -> None:
    clients = FakeClients(
        describe_target_health={
            "TargetHealthDescriptions": [{"TargetHealth": {"State": s}} for s in ("healthy", "unhealthy", "healthy")]
        }
    )
    arn = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/tg/abc"
    assert mod.probe_target_group(clients, {"target_group_arn": arn, "min_healthy": 2}).startswith("2 healthy of 3")
    assert clients.calls == [("elbv2", "us-west-2")]
    with pytest.raises(mod.Unhealthy, match="need 3"):
        mod.probe_target_group(clients, {"target_group_arn": arn, "min_healthy": 3})


def test_ecs_steady_state_needs_one_completed_deployment() -> None:
    service = {
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": 2,
        "pendingCount": 0,
        "deployments": [{"rolloutState": "COMPLETED"}],
    }
    check = {"cluster": "c", "service": "s", "region": "us-east-1"}
    assert "running 2/2" in mod.probe_ecs_service(FakeClients(describe_services={"services": [service]}), check)
    rolling = service | {"deployments": [{"rolloutState": "IN_PROGRESS"}, {"rolloutState": "COMPLETED"}]}
    with pytest.raises(mod.Unhealthy, match="2 deployment"):
        mod.probe_ecs_service(FakeClients(describe_services={"services": [rolling]}), check)
    with pytest.raises(mod.GateError, match="not found"):
        mod.probe_ecs_service(
            FakeClients(describe_services={"services": [], "failures": [{"reason": "MISSING"}]}), check
        )


def test_alarm_must_be_ok() -> None:
    alarm = {"MetricAlarms": [{"StateValue": "ALARM", "StateReason": "threshold crossed"}], "CompositeAlarms": []}
    with pytest.raises(mod.Unhealthy, match="state ALARM: threshold crossed"):
        mod.probe_cloudwatch_alarm(FakeClients(describe_alarms=alarm), {"alarm_name": "a", "region": "us-east-1"})


def test_replication_lag_needs_connected_secondaries_under_the_bound() -> None:
    import datetime

    member = {
        "DBClusterArn": "arn:aws:rds:us-west-2:1:cluster:west",
        "IsWriter": False,
        "SynchronizationStatus": "connected",
    }
    writer = {"DBClusterArn": "arn:aws:rds:us-east-1:1:cluster:east", "IsWriter": True}
    now = datetime.datetime.now(datetime.UTC)

    def clients(lag: float, sync: str = "connected") -> FakeClients:
        return FakeClients(
            describe_global_clusters={
                "GlobalClusters": [{"GlobalClusterMembers": [writer, member | {"SynchronizationStatus": sync}]}]
            },
            get_metric_statistics={"Datapoints": [{"Timestamp": now, "Maximum": lag}]},
        )

    check = {"global_cluster_identifier": "g", "max_lag_ms": 1000, "region": "us-west-2"}
    assert mod.probe_aurora_replication_lag(clients(120), check) == "west (us-west-2) lag 120 ms"
    with pytest.raises(mod.Unhealthy, match="bound 1000 ms"):
        mod.probe_aurora_replication_lag(clients(4000), check)
    with pytest.raises(mod.Unhealthy, match="pending-resync"):
        mod.probe_aurora_replication_lag(clients(0, "pending-resync"), check)


@pytest.fixture
def web() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path == "/ok" else 503
            body = b'{"status":"ok"}' if status == 200 else b'{"status":"unavailable"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_status_body_and_latency(web: str) -> None:
    base = {"status_codes": [200], "request_timeout": 2, "validate_certs": True}
    assert mod.probe_http(None, base | {"url": f"{web}/ok", "body_contains": '"ok"'}).startswith("HTTP 200 in")
    with pytest.raises(mod.Unhealthy, match=r"HTTP 503 in \d+ ms; expected \[200\]"):
        mod.probe_http(None, base | {"url": f"{web}/down"})
    with pytest.raises(mod.Unhealthy, match="body does not contain"):
        mod.probe_http(None, base | {"url": f"{web}/ok", "body_contains": "nope"})
    with pytest.raises(mod.Unhealthy, match="no response"):
        mod.probe_http(None, base | {"url": "http://127.0.0.1:9/"})

"""plugins/module_utils/ shared by the modules: ARNs, the per-region client cache, the CloudWatch metric read,
and waiting (wait_until and botocore's own waiters). Unit tests; the modules' integration tests use them live."""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import botocore.waiter
import pytest
from ansible_collections.hawa.platform.plugins.module_utils.arn import region_from_arn
from ansible_collections.hawa.platform.plugins.module_utils.clients import ClientCache
from ansible_collections.hawa.platform.plugins.module_utils.cloudwatch import latest_datapoint
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, run_waiter, wait_until
from botocore.exceptions import ClientError
from botocore.stub import Stubber

# --- region_from_arn --------------------------------------------------------------------------------------


def test_region_from_arn() -> None:
    assert region_from_arn("arn:aws:rds:us-west-2:123456789012:cluster:hawa-west") == "us-west-2"
    target_group = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tg/0123456789abcdef"
    assert region_from_arn(target_group) == "eu-west-1"
    # Global resources have an empty region field; anything that is not an ARN has none.
    assert region_from_arn("arn:aws:rds::123456789012:global-cluster:hawa-global") == ""
    assert region_from_arn("arn:aws:iam::123456789012:role/x", "us-east-1") == "us-east-1"
    assert region_from_arn("hawa-west", "us-east-1") == "us-east-1"
    assert region_from_arn(None) == ""


# --- ClientCache ------------------------------------------------------------------------------------------


def test_client_cache_makes_each_client_once_and_only_when_asked() -> None:
    made = []

    def make(service: str, region: str) -> tuple[str, str]:
        made.append((service, region))
        return (service, region)

    cache = ClientCache(make, {("rds", "us-east-1"): "fake"})
    assert made == []
    assert cache.get("rds", "us-east-1") == "fake"
    assert cache.get("rds", "us-west-2") == ("rds", "us-west-2")
    assert cache.get("rds", "us-west-2") == ("rds", "us-west-2")
    assert made == [("rds", "us-west-2")]


# --- latest_datapoint -------------------------------------------------------------------------------------


class FakeCloudWatch:
    def __init__(self, datapoints: list[dict[str, Any]]) -> None:
        self.datapoints = datapoints
        self.calls: list[dict[str, Any]] = []

    def get_metric_statistics(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Datapoints": self.datapoints}


def test_latest_datapoint_is_the_newest_not_the_largest() -> None:
    now = datetime.datetime.now(datetime.UTC)
    cloudwatch = FakeCloudWatch(
        [
            {"Timestamp": now - datetime.timedelta(minutes=2), "Maximum": 900.0},
            {"Timestamp": now - datetime.timedelta(minutes=1), "Maximum": 120.0},
            {"Timestamp": now - datetime.timedelta(minutes=3), "Maximum": 50.0},
        ]
    )
    lag = latest_datapoint(cloudwatch, "AWS/RDS", "AuroraGlobalDBReplicationLag", {"DBClusterIdentifier": "west"})
    assert lag == 120.0
    (call,) = cloudwatch.calls
    assert call["aws_retry"] is True and call["Statistics"] == ["Maximum"] and call["Period"] == 60
    assert call["Dimensions"] == [{"Name": "DBClusterIdentifier", "Value": "west"}]
    assert call["EndTime"] - call["StartTime"] == datetime.timedelta(minutes=5)


def test_latest_datapoint_of_an_empty_window_is_unknown() -> None:
    assert latest_datapoint(FakeCloudWatch([]), "AWS/RDS", "AuroraGlobalDBRPOLag", {"DBClusterIdentifier": "x"}) is None


# --- wait_until -------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def test_wait_until_reads_at_once_and_returns_the_value_that_is_done() -> None:
    clock = Clock()
    values = iter(["creating", "modifying", "available"])
    found = wait_until(lambda: next(values), lambda v: v == "available", "'g' to be available", 60, delay=5, jitter=0,
                       clock=clock, sleep=clock.sleep)  # fmt: skip
    assert found == "available" and clock.pauses == [5, 5]
    assert wait_until(lambda: "x", bool, "x", 0, clock=clock, sleep=clock.sleep) == "x"


def test_wait_until_backs_off_up_to_max_delay_and_reads_a_last_time_at_the_deadline() -> None:
    clock = Clock()
    with pytest.raises(WaitTimeout) as excinfo:
        wait_until(lambda: {"Status": "switching-over"}, lambda _v: False, "the switchover to hawa-west", 30, delay=1,
                   max_delay=10, state=lambda v: v["Status"], jitter=0, clock=clock, sleep=clock.sleep)  # fmt: skip
    assert clock.pauses == [1, 2, 4, 8, 10, 5] and clock.now == 30
    assert str(excinfo.value) == "Timeout waiting for the switchover to hawa-west (last state: switching-over)"
    assert excinfo.value.last == {"Status": "switching-over"} and excinfo.value.last_state == "switching-over"


def test_wait_until_jitter_only_shortens_pauses() -> None:
    clock = Clock()
    with pytest.raises(WaitTimeout):
        wait_until(lambda: None, lambda _v: False, "x", 1000, delay=5, jitter=0.2, clock=clock, sleep=clock.sleep)
    assert all(4 <= pause <= 5 for pause in clock.pauses[:-1]) and clock.now == 1000
    assert len(set(clock.pauses)) > 1


def test_wait_until_lets_read_errors_through() -> None:
    def read() -> None:
        raise RuntimeError("AccessDenied")

    with pytest.raises(RuntimeError, match="AccessDenied"):
        wait_until(read, bool, "x", 60)


# --- run_waiter: botocore's own waiters, on a real client answering from a stub ---------------------------


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr(botocore.waiter.time, "sleep", pauses.append)
    return pauses


DISTRIBUTION = {
    "Id": "E1",
    "ARN": "arn:aws:cloudfront::123456789012:distribution/E1",
    "LastModifiedTime": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    "InProgressInvalidationBatches": 0,
    "DomainName": "d1.cloudfront.net",
    "DistributionConfig": {
        "CallerReference": "hawa-cdn",
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "origin.example.com"}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all"},
        "Comment": "",
        "Enabled": True,
    },
}


def _cloudfront(*statuses: str) -> tuple[Any, Stubber]:
    client = boto3.client("cloudfront", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for status in statuses:
        stubber.add_response("get_distribution", {"Distribution": DISTRIBUTION | {"Status": status}}, {"Id": "E1"})
    stubber.activate()
    return client, stubber


def _status(response: dict[str, Any]) -> str:
    return response.get("Distribution", {}).get("Status", "unknown")


def test_run_waiter_returns_once_the_waiter_succeeds(no_sleep: list[float]) -> None:
    client, stubber = _cloudfront("InProgress", "InProgress", "Deployed")
    run_waiter(client.get_waiter("distribution_deployed"), "distribution 'E1' to be Deployed", 60, 5, _status, Id="E1")
    stubber.assert_no_pending_responses()
    assert no_sleep == [5, 5]


def test_run_waiter_polls_until_the_deadline_then_names_the_last_state(no_sleep: list[float]) -> None:
    # 10 s at 5 s apart: polls at 0, 5 and 10 s.
    client, stubber = _cloudfront("InProgress", "InProgress", "InProgress")
    with pytest.raises(WaitTimeout) as excinfo:
        run_waiter(client.get_waiter("distribution_deployed"), "distribution 'E1' to be Deployed", 10, 5, _status,
                   Id="E1")  # fmt: skip
    stubber.assert_no_pending_responses()
    assert str(excinfo.value) == "Timeout waiting for distribution 'E1' to be Deployed (last state: InProgress)"
    assert excinfo.value.last["Distribution"]["Id"] == "E1"


def test_run_waiter_raises_an_api_error_as_the_call_would(no_sleep: list[float]) -> None:
    client = boto3.client("cloudfront", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_client_error("get_distribution", "NoSuchDistribution", "The specified distribution does not exist.")
    stubber.activate()
    with pytest.raises(ClientError) as excinfo:
        run_waiter(client.get_waiter("distribution_deployed"), "d", 60, 5, _status, Id="E1")
    assert excinfo.value.response["Error"]["Code"] == "NoSuchDistribution"
    assert excinfo.value.operation_name == "GetDistribution"

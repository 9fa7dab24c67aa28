"""CloudWatch alarms evaluate their metric's data (sandbox/services/cloudwatch/: alarms.py, provider.py).

The evaluator's tests run in this process on moto's backends, with the provider's patches applied for
the test and undone after, a clock the test sets, and 10 s periods whose datapoints are put at
timestamps in the past: each takes milliseconds. The last tests go through a live sandbox's API
(DescribeAlarmHistory, the control routes).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox import patches
from sandbox.config import SandboxConfig
from sandbox.services.cloudwatch import alarms as cw
from sandbox.services.cloudwatch import metrics, provider

ACCOUNT = "123456789012"
REGION = "us-east-1"
PERIOD = 10
# A fixed "now", 5 s into a 10 s period: the period [NOW - 5, NOW + 5) is open.
NOW = math.floor(1_796_000_000 / PERIOD) * PERIOD + 5.0
DIMS = [{"Name": "Service", "Value": "web"}]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dark() -> set[str]:
    return set()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def evaluator(dark: set[str], clock: Clock) -> Iterator[cw.Alarms]:
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.sns.models import sns_backends
    from moto.sqs.models import sqs_backends

    for backends in (cloudwatch_backends, sns_backends, sqs_backends):
        for region in ("us-east-1", "us-west-2"):
            backends[ACCOUNT][region].reset()
    alarms = cw.Alarms(lambda region: region in dark, clock=clock)
    provider._patch_backend(alarms)
    try:
        yield alarms
    finally:
        patches.undo(owner=provider.__name__)


def backend(region: str = REGION) -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[ACCOUNT][region]


def put_alarm(name: str = "errors", region: str = REGION, **settings: Any) -> Any:
    values: dict[str, Any] = {
        "namespace": "Test/App",
        "metric_name": "Errors",
        "comparison_operator": "GreaterThanThreshold",
        "evaluation_periods": 1,
        "period": PERIOD,
        "threshold": 0.0,
        "statistic": "Sum",
        "description": "errors",
        "dimensions": DIMS,
        "alarm_actions": [],
    }
    values.update(settings)
    return backend(region).put_metric_alarm(name, **values)


def put_values(*values: float | None, periods_ago: int = 1, region: str = REGION, name: str = "Errors") -> None:
    """One datapoint per period, oldest first, the last one ``periods_ago`` periods before the open one."""
    for index, value in enumerate(reversed(values)):
        if value is None:
            continue
        start = NOW - 5 - (periods_ago + index) * PERIOD
        backend(region).put_metric_data(
            "Test/App",
            [
                {
                    "MetricName": name,
                    "Value": value,
                    "Dimensions": DIMS,
                    "Timestamp": dt.datetime.fromtimestamp(start + 1, dt.UTC),
                }
            ],
        )


def stamp(periods_ago: int) -> str:
    start = NOW - 5 - periods_ago * PERIOD
    return dt.datetime.fromtimestamp(start, dt.UTC).strftime("%d/%m/%y %H:%M:%S")


def history(region: str = REGION, kind: str | None = None) -> list[dict[str, Any]]:
    return [h for h in cw.history_of(backend(region)) if kind is None or h["HistoryItemType"] == kind]


# -- the rule --------------------------------------------------------------------------------------------------


def test_a_new_alarm_is_insufficient_data_until_evaluated(evaluator: cw.Alarms) -> None:
    alarm = put_alarm()
    assert (alarm.state_value, alarm.state_reason) == ("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation")
    put_values(3)
    evaluator.tick()
    assert alarm.state_value == "ALARM"
    assert alarm.state_reason == (
        f"Threshold Crossed: 1 out of the last 1 datapoints [3.0 ({stamp(1)})] was greater than the threshold (0.0) "
        "(minimum 1 datapoint for INSUFFICIENT_DATA -> ALARM transition)."
    )
    data = json.loads(alarm.state_reason_data)
    assert data["statistic"] == "Sum" and data["period"] == PERIOD and data["threshold"] == 0.0
    assert data["recentDatapoints"] == [3.0]
    assert data["evaluatedDatapoints"][0]["value"] == 3.0 and data["evaluatedDatapoints"][0]["sampleCount"] == 1.0


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [("Sum", 5050.0), ("Average", 50.5), ("Minimum", 1.0), ("Maximum", 100.0), ("SampleCount", 100.0), ("p99", 99.0)],
)
def test_each_statistic(evaluator: cw.Alarms, statistic: str, expected: float) -> None:
    settings = (
        {"extended_statistic": statistic, "statistic": None} if statistic.startswith("p") else {"statistic": statistic}
    )
    alarm = put_alarm(threshold=expected, comparison_operator="GreaterThanOrEqualToThreshold", **settings)
    start = NOW - 5 - PERIOD
    backend().put_metric_data(
        "Test/App",
        [
            {
                "MetricName": "Errors",
                "Values": [float(v) for v in range(1, 101)],
                "Dimensions": DIMS,
                "Timestamp": dt.datetime.fromtimestamp(start + 2, dt.UTC),
            }
        ],
    )
    evaluator.tick()
    assert json.loads(alarm.state_reason_data)["recentDatapoints"] == [expected]
    assert alarm.state_value == "ALARM"
    alarm.threshold = expected + 0.5
    evaluator.tick()
    assert alarm.state_value == "OK"


def test_percentiles_read_published_distributions(evaluator: cw.Alarms) -> None:
    alarm = put_alarm(statistic=None, extended_statistic="p99", threshold=1.0, metric_name="TargetResponseTime")
    metrics.put_distribution(
        ACCOUNT, REGION, "Test/App", "TargetResponseTime", [0.01] * 98 + [2.0, 3.0], DIMS, "Seconds"
    )
    evaluator.clock = lambda: time.time() + PERIOD  # stamped now (the open period): look from the next one
    evaluator.tick()
    assert alarm.state_value == "ALARM"
    assert json.loads(alarm.state_reason_data)["recentDatapoints"] == [2.0]


@pytest.mark.parametrize(
    ("operator", "value", "state"),
    [
        ("GreaterThanThreshold", 5.0, "OK"),
        ("GreaterThanThreshold", 6.0, "ALARM"),
        ("GreaterThanOrEqualToThreshold", 5.0, "ALARM"),
        ("LessThanThreshold", 5.0, "OK"),
        ("LessThanThreshold", 4.0, "ALARM"),
        ("LessThanOrEqualToThreshold", 5.0, "ALARM"),
        ("LessThanOrEqualToThreshold", 6.0, "OK"),
    ],
)
def test_comparisons(evaluator: cw.Alarms, operator: str, value: float, state: str) -> None:
    alarm = put_alarm(comparison_operator=operator, threshold=5.0)
    put_values(value)
    evaluator.tick()
    assert alarm.state_value == state


def test_ok_reason_names_the_points_that_did_not_breach(evaluator: cw.Alarms) -> None:
    alarm = put_alarm(comparison_operator="GreaterThanOrEqualToThreshold", threshold=1.0, statistic="Maximum")
    put_values(0)
    evaluator.tick()
    assert alarm.state_reason == (
        f"Threshold Crossed: 1 out of the last 1 datapoints [0.0 ({stamp(1)})] was not greater than or equal to "
        "the threshold (1.0) (minimum 1 datapoint for INSUFFICIENT_DATA -> OK transition)."
    )


def test_m_out_of_n(evaluator: cw.Alarms) -> None:
    alarm = put_alarm(evaluation_periods=3, datapoints_to_alarm=2, threshold=1.0)
    put_values(5, 0, 0)
    evaluator.tick()
    assert alarm.state_value == "OK"
    assert "(minimum 2 datapoints for INSUFFICIENT_DATA -> OK transition)" in alarm.state_reason
    backend().metric_data.clear()
    put_values(5, 0, 7)
    evaluator.tick()
    assert alarm.state_value == "ALARM"
    assert alarm.state_reason == (
        f"Threshold Crossed: 2 out of the last 3 datapoints [7.0 ({stamp(1)}), 5.0 ({stamp(3)})] were greater than "
        "the threshold (1.0) (minimum 2 datapoints for OK -> ALARM transition)."
    )


@pytest.mark.parametrize(
    ("treatment", "state", "reason"),
    [
        ("missing", "INSUFFICIENT_DATA", "Insufficient Data: 2 datapoints were unknown."),
        ("ignore", "OK", "kept"),
        (
            "breaching",
            "ALARM",
            "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as "
            "[Breaching].",
        ),
        (
            "notBreaching",
            "OK",
            "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as "
            "[NonBreaching].",
        ),
    ],
)
def test_treat_missing_data_when_every_point_is_missing(
    evaluator: cw.Alarms, clock: Clock, treatment: str, state: str, reason: str
) -> None:
    alarm = put_alarm(evaluation_periods=2, treat_missing_data=treatment)
    before = 0.0 if treatment in ("breaching", "ignore") else 5.0  # a state other than the one expected
    put_values(before, before)
    evaluator.tick()
    assert alarm.state_value == ("OK" if before == 0 else "ALARM")
    clock.now = NOW + 10 * PERIOD  # the data is out of the evaluation range now
    evaluator.tick()
    assert alarm.state_value == state
    if treatment == "ignore":
        assert alarm.state_reason.startswith("Threshold Crossed: 2 out of the last 2 datapoints")
    else:
        assert alarm.state_reason == reason


@pytest.mark.parametrize(
    ("treatment", "state"), [("breaching", "ALARM"), ("notBreaching", "OK"), ("missing", "INSUFFICIENT_DATA")]
)
def test_too_few_points_are_filled_as_few_times_as_possible(evaluator: cw.Alarms, treatment: str, state: str) -> None:
    # N = 3, M = 2: one real point that does not breach. Filled as breaching, 2 of 3 breach; not filled
    # (missing), one point is too few for OK (N - M + 1 = 2), so the state stays.
    alarm = put_alarm(evaluation_periods=3, datapoints_to_alarm=2, treat_missing_data=treatment)
    put_values(0)
    evaluator.tick()
    assert alarm.state_value == state


def test_too_few_real_points_for_either_transition_keep_the_state(evaluator: cw.Alarms) -> None:
    # N = 3, M = 3, missing data: one breaching point cannot alarm (needs 3), nor make it OK (needs 1 that does not breach).
    alarm = put_alarm(evaluation_periods=3, datapoints_to_alarm=3)
    put_values(5, None)
    evaluator.tick()
    assert alarm.state_value == "INSUFFICIENT_DATA"
    put_values(0)
    evaluator.tick()
    assert alarm.state_value == "OK"
    assert alarm.state_reason.startswith(
        f"Threshold Crossed: 1 out of the last 2 datapoints [0.0 ({stamp(1)})] was not"
    )


def test_enough_real_points_in_the_range_ignore_treat_missing_data(evaluator: cw.Alarms) -> None:
    # Gaps in the range, but 2 real points within N + 2 periods: the missing ones are not filled.
    alarm = put_alarm(evaluation_periods=2, treat_missing_data="breaching")
    put_values(0, None, 0, None)
    evaluator.tick()
    assert alarm.state_value == "OK"
    assert alarm.state_reason.startswith("Threshold Crossed: 2 out of the last 2 datapoints")


def test_the_open_period_counts_only_once_it_has_data(evaluator: cw.Alarms) -> None:
    alarm = put_alarm(evaluation_periods=1, treat_missing_data="breaching")
    put_values(0)  # the last closed period: not breaching
    evaluator.tick()
    assert alarm.state_value == "OK"  # the empty open period is not "missing"
    put_values(4, periods_ago=0)
    evaluator.tick()
    assert alarm.state_value == "ALARM"


def test_low_sample_percentiles_are_ignored_when_asked(evaluator: cw.Alarms) -> None:
    alarm = put_alarm(statistic=None, extended_statistic="p99", evaluate_low_sample_count_percentile="ignore")
    put_values(5)  # one sample: p99 needs 1,000 to be significant
    evaluator.tick()
    assert alarm.state_value == "INSUFFICIENT_DATA"
    alarm.evaluate_low_sample_count_percentile = "evaluate"
    evaluator.tick()
    assert alarm.state_value == "ALARM"


def test_unit_must_match_when_the_alarm_names_one(evaluator: cw.Alarms) -> None:
    alarm = put_alarm(unit="Seconds")
    put_values(5)  # put without a unit
    evaluator.tick()
    assert alarm.state_value == "INSUFFICIENT_DATA"


def test_metric_math_and_composite_alarms_are_left_alone(evaluator: cw.Alarms) -> None:
    from moto.cloudwatch.models import MetricDataQuery

    query = MetricDataQuery("e1", "sum", None, True, "SUM(METRICS())", None)
    alarm = put_alarm(name="math", metric_name=None, namespace=None, metric_data_queries=[query])
    evaluator.tick()
    assert alarm.state_value == "INSUFFICIENT_DATA"
    assert evaluator.last[(ACCOUNT, REGION, "math")]["not_evaluated"] == "a metric math alarm"


# -- state changes: history, actions, the API's calls ----------------------------------------------------------


def _topic_with_queue(region: str = REGION) -> tuple[str, Callable[[], list[dict[str, Any]]]]:
    from moto.sns.models import sns_backends
    from moto.sqs.models import sqs_backends

    topic = sns_backends[ACCOUNT][region].create_topic("alarms").arn
    queue = sqs_backends[ACCOUNT][region].create_queue("alarms")
    sns_backends[ACCOUNT][region].subscribe(topic, queue.queue_arn, "sqs")

    def received() -> list[dict[str, Any]]:
        messages = sqs_backends[ACCOUNT][region].receive_message("alarms", 10, 0, 30)
        return [json.loads(m.body) for m in messages]

    return topic, received


def test_actions_fire_on_transitions_only_with_the_alarm_notification(evaluator: cw.Alarms, clock: Clock) -> None:
    topic, received = _topic_with_queue()
    alarm = put_alarm(alarm_actions=[topic], ok_actions=[topic], description="Too many errors")
    put_values(3)
    evaluator.tick()
    evaluator.tick()  # still ALARM: no second notification
    notes = received()
    assert len(notes) == 1
    assert notes[0]["Subject"] == 'ALARM: "errors" in US East (N. Virginia)'
    message = json.loads(notes[0]["Message"])
    assert {
        k: message[k] for k in ("AlarmName", "AlarmDescription", "AWSAccountId", "NewStateValue", "OldStateValue")
    } == {
        "AlarmName": "errors",
        "AlarmDescription": "Too many errors",
        "AWSAccountId": ACCOUNT,
        "NewStateValue": "ALARM",
        "OldStateValue": "INSUFFICIENT_DATA",
    }
    assert message["NewStateReason"] == alarm.state_reason
    assert message["Region"] == "US East (N. Virginia)" and message["AlarmArn"] == alarm.alarm_arn
    assert message["StateChangeTime"].endswith("+0000")
    assert message["Trigger"] == {
        "MetricName": "Errors",
        "Namespace": "Test/App",
        "StatisticType": "Statistic",
        "Statistic": "SUM",
        "Unit": None,
        "Dimensions": [{"value": "web", "name": "Service"}],
        "Period": PERIOD,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0.0,
        "TreatMissingData": "missing",
        "EvaluateLowSampleCountPercentile": "",
    }
    put_values(0, periods_ago=0)
    clock.now = NOW + PERIOD
    evaluator.tick()
    notes = received()
    assert [n["Subject"] for n in notes] == ['OK: "errors" in US East (N. Virginia)']
    kinds = [(h["HistoryItemType"], h["HistorySummary"]) for h in history()]
    assert kinds == [
        ("ConfigurationUpdate", 'Alarm "errors" created'),
        ("StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM"),
        ("Action", f"Successfully executed action {topic}"),
        ("StateUpdate", "Alarm updated from ALARM to OK"),
        ("Action", f"Successfully executed action {topic}"),
    ]
    update = json.loads(history(kind="StateUpdate")[1]["HistoryData"])
    assert update["oldState"]["stateValue"] == "ALARM" and update["newState"]["stateValue"] == "OK"
    assert update["newState"]["stateReason"] == alarm.state_reason
    assert update["newState"]["stateReasonData"]["recentDatapoints"] == [0.0]


def test_disabled_actions_change_state_but_notify_nobody(evaluator: cw.Alarms) -> None:
    topic, received = _topic_with_queue()
    alarm = put_alarm(alarm_actions=[topic], actions_enabled=False)
    put_values(3)
    evaluator.tick()
    assert alarm.state_value == "ALARM"
    assert received() == []
    assert history(kind="Action") == []


@pytest.mark.parametrize(
    ("key_policy_for_cloudwatch", "delivered"),
    [(None, False), ({"Action": ["kms:Decrypt"]}, False), ({"Action": ["kms:Decrypt", "kms:GenerateDataKey*"]}, True)],
    ids=["account-only policy (as alias/aws/sns)", "decrypt only", "decrypt and generate data keys"],
)
def test_an_encrypted_topic_gets_the_alarm_only_if_its_key_lets_cloudwatch_in(
    evaluator: cw.Alarms, key_policy_for_cloudwatch: dict[str, Any] | None, delivered: bool
) -> None:
    from moto.kms.models import kms_backends
    from moto.sns.models import sns_backends

    statements = [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*"}]
    if key_policy_for_cloudwatch is not None:
        statements.append(
            {"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}} | key_policy_for_cloudwatch
        )
    kms = kms_backends[ACCOUNT][REGION]
    key = kms.create_key(json.dumps({"Statement": statements}), "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "alarms", None)
    topic, received = _topic_with_queue()
    sns_backends[ACCOUNT][REGION].set_topic_attribute(topic, "kms_master_key_id", key.arn)
    try:
        put_alarm(alarm_actions=[topic])
        put_values(3)
        evaluator.tick()
    finally:
        kms.delete_key(key.id)
    assert len(received()) == (1 if delivered else 0)
    (action,) = history(kind="Action")
    if delivered:
        assert action["HistorySummary"] == f"Successfully executed action {topic}"
    else:
        assert action["HistorySummary"] == f'Failed to execute action {topic}. Received error: "{cw.KMS_ACCESS_DENIED}"'
        assert json.loads(action["HistoryData"])["actionState"] == "Failed"


def test_a_dark_region_evaluates_and_notifies_nothing_until_restored(evaluator: cw.Alarms, dark: set[str]) -> None:
    topic, received = _topic_with_queue()
    alarm = put_alarm(alarm_actions=[topic])
    put_values(3)
    dark.add(REGION)
    evaluator.tick()
    assert alarm.state_value == "INSUFFICIENT_DATA" and received() == []
    dark.clear()
    evaluator.tick()
    assert alarm.state_value == "ALARM" and len(received()) == 1


def test_put_metric_alarm_on_an_existing_alarm_keeps_its_state(evaluator: cw.Alarms) -> None:
    put_alarm()
    put_values(3)
    evaluator.tick()
    updated = put_alarm(threshold=100.0)
    assert updated.state_value == "ALARM"
    assert [h["HistorySummary"] for h in history(kind="ConfigurationUpdate")][-1] == 'Alarm "errors" updated'
    evaluator.tick()
    assert updated.state_value == "OK"


def test_set_alarm_state_holds_until_the_next_evaluation_and_runs_actions(evaluator: cw.Alarms, clock: Clock) -> None:
    topic, received = _topic_with_queue()
    alarm = put_alarm(ok_actions=[topic])
    put_values(3)
    backend().set_alarm_state("errors", "testing the pager", "{}", "OK")
    assert alarm.state_value == "OK" and alarm.state_reason == "testing the pager"
    assert [n["Subject"] for n in received()] == ['OK: "errors" in US East (N. Virginia)']
    evaluator.tick()
    assert alarm.state_value == "OK"  # held: CloudWatch's next evaluation of a 10 s alarm is 10 s away
    clock.now += PERIOD
    put_values(3, periods_ago=0)
    evaluator.tick()
    assert alarm.state_value == "ALARM"


def test_delete_is_recorded_in_history(evaluator: cw.Alarms) -> None:
    put_alarm()
    backend().delete_alarms(["errors"])
    assert history()[-1]["HistorySummary"] == 'Alarm "errors" deleted'


def test_java_double_formatting() -> None:
    assert [cw.java_double(v) for v in (0.0, 1.0, 0.25, 1234.0, 1e7, 1e-4, -3.5)] == [
        "0.0",
        "1.0",
        "0.25",
        "1234.0",
        "1.0E7",
        "1.0E-4",
        "-3.5",
    ]


# -- through the API ---------------------------------------------------------------------------------------------


def _post(sandbox: SandboxConfig, path: str) -> Any:
    request = urllib.request.Request(f"{sandbox.endpoint}/_sandbox/{path}", data=b"{}", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def test_api_alarm_history_and_control_routes(aws: Callable[..., Any], sandbox: SandboxConfig) -> None:
    cloudwatch = aws("cloudwatch", "us-west-2")
    name = "api-history-test"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="Test/Api",
        MetricName="Errors",
        Statistic="Sum",
        Period=10,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    try:
        assert cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA"
        cloudwatch.put_metric_data(
            Namespace="Test/Api",
            MetricData=[
                {"MetricName": "Errors", "Value": 2, "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}
            ],
        )
        # The background loop may have got there first (it runs every 5 s): then this pass changes nothing.
        changes = _post(sandbox, "cloudwatch/evaluate")["changes"]
        assert all(c["name"] != name or (c["from"], c["to"]) == ("INSUFFICIENT_DATA", "ALARM") for c in changes)
        alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        assert alarm["StateValue"] == "ALARM" and alarm["StateReason"].startswith(
            "Threshold Crossed: 1 out of the last 1"
        )
        items = cloudwatch.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
        assert [i["HistoryItemType"] for i in items] == ["StateUpdate", "ConfigurationUpdate"]  # newest first
        assert json.loads(items[0]["HistoryData"])["newState"]["stateValue"] == "ALARM"
        page = cloudwatch.describe_alarm_history(AlarmName=name, MaxRecords=1, ScanBy="TimestampAscending")
        assert page["AlarmHistoryItems"][0]["HistoryItemType"] == "ConfigurationUpdate" and page["NextToken"]
        only = cloudwatch.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
        assert len(only) == 1
        with urllib.request.urlopen(f"{sandbox.endpoint}/_sandbox/cloudwatch", timeout=30) as response:  # noqa: S310
            rows = json.loads(response.read())["alarms"]
        row = next(r for r in rows if r["name"] == name)
        assert row["state"] == "ALARM" and row["last_evaluation"]["result"] == "ALARM"
    finally:
        cloudwatch.delete_alarms(AlarmNames=[name])

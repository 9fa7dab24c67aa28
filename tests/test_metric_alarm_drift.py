"""plugins/filter/metric_alarm_drift.py: an alarm as designed is passed over, any field the collection's module
compares is a difference (unit; tests/test_readme.py deletes an alarm by hand on the sandbox and re-runs)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from tests.support import REPO_ROOT, load_module_file

drift = load_module_file(REPO_ROOT / "plugins" / "filter" / "metric_alarm_drift.py")
TOPIC = "arn:aws:sns:us-east-1:123456789012:hawa-alarms"


def _design() -> dict[str, Any]:
    return {
        "key": "alb-target-5xx",
        "name": "hawa-alb-target-5xx",
        "title": "ignored: the dashboard's",
        "regions": ["primary"],
        "namespace": "AWS/ApplicationELB",
        "metric_name": "HTTPCode_Target_5XX_Count",
        "statistic": "Sum",
        "dimensions": {"LoadBalancer": "app/hawa-alb/1", "TargetGroup": "targetgroup/hawa-tg/2"},
        "comparison": "GreaterThanThreshold",
        "threshold": 10,
        "period": "60",
        "evaluation_periods": 3,
        "treat_missing_data": "notBreaching",
        "description": "The web app returned 5xx responses.",
        "alarm_actions": [TOPIC],
        "ok_actions": [TOPIC],
    }


def _alarm() -> dict[str, Any]:
    """The alarm as amazon.aws.cloudwatch_metric_alarm_info returns it."""
    return {
        "alarm_name": "hawa-alb-target-5xx",
        "alarm_arn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:hawa-alb-target-5xx",
        "actions_enabled": True,
        "state_value": "ALARM",
        "namespace": "AWS/ApplicationELB",
        "metric_name": "HTTPCode_Target_5XX_Count",
        "statistic": "Sum",
        "dimensions": [
            {"name": "LoadBalancer", "value": "app/hawa-alb/1"},
            {"name": "TargetGroup", "value": "targetgroup/hawa-tg/2"},
        ],
        "comparison_operator": "GreaterThanThreshold",
        "threshold": 10.0,
        "period": 60,
        "evaluation_periods": 3,
        "treat_missing_data": "notBreaching",
        "alarm_description": "The web app returned 5xx responses.",
        "alarm_actions": [TOPIC],
        "ok_actions": [TOPIC],
        "insufficient_data_actions": [],
        "metrics": [],
    }


def test_an_alarm_as_designed_is_passed_over_whatever_its_state() -> None:
    assert drift.metric_alarm_drift([_design()], [_alarm()]) == []


def test_a_missing_alarm_is_returned_in_the_designs_order() -> None:
    other = dict(_design(), name="hawa-other")
    assert drift.metric_alarm_drift([other, _design()], [_alarm()]) == [other]
    assert drift.differences(other, None) == ["missing"]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("threshold", 11.0, "threshold"),
        ("period", 300, "period"),
        ("evaluation_periods", 5, "evaluation_periods"),
        ("statistic", "Maximum", "statistic"),
        ("comparison_operator", "LessThanThreshold", "comparison"),
        ("treat_missing_data", "breaching", "treat_missing_data"),
        ("alarm_description", "edited by hand", "description"),
        ("alarm_actions", [], "alarm_actions"),
        ("ok_actions", [TOPIC, TOPIC + "-2"], "ok_actions"),
        ("insufficient_data_actions", [TOPIC], "insufficient_data_actions"),
        ("dimensions", [{"name": "LoadBalancer", "value": "app/hawa-alb/1"}], "dimensions"),
        ("datapoints_to_alarm", 2, "datapoints_to_alarm"),
        ("unit", "Count", "unit"),
        ("extended_statistic", "p99", "extended_statistic"),
    ],
)
def test_each_field_the_module_compares_is_a_difference(field: str, value: Any, named: str) -> None:
    alarm = copy.deepcopy(_alarm())
    alarm[field] = value
    assert named in drift.differences(_design(), alarm)
    assert drift.metric_alarm_drift([_design()], [alarm]) == [_design()]


def test_dimensions_in_another_order_differ_as_the_module_sees_them() -> None:
    alarm = _alarm()
    alarm["dimensions"] = list(reversed(alarm["dimensions"]))
    assert drift.differences(_design(), alarm) == ["dimensions"]


def test_treat_missing_data_defaults_to_missing_on_both_sides() -> None:
    design, alarm = _design(), _alarm()
    design.pop("treat_missing_data")
    alarm.pop("treat_missing_data")
    assert drift.differences(design, alarm) == []


def test_malformed_alarms_are_an_error_that_names_the_filter() -> None:
    with pytest.raises(AnsibleFilterError, match="metric_alarm_drift"):
        drift.metric_alarm_drift([_design()], [{"no": "name"}])

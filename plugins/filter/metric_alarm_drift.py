"""metric_alarm_drift: the alarms of a design that CloudWatch does not hold as designed.

The monitoring role reads its alarms in one task (amazon.aws.cloudwatch_metric_alarm_info) and runs
amazon.aws.cloudwatch_metric_alarm, which does the changing, only for the alarms this returns: missing, or
different in a field that module compares. It compares what the module's create_metric_alarm compares (the
PutMetricAlarm parameters it builds against DescribeAlarms' answer, the alarm's state and ARN aside), so an alarm
this passes over is one the module would report unchanged.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

# (the design's key, as the module's option is named; the key in cloudwatch_metric_alarm_info's answer)
_FIELDS = [
    ("metric_name", "metric_name"),
    ("namespace", "namespace"),
    ("statistic", "statistic"),
    ("extended_statistic", "extended_statistic"),
    ("comparison", "comparison_operator"),
    ("period", "period"),
    ("evaluation_periods", "evaluation_periods"),
    ("datapoints_to_alarm", "datapoints_to_alarm"),
    ("evaluate_low_sample_count_percentile", "evaluate_low_sample_count_percentile"),
    ("unit", "unit"),
    ("description", "alarm_description"),
    ("treat_missing_data", "treat_missing_data"),
]
_ACTIONS = [
    ("alarm_actions", "alarm_actions"),
    ("ok_actions", "ok_actions"),
    ("insufficient_data_actions", "insufficient_data_actions"),
]


def _same(wanted: Any, actual: Any) -> bool:
    if wanted is None or actual is None:
        return wanted is None and actual is None
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            return float(wanted) == float(actual)
        except (TypeError, ValueError):
            return False
    return str(wanted) == str(actual)


def differences(design: dict[str, Any], actual: dict[str, Any] | None) -> list[str]:
    """The fields in which one alarm differs from its design (['missing'] when there is no such alarm)."""
    if actual is None:
        return ["missing"]
    changed = []
    for option, key in _FIELDS:
        wanted = design.get(option)
        have = actual.get(key)
        if option == "treat_missing_data":
            wanted, have = wanted or "missing", have or "missing"  # the module's default, and AWS's
        if option == "unit" and not wanted:
            wanted = None  # the module leaves an empty unit out
        if not _same(wanted, have):
            changed.append(option)
    if not _same(design.get("threshold"), actual.get("threshold")):
        changed.append("threshold")
    # The module turns the dimensions dict into Name/Value pairs in the dict's order and compares the lists.
    wanted_dimensions = [(str(name), str(value)) for name, value in (design.get("dimensions") or {}).items()]
    have_dimensions = [(item.get("name"), item.get("value")) for item in actual.get("dimensions") or []]
    if wanted_dimensions != have_dimensions:
        changed.append("dimensions")
    for option, key in _ACTIONS:
        if [str(action) for action in design.get(option) or []] != list(actual.get(key) or []):
            changed.append(option)
    return changed


def metric_alarm_drift(designs: list[dict[str, Any]], alarms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The designs (each with its `name`) whose alarm is missing or differs from it, in the designs' order.

    designs: dicts named by cloudwatch_metric_alarm's options (name, namespace, metric_name, statistic,
    dimensions, comparison, threshold, period, evaluation_periods, treat_missing_data, description,
    alarm_actions, ok_actions, ...).
    alarms: cloudwatch_metric_alarm_info's metric_alarms.
    """
    try:
        by_name = {alarm["alarm_name"]: alarm for alarm in alarms}
        return [design for design in designs if differences(design, by_name.get(design["name"]))]
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError(f"metric_alarm_drift: the designs or the alarms are malformed ({exc!r})") from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"metric_alarm_drift": metric_alarm_drift}

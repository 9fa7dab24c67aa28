"""CloudWatch alarms evaluate the sandbox's real metrics, keep a history and notify SNS, as on AWS.

Plain moto records alarms and never evaluates them: a new alarm is ``OK`` ("Unchecked: Initial alarm
creation") for ever, only SetAlarmState moves it, PutMetricAlarm on an existing alarm resets its state,
and DescribeAlarmHistory does not exist. This extension restores CloudWatch's behaviour:

- **Evaluation.** A background loop (``Runtime.every``, thread ``sandbox-cloudwatch-alarms``) evaluates
  every metric alarm of every region that is not dark every ``EVALUATION_INTERVAL_S`` (5 s) on the
  datapoints in moto's backend, by the rule written in sandbox/services/cloudwatch/alarms.py (Period,
  EvaluationPeriods, DatapointsToAlarm, Statistic / ExtendedStatistic, ComparisonOperator, Threshold,
  TreatMissingData, EvaluateLowSampleCountPercentile). AWS evaluates every minute (every 10 s for
  10 s and 30 s periods); the sandbox looks more often at the same datapoints, so a state changes at
  most one period's worth of data earlier, never on other data. A dark region evaluates nothing and
  notifies nobody until it is restored.
- **States.** A new alarm is ``INSUFFICIENT_DATA`` ("Unchecked: Initial alarm creation"); PutMetricAlarm
  on an existing alarm leaves its state as it was (AWS: "its state is left unchanged, but the update
  completely overwrites the previous configuration"). SetAlarmState changes the state, records it and
  runs the actions; the evaluator leaves that state alone until CloudWatch's next evaluation would
  come (a minute; 10 s for 10 s / 30 s periods), as on AWS.
- **History.** DescribeAlarmHistory (moto lacks it): ``ConfigurationUpdate`` (created, updated, deleted),
  ``StateUpdate`` (HistoryData {version, oldState, newState{stateValue, stateReason,
  stateReasonData}}) and ``Action`` items; AlarmName, AlarmTypes, HistoryItemType, StartDate, EndDate,
  ScanBy, MaxRecords and NextToken honoured.
- **Actions** fire on transitions only, when ActionsEnabled: an SNS topic ARN gets the alarm
  notification (Subject ``ALARM: "<name>" in US East (N. Virginia)``, Message the JSON CloudWatch
  sends) through moto's ``SNSBackend.publish`` for the topic's region.

The metrics come from the sandbox's live parts through sandbox/services/cloudwatch/metrics.py.

Control routes: ``GET /_sandbox/cloudwatch`` lists every alarm with its state, reason and last
evaluation (or why the sandbox does not evaluate it); ``POST /_sandbox/cloudwatch/evaluate`` runs one
evaluation pass at once and returns the state changes it made.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sandbox import patches, runtime
from sandbox.services.cloudwatch import alarms as cw

ALARMS: cw.Alarms | None = None


def _alarm_config(alarm: Any) -> dict[str, Any]:
    """What ConfigurationUpdate history items show of an alarm (CloudWatch's camelCase names)."""
    return {
        "alarmName": alarm.name,
        "alarmArn": alarm.alarm_arn,
        "alarmDescription": alarm.description,
        "namespace": alarm.namespace,
        "metricName": alarm.metric_name,
        "dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions],
        "statistic": alarm.statistic,
        "extendedStatistic": alarm.extended_statistic,
        "period": alarm.period,
        "evaluationPeriods": alarm.evaluation_periods,
        "datapointsToAlarm": alarm.datapoints_to_alarm,
        "threshold": alarm.threshold,
        "comparisonOperator": alarm.comparison_operator,
        "treatMissingData": alarm.treat_missing_data,
        "actionsEnabled": alarm.actions_enabled,
        "alarmActions": alarm.alarm_actions,
        "okactions": alarm.ok_actions,
        "insufficientDataActions": alarm.insufficient_data_actions,
    }


def _patch_backend(evaluator: cw.Alarms) -> None:
    from moto.cloudwatch.exceptions import InvalidFormat, ResourceNotFound, ValidationError
    from moto.cloudwatch.models import CloudWatchBackend

    original_put = CloudWatchBackend.put_metric_alarm
    original_delete = CloudWatchBackend.delete_alarms

    def put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        with evaluator.lock:
            existing = self.alarms.get(name)
            alarm = original_put(self, name, *args, **kwargs)
            if existing is not None:
                for attribute in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp"):
                    setattr(alarm, attribute, getattr(existing, attribute))
                kind, summary = "Update", f'Alarm "{name}" updated'
            else:
                alarm.state_value = cw.INSUFFICIENT
                kind, summary = "Create", f'Alarm "{name}" created'
            key = "createdAlarm" if kind == "Create" else "updatedAlarm"
            data = {"version": "1.0", "type": kind, key: _alarm_config(alarm)}
            cw.record_history(self, alarm, "ConfigurationUpdate", summary, data)
            return alarm

    def delete_alarms(self: Any, alarm_names: list[str]) -> None:
        with evaluator.lock:
            doomed = [self.alarms[name] for name in alarm_names if name in self.alarms]
            original_delete(self, alarm_names)
            for alarm in doomed:
                data = {"version": "1.0", "type": "Delete", "deletedAlarm": _alarm_config(alarm)}
                cw.record_history(self, alarm, "ConfigurationUpdate", f'Alarm "{alarm.name}" deleted', data)

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        try:
            if reason_data is not None:
                json.loads(reason_data)
        except ValueError:
            raise InvalidFormat("Unknown") from None
        if state_value not in (cw.OK, cw.ALARM, cw.INSUFFICIENT):
            raise ValidationError(
                "1 validation error detected: "
                f"Value '{state_value}' at 'stateValue' failed to satisfy constraint: "
                "Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]"
            )
        with evaluator.lock:
            alarm = self.alarms.get(alarm_name)
            if alarm is None:
                raise ResourceNotFound
            change = cw.apply_state(self.account_id, self, alarm, state_value, reason, reason_data)
            evaluator.hold(self.account_id, self.region_name, alarm)
        if change is not None:
            cw.run_actions(change, evaluator.is_dark)

    patches.patch(CloudWatchBackend, "put_metric_alarm", put_metric_alarm, owner=__name__)
    patches.patch(CloudWatchBackend, "delete_alarms", delete_alarms, owner=__name__)
    patches.patch(CloudWatchBackend, "set_alarm_state", set_alarm_state, owner=__name__)


def _history_items(backend: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    from moto.cloudwatch.exceptions import InvalidParameterValue

    def moment(value: Any) -> dt.datetime | None:
        if value in (None, ""):
            return None
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        try:
            return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.UTC)
        except ValueError:
            raise InvalidParameterValue(f"StartDate / EndDate must be ISO 8601 timestamps, got {value!r}") from None

    start, end = moment(params.get("StartDate")), moment(params.get("EndDate"))
    kind, name, types = params.get("HistoryItemType"), params.get("AlarmName"), params.get("AlarmTypes") or []
    if kind and kind not in ("ConfigurationUpdate", "StateUpdate", "Action"):
        raise InvalidParameterValue(f"HistoryItemType must be ConfigurationUpdate, StateUpdate or Action, got {kind!r}")
    items = [
        item
        for item in list(cw.history_of(backend))
        if (not name or item["AlarmName"] == name)
        and (not kind or item["HistoryItemType"] == kind)
        and (not types or item["AlarmType"] in types)
        and (start is None or item["Timestamp"] >= start)
        and (end is None or item["Timestamp"] <= end)
    ]
    if params.get("ScanBy", "TimestampDescending") != "TimestampAscending":
        items.reverse()
    return items


def _patch_responses() -> None:
    from moto.cloudwatch.exceptions import InvalidParameterValue
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    def describe_alarm_history(self: Any) -> Any:
        params = {
            key: self._get_param(key)
            for key in ("AlarmName", "AlarmTypes", "HistoryItemType", "StartDate", "EndDate", "ScanBy")
        }
        items = _history_items(self.cloudwatch_backend, params)
        limit = int(self._get_param("MaxRecords") or 100)
        if not 1 <= limit <= 100:
            raise InvalidParameterValue(f"MaxRecords must be between 1 and 100, got {limit}")
        token = self._get_param("NextToken")
        offset = 0
        if token:
            if not str(token).isdigit():
                raise InvalidParameterValue("Request parameter NextToken is invalid")
            offset = int(token)
        page = items[offset : offset + limit]
        result: dict[str, Any] = {"AlarmHistoryItems": page}
        if offset + limit < len(items):
            result["NextToken"] = str(offset + limit)
        return ActionResult(result)

    patches.patch(CloudWatchResponse, "describe_alarm_history", describe_alarm_history, owner=__name__)


def install(_app: Any) -> None:
    global ALARMS
    rt = runtime.get()
    evaluator = ALARMS = cw.Alarms(rt.is_dark)
    _patch_backend(evaluator)
    _patch_responses()

    def show(_body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        return 200, {"evaluation_interval_s": cw.EVALUATION_INTERVAL_S, "alarms": evaluator.describe()}

    def evaluate_now(_body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        changes = evaluator.tick()
        return 200, {
            "changes": [
                {
                    "region": c.alarm.region_name,
                    "name": c.alarm.name,
                    "from": c.old_state,
                    "to": c.alarm.state_value,
                    "reason": c.alarm.state_reason,
                    "actions": c.actions,
                }
                for c in changes
            ]
        }

    def forget() -> None:
        evaluator.last.clear()
        evaluator.held_until.clear()

    rt.route("GET", "cloudwatch", show)
    rt.route("POST", "cloudwatch/evaluate", evaluate_now)
    rt.on_reset(forget)
    rt.every("cloudwatch-alarms", cw.EVALUATION_INTERVAL_S, evaluator.tick)

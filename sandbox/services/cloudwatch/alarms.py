"""CloudWatch metric alarms evaluate the data in moto's backend, as CloudWatch does.

``evaluate(alarm, series, now)`` is the rule, a pure function of the alarm's settings and its metric's
datapoints (``Series``, one pass over moto's ``metric_data``); ``Alarms`` runs it for every alarm of
every account and region, changes state, records history and fires the alarm's actions.

The rule, as the CloudWatch user guide ("Evaluating an alarm", "Configuring how CloudWatch alarms
treat missing data") states it:

- Datapoints are the alarm's statistic (``Statistic`` SampleCount, Average, Sum, Minimum, Maximum, or
  ``ExtendedStatistic`` pNN) over periods of ``Period`` seconds aligned to the epoch, of the data
  with exactly the alarm's namespace, metric name and dimensions (and ``Unit``, when the alarm names
  one).
- The evaluation range is ``EvaluationPeriods`` (N) + 2 periods: CloudWatch "attempts to retrieve a
  higher number of data points than the number specified as Evaluation Periods". The period still
  open counts once it has data (a partial period, as CloudWatch evaluates data as it arrives); while
  it has none it is not yet due, not missing.
- With at least N real datapoints in the range, the newest N decide: ALARM when at least
  ``DatapointsToAlarm`` (M, default N) breach, else OK; treat-missing-data plays no part. With fewer,
  the missing ones are filled per ``TreatMissingData`` as few times as possible: ``breaching`` and
  ``notBreaching`` fill to N; ``missing`` and ``ignore`` count the real ones only, and the state then
  changes only with enough of them: ALARM needs M breaching, OK needs N - M + 1 not breaching (the
  "minimum ... datapoints for ... transition" of the reason), else it stays. With none at all:
  ``missing`` -> INSUFFICIENT_DATA, ``ignore`` -> the state stays, ``breaching`` -> ALARM,
  ``notBreaching`` -> OK.
- ``EvaluateLowSampleCountPercentile=ignore``: a pNN datapoint from fewer than 10 / (1 - NN/100)
  samples is not significant; when no datapoint considered is, the state stays.

State changes set StateValue, StateReason (CloudWatch's wording), StateReasonData (its JSON),
StateUpdatedTimestamp, add a ``StateUpdate`` history item, and, with ActionsEnabled, run the new
state's actions (AlarmActions / OKActions / InsufficientDataActions): an SNS topic ARN gets the alarm
notification through moto's ``SNSBackend.publish`` of the topic's region, and an ``Action`` history
item says so; an encrypted topic whose KMS key does not let ``cloudwatch.amazonaws.com`` use it gets
nothing and the item says ``Failed`` with KMS's AccessDeniedException, as on AWS. Actions fire on
transitions only.

Not evaluated (they keep the state they have, INSUFFICIENT_DATA from creation): metric math alarms
(``Metrics``), anomaly-detection comparisons, composite alarms, and extended statistics other than pNN.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import operator
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.services.cloudwatch import metrics

log = logging.getLogger("sandbox.cloudwatch")

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
EXTRA_PERIODS = 2  # evaluation range = N + EXTRA_PERIODS periods
EVALUATION_INTERVAL_S = 5.0  # the sandbox's cadence (AWS: every minute; every 10 s for 10 s / 30 s periods)

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
}


# -- numbers and times as CloudWatch writes them ----------------------------------------------------------


def java_double(value: float) -> str:
    """How CloudWatch (Java) prints a double: 1.0, 0.25, 1234.0, 1.0E7, 1.0E-4."""
    if value == 0:
        return "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "e" not in text else f"{value:.1f}"
    mantissa, exponent = f"{value:.16e}".split("e")
    mantissa = mantissa.rstrip("0")
    mantissa = mantissa + "0" if mantissa.endswith(".") else mantissa
    return f"{mantissa}E{int(exponent)}"


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _short(moment: dt.datetime) -> str:
    return moment.strftime("%d/%m/%y %H:%M:%S")


def _epoch(moment: dt.datetime) -> float:
    return moment.replace(tzinfo=dt.UTC).timestamp()


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


# -- the data ------------------------------------------------------------------------------------------------


def metric_key(namespace: str, name: str, dimensions: Iterable[Any]) -> tuple[str, str, frozenset[tuple[str, str]]]:
    return namespace, name, frozenset((d.name, d.value) for d in dimensions)


class Series:
    """One backend's datapoints by metric (namespace, name, dimension set), read in one pass."""

    def __init__(self, data: Iterable[Any]) -> None:
        self.points: dict[tuple[str, str, frozenset[tuple[str, str]]], list[tuple[float, Any]]] = {}
        for datum in list(data):
            try:
                key = metric_key(datum.namespace, datum.name, datum.dimensions)
                stamp = _epoch(metrics.naive_utc(datum.timestamp))
            except (AttributeError, TypeError, ValueError):
                continue
            self.points.setdefault(key, []).append((stamp, datum))

    def of(self, alarm: Any) -> list[tuple[float, Any]]:
        found = self.points.get(metric_key(alarm.namespace, alarm.metric_name, alarm.dimensions), [])
        if alarm.unit:
            found = [(stamp, datum) for stamp, datum in found if datum.unit == alarm.unit]
        return found


def percentile_of(statistic: str | None) -> float | None:
    """99.0 for "p99", 99.9 for "p99.9"; None for anything else."""
    if not statistic or not statistic.startswith("p"):
        return None
    try:
        value = float(statistic[1:])
    except ValueError:
        return None
    return value if 0 <= value <= 100 else None


@dataclass
class Bucket:
    """One period's data: statistic sets and single values (with their counts, for percentiles)."""

    count: float = 0.0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    values: dict[float, float] = field(default_factory=dict)
    complete_values: bool = True  # every sample's value is known (needed for percentiles)

    def add(self, datum: Any) -> None:
        if hasattr(datum, "value"):
            value = float(datum.value)
            self.count, self.total = self.count + 1, self.total + value
            self.low, self.high = min(self.low, value), max(self.high, value)
            self.values[value] = self.values.get(value, 0) + 1
            return
        self.count += float(datum.sample_count)
        self.total += float(datum.sum)
        self.low, self.high = min(self.low, float(datum.min)), max(self.high, float(datum.max))
        distribution = getattr(datum, "distribution", None)
        if distribution is None:
            self.complete_values = False
            return
        for value, times in distribution.items():
            self.values[value] = self.values.get(value, 0) + times

    def statistic(self, name: str) -> float | None:
        if self.count <= 0:
            return None
        simple = {
            "SampleCount": self.count,
            "Sum": self.total,
            "Minimum": self.low,
            "Maximum": self.high,
            "Average": self.total / self.count,
        }
        if name in simple:
            return simple[name]
        wanted = percentile_of(name)
        if wanted is None or not self.complete_values or not self.values:
            return None
        rank = max(1, math.ceil(wanted / 100 * self.count))  # nearest rank
        seen = 0.0
        for value in sorted(self.values):
            seen += self.values[value]
            if seen >= rank:
                return value
        return max(self.values)


@dataclass(frozen=True)
class Point:
    start: float  # epoch seconds of the period's start
    value: float | None  # None: missing
    samples: float = 0.0
    significant: bool = True


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str
    reason_data: dict[str, Any]


def _statistic_name(alarm: Any) -> str:
    return str(alarm.extended_statistic or alarm.statistic or "")


def evaluable(alarm: Any) -> str | None:
    """Why the sandbox leaves this alarm as it is (None: it is evaluated)."""
    if getattr(alarm, "rule", None):
        return "a composite alarm"
    if alarm.metric_data_queries or not alarm.metric_name:
        return "a metric math alarm"
    if alarm.comparison_operator not in COMPARISONS:
        return f"comparison {alarm.comparison_operator} (anomaly detection)"
    name = _statistic_name(alarm)
    if name not in STATISTICS and percentile_of(name) is None:
        return f"statistic {name}"
    if int(alarm.period or 0) <= 0 or int(alarm.evaluation_periods or 0) <= 0:
        return "no period"
    return None


def datapoints(alarm: Any, found: list[tuple[float, Any]], now: float) -> list[Point]:
    """The evaluation range's datapoints, oldest first (the open period only when it has data)."""
    period = int(alarm.period)
    n = int(alarm.evaluation_periods)
    current = math.floor(now / period) * period
    first = current - (n + EXTRA_PERIODS) * period
    buckets: dict[float, Bucket] = {}
    for stamp, datum in found:
        start = math.floor(stamp / period) * period
        if first <= start <= current and stamp <= now:
            buckets.setdefault(start, Bucket()).add(datum)
    name = _statistic_name(alarm)
    wanted = percentile_of(name)
    starts = [first + i * period for i in range(n + EXTRA_PERIODS + 1)]
    starts = starts[:-1] if current not in buckets else starts[1:]
    points = []
    for start in starts:
        bucket = buckets.get(start)
        value = bucket.statistic(name) if bucket is not None else None
        significant = True
        if value is not None and wanted is not None and wanted < 100:
            significant = bucket.count >= 10 / (1 - wanted / 100)
        points.append(Point(start, value, bucket.count if bucket else 0.0, significant))
    return points


def evaluate(alarm: Any, found: list[tuple[float, Any]], now: float) -> Outcome | None:
    """The alarm's state from its data now, with CloudWatch's reason; None: the state stays as it is."""
    n = int(alarm.evaluation_periods)
    m = int(alarm.datapoints_to_alarm or n)
    compare, words = COMPARISONS[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    points = datapoints(alarm, found, now)
    if str(alarm.evaluate_low_sample_count_percentile or "") == "ignore":
        considered = [p for p in points if p.value is not None][-n:]
        if considered and not any(p.significant for p in considered):
            return None
        points = [p if p.significant else Point(p.start, None) for p in points]
    real = [p for p in points if p.value is not None]
    treatment = str(alarm.treat_missing_data or "missing")
    if not real:
        return _all_missing(alarm, treatment, n, points, now)
    if len(real) >= n:
        window, filled = real[-n:], 0
    else:
        window = real
        filled = n - len(real) if treatment in ("breaching", "notBreaching") else 0
    breaching = [p for p in window if compare(float(p.value), threshold)]  # type: ignore[arg-type]
    breach_count = len(breaching) + (filled if treatment == "breaching" else 0)
    total = len(window) + filled
    state = ALARM if breach_count >= m else OK
    if state == OK and total - breach_count < n - m + 1:
        return None  # too few real points for either transition (treat-missing-data missing or ignore): no change
    shown = breaching if state == ALARM else [p for p in window if p not in breaching]
    count = breach_count if state == ALARM else total - breach_count
    listed = ", ".join(f"{java_double(float(p.value))} ({_short(_utc(p.start))})" for p in reversed(shown))  # type: ignore[arg-type]
    verb = "was" if count == 1 else "were"
    negation = "" if state == ALARM else "not "
    needed = m if state == ALARM else n - m + 1
    old = str(alarm.state_value)
    reason = (
        f"Threshold Crossed: {count} out of the last {total} datapoints [{listed}] {verb} {negation}{words} the "
        f"threshold ({java_double(threshold)}) (minimum {needed} datapoint{'s' if needed != 1 else ''} for "
        f"{old} -> {state} transition)."
    )
    return Outcome(state, reason, _reason_data(alarm, points, window, now))


def _all_missing(alarm: Any, treatment: str, n: int, points: list[Point], now: float) -> Outcome | None:
    if treatment == "ignore":
        return None
    data = _reason_data(alarm, points, [], now)
    plural = "s" if n != 1 else ""
    if treatment == "missing":
        return Outcome(
            INSUFFICIENT, f"Insufficient Data: {n} datapoint{plural} {'was' if n == 1 else 'were'} unknown.", data
        )
    label = "Breaching" if treatment == "breaching" else "NonBreaching"
    reason = (
        f"Threshold Crossed: no datapoints were received for {n} period{plural} and {n} missing "
        f"datapoint{plural} {'was' if n == 1 else 'were'} treated as [{label}]."
    )
    return Outcome(ALARM if treatment == "breaching" else OK, reason, data)


def _reason_data(alarm: Any, points: list[Point], window: list[Point], now: float) -> dict[str, Any]:
    period = int(alarm.period)
    n = int(alarm.evaluation_periods)
    start = points[-n].start if len(points) >= n else (points[0].start if points else now)
    data: dict[str, Any] = {"version": "1.0", "queryDate": _iso(_utc(now)), "startDate": _iso(_utc(start))}
    if alarm.extended_statistic:
        data["extendedStatistic"] = alarm.extended_statistic
    else:
        data["statistic"] = alarm.statistic
    if alarm.unit:
        data["unit"] = alarm.unit
    data["period"] = period
    data["recentDatapoints"] = [p.value for p in window]
    data["threshold"] = float(alarm.threshold)
    evaluated = []
    for point in reversed(window if window else points[-n:]):
        entry: dict[str, Any] = {"timestamp": _iso(_utc(point.start))}
        if point.value is not None:
            entry["sampleCount"] = float(point.samples)
            entry["value"] = point.value
        evaluated.append(entry)
    data["evaluatedDatapoints"] = evaluated
    return data


# -- state changes, history, actions --------------------------------------------------------------------------


def history_of(backend: Any) -> list[dict[str, Any]]:
    """The backend's alarm history (moto has none): AlarmHistoryItems, oldest first."""
    found = getattr(backend, "sandbox_alarm_history", None)
    if found is None:
        found = backend.sandbox_alarm_history = []
    return found


def record_history(backend: Any, alarm: Any, kind: str, summary: str, data: dict[str, Any]) -> None:
    history = history_of(backend)
    history.append(
        {
            "AlarmName": alarm.name,
            "AlarmType": "CompositeAlarm" if getattr(alarm, "rule", None) else "MetricAlarm",
            "Timestamp": dt.datetime.now(dt.UTC),
            "HistoryItemType": kind,
            "HistorySummary": summary,
            "HistoryData": json.dumps(data, separators=(",", ":")),
        }
    )
    if len(history) > 10000:  # AWS keeps two weeks; the sandbox the newest 10,000 items per region
        del history[: len(history) - 10000]


def trigger(alarm: Any) -> dict[str, Any]:
    extended = bool(alarm.extended_statistic)
    return {
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "StatisticType": "ExtendedStatistic" if extended else "Statistic",
        **(
            {"ExtendedStatistic": alarm.extended_statistic}
            if extended
            else {"Statistic": str(alarm.statistic or "").upper()}
        ),
        "Unit": alarm.unit,
        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
        "Period": int(alarm.period or 0),
        "EvaluationPeriods": int(alarm.evaluation_periods or 0),
        **({"DatapointsToAlarm": int(alarm.datapoints_to_alarm)} if alarm.datapoints_to_alarm else {}),
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": float(alarm.threshold or 0),
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
    }


def notification(alarm: Any, account: str, old_state: str) -> tuple[str, str]:
    """(Subject, Message) of the SNS notification CloudWatch sends for the alarm's new state."""
    region = REGION_NAMES.get(alarm.region_name, alarm.region_name)
    changed = alarm.state_updated_timestamp
    message = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _iso(metrics.naive_utc(alarm.configuration_updated_timestamp)),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": _iso(metrics.naive_utc(changed)),
        "Region": region,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions or []),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
        "Trigger": trigger(alarm),
    }
    subject = f'{alarm.state_value}: "{alarm.name}" in {region}'
    return subject[:100], json.dumps(message, separators=(",", ":"))


@dataclass
class Change:
    """A state change made under the lock, whose actions run after it is let go."""

    account: str
    backend: Any
    alarm: Any
    old_state: str
    actions: list[str]


def apply_state(account: str, backend: Any, alarm: Any, state: str, reason: str, reason_data: str) -> Change | None:
    """Set the alarm's state as CloudWatch does; None when it already was in that state."""
    old_state, old_reason = str(alarm.state_value), alarm.state_reason
    if state == old_state:
        return None
    alarm.state_value = state
    alarm.state_reason = reason
    alarm.state_reason_data = reason_data
    alarm.state_updated_timestamp = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    new_state: dict[str, Any] = {"stateValue": state, "stateReason": reason}
    try:
        new_state["stateReasonData"] = json.loads(reason_data) if reason_data else None
    except ValueError:
        new_state["stateReasonData"] = reason_data
    if new_state["stateReasonData"] is None:
        del new_state["stateReasonData"]
    record_history(
        backend,
        alarm,
        "StateUpdate",
        f"Alarm updated from {old_state} to {state}",
        {"version": "1.0", "oldState": {"stateValue": old_state, "stateReason": old_reason}, "newState": new_state},
    )
    actions = {OK: alarm.ok_actions, ALARM: alarm.alarm_actions, INSUFFICIENT: alarm.insufficient_data_actions}[state]
    enabled = alarm.actions_enabled not in (False, "false", "False")
    return Change(account, backend, alarm, old_state, list(actions or []) if enabled else [])


# What an alarm's history says when the topic's key refuses CloudWatch (AWS adds a request id).
KMS_ACCESS_DENIED = "null (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException; Proxy: null)"


def topic_key_allows_cloudwatch(account: str, region: str, topic_arn: str, alarm_arn: str) -> bool:
    """Whether CloudWatch may publish to the topic: an encrypted topic's key policy must allow
    ``cloudwatch.amazonaws.com`` kms:GenerateDataKey and kms:Decrypt (SNS's "compatibility between event
    sources from AWS services and encrypted topics"), which the AWS managed alias/aws/sns key never does.
    An unencrypted or unknown topic is SNS's business (publish answers for it)."""
    from moto.sns.models import sns_backends

    from sandbox.services.kms import policy

    topic = sns_backends[account][region].topics.get(topic_arn)
    key_id = getattr(topic, "kms_master_key_id", "") if topic is not None else ""
    if not key_id:
        return True
    context = {
        "kms:EncryptionContext:aws:sns:topicArn": topic_arn,
        "aws:SourceAccount": account,
        "aws:SourceArn": alarm_arn,
    }
    key = policy.find_key(account, region, key_id)
    return policy.service_may_use(key, "cloudwatch.amazonaws.com", ("kms:GenerateDataKey", "kms:Decrypt"), context)


def run_actions(change: Change, is_dark: Callable[[str], bool]) -> None:
    """Notify the SNS topics among the new state's actions (other action kinds are not run here)."""
    from moto.sns.models import sns_backends

    alarm = change.alarm
    for arn in change.actions:
        parts = arn.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            log.info("alarm %s: action %s is not an SNS topic; the sandbox does not run it", alarm.name, arn)
            continue
        region, account = parts[3], parts[4]
        subject, message = notification(alarm, change.account, change.old_state)
        summary, state = f"Successfully executed action {arn}", "Succeeded"
        if is_dark(region):
            summary, state = f'Failed to execute action {arn}. Received error: "Service unavailable"', "Failed"
        elif not topic_key_allows_cloudwatch(account, region, arn, alarm.alarm_arn):
            summary, state = f'Failed to execute action {arn}. Received error: "{KMS_ACCESS_DENIED}"', "Failed"
        else:
            try:
                sns_backends[account][region].publish(message, arn=arn, subject=subject)
            except Exception as exc:  # a deleted topic, say: recorded as AWS records a failed action
                summary, state = f'Failed to execute action {arn}. Received error: "{exc}"', "Failed"
        record_history(
            change.backend,
            alarm,
            "Action",
            summary,
            {
                "actionState": state,
                "stateUpdateTimestamp": int(_epoch(metrics.naive_utc(alarm.state_updated_timestamp)) * 1000),
                "notificationResource": arn,
                "publishedMessage": json.loads(message),
            },
        )


# -- the evaluator ----------------------------------------------------------------------------------------------


class Alarms:
    """Evaluates every metric alarm of every (account, region) not dark, on ``tick``.

    ``lock`` serialises one alarm's evaluation and state change with the API's PutMetricAlarm,
    SetAlarmState and DeleteAlarms (services/cloudwatch/provider.py); the SNS publishes run after it
    is let go.
    """

    def __init__(self, is_dark: Callable[[str], bool], clock: Callable[[], float] = time.time) -> None:
        self.is_dark = is_dark
        self.clock = clock
        self.lock = threading.RLock()
        self.last: dict[tuple[str, str, str], dict[str, Any]] = {}  # (account, region, name) -> last evaluation
        self.held_until: dict[tuple[str, str, str], float] = {}  # SetAlarmState holds until the next evaluation
        self._last_prune = 0.0

    @staticmethod
    def backends() -> Iterable[tuple[str, str, Any]]:
        from moto.cloudwatch.models import cloudwatch_backends

        for account, regional in list(cloudwatch_backends.items()):
            for region, backend in list(regional.items()):
                yield account, region, backend

    def hold(self, account: str, region: str, alarm: Any) -> None:
        """After SetAlarmState: the state stays until CloudWatch's next evaluation (a minute; 10 s for short periods)."""
        cadence = 10.0 if int(alarm.period or 60) < 60 else 60.0
        self.held_until[(account, region, alarm.name)] = self.clock() + cadence

    def tick(self) -> list[Change]:
        """One pass over every region; returns the state changes made (their actions have run)."""
        now = self.clock()
        changes: list[Change] = []
        present: set[tuple[str, str, str]] = set()
        for account, region, backend in self.backends():
            present.update((account, region, name) for name in list(backend.alarms))
            if self.is_dark(region) or not backend.alarms:
                continue
            series = Series(backend.metric_data)
            for alarm in list(backend.alarms.values()):
                change = self._evaluate_one(account, region, backend, alarm, series, now)
                if change is not None:
                    changes.append(change)
        for table in (self.last, self.held_until):  # forget deleted alarms
            for key in [k for k in list(table) if k not in present]:
                table.pop(key, None)
        for change in changes:
            run_actions(change, self.is_dark)
        if now - self._last_prune > 600:
            self._last_prune = now
            for _account, _region, backend in self.backends():
                metrics.prune(backend, _utc(now))
        return changes

    def _evaluate_one(
        self, account: str, region: str, backend: Any, alarm: Any, series: Series, now: float
    ) -> Change | None:
        key = (account, region, alarm.name)
        skipped = evaluable(alarm)
        if skipped is not None:
            self.last[key] = {"evaluated": None, "not_evaluated": skipped}
            return None
        if self.held_until.get(key, 0) > now:
            return None
        with self.lock:
            if backend.alarms.get(alarm.name) is not alarm:  # deleted or replaced meanwhile
                return None
            outcome = evaluate(alarm, series.of(alarm), now)
            self.last[key] = {
                "evaluated": _iso(_utc(now)),
                "result": outcome.state if outcome else "unchanged (ignore)",
                "reason": outcome.reason if outcome else None,
            }
            if outcome is None:
                return None
            return apply_state(
                account,
                backend,
                alarm,
                outcome.state,
                outcome.reason,
                json.dumps(outcome.reason_data, separators=(",", ":")),
            )

    def describe(self) -> list[dict[str, Any]]:
        rows = []
        for account, region, backend in self.backends():
            for alarm in list(backend.alarms.values()):
                rows.append(
                    {
                        "account": account,
                        "region": region,
                        "name": alarm.name,
                        "state": alarm.state_value,
                        "reason": alarm.state_reason,
                        "updated": _iso(metrics.naive_utc(alarm.state_updated_timestamp)),
                        "last_evaluation": self.last.get((account, region, alarm.name)),
                        "dark": self.is_dark(region),
                    }
                )
        return rows

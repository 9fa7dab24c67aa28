"""The one way the sandbox's live parts publish CloudWatch metrics: into moto's CloudWatch backend.

AWS services publish their metrics themselves (no PutMetricData call appears in anyone's account);
the sandbox's stand-ins do the same by writing to moto's backend for the account and region:

- ``put(account, region, namespace, name, value, dimensions, unit)`` one value;
- ``put_distribution(..., samples, ...)`` many values of one period (the ALB's response times): one
  datum that carries min, max, sum and sample count (what moto's GetMetricStatistics reads) and the
  values themselves, rounded to three significant digits, so that percentiles (``p99``) can be
  computed without one moto object per request;
- ``put_many(account, region, namespace, data)`` several in one call (moto's MetricDatum shapes).

Nothing is published for a dark region: its CloudWatch takes no data, as in a regional outage.

Retention: AWS keeps one-minute data 15 days. The sandbox drops the data its own publishers put
(namespaces starting ``AWS/`` or ``ECS/``) once older than ``RETENTION`` (``prune``, run by the alarm
evaluator), so that the list moto keeps, which every GetMetricStatistics and every evaluation walks,
stays short in a sandbox left up for days. Data a client puts in its own namespaces is kept.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox import runtime

RETENTION = dt.timedelta(hours=3)
SERVICE_NAMESPACE_PREFIXES = ("AWS/", "ECS/")


def _dimensions(dimensions: Mapping[str, str] | Iterable[dict[str, str]]) -> list[dict[str, str]]:
    if isinstance(dimensions, Mapping):
        return [{"Name": name, "Value": str(value)} for name, value in dimensions.items()]
    return [dict(d) for d in dimensions]


def _dark(region: str) -> bool:
    try:
        return runtime.get().is_dark(region)
    except RuntimeError:  # no runtime (a unit test of a publisher): nothing is dark
        return False


def _backend(account: str, region: str) -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[account][region]


def put_many(account: str, region: str, namespace: str, data: list[dict[str, Any]]) -> bool:
    """PutMetricData as the service itself would; False (nothing put) while the region is dark."""
    if not data or _dark(region):
        return False
    _backend(account, region).put_metric_data(namespace, data)
    return True


def put(
    account: str,
    region: str,
    namespace: str,
    name: str,
    value: float,
    dimensions: Mapping[str, str] | Iterable[dict[str, str]],
    unit: str = "None",
) -> bool:
    datum = {"MetricName": name, "Value": float(value), "Unit": unit, "Dimensions": _dimensions(dimensions)}
    return put_many(account, region, namespace, [datum])


def _round(value: float) -> float:
    """Three significant digits: 0.01234 -> 0.0123; percentiles of rounded values err by < 0.5 %."""
    if value == 0 or not math.isfinite(value):
        return value
    digits = 2 - math.floor(math.log10(abs(value)))
    return round(value, digits)


def _distribution_class() -> type:
    from moto.cloudwatch.models import MetricAggregatedDatum

    class DistributionDatum(MetricAggregatedDatum):
        """A period's values as moto's statistic-set datum, plus ``distribution`` {value: count} for percentiles."""

        def __init__(
            self, namespace: str, name: str, samples: list[float], dimensions: list[dict[str, str]], unit: str
        ):
            super().__init__(
                namespace=namespace,
                name=name,
                min_stat=min(samples),
                max_stat=max(samples),
                sample_count=float(len(samples)),
                sum_stat=float(sum(samples)),
                dimensions=dimensions,
                timestamp=None,
                unit=unit,
            )
            distribution: dict[float, int] = {}
            for sample in samples:
                key = _round(float(sample))
                distribution[key] = distribution.get(key, 0) + 1
            self.distribution = distribution

    return DistributionDatum


_DISTRIBUTION: type | None = None


def put_distribution(
    account: str,
    region: str,
    namespace: str,
    name: str,
    samples: list[float],
    dimensions: Mapping[str, str] | Iterable[dict[str, str]],
    unit: str = "None",
) -> bool:
    """Many values of one metric at once (one datum); nothing for no samples or a dark region."""
    global _DISTRIBUTION
    if not samples or _dark(region):
        return False
    if _DISTRIBUTION is None:
        _DISTRIBUTION = _distribution_class()
    datum = _DISTRIBUTION(namespace, name, list(samples), _dimensions(dimensions), unit)
    _backend(account, region).metric_data.append(datum)
    return True


def naive_utc(value: Any) -> dt.datetime:
    """moto keeps a datum's timestamp as it came (aware or naive datetime, or ISO text): naive UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def prune(backend: Any, now: dt.datetime) -> int:
    """Drop the service namespaces' data older than RETENTION; returns how many went.

    Deletes by index from the end, one at a time: appends by concurrent PutMetricData calls land after
    the range scanned and are never lost.
    """
    cutoff = now - RETENTION
    data = backend.metric_data
    dropped = 0
    for index in range(len(data) - 1, -1, -1):
        try:
            datum = data[index]
        except IndexError:  # another pruner went first
            continue
        if datum.namespace.startswith(SERVICE_NAMESPACE_PREFIXES) and naive_utc(datum.timestamp) < cutoff:
            del data[index]
            dropped += 1
    return dropped

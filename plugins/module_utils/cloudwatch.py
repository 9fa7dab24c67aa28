# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the latest value of a CloudWatch metric.

Decisions such as "is the secondary close enough to switch over to" or "is replication healthy" need
the metric's newest datapoint, not a series: GetMetricStatistics over a short recent window returns
datapoints in no particular order, so the newest one is picked by its timestamp. An empty window
(the metric is not published, or not yet) is None, which callers must treat as "unknown", never as 0.
"""

from __future__ import annotations

import datetime


def latest_datapoint(cloudwatch, namespace, metric, dimensions, statistic="Maximum", minutes=5, period=60):
    """The `statistic` of the newest datapoint of `metric` in the last `minutes`, or None.

    `cloudwatch` is a client made with a retry decorator (the call passes aws_retry=True); `dimensions`
    is a dict of dimension name to value. API errors are left to the caller: whether an unreadable
    metric fails a check or only leaves a value unknown is the caller's decision.
    """
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - modules also run on Pythons before 3.11
    points = cloudwatch.get_metric_statistics(
        aws_retry=True,
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": name, "Value": value} for name, value in dimensions.items()],
        StartTime=now - datetime.timedelta(minutes=minutes),
        EndTime=now,
        Period=period,
        Statistics=[statistic],
    )["Datapoints"]
    if not points:
        return None
    return max(points, key=lambda point: point["Timestamp"])[statistic]

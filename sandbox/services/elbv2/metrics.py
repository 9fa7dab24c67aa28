"""The ALB's CloudWatch metrics (namespace AWS/ApplicationELB), counted by the data plane and published
every ``PUBLISH_INTERVAL_S`` through sandbox/services/cloudwatch/metrics.py.

Counted on the asyncio loop by sandbox/services/elbv2/listener.py and sandbox/services/elbv2/proxy.py (so
no locks): requests, the status codes targets returned, the codes the load balancer generated itself, and
each target's response time.
Published, as the ALB publishes them (the CloudWatch user guide, "CloudWatch metrics for your
Application Load Balancer"):

- per load balancer (dimension ``LoadBalancer`` = ``app/<name>/<id>``, the ARN's tail): ``RequestCount``
  and ``HTTPCode_ELB_3XX/4XX/5XX_Count`` (502/503/504 included), only for intervals that had some;
- per target group and load balancer (``TargetGroup`` = ``targetgroup/<name>/<id>``, ``LoadBalancer``):
  ``RequestCount``, ``HTTPCode_Target_2XX/3XX/4XX/5XX_Count`` (only when non-zero) and
  ``TargetResponseTime`` (seconds, every request's value, so p99 works), while requests flow;
  ``HealthyHostCount`` and ``UnHealthyHostCount`` at every interval while the group, attached to the load
  balancer, has registered targets (none are published once every target is gone, as on AWS).

Where the sandbox differs: AWS publishes one-minute datapoints; the sandbox publishes every 10 s (an
alarm's Sum, Maximum or Average over its period is the same; a Minimum or Maximum of the host counts
sees 10 s samples rather than AWS's one-minute aggregate of its own samples). The per-AZ variants
(``AvailabilityZone`` dimension) are not published.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.services.cloudwatch import metrics as cloudwatch

NAMESPACE = "AWS/ApplicationELB"
PUBLISH_INTERVAL_S = 10.0


def load_balancer_dimension(arn: str) -> str:
    """arn:...:loadbalancer/app/<name>/<id> -> app/<name>/<id>"""
    return arn.split(":loadbalancer/", 1)[-1]


def target_group_dimension(arn: str) -> str:
    """arn:...:targetgroup/<name>/<id> -> targetgroup/<name>/<id>"""
    return arn.rsplit(":", 1)[-1]


def _class(status: int) -> str:
    return f"{status // 100}XX"


@dataclass
class _GroupCounts:
    requests: int = 0
    codes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    response_times: list[float] = field(default_factory=list)


@dataclass
class _BalancerCounts:
    requests: int = 0
    codes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Traffic:
    """Counters of one interval, written on the loop thread only; ``take`` starts the next interval."""

    def __init__(self) -> None:
        self.balancers: dict[str, _BalancerCounts] = defaultdict(_BalancerCounts)
        self.groups: dict[tuple[str, str], _GroupCounts] = defaultdict(_GroupCounts)

    def request(self, balancer_arn: str) -> None:
        self.balancers[balancer_arn].requests += 1

    def generated(self, balancer_arn: str, status: int) -> None:
        """A response the load balancer made itself (errors, redirects, fixed responses)."""
        self.balancers[balancer_arn].codes[_class(status)] += 1

    def routed(self, balancer_arn: str, group_arn: str) -> None:
        self.groups[(balancer_arn, group_arn)].requests += 1

    def answered(self, balancer_arn: str, group_arn: str, status: int, seconds: float) -> None:
        """The target's response head arrived: its status class and the time it took."""
        counts = self.groups[(balancer_arn, group_arn)]
        counts.codes[_class(status)] += 1
        counts.response_times.append(seconds)

    def take(self) -> tuple[dict[str, _BalancerCounts], dict[tuple[str, str], _GroupCounts]]:
        balancers, groups = self.balancers, self.groups
        self.balancers, self.groups = defaultdict(_BalancerCounts), defaultdict(_GroupCounts)
        return balancers, groups


@dataclass(frozen=True)
class Attachment:
    """A target group a load balancer forwards to, with its host counts now."""

    scope: tuple[str, str]  # (account, region)
    balancer_arn: str
    group_arn: str
    healthy: int
    unhealthy: int
    registered: int


def publish(
    traffic: Traffic, attachments: Iterable[Attachment], scopes: dict[str, tuple[str, str]], is_dark: Any
) -> None:
    """One interval's metrics into CloudWatch; ``scopes`` maps a load balancer ARN to (account, region)."""
    balancers, groups = traffic.take()
    batches: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)

    def add(scope: tuple[str, str], name: str, value: float, dimensions: dict[str, str], unit: str) -> None:
        batches[scope].append(
            {
                "MetricName": name,
                "Value": float(value),
                "Unit": unit,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            }
        )

    for arn, counts in balancers.items():
        scope = scopes.get(arn)
        if scope is None or is_dark(scope[1]):
            continue
        dims = {"LoadBalancer": load_balancer_dimension(arn)}
        if counts.requests:
            add(scope, "RequestCount", counts.requests, dims, "Count")
        for code, count in counts.codes.items():
            add(scope, f"HTTPCode_ELB_{code}_Count", count, dims, "Count")
    for (arn, group_arn), counts in groups.items():
        scope = scopes.get(arn)
        if scope is None or is_dark(scope[1]):
            continue
        dims = {"TargetGroup": target_group_dimension(group_arn), "LoadBalancer": load_balancer_dimension(arn)}
        if counts.requests:
            add(scope, "RequestCount", counts.requests, dims, "Count")
        for code, count in counts.codes.items():
            add(scope, f"HTTPCode_Target_{code}_Count", count, dims, "Count")
        if counts.response_times:
            cloudwatch.put_distribution(
                scope[0], scope[1], NAMESPACE, "TargetResponseTime", counts.response_times, dims, "Seconds"
            )
    for attachment in attachments:
        if not attachment.registered or is_dark(attachment.scope[1]):
            continue
        dims = {
            "TargetGroup": target_group_dimension(attachment.group_arn),
            "LoadBalancer": load_balancer_dimension(attachment.balancer_arn),
        }
        add(attachment.scope, "HealthyHostCount", attachment.healthy, dims, "Count")
        add(attachment.scope, "UnHealthyHostCount", attachment.unhealthy, dims, "Count")
    for (account, region), data in batches.items():
        for start in range(0, len(data), 1000):
            cloudwatch.put_many(account, region, NAMESPACE, data[start : start + 1000])

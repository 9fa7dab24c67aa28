"""Failover decisions and figures: which region takes the traffic, and the report's timings (computed from
aurora_global_failover's timeline)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ansible.errors import AnsibleFilterError


def failover_writerless_seconds(timeline: list[dict[str, Any]], target_arn: str) -> float | None:
    """Seconds from the request until the target was first seen as the writer (an upper bound: polling).

    None when the timeline has no request (nothing was started) or the target never became the writer.
    """
    target = (target_arn or "").split(":")[-1]
    requested = next(
        (e["elapsed_s"] for e in timeline or [] if str(e.get("event", "")).endswith(f"requested for {target}")), None
    )
    if requested is None or not target:
        return None
    for event in timeline:
        if event["elapsed_s"] >= requested and f"writer {target}" in str(event.get("event", "")):
            return round(float(event["elapsed_s"]) - float(requested), 2)
    return None


def failover_time_plus(timestamp: str, seconds: float) -> str:
    """An ISO 8601 UTC time ('2026-12-02T14:50:01.250Z') plus seconds, to the second; '' for ''."""
    if not timestamp:
        return ""
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")) + timedelta(seconds=float(seconds))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def traffic_regions(global_clusters: list[dict[str, Any]], regions: list[str], inventory_primary: str) -> list[str]:
    """The regions in traffic order: the writer of the global database first, then the others.

    Traffic follows the writer that AWS reports (rds_global_cluster_info's global_clusters), not the one a
    run asked for: after a failover site.yml keeps the traffic where the writer is, and a failover moves it
    to the writer it finds. With no global database, or no writer among the inventory's regions (first
    deploy, teardown), the inventory's primary comes first.
    """
    if inventory_primary not in regions:
        raise AnsibleFilterError(
            f"traffic_regions: the inventory primary {inventory_primary!r} is not one of {regions}"
        )
    writers = [
        member["db_cluster_arn"].split(":")[3]
        for cluster in global_clusters or []
        for member in cluster.get("global_cluster_members") or []
        if member.get("is_writer")
    ]
    first = next((region for region in writers if region in regions), inventory_primary)
    return [first] + [region for region in regions if region != first]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "failover_writerless_seconds": failover_writerless_seconds,
            "failover_time_plus": failover_time_plus,
            "traffic_regions": traffic_regions,
        }

"""Figures for failover.yml's report, computed from aurora_global_failover's timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


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


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "failover_writerless_seconds": failover_writerless_seconds,
            "failover_time_plus": failover_time_plus,
        }

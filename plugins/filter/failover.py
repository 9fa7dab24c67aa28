"""Figures for failover.yml's report, computed from aurora_global_failover's timeline."""

from __future__ import annotations

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


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"failover_writerless_seconds": failover_writerless_seconds}

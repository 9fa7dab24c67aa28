"""One PNG per drill: the requests over time coloured by outcome (top), successes and failures per
second (bottom), with the fault, the detection, the operator steps, the recovery and the undo marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt

OK, FAILED = "#2e7d32", "#c62828"


def draw(result: dict[str, Any], path: Path) -> None:
    fault = result["marks"]["fault"]
    requests = [(kind, start - fault, status, ok) for kind, start, _end, status, ok in result["outcomes"]]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True, height_ratios=[2, 1])
    for row, kind in enumerate(("write", "read")):
        for ok, colour in ((True, OK), (False, FAILED)):
            xs = [t for k, t, _s, o in requests if k == kind and o is ok]
            top.scatter(xs, [row] * len(xs), s=6, c=colour, marker="|", label=f"{kind} {'ok' if ok else 'failed'}")
    top.set_yticks([0, 1], ["writes", "reads"])
    top.set_ylim(-0.6, 1.6)
    top.set_title(f"{result['scenario']}: {result['title']}", fontsize=10)
    _per_second(bottom, requests)
    _marks(result, fault, (top, bottom))
    top.legend(loc="upper left", fontsize=7, ncols=3)
    bottom.set_xlabel("seconds after the fault")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _per_second(axis: Any, requests: list[tuple[str, float, int, bool]]) -> None:
    if not requests:
        return
    first, last = int(min(r[1] for r in requests)) - 1, int(max(r[1] for r in requests)) + 1
    seconds = list(range(first, last + 1))
    ok = [sum(1 for r in requests if r[3] and s <= r[1] < s + 1) for s in seconds]
    failed = [sum(1 for r in requests if not r[3] and s <= r[1] < s + 1) for s in seconds]
    axis.bar(seconds, ok, width=1.0, color=OK, align="edge", label="ok / s")
    axis.bar(seconds, failed, width=1.0, bottom=ok, color=FAILED, align="edge", label="failed / s")
    axis.set_ylabel("requests / s")


def _marks(result: dict[str, Any], fault: float, axes: tuple[Any, ...]) -> None:
    det, rec = result["detection"], result["recovery"]
    lines = [
        (0.0, "fault", "black", "-"),
        (det["first"], "detected", "#ef6c00", "--"),
        (det["notification"], "alert sent", "#6a1b9a", ":"),
        (rec["first_read_s"], "reads back", OK, "--"),
        (rec["first_write_s"], "writes back", OK, "-."),
        (rec["full_capacity_s"], "full capacity", OK, "-"),
        (_rel(result["marks"].get("undo"), fault), "undo", "#1565c0", "-"),
    ]
    for axis in axes:
        for x, _label, colour, style in lines:
            if x is not None:
                axis.axvline(x, color=colour, linestyle=style, linewidth=1)
        for step in rec["operator_steps"]:
            axis.axvspan(step["start_s"] - fault, step["end_s"] - fault, color="#ffe082", alpha=0.4)
    top = axes[0]
    for x, label, colour, _style in lines:
        if x is not None:
            top.annotate(label, (x, 1.45), fontsize=7, color=colour, rotation=90, va="top", ha="right")
    for step in rec["operator_steps"]:
        top.annotate(step["title"], (step["start_s"] - fault, -0.55), fontsize=7, color="#8d6e00")


def _rel(t: float | None, fault: float) -> float | None:
    return None if t is None else t - fault

"""The automatic failover's decision (extensions/eda/plugins/event_filter/failover_decision.py) on event streams.

Each file in tests/eda/streams/ is an event stream and the decisions it must produce:
- ``*.yaml``: written by hand in a compact form (ranges of snapshots every few seconds: which counted
  signals are down, the lag, the secondary's health, the writer), expanded to the events the
  region_signals source emits;
- ``*.jsonl``: recorded from the controller on the sandbox (the source's ``record_file``): the first
  line holds the expectations and the settings, every other line is one event as the source emitted it.
Every stream says which verdict changes happen at which second (``expect``: [at, verdict, text in a
reason]); nothing else may change.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STREAMS = Path(__file__).resolve().parent / "streams"


def _load_filter() -> Any:
    spec = importlib.util.spec_from_file_location(
        "failover_decision", ROOT / "extensions/eda/plugins/event_filter/failover_decision.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


decision = _load_filter()


def _snapshot(entry: dict[str, Any], at: float) -> dict[str, Any]:
    down = set(entry.get("down", []))
    signals: dict[str, Any] = {
        name: {"healthy": name not in down, "detail": "down" if name in down else "ok"}
        for name in ("primary_http", "primary_api", "replication")
    }
    if "lag" in entry:
        signals["replication"]["lag_ms"] = entry["lag"]
    else:
        signals["replication"] = {"healthy": None if "replication" not in down else False, "detail": "no datapoint"}
    if "r53" in entry:
        signals["route53"] = {"healthy": entry["r53"], "detail": "checkers"}
    return {
        "at": 1_700_000_000 + at,
        "primary_region": "us-east-1",
        "secondary_region": "us-west-2",
        "writer_region": entry.get("writer", "us-east-1"),
        "signals": signals,
        "secondary": {
            "api": {"healthy": entry.get("sec_api", True), "detail": "503 ServiceUnavailable"},
            "http": {"healthy": entry.get("sec_http", True), "detail": "connection refused"},
        },
    }


def _expand(stream: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    for entry in stream["events"]:
        at = entry["from"]
        while at <= entry["to"]:
            events.append({"region_signals": _snapshot(entry, at)})
            at += entry["every"]
    return events


def _load(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[list[Any]], float]:
    if path.suffix == ".jsonl":
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        header, events = lines[0], lines[1:]
        return header["settings"], events, header["expect"], events[0]["region_signals"]["at"]
    stream = yaml.safe_load(path.read_text())
    return stream["settings"], _expand(stream), stream["expect"], 1_700_000_000


def _replay(settings: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    decider = decision.Decider(decision.Settings.from_args(settings))
    return [decider.observe(event["region_signals"]) for event in events]


@pytest.mark.parametrize("path", sorted(STREAMS.glob("*.y*ml")) + sorted(STREAMS.glob("*.jsonl")), ids=lambda p: p.name)
def test_stream_gives_the_expected_decisions(path: Path) -> None:
    settings, events, expect, t0 = _load(path)
    changes = [d for d in _replay(settings, events) if d["changed"]]
    got = [[round(d["at"] - t0), d["verdict"]] for d in changes]
    assert got == [[at, verdict] for at, verdict, *_ in expect], path.name
    for change, (_at, _verdict, *text) in zip(changes, expect, strict=True):
        if text:
            assert text[0] in " ".join(change["reasons"]), change["reasons"]


def test_flapping_never_fails_over_whatever_the_dwell_phase() -> None:
    # Dark 10 s, back 10 s, dark 10 s, with the dark spells starting at every phase of the 2 s poll.
    for offset in range(0, 10):
        stream = {
            "events": [
                {"from": 0, "to": 20, "every": 2, "lag": 0},
                {"from": 21 + offset, "to": 30 + offset, "every": 2, "down": ["primary_http", "primary_api"]},
                {"from": 31 + offset, "to": 40 + offset, "every": 2, "down": ["replication"], "lag": 5000},
                {"from": 41 + offset, "to": 50 + offset, "every": 2, "down": ["primary_http", "primary_api"]},
                {"from": 51 + offset, "to": 120, "every": 2, "lag": 0},
            ]
        }
        verdicts = {d["verdict"] for d in _replay({"dwell_s": 20}, _expand(stream))}
        assert "failover" not in verdicts and "refuse" not in verdicts, offset


def test_the_failover_decision_carries_its_evidence() -> None:
    _settings, events, _expect, _t0 = _load(STREAMS / "outage.yaml")
    failover = next(d for d in _replay({"dwell_s": 20}, events) if d["verdict"] == "failover")
    evidence = failover["evidence"]
    assert evidence["unhealthy_signals"] == ["primary_http", "primary_api", "replication"]
    assert evidence["unhealthy_for_s"] == 20
    assert evidence["lag_before_outage_ms"] == 0
    assert evidence["signals"]["route53"] == {"healthy": False, "detail": "checkers"}
    assert evidence["secondary"]["http"]["healthy"] is True


def test_filter_entry_point_adds_the_decision_and_writes_the_status(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    _settings, events, _expect, _t0 = _load(STREAMS / "outage.yaml")
    out = [decision.main(dict(event), dwell_s=20, status_file=str(status)) for event in events]
    assert [e["decision"]["verdict"] for e in out if e["decision"]["changed"]] == ["suspect", "failover", "latched"]
    written = json.loads(status.read_text())
    assert written["phase"] == "latched"
    assert [d["verdict"] for d in written["decisions"]] == ["suspect", "failover", "latched"]
    assert decision.main({"other": 1}, dwell_s=20) == {"other": 1}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"dwell_s": -1}, "dwell_s"),
        ({"dwell_s": "30"}, "dwell_s"),
        ({"quorum": 4}, "quorum"),
        ({"require_lag_within_bound": "no"}, "require_lag_within_bound"),
        ({"dwel_s": 30}, "dwel_s"),
    ],
)
def test_bad_settings_are_named(args: dict[str, Any], named: str) -> None:
    with pytest.raises(decision.DecisionError, match=named):
        decision.Settings.from_args(args)


def test_an_event_without_a_time_is_named() -> None:
    decider = decision.Decider(decision.Settings())
    with pytest.raises(decision.DecisionError, match=r"region_signals\.at"):
        decider.observe({"signals": {}})

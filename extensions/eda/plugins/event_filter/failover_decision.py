"""Event filter: the automatic failover's decision, a state machine over the region_signals events.

ansible-rulebook calls ``main(event, **args)`` for every event of the source it filters (one
instance per source, so the state below lives as long as the controller). Each signals event comes
back with a ``decision`` key; the rules only read ``event.decision.verdict`` and the mode:

- ``watching``: the primary is healthy (or fewer than ``quorum`` signals say otherwise);
- ``suspect``: at least ``quorum`` independent signals say the primary is unhealthy; the dwell runs;
- ``recovered``: the primary came back before the dwell ended (a flap), or one of the unhealthy signals
  turned healthy again (a region on its way back): nothing happens, the dwell starts over;
- ``failover``: unhealthy for the whole dwell, the secondary healthy, its replication lag within the
  bound before the outage: fail over (automatic) or ask for approval (notify). Latched: one per incident;
- ``refuse``: the dwell ended but a guard rail says no (secondary unhealthy, lag over the bound before
  the outage, lag unknown): the on-call is told why, nothing moves. Latched too;
- ``blind``: the secondary region's own APIs do not answer: the controller cannot judge or act;
- ``standby``: the watched primary is not the writer (already failed over): nothing to do, never a
  failback;
- ``latched``: after a decision, until the primary has been healthy for ``recover_s``: nothing new;
- ``cooldown``: the incident is over; no new decision until the cool-down ends.

``changed`` is true on the event where the verdict changes, so each decision is acted on and notified
once. Time comes from the events (``at``, epoch seconds), never from the clock, so recorded streams
replay exactly (tests/eda/streams/).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

# The primary's health as seen by independent means; Route 53's verdict is read as corroboration only.
COUNTED_SIGNALS = ("primary_http", "primary_api", "replication")
CORROBORATION_SIGNALS = ("route53",)
ACTING_VERDICTS = ("failover", "refuse", "blind")
HISTORY = 20


class DecisionError(ValueError):
    """A filter argument or an event that cannot be used; the message names it and the fix."""


@dataclass
class Settings:
    dwell_s: float = 30.0
    quorum: int = 2
    max_lag_ms: float = 1000.0
    # Refuse when the lag before the outage is unknown or over the bound (set false to fail over anyway).
    require_lag_within_bound: bool = True
    cooldown_s: float = 600.0
    # How long the primary must look healthy again before an incident counts as over.
    recover_s: float = 30.0

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> Settings:
        known = {name for name in cls.__dataclass_fields__}
        unknown = sorted(set(args) - known - {"status_file"})
        if unknown:
            raise DecisionError(
                f"failover_decision: unknown argument(s) {unknown}; known: {sorted(known | {'status_file'})}"
            )
        settings = cls(**{key: value for key, value in args.items() if key in known})
        for name in ("dwell_s", "max_lag_ms", "cooldown_s", "recover_s"):
            value = getattr(settings, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise DecisionError(f"failover_decision: {name}={value!r} must be a number >= 0 (seconds or ms)")
            setattr(settings, name, float(value))
        if not isinstance(settings.quorum, int) or not 1 <= settings.quorum <= len(COUNTED_SIGNALS):
            raise DecisionError(
                f"failover_decision: quorum={settings.quorum!r} must be an integer from 1 to {len(COUNTED_SIGNALS)} "
                f"(of the signals {', '.join(COUNTED_SIGNALS)})"
            )
        if not isinstance(settings.require_lag_within_bound, bool):
            raise DecisionError(
                f"failover_decision: require_lag_within_bound={settings.require_lag_within_bound!r} must be true or false"
            )
        return settings


@dataclass
class Decider:
    settings: Settings
    phase: str = "watching"
    verdict: str = "watching"
    suspect_since: float | None = None
    latched_at: float | None = None
    healthy_since: float | None = None
    cooldown_until: float | None = None
    lag_before_ms: float | None = None
    lag_before_at: float | None = None
    unhealthy_before: list[str] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def observe(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """One signals snapshot in, the decision out (the verdict, whether it changed, the evidence)."""
        at = _number(snapshot, "at")
        signals = snapshot.get("signals") or {}
        unhealthy = [name for name in COUNTED_SIGNALS if (signals.get(name) or {}).get("healthy") is False]
        verdict, reasons = self._step(at, snapshot, unhealthy)
        changed = verdict != self.verdict
        self.verdict = verdict
        decision = {
            "verdict": verdict,
            "changed": changed,
            "at": at,
            "phase": self.phase,
            "reasons": reasons,
            "evidence": self._evidence(at, snapshot, unhealthy),
        }
        if changed:
            self.decisions = [*self.decisions, decision][-HISTORY:]
        return decision

    def _step(self, at: float, snapshot: dict[str, Any], unhealthy: list[str]) -> tuple[str, list[str]]:
        secondary = snapshot.get("secondary") or {}
        if (secondary.get("api") or {}).get("healthy") is not True:
            # Without the secondary's APIs nothing can be judged or done; the incident clock starts over.
            self.suspect_since = None
            if self.phase == "suspect":
                self.phase = "watching"
            detail = (secondary.get("api") or {}).get("detail", "no answer")
            return "blind", [f"the secondary region's APIs do not answer: {detail}"]
        writer = snapshot.get("writer_region")
        if writer and writer != snapshot.get("primary_region"):
            self.suspect_since = None
            if self.phase == "suspect":
                self.phase = "watching"
            return "standby", [
                f"{writer} is the writer, not the watched primary: nothing to fail over (never a failback)"
            ]
        if self.phase in ("latched", "cooldown"):
            return self._after_incident(at, unhealthy)
        if len(unhealthy) < self.settings.quorum:
            if not unhealthy:
                self._remember_lag(at, snapshot)
            self.unhealthy_before = []
            if self.phase == "suspect":
                self.phase, self.suspect_since = "watching", None
                return "recovered", [f"only {len(unhealthy)} signal(s) unhealthy before the dwell ended: a flap"]
            return "watching", []
        recovering = sorted(set(self.unhealthy_before) - set(unhealthy))
        if (
            self.phase == "suspect"
            and recovering
            and all(((snapshot.get("signals") or {}).get(name) or {}).get("healthy") is True for name in recovering)
        ):
            # A signal came back: a region on its way back (or flapping) is not a steady outage; the dwell restarts.
            self.phase, self.suspect_since, self.unhealthy_before = "watching", None, []
            return "recovered", [f"{', '.join(recovering)} healthy again before the dwell ended: the dwell starts over"]
        self.unhealthy_before = unhealthy
        if self.phase != "suspect":
            self.phase, self.suspect_since = "suspect", at
        if at - self.suspect_since < self.settings.dwell_s:
            return "suspect", [
                f"{', '.join(unhealthy)} unhealthy for {at - self.suspect_since:.0f} s of {self.settings.dwell_s:.0f} s"
            ]
        self.phase, self.latched_at = "latched", at
        refusals = self._guard_rails(snapshot)
        if refusals:
            return "refuse", refusals
        return "failover", [
            f"{', '.join(unhealthy)} unhealthy for {at - self.suspect_since:.0f} s (dwell {self.settings.dwell_s:.0f} s)"
        ]

    def _after_incident(self, at: float, unhealthy: list[str]) -> tuple[str, list[str]]:
        if self.phase == "latched":
            if unhealthy:
                self.healthy_since = None
                return "latched", ["one decision per incident: waiting for the primary to be healthy again"]
            self.healthy_since = self.healthy_since if self.healthy_since is not None else at
            if at - self.healthy_since < self.settings.recover_s:
                return "latched", [
                    f"one decision per incident: the primary healthy for {at - self.healthy_since:.0f} s"
                ]
            self.phase = "cooldown"
            self.cooldown_until = max(at, (self.latched_at or at) + self.settings.cooldown_s)
        if at < (self.cooldown_until or 0):
            return "cooldown", [f"the incident is over; no decision before {self.cooldown_until:.0f} (cool-down)"]
        self.phase, self.suspect_since, self.healthy_since, self.latched_at = "watching", None, None, None
        return "watching", []

    def _guard_rails(self, snapshot: dict[str, Any]) -> list[str]:
        refusals = []
        secondary_http = (snapshot.get("secondary") or {}).get("http") or {}
        if secondary_http.get("healthy") is not True:
            refusals.append(f"the secondary does not serve: {secondary_http.get('detail', 'not probed')}")
        if self.settings.require_lag_within_bound:
            if self.lag_before_ms is None:
                refusals.append("the secondary's replication lag before the outage is unknown (no datapoint)")
            elif self.lag_before_ms > self.settings.max_lag_ms:
                refusals.append(
                    f"the secondary's replication lag before the outage was {self.lag_before_ms:.0f} ms, "
                    f"over the bound of {self.settings.max_lag_ms:.0f} ms"
                )
        return refusals

    def _remember_lag(self, at: float, snapshot: dict[str, Any]) -> None:
        lag = ((snapshot.get("signals") or {}).get("replication") or {}).get("lag_ms")
        if isinstance(lag, int | float) and not isinstance(lag, bool):
            self.lag_before_ms, self.lag_before_at = float(lag), at

    def _evidence(self, at: float, snapshot: dict[str, Any], unhealthy: list[str]) -> dict[str, Any]:
        signals = snapshot.get("signals") or {}
        return {
            "primary_region": snapshot.get("primary_region"),
            "secondary_region": snapshot.get("secondary_region"),
            "writer_region": snapshot.get("writer_region"),
            "unhealthy_signals": unhealthy,
            "signals": {name: signals.get(name) for name in COUNTED_SIGNALS + CORROBORATION_SIGNALS if name in signals},
            "secondary": snapshot.get("secondary") or {},
            "suspect_since": self.suspect_since,
            "unhealthy_for_s": round(at - self.suspect_since, 1) if self.suspect_since is not None else None,
            "dwell_s": self.settings.dwell_s,
            "quorum": self.settings.quorum,
            "lag_before_outage_ms": self.lag_before_ms,
            "lag_before_outage_at": self.lag_before_at,
            "max_lag_ms": self.settings.max_lag_ms,
        }

    def status(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        return {
            "updated_at": snapshot.get("at"),
            "phase": self.phase,
            "verdict": self.verdict,
            "settings": self.settings.__dict__,
            "signals": snapshot.get("signals"),
            "secondary": snapshot.get("secondary"),
            "writer_region": snapshot.get("writer_region"),
            "decisions": self.decisions,
        }


def _number(snapshot: dict[str, Any], key: str) -> float:
    value = snapshot.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise DecisionError(f"failover_decision: the event's region_signals.{key}={value!r} must be epoch seconds")
    return float(value)


def write_status(path: str, status: dict[str, Any]) -> None:
    """Replace the status file atomically: `controller status` reads it while the controller writes."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".status-")
    with os.fdopen(fd, "w") as handle:
        json.dump(status, handle, indent=1, default=str)
    os.replace(tmp, path)


_DECIDERS: dict[str, Decider] = {}


def main(event: dict[str, Any], **args: Any) -> dict[str, Any]:
    """ansible-rulebook's filter entry point: add ``decision`` to each region_signals event."""
    snapshot = event.get("region_signals")
    if not isinstance(snapshot, dict):
        return event
    # The source carries the settings rendered from the inventory; the filter's own arguments override them.
    settings = {**(snapshot.get("decision_settings") or {}), **args}
    key = json.dumps(settings, sort_keys=True, default=str)
    decider = _DECIDERS.get(key)
    if decider is None:
        decider = _DECIDERS[key] = Decider(Settings.from_args(settings))
    event["decision"] = decider.observe(snapshot)
    if settings.get("status_file"):
        write_status(str(settings["status_file"]), decider.status(snapshot))
    return event

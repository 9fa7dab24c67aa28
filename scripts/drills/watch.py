"""What the drill sees through the AWS APIs while it runs: every change of a watched fact, with its time.

A thread reads a `stack.Snapshot` about once a second and records each fact that changed as an `Event`;
in the sandbox it also reads the SNS outbox (`GET /_sandbox/sns/outbox`), so that the report can say when
the first alert went out. The runner reads the latest snapshot to decide when the stack has recovered.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scripts.drills.stack import Snapshot


@dataclass
class Event:
    t: float  # seconds since the drill's clock zero
    source: str  # ecs | target | health-check | alarm | aurora | aurora-writer | global-writer | api | sns | step
    what: str  # the fact's name: "us-east-1", "us-east-1 10.10.1.5:8000", an alarm's name
    old: str
    new: str

    def line(self) -> str:
        return f"{self.t:7.1f} s  {self.source:<14} {self.what}: {self.old} -> {self.new}"


# A change is trouble (a detection) when the new value says something is wrong.
def is_trouble(event: Event) -> bool:
    if event.source == "target":
        return event.new != "healthy"
    if event.source == "ecs":
        running, desired = event.new.split("/") if "/" in event.new else ("0", "1")
        return int(running) < int(desired)
    if event.source == "health-check":
        return event.new == "unhealthy"
    if event.source == "alarm":
        return event.new == "ALARM"
    if event.source in ("aurora", "api"):
        return event.new not in ("available", "answers")
    return event.source in ("aurora-writer", "global-writer")


@dataclass
class Watcher:
    read: Callable[[], Snapshot]
    now: Callable[[], float]
    outbox_url: str | None = None  # the sandbox's SNS outbox; None on AWS
    interval: float = 1.0
    events: list[Event] = field(default_factory=list)
    latest: Snapshot | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen_messages: set[str] = set()
        self._since = datetime.now(UTC).isoformat()
        self.ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="drill-watch", daemon=True)
        self._thread.start()
        self.ready.wait(60)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def note(self, source: str, what: str, old: str = "", new: str = "") -> Event:
        """A step of the drill itself (fault injected, operator step started...), on the same clock."""
        event = Event(self.now(), source, what, old, new)
        self.events.append(event)
        return event

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            taken_at = self.now()
            snapshot = self.read()
            snapshot.taken_at = taken_at
            t = self.now()
            if self.latest is not None:
                self._diff(self.latest, snapshot, t)
            self.latest = snapshot
            self.ready.set()
            self._read_outbox(t)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _diff(self, before: Snapshot, after: Snapshot, t: float) -> None:
        # A region whose APIs do not answer tells nothing new about its resources: keep what was last seen
        # (its "api" fact is the transition), rather than report every resource as gone.
        dark = {key[1] for key, value in after.facts.items() if key[0] == "api" and value != "answers"}
        for key, value in before.facts.items():
            if key[0] != "api" and len(key) > 1 and key[1] in dark:
                after.facts.setdefault(key, value)
        for key in sorted(set(before.facts) | set(after.facts)):
            old, new = before.facts.get(key, "gone"), after.facts.get(key, "gone")
            if old != new:
                self.events.append(Event(t, key[0], " ".join(key[1:]), old, new))

    def _read_outbox(self, t: float) -> None:
        if not self.outbox_url:
            return
        try:
            query = urllib.parse.urlencode({"since": self._since})
            with urllib.request.urlopen(f"{self.outbox_url}?{query}", timeout=5) as resp:  # noqa: S310 - loopback
                messages = json.load(resp).get("messages", [])
        except (OSError, ValueError):
            return  # no outbox (an older sandbox) or a busy one: the report says no alert was seen
        for message in messages:
            ident = f"{message.get('message_id')} {message.get('endpoint')}"
            if ident in self._seen_messages or message.get("type") != "Notification":
                continue
            self._seen_messages.add(ident)
            subject = message.get("subject") or _alarm_name(message.get("message"))
            self.events.append(
                Event(t, "sns", f"{message.get('protocol')} {message.get('endpoint')}", "", subject or "notification")
            )

    def first(self, predicate: Callable[[Event], bool], after: float) -> Event | None:
        return next((e for e in self.events if e.t >= after and predicate(e)), None)


def _alarm_name(message: Any) -> str:
    try:
        body = json.loads(message)
    except (TypeError, ValueError):
        return ""
    return f"{body.get('NewStateValue', '')}: {body.get('AlarmName', '')}".strip(": ")

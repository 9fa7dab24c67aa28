"""A steady client through the public entry point: reads and writes at a fixed rate, every outcome kept.

Open loop: each request starts on its own schedule (reads every 1/reads_per_s, writes every
1/writes_per_s), whatever the previous one is doing, as real users do; a request that cannot start
because `max_in_flight` are already waiting counts as failed ("client saturated"). Each write stores a
unique key, so that afterwards every acknowledged write can be looked for (the RPO).
Bounded in time (`max_seconds`) and in count (`max_requests`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import httpx

READ_PATH = "/api/data?limit=5"  # a real read through the database, newest records first
WRITE_PATH = "/api/data"


@dataclass
class Outcome:
    kind: str  # read | write
    start: float  # seconds since the load's clock zero
    end: float
    status: int  # HTTP status; 0 when no answer came (refused, reset, timeout)
    ok: bool
    key: str = ""  # writes: the unique key sent
    record_id: int | None = None  # writes: the id the app acknowledged
    error: str = ""


@dataclass
class SteadyLoad:
    base_url: str
    run_id: str
    reads_per_s: float = 20
    writes_per_s: float = 10
    max_seconds: float = 900
    max_requests: int = 40_000
    timeout: float = 5
    max_in_flight: int = 200
    verify: bool = True
    outcomes: list[Outcome] = field(default_factory=list)
    zero: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        return time.monotonic() - self.zero

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="drill-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits, verify=self.verify
        ) as c:
            slots = asyncio.Semaphore(self.max_in_flight)
            pending: set[asyncio.Task] = set()
            schedules = [("read", 1 / self.reads_per_s), ("write", 1 / self.writes_per_s)]
            due = {kind: 0.0 for kind, _ in schedules}
            sent = 0
            while not self._stop.is_set() and self.now() < self.max_seconds and sent < self.max_requests:
                for kind, every in schedules:
                    if self.now() >= due[kind]:
                        due[kind] += every
                        sent += 1
                        task = asyncio.create_task(self._one(c, slots, kind, sent))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                await asyncio.sleep(max(0.0, min(due.values()) - self.now()))
            if pending:
                await asyncio.wait(pending, timeout=self.timeout + 1)

    async def _one(self, client: httpx.AsyncClient, slots: asyncio.Semaphore, kind: str, seq: int) -> None:
        start = self.now()
        key = f"drill-{self.run_id}-{seq}" if kind == "write" else ""
        if slots.locked():
            self.outcomes.append(Outcome(kind, start, start, 0, False, key, error="client saturated"))
            return
        async with slots:
            try:
                if kind == "read":
                    resp = await client.get(READ_PATH)
                else:
                    resp = await client.post(WRITE_PATH, json={"key": key, "value": f"{seq}"})
            except httpx.HTTPError as exc:
                self.outcomes.append(Outcome(kind, start, self.now(), 0, False, key, error=type(exc).__name__))
                return
        ok = resp.status_code == (200 if kind == "read" else 201)
        record_id = resp.json().get("id") if ok and kind == "write" else None
        error = "" if ok else resp.text[:200]
        self.outcomes.append(Outcome(kind, start, self.now(), resp.status_code, ok, key, record_id, error))

    # -- afterwards ------------------------------------------------------------------------------

    def acknowledged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "write" and o.ok]

    def missing_writes(self, retries: int = 3, pause: float = 2.0) -> list[Outcome]:
        """Every acknowledged write that cannot be read back (by id, with the key it was sent with).

        A write just acknowledged may not have reached the replica that serves the read yet; one
        missing is asked again after `pause`, up to `retries` times, before it counts as lost."""
        missing = self.acknowledged()
        for attempt in range(retries):
            if attempt:
                time.sleep(pause)
            missing = asyncio.run(self._look_for(missing))
            if not missing:
                break
        return missing

    async def _look_for(self, writes: list[Outcome]) -> list[Outcome]:
        slots = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, verify=self.verify) as client:

            async def found(write: Outcome) -> bool:
                async with slots:
                    try:
                        resp = await client.get(f"/api/data/{write.record_id}")
                    except httpx.HTTPError:
                        return False
                return resp.status_code == 200 and resp.json().get("key") == write.key

            results = await asyncio.gather(*(found(w) for w in writes))
        return [w for w, ok in zip(writes, results, strict=True) if not ok]

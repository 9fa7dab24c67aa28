"""A steady client through the public entry point: reads and writes at a fixed rate, every outcome kept.

Reads are `GET /api/data/{id}` of the load's own earlier writes (a seed write first), checked by key.
Open loop: each request starts on its own schedule (reads every 1/reads_per_s, writes every
1/writes_per_s), whatever the previous one is doing, as real users do; a request that cannot start
because `max_in_flight` are already waiting counts as failed ("client saturated"). Each write stores a
unique key, so that afterwards every acknowledged write can be looked for (the RPO).
Bounded in time (`max_seconds`) and in count (`max_requests`).

The client runs in a process of its own, so that the drill's other work (the watcher parsing API answers,
the playbooks it starts) never holds back its schedule: a gap in the figures is the system's, not the
client's. Both processes share the monotonic clock, so outcomes and events line up.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
from dataclasses import dataclass, field

import httpx

WRITE_PATH = "/api/data"
# Reads ask for a record the load wrote at least this long ago (a replica may trail the writer by a moment),
# by id, and check its key: a read through the database that also proves the data is the data written.
READ_AGE_S = 2.0
# A schedule this far behind means the client itself was not running: skip, do not burst.
STALL_S = 1.0


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
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (due, resumed) when the client lagged
    zero: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._acknowledged: list[Outcome] = []
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: the drill has threads running
        self._stop = spawn.Event()
        self._results = spawn.Queue()
        self._process = spawn.Process(target=self._serve, name="drill-load", daemon=True)

    def now(self) -> float:
        return time.monotonic() - self.zero

    def start(self) -> None:
        self._process.start()

    def stop(self) -> None:
        """Stop sending, wait for the answers in flight, and take the outcomes back from the client's process."""
        if not self._process.is_alive() and self._process.exitcode is None:
            return  # never started
        self._stop.set()
        try:
            self.outcomes, self.stalls = self._results.get(timeout=self.timeout + 30)
        except queue.Empty:
            self.outcomes, self.stalls = [], [(0.0, self.now())]  # the client's process did not report
        self._process.join(10)

    def _serve(self) -> None:
        """In the client's process: run the schedule, then hand every outcome back."""
        asyncio.run(self._run())
        self._results.put((self.outcomes, self.stalls))

    async def _run(self) -> None:
        # Enough connections for every request that may be waiting out its timeout at the fixed rate.
        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=32)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits, verify=self.verify
        ) as c:
            slots = asyncio.Semaphore(self.max_in_flight)
            await self._one(c, slots, "write", 0)  # the seed: something to read before the first write is old
            pending: set[asyncio.Task] = set()
            schedules = [("read", 1 / self.reads_per_s), ("write", 1 / self.writes_per_s)]
            due = {kind: 0.0 for kind, _ in schedules}
            sent = 0
            while not self._stop.is_set() and self.now() < self.max_seconds and sent < self.max_requests:
                for kind, every in schedules:
                    now = self.now()
                    if now >= due[kind] + STALL_S:
                        # This process did not run for a while (a starved machine): the missed slots are
                        # skipped, not fired at once, and the stall is kept so the report can say so.
                        self.stalls.append((due[kind], now))
                        due[kind] = now
                    if now >= due[kind]:
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
        wanted = self._record_to_read(start) if kind == "read" else None
        async with slots:
            try:
                # One deadline for the whole request (httpx's timeout is per phase: connect, write, read).
                if wanted is not None:
                    request = client.get(f"/api/data/{wanted.record_id}")
                elif kind == "read":
                    request = client.get("/api/data?limit=1")  # nothing acknowledged yet
                else:
                    request = client.post(WRITE_PATH, json={"key": key, "value": f"{seq}"})
                resp = await asyncio.wait_for(request, self.timeout)
            except TimeoutError:
                self.outcomes.append(Outcome(kind, start, self.now(), 0, False, key, error="timeout"))
                return
            except httpx.HTTPError as exc:
                self.outcomes.append(Outcome(kind, start, self.now(), 0, False, key, error=type(exc).__name__))
                return
        ok, record_id, error = self._judge(kind, resp, wanted)
        outcome = Outcome(kind, start, self.now(), resp.status_code, ok, key, record_id, error)
        self.outcomes.append(outcome)
        if kind == "write" and ok:
            self._acknowledged.append(outcome)

    def _record_to_read(self, now: float) -> Outcome | None:
        """The newest write acknowledged at least READ_AGE_S ago, else the oldest acknowledged one (the seed)."""
        for write in reversed(self._acknowledged):  # in order of acknowledgement: a few steps back at most
            if write.end <= now - READ_AGE_S:
                return write
        return self._acknowledged[0] if self._acknowledged else None

    @staticmethod
    def _judge(kind: str, resp: httpx.Response, wanted: Outcome | None) -> tuple[bool, int | None, str]:
        if resp.status_code != (200 if kind == "read" else 201):
            return False, None, resp.text[:200]
        body = resp.json()
        if kind == "write":
            return True, body.get("id"), ""
        if wanted is not None and body.get("key") != wanted.key:
            return False, None, f"record {wanted.record_id} has key {body.get('key')!r}, not {wanted.key!r}"
        return True, None, ""

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

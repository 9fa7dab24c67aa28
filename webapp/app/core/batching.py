"""Fewer database round trips under concurrency: coalesced reads, batched lookups, group commit.

All keep the guarantee a client expects from one statement per request: the statement that answers a
request starts after that request arrived, so a read sees every write acknowledged before it was sent
and a write is acknowledged only once its row is committed. A lone request goes at once; requests
that arrive while a statement is running go together in the next one, started as soon as it ends.

- ``Coalescer``: identical reads (same statement, same parameters) share one query and its answer.
  A read arriving while that query runs does not take its (possibly stale) result: it waits for the
  next one. At most one query per key is in flight per worker.
- ``Batcher``: items gathered into one statement for the batch: lookups by id (``id = ANY(...)``),
  and writes (one multi-row INSERT: one round trip, one commit). One batch in flight per worker.

Each statement runs in a task of its own (in a fresh context: its log lines carry no one request's
id): a client that goes away does not cancel the others' statement.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 - an item of a batch
R = TypeVar("R")


class Abandoned(Exception):
    """The batch a request waited for was stopped (the app is shutting down)."""


def _settle(futures: Sequence[asyncio.Future[T]], result: T | None, exc: Exception | None) -> None:
    for fut in futures:
        if fut.done():  # the waiting request was cancelled
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)  # type: ignore[arg-type]


class _Flight:
    """The queries of one key: the requests waiting for the running one, and for the next."""

    __slots__ = ("current", "next")

    def __init__(self, first: asyncio.Future[object]) -> None:
        self.current = [first]
        self.next: list[asyncio.Future[object]] = []


class Coalescer(Generic[K, T]):
    """Single flight with a fresh start per waiter (see the module's docstring)."""

    def __init__(self) -> None:
        self._flights: dict[K, _Flight] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, key: K, query: Callable[[K], Awaitable[T]]) -> T:
        """The result of ``query(key)`` (or its exception), from a call started after this one."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[object] = loop.create_future()
        flight = self._flights.get(key)
        if flight is not None:
            flight.next.append(fut)
        else:
            flight = self._flights[key] = _Flight(fut)
            task = loop.create_task(self._fly(key, flight, query), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._landed, key, flight))
        return await fut  # type: ignore[return-value]

    async def _fly(self, key: K, flight: _Flight, query: Callable[[K], Awaitable[object]]) -> None:
        try:
            while flight.current:
                try:
                    result = await query(key)
                except Exception as exc:  # every waiter gets it (and answers with its 503)
                    _settle(flight.current, None, exc)
                else:
                    _settle(flight.current, result, None)
                flight.current, flight.next = flight.next, []
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]

    def _landed(self, key: K, flight: _Flight, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._flights.get(key) is flight:  # cancelled before it started
            del self._flights[key]
        # Cancelled (shutdown): nobody may wait for ever. After a normal end both lists are empty.
        _settle(flight.current + flight.next, None, Abandoned(f"{key!r}: the query was stopped"))


class Batcher(Generic[I, R]):
    """``run_many(items)`` runs a batch and returns one result per item, in order (an exception
    instance as an item's result fails that item alone); at most ``max_batch`` items per batch."""

    def __init__(self, run_many: Callable[[list[I]], Awaitable[Sequence[R | Exception]]], max_batch: int) -> None:
        self._run_many = run_many
        self._max_batch = max_batch
        self._queue: list[tuple[I, asyncio.Future[R]]] = []
        self._batch: list[tuple[I, asyncio.Future[R]]] = []  # the one running
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: I) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, fut))
        if self._task is None:
            self._task = loop.create_task(self._drain(), context=contextvars.Context())
            self._task.add_done_callback(self._drained)
        return await fut

    async def _drain(self) -> None:
        try:
            while self._queue:
                self._batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                futures = [fut for _, fut in self._batch]
                try:
                    results = await self._run_many([item for item, _ in self._batch])
                    if len(results) != len(futures):
                        raise RuntimeError(f"{len(results)} results for a batch of {len(futures)}")
                except Exception as exc:
                    _settle(futures, None, exc)
                else:
                    for fut, result in zip(futures, results, strict=True):
                        if fut.done():
                            continue
                        if isinstance(result, Exception):
                            fut.set_exception(result)
                        else:
                            fut.set_result(result)
                self._batch = []
        except BaseException:  # cancelled (shutdown): nobody may wait for ever
            self._abandon()
            raise
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    def _drained(self, task: asyncio.Task[None]) -> None:
        if self._task is task:  # cancelled before it started
            self._task = None
            self._abandon()

    def _abandon(self) -> None:
        stranded = [fut for _, fut in self._batch + self._queue]
        self._batch, self._queue = [], []
        _settle(stranded, None, Abandoned("the batch was stopped"))

"""What makes the sandbox *run* things: names, ports, child processes, background loops, faults.

Plain moto only records resources. The "live" extensions (real Aurora, ECS tasks, ALB listeners,
Route 53 health checkers, the edge, S3 replication) share this one object, created once per sandbox
server process and reached with ``get()``:

- **Names.** AWS hands out host names (ALB DNS names, cluster endpoints, task IPs). The sandbox maps
  each (name, port) an AWS client would connect to onto a listener on 127.0.0.1: ``publish`` /
  ``resolve``. Nothing the sandbox runs ever connects anywhere but loopback.
- **Regions.** ``outage(region)`` / ``restore(region)`` take a region dark and back: its API calls get
  HTTP 503 (see sandbox/control.py) and each live extension stops or restarts what
  it runs there through the hooks it registered with ``on_outage`` / ``on_restore``.
- **Processes and loops.** ``spawn`` starts child processes that ``shutdown`` (and ``sandbox down``)
  stop; ``every`` runs a function periodically on a daemon thread; ``aio`` is one asyncio loop on a
  thread of its own for the network servers (ALB listeners, the edge, TCP forwarders).
- **Control routes.** ``route(method, path, handler)`` adds an endpoint under ``/_sandbox/`` for the
  CLI and the tests (faults, the edge's address, the name map).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import config

log = logging.getLogger("sandbox.runtime")

REGIONS = ("us-east-1", "us-west-2")

# A control-route handler gets the parsed JSON body (or {}) and the query parameters, and returns
# (HTTP status, JSON-serialisable body).
Handler = Callable[[dict[str, Any], dict[str, str]], tuple[int, Any]]


class ControlError(Exception):
    """Raised by a control handler: becomes an HTTP error with this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def free_port(host: str = config.HOST) -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class Runtime:
    state_dir: Path
    api_port: int
    edge_port: int
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _names: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    _dark: set[str] = field(default_factory=set)
    _hooks: dict[str, list[Callable[..., None]]] = field(
        default_factory=lambda: {"outage": [], "restore": [], "reset": [], "shutdown": []}
    )
    _routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _aio_loop: asyncio.AbstractEventLoop | None = None

    # -- names -------------------------------------------------------------------------------------

    def publish(self, name: str, port: int, local_port: int, local_host: str = config.HOST) -> None:
        """Connections an AWS client makes to name:port reach local_host:local_port."""
        with self._lock:
            self._names[(name.lower().rstrip("."), int(port))] = (local_host, int(local_port))

    def unpublish(self, name: str, port: int | None = None) -> None:
        key = name.lower().rstrip(".")
        with self._lock:
            for entry in [k for k in self._names if k[0] == key and (port is None or k[1] == port)]:
                del self._names[entry]

    def resolve(self, name: str, port: int) -> tuple[str, int] | None:
        """The local address standing for name:port, or None when the sandbox knows no such listener."""
        with self._lock:
            return self._names.get((name.lower().rstrip("."), int(port)))

    def names(self) -> dict[str, str]:
        with self._lock:
            return {f"{n}:{p}": f"{h}:{lp}" for (n, p), (h, lp) in sorted(self._names.items())}

    # -- regions -----------------------------------------------------------------------------------

    def is_dark(self, region: str) -> bool:
        with self._lock:
            return region in self._dark

    def dark_regions(self) -> list[str]:
        with self._lock:
            return sorted(self._dark)

    def outage(self, region: str) -> bool:
        """Take a region dark. False when it already was (nothing done)."""
        self._check_region(region)
        with self._lock:
            if region in self._dark:
                return False
            self._dark.add(region)
        log.warning("region %s is dark: its API answers 503 and its workloads stop", region)
        self._run_hooks("outage", region)
        return True

    def restore(self, region: str) -> bool:
        """Bring a dark region back. False when it was not dark."""
        self._check_region(region)
        with self._lock:
            if region not in self._dark:
                return False
            self._dark.discard(region)
        log.warning("region %s restored", region)
        self._run_hooks("restore", region)
        return True

    @staticmethod
    def _check_region(region: str) -> None:
        if region not in REGIONS:
            raise ControlError(400, f"unknown region {region!r}: the sandbox runs {', '.join(REGIONS)}")

    # -- hooks -------------------------------------------------------------------------------------

    def on_outage(self, fn: Callable[[str], None]) -> None:
        self._hooks["outage"].append(fn)

    def on_restore(self, fn: Callable[[str], None]) -> None:
        self._hooks["restore"].append(fn)

    def on_reset(self, fn: Callable[[], None]) -> None:
        """Called before moto forgets every resource (POST /moto-api/reset)."""
        self._hooks["reset"].append(fn)

    def on_shutdown(self, fn: Callable[[], None]) -> None:
        self._hooks["shutdown"].append(fn)

    def _run_hooks(self, kind: str, *args: Any) -> None:
        for fn in list(self._hooks[kind]):
            try:
                fn(*args)
            except Exception:
                log.exception("%s hook %s failed", kind, getattr(fn, "__qualname__", fn))

    def reset(self) -> None:
        self._run_hooks("reset")
        with self._lock:
            self._dark.clear()
            self._names.clear()

    def shutdown(self) -> None:
        """Stop every loop, server and child process the sandbox started."""
        self.stopping.set()
        self._run_hooks("shutdown")
        with self._lock:
            children, self._children = self._children, []
        for proc in children:
            stop_process(proc)
        if self._aio_loop is not None:
            self._aio_loop.call_soon_threadsafe(self._aio_loop.stop)

    # -- control routes ----------------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Serve handler at /_sandbox/<path> (e.g. route("POST", "outage", fn))."""
        self._routes[(method.upper(), path.strip("/"))] = handler

    def handler(self, method: str, path: str) -> Handler | None:
        return self._routes.get((method.upper(), path.strip("/")))

    def routes(self) -> list[str]:
        return sorted(f"{m} /_sandbox/{p}" for m, p in self._routes)

    # -- processes and loops -----------------------------------------------------------------------

    def spawn(self, argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> subprocess.Popen[bytes]:
        """Start a child process (in the sandbox's process group, so `sandbox down` stops it too)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        with self._lock:
            self._children = [p for p in self._children if p.poll() is None] + [proc]
        return proc

    def every(self, name: str, interval_s: float, fn: Callable[[], None]) -> threading.Thread:
        """Run fn every interval_s seconds on a daemon thread until shutdown; errors are logged, not fatal."""

        def loop() -> None:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    fn()
                except Exception:
                    log.exception("background loop %s failed (will retry)", name)
                self.stopping.wait(max(0.0, interval_s - (time.monotonic() - started)))

        thread = threading.Thread(target=loop, name=f"sandbox-{name}", daemon=True)
        thread.start()
        return thread

    @property
    def aio(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop (started on first use) that runs the sandbox's network servers."""
        with self._lock:
            if self._aio_loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="sandbox-aio", daemon=True).start()
                self._aio_loop = loop
            return self._aio_loop

    def run_coro(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.aio)

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run a coroutine on the aio loop from another thread and wait for its result."""
        return self.run_coro(coro).result(timeout)

    # -- state -------------------------------------------------------------------------------------

    def path(self, *parts: str) -> Path:
        """A path under the sandbox's state folder (created)."""
        target = self.state_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def describe(self) -> dict[str, Any]:
        return {
            "api": f"http://{config.HOST}:{self.api_port}",
            "edge": f"http://{config.HOST}:{self.edge_port}",
            "dark_regions": self.dark_regions(),
            "names": self.names(),
            "routes": self.routes(),
        }


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, wait, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)


_RUNTIME: Runtime | None = None


def init(state_dir: Path, api_port: int, edge_port: int) -> Runtime:
    global _RUNTIME
    _RUNTIME = Runtime(state_dir=state_dir, api_port=api_port, edge_port=edge_port)
    return _RUNTIME


def get() -> Runtime:
    """The runtime of this sandbox server process (extensions call this at install and after).

    ``init`` makes it (``sandbox serve`` does, before installing the extensions); there is no implicit
    one. A unit test that needs a runtime builds its own: ``Runtime(state_dir=tmp_path, api_port=0, edge_port=0)``.
    """
    if _RUNTIME is None:
        raise RuntimeError("no sandbox runtime: call sandbox.runtime.init() first (sandbox.server.serve does)")
    return _RUNTIME


def json_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ControlError(400, f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ControlError(400, "request body must be a JSON object")
    return body


def credential_scope(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(region, service) an AWS API call is signed for (its SigV4 credential scope), or (None, None)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    start = auth.find(marker)
    if start < 0:
        return None, None
    # AKID/date/region/service/aws4_request
    scope = auth[start + len(marker) :].split(",", 1)[0].split("/")
    return (scope[2], scope[3]) if len(scope) >= 5 else (None, None)


def service_from_request(environ: dict[str, Any]) -> str | None:
    return credential_scope(environ)[1]


def child_env(**extra: str) -> dict[str, str]:
    """A minimal environment for child processes: PATH, locale, and the given values."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ", "HOME") if key in os.environ}
    env.update(extra)
    return env

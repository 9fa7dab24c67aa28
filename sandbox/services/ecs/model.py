"""The ECS scheduler's records and settings: a live task (Run), a service's state, the container health check."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import config

log = logging.getLogger("sandbox.ecs_tasks")

WEBAPP_DIR = config.REPO_ROOT / "webapp"
TICK_S = 1.0
# While a task is starting or stopping the loop looks more often, so that CreateService -> RUNNING
# costs the app's own start-up time and not a scheduler tick.
BUSY_TICK_S = 0.2
DEFAULT_STOP_TIMEOUT_S = 30.0
STOPPED_RETENTION_S = 3600.0
MAX_LAUNCH_DELAY_S = 60.0
EVENTS_KEPT = 100
LOG_LINES_SHIPPED = 2000
DEFAULT_HEALTH = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
_AZ = re.compile(r"^([a-z]{2}-[a-z]+-\d)[a-z]$")


def moto_now() -> Any:
    """Now, as moto stamps its records (naive UTC)."""
    from moto.core.utils import utcnow

    return utcnow()


def _docker_exit_code(returncode: int) -> int:
    """Popen's -N (killed by signal N) is 128 + N in Docker's (and ECS's) terms."""
    return 128 - returncode if returncode < 0 else returncode


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.05)
        return sock.connect_ex((config.HOST, port)) == 0


@dataclass
class HealthCheck:
    """A container healthCheck, run as Docker does: every ``interval`` s after start, ``retries``
    failures in a row make it UNHEALTHY, failures during ``startPeriod`` do not count."""

    argv: list[str]
    interval: float
    timeout: float
    retries: int
    start_period: float
    started: float
    status: str = "UNKNOWN"
    failures: int = 0
    next_at: float = 0.0
    proc: subprocess.Popen[bytes] | None = None
    proc_started: float = 0.0

    def __post_init__(self) -> None:
        self.next_at = self.started + self.interval

    def poll(self, now: float, env: dict[str, str]) -> None:
        if self.proc is not None:
            code = self.proc.poll()
            if code is None and now - self.proc_started < self.timeout:
                return
            if code is None:
                self.close()
                code = -1
            self.proc = None
            self._record(code == 0, now)
        if now >= self.next_at:
            self.next_at = now + self.interval
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    env=env,
                    cwd=WEBAPP_DIR,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                self.proc_started = now
            except OSError:
                self._record(False, now)

    def _record(self, ok: bool, now: float) -> None:
        if ok:
            self.status, self.failures = "HEALTHY", 0
        elif now - self.started >= self.start_period:
            self.failures += 1
            if self.failures >= self.retries:
                self.status = "UNHEALTHY"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(1)


@dataclass
class Run:
    """One live task: moto's Task object (what the API shows) and the process behind it."""

    task: Any
    region: str
    account: str
    container: dict[str, Any]
    command: list[str]
    env_overrides: list[dict[str, str]]
    subnet_id: str
    ip: str
    eni_id: str
    attachment_id: str
    service: Any | None = None
    deployment_id: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    local_port: int | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)
    listening: bool = False
    ready: bool = False
    targets: list[tuple[str, int]] = field(default_factory=list)
    drain_until: float = 0.0
    kill_at: float = 0.0
    started: float | None = None
    stopped: float | None = None
    health: HealthCheck | None = None
    failure: bool = False
    log_path: Path | None = None

    @property
    def status(self) -> str:
        return str(self.task.last_status)

    @property
    def active(self) -> bool:
        """Counted by the scheduler: the task is meant to run."""
        return self.task.desired_status == "RUNNING"

    @property
    def container_ports(self) -> list[int]:
        return [int(p["containerPort"]) for p in self.container.get("portMappings") or [] if p.get("containerPort")]


@dataclass
class ServiceState:
    """The scheduler's memory of a service (kept on moto's Service object)."""

    failures: int = 0
    next_launch: float = 0.0
    steady: bool = False
    unwatched: set[str] = field(default_factory=set)  # deployments the circuit breaker stopped evaluating
    last_completed: tuple[str, str] | None = None  # (deployment id, task definition ARN)
    rotation: int = 0


def _state(service: Any) -> ServiceState:
    state = getattr(service, "_sandbox_state", None)
    if state is None:
        state = ServiceState()
        service._sandbox_state = state
    return state


def primary_deployment(service: Any) -> dict[str, Any] | None:
    return next((d for d in service.deployments or [] if d.get("status") == "PRIMARY"), None)


def new_deployment_id() -> str:
    return f"ecs-svc/{random.randrange(10**18, 10**19)}"  # noqa: S311 - an id, not a secret

"""Helpers for the web app's tests: database settings, migrations, and the app as a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sandbox.postgres import PostgresNode

REPO = Path(__file__).resolve().parents[2]
WEBAPP = REPO / "webapp"
if str(WEBAPP) not in sys.path:
    sys.path.insert(0, str(WEBAPP))  # the app package, for the tests that import it
PASSWORD = "webapp-test-password"
DB_NAME = "webapp_test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def db_env(*, host: str, **extra: str) -> dict[str, str]:
    env = {
        "DB_HOST": host,
        "DB_NAME": DB_NAME,
        "DB_USER": "postgres",
        "DB_PASSWORD": PASSWORD,
        "REGION": "us-east-1",
        "DB_POOL_SIZE": "4",
        "ROLE_REFRESH_INTERVAL": "0.2",
        # /docs, /openapi.json (schemathesis reads it) and /metrics, as on a developer's machine; off by default.
        "INTERNAL_ENDPOINTS": "true",
    }
    env.update(extra)
    return env


def migrate(node: PostgresNode) -> None:
    node.create_database(DB_NAME)
    env = {**_base_env(), **db_env(host=f"127.0.0.1:{node.port}")}
    proc = subprocess.run(
        [sys.executable, "-m", "app", "migrate"], cwd=WEBAPP, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "AWS_", "PROMETHEUS_"))}
    env.pop("REGION", None)
    return env


@dataclass
class AppProcess:
    """`python -m app` on a free loopback port; ``client`` talks to it."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> AppProcess:
        env = {**_base_env(), **self.env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=WEBAPP, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"app exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"app did not answer within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=5)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

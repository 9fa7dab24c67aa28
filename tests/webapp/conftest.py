"""A real PostgreSQL for the web app's tests (sandbox/postgres.py), migrated with Alembic, and the app
itself served by `python -m app` exactly as in production (uvicorn, environment variables).

Isolation: every test starts with an empty ``records`` table (TRUNCATE ... RESTART IDENTITY).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from webapp_support import DB_NAME, PASSWORD, AppProcess, db_env, free_port, migrate

from sandbox.postgres import PostgresNode, make_base_dir


@pytest.fixture(scope="session")
def pg_base() -> Iterator[Path]:
    base = make_base_dir("webapp-tests-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(pg_base: Path) -> Iterator[PostgresNode]:
    """The session's writer, migrated to head."""
    node = PostgresNode(pg_base / "primary", free_port(), PASSWORD, fast=True)
    node.init().start()
    migrate(node)
    yield node
    node.destroy()


@pytest.fixture(autouse=True)
def _empty_records(request: pytest.FixtureRequest) -> None:
    if "pg" in request.fixturenames:
        request.getfixturevalue("pg").execute("TRUNCATE records RESTART IDENTITY", dbname=DB_NAME)


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    """start_app(env) -> a running AppProcess, stopped at the end of the test."""
    started: list[AppProcess] = []

    def start(env: dict[str, str]) -> AppProcess:
        app = AppProcess(env, tmp_path / f"app-{len(started)}.log")
        started.append(app)
        return app.start()

    yield start
    for app in started:
        app.stop()


@pytest.fixture(scope="session")
def app(pg: PostgresNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """One app on the session's writer, shared by the API tests (the table is emptied per test)."""
    proc = AppProcess(db_env(host=f"127.0.0.1:{pg.port}"), tmp_path_factory.mktemp("app") / "app.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def client(app: AppProcess, pg: PostgresNode) -> Iterator[httpx.Client]:
    with app.client() as http:
        yield http

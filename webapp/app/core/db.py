"""The database: one async engine per distinct endpoint, a session per request, and the region's role.

Failover without a restart rests on four things: short connect and statement timeouts (set on every
connection), ``pool_pre_ping`` (a dead connection is replaced at checkout instead of failing the
request), SQLAlchemy's pool-wide invalidation after a disconnect (every connection opened before it
is recycled), and for writes either the global writer endpoint or a multi-host list with
``target_session_attrs=read-write`` so that libpq itself picks whichever server was promoted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg.conninfo import make_conninfo
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.core.config import HostList, Settings
from app.core.observability import DB_IS_WRITER

log = logging.getLogger("app.db")

# This region's role, with the replication lag when the server can tell it: on a standby, 0 when
# everything received is replayed, else the age of the last replayed transaction.
ROLE_SQL = text(
    """
    SELECT pg_is_in_recovery(),
           CASE WHEN NOT pg_is_in_recovery() THEN NULL
                WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
                ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8
           END
    """
)


def conninfo(settings: Settings, password: str, hosts: HostList, *, read_write: bool) -> str:
    return make_conninfo(
        host=",".join(host for host, _ in hosts),
        port=",".join(str(port) for _, port in hosts),
        dbname=settings.db_name,
        user=settings.db_user,
        password=password,
        sslmode=settings.db_sslmode,
        connect_timeout=settings.db_connect_timeout_s,
        application_name=f"webapp-{settings.region}"[:63],
        options=f"-c statement_timeout={settings.db_statement_timeout_ms}"
        f" -c idle_in_transaction_session_timeout={settings.db_statement_timeout_ms * 2}",
        # With several hosts libpq must pick the one that takes writes; with one host we keep "any"
        # so that a read-only server answers the write with SQLSTATE 25006 (a clear 503), not a
        # connection failure.
        target_session_attrs="read-write" if read_write and len(hosts) > 1 else "any",
    )


def _engine(settings: Settings, dsn: str) -> AsyncEngine:
    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(dsn)

    return create_async_engine(
        "postgresql+psycopg://",
        async_creator=connect,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=True,
        pool_recycle=300,
        pool_use_lifo=True,  # idle extras age out; the hot connections stay hot
    )


@dataclass
class RoleState:
    role: str = "unknown"  # writer | replica | unknown
    lag_s: float | None = None
    checked_at: float = 0.0
    error: str | None = None


class Database:
    """Engines for the regional, reader and writer endpoints (shared when they are the same)."""

    def __init__(self, settings: Settings, password: str) -> None:
        self.settings = settings
        engines: dict[tuple[HostList, bool], AsyncEngine] = {}

        def engine_for(hosts: HostList, read_write: bool) -> AsyncEngine:
            key = (hosts, read_write and len(hosts) > 1)
            if key not in engines:
                engines[key] = _engine(settings, conninfo(settings, password, hosts, read_write=read_write))
            return engines[key]

        self.regional = engine_for(settings.regional_hosts, False)
        self._regional_autocommit = self.regional.execution_options(isolation_level="AUTOCOMMIT")
        self._regional_dsn = conninfo(settings, password, settings.regional_hosts, read_write=False)
        # Reads are single statements: autocommit spares the BEGIN and ROLLBACK round trips.
        # psycopg's autocommit is a client-side flag, so sharing the pool with writers costs nothing.
        self.reader = engine_for(settings.reader_hosts, False).execution_options(isolation_level="AUTOCOMMIT")
        self.writer = engine_for(settings.writer_hosts, True)
        self.engines = list(engines.values())
        self.read_sessions = async_sessionmaker(self.reader, expire_on_commit=False)
        self.write_sessions = async_sessionmaker(self.writer, expire_on_commit=False)
        self.role = RoleState()
        self._monitor: asyncio.Task[None] | None = None

    async def warm_up(self) -> None:
        """Open the pool's connections now, so the first requests do not pay for connecting."""
        engine = self.reader
        conns = []
        try:
            for _ in range(self.settings.db_pool_size):
                conns.append(await engine.connect())
        except Exception as exc:  # the database may be down at start: serve anyway, report via /health/ready
            log.warning("pool warm-up stopped: %s", exc.__class__.__name__)
        finally:
            for conn in conns:
                await conn.close()

    async def check_role(self) -> RoleState:
        async with self._regional_autocommit.connect() as conn:
            in_recovery, lag = (await conn.execute(ROLE_SQL)).one()
        return RoleState("replica" if in_recovery else "writer", lag, time.time(), None)

    async def probe(self) -> RoleState:
        """The role, on a fresh connection of its own (readiness checks); also refreshes ``self.role``."""
        async with await psycopg.AsyncConnection.connect(self._regional_dsn, autocommit=True) as conn:
            cur = await conn.execute(ROLE_SQL.text)
            row = await cur.fetchone()
        assert row is not None
        self.role = RoleState("replica" if row[0] else "writer", row[1], time.time(), None)
        return self.role

    async def _watch_role(self) -> None:
        interval = self.settings.role_refresh_s
        while True:
            try:
                self.role = await asyncio.wait_for(self.check_role(), timeout=max(interval, 1.0) * 2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.role = RoleState("unknown", None, time.time(), f"{exc.__class__.__name__}: {exc}"[:300])
            DB_IS_WRITER.set({"writer": 1, "replica": 0}.get(self.role.role, -1))
            await asyncio.sleep(interval)

    def start_monitor(self) -> None:
        self._monitor = asyncio.get_running_loop().create_task(self._watch_role(), name="db-role-monitor")

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for engine in self.engines:
            await engine.dispose()


def get_database(request: Request) -> Database:
    return request.app.state.db


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.db.read_sessions() as session:
        yield session


async def write_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.db.write_sessions() as session:
        yield session


DatabaseDep = Annotated[Database, Depends(get_database)]
ReadSessionDep = Annotated[AsyncSession, Depends(read_session)]
WriteSessionDep = Annotated[AsyncSession, Depends(write_session)]

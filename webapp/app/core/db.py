"""The database: the pools, the single-statement read and write paths, and the region's role.

(app/records.py runs the records' statements through here, batched: app/core/batching.py.)

- Writes: one async SQLAlchemy engine per distinct writer endpoint (its pool connects on demand,
  which matters right after a promotion); the statement runs on the pooled driver connection.
- Reads: a psycopg_pool pool on the reader endpoint; the writer endpoint while no reader can be reached.
- The role of this region's database: polled in the background on the regional engine.

Failover without a restart rests on: short connect and statement timeouts (set on every connection),
for writes a pre-ping at checkout (a dead connection is replaced instead of failing the request; see
PING_BYPASS_S), for reads one retry on a new connection when the pooled one turns out to be dead (see
``fetch``), dropping broken connections and re-checking the others after a disconnect, and for writes
either the global writer endpoint or a multi-host list with ``target_session_attrs=read-write`` so that
libpq itself picks whichever server was promoted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool
from psycopg.conninfo import make_conninfo
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.config import HostList, Settings
from app.core.credentials import Credentials, StaticPassword
from app.core.errors import SQLSTATE_READ_ONLY
from app.core.observability import DB_IS_WRITER

log = logging.getLogger("app.db")

WRITE_RETRY_S = 0.25  # between the tries of a held write (execute_write)
WRITER_LATELY_S = 60.0  # a region whose database was the writer this recently holds writes (execute_write)
READER_RETRY_S = 0.5  # while reads go to the writer, how often the reader is tried again (fetch)

# This region's role and, on a replica, what its replication lag is made of (ReplicaLag below): whether
# replay has reached the end of WAL the writer last reported, when the writer reported it, the commit
# time of the last replayed transaction, and the replica's clock. pg_stat_wal_receiver has no row on a
# writer or a replica not streaming from its writer, and NULL details for a user without
# pg_read_all_stats (pg_monitor): the lag is unknown (null) then. One cheap query: the view and the
# functions read shared memory.
ROLE_SQL = text(
    """
    SELECT pg_is_in_recovery(),
           r.status = 'streaming',
           r.latest_end_lsn IS NULL OR pg_last_wal_replay_lsn() >= r.latest_end_lsn,
           EXTRACT(EPOCH FROM r.latest_end_time)::float8,
           EXTRACT(EPOCH FROM pg_last_xact_replay_timestamp())::float8,
           EXTRACT(EPOCH FROM now())::float8
    FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true
    """
)


class ReplicaLag:
    """A replica's lag as Aurora measures it: the position it has replayed compared with the writer's.

    - In sync (0): replay has reached pg_stat_wal_receiver.latest_end_lsn, the end of WAL the writer last
      reported (with its WAL and its keepalives), however long the writer has been idle. No report yet
      since streaming started (NULL) means the writer had nothing beyond the start point. (The old
      measure compared pg_last_wal_receive_lsn() with the replay position, which differ on an idle,
      in-sync standby, after a restart for one (the receiver counts from the start of the segment it
      streams from), and then reported the age of the last replayed transaction, climbing while the
      writer is idle.)
    - Behind: the writer's work not yet replayed, in time: from the last replayed commit, or the last
      time seen in sync if later, to latest_end_time (the writer's clock when its reported end last moved
      forward). Neither moves while the writer is idle, so the lag does not grow then; it grows while the
      writer works and replay does not follow. Without the time seen in sync, a writer idle for an hour
      and then one write would read as an hour behind while replay catches up (a check can land in that
      moment); with it, at most one check interval. That time is the replica's clock, the others the
      writer's: one machine in the sandbox, NTP-synchronised in AWS.
    """

    def __init__(self) -> None:
        self.in_sync_at: float | None = None  # the replica's clock when last seen in sync

    def measure(
        self,
        streaming: bool | None,
        in_sync: bool | None,
        writer_end_at: float | None,
        replayed_commit_at: float | None,
        now: float,
    ) -> float | None:
        if not streaming:
            self.in_sync_at = None  # a writer, or the writer's position unknown (and the history may change)
            return None
        if in_sync:
            self.in_sync_at = now
            return 0.0
        since = max((t for t in (replayed_commit_at, self.in_sync_at) if t is not None), default=None)
        if since is None or writer_end_at is None:
            return None
        return max(0.0, writer_end_at - since)


Dsn = Callable[[], Awaitable[str]]


def dsn_source(settings: Settings, credentials: Credentials, hosts: HostList, *, read_write: bool) -> Dsn:
    """A connection string made at each connect: an IAM token is signed per connection (app/core/credentials.py).

    Signing may resolve the global writer endpoint's name (a blocking call), so it runs in a thread.
    """
    if isinstance(credentials, StaticPassword):
        fixed = conninfo(settings, credentials.password(hosts), hosts, read_write=read_write)

        async def static() -> str:
            return fixed

        return static

    async def signed() -> str:
        from botocore.exceptions import BotoCoreError

        try:
            password = await asyncio.to_thread(credentials.password, hosts)
        except BotoCoreError as exc:
            # No credentials yet, or their refresh failed: a connection that cannot be made, answered and retried
            # as any other (a 503, the pool's reconnect), not an unexpected error.
            raise psycopg.OperationalError(f"cannot sign an IAM authentication token: {exc}") from exc
        return conninfo(settings, password, hosts, read_write=read_write)

    return signed


def conninfo(settings: Settings, password: str, hosts: HostList, *, read_write: bool) -> str:
    return make_conninfo(
        host=",".join(host for host, _ in hosts),
        port=",".join(str(port) for _, port in hosts),
        dbname=settings.db_name,
        user=settings.db_user,
        password=password,
        sslmode=settings.db_sslmode,
        **({"sslrootcert": settings.db_sslrootcert} if settings.db_sslrootcert else {}),
        connect_timeout=settings.db_connect_timeout_s,
        application_name=f"webapp-{settings.region}"[:63],
        options=f"-c statement_timeout={settings.db_statement_timeout_ms}"
        f" -c idle_in_transaction_session_timeout={settings.db_statement_timeout_ms * 2}",
        # With several hosts libpq must pick the one that takes writes; with one host we keep "any"
        # so that a read-only server answers the write with SQLSTATE 25006 (a clear 503), not a
        # connection failure.
        target_session_attrs="read-write" if read_write and len(hosts) > 1 else "any",
    )


# Pre-ping, with a bypass window as in HikariCP (aliveBypassWindowMs): a connection checked in less
# than this long ago is handed out without the extra round trip. Under load every connection is that
# fresh, and the ping would double the round trips of a write. Within the window a connection is still
# pinged when the server has sent something since it went idle (_server_spoke): that is how a failover,
# a restart or pg_terminate_backend ends one (a FATAL message, then the close). A write cannot be
# retried on another connection after its statement failed (it may have been committed), so the dead
# connection has to be found before the statement is sent. A connection broken without a word (the
# network) within the window fails its one statement, and SQLAlchemy then invalidates the whole pool
# (every connection opened before the failure is replaced on its next checkout).
PING_BYPASS_S = 0.5


def _server_spoke(dbapi_connection: Any) -> bool:
    """Whether an idle connection has input waiting: one poll(2) with no timeout, no round trip."""
    try:
        fd = dbapi_connection.driver_connection.pgconn.socket
    except psycopg.Error:
        return True  # already known to be closed: let the ping fail it
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _PoolGuard:
    """Pre-ping at checkout, skipped for connections used within PING_BYPASS_S unless suspect."""

    def __init__(self) -> None:
        self.suspect_before = 0.0  # connections last used before this moment are pinged

    def suspect_all(self) -> None:
        self.suspect_before = time.monotonic()

    def checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        last_used = record.info.get("last_used")
        now = time.monotonic()
        if (
            last_used is not None
            and now - last_used < PING_BYPASS_S
            and last_used > self.suspect_before
            and not _server_spoke(dbapi_connection)
        ):
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
            cursor.close()
            # Outside autocommit the ping opened a transaction: end it, or the isolation level
            # cannot be set for the request.
            dbapi_connection.rollback()
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another, up to 3 times.
            raise DisconnectionError(f"pre-ping failed: {exc.__class__.__name__}") from exc
        record.info["last_used"] = now

    @staticmethod
    def checkin(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["last_used"] = time.monotonic()


def _engine(settings: Settings, dsn: Dsn) -> tuple[AsyncEngine, _PoolGuard]:
    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(await dsn())

    engine = create_async_engine(
        "postgresql+psycopg://",
        async_creator=connect,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_recycle=300,
        pool_use_lifo=True,  # idle extras age out; the hot connections stay hot
    )
    guard = _PoolGuard()
    event.listen(engine.sync_engine.pool, "checkout", guard.checkout)
    event.listen(engine.sync_engine.pool, "checkin", guard.checkin)
    return engine, guard


@dataclass
class RoleState:
    role: str = "unknown"  # writer | replica | unknown
    lag_s: float | None = None
    checked_at: float = 0.0
    error: str | None = None


class Database:
    """The pools: SQLAlchemy engines for the regional and writer endpoints (shared when they are the
    same), and a psycopg pool for reads."""

    def __init__(self, settings: Settings, credentials: Credentials | str) -> None:
        self.settings = settings
        if isinstance(credentials, str):
            credentials = StaticPassword(credentials)
        engines: dict[tuple[HostList, bool], tuple[AsyncEngine, _PoolGuard]] = {}

        def engine_for(hosts: HostList, read_write: bool) -> tuple[AsyncEngine, _PoolGuard]:
            key = (hosts, read_write and len(hosts) > 1)
            if key not in engines:
                engines[key] = _engine(settings, dsn_source(settings, credentials, hosts, read_write=read_write))
            return engines[key]

        self.regional = engine_for(settings.regional_hosts, False)[0]
        # The role query is a single statement: autocommit spares the BEGIN and ROLLBACK round trips
        # (psycopg's autocommit is a client-side flag, so sharing the pool with writers costs nothing).
        self._regional_autocommit = self.regional.execution_options(isolation_level="AUTOCOMMIT")
        self._regional_dsn = dsn_source(settings, credentials, settings.regional_hosts, read_write=False)
        self.writer, self._writer_guard = engine_for(settings.writer_hosts, True)
        self.engines = [engine for engine, _ in engines.values()]
        # Writes are single INSERT ... RETURNING statements, atomic on their own: autocommit makes
        # each one round trip instead of three (BEGIN, INSERT, COMMIT).
        self._writer_autocommit = self.writer.execution_options(isolation_level="AUTOCOMMIT")
        # Reads: psycopg's own pool, autocommit (single statements), checked on return (a broken
        # connection is discarded), pre-warmed to DB_POOL_SIZE.
        self._reader_dsn = dsn_source(settings, credentials, settings.reader_hosts, read_write=False)
        self.read_pool = psycopg_pool.AsyncConnectionPool(
            self._reader_dsn,
            min_size=settings.db_pool_size,
            max_size=settings.db_pool_size + settings.db_pool_max_overflow,
            timeout=settings.db_pool_timeout_s,
            max_idle=300,
            max_lifetime=1800,
            reconnect_timeout=0,  # keep trying for ever: the database comes back after a failover
            kwargs={"autocommit": True},
            name="reader",
            open=False,
        )
        self._pool_check: asyncio.Task[None] | None = None
        # Reads fall back to the writer endpoint while the reader cannot be reached (fetch), where they differ.
        self._read_fallback = settings.reader_hosts != settings.writer_hosts
        self._reads_on_writer = False
        self._reader_watch: asyncio.Task[None] | None = None
        self.role = RoleState()
        self._role_failure: str | None = None
        self._writer_seen_at: float | None = None
        self._lag = ReplicaLag()
        self._monitor: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Open and pre-warm the pools, so the first requests do not pay for connecting.

        A database that is down at start does not stop the app: it serves, /health/ready says why.
        """
        await self.read_pool.open(wait=False)
        try:
            await self.read_pool.wait(timeout=self.settings.db_connect_timeout_s * 2)
        except psycopg_pool.PoolTimeout:
            log.warning("read pool not filled at start: is the database up?")
        conns = []
        try:
            for _ in range(min(self.settings.db_pool_size, 4)):
                conns.append(await self.writer.connect())
        except Exception as exc:
            log.warning("writer pool warm-up stopped: %s", exc.__class__.__name__)
        finally:
            for conn in conns:
                await conn.close()

    async def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one read on a connection of the read pool; on the writer while this region's readers are out.

        The read path: SQL built and compiled once by SQLAlchemy (app/records.py), run by psycopg on
        a psycopg_pool connection. Measured here, an async SQLAlchemy checkout plus ORM session cost
        several times the query itself.

        A region whose readers cannot be reached while its writer endpoint answers (the old primary's
        instances restart as it rejoins after a switchover; a reader instance is replaced) reads from the
        writer endpoint until a reader takes connections again (``_watch_reader``): a read is answered,
        if from further away, rather than refused with a 503. Only an unreachable reader moves the reads;
        a slow or failing statement does not (a statement timeout must not double the load).
        """
        if self._reads_on_writer:
            return await self._fetch_on_writer(sql, params)
        try:
            return await self._fetch_on_reader(sql, params)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            if not self._reader_unreachable(exc):
                raise
            self._move_reads_to_writer(exc)
            return await self._fetch_on_writer(sql, params)

    async def _fetch_on_reader(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with self.read_pool.connection() as conn:
            try:
                cur = await conn.execute(sql, params)
                return await cur.fetchall()
            except psycopg.Error:
                if not conn.broken:
                    raise
                if self._pool_check is None:
                    # The server went away (failover, restart): test and replace every idle connection
                    # now rather than letting each fail one statement.
                    self._pool_check = asyncio.get_running_loop().create_task(self._check_read_pool())
        # The connection was dead: a failover or restart kills the idle ones, and the pool does not check
        # them at checkout (a round trip per read). A read is safe to repeat: once, on a new connection of
        # its own (the pool's others may be dead too), so that the first read after a switchover is
        # answered instead of a 503. If the reader is really down this fails too (see ``fetch``).
        async with await psycopg.AsyncConnection.connect(await self._reader_dsn(), autocommit=True) as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def _fetch_on_writer(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with self._writer_autocommit.connect() as conn:
            return await self._run_on_writer(conn, sql, params)

    async def _run_on_writer(self, conn: Any, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One statement on a writer engine connection's driver connection."""
        raw = (await conn.get_raw_connection()).driver_connection
        try:
            cur = await raw.execute(sql, params)
            return await cur.fetchall()
        except psycopg.Error:
            if raw.broken or raw.closed:
                # The writer went away: replace this connection, and ping every other pooled one before its
                # next use.
                self._writer_guard.suspect_all()
                await conn.invalidate()
            raise

    def _reader_unreachable(self, exc: Exception) -> bool:
        """No reader could be reached (a connection refused, reset or timed out: no SQLSTATE; or no pooled
        connection at all), and the writer endpoint is another place to read from."""
        if not self._read_fallback:
            return False
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return self.read_pool.get_stats().get("pool_size", 0) == 0  # empty, not busy
        return exc.sqlstate is None

    def _move_reads_to_writer(self, exc: Exception) -> None:
        if self._reads_on_writer:
            return
        self._reads_on_writer = True
        log.warning(
            "reader unreachable (%s): reading from the writer endpoint until it is back", exc.__class__.__name__
        )
        self._reader_watch = asyncio.get_running_loop().create_task(self._watch_reader(), name="db-reader-watch")

    async def _watch_reader(self) -> None:
        """Reads go back to the reader once a new connection to it succeeds (tried every READER_RETRY_S)."""
        try:
            while True:
                await asyncio.sleep(READER_RETRY_S)
                try:
                    conn = await psycopg.AsyncConnection.connect(await self._reader_dsn(), autocommit=True)
                except psycopg.Error:
                    continue
                await conn.close()
                # The pooled connections from before the outage are dead: replace them before reads return.
                with contextlib.suppress(Exception):
                    await self.read_pool.check()
                log.info("reader back: reads use it again")
                return
        finally:
            self._reads_on_writer = False
            self._reader_watch = None

    async def execute_write(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one write (a single statement, autocommit) on a connection of the writer engine's pool.

        SQLAlchemy's pool rather than psycopg_pool's here: it connects on demand at checkout, so the
        first write after a promotion reaches the new writer at once, where psycopg_pool retries
        failed connections with a backoff of seconds. The statement runs on the driver connection:
        the ORM session's insert path measured 2.7 ms against 0.35 ms for the statement itself.

        A write held, not refused, while this region's writer changes: when no writer could be reached
        or the server answered read-only - so the write was certainly not applied - and this region may be
        promoting a writer (``_may_be_promoting``), it is tried again until WRITE_WAIT seconds have passed. Aurora
        promotes a reader within seconds when the writer instance fails (a crash, its AZ lost), and the
        client gets a slower answer instead of a 503. A replica region refuses at once, and a write whose
        connection broke after it was sent is never repeated: it may have committed.
        """
        deadline = time.monotonic() + self.settings.write_wait_s
        while True:
            sent = False
            try:
                async with self._writer_autocommit.connect() as conn:
                    sent = True
                    return await self._run_on_writer(conn, sql, params)
            except Exception as exc:
                # Not applied: no connection (but a full pool is load, not a promotion) or a read-only server.
                not_applied = (not sent and not isinstance(exc, PoolTimeoutError)) or getattr(
                    exc, "sqlstate", None
                ) == SQLSTATE_READ_ONLY
                if not not_applied or not self._may_be_promoting() or time.monotonic() >= deadline:
                    raise
                log.info("write held: no writer yet (%s); trying again", exc.__class__.__name__)
            await asyncio.sleep(WRITE_RETRY_S)

    async def _check_read_pool(self) -> None:
        try:
            await self.read_pool.check()
        except Exception as exc:
            log.warning("read pool check failed: %s", exc.__class__.__name__)
        finally:
            self._pool_check = None

    def _role_from(self, row: Any) -> RoleState:
        in_recovery, *lag = row
        return RoleState("replica" if in_recovery else "writer", self._lag.measure(*lag), time.time(), None)

    async def check_role(self) -> RoleState:
        async with self._regional_autocommit.connect() as conn:
            row = (await conn.execute(ROLE_SQL)).one()
        return self._role_from(row)

    async def probe(self) -> RoleState:
        """The role, on a fresh connection of its own (readiness checks); also refreshes ``self.role``."""
        async with await psycopg.AsyncConnection.connect(await self._regional_dsn(), autocommit=True) as conn:
            cur = await conn.execute(ROLE_SQL.text)
            row = await cur.fetchone()
        assert row is not None
        self._set_role(self._role_from(row))
        return self.role

    async def _watch_role(self) -> None:
        interval = self.settings.role_refresh_s
        while True:
            try:
                self._set_role(await asyncio.wait_for(self.check_role(), timeout=max(interval, 1.0) * 2))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # /api/status is public: it names the kind of failure; the text (hosts, addresses, users) is
                # logged, once per distinct failure rather than every interval.
                detail = f"{exc.__class__.__name__}: {exc}"[:300]
                if detail != self._role_failure:
                    log.warning("role check failed: %s", detail)
                self._role_failure = detail
                reason = "database timeout" if isinstance(exc, TimeoutError) else "database unavailable"
                self._set_role(RoleState("unknown", None, time.time(), reason))
            else:
                self._role_failure = None
            DB_IS_WRITER.set({"writer": 1, "replica": 0}.get(self.role.role, -1))
            await asyncio.sleep(interval)

    def _set_role(self, state: RoleState) -> None:
        self.role = state
        if state.role == "writer":
            self._writer_seen_at = time.monotonic()

    def _may_be_promoting(self) -> bool:
        """A write that finds no writer here is most likely in the middle of a promotion (or a switchover),
        not in a replica region: this region's database was the writer within WRITER_LATELY_S, or its role
        is unknown now (a task started during the promotion has never seen the writer, and its role check
        fails too). Only a region whose database answers as a replica and was not the writer lately refuses
        at once."""
        if self._writer_seen_at is not None and time.monotonic() - self._writer_seen_at < WRITER_LATELY_S:
            return True
        return self.role.role != "replica"

    def start_monitor(self) -> None:
        self._monitor = asyncio.get_running_loop().create_task(self._watch_role(), name="db-role-monitor")

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for task in (self._pool_check, self._reader_watch):
            if task is not None:
                task.cancel()
        await self.read_pool.close()
        for engine in self.engines:
            await engine.dispose()

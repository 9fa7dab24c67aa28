"""Live Aurora PostgreSQL: each cluster a real PostgreSQL node, each global database real streaming replication.

The engine behind sandbox/services/rds/provider.py (which patches moto's RDS API onto it):

- **Members.** Every aurora-postgresql DB cluster is one :class:`Member`: a PostgreSQL node (sandbox/postgres.py,
  ``fast=True``: no fsync) on a local port fixed for the cluster's life, published in the runtime's name map for
  the cluster's ``Endpoint`` and ``ReaderEndpoint`` on the cluster's ``Port``. A member is the writer when it is
  standalone or the writer (``IsWriter``) of its global cluster, otherwise a streaming hot standby of that writer.
- **Reconcile.** A member is brought to what it should be by :meth:`Fleet.kick` on a thread of its own: initdb or
  pg_basebackup, start, promote, pg_rewind an old primary, re-point a standby at a new writer. Nothing is done while
  its region is dark or its databases are stopped; the restore hooks kick again. An old primary that lost the writer
  role (``needs_rewind``) is only ever started again as a standby, after pg_rewind: never as a second writer.
- **Global clusters.** A TCP forwarder on ``rt.aio`` stands for the global writer endpoint and always leads to the
  current writer's node; it drops its connections when the writer moves. Switchover and failover run on a thread,
  with ``FailoverState`` shown while they run and the RDS events AWS documents.
- **Replication facts.** Every couple of seconds the sampler reads ``pg_stat_replication`` and commit timestamps
  (one cheap query per node on a kept connection) and derives ``SynchronizationStatus`` and the
  ``AuroraGlobalDBReplicationLag`` / ``AuroraGlobalDBRPOLag`` metrics.

Passwords: nodes run with an internal superuser (``rdsadmin``, as Aurora's own) whose password is generated per
sandbox process and never leaves this module. The master password is sent to PostgreSQL as a SCRAM verifier
computed here, so even a failed statement logged by the server does not show it.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import signal
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import runtime
from sandbox.postgres import HOST, PostgresError, PostgresNode, _check_traversable, make_base_dir, server_user

log = logging.getLogger("sandbox.aurora")

ENGINE = "aurora-postgresql"
# Aurora's own administrative role; the master user is an ordinary member of rds_superuser, as on AWS.
INTERNAL_SUPERUSER = "rdsadmin"
MASTER_GROUP = "rds_superuser"
GLOBAL_ENDPOINT_PORT = 5432
SAMPLE_INTERVAL_S = 2.0
METRIC_INTERVAL_S = 5.0
RETRY_AFTER_S = 5.0
CATCH_UP_TIMEOUT_S = 30.0
REJOIN_WAIT_S = 30.0
STREAMING_WAIT_S = 3.0
RECENT_EVENTS = 200

# RDS events of a global switchover / failover (Aurora User Guide, "DB cluster events", category global failover).
EVENT_MESSAGES = {
    "RDS-EVENT-0170": "DB cluster created.",
    "RDS-EVENT-0181": "Global switchover to DB cluster {target} in Region {target_region} started.",
    "RDS-EVENT-0182": "Old primary DB cluster {source} in Region {source_region} successfully shut down.",
    "RDS-EVENT-0184": "New primary DB cluster {target} in Region {target_region} was successfully promoted.",
    "RDS-EVENT-0185": "Global switchover to DB cluster {target} in Region {target_region} finished.",
    "RDS-EVENT-0186": "Global switchover to DB cluster {target} in Region {target_region} is cancelled.",
    "RDS-EVENT-0187": "Global switchover to DB cluster {target} in Region {target_region} failed.",
    "RDS-EVENT-0238": "Global failover to DB cluster {target} in Region {target_region} completed.",
    "RDS-EVENT-0239": "Global failover to DB cluster {target} in Region {target_region} failed.",
    "RDS-EVENT-0240": "Started resynchronizing members of DB cluster {source} in Region {source_region} after global failover.",
    "RDS-EVENT-0241": "Finished resynchronizing members of DB cluster {source} in Region {source_region} after global failover.",
    "RDS-EVENT-0397": "Aurora finished changing the DNS name that the global writer endpoint resolves to.",
}
EVENT_CATEGORIES = {"RDS-EVENT-0170": ["creation"]}  # every other one: global failover


class AuroraError(Exception):
    """A request the engine refuses; ``code`` is the RDS fault to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (so the clear text never reaches the server)."""
    # PostgreSQL SASLprep-normalises the password; NFKC is that for every password AWS accepts (printable ASCII
    # is left unchanged by both).
    normalised = unicodedata.normalize("NFKC", password).encode()
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", normalised, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@dataclass
class AuroraNode(PostgresNode):
    """A PostgreSQL node named after its cluster.

    ``cluster_name`` is also the default ``application_name`` of the node's WAL receiver, so the writer's
    ``pg_stat_replication`` names each standby by its cluster; ``track_commit_timestamp`` lets the sampler compare
    the newest commit on the writer with the newest one a standby replayed (the RPO lag).
    """

    cluster_name: str = ""

    def _server_options(self) -> str:
        return f"{super()._server_options()} -c cluster_name={self.cluster_name} -c track_commit_timestamp=on"

    def checkpoint_lsn(self) -> tuple[str, str]:
        """(database cluster state, latest checkpoint location) from pg_controldata of a stopped node."""
        out = self._run("pg_controldata", "-D", str(self.data_dir)).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return fields["Database cluster state"].strip(), fields["Latest checkpoint location"].strip()

    def memory_kb(self) -> int | None:
        """Proportional set size (kB) of the postmaster and its children, or None when not running."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        pids = [pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(entry.name))
        total = 0
        for each in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        return total


@dataclass
class Sample:
    """What replication looked like at the last sample of a standby."""

    at: float = 0.0
    streaming: bool = False
    replication_lag_ms: float | None = None
    rpo_lag_ms: float | None = None
    replay_lsn: str | None = None


@dataclass(eq=False)
class Member:
    """One aurora-postgresql DB cluster and its node."""

    record: Any  # moto's DBCluster
    account: str
    region: str
    cluster_id: str
    node: AuroraNode
    master_username: str | None
    database_name: str | None
    status: str = "creating"
    # The master password to set on the node (held until the node takes it; never shown).
    password_to_set: str | None = field(default=None, repr=False)
    bootstrapped: bool = False
    running: bool = False
    deleted: bool = False
    # Lost the writer role while it could not be told (failover): pg_rewind before it may run again.
    needs_rewind: bool = False
    # Set when a global failover made it rewind: its resync is announced (RDS-EVENT-0240 / 0241).
    resync_after_failover: bool = False
    resyncing: bool = False
    published: list[tuple[str, int]] = field(default_factory=list)
    # DB instances of the cluster (moto's records): their endpoints lead to the cluster's node too.
    instance_endpoints: dict[str, tuple[str, int]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    reconciling: bool = False
    again: bool = False
    failed_at: float | None = None
    last_error: str | None = None
    sample: Sample = field(default_factory=Sample)
    last_connected_at: float | None = None
    created_at: float = field(default_factory=time.monotonic)
    available_after_s: float | None = None
    connected_after_s: float | None = None
    conn: Any = None  # the sampler's kept connection
    application_name: str = ""  # the cluster_name its node runs with: its name in the writer's pg_stat_replication

    @property
    def arn(self) -> str:
        return self.record.db_cluster_arn

    @property
    def ready_marker(self) -> Path:
        return self.node.data_dir.parent / "ready"

    @property
    def initialized(self) -> bool:
        return self.ready_marker.exists()


@dataclass(eq=False)
class Global:
    """One global cluster: its writer endpoint forwarder and the operation running on it."""

    record: Any  # moto's GlobalCluster
    account: str
    forwarder: Forwarder
    published: list[tuple[str, int]] = field(default_factory=list)
    failover_state: dict[str, Any] | None = None
    op_thread: threading.Thread | None = None
    last_operation: dict[str, Any] | None = None
    last_commit: float | None = None  # epoch of the writer's newest commit at the last sample

    @property
    def global_id(self) -> str:
        return self.record.global_cluster_identifier


class Forwarder:
    """A loopback TCP listener that pipes every connection to the current target; ``retarget`` cuts them all."""

    def __init__(self, rt: runtime.Runtime) -> None:
        self._rt = rt
        self.target: tuple[str, int] | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._server: asyncio.base_events.Server = rt.call(asyncio.start_server(self._handle, HOST, 0))
        self.port: int = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = self.target
        if target is None:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), 5)
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        pair = (writer.transport, up_writer.transport)
        self._transports.update(pair)
        try:
            tasks = [asyncio.create_task(_pipe(reader, up_writer)), asyncio.create_task(_pipe(up_reader, writer))]
            _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        finally:
            for transport in pair:
                self._transports.discard(transport)
                transport.abort()

    def retarget(self, target: tuple[str, int] | None) -> None:
        """Lead new connections to target; existing ones are dropped when the target changes."""
        if target == self.target:
            return
        self.target = target
        self._rt.aio.call_soon_threadsafe(self._drop_all)

    def _drop_all(self) -> None:
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    def close(self) -> None:
        def stop() -> None:
            self._server.close()
            self._drop_all()

        self.target = None
        self._rt.aio.call_soon_threadsafe(stop)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


class Fleet:
    """Every live Aurora cluster and global cluster of this sandbox process."""

    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        self._lock = threading.RLock()
        self._members: dict[tuple[str, str, str], Member] = {}
        self._globals: dict[tuple[str, str], Global] = {}
        self._db_stopped: set[str] = set()
        self._password = secrets.token_urlsafe(24)
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_EVENTS)
        self._last_metrics = 0.0
        self._sample_lock = threading.Lock()
        self._root: Path | None = None
        self._forget_data()
        # Set by the extension: record an RDS event in moto, put metric data into moto's CloudWatch.
        self.on_event: Callable[[Member, str, str, list[str]], None] = lambda *_: None
        self.on_metrics: Callable[[Member, dict[str, float]], None] = lambda *_: None

    # -- data folder -------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """rt.path("aurora"), made on first use.

        The PostgreSQL user (sandboxpg when root) must be able to reach the data folders. When the state folder's
        parents do not let it (pytest's basetemp and mkdtemp folders are mode 700), the folder is a symlink to a
        world-searchable one under the system temp folder, removed again at shutdown.
        """
        with self._lock:
            if self._root is None:
                root = self.rt.state_dir / "aurora"
                root.mkdir(parents=True, exist_ok=True)
                try:
                    _check_traversable(root / "probe", server_user())
                except PostgresError:
                    root.rmdir()
                    real = make_base_dir("sandbox-aurora-")
                    root.symlink_to(real, target_is_directory=True)
                    log.info(
                        "aurora data under %s -> %s (the state folder is not searchable by PostgreSQL)", root, real
                    )
                self._root = root
            return self._root

    def _forget_data(self) -> None:
        """Stop what an earlier server process left under the state folder and delete it (moto forgot it)."""
        root = self.rt.state_dir / "aurora"
        _stop_postmasters_under(root)
        if root.is_symlink():
            shutil.rmtree(root.resolve(), ignore_errors=True)
            root.unlink()
        shutil.rmtree(root, ignore_errors=True)

    # -- lookups -----------------------------------------------------------------------------------

    @staticmethod
    def key(record: Any) -> tuple[str, str, str]:
        return (record.account_id, record.region, record.db_cluster_identifier)

    def member_of(self, record: Any) -> Member | None:
        with self._lock:
            member = self._members.get(self.key(record))
        return member if member is not None and not member.deleted else None

    def members(self) -> list[Member]:
        with self._lock:
            return list(self._members.values())

    def global_of_record(self, record: Any) -> Global | None:
        with self._lock:
            return self._globals.get((record.account_id, record.global_cluster_identifier))

    def global_of(self, member: Member) -> Global | None:
        """The global cluster that lists member, or None (standalone)."""
        with self._lock:
            for glob in self._globals.values():
                if any(c is member.record for c in glob.record.members):
                    return glob
        return None

    def members_of(self, glob: Global) -> list[Member]:
        found = (self.member_of(c) for c in list(glob.record.members))
        return [m for m in found if m is not None]

    def writer_of(self, glob: Global) -> Member | None:
        return next((m for m in self.members_of(glob) if m.record.is_writer), None)

    def is_writer(self, member: Member) -> bool:
        glob = self.global_of(member)
        return glob is None or self.writer_of(glob) in (None, member)

    def may_run(self, region: str) -> bool:
        return not self.rt.is_dark(region) and region not in self._db_stopped

    # -- lifecycle hooks from the API ------------------------------------------------------------

    def cluster_created(self, record: Any, password: str | None) -> Member:
        """A new aurora-postgresql cluster: register it, publish its endpoints, provision it in the background."""
        account, region, cluster_id = self.key(record)
        data_dir = self.root / region / cluster_id / record.db_cluster_resource_id.lower() / "pgdata"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        node = AuroraNode(
            data_dir=data_dir, port=runtime.free_port(), password=self._password, superuser=INTERNAL_SUPERUSER,
            fast=True, cluster_name=cluster_id,
        )  # fmt: skip
        member = Member(
            record=record, account=account, region=region, cluster_id=cluster_id, node=node,
            master_username=record.master_username, database_name=record.database_name, password_to_set=password,
        )  # fmt: skip
        with self._lock:
            self._members[self.key(record)] = member
        glob = self.global_of(member)
        if glob is not None and not self.is_writer(member):
            writer = self.writer_of(glob)
            # A secondary has no master user of its own: the global database's is replicated to it.
            member.master_username = writer.master_username if writer else None
            member.database_name = writer.database_name if writer else None
            member.password_to_set = None
        self._publish(member)
        if glob is not None:
            self._retarget(glob)
        self.kick(member)
        return member

    def cluster_deleted(self, record: Any) -> None:
        with self._lock:
            member = self._members.pop(self.key(record), None)
        if member is None:
            return
        member.deleted = True
        member.status = "deleting"
        self._unpublish(member)
        threading.Thread(
            target=self._destroy, args=(member,), name=f"aurora-delete-{member.cluster_id}", daemon=True
        ).start()

    def cluster_renamed(self, old_key: tuple[str, str, str], record: Any) -> None:
        """ModifyDBCluster changed the identifier or the port: republish under the new endpoint names."""
        with self._lock:
            member = self._members.pop(old_key, None)
            if member is None:
                return
            member.cluster_id = record.db_cluster_identifier
            member.node.cluster_name = member.cluster_id  # its WAL receiver's name from the next start on
            self._members[self.key(record)] = member
        self._unpublish(member)
        self._publish(member)

    def check_master_password_change(self, member: Member) -> None:
        """A secondary has no master password of its own: changing it there is refused, as on AWS."""
        if self.is_writer(member):
            return
        glob = self.global_of(member)
        writer = self.writer_of(glob) if glob else None
        raise AuroraError(
            "InvalidDBClusterStateFault",
            f"DB cluster {member.cluster_id} is a secondary cluster of global cluster {glob.global_id if glob else '?'}"
            " and has no master password of its own: modify the master password of the primary cluster"
            f" {writer.cluster_id if writer else ''} instead",
        )

    def set_master_password(self, member: Member, password: str) -> None:
        """ModifyDBCluster MasterUserPassword on a writer: applied at once when its node runs, else when it starts."""
        self.check_master_password_change(member)
        with member.lock:
            member.password_to_set = password
            if member.running and member.bootstrapped:
                self._apply_password(member)
                return
        self.kick(member)

    def global_created(self, record: Any) -> Global:
        account = record.account_id
        forwarder = Forwarder(self.rt)
        glob = Global(record=record, account=account, forwarder=forwarder)
        with self._lock:
            self._globals[(account, record.global_cluster_identifier)] = glob
        ports = {GLOBAL_ENDPOINT_PORT}
        for name_port in ((record.endpoint, port) for port in sorted(ports)):
            self.rt.publish(*name_port, forwarder.port)
            glob.published.append(name_port)
        self._retarget(glob)
        return glob

    def global_deleted(self, record: Any) -> None:
        with self._lock:
            glob = self._globals.pop((record.account_id, record.global_cluster_identifier), None)
        if glob is None:
            return
        for name, port in glob.published:
            self.rt.unpublish(name, port)
        glob.forwarder.close()

    def member_joined(self, record: Any) -> None:
        """CreateGlobalCluster made an existing cluster the writer of a new global cluster."""
        member = self.member_of(record)
        if member is None:
            return
        glob = self.global_of(member)
        if glob is not None:
            self._retarget(glob)
        self.kick(member)

    def check_removable(self, glob_record: Any) -> None:
        glob = self.global_of_record(glob_record)
        if glob is not None and glob.failover_state is not None:
            raise AuroraError(
                "InvalidGlobalClusterStateFault",
                f"Global cluster {glob.global_id} has a {_operation_name(glob)} in progress: wait until its"
                " FailoverState is empty",
            )

    def member_removed(self, glob_record: Any, record: Any) -> None:
        """RemoveFromGlobalCluster detached record: it becomes a standalone writer (promoted when it was a standby)."""
        member = self.member_of(record)
        glob = self.global_of_record(glob_record)
        if glob is not None:
            self._retarget(glob)
        if member is None:
            return
        member.needs_rewind = False
        if member.record.master_username is None and member.master_username:
            # The detached cluster keeps the global database's master user: show it, as AWS does.
            member.record.master_username = member.master_username
            member.record.database_name = member.record.database_name or member.database_name
        with member.lock:
            if member.status == "available" and member.running and member.node.is_in_recovery():
                member.status = "promoting"
        self.kick(member)

    # -- regions and faults ------------------------------------------------------------------------

    def region_down(self, region: str, *, database_only: bool) -> list[str]:
        """Stop the region's nodes at once, as a crash (outage or stop-database fault)."""
        if database_only:
            with self._lock:
                self._db_stopped.add(region)
        stopped = []
        members = [m for m in self.members() if m.region == region]
        threads = [threading.Thread(target=self._crash, args=(m,), daemon=True) for m in members]
        for thread in threads:
            thread.start()
        for thread, member in zip(threads, members, strict=True):
            thread.join(30)
            stopped.append(member.cluster_id)
        return stopped

    def region_up(self, region: str, *, database_only: bool) -> list[str]:
        if database_only:
            with self._lock:
                self._db_stopped.discard(region)
        started = []
        for member in self.members():
            if member.region == region:
                self.kick(member)
                started.append(member.cluster_id)
        return started

    def _crash(self, member: Member) -> None:
        with member.lock:
            self._stop_node(member, "immediate")

    # -- reconcile ---------------------------------------------------------------------------------

    def kick(self, member: Member) -> None:
        """Bring member to what it should be, on a thread of its own (coalesces concurrent kicks)."""
        with self._lock:
            if member.deleted:
                return
            if member.reconciling:
                member.again = True
                return
            member.reconciling = True
        threading.Thread(
            target=self._reconcile_loop, args=(member,), name=f"aurora-{member.cluster_id}", daemon=True
        ).start()

    def _reconcile_loop(self, member: Member) -> None:
        while True:
            try:
                self.reconcile(member)
                member.failed_at = None
            except Exception as exc:  # retried by the sampler after RETRY_AFTER_S
                member.failed_at = time.monotonic()
                member.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if not member.deleted:
                    log.warning("aurora %s: %s (will retry)", member.cluster_id, exc)
            with self._lock:
                if not member.again or member.deleted:
                    member.reconciling = False
                    return
                member.again = False

    def reconcile(self, member: Member, *, in_operation: bool = False) -> None:
        glob = self.global_of(member)
        if glob is not None and glob.failover_state is not None and not in_operation:
            return  # the operation's thread owns its members; it reconciles them when it ends
        with member.lock:
            if member.deleted:
                return
            if not self.may_run(member.region):
                self._stop_node(member, "immediate")
                return
            writer = self.writer_of(glob) if glob is not None else None
            if writer is None or writer is member:
                self._ensure_writer(member, glob)
            else:
                self._ensure_standby(member, writer)
        if glob is not None and member.running:
            # Replication facts at once (SynchronizationStatus), not at the sampler's next tick.
            with contextlib.suppress(Exception):
                self.sample(glob)
        if member.bootstrapped and member.running and glob is not None and self.writer_of(glob) is member:
            # Standbys waiting for their writer (creation, rejoin) can go on now.
            for other in self.members_of(glob):
                if other is not member and (not other.running or other.needs_rewind):
                    self.kick(other)

    def _ensure_writer(self, member: Member, glob: Global | None) -> None:
        node = member.node
        if not member.initialized:
            self._clear_data(member)
            if not member.master_username or not member.password_to_set:
                raise PostgresError(f"cluster {member.cluster_id} has no master username and password to create")
            node.init()
            member.ready_marker.touch()
        member.needs_rewind = False
        if not member.running:
            self._start_node(member)
        if node.is_in_recovery():
            # A standby made the writer (detached secondary, or promoted while its node was down).
            node.promote()
            log.info("aurora %s: promoted to a standalone writer", member.cluster_id)
        if not member.bootstrapped:
            self._bootstrap(member)
        if member.password_to_set:
            self._apply_password(member)
        self._became_available(member)
        if glob is not None:
            self._retarget(glob)

    def _ensure_standby(self, member: Member, writer: Member) -> None:
        node = member.node
        writer_up = writer.running and writer.bootstrapped and not writer.node.is_in_recovery()
        if not member.initialized:
            if not writer_up:
                return  # kicked again when the writer is available
            self._clear_data(member)
            writer.node.create_standby(node.data_dir, node.port, start=False)
            member.ready_marker.touch()
        if member.needs_rewind:
            if not writer_up:
                self._stop_node(member, "fast")
                return  # rejoins when the writer is reachable
            self._stop_node(member, "fast")
            member.resyncing = True
            if member.resync_after_failover:
                self._event(member, "RDS-EVENT-0240", source=member)
            node.rewind_from(writer.node, start=False)
            member.needs_rewind = False
        if not member.running:
            self._start_node(member)
        member.bootstrapped = True
        if not node.is_in_recovery():
            # Never two writers: a node that is not (or no longer) the writer and runs as a primary is stopped and
            # rewound onto the writer.
            member.needs_rewind = True
            self._stop_node(member, "immediate")
            raise PostgresError(f"{member.cluster_id} ran as a primary while {writer.cluster_id} is the writer")
        if writer_up:
            self._follow(member, writer)
            _wait_streaming(member, STREAMING_WAIT_S)
        if member.resyncing:
            member.resyncing = False
            if member.resync_after_failover:
                member.resync_after_failover = False
                self._event(member, "RDS-EVENT-0241", source=member)
        self._became_available(member)

    def _follow(self, member: Member, writer: Member) -> None:
        """Point a running standby's WAL receiver at the writer's node (after a switchover or a port change)."""
        from psycopg import sql
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        current = conninfo_to_dict(member.node.execute("SHOW primary_conninfo")[0][0] or "")
        if str(current.get("port")) == str(writer.node.port):
            return
        target = make_conninfo(
            host=HOST, port=writer.node.port, user=writer.node.superuser, password=writer.node.password
        )
        with _admin_session(member) as conn:
            conn.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(target)))
            conn.execute("SELECT pg_reload_conf()")
        log.info("aurora %s: now replicates from %s", member.cluster_id, writer.cluster_id)

    def _became_available(self, member: Member) -> None:
        if member.status in ("creating", "promoting"):
            first = member.available_after_s is None
            if first:
                member.available_after_s = round(time.monotonic() - member.created_at, 3)
                self._event(member, "RDS-EVENT-0170", source=member)
                log.info("aurora %s available after %.2fs", member.cluster_id, member.available_after_s)
            member.status = "available"

    def _bootstrap(self, member: Member) -> None:
        """The master user: a login role with CREATEDB and CREATEROLE in rds_superuser, owner of DatabaseName."""
        from psycopg import sql

        user = sql.Identifier(member.master_username or "")
        with _admin_session(member) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MASTER_GROUP,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(MASTER_GROUP)))
                conn.execute(sql.SQL("GRANT pg_monitor, pg_signal_backend TO {}").format(sql.Identifier(MASTER_GROUP)))
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (member.master_username,)).fetchone():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE IN ROLE {} PASSWORD {}").format(
                        user, sql.Identifier(MASTER_GROUP), sql.Literal(scram_verifier(member.password_to_set or ""))
                    )
                )
                member.password_to_set = None
            name = member.database_name
            if name and not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), user))
        member.bootstrapped = True

    def _apply_password(self, member: Member) -> None:
        from psycopg import sql

        password, member.password_to_set = member.password_to_set, None
        if not password or not member.master_username:
            return
        with _admin_session(member) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(member.master_username), sql.Literal(scram_verifier(password))
                )
            )
        log.info("aurora %s: master password changed", member.cluster_id)

    def _start_node(self, member: Member) -> None:
        """Start the node on its fixed port; should something else have taken that port meanwhile, on a new one."""
        if member.node.running:  # e.g. a stop that failed earlier: adopt it rather than start a second postmaster
            member.running = True
            member.application_name = member.node.cluster_name
            return
        try:
            member.node.start()
        except PostgresError:
            if _port_free(member.node.port):
                raise
            old = member.node.port
            member.node.port = runtime.free_port()
            log.warning("aurora %s: port %d was taken, now on %d", member.cluster_id, old, member.node.port)
            self._unpublish(member)
            self._publish(member)
            member.node.start()
        member.running = True
        member.application_name = member.node.cluster_name
        glob = self.global_of(member)
        if glob is not None:
            self._retarget(glob)

    def _stop_node(self, member: Member, mode: str) -> None:
        _close_quietly(member)
        if member.running or member.node.running:
            with contextlib.suppress(PostgresError):
                member.node.stop(mode)
        member.running = False

    def _clear_data(self, member: Member) -> None:
        """Remove what a failed initdb or pg_basebackup left, so that it can be done again."""
        if member.node.data_dir.exists():
            shutil.rmtree(member.node.data_dir, ignore_errors=True)

    def _destroy(self, member: Member) -> None:
        with member.lock:
            _close_quietly(member)
            member.node.destroy()
            member.running = False
            shutil.rmtree(member.node.data_dir.parent, ignore_errors=True)
            with contextlib.suppress(OSError):
                member.node.data_dir.parent.parent.rmdir()  # the cluster's folder, when empty

    # -- names -------------------------------------------------------------------------------------

    def _publish(self, member: Member) -> None:
        record = member.record
        names = [(record.endpoint, int(record.port)), (record.reader_endpoint, int(record.port))]
        for name, port in [*names, *member.instance_endpoints.values()]:
            self.rt.publish(name, port, member.node.port)
            member.published.append((name, port))

    def instance_added(self, member: Member, instance_id: str, address: str, port: int) -> None:
        member.instance_endpoints[instance_id] = (address, int(port))
        self.rt.publish(address, int(port), member.node.port)
        member.published.append((address, int(port)))

    def instance_removed(self, member: Member, instance_id: str) -> None:
        entry = member.instance_endpoints.pop(instance_id, None)
        if entry is not None:
            self.rt.unpublish(*entry)
            with contextlib.suppress(ValueError):
                member.published.remove(entry)

    def _unpublish(self, member: Member) -> None:
        for name, port in member.published:
            self.rt.unpublish(name, port)
        member.published.clear()

    def _retarget(self, glob: Global) -> None:
        writer = self.writer_of(glob)
        glob.forwarder.retarget((HOST, writer.node.port) if writer is not None else None)

    # -- events ------------------------------------------------------------------------------------

    def _event(self, member: Member, event_id: str, *, source: Member, target: Member | None = None) -> None:
        target = target or member
        message = EVENT_MESSAGES[event_id].format(
            target=target.cluster_id, target_region=target.region, source=source.cluster_id, source_region=source.region
        )
        categories = EVENT_CATEGORIES.get(event_id, ["global failover"])
        self._events.append(
            {
                "EventId": event_id,
                "SourceIdentifier": member.cluster_id,
                "Region": member.region,
                "Message": message,
                "Date": time.time(),
            }
        )
        try:
            self.on_event(member, event_id, message, categories)
        except Exception:
            log.exception("aurora: could not record %s", event_id)

    # -- global operations -------------------------------------------------------------------------

    def start_operation(self, glob_record: Any, target_record: Any, *, data_loss: bool) -> dict[str, Any]:
        """SwitchoverGlobalCluster / FailoverGlobalCluster: validate, show FailoverState pending, run on a thread.

        Returns the FailoverState as accepted (Status pending).
        """
        glob = self.global_of_record(glob_record)
        if glob is None:
            raise AuroraError(
                "InvalidParameterValue",
                f"Global cluster {glob_record.global_cluster_identifier} is not an {ENGINE} global database: the sandbox"
                " switches over and fails over aurora-postgresql global databases only",
            )
        if not data_loss:
            # Fresh replication facts for the "members in sync" check (outside the fleet lock: the sampler takes
            # its own lock first, then the fleet's).
            self.sample(glob)
        with self._lock:
            if glob.failover_state is not None:
                raise AuroraError(
                    "InvalidGlobalClusterStateFault",
                    f"Global cluster {glob.global_id} has a {_operation_name(glob)} in progress"
                    f" to {glob.failover_state['ToDbClusterArn']}: wait until its FailoverState is empty",
                )
            if not any(c is target_record for c in glob.record.members):
                raise AuroraError(
                    "InvalidGlobalClusterStateFault",
                    f"DB cluster {target_record.db_cluster_arn} is not a member of global cluster {glob.global_id}",
                )
            target = self.member_of(target_record)
            writer = self.writer_of(glob)
            if target is None or writer is None:
                raise AuroraError("InvalidGlobalClusterStateFault", f"Global cluster {glob.global_id} has no writer")
            if target is writer:
                raise AuroraError(
                    "InvalidGlobalClusterStateFault",
                    f"DB cluster {target.arn} is already the primary cluster of global cluster {glob.global_id}",
                )
            if target.status != "available" or not target.running or target.needs_rewind:
                raise AuroraError(
                    "InvalidDBClusterStateFault",
                    f"DB cluster {target.cluster_id} is not available to be promoted (status {target.status},"
                    f" node {'running' if target.running else 'stopped'},"
                    f" {self.synchronization_status(target)}): wait until it is available and connected",
                )
            if not data_loss:
                out_of_sync = [
                    m.cluster_id for m in self.members_of(glob) if self.synchronization_status(m) != "connected"
                ]
                if not writer.running:
                    out_of_sync.append(f"{writer.cluster_id} (the primary is unreachable)")
                if out_of_sync:
                    raise AuroraError(
                        "InvalidGlobalClusterStateFault",
                        f"Global cluster {glob.global_id} members are not in sync: {', '.join(out_of_sync)}."
                        " A switchover needs a healthy global database; in a regional outage use"
                        " FailoverGlobalCluster with AllowDataLoss",
                    )
            glob.failover_state = {
                "Status": "pending",
                "FromDbClusterArn": writer.arn,
                "ToDbClusterArn": target.arn,
                "IsDataLossAllowed": data_loss,
            }
            glob.last_operation = {"kind": "failover" if data_loss else "switchover", "started": time.time()}
            run = self._failover if data_loss else self._switchover
            glob.op_thread = threading.Thread(
                target=self._operation,
                args=(run, glob, writer, target),
                name=f"aurora-op-{glob.global_id}",
                daemon=True,
            )
        if not data_loss:
            self._event(target, "RDS-EVENT-0181", source=writer)
        accepted = dict(glob.failover_state)
        glob.op_thread.start()
        return accepted

    def _operation(
        self, run: Callable[[Global, Member, Member], None], glob: Global, writer: Member, target: Member
    ) -> None:
        started = time.monotonic()
        try:
            run(glob, writer, target)
        except Exception:
            log.exception("aurora: operation on %s failed", glob.global_id)
        finally:
            for member in (writer, target):
                if member.status == "failing-over":
                    member.status = "available"
            glob.record.status = "available"
            glob.failover_state = None
            if glob.last_operation is not None:
                glob.last_operation["duration_s"] = round(time.monotonic() - started, 3)
            for member in self.members_of(glob):
                self.kick(member)

    def _switchover(self, glob: Global, writer: Member, target: Member) -> None:
        assert glob.failover_state is not None
        glob.failover_state["Status"] = "switching-over"
        glob.record.status = "switching-over"
        writer.status = target.status = "failing-over"
        try:
            # 1. Let the target catch up while the primary still takes writes.
            lsn = writer.node.execute("SELECT pg_current_wal_insert_lsn()::text")[0][0]
            _wait_replay(target, lsn, CATCH_UP_TIMEOUT_S, strictly_after=False)
            # 2. Stop writes: a clean (fast) shutdown sends every WAL record, up to the shutdown checkpoint, to the
            # connected standbys before the server exits; commits it acknowledged are all in that WAL.
            with writer.lock:
                writer.needs_rewind = True
                self._stop_node(writer, "fast")
            state, end_lsn = writer.node.checkpoint_lsn()
            if state != "shut down":
                raise PostgresError(f"old primary {writer.cluster_id} did not shut down cleanly ({state})")
            self._event(writer, "RDS-EVENT-0182", source=writer, target=target)
            # 3. The target must have replayed the old primary's last record before it takes over.
            _wait_replay(target, end_lsn, CATCH_UP_TIMEOUT_S, strictly_after=True)
        except Exception as exc:
            log.warning("aurora: switchover of %s to %s cancelled: %s", glob.global_id, target.cluster_id, exc)
            glob.failover_state["Status"] = "cancelling"
            with writer.lock:
                writer.needs_rewind = False
                if not writer.running and self.may_run(writer.region):
                    self._start_node(writer)
            self._event(target, "RDS-EVENT-0187", source=writer)
            return
        self._promote(glob, writer, target)
        self._event(target, "RDS-EVENT-0184", source=writer)
        self._event(target, "RDS-EVENT-0397", source=writer)
        # 4. Topology kept: the old primary and the other secondaries replicate from the new primary.
        self._rejoin(glob, target, wait=True)
        self._event(target, "RDS-EVENT-0185", source=writer)
        log.info("aurora: switchover of %s to %s finished", glob.global_id, target.cluster_id)

    def _failover(self, glob: Global, writer: Member, target: Member) -> None:
        assert glob.failover_state is not None
        glob.failover_state["Status"] = "failing-over"
        glob.record.status = "failing-over"
        writer.status = target.status = "failing-over"
        # Fence the old primary first: from here on it never takes a write again.
        with writer.lock:
            writer.needs_rewind = True
            self._stop_node(writer, "immediate")
        try:
            self._promote(glob, writer, target)
        except Exception as exc:
            log.warning("aurora: failover of %s to %s failed: %s", glob.global_id, target.cluster_id, exc)
            with writer.lock:
                writer.needs_rewind = False
            self._event(target, "RDS-EVENT-0239", source=writer)
            return
        for other in self.members_of(glob):
            if other is not target:
                # Its WAL may be ahead of the promoted target's history: rewind before it replicates again.
                other.needs_rewind = True
                other.resync_after_failover = True
        self._event(target, "RDS-EVENT-0238", source=writer)
        self._event(target, "RDS-EVENT-0397", source=writer)
        # The old primary and the other secondaries rejoin as the operation ends (_operation kicks every member):
        # at once when their region is up, on restore otherwise.
        log.info("aurora: failover of %s to %s completed", glob.global_id, target.cluster_id)

    def _promote(self, glob: Global, writer: Member, target: Member) -> None:
        with target.lock:
            target.node.promote()
        writer.record.is_writer = False
        target.record.is_writer = True
        self._retarget(glob)

    def _rejoin(self, glob: Global, new_writer: Member, *, wait: bool) -> None:
        """Reconcile every other member onto the new writer; with wait, give them REJOIN_WAIT_S to get there."""
        others = [m for m in self.members_of(glob) if m is not new_writer]
        threads = []
        for other in others:
            thread = threading.Thread(target=self._rejoin_one, args=(other,), daemon=True)
            thread.start()
            threads.append(thread)
        if wait:
            deadline = time.monotonic() + REJOIN_WAIT_S
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _rejoin_one(self, member: Member) -> None:
        try:
            self.reconcile(member, in_operation=True)
        except Exception as exc:
            member.failed_at = time.monotonic()
            member.last_error = str(exc).splitlines()[0]
            log.warning("aurora %s: rejoin failed: %s (will retry)", member.cluster_id, exc)

    # -- replication facts -------------------------------------------------------------------------

    def synchronization_status(self, member: Member) -> str:
        glob = self.global_of(member)
        if member.needs_rewind or member.resyncing:
            return "pending-resync"
        if glob is None or self.writer_of(glob) is member:
            return "connected"
        return "connected" if member.sample.streaming else "pending-resync"

    def sample_all(self) -> None:
        """The sampler's tick: replication facts of every global cluster, metrics, retries of failed members."""
        with self._lock:
            globs = list(self._globals.values())
        for glob in globs:
            with contextlib.suppress(Exception):
                self.sample(glob)
        now = time.monotonic()
        if now - self._last_metrics >= METRIC_INTERVAL_S:
            self._last_metrics = now
            self._publish_metrics(globs)
        for member in self.members():
            if member.failed_at is not None and now - member.failed_at >= RETRY_AFTER_S:
                member.failed_at = None
                self.kick(member)

    def sample(self, glob: Global) -> None:
        # The sampler thread and a switchover's validation both sample; the kept connections are not shared.
        with self._sample_lock:
            self._sample(glob)

    def _sample(self, glob: Global) -> None:
        members = self.members_of(glob)
        writer = self.writer_of(glob)
        standbys = [m for m in members if m is not writer]
        if not standbys:
            return
        replicas: dict[str, tuple[str, float | None, float | None]] = {}
        last_commit = None
        if writer is not None and writer.running:
            rows = _query(
                writer,
                "SELECT application_name, state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8,"
                " extract(epoch FROM replay_lag)::float8 * 1000, extract(epoch FROM (pg_last_committed_xact()).timestamp)::float8"
                " FROM (SELECT 1) one LEFT JOIN pg_stat_replication ON true",
            )
            for name, state, behind, lag, commit in rows or []:
                last_commit = commit
                if name is not None:
                    replicas[name] = (state, behind, lag)
            if rows:
                glob.last_commit = last_commit
        if last_commit is None:
            last_commit = glob.last_commit  # the writer is down: the newest commit it was seen to have
        for member in standbys:
            self._sample_standby(member, writer, replicas.get(member.application_name), last_commit)

    def _sample_standby(
        self,
        member: Member,
        writer: Member | None,
        replica: tuple[str, float | None, float | None] | None,
        writer_last_commit: float | None,
    ) -> None:
        now = time.time()
        rows = (
            _query(
                member,
                "SELECT pg_is_in_recovery(), extract(epoch FROM pg_last_xact_replay_timestamp())::float8,"
                " pg_last_wal_replay_lsn()::text, (SELECT status FROM pg_stat_wal_receiver),"
                " (SELECT sender_port FROM pg_stat_wal_receiver)",
            )
            if member.running
            else None
        )
        in_recovery, replayed_commit, replay_lsn, receiver, sender_port = rows[0] if rows else (None,) * 5
        streaming = bool(
            in_recovery
            and receiver == "streaming"
            and writer is not None
            and sender_port == writer.node.port
            and replica is not None
            and replica[0] == "streaming"
            and not member.needs_rewind
        )
        sample = Sample(at=now, streaming=streaming, replay_lsn=replay_lsn)
        rpo = None
        if writer_last_commit is not None and replayed_commit is not None:
            rpo = max(0.0, (writer_last_commit - replayed_commit) * 1000)
        if streaming and replica is not None:
            _state, behind, lag = replica
            member.last_connected_at = now
            if member.connected_after_s is None:
                member.connected_after_s = round(time.monotonic() - member.created_at, 3)
            caught_up = behind is not None and behind <= 0
            sample.replication_lag_ms = lag if lag is not None else (0.0 if caught_up else None)
            sample.rpo_lag_ms = 0.0 if caught_up else rpo
            if sample.replication_lag_ms is None:
                sample.replication_lag_ms = sample.rpo_lag_ms
        else:
            since = (now - member.last_connected_at) * 1000 if member.last_connected_at else None
            sample.replication_lag_ms = since
            sample.rpo_lag_ms = rpo if rpo is not None else since
        member.sample = sample

    def _publish_metrics(self, globs: list[Global]) -> None:
        for glob in globs:
            writer = self.writer_of(glob)
            for member in self.members_of(glob):
                if member is writer or member.status == "creating" or self.rt.is_dark(member.region):
                    continue
                values = {
                    "AuroraGlobalDBReplicationLag": member.sample.replication_lag_ms,
                    "AuroraGlobalDBRPOLag": member.sample.rpo_lag_ms,
                }
                present = {name: round(value, 3) for name, value in values.items() if value is not None}
                if present:
                    try:
                        self.on_metrics(member, present)
                    except Exception:
                        log.exception("aurora: could not put metrics of %s", member.cluster_id)

    # -- teardown ----------------------------------------------------------------------------------

    def stop_all(self, *, delete: bool) -> None:
        """Reset (delete=True: nodes and data gone) or shutdown (nodes stopped)."""
        with self._lock:
            members = list(self._members.values())
            globs = list(self._globals.values())
            if delete:
                self._members.clear()
                self._globals.clear()
                self._db_stopped.clear()
                self._events.clear()
        for glob in globs:
            glob.forwarder.close()
            if delete:
                for name, port in glob.published:
                    self.rt.unpublish(name, port)
        threads = []
        for member in members:
            if delete:
                member.deleted = True
                self._unpublish(member)
                target = self._destroy
            else:
                target = self._crash
            thread = threading.Thread(target=target, args=(member,), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(30)
        if not delete:
            with self._lock:
                # Nothing outlives the server process (moto forgets every cluster): a data folder outside the
                # state folder would only pile up in the system temp folder.
                if self._root is not None and self._root.is_symlink():
                    self._forget_data()
                    self._root = None

    # -- description -------------------------------------------------------------------------------

    def describe(self, *, memory: bool = False) -> dict[str, Any]:
        """What GET /_sandbox/aurora shows: clusters, nodes, roles, replication lag, operations, recent events."""
        clusters = []
        for member in self.members():
            glob = self.global_of(member)
            entry: dict[str, Any] = {
                "DBClusterIdentifier": member.cluster_id,
                "Region": member.region,
                "DBClusterArn": member.arn,
                "Status": member.status,
                "Role": "writer" if self.is_writer(member) else "standby",
                "NodeRunning": member.running,
                "LocalPort": member.node.port,
                "Endpoint": member.record.endpoint,
                "ReaderEndpoint": member.record.reader_endpoint,
                "Port": int(member.record.port),
                "MasterUsername": member.master_username,
                "DatabaseName": member.database_name,
                "GlobalClusterIdentifier": glob.global_id if glob else None,
                "SynchronizationStatus": self.synchronization_status(member) if glob else None,
                "NeedsRewind": member.needs_rewind,
                "ReplicationLagMs": member.sample.replication_lag_ms if glob and not self.is_writer(member) else None,
                "RPOLagMs": member.sample.rpo_lag_ms if glob and not self.is_writer(member) else None,
                "SampledAt": member.sample.at or None,
                "AvailableAfterSeconds": member.available_after_s,
                "ConnectedAfterSeconds": member.connected_after_s,
                "LastError": member.last_error,
                "DataDirectory": str(member.node.data_dir),
            }
            if memory:
                entry["MemoryKB"] = member.node.memory_kb() if member.running else None
            clusters.append(entry)
        with self._lock:
            globs = list(self._globals.values())
        global_clusters = []
        for glob in globs:
            writer = self.writer_of(glob)
            global_clusters.append(
                {
                    "GlobalClusterIdentifier": glob.global_id,
                    "Endpoint": glob.record.endpoint,
                    "LocalPort": glob.forwarder.port,
                    "Writer": writer.cluster_id if writer else None,
                    "FailoverState": dict(glob.failover_state) if glob.failover_state else None,
                    "LastOperation": glob.last_operation,
                }
            )
        return {
            "clusters": clusters,
            "global_clusters": global_clusters,
            "stopped_database_regions": sorted(self._db_stopped),
            "events": list(self._events),
        }


def _operation_name(glob: Global) -> str:
    state = glob.failover_state or {}
    return "failover" if state.get("IsDataLossAllowed") else "switchover"


def _wait_replay(member: Member, lsn: str, timeout: float, *, strictly_after: bool) -> None:
    op = ">" if strictly_after else ">="
    deadline = time.monotonic() + timeout
    while True:
        done = member.node.execute(f"SELECT pg_last_wal_replay_lsn() {op} %s::pg_lsn", (lsn,))[0][0]
        if done:
            return
        if time.monotonic() > deadline:
            raise PostgresError(f"{member.cluster_id} did not replay up to {lsn} within {timeout:.0f}s")
        time.sleep(0.05)


@contextlib.contextmanager
def _admin_session(member: Member) -> Iterator[Any]:
    """A superuser session whose failing statements are not written to the server log: they can carry the
    internal password (primary_conninfo) or a password verifier."""
    with member.node.connect() as conn:
        conn.execute("SET log_min_error_statement = panic")
        yield conn


def _wait_streaming(member: Member, timeout: float) -> bool:
    """Give a started standby's WAL receiver a moment to connect (so its first sample says connected)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = member.node.execute("SELECT status FROM pg_stat_wal_receiver")
        if rows and rows[0][0] == "streaming":
            return True
        time.sleep(0.05)
    return False


def _query(member: Member, sql_text: str) -> list[tuple[Any, ...]] | None:
    """A query on the member's node over the sampler's kept connection; None when the node does not answer."""
    import psycopg

    for _attempt in range(2):
        try:
            if member.conn is None or member.conn.closed:
                member.conn = psycopg.connect(member.node.conninfo(connect_timeout=2), autocommit=True)
            return member.conn.execute(sql_text).fetchall()
        except psycopg.Error:
            _close_quietly(member)
    return None


def _close_quietly(member: Member) -> None:
    conn, member.conn = member.conn, None
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _stop_postmasters_under(root: Path) -> None:
    """SIGQUIT (immediate shutdown) the servers an earlier sandbox process left running under root."""
    if not root.exists():
        return
    for pidfile in root.resolve().glob("**/postmaster.pid"):
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)
        except (OSError, ValueError, IndexError):
            continue
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.05)

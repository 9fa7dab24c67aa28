"""The Aurora engine's parts: a cluster's node (Member), a global cluster, the writer endpoint's forwarder,
settings, and the PostgreSQL helpers the engine (engine.py and its parts) uses."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import shlex
import signal
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import runtime
from sandbox.postgres import HOST, START_TIMEOUT_S, PostgresError, PostgresNode

log = logging.getLogger("sandbox.aurora")

ENGINE = "aurora-postgresql"
# Aurora's own administrative role; the master user is an ordinary member of rds_superuser, as on AWS.
INTERNAL_SUPERUSER = "rdsadmin"
MASTER_GROUP = "rds_superuser"
# Members of this role log in with an IAM auth token only (iam_auth.py), as on RDS and Aurora.
IAM_ROLE = "rds_iam"
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
# RDS events of a failover within a cluster (Aurora User Guide, "DB cluster events", category failover).
EVENT_MESSAGES.update(
    {
        "RDS-EVENT-0069": "Cluster failover failed, check the health of your cluster instances and try again.",
        "RDS-EVENT-0071": "Completed failover to DB instance: {instance}.",
        "RDS-EVENT-0072": "Started same AZ failover to DB instance: {instance}.",
        "RDS-EVENT-0073": "Started cross AZ failover to DB instance: {instance}.",
    }
)
EVENT_CATEGORIES = {  # every other one: global failover
    "RDS-EVENT-0170": ["creation"],
    **{event: ["failover"] for event in ("RDS-EVENT-0069", "RDS-EVENT-0071", "RDS-EVENT-0072", "RDS-EVENT-0073")},
}
# A reader that has not streamed from its upstream for this long, while the upstream runs, is resynchronised.
RESYNC_AFTER_S = 10.0


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
    # IAM database authentication: the LDAP verifier's port (0: none) and the cluster's resource id, the bind DN's
    # suffix that tells the verifier which cluster a login is for (the same on every node of the cluster).
    ldap_port: int = 0
    iam_realm: str = ""

    def _server_options(self) -> str:
        # Small servers: a sandbox region runs one per DB instance (docs/sandbox.md: within 2 GB for both regions).
        small = "-c shared_buffers=16MB -c max_connections=100 -c max_wal_size=256MB -c work_mem=2MB"
        # pg_ctl hands -o to a shell: the path is quoted for it.
        hba = f" -c {shlex.quote(f'hba_file={self.hba_file}')}" if self.ldap_port else ""
        return (
            f"{super()._server_options()} -c cluster_name={self.cluster_name} -c track_commit_timestamp=on {small}{hba}"
        )

    @property
    def hba_file(self) -> Path:
        """This node's pg_hba, beside its data folder: pg_basebackup and pg_rewind copy the data folder's own
        pg_hba.conf from another node (another cluster's, for a secondary), so the node's is kept out of their way."""
        return self.data_dir.parent / "pg_hba.conf"

    def hba_lines(self) -> list[str]:
        """Members of rds_iam go to the IAM verifier (LDAP simple bind as <user>@<realm>, the token as password),
        before the password lines initdb writes (scram-sha-256; replication for the standbys)."""
        return [
            "# sandbox/services/rds/nodes.py: written at every start of this node",
            f"host all +{IAM_ROLE} 127.0.0.0/8 ldap ldapserver={HOST} ldapport={self.ldap_port}"
            f' ldapsuffix="@{self.iam_realm}"',
            "host all all 127.0.0.1/32 scram-sha-256",
            "host replication all 127.0.0.1/32 scram-sha-256",
        ]

    def start(self, timeout: int = START_TIMEOUT_S) -> AuroraNode:
        """Write this node's pg_hba, then start: every start of every node (a new reader, a promoted one, a rewound
        old writer, a secondary's) gets the line; it never changes while the node runs, so nothing needs a reload."""
        if self.ldap_port:
            self.hba_file.write_text("\n".join(self.hba_lines()) + "\n")
            self._own(self.hba_file, 0o600)
        super().start(timeout)
        return self

    @property
    def ready_marker(self) -> Path:
        """Written once the data folder is complete (initdb or pg_basebackup finished)."""
        return self.data_dir.parent / "ready"

    def postmaster_pid(self) -> int | None:
        """The pid in postmaster.pid when that process is alive (no subprocess: the sampler asks every tick)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def kill(self) -> list[int]:
        """SIGKILL the postmaster and every process it started (a crash of the server); the pids killed."""
        pid = self.postmaster_pid()
        if pid is None:
            return []
        pids = [pid, *_children(pid)]
        for each in pids:
            with contextlib.suppress(OSError):
                os.kill(each, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(each) for each in pids):
            time.sleep(0.02)
        return pids

    def checkpoint_lsn(self) -> tuple[str, str]:
        """(database cluster state, latest checkpoint location) from pg_controldata of a stopped node."""
        out = self._run("pg_controldata", "-D", str(self.data_dir)).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return fields["Database cluster state"].strip(), fields["Latest checkpoint location"].strip()

    def memory_kb(self) -> int | None:
        """Proportional set size (kB) of the postmaster and its children, or None when not running."""
        pid = self.postmaster_pid()
        if pid is None:
            return None
        pids = [pid, *_children(pid)]
        total = 0
        for each in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        return total


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class Sample:
    """What replication looked like at the last sample of a standby."""

    at: float = 0.0
    streaming: bool = False
    replication_lag_ms: float | None = None
    rpo_lag_ms: float | None = None
    replay_lsn: str | None = None


@dataclass(eq=False)
class Instance:
    """One DB instance of a cluster and its own node.

    The cluster's head instance (``Member.head_id``) shares its node with the Member (``Member.node``): the writer of
    a primary or standalone cluster, or, in a secondary, the instance that replicates from the global writer. Every
    other instance is a reader: a streaming hot standby of the head's node in the same region.
    """

    instance_id: str
    record: Any  # moto's DBInstanceClustered
    node: AuroraNode
    endpoint: tuple[str, int]
    status: str = "creating"
    running: bool = False
    deleted: bool = False
    # Diverged from the head's history (an old writer, or the reader of a rewound head): pg_rewind before it streams.
    needs_rewind: bool = False
    streaming: bool = False  # streams from the head (at the last sample)
    in_sync: bool = False  # in the head's synchronous quorum, streaming (at the last sample)
    last_streaming_at: float = field(default_factory=time.monotonic)
    lock: threading.RLock = field(default_factory=threading.RLock)
    reconciling: bool = False
    again: bool = False
    failed_at: float | None = None
    last_error: str | None = None

    @property
    def tier(self) -> int:
        tier = getattr(self.record, "promotion_tier", None)
        return 1 if tier is None else int(tier)

    @property
    def availability_zone(self) -> str | None:
        return getattr(self.record, "availability_zone", None)


@dataclass(eq=False)
class Member:
    """One aurora-postgresql DB cluster: its head node and its DB instances."""

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
    # The DB instances, by identifier; head_id names the one whose node is ``node`` (None: no instance claimed it).
    instances: dict[str, Instance] = field(default_factory=dict)
    head_id: str | None = None
    base_dir: Path | None = None  # every node of the cluster lives under it
    # The cluster endpoint (always the head) and the reader endpoint (the readers, else the head).
    writer_forwarder: Forwarder | None = None
    reader_forwarder: Forwarder | None = None
    failing_over: bool = False  # a failover within the cluster runs (its thread owns the nodes)
    sync_names: str | None = None  # synchronous_standby_names last set on the head
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
        return self.node.ready_marker

    @property
    def initialized(self) -> bool:
        return self.ready_marker.exists()

    def readers(self) -> list[Instance]:
        """The instances other than the head, in promotion order (tier, then identifier)."""
        found = [i for i in list(self.instances.values()) if i.instance_id != self.head_id and not i.deleted]
        return sorted(found, key=lambda i: (i.tier, i.instance_id))


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
    """A loopback TCP listener that pipes every connection to one of its targets.

    One target: the cluster or global writer endpoint. Several: the reader endpoint, which takes them in turn (and
    the next one when a target refuses). ``retarget`` drops the connections to targets no longer listed.
    """

    def __init__(self, rt: runtime.Runtime) -> None:
        self._rt = rt
        self.targets: list[tuple[str, int]] = []
        self._turn = 0
        self._transports: dict[tuple[str, int], set[asyncio.BaseTransport]] = {}
        self._server: asyncio.base_events.Server = rt.call(asyncio.start_server(self._handle, HOST, 0))
        self.port: int = self._server.sockets[0].getsockname()[1]

    @property
    def target(self) -> tuple[str, int] | None:
        return self.targets[0] if self.targets else None

    async def _open(self) -> tuple[tuple[str, int], asyncio.StreamReader, asyncio.StreamWriter] | None:
        targets = list(self.targets)
        self._turn += 1
        for index in range(len(targets)):
            target = targets[(self._turn + index) % len(targets)]
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), 5)
            except (OSError, TimeoutError):
                continue
            return target, up_reader, up_writer
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened = await self._open()
        if opened is None:
            writer.transport.abort()
            return
        target, up_reader, up_writer = opened
        pair = (writer.transport, up_writer.transport)
        if target not in self.targets:  # retargeted while connecting
            for transport in pair:
                transport.abort()
            return
        self._transports.setdefault(target, set()).update(pair)
        try:
            tasks = [asyncio.create_task(_pipe(reader, up_writer)), asyncio.create_task(_pipe(up_reader, writer))]
            _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        finally:
            for transport in pair:
                self._transports.get(target, set()).discard(transport)
                transport.abort()

    def retarget(self, target: tuple[str, int] | list[tuple[str, int]] | None) -> None:
        """Lead new connections to target(s); connections to a target no longer listed are dropped."""
        targets = [] if target is None else list(target) if isinstance(target, list) else [target]
        if targets == self.targets:
            return
        self.targets = targets
        self._rt.aio.call_soon_threadsafe(self._drop_stale)

    def _drop_stale(self) -> None:
        for target in [t for t in self._transports if t not in self.targets]:
            for transport in self._transports.pop(target):
                transport.abort()

    def close(self) -> None:
        def stop() -> None:
            self._server.close()
            self._drop_stale()

        self.targets = []
        self._rt.aio.call_soon_threadsafe(stop)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


def _operation_name(glob: Global) -> str:
    state = glob.failover_state or {}
    return "failover" if state.get("IsDataLossAllowed") else "switchover"


def _wait_replay(member: Member, lsn: str, timeout: float, *, strictly_after: bool) -> None:
    wait_node_replay(member.node, lsn, timeout, strictly_after=strictly_after, name=member.cluster_id)


def wait_node_replay(node: AuroraNode, lsn: str, timeout: float, *, strictly_after: bool, name: str = "") -> None:
    op = ">" if strictly_after else ">="
    deadline = time.monotonic() + timeout
    while True:
        done = node.execute(f"SELECT pg_last_wal_replay_lsn() {op} %s::pg_lsn", (lsn,))[0][0]
        if done:
            return
        if time.monotonic() > deadline:
            raise PostgresError(f"{name or node.cluster_name} did not replay up to {lsn} within {timeout:.0f}s")
        time.sleep(0.05)


def lsn_value(text: str | None) -> int:
    """'16/B374D848' as a number (-1 for none), to compare WAL positions."""
    if not text:
        return -1
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def set_sync_names(node: AuroraNode, value: str) -> None:
    """synchronous_standby_names on a running writer, applied at once (waiting commits are re-evaluated)."""
    from psycopg import sql

    with node.connect() as conn:
        conn.execute(sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")


def follow_node(node: AuroraNode, upstream: AuroraNode, name: str) -> None:
    """Point a running standby's WAL receiver at upstream's node (after a failover or a port change)."""
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    current = conninfo_to_dict(node.execute("SHOW primary_conninfo")[0][0] or "")
    if str(current.get("port")) == str(upstream.port):
        return
    target = make_conninfo(host=HOST, port=upstream.port, user=upstream.superuser, password=upstream.password)
    with node.connect() as conn:
        # The statement carries the internal password: never in the server log, even when it fails.
        conn.execute("SET log_min_error_statement = panic")
        conn.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(target)))
        conn.execute("SELECT pg_reload_conf()")
    log.info("aurora %s: now replicates from port %d", name, upstream.port)


@contextlib.contextmanager
def _admin_session(member: Member) -> Iterator[Any]:
    """A superuser session whose failing statements are not written to the server log: they can carry the
    internal password (primary_conninfo) or a password verifier."""
    with member.node.connect() as conn:
        conn.execute("SET log_min_error_statement = panic")
        yield conn


def _wait_streaming(member: Member, timeout: float) -> bool:
    return wait_node_streaming(member.node, timeout)


def wait_node_streaming(node: AuroraNode, timeout: float) -> bool:
    """Give a started standby's WAL receiver a moment to connect (so its first sample says connected)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = node.execute("SELECT status FROM pg_stat_wal_receiver")
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

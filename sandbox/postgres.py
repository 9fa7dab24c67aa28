"""A real PostgreSQL for the sandbox and the tests: init, start, stop, hot standby, promote, rewind.

The sandbox backs each "Aurora cluster" with one of these, and the web app's tests use them to
exercise a real writer, a real streaming hot standby and a real promotion.

Everything listens on 127.0.0.1 only (no Unix socket), with password (scram-sha-256) authentication.
PostgreSQL refuses to run as root: when this process is root, the server and its tools run as the
unprivileged system user ``sandboxpg`` (created on first use) and the data folders are chowned to it.

Per-node settings (port, addresses, fsync) are passed on the server's command line, never written to
postgresql.conf: pg_basebackup and pg_rewind copy the configuration files from the source node, so
anything node-specific in them would follow the copy.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
OS_USER = "sandboxpg"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60

# Written to postgresql.conf at init and therefore shared by every copy of the node.
# wal_log_hints lets pg_rewind turn a failed-over primary into a standby; the rest keeps
# replication responsive (short status intervals, standby feedback) without archiving.
_SHARED_SETTINGS = {
    "wal_level": "replica",
    "wal_log_hints": "on",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "wal_keep_size": "256MB",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "wal_receiver_status_interval": "1s",
    "wal_retrieve_retry_interval": "200ms",
    "max_connections": "200",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}


class PostgresError(Exception):
    """A failure with a message fit for the person at the terminal."""


def find_bin_dir() -> Path:
    """The folder holding pg_ctl, initdb, pg_basebackup and pg_rewind (newest installed major version)."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "pg_ctl").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    if candidates:
        return candidates[0]
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise PostgresError(
        "PostgreSQL server binaries (pg_ctl, initdb) not found in /usr/lib/postgresql/*/bin or on PATH: "
        "run scripts/bootstrap.sh, or install the 'postgresql' package (Debian/Ubuntu: apt-get install postgresql)"
    )


@dataclass(frozen=True)
class OsUser:
    """Who the server runs as: this process's user, or ``sandboxpg`` when this process is root."""

    uid: int
    gid: int
    name: str

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


def server_user(name: str = OS_USER) -> OsUser:
    """The unprivileged OS user to run PostgreSQL as, created (useradd --system) when root needs it."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return OsUser(entry.pw_uid, entry.pw_gid, entry.pw_name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        proc = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        # exit 9: created meanwhile by a concurrent caller.
        if proc.returncode not in (0, 9):
            raise PostgresError(
                f"could not create the system user {name!r} to run PostgreSQL: {proc.stderr.strip()}"
            ) from None
        entry = pwd.getpwnam(name)
    return OsUser(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _check_traversable(path: Path, user: OsUser) -> None:
    """The server user must be able to reach its data folder: every parent needs the x bit for it."""
    if user.is_self:
        return
    for parent in path.resolve().parents:
        st = parent.stat()
        if st.st_uid == user.uid:
            continue
        if st.st_gid == user.gid and st.st_mode & 0o010:
            continue
        if not st.st_mode & 0o001:
            mode = oct(st.st_mode & 0o777)
            raise PostgresError(
                f"{parent} is not searchable by the user {user.name!r} that runs PostgreSQL (mode {mode}): "
                f"put the data folder under a world-searchable folder such as /tmp, or `chmod o+x {parent}`"
            )


@dataclass
class PostgresNode:
    """One PostgreSQL server: a data folder served on a loopback port.

    ``fast=True`` turns off fsync: for tests and the sandbox only, since a crash of the machine (not
    of PostgreSQL) can then corrupt the data folder. ``synchronous_commit`` stays on: a commit is
    acknowledged once its WAL is written to the operating system, so a crash of the PostgreSQL process
    (SIGKILL, an immediate stop) loses no acknowledged commit, as on Aurora.
    """

    data_dir: Path
    port: int
    password: str = field(repr=False)
    superuser: str = SUPERUSER
    fast: bool = False
    log_file: Path | None = None
    bin_dir: Path = field(default_factory=find_bin_dir)
    os_user: OsUser = field(default_factory=server_user)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if self.log_file is None:
            self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"

    # -- plumbing -------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin_dir}{os.pathsep}/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PGPASSWORD": self.password,
            "PGCONNECT_TIMEOUT": "5",
        }
        if not self.os_user.is_self:
            env["HOME"] = "/tmp"  # noqa: S108 - sandboxpg has no home; tools only need a readable HOME
        return env

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs = (
            {} if self.os_user.is_self else {"user": self.os_user.uid, "group": self.os_user.gid, "extra_groups": []}
        )
        proc = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            env=self._env(),
            cwd="/",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
        if proc.returncode != 0:
            tail = self.log_tail()
            raise PostgresError(
                f"{args[0]} failed for {self.data_dir} (port {self.port}), exit {proc.returncode}:\n"
                f"{proc.stderr.strip() or proc.stdout.strip()}"
                + (f"\nserver log ({self.log_file}):\n{tail}" if tail else "")
            )
        return proc

    def _own(self, path: Path, mode: int) -> None:
        if not self.os_user.is_self:
            os.chown(path, self.os_user.uid, self.os_user.gid)
        path.chmod(mode)

    def _prepare_dir(self) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise PostgresError(f"{self.data_dir} already exists and is not empty: remove it or choose another folder")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.data_dir, 0o700)
        _check_traversable(self.data_dir, self.os_user)
        assert self.log_file is not None
        self.log_file.touch(exist_ok=True)
        self._own(self.log_file, 0o600)

    def log_tail(self, lines: int = 15) -> str:
        try:
            assert self.log_file is not None
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return ""

    # -- connection details ----------------------------------------------------------------------

    def conninfo(self, dbname: str = "postgres", **extra: str | int) -> str:
        """A libpq connection string for this node (contains the password)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=HOST, port=self.port, dbname=dbname, user=self.superuser, password=self.password, **extra
        )

    def connect(self, dbname: str = "postgres", autocommit: bool = True):  # -> psycopg.Connection
        import psycopg

        return psycopg.connect(self.conninfo(dbname, connect_timeout=5), autocommit=autocommit)

    def execute(self, sql: str, params: tuple | None = None, dbname: str = "postgres") -> list[tuple]:
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str) -> None:
        from psycopg import sql

        with self.connect() as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    # -- lifecycle -------------------------------------------------------------------------------

    def init(self) -> PostgresNode:
        """initdb a new cluster: data checksums, scram-sha-256 auth, superuser with the given password."""
        self._prepare_dir()
        with tempfile.NamedTemporaryFile("w", dir=self.data_dir.parent, prefix=".pw-", delete=False) as pwfile:
            pwfile.write(self.password + "\n")
        pw_path = Path(pwfile.name)
        try:
            self._own(pw_path, 0o600)
            args = ["initdb", "-D", str(self.data_dir), "-U", self.superuser, f"--pwfile={pw_path}"]
            args += ["--auth=scram-sha-256", "--data-checksums", "--encoding=UTF8", "--locale=C.UTF-8"]
            if self.fast:
                args.append("--no-sync")
            self._run(*args)
        finally:
            pw_path.unlink(missing_ok=True)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# sandbox/postgres.py: shared by every copy of this node\n")
            conf.writelines(f"{key} = {value}\n" for key, value in _SHARED_SETTINGS.items())
        return self

    def _server_options(self) -> str:
        opts = [f"-c port={self.port}", f"-c listen_addresses={HOST}", "-c unix_socket_directories=''"]
        if self.fast:
            opts += ["-c fsync=off"]
        return " ".join(opts)

    @property
    def running(self) -> bool:
        """pg_ctl status: is a postmaster running on this data folder."""
        kwargs = (
            {} if self.os_user.is_self else {"user": self.os_user.uid, "group": self.os_user.gid, "extra_groups": []}
        )
        proc = subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)],
            env=self._env(),
            cwd="/",
            capture_output=True,
            check=False,
            **kwargs,
        )
        return proc.returncode == 0

    def start(self, timeout: int = START_TIMEOUT_S) -> PostgresNode:
        """Start the server and wait until it accepts connections (a standby: until it is consistent)."""
        self._run(
            "pg_ctl", "start", "-w", "-t", str(timeout), "-D", str(self.data_dir), "-l", str(self.log_file),
            "-o", self._server_options(), timeout=timeout + 10,
        )  # fmt: skip
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.conninfo(connect_timeout=2)) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.Error as exc:
                last = exc
                time.sleep(0.05)
        raise PostgresError(f"PostgreSQL on port {self.port} did not accept connections within {timeout}s: {last}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: mode fast (clean, disconnects clients), smart, or immediate (as if it crashed)."""
        if mode not in ("smart", "fast", "immediate"):
            raise PostgresError(f"stop mode {mode!r} is not one of smart, fast, immediate")
        if self.running:
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data_dir), timeout=70)

    def destroy(self) -> None:
        """Stop the server (immediately) and delete its data folder and log."""
        with contextlib.suppress(PostgresError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.log_file is not None:
            self.log_file.unlink(missing_ok=True)

    # -- replication -----------------------------------------------------------------------------

    def is_in_recovery(self) -> bool:
        return bool(self.execute("SELECT pg_is_in_recovery()")[0][0])

    def create_standby(self, data_dir: Path, port: int, *, start: bool = True) -> PostgresNode:
        """A streaming hot standby of this (running) node: pg_basebackup -R into data_dir, on port."""
        standby = PostgresNode(
            data_dir=data_dir, port=port, password=self.password, superuser=self.superuser,
            fast=self.fast, bin_dir=self.bin_dir, os_user=self.os_user,
        )  # fmt: skip
        standby._prepare_dir()
        # -R writes standby.signal and primary_conninfo (with the password) into postgresql.auto.conf.
        self._run(
            "pg_basebackup", "-D", str(standby.data_dir), "-h", HOST, "-p", str(self.port), "-U", self.superuser,
            "-X", "stream", "-c", "fast", "-R", *(["--no-sync"] if self.fast else []),
        )  # fmt: skip
        if start:
            standby.start()
        return standby

    def promote(self, timeout: int = 60) -> None:
        """Promote this standby to a writer and wait until it accepts writes."""
        self._run("pg_ctl", "promote", "-w", "-t", str(timeout), "-D", str(self.data_dir), timeout=timeout + 10)

    def rewind_from(self, source: PostgresNode, *, start: bool = True) -> None:
        """Turn this stopped former primary into a standby of ``source`` (the promoted node) with pg_rewind.

        A primary stopped with mode=immediate (a crash) is fine: pg_rewind first runs crash recovery
        on it in single-user mode, since it needs a cleanly shut down target.
        """
        if self.running:
            raise PostgresError(
                f"{self.data_dir} is still running: stop it before rewinding it onto port {source.port}"
            )
        # A freshly promoted node records its new timeline in pg_control only at its next checkpoint;
        # without one pg_rewind sees the old timeline, says "no rewind required" and the standby
        # then loops on "new timeline forked off before current recovery point".
        source.execute("CHECKPOINT")
        self._run(
            "pg_rewind", f"--target-pgdata={self.data_dir}", f"--source-server={source.conninfo()}",
            "--write-recovery-conf", "--progress",
        )  # fmt: skip
        if start:
            self.start()

    def wait_for_replay(self, primary: PostgresNode, timeout: float = 30) -> None:
        """Wait until this standby has replayed everything the primary has written so far."""
        target = primary.execute("SELECT pg_current_wal_insert_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))[0][0]
            if done:
                return
            time.sleep(0.05)
        raise PostgresError(f"standby on port {self.port} did not replay up to {target} within {timeout}s")


def make_base_dir(prefix: str = "sandbox-pg-") -> Path:
    """A fresh folder under the system temp folder that the server user can reach (for tests)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    return base

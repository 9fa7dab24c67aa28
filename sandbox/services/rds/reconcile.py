"""Aurora nodes reconciled: start, bootstrap, follow the writer, rewind, stop, clear (the engine's node life cycle)."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time

from sandbox import runtime
from sandbox.postgres import PostgresError
from sandbox.services.rds.nodes import (
    IAM_ROLE,
    MASTER_GROUP,
    STREAMING_WAIT_S,
    Global,
    Member,
    _admin_session,
    _close_quietly,
    _port_free,
    _wait_streaming,
    follow_node,
    log,
    scram_verifier,
)


class NodeLifecycle:
    """Bringing each cluster's node to what it should be: writer, standby, rewound (a Fleet part)."""

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
        if member.failing_over:
            return  # a failover within the cluster owns its nodes; it kicks them when it ends
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
        if member.running:
            self._route(member)
            self.refresh_quorum(member)
            for reader in member.readers():
                if not reader.running or reader.needs_rewind:
                    self.kick_instance(member, reader)  # readers waiting for their head (start, rejoin)
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
            for reader in member.readers():
                reader.needs_rewind = True  # they may hold WAL of the history the head just left
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
        follow_node(member.node, writer.node, member.cluster_id)

    def _became_available(self, member: Member) -> None:
        if member.status in ("creating", "promoting"):
            first = member.available_after_s is None
            if first:
                member.available_after_s = round(time.monotonic() - member.created_at, 3)
                self._event(member, "RDS-EVENT-0170", source=member)
                log.info("aurora %s available after %.2fs", member.cluster_id, member.available_after_s)
            member.status = "available"
        head = member.instances.get(member.head_id) if member.head_id else None
        if head is not None and head.status in ("creating", "rebooting"):
            head.status = "available"

    def _bootstrap(self, member: Member) -> None:
        """The master user: a login role with CREATEDB and CREATEROLE in rds_superuser, owner of DatabaseName; and
        rds_iam, the NOLOGIN role whose members log in with IAM auth tokens (the master grants it: on PostgreSQL 15
        CREATEROLE may grant any role that is not a superuser, so the master needs no membership of its own, which
        would make it an IAM-only login too)."""
        from psycopg import sql

        user = sql.Identifier(member.master_username or "")
        with _admin_session(member) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MASTER_GROUP,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(MASTER_GROUP)))
                conn.execute(sql.SQL("GRANT pg_monitor, pg_signal_backend TO {}").format(sql.Identifier(MASTER_GROUP)))
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (IAM_ROLE,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(IAM_ROLE)))
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
            member.node.start()
            self._unpublish(member)
            self._publish(member)
        member.running = True
        member.application_name = member.node.cluster_name
        member.sync_names = None  # read again from the node at the next watch
        self._route(member)
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
        for forwarder in (member.writer_forwarder, member.reader_forwarder):
            if forwarder is not None:
                forwarder.close()
        with member.lock:
            _close_quietly(member)
            for inst in list(member.instances.values()):
                inst.deleted = True
                with inst.lock:
                    inst.node.destroy()
                    inst.running = False
            member.node.destroy()
            member.running = False
            base = member.base_dir or member.node.data_dir.parent
            shutil.rmtree(base, ignore_errors=True)
            with contextlib.suppress(OSError):
                base.parent.rmdir()  # the cluster's folder, when empty

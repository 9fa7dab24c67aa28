"""Aurora DB instances as nodes (a Fleet part): each reader instance is a streaming hot standby of its cluster's head
node in the same region; the cluster endpoint leads to the head, the reader endpoint to the readers in turn.

- **Head.** The first instance created takes the node the cluster started with (the writer of a primary, or in a
  secondary the node that replicates from the global writer); every other instance gets a node of its own, a copy
  of the head (pg_basebackup) that streams from it. A secondary's readers thus cascade from its head, which keeps
  the global operations as they were: promoting the head promotes the cluster, and its readers follow.
- **Synchronous quorum.** The writer's ``synchronous_standby_names`` is ``ANY 1 (<readers streaming from it>)``, kept
  by the watch (every SAMPLE_INTERVAL_S): a commit is acknowledged once one reader has its WAL, as Aurora
  acknowledges once its shared storage has it. A reader that stops streaming leaves the quorum at the next watch
  (commits wait meanwhile, at most one interval); with no reader streaming the quorum is empty.
- **Watch.** A dead head is handed to the failover (failover.py); a dead reader is restarted; a reader that does not
  stream for RESYNC_AFTER_S while its head runs is resynchronised (pg_rewind, or a fresh copy).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from typing import Any

from sandbox import runtime
from sandbox.postgres import HOST, PostgresError
from sandbox.services.rds.nodes import (
    INTERNAL_SUPERUSER,
    RESYNC_AFTER_S,
    RETRY_AFTER_S,
    STREAMING_WAIT_S,
    AuroraNode,
    Instance,
    Member,
    _port_free,
    _query,
    follow_node,
    log,
    set_sync_names,
    wait_node_streaming,
)


class ClusterInstances:
    """The DB instances of each cluster on their own nodes: readers, endpoints, quorum, failover, reboot."""

    # -- instances from the API --------------------------------------------------------------------

    def instance_added(self, member: Member, record: Any) -> Instance:
        """CreateDBInstance: the first instance takes the cluster's head node, every other one a reader of its own."""
        iid = record.db_instance_identifier
        endpoint = (record.address, int(record.port))
        with self._lock:
            if member.head_id is None:
                inst = Instance(instance_id=iid, record=record, node=member.node, endpoint=endpoint)
                inst.running = member.running
                member.head_id = iid
            else:
                assert member.base_dir is not None
                node = AuroraNode(
                    data_dir=member.base_dir / "instances" / iid / "pgdata", port=runtime.free_port(),
                    password=self._password, superuser=INTERNAL_SUPERUSER, fast=True, cluster_name=iid,
                    ldap_port=member.node.ldap_port, iam_realm=member.node.iam_realm,
                )  # fmt: skip
                inst = Instance(instance_id=iid, record=record, node=node, endpoint=endpoint)
            member.instances[iid] = inst
        self.rt.publish(endpoint[0], endpoint[1], inst.node.port)
        if inst.instance_id == member.head_id:
            inst.status = "available" if member.status == "available" else "creating"
        else:
            self.kick_instance(member, inst)
        return inst

    def instance_removed(self, member: Member, iid: str) -> None:
        """DeleteDBInstance: a reader's node goes; deleting the writer fails over to a reader first, as on Aurora."""
        with self._lock:
            inst = member.instances.get(iid)
            if inst is None:
                return
            inst.status = "deleting"
        self.rt.unpublish(*inst.endpoint)
        threading.Thread(
            target=self._remove_instance, args=(member, inst), name=f"aurora-delete-{iid}", daemon=True
        ).start()

    def _remove_instance(self, member: Member, inst: Instance) -> None:
        with member.lock:
            if inst.instance_id == member.head_id:
                target = next((r for r in member.readers() if self._promotable(r, strict=False)), None)
                if target is None or member.deleted:
                    # The cluster keeps its node (the cluster endpoint still serves) until it is deleted itself.
                    with self._lock:
                        member.head_id = None
                        member.instances.pop(inst.instance_id, None)
                    inst.deleted = True
                    return
                self._fail_over(member, inst, target, clean=True)
            with self._lock:
                inst.deleted = True
                member.instances.pop(inst.instance_id, None)
            with inst.lock:
                inst.node.destroy()
                inst.running = False
                inst.node.ready_marker.unlink(missing_ok=True)
                if inst.node.data_dir.parent != member.base_dir:  # the cluster's first node lives in base_dir itself
                    shutil.rmtree(inst.node.data_dir.parent, ignore_errors=True)
        self._route(member)

    def instance_status(self, record: Any) -> str | None:
        """What DescribeDBInstances shows for an instance of a live cluster (None: not one of the engine's)."""
        cluster = record.backend.clusters.get(record.db_cluster_identifier)
        member = self.member_of(cluster) if cluster is not None else None
        inst = member.instances.get(record.db_instance_identifier) if member is not None else None
        if inst is None:
            return None
        if inst.instance_id == member.head_id and inst.status == "available":
            return "creating" if member.status == "creating" else "available"
        return inst.status

    def is_cluster_writer(self, member: Member, iid: str) -> bool:
        return iid == member.head_id and self.is_writer(member)

    # -- readers -----------------------------------------------------------------------------------

    def kick_instance(self, member: Member, inst: Instance) -> None:
        """Bring a reader to what it should be, on a thread of its own (coalesces concurrent kicks)."""
        with self._lock:
            if inst.deleted or member.deleted or inst.instance_id == member.head_id:
                return
            if inst.reconciling:
                inst.again = True
                return
            inst.reconciling = True
        threading.Thread(
            target=self._instance_loop, args=(member, inst), name=f"aurora-{inst.instance_id}", daemon=True
        ).start()

    def _instance_loop(self, member: Member, inst: Instance) -> None:
        while True:
            try:
                self._ensure_reader(member, inst)
                inst.failed_at = None
            except Exception as exc:  # retried by the watch after RETRY_AFTER_S
                inst.failed_at = time.monotonic()
                inst.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if not inst.deleted:
                    log.warning("aurora %s/%s: %s (will retry)", member.cluster_id, inst.instance_id, exc)
            with self._lock:
                if not inst.again or inst.deleted:
                    inst.reconciling = False
                    return
                inst.again = False

    def _ensure_reader(self, member: Member, inst: Instance) -> None:
        with inst.lock:
            if inst.deleted or member.deleted or inst.instance_id == member.head_id or member.failing_over:
                return
            node, head = inst.node, member.node
            if not self.may_run(member.region):
                self._stop_instance(inst, "immediate")
                return
            head_up = member.running and member.bootstrapped and head.postmaster_pid() is not None
            if not node.ready_marker.exists():
                if not head_up:
                    return  # kicked again when the head is up
                self._clone(inst, member)
            if inst.needs_rewind:
                self._stop_instance(inst, "fast")
                if not head_up:
                    return
                self._resync(inst, member)
            if not inst.running:
                self._start_instance(inst)
            if not node.is_in_recovery():
                # Never two writers in a cluster: rewound onto the head before it serves again.
                inst.needs_rewind = True
                self._stop_instance(inst, "immediate")
                raise PostgresError(f"{inst.instance_id} ran as a primary while {member.head_id} is the writer")
            if head_up:
                follow_node(node, head, inst.instance_id)
                if wait_node_streaming(node, STREAMING_WAIT_S):
                    inst.last_streaming_at = time.monotonic()
            inst.status = "available"
        self._route(member)

    def _clone(self, inst: Instance, member: Member) -> None:
        shutil.rmtree(inst.node.data_dir, ignore_errors=True)
        inst.node.ready_marker.unlink(missing_ok=True)
        inst.node.data_dir.parent.mkdir(parents=True, exist_ok=True)
        member.node.create_standby(inst.node.data_dir, inst.node.port, start=False)
        inst.node.ready_marker.touch()
        inst.needs_rewind = False

    def _resync(self, inst: Instance, member: Member) -> None:
        """pg_rewind onto the head (an old writer, or a reader of a rewound head); a fresh copy when that fails."""
        try:
            inst.node.rewind_from(member.node, start=False)
        except PostgresError as exc:
            log.warning("aurora %s: pg_rewind failed, copying the head again: %s", inst.instance_id, exc)
            self._clone(inst, member)
        inst.needs_rewind = False

    def _start_instance(self, inst: Instance) -> None:
        if inst.node.postmaster_pid() is not None and inst.node.running:
            inst.running = True
            return
        try:
            inst.node.start()
        except PostgresError:
            if _port_free(inst.node.port):
                raise
            inst.node.port = runtime.free_port()
            log.warning("aurora %s: its port was taken, now on %d", inst.instance_id, inst.node.port)
            inst.node.start()
            self.rt.publish(inst.endpoint[0], inst.endpoint[1], inst.node.port)
        inst.running = True

    def _stop_instance(self, inst: Instance, mode: str) -> None:
        if inst.running or inst.node.postmaster_pid() is not None:
            with contextlib.suppress(PostgresError):
                inst.node.stop(mode)
        inst.running = inst.streaming = inst.in_sync = False

    def _promotable(self, inst: Instance, *, strict: bool) -> bool:
        """A failover target: a running, available reader (strict: in the writer's quorum at the last watch)."""
        alive = inst.running and inst.node.postmaster_pid() is not None
        return alive and inst.status == "available" and not inst.needs_rewind and (inst.in_sync or not strict)

    # -- endpoints ---------------------------------------------------------------------------------

    def _route(self, member: Member) -> None:
        """The cluster endpoint leads to the head; the reader endpoint to the available readers, else the head."""
        head = (HOST, member.node.port)
        readers = [
            (HOST, r.node.port)
            for r in member.readers()
            if r.running and r.status == "available" and not r.needs_rewind
        ]
        if not self.is_writer(member):
            readers.insert(0, head)  # a secondary's head is a reader too
        if member.writer_forwarder is not None:
            member.writer_forwarder.retarget(head)
        if member.reader_forwarder is not None:
            member.reader_forwarder.retarget(readers or [head])

    # -- the watch: crashes, streaming, quorum -----------------------------------------------------

    def watch_all(self) -> None:
        """The sampler's tick for every cluster: dead nodes, stuck readers, the writer's synchronous quorum."""
        for member in self.members():
            glob = self.global_of(member)
            busy = member.failing_over or member.reconciling or (glob is not None and glob.failover_state is not None)
            if member.deleted or busy or not self.may_run(member.region):
                continue
            with self._sample_lock:
                # Only a cluster nobody is working on (starting, stopping, rebooting its nodes) is judged.
                if not member.lock.acquire(blocking=False):
                    continue
                try:
                    self._watch(member)
                except Exception:
                    log.exception("aurora %s: watch failed", member.cluster_id)
                finally:
                    member.lock.release()

    def _watch(self, member: Member) -> None:
        if member.running and member.node.postmaster_pid() is None:
            self.head_died(member)
            return
        now = time.monotonic()
        for inst in member.readers():
            if inst.reconciling:
                continue  # its own thread is at it
            if inst.running and inst.node.postmaster_pid() is None:
                log.warning("aurora %s: the node of reader %s died: restarting it", member.cluster_id, inst.instance_id)
                inst.running = inst.streaming = inst.in_sync = False
                inst.status = "rebooting"
                self._route(member)
                self.kick_instance(member, inst)
            elif inst.failed_at is not None and now - inst.failed_at >= RETRY_AFTER_S:
                inst.failed_at = None
                self.kick_instance(member, inst)
            elif not inst.running and not inst.reconciling and member.running:
                self.kick_instance(member, inst)
        if member.running:
            self._sample_readers(member)
            self._resync_stuck_head(member)

    def _resync_stuck_head(self, member: Member) -> None:
        """A secondary's head that has not streamed for RESYNC_AFTER_S while the writer runs holds WAL the writer's
        history does not have (it received more than the reader promoted after a crash): rewound onto the writer."""
        glob = self.global_of(member)
        writer = self.writer_of(glob) if glob is not None else None
        if writer is None or writer is member or not writer.running or member.needs_rewind or member.sample.streaming:
            return
        since = member.last_connected_at
        if member.status == "available" and since is not None and time.time() - since > RESYNC_AFTER_S:
            log.warning("aurora %s: does not stream from %s: resynchronising", member.cluster_id, writer.cluster_id)
            member.needs_rewind = True
            member.last_connected_at = time.time()
            self.kick(member)

    def _sample_readers(self, member: Member) -> None:
        """Which readers stream from the head; on a writer, its quorum set to them; stuck readers resynchronised."""
        readers = {r.node.cluster_name: r for r in member.readers()}
        if not readers and not member.sync_names:
            return
        rows = _query(member, "SELECT application_name, state, sync_state FROM pg_stat_replication")
        if rows is None:
            return
        states = {name: (state, sync) for name, state, sync in rows}
        now = time.monotonic()
        for name, inst in readers.items():
            state, sync = states.get(name, (None, None))
            inst.streaming = state == "streaming"
            inst.in_sync = inst.streaming and sync in ("quorum", "sync")
            if inst.streaming or not inst.running:
                inst.last_streaming_at = now
            elif now - inst.last_streaming_at > RESYNC_AFTER_S and not inst.reconciling:
                log.warning(
                    "aurora %s: reader %s does not stream: resynchronising", member.cluster_id, inst.instance_id
                )
                inst.needs_rewind = True
                inst.last_streaming_at = now
                self.kick_instance(member, inst)
        if self.is_writer(member):
            self._set_quorum(member, sorted(n for n, inst in readers.items() if inst.streaming))

    def _set_quorum(self, member: Member, names: list[str]) -> None:
        wanted = "ANY 1 ({})".format(", ".join('"{}"'.format(n.replace('"', '""')) for n in names)) if names else ""
        if member.sync_names is None:
            rows = _query(member, "SELECT current_setting('synchronous_standby_names')")
            member.sync_names = rows[0][0] if rows else None
        if wanted != member.sync_names:
            set_sync_names(member.node, wanted)
            member.sync_names = wanted
            log.info("aurora %s: synchronous quorum %r", member.cluster_id, wanted or "(none)")

    def refresh_quorum(self, member: Member) -> None:
        with self._sample_lock, contextlib.suppress(Exception):
            self._sample_readers(member)

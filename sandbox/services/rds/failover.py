"""Failover within an Aurora cluster, reboots and the crash fault (a Fleet part; the nodes: instances.py).

- **Crash.** The watch (instances.py) sees a head whose postmaster died: a writer with a reader in its synchronous
  quorum fails over to one, otherwise its node is restarted in place (as Aurora recreates an instance that has no
  replica to fail over to).
- **Target.** The reader of the lowest promotion tier; within a tier, the one that received the most WAL (Aurora
  says "arbitrary"). A crash promotes only a reader that was in the quorum at the last watch, and first lets it
  stream from a reader that received more WAL than it (ANY 1 puts each acknowledged commit on one reader only).
- **Failover** (the crash, FailoverDBCluster, deleting the writer instance): RDS-EVENT-0072 (same AZ) or 0073, the
  target promoted (after the writer's clean shutdown when it still runs, so nothing it acknowledged is lost; killed
  first otherwise, so it never takes a write again), the cluster endpoint and the global writer endpoint follow,
  RDS-EVENT-0071; the old writer comes back as a reader (pg_rewind) at once. RDS-EVENT-0069 when it fails.
- **RebootDBInstance**: a reader restarts alone; the writer restarts with its readers and keeps its role (no failover
  on Aurora). ForceFailover is refused, as for any instance that is not Multi-AZ.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from sandbox import runtime
from sandbox.postgres import PostgresError
from sandbox.services.rds.nodes import (
    CATCH_UP_TIMEOUT_S,
    AuroraError,
    Instance,
    Member,
    _close_quietly,
    follow_node,
    log,
    lsn_value,
    set_sync_names,
    wait_node_replay,
)


class ClusterFailover:
    """In-region failover, RebootDBInstance and the crash-db-instance fault (a Fleet part)."""

    # -- failover within a cluster -----------------------------------------------------------------

    def head_died(self, member: Member) -> None:
        """The head's postmaster is gone: fail over to a reader in the quorum, else restart it in place."""
        head = member.instances.get(member.head_id) if member.head_id else None
        target = self._choose_target(member, strict=True) if self.is_writer(member) else None
        log.warning(
            "aurora %s: the node of %s died: %s", member.cluster_id, member.head_id or "the cluster",
            f"failing over to {target.instance_id}" if target else "restarting it in place",
        )  # fmt: skip
        if head is None or target is None:
            # No reader to promote (or a secondary's head): restarted in place, as Aurora recreates the instance.
            if head is not None:
                head.status = "rebooting"
            member.running = False
            _close_quietly(member)
            self.kick(member)
            return
        self._start_failover(member, target, clean=False)

    def failover_cluster(self, member: Member, target_id: str | None) -> None:
        """FailoverDBCluster: checks as AWS, then fail over on a thread (the cluster shows failing-over)."""
        if member.failing_over or member.status != "available" or not member.running:
            raise AuroraError(
                "InvalidDBClusterStateFault",
                f"DB cluster {member.cluster_id} is not available (status {member.status}): wait until it is available",
            )
        if not self.is_writer(member):
            raise AuroraError(
                "InvalidDBClusterStateFault",
                f"DB cluster {member.cluster_id} is a secondary cluster of a global database and has no writer instance"
                " to fail over: use FailoverGlobalCluster or SwitchoverGlobalCluster",
            )
        if len(member.instances) < 2:
            raise AuroraError(
                "InvalidDBClusterStateFault",
                f"DB cluster {member.cluster_id} should have at least two database instances for failover",
            )
        if target_id is None:
            target = self._choose_target(member, strict=False)
            if target is None:
                raise AuroraError(
                    "InvalidDBClusterStateFault",
                    f"DB cluster {member.cluster_id} has no available reader instance to fail over to",
                )
        else:
            target = member.instances.get(target_id)
            if target is None:
                raise AuroraError("InvalidParameterValue", f"Cannot find target instance: {target_id}")
            if target.instance_id == member.head_id or not self._promotable(target, strict=False):
                raise AuroraError(
                    "InvalidDBInstanceState",
                    f"DB instance {target_id} is {'the writer' if target.instance_id == member.head_id else target.status}:"
                    " the target must be an available reader instance of the cluster",
                )
        self._start_failover(member, target, clean=True)

    def _choose_target(self, member: Member, *, strict: bool) -> Instance | None:
        """Promotion tier first; within a tier the reader that received the most WAL."""
        candidates = [r for r in member.readers() if self._promotable(r, strict=strict)]
        if not candidates:
            return None

        best_tier = min(r.tier for r in candidates)
        return max((r for r in candidates if r.tier == best_tier), key=_received)

    def _catch_up_from_peers(self, member: Member, target: Instance) -> None:
        """With several readers, the quorum (ANY 1) guarantees each acknowledged commit on one of them only: the
        target first streams from the reader that received the most WAL (cascading) until it has all of it."""

        peers = [r for r in member.readers() if r is not target and r.running and r.node.postmaster_pid()]
        best = max(peers, key=_received, default=None)
        if best is None or _received(best) <= _received(target):
            return
        lsn = best.node.execute("SELECT pg_last_wal_receive_lsn()::text")[0][0]
        log.info(
            "aurora %s: %s catches up from %s (up to %s)", member.cluster_id, target.instance_id, best.instance_id, lsn
        )
        follow_node(target.node, best.node, target.instance_id)
        wait_node_replay(target.node, lsn, CATCH_UP_TIMEOUT_S, strictly_after=False, name=target.instance_id)

    def _start_failover(self, member: Member, target: Instance, *, clean: bool) -> None:
        with self._lock:
            if member.failing_over:
                return
            member.failing_over = True
        member.status = "failing-over"
        threading.Thread(
            target=self._failover_thread, args=(member, target, clean), name=f"aurora-failover-{member.cluster_id}",
            daemon=True,
        ).start()  # fmt: skip

    def _failover_thread(self, member: Member, target: Instance, clean: bool) -> None:
        old = member.instances.get(member.head_id) if member.head_id else None
        try:
            with member.lock:
                if old is None:
                    raise PostgresError(f"cluster {member.cluster_id} has no writer instance")
                self._fail_over(member, old, target, clean=clean)
        except Exception as exc:
            log.warning("aurora %s: failover to %s failed: %s", member.cluster_id, target.instance_id, exc)
            self._event(member, "RDS-EVENT-0069", source=member)
        finally:
            member.failing_over = False
            member.status = "available"
            self.kick(member)
            for reader in member.readers():
                self.kick_instance(member, reader)
            glob = self.global_of(member)
            for other in self.members_of(glob) if glob is not None else []:
                if other is not member:
                    self.kick(other)  # a secondary follows the new writer

    def _fail_over(self, member: Member, old: Instance, target: Instance, *, clean: bool) -> None:
        """Promote target in old's place (member.lock held): the events, the swap, the endpoints."""
        same_az = old.availability_zone is not None and old.availability_zone == target.availability_zone
        started = "RDS-EVENT-0072" if same_az else "RDS-EVENT-0073"
        self._event(member, started, source=member, instance=target.instance_id)
        writer = self.is_writer(member)
        if clean and member.node.postmaster_pid() is not None:
            # A planned failover loses nothing: a clean shutdown sends the writer's last WAL to its readers first.
            self._stop_node(member, "fast")
            _state, end_lsn = member.node.checkpoint_lsn()
            wait_node_replay(target.node, end_lsn, CATCH_UP_TIMEOUT_S, strictly_after=True)
        else:
            member.node.kill()  # fenced: the old writer never takes a write again
            self._stop_node(member, "immediate")
            self._catch_up_from_peers(member, target)
        with target.lock:
            if writer:
                target.node.promote()
            with self._lock:
                member.node, member.head_id = target.node, target.instance_id
            member.running = True
            member.application_name = target.node.cluster_name
            target.status = "available"
        _close_quietly(member)
        old.running = old.streaming = old.in_sync = False
        old.needs_rewind, old.status = True, "rebooting"
        member.sync_names = None
        if writer:
            # The promoted copy names the old writer's readers in its quorum: none of them follows it yet.
            set_sync_names(member.node, "")
            member.sync_names = ""
            with contextlib.suppress(Exception):
                member.record.failover(target.record)
        self._route(member)
        glob = self.global_of(member)
        if glob is not None:
            self._retarget(glob)
        self._event(member, "RDS-EVENT-0071", source=member, instance=target.instance_id)
        log.info("aurora %s: failed over from %s to %s", member.cluster_id, old.instance_id, target.instance_id)

    # -- reboot and crash --------------------------------------------------------------------------

    def reboot_instance(self, member: Member, iid: str) -> None:
        """RebootDBInstance: the writer restarts with its readers (no failover on Aurora); a reader alone."""
        inst = member.instances.get(iid)
        if inst is None:
            raise AuroraError("DBInstanceNotFound", f"DBInstance {iid} not found.")
        if member.failing_over or self.instance_status(inst.record) != "available":
            raise AuroraError(
                "InvalidDBInstanceState",
                f"DB instance {iid} is not available (status {self.instance_status(inst.record)}):"
                " wait until it is available",
            )
        is_head = iid == member.head_id
        for each in [inst, *(member.readers() if is_head else [])]:
            each.status = "rebooting"
        threading.Thread(
            target=self._reboot, args=(member, inst, is_head), name=f"aurora-reboot-{iid}", daemon=True
        ).start()

    def _reboot(self, member: Member, inst: Instance, is_head: bool) -> None:
        try:
            if is_head:
                with member.lock:
                    readers = member.readers()
                    if self.is_writer(member) and member.sync_names:
                        set_sync_names(member.node, "")  # it comes back before its readers do
                        member.sync_names = ""
                    for reader in readers:
                        with reader.lock:
                            self._stop_instance(reader, "fast")
                    self._stop_node(member, "fast")
                    self._start_node(member)
                    inst.status = "available"
                for reader in readers:
                    self.kick_instance(member, reader)
            else:
                with inst.lock:
                    inst.streaming = inst.in_sync = False
                    self._stop_instance(inst, "fast")
                self.refresh_quorum(member)
                self.kick_instance(member, inst)
        except Exception as exc:
            log.warning("aurora %s: reboot of %s failed: %s", member.cluster_id, inst.instance_id, exc)
            inst.failed_at = time.monotonic()
            self.kick(member)
        self._route(member)

    def crash_instance(self, region: str, iid: str | None) -> dict[str, Any]:
        """The crash-db-instance fault: SIGKILL an instance's PostgreSQL (default: the head of the region's cluster)."""
        member, inst = self._find_instance(region, iid)
        role = "writer" if self.is_cluster_writer(member, inst.instance_id) else "reader"
        pids = inst.node.kill()
        if not pids:
            raise runtime.ControlError(
                409, f"DB instance {inst.instance_id} has no running PostgreSQL to crash (status {inst.status})"
            )
        if role == "reader":
            self.refresh_quorum(member)  # the writer's commits wait for it no longer than needed
        return {
            "region": region,
            "cluster": member.cluster_id,
            "instance": inst.instance_id,
            "role": role,
            "killed_pids": pids,
        }

    def _find_instance(self, region: str, iid: str | None) -> tuple[Member, Instance]:
        members = [m for m in self.members() if m.region == region and not m.deleted]
        if iid is not None:
            for member in members:
                if iid in member.instances:
                    return member, member.instances[iid]
            known = sorted(i for m in members for i in m.instances)
            raise runtime.ControlError(
                404, f"no DB instance {iid!r} of an aurora-postgresql cluster in {region}; its instances: {known}"
            )
        heads = [m for m in members if m.head_id is not None]
        writers = [m for m in heads if self.is_writer(m)] or heads
        if len(writers) != 1:
            names = sorted(m.cluster_id for m in writers)
            raise runtime.ControlError(
                409 if writers else 404,
                f"{len(writers)} aurora-postgresql clusters with instances in {region} ({names}): name the instance"
                " to crash, e.g. instance=<DBInstanceIdentifier>",
            )
        member = writers[0]
        return member, member.instances[member.head_id]  # type: ignore[index]


def _received(inst: Instance) -> int:
    """How much WAL a reader has received (-1 when it does not answer)."""
    with contextlib.suppress(Exception):
        return lsn_value(inst.node.execute("SELECT pg_last_wal_receive_lsn()::text")[0][0])
    return -1

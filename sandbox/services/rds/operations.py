"""Aurora global operations: switchover (no data loss), failover (fence, promote, rejoin with pg_rewind)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox.postgres import PostgresError
from sandbox.services.rds.nodes import (
    CATCH_UP_TIMEOUT_S,
    ENGINE,
    REJOIN_WAIT_S,
    AuroraError,
    Global,
    Member,
    _operation_name,
    _wait_replay,
    log,
    set_sync_names,
)


class GlobalOperations:
    """SwitchoverGlobalCluster and FailoverGlobalCluster on real nodes (a Fleet part)."""

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
            # Its copy of the old primary's settings names the old primary's readers in its synchronous quorum:
            # none follows it yet (the watch adds its own readers as they stream).
            set_sync_names(target.node, "")
            target.sync_names = ""
        writer.record.is_writer = False
        target.record.is_writer = True
        self._retarget(glob)
        self._route(target)
        self._route(writer)

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

"""Aurora replication facts: sampled from the real nodes, reported as RDS and CloudWatch report them."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from sandbox.services.rds.nodes import (
    METRIC_INTERVAL_S,
    RETRY_AFTER_S,
    Global,
    Member,
    Sample,
    _query,
    log,
)


class ReplicationFacts:
    """Replication lag, synchronisation status and metrics from the nodes; the description (a Fleet part)."""

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
        self.watch_all()
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

    # -- description -------------------------------------------------------------------------------

    def _describe_instance(self, member: Member, inst: Any, memory: bool) -> dict[str, Any]:
        head = inst.instance_id == member.head_id
        entry = {
            "DBInstanceIdentifier": inst.instance_id,
            "Role": ("writer" if self.is_writer(member) else "replica") if head else "reader",
            "Status": self.instance_status(inst.record),
            "NodeRunning": member.running if head else inst.running,
            "LocalPort": inst.node.port,
            "PromotionTier": inst.tier,
            "Streaming": None if head else inst.streaming,
            "InSyncQuorum": None if head else inst.in_sync,
            "NeedsRewind": inst.needs_rewind,
            "LastError": inst.last_error,
        }
        if memory:
            entry["MemoryKB"] = inst.node.memory_kb()
        return entry

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
            entry["Instances"] = [
                self._describe_instance(member, inst, memory) for inst in list(member.instances.values())
            ]
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

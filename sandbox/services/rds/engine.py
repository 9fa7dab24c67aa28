"""Live Aurora PostgreSQL: each DB instance a real PostgreSQL node, each global database real streaming replication.

The engine behind sandbox/services/rds/provider.py (which patches moto's RDS API onto it):

- **Members.** Every aurora-postgresql DB cluster is one :class:`Member`. It starts with one PostgreSQL node, its
  head (sandbox/postgres.py, ``fast=True``: no fsync, synchronous_commit on); the first DB instance created takes
  that node, every other instance is a node of its own, a streaming hot standby of the head (instances.py). The
  head is the writer when the cluster is standalone or the writer (``IsWriter``) of its global cluster, otherwise
  a streaming hot standby of that writer. The cluster's ``Endpoint`` and ``ReaderEndpoint`` lead to two forwarders
  (fixed local ports for the cluster's life): the head, and the readers in turn; each instance's endpoint to its
  node. A crashed writer fails over to a reader; FailoverDBCluster and RebootDBInstance act on the nodes
  (failover.py).
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

import collections
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox import runtime
from sandbox.postgres import HOST, PostgresError, _check_traversable, make_base_dir, server_user
from sandbox.services.rds.failover import ClusterFailover
from sandbox.services.rds.iam_auth import IamAuthentication
from sandbox.services.rds.instances import ClusterInstances
from sandbox.services.rds.nodes import (
    ENGINE,
    EVENT_CATEGORIES,
    EVENT_MESSAGES,
    GLOBAL_ENDPOINT_PORT,
    INTERNAL_SUPERUSER,
    RECENT_EVENTS,
    SAMPLE_INTERVAL_S,
    AuroraError,
    AuroraNode,
    Forwarder,
    Global,
    Member,
    _operation_name,
    _stop_postmasters_under,
    log,
)
from sandbox.services.rds.operations import GlobalOperations
from sandbox.services.rds.reconcile import NodeLifecycle
from sandbox.services.rds.sampling import ReplicationFacts

# What the provider (provider.py) uses of the engine.
__all__ = ["ENGINE", "SAMPLE_INTERVAL_S", "AuroraError", "Fleet", "Member"]


class Fleet(NodeLifecycle, ClusterInstances, ClusterFailover, GlobalOperations, ReplicationFacts, IamAuthentication):
    """Every live Aurora cluster and global cluster of this sandbox process."""

    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        self._lock = threading.RLock()
        self._members: dict[tuple[str, str, str], Member] = {}
        self._globals: dict[tuple[str, str], Global] = {}
        self._db_stopped: set[str] = set()
        self._shut = False  # the sandbox is shutting down: no node starts again
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
        return not self._shut and not self.rt.is_dark(region) and region not in self._db_stopped

    # -- lifecycle hooks from the API ------------------------------------------------------------

    def cluster_created(self, record: Any, password: str | None) -> Member:
        """A new aurora-postgresql cluster: register it, publish its endpoints, provision it in the background."""
        account, region, cluster_id = self.key(record)
        base_dir = self.root / region / cluster_id / record.db_cluster_resource_id.lower()
        base_dir.mkdir(parents=True, exist_ok=True)
        base_dir = base_dir.resolve()  # as the nodes see their folders (the data root may be a symlink)
        data_dir = base_dir / "pgdata"
        node = AuroraNode(
            data_dir=data_dir, port=runtime.free_port(), password=self._password, superuser=INTERNAL_SUPERUSER,
            fast=True, cluster_name=cluster_id, ldap_port=self.iam_verifier_port(),
            iam_realm=record.db_cluster_resource_id,
        )  # fmt: skip
        member = Member(
            record=record, account=account, region=region, cluster_id=cluster_id, node=node,
            master_username=record.master_username, database_name=record.database_name, password_to_set=password,
            base_dir=base_dir, writer_forwarder=Forwarder(self.rt), reader_forwarder=Forwarder(self.rt),
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
            for reader in member.readers():
                with reader.lock:
                    self._stop_instance(reader, "immediate")
            self._stop_node(member, "immediate")

    # -- names -------------------------------------------------------------------------------------

    def _publish(self, member: Member) -> None:
        """The cluster endpoint and reader endpoint lead to the cluster's forwarders, each instance's to its node."""
        record = member.record
        names = [(record.endpoint, int(record.port), member.writer_forwarder),
                 (record.reader_endpoint, int(record.port), member.reader_forwarder)]  # fmt: skip
        for name, port, forwarder in names:
            self.rt.publish(name, port, forwarder.port if forwarder is not None else member.node.port)
            member.published.append((name, port))
        for inst in list(member.instances.values()):
            self.rt.publish(*inst.endpoint, inst.node.port)
        self._route(member)

    def _unpublish(self, member: Member) -> None:
        for name, port in member.published:
            self.rt.unpublish(name, port)
        member.published.clear()

    def _retarget(self, glob: Global) -> None:
        writer = self.writer_of(glob)
        glob.forwarder.retarget((HOST, writer.node.port) if writer is not None else None)

    # -- events ------------------------------------------------------------------------------------

    def _event(
        self, member: Member, event_id: str, *, source: Member, target: Member | None = None, instance: str = ""
    ) -> None:
        target = target or member
        message = EVENT_MESSAGES[event_id].format(
            target=target.cluster_id, target_region=target.region, source=source.cluster_id,
            source_region=source.region, instance=instance,
        )  # fmt: skip
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

    # -- teardown ----------------------------------------------------------------------------------

    def stop_all(self, *, delete: bool) -> None:
        """Reset (delete=True: nodes and data gone) or shutdown (nodes stopped)."""
        with self._lock:
            self._shut = not delete  # a reconcile or rejoin still under way must not start a node afterwards
            members = list(self._members.values())
            globs = list(self._globals.values())
            if delete:
                self._members.clear()
                self._globals.clear()
                self._db_stopped.clear()
                self._events.clear()
        for member in members:
            for forwarder in (member.writer_forwarder, member.reader_forwarder):
                if forwarder is not None:
                    forwarder.close()
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
            self.close_iam_verifier()
            with self._lock:
                # Nothing outlives the server process (moto forgets every cluster): a data folder outside the
                # state folder would only pile up in the system temp folder.
                if self._root is not None and self._root.is_symlink():
                    self._forget_data()
                    self._root = None

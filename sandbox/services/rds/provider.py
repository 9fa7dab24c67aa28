"""Aurora PostgreSQL runs for real: every DB instance of an aurora-postgresql cluster is a PostgreSQL server, every
global database streams from its writer, and global switchover / failover act on the servers (engine: sandbox/services/rds/engine.py).

What plain moto only records, and what AWS does instead:

- **CreateDBCluster** (engine aurora-postgresql) starts a PostgreSQL node. Status is ``creating`` until it accepts
  connections, then ``available``. MasterUsername / MasterUserPassword become a login role with CREATEDB and
  CREATEROLE, member of ``rds_superuser`` (as on Aurora: not a true superuser), owner of DatabaseName (created when
  given). ``Endpoint``, ``ReaderEndpoint`` (and the endpoints of its DB instances) are published in the runtime's
  name map on the cluster's ``Port``, on a local port fixed for the cluster's life. moto silently replaced a
  cluster of the same identifier; here that is ``DBClusterAlreadyExistsFault``. An unknown GlobalClusterIdentifier
  is ``GlobalClusterNotFoundFault`` (moto ignored it), and the first cluster of an empty global cluster needs the
  master credentials.
- **A secondary** (CreateDBCluster with the GlobalClusterIdentifier of a global cluster that has a writer) is a
  streaming hot standby of the writer's node (pg_basebackup): it refuses writes (SQLSTATE 25006) and has no master
  password of its own (ModifyDBCluster MasterUserPassword on it is ``InvalidDBClusterStateFault``).
- **ModifyDBCluster** MasterUserPassword changes the real password; a new identifier or port republishes the names.
- **DeleteDBCluster** stops the node, deletes its data and unpublishes its names (status ``deleting``).
- **DB instances** are nodes (engine: instances.py, failover.py). The first instance of a cluster takes the node the
  cluster started with; every other one is a PostgreSQL server of its own, a streaming hot standby of that head in
  the same region (in a secondary, cascading from the head that replicates from the global writer). The cluster
  ``Endpoint`` leads to the writer, the ``ReaderEndpoint`` to the available readers in turn (to the writer when
  there is none), each instance's endpoint to its own node. ``DBClusterMembers`` shows ``IsClusterWriter`` for
  the instance whose node takes writes (none in a secondary); DescribeDBInstances shows ``creating``,
  ``available``, ``rebooting`` or ``deleting`` as the node is. A writer acknowledges a commit once one streaming
  reader has it (``synchronous_standby_names = ANY 1 (...)``), as Aurora's shared storage does.
- **A crashed writer** (its PostgreSQL process dies, e.g. the ``crash-db-instance`` fault) fails over by itself
  within a few seconds to the reader of the lowest promotion tier that was in the writer's quorum (ties: the one
  that received the most WAL): RDS-EVENT-0072 (same AZ) or 0073, the cluster endpoint and the global writer
  endpoint follow, RDS-EVENT-0071; the old writer comes back as a reader (pg_rewind). With no such reader the
  writer is restarted in place. No acknowledged commit is lost either way.
- **FailoverDBCluster** (optional TargetDBInstanceIdentifier): Status ``failing-over``, then ``available``; the
  writer is shut down cleanly first, then the target promoted (no acknowledged write lost); the same events.
  Refused on a secondary cluster of a global database, with fewer than two instances, or for a target that is the
  writer or not available (InvalidDBInstanceState), as the API reference lists.
- **RebootDBInstance**: a reader restarts alone; the writer restarts together with its readers and stays the writer
  (Aurora does not fail over on a reboot). ``ForceFailover=true`` is ``InvalidParameterCombination``: the API
  allows it only for Multi-AZ DB instances, which Aurora instances are not.
- **Global clusters.** ``Endpoint`` (``<id>.global-<random>.global.rds.amazonaws.com``) is published on port 5432 to a
  forwarder that always leads to the current writer and drops its connections when the writer moves. Members show
  ``SynchronizationStatus`` from real replication (``connected`` while the standby streams from the writer,
  ``pending-resync`` otherwise and while an old primary waits for pg_rewind).
- **SwitchoverGlobalCluster** (and FailoverGlobalCluster without AllowDataLoss, or with Switchover): asynchronous,
  ``FailoverState`` pending -> switching-over while it runs. Waits for the target to catch up, shuts the old primary
  down cleanly (its last WAL reaches the standby), promotes the target once it has replayed all of it, moves
  ``IsWriter`` and the global endpoint, and turns the old primary into a standby (pg_rewind): no acknowledged write
  is lost. Refused (``InvalidGlobalClusterStateFault``) unless every member is connected. While an operation runs,
  the global cluster's Status is switching-over / failing-over and both clusters' Status is failing-over.
- **FailoverGlobalCluster AllowDataLoss=true**: ``FailoverState`` failing-over; fences the old primary (stopped at
  once; it never takes a write again), promotes the target at once. The old primary shows ``pending-resync`` and
  rejoins as a standby via pg_rewind as soon as its region is up (at once, or when the region is restored).
  AllowDataLoss together with Switchover is ``InvalidParameterCombination``, as the API reference says.
- **RemoveFromGlobalCluster** detaches a secondary and promotes it to a standalone writer (status ``promoting``).
- **IAM database authentication** (iam_auth.py, iam_tokens.py, ldap_verifier.py): every cluster has the role
  ``rds_iam``; its members log in only with an IAM auth token, checked as RDS checks it, while the cluster has
  ``IAMDatabaseAuthenticationEnabled``. ModifyDBCluster ``EnableIAMDatabaseAuthentication`` changes it at once (moto
  ignored it).
- **Events.** RDS-EVENT-0181/0182/0184/0185/0187 (switchover), 0238/0239 (failover), 0240/0241 (resync), 0397 (global
  writer endpoint moved) and 0170 (cluster created), SourceType ``db-cluster`` in the cluster's region, as AWS's
  event list has them. DescribeEvents now honours StartTime/EndTime/Duration (default: the last 60 minutes) and
  EventCategories, which moto ignored.
- **Metrics.** ``AuroraGlobalDBReplicationLag`` and ``AuroraGlobalDBRPOLag`` (Milliseconds, namespace AWS/RDS,
  dimension DBClusterIdentifier of the secondary) go into moto's CloudWatch every 5 s, from ``pg_stat_replication``
  replay lag and commit timestamps; kept for 3 hours.
- **Outages.** ``rt.on_outage(region)`` stops the region's nodes at once (a crash); restore starts them again (an old
  primary that lost the writer role meanwhile comes back as a standby, never as a second writer).
  ``POST /_sandbox/faults/stop-database`` / ``start-database`` ``{"region": ...}`` do the same without an outage.
  ``POST /_sandbox/faults/crash-db-instance`` ``{"region": ..., "instance": ...}`` SIGKILLs one instance's PostgreSQL
  (default: the current writer of the region's cluster; in a secondary region, the instance that replicates from
  the primary) and answers ``{"region", "cluster", "instance", "role", "killed_pids"}``.
  ``GET /_sandbox/aurora`` lists clusters, nodes, roles, lag, operations and recent events (``?memory=1``: PSS).

Where the sandbox differs from AWS:

- Streaming replication stands for Aurora's shared storage: a reader lags its writer by milliseconds, and a
  secondary region's readers cascade from the instance that replicates from the primary region. A cluster without
  instances still serves on its cluster endpoint (the node it started with); on AWS it has nothing to connect to.
  A crashed writer is detected by the sampler's watch (every 2 s), a reader that crashed leaves the writer's quorum
  at the next watch (commits wait until then), and a crashed secondary head is restarted in place.
- Nodes run with ``fsync=off`` (``fast=True``: a sandbox, not a store of record) and ``synchronous_commit=on``. A
  crash of the *machine* can corrupt a node; a crash of a node's process (the crash-db-instance fault, an outage,
  stop-database) loses no acknowledged commit. A global failover loses what the secondary had not received yet, as
  on AWS; a switchover shuts the primary down cleanly first, so it loses nothing.
- The master user's password is checked as SCRAM-SHA-256; ``rds.force_ssl`` and other parameter-group values are
  records only (no TLS). ManageMasterUserPassword uses moto's generated secret value.
- DB clusters of other engines, and global clusters of them, stay records (switchover/failover of them is refused).
- Operations take about a second instead of minutes; StopDBCluster/StartDBCluster are moto's records only.
- CreateDBCluster and CreateDBInstance answer ``creating``, as AWS does, but send that answer only once the node is
  up (or after CREATE_SETTLE_S, or at once while the region's databases are down). A client's first Describe then
  finds ``available``: the collection's waiters sleep 20 s (clusters) or 60 s (instances) after a ``creating``,
  negligible beside AWS's minutes of creation and most of a deploy's time here.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import time
from typing import Any

from sandbox import patches, runtime
from sandbox.services.cloudwatch.metrics import naive_utc as _naive
from sandbox.services.rds import engine as aurora
from sandbox.services.rds import patches as rds_patches

log = logging.getLogger("sandbox.aurora")

METRIC_RETENTION = dt.timedelta(hours=3)
METRIC_NAMES = ("AuroraGlobalDBReplicationLag", "AuroraGlobalDBRPOLag")
DEFAULT_EVENT_DURATION_MIN = 60
# How long a create's answer may wait for its node (a reader's pg_basebackup takes a few seconds on 2 cores).
CREATE_SETTLE_S = 15.0
SETTLE_POLL_S = 0.05

_FLEET: aurora.Fleet | None = None


def fleet() -> aurora.Fleet:
    """The engine of this sandbox process (for in-process callers: other extensions, tests building the app)."""
    if _FLEET is None:
        raise RuntimeError("the RDS provider (sandbox/services/rds/provider.py) is not installed in this process")
    return _FLEET


class _ClusterEvent:
    """An RDS event as moto's DescribeEvents serialises it (SourceType db-cluster)."""

    def __init__(self, member: aurora.Member, message: str, categories: list[str]) -> None:
        from moto.core.utils import utcnow

        self.source_identifier = member.cluster_id
        self.source_type = "db-cluster"
        self.message = message
        self.event_categories = categories
        self.source_arn = member.arn
        self.date = utcnow()


def _record_event(member: aurora.Member, event_id: str, message: str, categories: list[str]) -> None:
    from moto.rds.models import rds_backends

    rds_backends[member.account][member.region].events.append(_ClusterEvent(member, message, categories))


class _MetricSink:
    def __init__(self) -> None:
        self._last_prune = 0.0

    def __call__(self, member: aurora.Member, values: dict[str, float]) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[member.account][member.region]
        dimensions = [{"Name": "DBClusterIdentifier", "Value": member.cluster_id}]
        backend.put_metric_data(
            "AWS/RDS",
            [
                {"MetricName": name, "Value": value, "Unit": "Milliseconds", "Dimensions": dimensions}
                for name, value in values.items()
            ],
        )
        import time

        if time.monotonic() - self._last_prune > 600:
            self._last_prune = time.monotonic()
            _prune_metrics(backend)


def _prune_metrics(backend: Any) -> None:
    """Drop this extension's data points older than METRIC_RETENTION (one per 5 s per secondary adds up).

    Deletes by index from the end, one at a time: appends by concurrent PutMetricData calls land after the range
    scanned and are never lost.
    """
    from moto.core.utils import utcnow

    cutoff = utcnow() - METRIC_RETENTION
    data = backend.metric_data
    for index in range(len(data) - 1, -1, -1):
        datum = data[index]
        if datum.namespace == "AWS/RDS" and datum.name in METRIC_NAMES and _naive(datum.timestamp) < cutoff:
            del data[index]


def _fault(code: str, message: str) -> Exception:
    from moto.rds.exceptions import RDSClientError

    return RDSClientError(code, message)


def _raise_as_rds(exc: aurora.AuroraError) -> None:
    raise _fault(exc.code, str(exc)) from None


class _GlobalClusterListener:
    """The engine's part of the global-cluster calls services/rds/patches.py owns (its ``LiveGlobalClusters``)."""

    def __init__(self, engine: aurora.Fleet) -> None:
        self.engine = engine

    def before_remove(self, glob: Any | None) -> None:
        if glob is not None:
            try:
                self.engine.check_removable(glob)
            except aurora.AuroraError as exc:
                _raise_as_rds(exc)

    def global_created(self, glob: Any) -> None:
        if glob.engine == aurora.ENGINE:
            self.engine.global_created(glob)
            for record in list(glob.members):
                self.engine.member_joined(record)

    def global_deleted(self, glob: Any) -> None:
        self.engine.global_deleted(glob)

    def member_removed(self, glob: Any, record: Any) -> None:
        self.engine.member_removed(glob, record)

    def db_cluster_deleted(self, record: Any | None) -> None:
        if record is not None and self.engine.member_of(record) is not None:
            record._sandbox_deleting = True
            self.engine.cluster_deleted(record)


def _settled(engine: aurora.Fleet, original: Any) -> Any:
    """A Create* response method whose answer (serialized at once: ``creating``) is sent once the node is up."""
    from moto.core.responses import ActionResult

    class SettledResult(ActionResult):
        def execute_result(self, context: Any) -> Any:
            answer = super().execute_result(context)
            (record,) = self.result.values()  # {"DBCluster": ...} or {"DBInstance": ...}
            deadline = time.monotonic() + CREATE_SETTLE_S
            while record.status == "creating" and engine.may_run(record.region) and time.monotonic() < deadline:
                time.sleep(SETTLE_POLL_S)
            return answer

    def create(response: Any) -> Any:
        result = original(response)
        return SettledResult(result.result) if type(result) is ActionResult else result

    return create


def _patch_clusters(engine: aurora.Fleet) -> None:
    """CreateDBCluster / ModifyDBCluster of aurora-postgresql start and change real clusters."""
    from moto.rds import exceptions
    from moto.rds.models import RDSBackend, rds_backends
    from moto.rds.responses import RDSResponse

    # -- clusters ----------------------------------------------------------------------------------

    original_create = RDSBackend.create_db_cluster
    original_modify = RDSBackend.modify_db_cluster

    def create_db_cluster(self: Any, kwargs: dict[str, Any]) -> Any:
        if kwargs.get("engine") != aurora.ENGINE:
            return original_create(self, kwargs)
        cluster_id = str(kwargs["db_cluster_identifier"])
        if cluster_id.lower() in (existing.lower() for existing in self.clusters):
            raise _fault("DBClusterAlreadyExistsFault", f"DB cluster {cluster_id} already exists")
        password = kwargs.get("master_user_password")
        global_id = kwargs.get("global_cluster_identifier")
        if global_id:
            glob = rds_backends[self.account_id]["us-east-1"].global_clusters.get(global_id)
            if glob is None:
                raise _fault("GlobalClusterNotFoundFault", f"Global cluster {global_id} not found.")
            if glob.engine != aurora.ENGINE:
                raise _fault(
                    "InvalidParameterCombination",
                    f"The engine {aurora.ENGINE} does not match the engine {glob.engine} of global cluster {global_id}",
                )
            version = kwargs.get("engine_version")
            if version and str(version).split(".")[0] != str(glob.engine_version).split(".")[0]:
                raise _fault(
                    "InvalidParameterCombination",
                    f"Engine version {version} does not match the major version of global cluster {global_id}"
                    f" ({glob.engine_version}): primary and secondary clusters must run the same major version",
                )
            if glob.members:
                password = None  # a secondary's master credentials are the primary's
            elif not kwargs.get("master_username") or not password:
                raise _fault(
                    "InvalidParameterValue",
                    f"The first cluster of global cluster {global_id} becomes its primary: MasterUsername and"
                    " MasterUserPassword must be provided",
                )
        record = original_create(self, kwargs)
        if record.manage_master_user_password:
            password = json.loads(record.master_user_secret.secret.secret_string)["password"]
        engine.cluster_created(record, password)
        return record

    def modify_db_cluster(self: Any, kwargs: dict[str, Any]) -> Any:
        cluster_id = kwargs["db_cluster_identifier"]
        record = self.clusters.get(cluster_id)
        if record is None:
            raise exceptions.DBClusterNotFoundError(cluster_id)
        member = engine.member_of(record)
        password = kwargs.get("master_user_password")
        if member is not None and password:
            try:
                engine.check_master_password_change(member)
            except aurora.AuroraError as exc:
                _raise_as_rds(exc)
        old_key, old_port = engine.key(record), record.port
        result = original_modify(self, kwargs)
        _apply_iam_flag(record, result, kwargs.get("enable_iam_database_authentication"))
        if member is not None:
            if password:
                engine.set_master_password(member, password)
            if engine.key(record) != old_key or record.port != old_port:
                engine.cluster_renamed(old_key, record)
        return result

    patches.patch(RDSBackend, "create_db_cluster", create_db_cluster, owner=__name__)
    patches.patch(RDSResponse, "create_db_cluster", _settled(engine, RDSResponse.create_db_cluster), owner=__name__)
    patches.patch(RDSBackend, "modify_db_cluster", modify_db_cluster, owner=__name__)


def _apply_iam_flag(record: Any, answer: Any, enabled: bool | None) -> None:
    """ModifyDBCluster EnableIAMDatabaseAuthentication changes IAMDatabaseAuthenticationEnabled at once (moto stored
    it under a name its DescribeDBClusters never reads, so the flag could not change after CreateDBCluster).

    At once whatever ApplyImmediately says, as for an Aurora cluster on AWS (the API reference: ApplyImmediately
    affects only NewDBClusterIdentifier and MasterUserPassword there).
    """
    if enabled is None:
        return
    for each in (record, answer):
        each.iam_auth = bool(enabled)


def _patch_statuses(engine: aurora.Fleet) -> None:
    """Cluster and instance statuses follow the engine (creating until the node accepts connections)."""
    from moto.rds.models import DBCluster, DBInstanceClustered

    status_property = DBCluster.status

    def cluster_status(self: Any) -> str:
        if getattr(self, "_sandbox_deleting", False):
            return "deleting"
        member = engine.member_of(self)
        return member.status if member is not None else status_property.fget(self)

    patches.patch(DBCluster, "status", property(cluster_status, status_property.fset), owner=__name__)

    def instance_status(self: Any) -> str:
        status = self.__dict__.get("_sandbox_status", "available")
        if status == "available":
            return engine.instance_status(self) or status
        return status

    def set_instance_status(self: Any, value: str) -> None:
        self.__dict__["_sandbox_status"] = value

    patches.patch(DBInstanceClustered, "status", property(instance_status, set_instance_status), owner=__name__)


def _patch_instances(engine: aurora.Fleet) -> None:
    """DB instances: each its own node; DBClusterMembers, FailoverDBCluster and RebootDBInstance act on them."""
    from moto.rds import exceptions
    from moto.rds.models import DBCluster, DBInstanceClustered, RDSBackend
    from moto.rds.responses import RDSResponse

    original_create_instance = RDSBackend.create_db_instance
    original_delete_instance = RDSBackend.delete_db_instance
    original_failover = RDSBackend.failover_db_cluster
    original_reboot = RDSResponse.reboot_db_instance
    original_r_create_instance = RDSResponse.create_db_instance
    members_property = DBCluster.db_cluster_members

    def create_db_instance(self: Any, db_kwargs: dict[str, Any]) -> Any:
        database = original_create_instance(self, db_kwargs)
        if isinstance(database, DBInstanceClustered):
            member = engine.member_of(database.cluster)
            if member is not None:
                engine.instance_added(member, database)
        return database

    def delete_db_instance(self: Any, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        database = original_delete_instance(self, db_instance_identifier, *args, **kwargs)
        if isinstance(database, DBInstanceClustered):
            member = engine.member_of(database.cluster)
            if member is not None:
                engine.instance_removed(member, database.db_instance_identifier)
        return database

    def db_cluster_members(self: Any) -> list[dict[str, Any]]:
        entries = members_property.fget(self)
        member = engine.member_of(self)
        if member is not None:
            # The writer is the instance whose node takes writes; a secondary cluster has none (all readers).
            for entry in entries:
                entry["IsClusterWriter"] = engine.is_cluster_writer(member, entry["DBInstanceIdentifier"])
        return entries

    def failover_db_cluster(
        self: Any, db_cluster_identifier: str, target_db_instance_identifier: str | None = None
    ) -> Any:
        record = self.clusters.get(db_cluster_identifier)
        member = engine.member_of(record) if record is not None else None
        if member is None:
            return original_failover(self, db_cluster_identifier, target_db_instance_identifier)
        try:
            engine.failover_cluster(member, target_db_instance_identifier)
        except aurora.AuroraError as exc:
            _raise_as_rds(exc)
        return record

    def r_reboot_db_instance(response: Any) -> Any:
        from moto.core.responses import ActionResult

        identifier = response.params.get("DBInstanceIdentifier")
        database = response.backend.databases.get(identifier)
        if database is None:
            raise exceptions.DBInstanceNotFoundError(identifier)
        member = engine.member_of(database.cluster) if isinstance(database, DBInstanceClustered) else None
        if member is None:
            return original_reboot(response)
        if str(response.params.get("ForceFailover", "false")).lower() == "true":
            # The API's constraint: no forced failover for an instance that is not Multi-AZ, which an Aurora
            # instance never is (Aurora fails over with FailoverDBCluster).
            raise _fault(
                "InvalidParameterCombination",
                f"ForceFailover cannot be used with DB instance {identifier}: it is not a Multi-AZ DB instance."
                " To fail over an Aurora DB cluster, call FailoverDBCluster",
            )
        try:
            engine.reboot_instance(member, identifier)
        except aurora.AuroraError as exc:
            _raise_as_rds(exc)
        return ActionResult({"DBInstance": database})

    patches.patch(RDSBackend, "create_db_instance", create_db_instance, owner=__name__)
    patches.patch(RDSResponse, "create_db_instance", _settled(engine, original_r_create_instance), owner=__name__)
    patches.patch(RDSBackend, "delete_db_instance", delete_db_instance, owner=__name__)
    patches.patch(DBCluster, "db_cluster_members", property(db_cluster_members), owner=__name__)
    patches.patch(RDSBackend, "failover_db_cluster", failover_db_cluster, owner=__name__)
    patches.patch(RDSResponse, "reboot_db_instance", r_reboot_db_instance, owner=__name__)


def _patch_global_clusters(engine: aurora.Fleet) -> None:
    """Global clusters: the engine's part, SynchronizationStatus, FailoverState, switchover and failover."""
    from moto.core.responses import ActionResult
    from moto.rds import exceptions
    from moto.rds.models import GlobalCluster, find_cluster
    from moto.rds.responses import RDSResponse

    # -- global clusters ---------------------------------------------------------------------------

    # CreateGlobalCluster, DeleteGlobalCluster, RemoveFromGlobalCluster and DeleteDBCluster belong to
    # services/rds/patches.py (one owner per moto method): it calls this listener around its AWS checks.
    rds_patches.attach(_GlobalClusterListener(engine))

    members_property = GlobalCluster.global_cluster_members

    def global_cluster_members(self: Any) -> list[dict[str, Any]]:
        entries = members_property.fget(self)
        for entry, record in zip(entries, list(self.members), strict=False):
            member = engine.member_of(record)
            entry["SynchronizationStatus"] = (
                engine.synchronization_status(member) if member is not None else "connected"
            )
        return entries

    def failover_state(self: Any) -> dict[str, Any] | None:
        if "_sandbox_failover_state" in self.__dict__:
            return self.__dict__["_sandbox_failover_state"]
        glob = engine.global_of_record(self)
        return dict(glob.failover_state) if glob is not None and glob.failover_state else None

    patches.patch(GlobalCluster, "global_cluster_members", property(global_cluster_members), owner=__name__)
    patches.patch(GlobalCluster, "failover_state", property(failover_state), owner=__name__)

    def find_target(response: Any, identifier: str) -> Any:
        if identifier.startswith("arn:"):
            parts = identifier.split(":")
            if len(parts) < 7 or parts[5] != "cluster":
                raise exceptions.DBClusterNotFoundError(identifier)
            return find_cluster(identifier)
        # AWS asks for the ARN "so that Aurora can locate the cluster in its Region": a bare identifier is looked
        # up in the region the call was made in.
        return response.backend.describe_db_clusters(identifier)[0]

    def start_operation(response: Any, data_loss: bool) -> Any:
        params = response.params
        glob = response.global_backend.describe_global_clusters(params["GlobalClusterIdentifier"])[0]
        target = find_target(response, params["TargetDbClusterIdentifier"])
        # The answer shows the operation as accepted (FailoverState pending), however far its thread got meanwhile.
        accepted = copy.copy(glob)
        try:
            accepted._sandbox_failover_state = engine.start_operation(glob, target, data_loss=data_loss)
        except aurora.AuroraError as exc:
            _raise_as_rds(exc)
        return ActionResult({"GlobalCluster": accepted})

    def r_switchover_global_cluster(self: Any) -> Any:
        return start_operation(self, data_loss=False)

    def r_failover_global_cluster(self: Any) -> Any:
        allow, switchover = self.params.get("AllowDataLoss"), self.params.get("Switchover")
        if allow is not None and switchover is not None:
            raise _fault(
                "InvalidParameterCombination",
                "AllowDataLoss and Switchover cannot be specified together: AllowDataLoss for a failover,"
                " Switchover (or neither) for a switchover",
            )
        return start_operation(self, data_loss=bool(allow))

    patches.patch(RDSResponse, "switchover_global_cluster", r_switchover_global_cluster, owner=__name__)
    patches.patch(RDSResponse, "failover_global_cluster", r_failover_global_cluster, owner=__name__)


def _patch_events() -> None:
    """DescribeEvents honours its time window and categories."""
    from moto.rds.models import RDSBackend

    # -- events ------------------------------------------------------------------------------------

    original_describe_events = RDSBackend.describe_events

    def describe_events(
        self: Any,
        source_identifier: str | None = None,
        source_type: str | None = None,
        start_time: Any = None,
        end_time: Any = None,
        duration: int | None = None,
        event_categories: list[str] | None = None,
        **_: Any,
    ) -> list[Any]:
        from moto.core.utils import utcnow

        events = original_describe_events(self, source_identifier=source_identifier, source_type=source_type)
        now = utcnow()
        end = _naive(end_time) if end_time else now
        if start_time:
            start = _naive(start_time)
        else:
            start = end - dt.timedelta(minutes=int(duration or DEFAULT_EVENT_DURATION_MIN))
        wanted = set(event_categories or [])
        return [
            event
            for event in events
            if start <= _naive(event.date) <= end and (not wanted or wanted & set(event.event_categories))
        ]

    patches.patch(RDSBackend, "describe_events", describe_events, owner=__name__)


def _install_routes(rt: runtime.Runtime, engine: aurora.Fleet) -> None:
    """/_sandbox/aurora, the database faults, and the outage / restore / reset / shutdown hooks."""

    # -- control routes and hooks ------------------------------------------------------------------

    def region_arg(body: dict[str, Any], query: dict[str, str]) -> str:
        region = body.get("region") or query.get("region")
        if region not in runtime.REGIONS:
            raise runtime.ControlError(
                400, f'name one of the regions {", ".join(runtime.REGIONS)}: {{"region": "us-east-1"}}, got {region!r}'
            )
        return str(region)

    def describe(_body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        return 200, engine.describe(memory=query.get("memory", "").lower() in ("1", "true", "yes"))

    def stop_database(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        region = region_arg(body, query)
        return 200, {"region": region, "stopped": engine.region_down(region, database_only=True)}

    def start_database(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        region = region_arg(body, query)
        return 200, {"region": region, "starting": engine.region_up(region, database_only=True)}

    def crash_db_instance(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        region = region_arg(body, query)
        instance = body.get("instance") or query.get("instance")
        return 200, engine.crash_instance(region, str(instance) if instance else None)

    rt.route("GET", "aurora", describe)
    rt.route("POST", "faults/crash-db-instance", crash_db_instance)
    rt.route("POST", "faults/stop-database", stop_database)
    rt.route("POST", "faults/start-database", start_database)

    def outage(region: str) -> None:
        engine.region_down(region, database_only=False)

    def restore(region: str) -> None:
        engine.region_up(region, database_only=False)

    def reset() -> None:
        engine.stop_all(delete=True)

    def shutdown() -> None:
        engine.stop_all(delete=False)

    rt.on_outage(outage)
    rt.on_restore(restore)
    rt.on_reset(reset)
    rt.on_shutdown(shutdown)
    rt.every("aurora-sampler", aurora.SAMPLE_INTERVAL_S, engine.sample_all)


def install(_app: Any) -> None:
    global _FLEET

    rt = runtime.get()
    engine = aurora.Fleet(rt)
    engine.on_event = _record_event
    engine.on_metrics = _MetricSink()
    _FLEET = engine

    _patch_clusters(engine)
    _patch_statuses(engine)
    _patch_instances(engine)
    _patch_global_clusters(engine)
    _patch_events()
    _install_routes(rt, engine)

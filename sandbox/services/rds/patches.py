"""RDS: where the sandbox corrects moto's RDS API (moto fidelity; the live Aurora engine is provider.py).

- ``global_clusters``: Aurora global clusters answer as AWS documents (DescribeGlobalClusters,
  Create/Modify/Delete, RemoveFrom); this module is the one owner of the RDSBackend methods the live
  engine also acts on, and composes both (``attach``).
- ``parameter_defaults``: a new aurora-postgresql cluster parameter group lists its engine defaults.
- ``automated_backups``: DeleteDBCluster removes the cluster's automated backups unless told not to.
"""

from __future__ import annotations

from typing import Any, Protocol

from sandbox import patches

# == global_clusters: Aurora global clusters answer as AWS documents (DescribeGlobalClusters, Create/Modify/Delete, RemoveFrom).
#
# Plain moto gets the global-cluster lifecycle wrong in ways a deploy/teardown relies on:
#
# - DescribeGlobalClusters ignores GlobalClusterIdentifier and returns every global cluster (or ``[]``)
#   instead of the one asked for or ``GlobalClusterNotFoundFault`` (HTTP 404).
# - CreateGlobalCluster from a SourceDBClusterIdentifier does not mark that cluster as the writer
#   (``IsWriter`` false for every member), does not inherit its StorageEncrypted, stores the global ARN
#   in the member's ``GlobalClusterIdentifier`` (AWS returns the identifier) and silently replaces an
#   existing global cluster instead of raising ``GlobalClusterAlreadyExistsFault``.
# - ModifyGlobalCluster is not implemented (HTTP 500). Here: DeletionProtection, as AWS applies it.
# - DeleteGlobalCluster on a missing identifier is an HTTP 500 (KeyError), not ``GlobalClusterNotFoundFault``,
#   and deletion protection is not enforced.
# - RemoveFromGlobalCluster looks the global cluster up in the caller's region only (it lives in moto's
#   us-east-1 backend), swallows every error, and leaves the detached cluster pointing at the global
#   cluster: "accepted, does nothing" for a secondary region.
# - DeleteDBCluster silently detaches a member of a global cluster; AWS refuses
#   (``InvalidDBClusterStateFault``) until the cluster has been removed from the global cluster.
#
# **The one owner of these RDSBackend methods.** The live Aurora engine (provider.py) must also act
# on CreateGlobalCluster, DeleteGlobalCluster, RemoveFromGlobalCluster and DeleteDBCluster. Rather than
# a second patch wrapping this one (whose behaviour would depend on install order), this module owns
# the four methods and composes both behaviours in a fixed order: the engine's check
# (``before_remove``), then AWS's checks here, then moto, then the engine's reaction (``global_created``,
# ``global_deleted``, ``member_removed``, ``db_cluster_deleted``). The engine registers itself with
# ``attach(listener)``; without it these methods are the AWS fidelity alone.


# moto keeps every global cluster in this region's backend, whatever region the call was made in.
GLOBAL_BACKEND_REGION = "us-east-1"


class LiveGlobalClusters(Protocol):
    """What the live engine does around the global-cluster calls this module owns."""

    def before_remove(self, global_cluster: Any | None) -> None: ...  # may raise an RDS fault
    def global_created(self, global_cluster: Any) -> None: ...
    def global_deleted(self, global_cluster: Any) -> None: ...
    def member_removed(self, global_cluster: Any, cluster: Any) -> None: ...
    def db_cluster_deleted(self, cluster: Any | None) -> None: ...


_LIVE: list[LiveGlobalClusters] = []


def attach(listener: LiveGlobalClusters) -> None:
    """Let the live engine act on the calls this module owns (one listener: a second replaces the first)."""
    _LIVE[:] = [listener]


def _errors() -> Any:
    from moto.rds import exceptions

    return exceptions


def _global_not_found(identifier: str) -> Exception:
    return _errors().RDSClientError("GlobalClusterNotFoundFault", f"Global cluster {identifier} not found.")


def _global_backend(account_id: str) -> Any:
    from moto.rds.models import rds_backends

    return rds_backends[account_id][GLOBAL_BACKEND_REGION]


def _owning_global_cluster(cluster: Any) -> Any | None:
    """The global cluster that lists ``cluster`` as a member, or None."""
    for global_cluster in _global_backend(cluster.account_id).global_clusters.values():
        if any(member is cluster for member in global_cluster.members):
            return global_cluster
    return None


def _get_global_cluster(backend: Any, global_cluster_identifier: str) -> Any:
    if global_cluster_identifier not in backend.global_clusters:
        raise _global_not_found(global_cluster_identifier)
    return backend.global_clusters[global_cluster_identifier]


def _patch_global_lifecycle() -> None:
    """Create, Describe, Delete and ModifyGlobalCluster as AWS documents them."""
    from moto.rds.models import RDSBackend, find_cluster

    errors = _errors()
    original_create = RDSBackend.create_global_cluster

    def create_global_cluster(
        self: Any, global_cluster_identifier: str, source_db_cluster_identifier: str | None, **kwargs: Any
    ) -> Any:
        if global_cluster_identifier in self.global_clusters:
            raise errors.RDSClientError(
                "GlobalClusterAlreadyExistsFault", f"Global cluster {global_cluster_identifier} already exists"
            )
        if source_db_cluster_identifier is not None and source_db_cluster_identifier.startswith("arn:"):
            source = find_cluster(source_db_cluster_identifier)
            if _owning_global_cluster(source) is not None:
                raise errors.InvalidDBClusterStateFault(
                    f"Source cluster {source_db_cluster_identifier} is already a member of a global cluster"
                )
            if kwargs.get("storage_encrypted") is None:
                kwargs["storage_encrypted"] = bool(source.storage_encrypted)
        global_cluster = original_create(self, global_cluster_identifier, source_db_cluster_identifier, **kwargs)
        for member in global_cluster.members:
            member.is_writer = True
            member.global_cluster_identifier = global_cluster.global_cluster_identifier
        for live in _LIVE:
            live.global_created(global_cluster)
        return global_cluster

    def describe_global_clusters(self: Any, global_cluster_identifier: str | None = None) -> list[Any]:
        if global_cluster_identifier:
            return [_get_global_cluster(self, global_cluster_identifier)]
        return list(self.global_clusters.values())

    def delete_global_cluster(self: Any, global_cluster_identifier: str) -> Any:
        global_cluster = _get_global_cluster(self, global_cluster_identifier)
        if global_cluster.deletion_protection:
            raise errors.RDSClientError(
                "InvalidParameterCombination",
                "Cannot delete protected Global Cluster, please disable deletion protection and try again.",
            )
        if global_cluster.members:
            raise errors.InvalidGlobalClusterStateFault(global_cluster.global_cluster_arn)
        deleted = self.global_clusters.pop(global_cluster_identifier)
        for live in _LIVE:
            live.global_deleted(deleted)
        return deleted

    def modify_global_cluster(self: Any, global_cluster_identifier: str, deletion_protection: bool | None) -> Any:
        global_cluster = _get_global_cluster(self, global_cluster_identifier)
        if deletion_protection is not None:
            global_cluster.deletion_protection = deletion_protection
        return global_cluster

    patches.patch(RDSBackend, "create_global_cluster", create_global_cluster, owner=__name__)
    patches.patch(RDSBackend, "describe_global_clusters", describe_global_clusters, owner=__name__)
    patches.patch(RDSBackend, "delete_global_cluster", delete_global_cluster, owner=__name__)
    patches.patch(RDSBackend, "modify_global_cluster", modify_global_cluster, owner=__name__)


def _patch_global_members() -> None:
    """RemoveFromGlobalCluster and DeleteDBCluster of a member, as AWS documents them."""
    from moto.rds.models import RDSBackend, find_cluster

    errors = _errors()
    original_delete_db_cluster = RDSBackend.delete_db_cluster

    def remove_from_global_cluster(self: Any, global_cluster_identifier: str, db_cluster_identifier: str) -> Any:
        for live in _LIVE:
            live.before_remove(self.global_clusters.get(global_cluster_identifier))
        global_cluster = _get_global_cluster(self, global_cluster_identifier)
        if not db_cluster_identifier.startswith("arn:"):
            raise errors.RDSClientError(
                "InvalidParameterValue", f"DbClusterIdentifier must be a DB cluster ARN, got {db_cluster_identifier}"
            )
        cluster = find_cluster(db_cluster_identifier)
        if not any(member is cluster for member in global_cluster.members):
            raise errors.DBClusterNotFoundError(
                db_cluster_identifier,
                f"The cluster {db_cluster_identifier} is not a member of global cluster {global_cluster_identifier}",
            )
        if cluster.is_writer and len(global_cluster.members) > 1:
            raise errors.InvalidGlobalClusterStateFault(global_cluster.global_cluster_arn)
        global_cluster.members.remove(cluster)
        cluster.global_cluster_identifier = None
        cluster.is_writer = False
        for live in _LIVE:
            live.member_removed(global_cluster, cluster)
        return global_cluster

    def delete_db_cluster(self: Any, cluster_identifier: str, snapshot_name: str | None = None) -> Any:
        cluster = self.clusters.get(cluster_identifier)
        if cluster is not None and _owning_global_cluster(cluster) is not None:
            raise errors.InvalidDBClusterStateFault(
                "This cluster is a part of a global cluster, please remove it from globalcluster first"
            )
        result = original_delete_db_cluster(self, cluster_identifier, snapshot_name)
        for live in _LIVE:
            live.db_cluster_deleted(cluster)
        return result

    patches.patch(RDSBackend, "remove_from_global_cluster", remove_from_global_cluster, owner=__name__)
    patches.patch(RDSBackend, "delete_db_cluster", delete_db_cluster, owner=__name__)


def _patch_global_responses() -> None:
    """The responses moto lacks or answers wrongly: DescribeGlobalClusters, ModifyGlobalCluster, RemoveFrom."""
    from moto.core.responses import ActionResult
    from moto.rds.responses import RDSResponse

    errors = _errors()

    def r_describe_global_clusters(self: Any) -> Any:
        clusters = self.global_backend.describe_global_clusters(self.params.get("GlobalClusterIdentifier"))
        return ActionResult({"GlobalClusters": clusters})

    def r_modify_global_cluster(self: Any) -> Any:
        params = self.params
        unsupported = sorted(set(params) & {"NewGlobalClusterIdentifier", "EngineVersion", "AllowMajorVersionUpgrade"})
        if unsupported:
            raise errors.RDSClientError(
                "InvalidParameterValue",
                f"The sandbox's ModifyGlobalCluster supports DeletionProtection only, not {unsupported}",
            )
        cluster = self.global_backend.modify_global_cluster(
            params["GlobalClusterIdentifier"], params.get("DeletionProtection")
        )
        return ActionResult({"GlobalCluster": cluster})

    def r_remove_from_global_cluster(self: Any) -> Any:
        params = self.params
        cluster = self.global_backend.remove_from_global_cluster(
            params["GlobalClusterIdentifier"], params["DbClusterIdentifier"]
        )
        return ActionResult({"GlobalCluster": cluster})

    patches.patch(RDSResponse, "describe_global_clusters", r_describe_global_clusters, owner=__name__)
    patches.patch(RDSResponse, "modify_global_cluster", r_modify_global_cluster, owner=__name__)
    patches.patch(RDSResponse, "remove_from_global_cluster", r_remove_from_global_cluster, owner=__name__)


def _install_global_clusters(_app: Any) -> None:
    _patch_global_lifecycle()
    _patch_global_members()
    _patch_global_responses()


# == parameter_defaults: A new Aurora PostgreSQL cluster parameter group lists its engine-default parameters, as on AWS.
#
# On AWS, DescribeDBClusterParameters on a freshly created group returns every parameter of its family
# (Source ``engine-default``, with ApplyType, DataType, AllowedValues, IsModifiable). moto's new group has
# no parameters at all, so amazon.aws.rds_cluster_param_group, which checks that a parameter exists and is
# modifiable before setting it, fails with "Could not find parameter with name". Here a new group of an
# ``aurora-postgresql*`` family is seeded with a subset of the real family's parameters - the ones a
# deployment commonly sets - so setting them works as on AWS. ParameterValue is left out, as AWS does
# for parameters whose default is computed by the engine; a modification stores what was put.


FAMILY_PREFIX = "aurora-postgresql"

# name: (ApplyType, DataType, AllowedValues, Description)
_PARAMETERS: dict[str, tuple[str, str, str, str]] = {
    "rds.force_ssl": ("dynamic", "boolean", "0,1", "Force SSL connections."),
    "rds.global_db_rpo": (
        "dynamic",
        "integer",
        "20-2147483647",
        "(s) Recovery point objective threshold, in seconds, that blocks user commits when it is violated.",
    ),
    "rds.logical_replication": ("static", "boolean", "0,1", "Enables logical decoding."),
    "log_min_duration_statement": (
        "dynamic",
        "integer",
        "-1-2147483647",
        "(ms) Sets the minimum execution time above which statements will be logged.",
    ),
    "log_statement": ("dynamic", "string", "none,ddl,mod,all", "Sets the type of statements logged."),
    "password_encryption": ("dynamic", "string", "md5,scram-sha-256", "Encrypt passwords."),
    "ssl_min_protocol_version": (
        "dynamic",
        "string",
        "TLSv1,TLSv1.1,TLSv1.2,TLSv1.3",
        "Sets the minimum SSL/TLS protocol version to use.",
    ),
    "timezone": ("dynamic", "string", "", "Sets the time zone for displaying and interpreting time stamps."),
    "shared_preload_libraries": (
        "static",
        "list",
        "auto_explain,orafce,pgaudit,pglogical,pg_bigm,pg_cron,pg_hint_plan,pg_prewarm,pg_similarity,pg_stat_statements,pg_tle,pg_partman_bgw,plprofiler,pg_transport,pg_duckdb",
        "Lists shared libraries to preload into server.",
    ),
}


def engine_default_parameters() -> dict[str, dict[str, Any]]:
    return {
        name: {
            "ParameterName": name,
            "Description": description,
            "Source": "engine-default",
            "ApplyType": apply_type,
            "DataType": data_type,
            "AllowedValues": allowed,
            "IsModifiable": True,
            "ApplyMethod": "pending-reboot",
        }
        for name, (apply_type, data_type, allowed, description) in _PARAMETERS.items()
    }


def _install_parameter_defaults(_app: Any) -> None:
    from moto.rds.models import RDSBackend

    original = RDSBackend.create_db_cluster_parameter_group

    def create_db_cluster_parameter_group(self: Any, *args: Any, **kwargs: Any) -> Any:
        group = original(self, *args, **kwargs)
        if str(group.db_parameter_group_family).startswith(FAMILY_PREFIX):
            for name, parameter in engine_default_parameters().items():
                group.parameters.setdefault(name, parameter)
        return group

    patches.patch(RDSBackend, "create_db_cluster_parameter_group", create_db_cluster_parameter_group, owner=__name__)


# == automated_backups: DeleteDBCluster removes the cluster's automated backups unless DeleteAutomatedBackups is false, as AWS does.
#
# AWS (DeleteDBCluster): "When you delete a DB cluster, all automated backups for that DB cluster are
# deleted and can't be recovered. Manual DB cluster snapshots of the specified DB cluster are not
# deleted." and, of ``DeleteAutomatedBackups``: "The default is to remove automated backups
# immediately after the DB cluster is deleted, unless the Amazon Web Services Backup policy specifies
# a point-in-time restore rule." moto takes an automated cluster snapshot (``rds:<cluster>-<time>``)
# when a cluster is created and ignores ``DeleteAutomatedBackups``: the snapshot outlived the cluster,
# so every teardown left one per region, and a snapshot AWS would have removed looked like a leftover.
#
# Here the automated snapshots of the deleted cluster go with it, unless the call says
# ``DeleteAutomatedBackups=false``; then they stay, standing for AWS's retained automated backups
# (which AWS lists with DescribeDBClusterAutomatedBackups, an API moto lacks). Manual snapshots, the
# final snapshot among them, always stay.


def _wants_backups_deleted(value: Any) -> bool:
    """DeleteAutomatedBackups as sent: absent means true (the default); "false" in any case means keep."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return bool(value)


def delete_automated_cluster_snapshots(backend: Any, cluster_identifier: str) -> list[str]:
    """Forget the automated snapshots of one cluster (identifiers compare case-insensitively, as RDS does)."""
    wanted = cluster_identifier.lower()
    doomed = [
        snapshot_id
        for snapshot_id, snapshot in backend.cluster_snapshots.items()
        if snapshot.snapshot_type == "automated" and str(snapshot.db_cluster_identifier).lower() == wanted
    ]
    for snapshot_id in doomed:
        backend.cluster_snapshots.pop(snapshot_id, None)
    return doomed


def _install_automated_backups(_app: Any) -> None:
    from moto.rds.responses import RDSResponse

    original_delete_db_cluster = RDSResponse.delete_db_cluster

    def delete_db_cluster(self: Any) -> Any:
        identifier = self.params.get("DBClusterIdentifier")
        delete_backups = _wants_backups_deleted(self.params.get("DeleteAutomatedBackups"))
        # moto raises for a missing or protected cluster: then nothing was deleted, backups included.
        result = original_delete_db_cluster(self)
        if delete_backups and identifier:
            delete_automated_cluster_snapshots(self.backend, str(identifier))
        return result

    patches.patch(RDSResponse, "delete_db_cluster", delete_db_cluster, owner=__name__)


def install(app: Any) -> None:
    _install_global_clusters(app)
    _install_parameter_defaults(app)
    _install_automated_backups(app)

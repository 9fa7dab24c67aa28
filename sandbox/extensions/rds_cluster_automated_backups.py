"""DeleteDBCluster removes the cluster's automated backups unless DeleteAutomatedBackups is false, as AWS does.

AWS (DeleteDBCluster): "When you delete a DB cluster, all automated backups for that DB cluster are
deleted and can't be recovered. Manual DB cluster snapshots of the specified DB cluster are not
deleted." and, of ``DeleteAutomatedBackups``: "The default is to remove automated backups
immediately after the DB cluster is deleted, unless the Amazon Web Services Backup policy specifies
a point-in-time restore rule." moto takes an automated cluster snapshot (``rds:<cluster>-<time>``)
when a cluster is created and ignores ``DeleteAutomatedBackups``: the snapshot outlived the cluster,
so every teardown left one per region, and a snapshot AWS would have removed looked like a leftover.

Here the automated snapshots of the deleted cluster go with it, unless the call says
``DeleteAutomatedBackups=false``; then they stay, standing for AWS's retained automated backups
(which AWS lists with DescribeDBClusterAutomatedBackups, an API moto lacks). Manual snapshots, the
final snapshot among them, always stay.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches


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


def install(_app: Any) -> None:
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

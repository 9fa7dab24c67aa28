"""DeleteDBCluster removes the cluster's automated backups unless told to retain them (sandbox/services/rds/
patches.py). aurora-mysql keeps the clusters records only (no PostgreSQL starts)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

REGION = "us-west-2"


@pytest.fixture
def rds(aws: Callable[..., Any]) -> Any:
    return aws("rds", REGION)


def _cluster(rds: Any) -> str:
    identifier = f"backups-{uuid.uuid4().hex[:8]}"
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1234",
    )
    return identifier


def _snapshots(rds: Any, identifier: str, kind: str) -> list[str]:
    found = rds.describe_db_cluster_snapshots(DBClusterIdentifier=identifier, SnapshotType=kind)
    return [s["DBClusterSnapshotIdentifier"] for s in found["DBClusterSnapshots"]]


def test_automated_backups_go_with_the_cluster_by_default(rds: Any) -> None:
    identifier = _cluster(rds)
    assert len(_snapshots(rds, identifier, "automated")) == 1  # taken when the cluster was made
    rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
    assert _snapshots(rds, identifier, "automated") == []
    assert _snapshots(rds, identifier, "manual") == []


def test_explicit_true_deletes_them_too(rds: Any) -> None:
    identifier = _cluster(rds)
    rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
    assert _snapshots(rds, identifier, "automated") == []


def test_false_retains_them(rds: Any) -> None:
    identifier = _cluster(rds)
    rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=False)
    assert len(_snapshots(rds, identifier, "automated")) == 1
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=_snapshots(rds, identifier, "automated")[0])


def test_the_final_snapshot_stays(rds: Any) -> None:
    identifier = _cluster(rds)
    rds.delete_db_cluster(DBClusterIdentifier=identifier, FinalDBSnapshotIdentifier=f"{identifier}-final")
    assert _snapshots(rds, identifier, "automated") == []
    assert _snapshots(rds, identifier, "manual") == [f"{identifier}-final"]
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=f"{identifier}-final")


def test_other_clusters_keep_their_backups(rds: Any) -> None:
    kept, deleted = _cluster(rds), _cluster(rds)
    rds.delete_db_cluster(DBClusterIdentifier=deleted, SkipFinalSnapshot=True)
    assert len(_snapshots(rds, kept, "automated")) == 1
    rds.delete_db_cluster(DBClusterIdentifier=kept, SkipFinalSnapshot=True)


def test_a_refused_delete_keeps_the_backups(rds: Any) -> None:
    identifier = _cluster(rds)
    rds.modify_db_cluster(DBClusterIdentifier=identifier, DeletionProtection=True, ApplyImmediately=True)
    with pytest.raises(rds.exceptions.ClientError):
        rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
    assert len(_snapshots(rds, identifier, "automated")) == 1
    rds.modify_db_cluster(DBClusterIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
    rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)

"""The sandbox's Aurora global clusters behave as AWS documents (sandbox/services/rds/patches.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

ENGINE = "aurora-postgresql"
VERSION = "16.4"


def _error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def topology(aws: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """A primary cluster in us-east-1 turned into a global cluster, and a secondary in us-west-2."""
    east, west = aws("rds", "us-east-1"), aws("rds", "us-west-2")
    suffix = uuid.uuid4().hex[:8]
    gid, pid, sid = f"g-{suffix}", f"p-{suffix}", f"s-{suffix}"
    primary = east.create_db_cluster(
        DBClusterIdentifier=pid,
        Engine=ENGINE,
        EngineVersion=VERSION,
        MasterUsername="app",
        MasterUserPassword="not-a-real-password-1",
        StorageEncrypted=True,
    )["DBCluster"]
    east.create_global_cluster(GlobalClusterIdentifier=gid, SourceDBClusterIdentifier=primary["DBClusterArn"])
    secondary = west.create_db_cluster(
        DBClusterIdentifier=sid,
        Engine=ENGINE,
        EngineVersion=VERSION,
        GlobalClusterIdentifier=gid,
        StorageEncrypted=True,
    )["DBCluster"]
    yield {"east": east, "west": west, "gid": gid, "primary": primary, "secondary": secondary, "pid": pid, "sid": sid}
    for client, arn, cid in ((west, secondary["DBClusterArn"], sid), (east, primary["DBClusterArn"], pid)):
        with contextlib.suppress(ClientError):
            client.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=arn)
        with contextlib.suppress(ClientError):
            client.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)
    try:
        east.modify_global_cluster(GlobalClusterIdentifier=gid, DeletionProtection=False)
        east.delete_global_cluster(GlobalClusterIdentifier=gid)
    except ClientError:
        pass


def test_describe_by_identifier_returns_only_that_cluster(topology: dict[str, Any]) -> None:
    other = topology["east"].create_global_cluster(GlobalClusterIdentifier=f"{topology['gid']}-other", Engine=ENGINE)
    try:
        found = topology["west"].describe_global_clusters(GlobalClusterIdentifier=topology["gid"])["GlobalClusters"]
        assert [g["GlobalClusterIdentifier"] for g in found] == [topology["gid"]]
    finally:
        topology["east"].delete_global_cluster(
            GlobalClusterIdentifier=other["GlobalCluster"]["GlobalClusterIdentifier"]
        )


def test_describe_missing_identifier_is_not_found(aws: Callable[..., Any]) -> None:
    with pytest.raises(ClientError) as excinfo:
        aws("rds", "us-east-1").describe_global_clusters(GlobalClusterIdentifier="does-not-exist")
    assert _error_code(excinfo) == "GlobalClusterNotFoundFault"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_source_cluster_is_the_writer_and_inherits_encryption(topology: dict[str, Any]) -> None:
    glob = topology["east"].describe_global_clusters(GlobalClusterIdentifier=topology["gid"])["GlobalClusters"][0]
    members = {m["DBClusterArn"]: m for m in glob["GlobalClusterMembers"]}
    assert members[topology["primary"]["DBClusterArn"]]["IsWriter"] is True
    assert members[topology["secondary"]["DBClusterArn"]]["IsWriter"] is False
    assert members[topology["primary"]["DBClusterArn"]]["Readers"] == [topology["secondary"]["DBClusterArn"]]
    assert glob["StorageEncrypted"] is True
    cluster = topology["east"].describe_db_clusters(DBClusterIdentifier=topology["pid"])["DBClusters"][0]
    assert cluster["GlobalClusterIdentifier"] == topology["gid"]


def test_create_existing_identifier_is_refused(topology: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as excinfo:
        topology["east"].create_global_cluster(GlobalClusterIdentifier=topology["gid"], Engine=ENGINE)
    assert _error_code(excinfo) == "GlobalClusterAlreadyExistsFault"


def test_modify_deletion_protection_is_applied_and_enforced(topology: dict[str, Any]) -> None:
    east, gid = topology["east"], topology["gid"]
    modified = east.modify_global_cluster(GlobalClusterIdentifier=gid, DeletionProtection=True)["GlobalCluster"]
    assert modified["DeletionProtection"] is True
    with pytest.raises(ClientError) as excinfo:
        east.delete_global_cluster(GlobalClusterIdentifier=gid)
    assert _error_code(excinfo) == "InvalidParameterCombination"
    east.modify_global_cluster(GlobalClusterIdentifier=gid, DeletionProtection=False)


def test_member_cluster_cannot_be_deleted(topology: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as excinfo:
        topology["west"].delete_db_cluster(DBClusterIdentifier=topology["sid"], SkipFinalSnapshot=True)
    assert _error_code(excinfo) == "InvalidDBClusterStateFault"


def test_dismantle_in_order(topology: dict[str, Any]) -> None:
    east, west, gid = topology["east"], topology["west"], topology["gid"]
    primary_arn, secondary_arn = topology["primary"]["DBClusterArn"], topology["secondary"]["DBClusterArn"]
    # The writer cannot leave while a secondary is still attached.
    with pytest.raises(ClientError) as excinfo:
        east.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=primary_arn)
    assert _error_code(excinfo) == "InvalidGlobalClusterStateFault"
    # Removal is asked in the secondary's own region, as a failover runbook would.
    west.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=secondary_arn)
    members = east.describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0]["GlobalClusterMembers"]
    assert [m["DBClusterArn"] for m in members] == [primary_arn]
    assert (
        "GlobalClusterIdentifier" not in west.describe_db_clusters(DBClusterIdentifier=topology["sid"])["DBClusters"][0]
    )
    with pytest.raises(ClientError) as excinfo:
        west.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=secondary_arn)
    assert _error_code(excinfo) == "DBClusterNotFoundFault"
    with pytest.raises(ClientError) as excinfo:
        east.delete_global_cluster(GlobalClusterIdentifier=gid)
    assert _error_code(excinfo) == "InvalidGlobalClusterStateFault"
    east.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=primary_arn)
    east.delete_global_cluster(GlobalClusterIdentifier=gid)
    with pytest.raises(ClientError) as excinfo:
        east.delete_global_cluster(GlobalClusterIdentifier=gid)
    assert _error_code(excinfo) == "GlobalClusterNotFoundFault"
    with pytest.raises(ClientError) as excinfo:
        west.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=secondary_arn)
    assert _error_code(excinfo) == "GlobalClusterNotFoundFault"

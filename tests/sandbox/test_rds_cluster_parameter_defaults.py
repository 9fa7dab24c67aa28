"""New Aurora PostgreSQL cluster parameter groups list engine defaults (sandbox/services/rds/patches.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any


def _parameters(rds: Any, name: str) -> dict[str, dict[str, Any]]:
    return {
        p["ParameterName"]: p
        for p in rds.describe_db_cluster_parameters(DBClusterParameterGroupName=name)["Parameters"]
    }


def test_new_group_lists_engine_defaults_and_keeps_modifications(aws: Callable[..., Any]) -> None:
    rds = aws("rds", "us-west-2")
    name = f"pg-{uuid.uuid4().hex[:8]}"
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=name, DBParameterGroupFamily="aurora-postgresql16", Description="test"
    )
    try:
        params = _parameters(rds, name)
        assert {"rds.force_ssl", "rds.global_db_rpo", "log_min_duration_statement"} <= set(params)
        force_ssl = params["rds.force_ssl"]
        assert force_ssl["Source"] == "engine-default"
        assert force_ssl["IsModifiable"] is True
        assert force_ssl["ApplyType"] == "dynamic"
        assert "ParameterValue" not in force_ssl
        rds.modify_db_cluster_parameter_group(
            DBClusterParameterGroupName=name,
            Parameters=[{"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}],
        )
        after = _parameters(rds, name)["rds.force_ssl"]
        assert after["ParameterValue"] == "1"
        assert after["ApplyMethod"] == "immediate"
        assert after["ApplyType"] == "dynamic"
    finally:
        rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=name)


def test_other_families_are_left_alone(aws: Callable[..., Any]) -> None:
    rds = aws("rds", "us-east-1")
    name = f"my-{uuid.uuid4().hex[:8]}"
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=name, DBParameterGroupFamily="aurora-mysql8.0", Description="test"
    )
    try:
        assert "rds.force_ssl" not in _parameters(rds, name)
    finally:
        rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=name)

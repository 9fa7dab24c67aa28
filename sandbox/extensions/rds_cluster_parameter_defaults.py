"""A new Aurora PostgreSQL cluster parameter group lists its engine-default parameters, as on AWS.

On AWS, DescribeDBClusterParameters on a freshly created group returns every parameter of its family
(Source ``engine-default``, with ApplyType, DataType, AllowedValues, IsModifiable). moto's new group has
no parameters at all, so amazon.aws.rds_cluster_param_group, which checks that a parameter exists and is
modifiable before setting it, fails with "Could not find parameter with name". Here a new group of an
``aurora-postgresql*`` family is seeded with a subset of the real family's parameters - the ones a
deployment commonly sets - so setting them works as on AWS. ParameterValue is left out, as AWS does
for parameters whose default is computed by the engine; a modification stores what was put.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches

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


def install(_app: Any) -> None:
    from moto.rds.models import RDSBackend

    original = RDSBackend.create_db_cluster_parameter_group

    def create_db_cluster_parameter_group(self: Any, *args: Any, **kwargs: Any) -> Any:
        group = original(self, *args, **kwargs)
        if str(group.db_parameter_group_family).startswith(FAMILY_PREFIX):
            for name, parameter in engine_default_parameters().items():
                group.parameters.setdefault(name, parameter)
        return group

    patches.patch(RDSBackend, "create_db_cluster_parameter_group", create_db_cluster_parameter_group, owner=__name__)

"""Extensions: the fidelity plain moto lacks, one small module each.

An extension is a module with a docstring saying which AWS behaviour it restores and
an ``install(app)`` function that patches moto's backends or wraps ``app`` (a
``sandbox.server.SandboxApp``). Each has tests of its own under tests/sandbox/.
Order matters only for WSGI wrappers: later ones see requests first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.server import SandboxApp

EXTENSIONS = [
    "ec2_nat_gateway_tags",
    "rds_global_clusters",
    "rds_cluster_parameter_defaults",
    "s3_replication_config",
    "kms_key_state_by_arn",
    "cloudfront_origin_groups",
    "cloudfront_s3_origin_access_control",
    "cloudfront_distribution_versions",
    "ecs_service_attributes",
    "elbv2_alb_default_attributes",
    "ecs_cluster_capacity_providers",
    "ecs_list_services_active",
    "rds_cluster_automated_backups",
    # The live extensions: they run what moto only records (sandbox/runtime.py is their shared base).
    "aurora_postgres",
    "ecs_tasks",
    "elbv2_listeners",
    "route53_health_checks",
    "edge",
    "s3_replication_copies",
    # Last, so that it sees every request first: control routes, outages, reset.
    "sandbox_control",
]


def install_all(app: SandboxApp) -> None:
    for name in EXTENSIONS:
        module = importlib.import_module(f"sandbox.extensions.{name}")
        module.install(app)
        app.extensions.append(name)

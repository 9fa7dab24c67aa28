"""The extensions and their install order: the one list of everything the sandbox adds to moto.

Each service keeps its parts in ``sandbox/services/<service>/``: ``patches.py`` (moto fidelity: the AWS
behaviour moto gets wrong), and for the services the sandbox runs, ``provider.py`` (connects the API
calls to the live engine and adds the service's ``/_sandbox/`` routes) beside the engine itself
(``rds/engine.py``, ``ecs/scheduler.py``, ``elbv2/listener.py``, ``route53/checker.py``,
``s3/replication.py``). ``sandbox/edge/`` stands for CloudFront and the public domain;
``sandbox/control.py`` holds the control routes and regional outages.

An extension is a module with an ``install(app)`` function (``app`` is a ``sandbox.server.SandboxApp``)
that changes moto only through the patch registry (sandbox/patches.py), which refuses a second owner of
one moto method: so the order below matters only for WSGI wrappers (later ones see requests first) and
for control routes two extensions offer (the first keeps it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.server import SandboxApp

EXTENSIONS = [
    # Moto fidelity, one module per service.
    "services.ec2.patches",
    "services.rds.patches",
    "services.s3.patches",
    "services.kms.patches",
    "services.logs.patches",
    "services.cloudfront.patches",
    "services.ecs.patches",
    "services.elbv2.patches",
    "services.sns.patches",
    "services.route53.patches",
    "services.acm.patches",
    # The live extensions: they run what moto only records (sandbox/runtime.py is their shared base).
    "services.rds.provider",
    "services.ecs.provider",
    "services.elbv2.provider",
    "services.route53.provider",
    "edge.provider",
    "services.s3.provider",
    "services.cloudwatch.provider",
    "services.sns.provider",
    # Last, so that it sees every request first: control routes, outages, reset.
    "control",
]


def install_all(app: SandboxApp) -> None:
    for name in EXTENSIONS:
        module = importlib.import_module(f"sandbox.{name}")
        module.install(app)
        app.extensions.append(name)

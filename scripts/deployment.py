"""The deployment an inventory describes, and boto3 clients for it: what the operator scripts share
(`scripts/leftovers.py`, the drills in `scripts/drills/`).

Reads project_name, deployment_environment and the regions with their roles from the inventory
(ansible-inventory --list). AWS_ENDPOINT_URL wins when it is set; otherwise a sandbox inventory (its
aws_environment names an endpoint) reaches the sandbox on SANDBOX_PORT with its fake credentials, as the
playbooks do, and any other inventory uses the default credential chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Deployment:
    project: str
    environment: str
    regions: list[str]
    sandbox: bool  # the inventory's aws_environment names an endpoint: the sandbox's
    roles: dict[str, str] = field(default_factory=dict)  # region -> primary | secondary
    settings: dict[str, Any] = field(default_factory=dict)  # the primary host's variables, as the inventory holds them

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.environment}"

    def region_of(self, role: str) -> str:
        return next(region for region, r in self.roles.items() if r == role)

    @property
    def primary(self) -> str:
        return self.region_of("primary")

    @property
    def secondary(self) -> str:
        return self.region_of("secondary")


def read_inventory(path: str) -> Deployment:
    tool = Path(sys.executable).parent / "ansible-inventory"  # the venv's, beside this interpreter
    command = [str(tool) if tool.exists() else "ansible-inventory", "-i", path, "--list"]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"cannot read the inventory {path}: {proc.stderr.strip()[-500:]}")
    hostvars = json.loads(proc.stdout)["_meta"]["hostvars"]
    # Regional hosts carry region_role; the global host's services are asked in us-east-1.
    roles = {v["aws_region"]: v["region_role"] for v in hostvars.values() if "region_role" in v and "aws_region" in v}
    host = next(iter(hostvars.values()), {})
    if not roles or "project_name" not in host:
        raise SystemExit(f"{path} has no regional host with aws_region and project_name: is it this project's?")
    endpoint = (host.get("aws_environment") or {}).get("AWS_ENDPOINT_URL")
    primary = next((v for v in hostvars.values() if v.get("region_role") == "primary"), host)
    return Deployment(
        host["project_name"], host["deployment_environment"], sorted(roles), bool(endpoint), roles, primary
    )


def clients(session: Any, region: str, *, connect_timeout: float = 5, read_timeout: float = 60) -> Callable[[str], Any]:
    """client("ec2") -> a client for region. Few retries, short connect timeout: a stopped sandbox
    (or a dark region) should be reported at once, not after botocore's back-off."""
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=connect_timeout, read_timeout=read_timeout
    )
    return lambda service: session.client(service, region_name=region, config=config)


def connect(deployment: Deployment) -> tuple[Any, str]:
    """A boto3 session and the account id; exits naming the fix when AWS (or the sandbox) cannot be asked."""
    import boto3
    import botocore.exceptions

    if deployment.sandbox and not os.environ.get("AWS_ENDPOINT_URL"):
        from sandbox import config

        os.environ.update(config.load().client_env())  # what the inventory's aws_environment sets
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the AWS endpoint"
    session = boto3.session.Session()
    try:
        return session, clients(session, "us-east-1")("sts").get_caller_identity()["Account"]
    except botocore.exceptions.EndpointConnectionError:
        fix = "start it with `make sandbox-up` (same SANDBOX_PORT)" if deployment.sandbox else "check AWS_ENDPOINT_URL"
        raise SystemExit(f"nothing answers at {endpoint}: {fix}") from None
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.ClientError) as e:
        raise SystemExit(
            f"no usable AWS credentials ({e}): set AWS_PROFILE or log in (aws sso login); "
            'for the sandbox, eval "$(make -s sandbox-env)"'
        ) from None

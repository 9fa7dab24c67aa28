"""Where the sandbox lives: its port, state folder and the credentials clients use.

Every value can be overridden from the environment so that a test session can run
its own sandbox beside a user's (a different SANDBOX_PORT and SANDBOX_STATE_DIR).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# 4566 is the port LocalStack made familiar for "a local AWS"; loopback only, always.
DEFAULT_PORT = 4566
HOST = "127.0.0.1"

# The loopback source addresses the sandbox's own AWS-side clients connect from, so that an ALB's
# security groups can tell them apart as AWS's do (Linux accepts any 127.0.0.0/8 source). They are the
# entries of the AWS-managed prefix lists (sandbox/services/ec2/patches.py). Everything else - tests,
# operators' tools, the failover controller, SNS deliveries - connects from HOST.
EDGE_SOURCE = "127.0.0.2"  # CloudFront's edge (sandbox/edge/): com.amazonaws.global.cloudfront.origin-facing
ROUTE53_CHECKER_SOURCE = "127.0.0.3"  # Route 53's health checkers: com.amazonaws.<region>.route53-healthchecks

# Fake credentials: moto accepts any, and they are not secrets. They are fixed so
# that `make sandbox-env` prints the same lines every time.
ACCESS_KEY_ID = "AKIASANDBOXEXAMPLE00"
SECRET_ACCESS_KEY = "sandbox-secret-access-key-not-a-secret"  # noqa: S105 - fixed fake value
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class SandboxConfig:
    port: int
    state_dir: Path
    # The edge (the local stand-in for CloudFront and the public domain): SANDBOX_URL.
    edge_port: int = 0

    @property
    def edge(self) -> str:
        return f"http://{HOST}:{self.edge_port or self.port + 1}"

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "sandbox.pid"

    @property
    def logfile(self) -> Path:
        return self.state_dir / "sandbox.log"

    def client_env(self) -> dict[str, str]:
        """The environment any AWS client (boto3, Ansible, the AWS CLI) needs to reach the sandbox."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": DEFAULT_REGION,
            "AWS_REGION": DEFAULT_REGION,
        }


def load() -> SandboxConfig:
    raw_port = os.environ.get("SANDBOX_PORT", str(DEFAULT_PORT))
    try:
        port = int(raw_port)
    except ValueError:
        raise SystemExit(
            f"SANDBOX_PORT={raw_port!r} is not a port number: set it to an integer such as {DEFAULT_PORT}"
        ) from None
    if not 1 <= port <= 65535:
        raise SystemExit(f"SANDBOX_PORT={port} is out of range: choose a port between 1 and 65535")
    state_dir = Path(os.environ.get("SANDBOX_STATE_DIR", REPO_ROOT / ".sandbox")).resolve()
    edge_port = _port("SANDBOX_EDGE_PORT", port + 1)
    return SandboxConfig(port=port, state_dir=state_dir, edge_port=edge_port)


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"{variable}={raw!r} is not a port number: set it to an integer between 1 and 65535")
    return int(raw)

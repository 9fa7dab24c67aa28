"""What the app logs in to the database with: a password, or an IAM authentication token per host.

With IAM database authentication (DB_IAM_AUTH=true) the database user has no password: it is a member of
Aurora's ``rds_iam``, and the password sent is a token the app signs itself with its AWS credentials (the task
role's). A token is a SigV4-presigned ``connect`` request for one user, one host and port, in the region of the
cluster that receives it, good for opening connections for 15 minutes; signing it is local (no API call), so a
new one is made for every connection: a cached token would outlive a change of region behind the global writer
endpoint (a failover), and every connection it then opens would be refused until the cache expired.

The region comes from the host's name (``<name>.cluster-<id>.<region>.rds.amazonaws.com``). Aurora's global
writer endpoint (``<name>.global-<id>.global.rds.amazonaws.com``) names no region: it is a CNAME to the current
writer cluster's endpoint, whose name does (a name somewhere in the chain the resolver reports). A name that leads to no region (an address, as in the sandbox)
signs for this app's own region (REGION).
"""

from __future__ import annotations

import re
import socket
from typing import Any, Protocol

from app.core.config import HostList, Settings

_REGION_IN_RDS_NAME = re.compile(r"\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com\.?$", re.IGNORECASE)


class Credentials(Protocol):
    def password(self, hosts: HostList) -> str:
        """The password to send to the first host of hosts that answers (the same for each)."""
        ...


class StaticPassword:
    """One password for every host: DB_PASSWORD or the secret DB_SECRET_ARN (resolved once, at start)."""

    def __init__(self, password: str) -> None:
        self._password = password

    def password(self, hosts: HostList) -> str:
        return self._password


def token_region(host: str, default: str) -> str:
    """The region an IAM token for host must be signed for: from its name, else its canonical name, else default."""
    found = _REGION_IN_RDS_NAME.search(host)
    if found:
        return found["region"].lower()
    try:
        canonical, aliases, _addresses = socket.gethostbyname_ex(host)
    except OSError:
        return default
    # The CNAME chain (global endpoint -> cluster endpoint -> instance endpoint -> ...) ends in a name that may carry
    # no region of RDS's form: any name on the way that does is the region.
    for name in (canonical, *aliases):
        found = _REGION_IN_RDS_NAME.search(name)
        if found:
            return found["region"].lower()
    return default


class IamTokens:
    """IAM authentication tokens for one database user, signed with this process's AWS credentials."""

    def __init__(self, user: str, region: str, client: Any = None) -> None:
        self.user = user
        self.region = region
        self._client = client

    @classmethod
    def for_settings(cls, settings: Settings, user: str | None = None) -> IamTokens:
        return cls(user or settings.db_user, settings.region)

    def _rds(self) -> Any:
        if self._client is None:
            import boto3

            # Signing needs the region only for the client; each token names its own (token_region).
            self._client = boto3.client("rds", region_name=self.region if self.region != "local" else "us-east-1")
        return self._client

    def password(self, hosts: HostList) -> str:
        # Settings refuse a list of hosts with DB_IAM_AUTH: libpq would send this one token to each.
        ((host, port),) = hosts
        return self._rds().generate_db_auth_token(
            DBHostname=host, Port=port, DBUsername=self.user, Region=token_region(host, self.region)
        )


def credentials_for(settings: Settings) -> Credentials:
    """The web tasks' credentials: IAM tokens with DB_IAM_AUTH, else the password (may read Secrets Manager)."""
    if settings.db_iam_auth:
        return IamTokens.for_settings(settings)
    from app.core.config import resolve_password

    return StaticPassword(resolve_password(settings))

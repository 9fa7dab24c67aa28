"""IAM database authentication on the Aurora nodes (a Fleet part): the verifier, and what a token must name.

Every node's pg_hba (nodes.py ``AuroraNode.hba_lines``) sends a member of ``rds_iam`` to the sandbox-wide LDAP
verifier (ldap_verifier.py) with the bind DN ``<user>@<cluster resource id>``; :meth:`IamAuthentication.check_login`
finds the cluster by that resource id (stable across renames, failovers and switchovers, shared by every node of
the cluster) and accepts the password only if it is a valid IAM auth token (iam_tokens.py) for that user, the
cluster's region and an endpoint that leads to the cluster, while the cluster has IAMDatabaseAuthenticationEnabled.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any

from sandbox import config
from sandbox.postgres import HOST
from sandbox.services.rds import iam_tokens
from sandbox.services.rds.ldap_verifier import LdapVerifier
from sandbox.services.rds.nodes import Member, log


def secret_for(access_key: str) -> iam_tokens.Secret | None:
    """The secret of an access key the sandbox knows: its fixed credentials (every client's and task's), an active
    access key of an IAM user, or the temporary credentials of an STS AssumeRole session (with its session token and
    expiry; AssumeRoleWithWebIdentity and WithSAML too), as moto issued them. GetSessionToken's and
    GetFederationToken's are not kept by moto: unknown."""
    if access_key == config.ACCESS_KEY_ID:
        return iam_tokens.Secret(config.SECRET_ACCESS_KEY)
    return _assumed_role_secret(access_key) or _user_secret(access_key)


def _values(mapping: dict[Any, Any]) -> list[Any]:
    """The values of a moto dict that request threads may be changing meanwhile (read again when one did)."""
    for _ in range(5):
        try:
            return list(mapping.values())
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
    return []


def _assumed_role_secret(access_key: str) -> iam_tokens.Secret | None:
    from moto.sts.models import sts_backends

    for account_id in list(sts_backends.keys()):
        for backend in _values(sts_backends[account_id]):
            for role in list(backend.assumed_roles):
                if role.access_key_id == access_key:
                    expires_at = role.expiration.replace(tzinfo=dt.UTC)
                    return iam_tokens.Secret(role.secret_access_key, role.session_token, expires_at)
    return None


def _user_secret(access_key: str) -> iam_tokens.Secret | None:
    from moto.iam.models import iam_backends

    for account_id in list(iam_backends.keys()):
        for backend in _values(iam_backends[account_id]):
            for user in _values(backend.users):
                for key in list(user.access_keys):
                    if key.access_key_id == access_key and key.status == "Active":
                        return iam_tokens.Secret(key.secret_access_key)
    return None


class IamAuthentication:
    """The LDAP verifier every node's pg_hba names, and the check it runs (a Fleet part)."""

    _verifier: LdapVerifier | None = None
    _verifier_lock = threading.Lock()

    def iam_verifier_port(self) -> int:
        """The verifier's port, started on the runtime's loop at first use (called from request and worker
        threads, never from the loop)."""
        with self._verifier_lock:
            if self._verifier is None:
                verifier = LdapVerifier(self.check_login)
                self.rt.call(verifier.start(HOST))
                self._verifier = verifier
                log.info("aurora: IAM database authentication verifier (LDAP) on %s:%d", HOST, verifier.port)
            return self._verifier.port

    def close_iam_verifier(self) -> None:
        with self._verifier_lock:
            verifier, self._verifier = self._verifier, None
        if verifier is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed (shutdown)
                self.rt.aio.call_soon_threadsafe(verifier.close)

    def check_login(self, dn: str, password: str) -> str | None:
        """None when password is a token that lets the DN's user into the DN's cluster, else the reason (logged)."""
        user, _, realm = dn.rpartition("@")
        member = self._member_by_realm(realm)
        reason = None
        if member is None:
            reason = f"no aurora-postgresql cluster with resource id {realm!r}"
        elif not member.record.iam_database_authentication_enabled:
            reason = "IAM database authentication is not enabled on the cluster (EnableIAMDatabaseAuthentication)"
        else:
            try:
                iam_tokens.check_token(
                    password,
                    user=user,
                    region=member.region,
                    hosts=self.iam_hosts(member),
                    secret_for=secret_for,
                    nameless=self.nameless_hosts(member),
                )
            except iam_tokens.TokenRefused as exc:
                reason = str(exc)
        name = member.cluster_id if member is not None else realm
        if reason is not None:
            log.warning("aurora %s: IAM authentication of %r refused: %s", name, user, reason)
        else:
            log.debug("aurora %s: %r logged in with an IAM auth token", name, user)
        return reason

    def _member_by_realm(self, realm: str) -> Member | None:
        for member in self.members():
            if not member.deleted and member.record.db_cluster_resource_id == realm:
                return member
        return None

    def nameless_hosts(self, member: Member) -> dict[str, set[str]]:
        """The global writer endpoint's loopback listeners (while member is the writer), each with every member's
        region: the name a client on AWS reads the writer's region from (the CNAME's target) is not there, so an app
        in either region signs a token for it with its own (docs/sandbox.md, "IAM database authentication")."""
        glob = self.global_of(member)
        if glob is None or self.writer_of(glob) is not member:
            return {}
        regions = {m.region for m in self.members_of(glob) if not m.deleted}
        listeners = (self.rt.resolve(name, port) for name, port in glob.published)
        return {f"{local[0]}:{local[1]}": regions for local in listeners if local is not None}

    def iam_hosts(self, member: Member) -> set[str]:
        """Every ``host:port`` a token may name to reach member: its cluster, reader and instance endpoints, the
        global writer endpoint while it is the writer, each by its AWS name and by its loopback listener."""
        names: list[tuple[str, int]] = list(member.published)
        names += [inst.endpoint for inst in list(member.instances.values()) if not inst.deleted]
        glob = self.global_of(member)
        if glob is not None and self.writer_of(glob) is member:
            names += glob.published
        hosts = set()
        for name, port in names:
            hosts.add(f"{name.lower().rstrip('.')}:{port}")
            local = self.rt.resolve(name, port)
            if local is not None:
                hosts.add(f"{local[0]}:{local[1]}")
        return hosts

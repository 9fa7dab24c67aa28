"""RDS IAM database authentication tokens, checked as RDS checks them (for the LDAP verifier: iam_auth.py).

An IAM auth token is what ``generate_db_auth_token`` returns: a SigV4 presigned URL without its scheme,
``host:port/?Action=connect&DBUser=<user>&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<key>/<date>/<region>/
rds-db/aws4_request&X-Amz-Date=...&X-Amz-Expires=900&X-Amz-SignedHeaders=host[&X-Amz-Security-Token=...]
&X-Amz-Signature=...``. RDS accepts it as the password of a member of ``rds_iam`` when every part holds for the
database it reaches; :func:`check_token` says which part does not (:class:`TokenRefused`), never echoing the token.

The signature is recomputed with botocore's own presigner (``SigV4QueryAuth``) at the token's own timestamp, so the
sandbox signs exactly as the SDKs do rather than a hand-written copy of SigV4.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "rds-db"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES_S = 900  # RDS: a token is valid for 15 minutes at most
# A token dated this far ahead of the sandbox's clock still counts (SigV4's usual allowance for clock skew).
CLOCK_SKEW_S = 300
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
REQUIRED = ("Action", "DBUser", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
            "X-Amz-SignedHeaders", "X-Amz-Signature")  # fmt: skip
OPTIONAL = ("X-Amz-Security-Token",)


class TokenRefused(Exception):
    """The token does not let this user in; the message says why (for the sandbox log, never the client)."""


@dataclass(frozen=True)
class Secret:
    """What signs for an access key: its secret, and the session token and expiry of a temporary key."""

    secret_key: str
    session_token: str | None = None
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class Token:
    """A token's parts, parsed (host is lowercase, port part of it)."""

    host: str
    params: dict[str, str]

    @property
    def access_key(self) -> str:
        return self.params["X-Amz-Credential"].split("/", 1)[0]


def parse_token(token: str) -> Token:
    """Split ``host:port/?query`` into its host and its (unique) query parameters."""
    host, sep, rest = token.partition("/")
    if not sep or not rest.startswith("?") or not host:
        raise TokenRefused("not an IAM auth token (expected host:port/?Action=connect&...)")
    pairs = parse_qsl(rest[1:], keep_blank_values=True, strict_parsing=False)
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise TokenRefused(f"query parameter {key} appears twice")
        params[key] = value
    missing = [key for key in REQUIRED if key not in params]
    if missing:
        raise TokenRefused(f"missing query parameters: {', '.join(missing)}")
    unknown = sorted(set(params) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise TokenRefused(f"unexpected query parameters: {', '.join(unknown)}")
    return Token(host=host.lower(), params=params)


def check_token(
    token: str,
    *,
    user: str,
    region: str,
    hosts: Collection[str],
    secret_for: Callable[[str], Secret | None],
    now: dt.datetime | None = None,
    nameless: Mapping[str, Collection[str]] | None = None,
) -> None:
    """Accept token as ``user``'s password for a database in ``region`` reached through one of ``hosts``
    (``name:port`` or ``127.0.0.1:port``, lowercase), or raise TokenRefused with the reason.

    ``nameless`` maps hosts whose token may be signed for any of several regions: the global writer endpoint's
    loopback listener. On AWS a client reads the writer's region from the name the endpoint's CNAME leads to; behind
    a loopback address there is no name, so a client can only sign for its own region, one of the members'.
    """
    parsed = parse_token(token)
    params = parsed.params
    if params["Action"] != "connect":
        raise TokenRefused(f"Action is {params['Action']!r}, not 'connect'")
    if params["DBUser"] != user:
        raise TokenRefused(f"the token is for DBUser {params['DBUser']!r}, not {user!r}")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise TokenRefused(f"X-Amz-Algorithm is {params['X-Amz-Algorithm']!r}, not {ALGORITHM}")
    if params["X-Amz-SignedHeaders"] != "host":
        raise TokenRefused(f"X-Amz-SignedHeaders is {params['X-Amz-SignedHeaders']!r}, not 'host'")
    now = now or dt.datetime.now(dt.UTC)
    signed_at = _check_time(params, now)
    scoped = _scoped_region(params)
    if nameless and scoped in nameless.get(parsed.host, ()):
        region = scoped
    _check_scope(params, signed_at, region)
    if parsed.host not in hosts:
        raise TokenRefused(f"the token is for {parsed.host}, which does not lead to this database")
    secret = secret_for(parsed.access_key)
    if secret is None:
        raise TokenRefused(f"unknown access key {parsed.access_key}")
    session_token = params.get("X-Amz-Security-Token")
    if secret.session_token is None and session_token is not None:
        raise TokenRefused(f"access key {parsed.access_key} is not temporary, yet the token carries a session token")
    if secret.session_token is not None and session_token != secret.session_token:
        raise TokenRefused(f"access key {parsed.access_key} is temporary: its session token is missing or wrong")
    if secret.expires_at is not None and now > secret.expires_at:
        raise TokenRefused(
            f"the temporary credentials of access key {parsed.access_key} expired at {secret.expires_at:%Y-%m-%dT%H:%M:%SZ}"
        )
    expected = sign(parsed, secret, region)
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        raise TokenRefused("the signature does not match (signed with another secret, or the token was altered)")


def _check_time(params: dict[str, str], now: dt.datetime) -> dt.datetime:
    try:
        signed_at = dt.datetime.strptime(params["X-Amz-Date"], TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        raise TokenRefused(f"X-Amz-Date {params['X-Amz-Date']!r} is not a timestamp like 20260102T030405Z") from None
    expires = params["X-Amz-Expires"]
    if not expires.isdigit() or not 0 < int(expires) <= MAX_EXPIRES_S:
        raise TokenRefused(f"X-Amz-Expires is {expires!r}: it must be 1 to {MAX_EXPIRES_S} seconds")
    if signed_at > now + dt.timedelta(seconds=CLOCK_SKEW_S):
        raise TokenRefused(f"the token is dated {signed_at:%Y-%m-%dT%H:%M:%SZ}, in the future")
    expired_at = signed_at + dt.timedelta(seconds=int(expires))
    if now > expired_at:
        raise TokenRefused(f"the token expired at {expired_at:%Y-%m-%dT%H:%M:%SZ}")
    return signed_at


def _scoped_region(params: dict[str, str]) -> str | None:
    parts = params["X-Amz-Credential"].split("/")
    return parts[2] if len(parts) == 5 else None


def _check_scope(params: dict[str, str], signed_at: dt.datetime, region: str) -> None:
    parts = params["X-Amz-Credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise TokenRefused("X-Amz-Credential is not <key>/<date>/<region>/rds-db/aws4_request")
    _key, date, token_region, service, _terminator = parts
    if date != f"{signed_at:%Y%m%d}":
        raise TokenRefused(f"the credential's date {date} is not the day of X-Amz-Date")
    if service != SERVICE:
        raise TokenRefused(f"the token is signed for service {service!r}, not {SERVICE}")
    if token_region != region:
        raise TokenRefused(f"the token is signed for region {token_region}, the database is in {region}")


class _SignedAt(SigV4QueryAuth):
    """botocore's presigner, at a given timestamp instead of the clock's (add_auth is otherwise botocore's)."""

    def __init__(self, credentials: Credentials, region: str, expires: int, timestamp: str) -> None:
        super().__init__(credentials, SERVICE, region, expires=expires)
        self._timestamp = timestamp

    def add_auth(self, request: Any) -> None:
        request.context["timestamp"] = self._timestamp
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        self._inject_signature_to_request(request, self.signature(self.string_to_sign(request, canonical), request))


def sign(token: Token, secret: Secret, region: str) -> str:
    """The signature an SDK computes for this token's host, user, key, time and expiry (hex)."""
    params = token.params
    credentials = Credentials(token.access_key, secret.secret_key, params.get("X-Amz-Security-Token"))
    request = AWSRequest(
        method="GET", url=f"https://{token.host}/", data={"Action": params["Action"], "DBUser": params["DBUser"]}
    )
    _SignedAt(credentials, region, int(params["X-Amz-Expires"]), params["X-Amz-Date"]).add_auth(request)
    query = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    return query["X-Amz-Signature"]

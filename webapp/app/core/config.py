"""Settings from the environment (pydantic-settings). docs/webapp.md lists every variable with its default.

Three database endpoints, each optional but the first:
- ``DB_HOST``: this region's cluster endpoint. Its ``pg_is_in_recovery()`` is the role /api/status
  reports; reads and writes go there unless the two below say otherwise.
- ``DB_READER_HOST``: this region's reader endpoint, for reads.
- ``DB_WRITER_HOST``: Aurora's global writer endpoint (always the current writer), for writes.
Each may be a comma-separated list ``host[:port],host[:port]``: libpq then tries them in order, and
for writes keeps only a server that accepts writes (``target_session_attrs=read-write``).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

HostList = tuple[tuple[str, int], ...]


def parse_hosts(value: str, default_port: int) -> HostList:
    """'a:5432,b' -> (('a', 5432), ('b', default_port)); raises ValueError naming the bad entry."""
    hosts = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, str(default_port)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not host or host:port")
        hosts.append((host, int(port)))
    return tuple(hosts)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # Where this copy runs: reported by /api/status and stored with every record it writes.
    region: str = Field("local", validation_alias="REGION", min_length=1, max_length=32)
    environment: Literal["development", "sandbox", "production"] = Field("development", validation_alias="APP_ENV")

    # The database.
    db_host: str = Field(validation_alias="DB_HOST", min_length=1)
    db_port: int = Field(5432, validation_alias="DB_PORT", gt=0, lt=65536)
    db_name: str = Field("app", validation_alias="DB_NAME", min_length=1)
    db_user: str = Field("app", validation_alias="DB_USER", min_length=1)
    db_password: SecretStr | None = Field(None, validation_alias="DB_PASSWORD")
    db_secret_arn: str | None = Field(None, validation_alias="DB_SECRET_ARN")
    # Log in with an IAM authentication token (app/core/credentials.py) instead of a password: what the web
    # tasks do on Aurora, where DB_USER is a member of rds_iam and has no password at all.
    db_iam_auth: bool = Field(False, validation_alias="DB_IAM_AUTH")
    # The app's own role, made and granted by `python -m app migrate` (run as the schema owner), with either a
    # password (DB_APP_PASSWORD) or IAM authentication (DB_APP_IAM_AUTH: the role is put in rds_iam).
    db_app_user: str | None = Field(None, validation_alias="DB_APP_USER", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    db_app_password: SecretStr | None = Field(None, validation_alias="DB_APP_PASSWORD")
    db_app_iam_auth: bool = Field(False, validation_alias="DB_APP_IAM_AUTH")
    db_reader_host: str | None = Field(None, validation_alias="DB_READER_HOST")
    db_writer_host: str | None = Field(None, validation_alias="DB_WRITER_HOST")
    db_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "prefer", validation_alias="DB_SSLMODE"
    )
    # The CA bundle verify-ca / verify-full check the server's certificate against (the image carries RDS's:
    # webapp/Dockerfile); None: libpq's default (~/.postgresql/root.crt).
    db_sslrootcert: str | None = Field(None, validation_alias="DB_SSLROOTCERT", min_length=1)
    # Short bounds so that a dead or failed-over database costs a request seconds, not minutes.
    db_connect_timeout_s: int = Field(2, validation_alias="DB_CONNECT_TIMEOUT", ge=1, le=60)
    db_statement_timeout_ms: int = Field(5000, validation_alias="DB_STATEMENT_TIMEOUT_MS", ge=100, le=600_000)
    db_pool_size: int = Field(10, validation_alias="DB_POOL_SIZE", ge=1, le=200)
    db_pool_max_overflow: int = Field(10, validation_alias="DB_POOL_MAX_OVERFLOW", ge=0, le=200)
    db_pool_timeout_s: float = Field(2.0, validation_alias="DB_POOL_TIMEOUT", gt=0, le=60)

    # Health and status.
    ready_timeout_s: float = Field(1.0, validation_alias="READY_TIMEOUT", gt=0, le=10)
    role_refresh_s: float = Field(1.0, validation_alias="ROLE_REFRESH_INTERVAL", gt=0, le=60)
    read_only_retry_after_s: int = Field(5, validation_alias="READ_ONLY_RETRY_AFTER", ge=1, le=3600)
    # How long a write waits for a writer while this region's database promotes one (db.execute_write);
    # with a try's connect timeout it must stay under the CDN's origin read timeout (8 s). 0: never wait.
    write_wait_s: float = Field(5.0, validation_alias="WRITE_WAIT", ge=0, le=30)

    # The HTTP server (python -m app).
    host: str = Field("127.0.0.1", validation_alias="HOST")
    port: int = Field(8000, validation_alias="PORT", gt=0, lt=65536)
    workers: int = Field(1, validation_alias="WEB_CONCURRENCY", ge=1, le=64)
    graceful_timeout_s: int = Field(20, validation_alias="GRACEFUL_TIMEOUT", ge=0, le=300)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", validation_alias="LOG_LEVEL")
    # One JSON line per request; /health and /metrics are left out (probes every few seconds are noise).
    access_log: bool = Field(True, validation_alias="ACCESS_LOG")

    # The public surface. A larger body is answered 413 before it is read: the largest valid record, each
    # character sent as a \uXXXX\uXXXX escape, is 50,709 bytes. The API's description and the metrics
    # (/docs, /redoc, /openapi.json, /metrics) are served only where asked for: the ALB sends every path
    # to the app, and they tell a stranger more than the API does.
    max_body_bytes: int = Field(64 * 1024, validation_alias="MAX_BODY_BYTES", ge=1024, le=64 * 1024 * 1024)
    internal_endpoints: bool = Field(False, validation_alias="INTERNAL_ENDPOINTS")
    task_id: str | None = Field(None, validation_alias="TASK_ID")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("db_host", "db_reader_host", "db_writer_host")
    @classmethod
    def _hosts(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # DB_HOST itself is required: None fails its type check with the field named
        parse_hosts(value, 5432)  # a ValueError here becomes a 422-style error naming the variable
        return value.strip()

    @model_validator(mode="after")
    def _one_password_source(self) -> Settings:
        if self.db_iam_auth:
            if self.db_password is not None or self.db_secret_arn:
                raise ValueError(
                    "DB_IAM_AUTH=true logs in with IAM authentication tokens: unset DB_PASSWORD and DB_SECRET_ARN"
                )
            for name, value in (
                ("DB_HOST", self.db_host),
                ("DB_READER_HOST", self.db_reader_host),
                ("DB_WRITER_HOST", self.db_writer_host),
            ):
                if value and len(parse_hosts(value, self.db_port)) > 1:
                    raise ValueError(
                        f"{name}={value}: with DB_IAM_AUTH=true give one host (an IAM token is good for one host, "
                        "and libpq sends every host of a list the same password)"
                    )
        else:
            if self.db_password is not None and self.db_secret_arn:
                raise ValueError("set DB_PASSWORD or DB_SECRET_ARN, not both (DB_SECRET_ARN is meant for ECS)")
            if self.db_password is None and not self.db_secret_arn:
                raise ValueError(
                    "set DB_SECRET_ARN (a Secrets Manager secret holding the password), DB_PASSWORD, "
                    "or DB_IAM_AUTH=true (IAM authentication)"
                )
        if self.environment == "production" and self.db_password is not None:
            raise ValueError("APP_ENV=production takes the password from DB_SECRET_ARN only, not DB_PASSWORD")
        if self.db_app_password is not None and self.db_app_iam_auth:
            raise ValueError("set DB_APP_PASSWORD or DB_APP_IAM_AUTH=true for the app role, not both")
        app_login = self.db_app_password is not None or self.db_app_iam_auth
        if (self.db_app_user is None) == app_login:
            raise ValueError(
                "set DB_APP_USER together with DB_APP_PASSWORD or DB_APP_IAM_AUTH=true (the app role migrate makes), "
                "or none of them"
            )
        if self.db_app_password is not None and len(self.db_app_password.get_secret_value()) < 16:
            raise ValueError("DB_APP_PASSWORD must be at least 16 characters")
        verifies = self.db_sslmode in ("verify-ca", "verify-full")
        if verifies and self.db_sslrootcert is not None and not os.path.isfile(self.db_sslrootcert):
            raise ValueError(
                f"DB_SSLROOTCERT={self.db_sslrootcert} does not exist: DB_SSLMODE={self.db_sslmode} checks the "
                "server's certificate against it (the image carries RDS's bundle; webapp/Dockerfile)"
            )
        if self.db_app_user is not None and self.db_app_user == self.db_user:
            raise ValueError(f"DB_APP_USER must not be DB_USER ({self.db_user}): migrate runs as the schema owner")
        return self

    # -- derived -------------------------------------------------------------------------------

    @property
    def regional_hosts(self) -> HostList:
        return parse_hosts(self.db_host, self.db_port)

    @property
    def reader_hosts(self) -> HostList:
        return parse_hosts(self.db_reader_host, self.db_port) if self.db_reader_host else self.regional_hosts

    @property
    def writer_hosts(self) -> HostList:
        return parse_hosts(self.db_writer_host, self.db_port) if self.db_writer_host else self.regional_hosts

    @property
    def task(self) -> str:
        """The ECS task id when known (TASK_ID, or the task ARN from the ECS metadata endpoint), else the host name."""
        return self.task_id or _ecs_task_id() or os.uname().nodename


@lru_cache(maxsize=1)
def _ecs_task_id() -> str | None:
    uri = os.environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if not uri:
        return None
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri}/task", timeout=1) as resp:  # noqa: S310 - ECS's link-local endpoint
            return json.load(resp)["TaskARN"].rsplit("/", 1)[-1]
    except (OSError, ValueError, KeyError):
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # values come from the environment


def resolve_password(settings: Settings) -> str:
    """The database password: DB_PASSWORD, or the Secrets Manager secret DB_SECRET_ARN (an RDS-style JSON
    secret with a "password" key, or the bare password). AWS_ENDPOINT_URL points boto3 at the sandbox."""
    if settings.db_password is not None:
        return settings.db_password.get_secret_value()
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    arn = settings.db_secret_arn
    assert arn
    region = arn.split(":")[3] if arn.startswith("arn:") else settings.region
    try:
        secret = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)["SecretString"]
    except (BotoCoreError, ClientError) as exc:
        raise RuntimeError(f"cannot read the database password from DB_SECRET_ARN={arn}: {exc}") from None
    try:
        doc = json.loads(secret)
    except ValueError:
        return secret
    if isinstance(doc, dict):
        if "password" not in doc:
            raise RuntimeError(f"the secret DB_SECRET_ARN={arn} is JSON without a 'password' key")
        return str(doc["password"])
    return secret

"""Settings from the environment, and the password from Secrets Manager (on the sandbox)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from app.core.config import Settings, parse_hosts, resolve_password
from pydantic import ValidationError
from webapp_support import WEBAPP


def make(**env: str) -> Settings:
    return Settings(**{"DB_HOST": "db.example", "DB_PASSWORD": "pw", **env})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DB_HOST", "DB_PASSWORD", "DB_SECRET_ARN", "DB_WRITER_HOST", "DB_READER_HOST", "REGION", "APP_ENV"):
        monkeypatch.delenv(key, raising=False)


def test_defaults_and_derived_hosts() -> None:
    s = make(DB_WRITER_HOST="writer.global:6432,other", DB_PORT="5433")
    assert s.regional_hosts == (("db.example", 5433),)
    assert s.reader_hosts == s.regional_hosts
    assert s.writer_hosts == (("writer.global", 6432), ("other", 5433))
    assert s.host == "127.0.0.1" and s.port == 8000 and s.workers == 1
    assert "pw" not in repr(s)


def test_the_public_surface_is_closed_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERNAL_ENDPOINTS", raising=False)
    monkeypatch.delenv("MAX_BODY_BYTES", raising=False)
    s = make()
    assert s.internal_endpoints is False and s.max_body_bytes == 64 * 1024
    assert make(INTERNAL_ENDPOINTS="true", MAX_BODY_BYTES="2048").internal_endpoints is True
    with pytest.raises(ValidationError, match="MAX_BODY_BYTES"):
        make(MAX_BODY_BYTES="100")


@pytest.mark.parametrize("value", ["db:notaport", "db:0", ":5432"])
def test_bad_host_names_the_variable(value: str) -> None:
    with pytest.raises(ValidationError, match="DB_WRITER_HOST"):
        make(DB_WRITER_HOST=value)


def test_password_sources() -> None:
    with pytest.raises(ValidationError, match="not both"):
        make(DB_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
    with pytest.raises(ValidationError, match="DB_SECRET_ARN"):
        Settings(DB_HOST="db")
    with pytest.raises(ValidationError, match="production takes the password from DB_SECRET_ARN"):
        make(APP_ENV="production")
    assert resolve_password(make()) == "pw"


def test_parse_hosts() -> None:
    assert parse_hosts("a, b:1 ,", 5432) == (("a", 5432), ("b", 1))


def test_invalid_environment_stops_with_a_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "app"], cwd=WEBAPP, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "invalid settings" in proc.stderr and "DB_HOST" in proc.stderr


@pytest.mark.parametrize(
    ("secret", "expected"), [(json.dumps({"username": "u", "password": "s3"}), "s3"), ("bare", "bare")]
)
def test_password_from_secrets_manager(
    sandbox, aws, monkeypatch: pytest.MonkeyPatch, secret: str, expected: str
) -> None:
    sm = aws("secretsmanager", "us-west-2")
    name = f"webapp-db-{expected}"
    try:
        arn = sm.create_secret(Name=name, SecretString=secret)["ARN"]
    except sm.exceptions.ResourceExistsException:
        arn = sm.describe_secret(SecretId=name)["ARN"]
    for key, value in sandbox.client_env().items():
        monkeypatch.setenv(key, value)
    settings = Settings(DB_HOST="db", DB_SECRET_ARN=arn, APP_ENV="production")
    assert resolve_password(settings) == expected


def test_missing_secret_is_named(sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in sandbox.client_env().items():
        monkeypatch.setenv(key, value)
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    with pytest.raises(RuntimeError, match="DB_SECRET_ARN=arn:aws:secretsmanager:us-east-1:123456789012:secret:nope"):
        resolve_password(Settings(DB_HOST="db", DB_SECRET_ARN=arn))


def test_verified_tls_names_the_ca_bundle_libpq_checks_the_server_against(tmp_path) -> None:
    """Production connects with DB_SSLMODE=verify-full against RDS's CA bundle (roles/compute sets both); a bundle
    that is not there is refused at start, naming the variable, instead of failing every connection later."""
    from app.core.db import conninfo
    from psycopg.conninfo import conninfo_to_dict

    bundle = tmp_path / "rds-global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = make(DB_SSLMODE="verify-full", DB_SSLROOTCERT=str(bundle))
    parts = conninfo_to_dict(conninfo(settings, "pw", settings.writer_hosts, read_write=True))
    assert (parts["sslmode"], parts["sslrootcert"]) == ("verify-full", str(bundle))
    assert "sslrootcert" not in conninfo_to_dict(conninfo(make(), "pw", make().writer_hosts, read_write=True))
    with pytest.raises(ValidationError, match=f"DB_SSLROOTCERT={tmp_path / 'missing.pem'} does not exist"):
        make(DB_SSLMODE="verify-full", DB_SSLROOTCERT=str(tmp_path / "missing.pem"))


def test_iam_authentication_takes_no_password_and_one_host_per_endpoint() -> None:
    iam = Settings(DB_HOST="db.example", DB_IAM_AUTH="true", DB_WRITER_HOST="writer.example:5433")
    assert iam.db_iam_auth and iam.writer_hosts == (("writer.example", 5433),)
    with pytest.raises(ValidationError, match="DB_IAM_AUTH=true logs in with IAM authentication tokens"):
        make(DB_IAM_AUTH="true")
    with pytest.raises(ValidationError, match="DB_WRITER_HOST=a,b: with DB_IAM_AUTH=true give one host"):
        Settings(DB_HOST="db.example", DB_IAM_AUTH="true", DB_WRITER_HOST="a,b")


def test_the_app_role_logs_in_by_password_or_iam_never_both() -> None:
    assert make(DB_APP_USER="hawa_app", DB_APP_IAM_AUTH="true").db_app_iam_auth
    with pytest.raises(ValidationError, match="not both"):
        make(DB_APP_USER="hawa_app", DB_APP_IAM_AUTH="true", DB_APP_PASSWORD="p" * 16)
    with pytest.raises(ValidationError, match="set DB_APP_USER together with"):
        make(DB_APP_USER="hawa_app")
    with pytest.raises(ValidationError, match="set DB_APP_USER together with"):
        make(DB_APP_IAM_AUTH="true")


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("hawa.cluster-c1a2b3.us-west-2.rds.amazonaws.com", "us-west-2"),
        ("hawa.cluster-ro-c1a2b3.eu-central-1.rds.amazonaws.com.", "eu-central-1"),
        ("hawa-1.c1a2b3.us-gov-west-1.rds.amazonaws.com", "us-gov-west-1"),
        ("127.0.0.5", "ap-south-1"),  # an address (the sandbox): this app's region
    ],
)
def test_a_token_is_signed_for_the_region_the_host_names(host: str, region: str) -> None:
    from app.core.credentials import token_region

    assert token_region(host, "ap-south-1") == region


def test_the_global_writer_endpoint_signs_for_the_region_of_the_cluster_it_leads_to(monkeypatch) -> None:
    import socket

    from app.core.credentials import token_region

    writer = "hawa.cluster-c1a2b3.us-west-2.rds.amazonaws.com"
    monkeypatch.setattr(socket, "gethostbyname_ex", lambda name: (writer, [name], ["10.1.2.3"]))
    assert token_region("hawa.global-x1y2z3.global.rds.amazonaws.com", "us-east-1") == "us-west-2"
    # The chain may end in a name without RDS's form: the region is on the way.
    chain = ("ip-10-1-2-3.us-west-2.compute.internal", ["hawa.global-x1y2z3.global.rds.amazonaws.com", writer])
    monkeypatch.setattr(socket, "gethostbyname_ex", lambda name: (*chain, ["10.1.2.3"]))
    assert token_region("hawa.global-x1y2z3.global.rds.amazonaws.com", "us-east-1") == "us-west-2"


def test_iam_tokens_are_signed_per_connection_for_the_user_and_host() -> None:
    import asyncio
    from urllib.parse import parse_qs, urlsplit

    import botocore.session
    from app.core.credentials import IamTokens, credentials_for
    from app.core.db import dsn_source
    from psycopg.conninfo import conninfo_to_dict

    settings = Settings(
        DB_HOST="hawa.cluster-c1a2b3.us-west-2.rds.amazonaws.com", DB_IAM_AUTH="true", DB_USER="hawa_app"
    )
    assert isinstance(credentials_for(settings), IamTokens)
    session = botocore.session.get_session()
    session.set_credentials("AKIDEXAMPLE", "secret-example")
    # No network: signing is local.
    credentials = IamTokens("hawa_app", "us-east-1", session.create_client("rds", region_name="us-east-1"))
    dsn = dsn_source(settings, credentials, settings.regional_hosts, read_write=False)
    parts = conninfo_to_dict(asyncio.run(dsn()))
    token = urlsplit("https://" + parts["password"])
    query = parse_qs(token.query)
    assert token.netloc == "hawa.cluster-c1a2b3.us-west-2.rds.amazonaws.com:5432"
    assert query["Action"] == ["connect"] and query["DBUser"] == ["hawa_app"] and parts["user"] == "hawa_app"
    assert (
        query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/") and "/us-west-2/rds-db/" in query["X-Amz-Credential"][0]
    )
    assert "X-Amz-Signature" in query


def test_a_token_that_cannot_be_signed_is_a_connection_failure() -> None:
    import asyncio

    import psycopg
    from app.core.credentials import IamTokens
    from app.core.db import dsn_source
    from botocore.exceptions import NoCredentialsError

    class NoCredentials:
        def generate_db_auth_token(self, **_: object) -> str:
            raise NoCredentialsError()

    settings = Settings(DB_HOST="hawa.cluster-c1a2b3.us-west-2.rds.amazonaws.com", DB_IAM_AUTH="true")
    dsn = dsn_source(
        settings, IamTokens("hawa_app", "us-west-2", NoCredentials()), settings.regional_hosts, read_write=False
    )
    with pytest.raises(
        psycopg.OperationalError, match="cannot sign an IAM authentication token: Unable to locate credentials"
    ):
        asyncio.run(dsn())

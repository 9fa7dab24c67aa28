"""RDS IAM database authentication on the sandbox's Aurora PostgreSQL (sandbox/services/rds/: iam_auth.py,
iam_tokens.py, ldap_verifier.py; the pg_hba line in nodes.py ``AuroraNode``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import psycopg
import pytest
from botocore.exceptions import ClientError

from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SandboxConfig
from tests.support import VENV_BIN, run_playbook, sandbox_control, wait_until

ENGINE = "aurora-postgresql"
VERSION = "15.4"
MASTER, MASTER_PASSWORD = "hawa_admin", "master-password-1"
APP, APP_PASSWORD = "hawa_app", "app-password-1"  # a member of rds_iam: its password must not work
PLAIN, PLAIN_PASSWORD = "hawa_plain", "plain-password-1"  # not a member: logs in with its password
DATABASE = "app"
REGION, OTHER_REGION = "us-east-1", "us-west-2"
REFUSED = f'LDAP authentication failed for user "{APP}"'


def _rds(sandbox: SandboxConfig, region: str = REGION, **credentials: str) -> Any:
    return boto3.client(
        "rds",
        region_name=region,
        endpoint_url=sandbox.endpoint,
        aws_access_key_id=credentials.get("key", ACCESS_KEY_ID),
        aws_secret_access_key=credentials.get("secret", SECRET_ACCESS_KEY),
        aws_session_token=credentials.get("session"),
    )


def _cluster(rds: Any, cid: str) -> dict[str, Any]:
    return rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]


def _available(rds: Any, cid: str, instances: tuple[str, ...] = ()) -> bool:
    statuses = [
        rds.describe_db_instances(DBInstanceIdentifier=i)["DBInstances"][0]["DBInstanceStatus"] for i in instances
    ]
    return _cluster(rds, cid)["Status"] == "available" and all(s == "available" for s in statuses)


def _local(sandbox: SandboxConfig, name: str, port: int = 5432) -> tuple[str, int]:
    """The loopback listener the sandbox's name map puts behind name:port (what an AWS client's DNS stands for)."""
    host, local_port = sandbox_control(sandbox, "GET", "")["names"][f"{name}:{port}"].rsplit(":", 1)
    return host, int(local_port)


def _connect(address: tuple[str, int], user: str, password: str) -> psycopg.Connection:
    host, port = address
    return psycopg.connect(
        host=host, port=port, user=user, password=password, dbname=DATABASE, autocommit=True, connect_timeout=5
    )


def _token(
    sandbox: SandboxConfig, host: str, port: int = 5432, user: str = APP, region: str = REGION, **kw: str
) -> str:
    return _rds(sandbox, region, **kw).generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)


def _create(rds: Any, cid: str, *, iam: bool, **extra: Any) -> dict[str, Any]:
    return rds.create_db_cluster(
        DBClusterIdentifier=cid, Engine=ENGINE, EngineVersion=VERSION, EnableIAMDatabaseAuthentication=iam, **extra
    )["DBCluster"]


def _create_primary(rds: Any, cid: str, *, iam: bool) -> dict[str, Any]:
    return _create(rds, cid, iam=iam, MasterUsername=MASTER, MasterUserPassword=MASTER_PASSWORD, DatabaseName=DATABASE)


def _make_roles(address: tuple[str, int]) -> None:
    """As the master user (rds_superuser, CREATEROLE, not a superuser): an IAM login role and a password one."""
    with _connect(address, MASTER, MASTER_PASSWORD) as conn:
        conn.execute(f"CREATE ROLE {APP} LOGIN PASSWORD '{APP_PASSWORD}'")
        conn.execute(f"GRANT rds_iam TO {APP}")
        conn.execute(f"CREATE ROLE {PLAIN} LOGIN PASSWORD '{PLAIN_PASSWORD}'")


def _log_since(sandbox: SandboxConfig, offset: int) -> str:
    return sandbox.logfile.read_bytes()[offset:].decode(errors="replace")


def _log_size(sandbox: SandboxConfig) -> int:
    return sandbox.logfile.stat().st_size


def _refused(sandbox: SandboxConfig, address: tuple[str, int], password: str, reason: str, user: str = APP) -> None:
    """The login is refused with PostgreSQL's own message, and the sandbox log says why (never the token)."""
    before = _log_size(sandbox)
    with pytest.raises(psycopg.OperationalError) as excinfo:
        _connect(address, user, password).close()
    assert f'LDAP authentication failed for user "{user}"' in str(excinfo.value)
    logged = _log_since(sandbox, before)
    refusals = [line for line in logged.splitlines() if f"IAM authentication of '{user}' refused: " in line]
    assert refusals and reason in refusals[0], logged
    assert password not in logged


@pytest.fixture(scope="module")
def iam(sandbox: SandboxConfig) -> Iterator[dict[str, Any]]:
    """A cluster with IAM auth on, a writer and a reader instance, the two roles; and a second cluster."""
    rds = _rds(sandbox)
    suffix = uuid.uuid4().hex[:8]
    cid, other = f"iam-{suffix}", f"other-{suffix}"
    writer, reader = f"{cid}-1", f"{cid}-2"
    record = _create_primary(rds, cid, iam=True)
    other_record = _create_primary(rds, other, iam=True)
    endpoints = {}
    for iid in (writer, reader):
        created = rds.create_db_instance(
            DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine=ENGINE, DBInstanceClass="db.r6g.large"
        )["DBInstance"]
        endpoints[iid] = created["Endpoint"]["Address"]
    wait_until("the clusters and instances", lambda: _available(rds, cid, (writer, reader)) and _available(rds, other))
    _make_roles(_local(sandbox, record["Endpoint"]))
    yield {
        "rds": rds, "cid": cid, "endpoint": record["Endpoint"], "reader_endpoint": record["ReaderEndpoint"],
        "writer": writer, "reader": reader, "instance_endpoints": endpoints, "other": other,
        "other_endpoint": other_record["Endpoint"],
    }  # fmt: skip
    for iid in (reader, writer):
        with contextlib.suppress(ClientError):
            rds.delete_db_instance(DBInstanceIdentifier=iid, SkipFinalSnapshot=True)
    for each in (cid, other):
        with contextlib.suppress(ClientError):
            rds.delete_db_cluster(DBClusterIdentifier=each, SkipFinalSnapshot=True)


def test_the_flag_is_kept_and_modified(iam: dict[str, Any], sandbox: SandboxConfig) -> None:
    rds = iam["rds"]
    assert _cluster(rds, iam["cid"])["IAMDatabaseAuthenticationEnabled"] is True
    plain = f"plain-{uuid.uuid4().hex[:8]}"
    _create_primary(rds, plain, iam=False)
    try:
        assert _cluster(rds, plain)["IAMDatabaseAuthenticationEnabled"] is False
        # moto ignored ModifyDBCluster's flag; on Aurora it applies at once, ApplyImmediately or not.
        answer = rds.modify_db_cluster(DBClusterIdentifier=plain, EnableIAMDatabaseAuthentication=True)["DBCluster"]
        assert answer["IAMDatabaseAuthenticationEnabled"] is True
        assert _cluster(rds, plain)["IAMDatabaseAuthenticationEnabled"] is True
        rds.modify_db_cluster(DBClusterIdentifier=plain, EnableIAMDatabaseAuthentication=False, ApplyImmediately=True)
        assert _cluster(rds, plain)["IAMDatabaseAuthenticationEnabled"] is False
        rds.modify_db_cluster(DBClusterIdentifier=plain, BackupRetentionPeriod=3)  # other changes leave it alone
        assert _cluster(rds, plain)["IAMDatabaseAuthenticationEnabled"] is False
    finally:
        rds.delete_db_cluster(DBClusterIdentifier=plain, SkipFinalSnapshot=True)


def test_a_token_for_the_cluster_endpoint_logs_in_and_queries(iam: dict[str, Any], sandbox: SandboxConfig) -> None:
    token = _token(sandbox, iam["endpoint"])
    assert len(token) > 300
    with _connect(_local(sandbox, iam["endpoint"]), APP, token) as conn:
        assert conn.execute("SELECT current_user, pg_has_role('rds_iam', 'MEMBER')").fetchone() == (APP, True)
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (APP,)).fetchone() == (1,)


def test_a_token_naming_the_loopback_listener_logs_in(iam: dict[str, Any], sandbox: SandboxConfig) -> None:
    """What an ECS task sees: its environment names the listener's loopback address, not the AWS name."""
    host, port = _local(sandbox, iam["endpoint"])
    with _connect((host, port), APP, _token(sandbox, host, port)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (APP,)


def test_every_endpoint_of_the_cluster_takes_its_own_tokens(iam: dict[str, Any], sandbox: SandboxConfig) -> None:
    """The reader endpoint and each instance's endpoint; the reader's node has the same pg_hba line."""
    names = [iam["reader_endpoint"], *iam["instance_endpoints"].values()]
    for name in names:
        with _connect(_local(sandbox, name), APP, _token(sandbox, name)) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (APP,)
    reader = _local(sandbox, iam["instance_endpoints"][iam["reader"]])
    with _connect(reader, APP, _token(sandbox, iam["instance_endpoints"][iam["reader"]])) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def test_an_rds_iam_member_cannot_log_in_with_its_password(iam: dict[str, Any], sandbox: SandboxConfig) -> None:
    _refused(sandbox, _local(sandbox, iam["endpoint"]), APP_PASSWORD, "not an IAM auth token")


def _expired_token(sandbox: SandboxConfig, host: str) -> str:
    """Signed 16 minutes ago by botocore itself (its clock patched): past X-Amz-Expires (900 s)."""
    then = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=16)
    with mock.patch("botocore.auth.get_current_datetime", return_value=then):
        return _token(sandbox, host)


def _tampered(token: str) -> str:
    head, signature = token.rsplit("X-Amz-Signature=", 1)
    return f"{head}X-Amz-Signature={signature[:-1]}{'0' if signature[-1] != '0' else '1'}"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("another user", f"the token is for DBUser '{PLAIN}', not '{APP}'"),
        ("expired", "the token expired at"),
        ("tampered signature", "the signature does not match"),
        ("another cluster's endpoint", "which does not lead to this database"),
        ("another region", f"the token is signed for region {OTHER_REGION}, the database is in {REGION}"),
        ("an unknown access key", "unknown access key AKIAOTHEREXAMPLE0000"),
        ("the wrong secret", "the signature does not match"),
        # About 4 KB: it reaches the verifier whole (a cut token would miss its signature), and is refused only
        # because the sandbox's key is a long-term one.
        ("a long token", "is not temporary, yet the token carries a session token"),
    ],
)
def test_a_bad_token_is_refused_and_the_log_says_why(
    iam: dict[str, Any], sandbox: SandboxConfig, case: str, reason: str
) -> None:
    name = iam["endpoint"]
    tokens: dict[str, Callable[[], str]] = {
        "another user": lambda: _token(sandbox, name, user=PLAIN),
        "expired": lambda: _expired_token(sandbox, name),
        "tampered signature": lambda: _tampered(_token(sandbox, name)),
        "another cluster's endpoint": lambda: _token(sandbox, iam["other_endpoint"]),
        "another region": lambda: _token(sandbox, name, region=OTHER_REGION),
        "an unknown access key": lambda: _token(sandbox, name, key="AKIAOTHEREXAMPLE0000"),
        "the wrong secret": lambda: _token(sandbox, name, secret="not-the-sandbox-secret"),
        "a long token": lambda: _token(sandbox, name, session="FwoG" + "x" * 3600),
    }
    _refused(sandbox, _local(sandbox, name), tokens[case](), reason)


def test_keys_moto_issued_sign_tokens_too(iam: dict[str, Any], sandbox: SandboxConfig) -> None:
    """An IAM user's active access key, and an AssumeRole session's credentials with their session token."""
    name, address = iam["endpoint"], _local(sandbox, iam["endpoint"])
    clients = {"region_name": REGION, "endpoint_url": sandbox.endpoint, "aws_access_key_id": ACCESS_KEY_ID,
               "aws_secret_access_key": SECRET_ACCESS_KEY}  # fmt: skip
    iam_api, sts = boto3.client("iam", **clients), boto3.client("sts", **clients)
    suffix = uuid.uuid4().hex[:8]
    user, role = f"db-user-{suffix}", f"db-role-{suffix}"
    iam_api.create_user(UserName=user)
    key = iam_api.create_access_key(UserName=user)["AccessKey"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    arn = iam_api.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    try:
        with _connect(address, APP, _token(sandbox, name, key=key["AccessKeyId"], secret=key["SecretAccessKey"])):
            pass
        session = sts.assume_role(RoleArn=arn, RoleSessionName="app")["Credentials"]
        temporary = {"key": session["AccessKeyId"], "secret": session["SecretAccessKey"]}
        with _connect(address, APP, _token(sandbox, name, session=session["SessionToken"], **temporary)):
            pass
        _refused(sandbox, address, _token(sandbox, name, **temporary), "its session token is missing or wrong")
        iam_api.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
        token = _token(sandbox, name, key=key["AccessKeyId"], secret=key["SecretAccessKey"])
        _refused(sandbox, address, token, f"unknown access key {key['AccessKeyId']}")
    finally:
        iam_api.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        iam_api.delete_user(UserName=user)
        iam_api.delete_role(RoleName=role)


def test_no_token_logs_in_while_the_flag_is_off(iam: dict[str, Any], sandbox: SandboxConfig) -> None:
    rds, address = iam["rds"], _local(sandbox, iam["endpoint"])
    rds.modify_db_cluster(DBClusterIdentifier=iam["cid"], EnableIAMDatabaseAuthentication=False, ApplyImmediately=True)
    try:
        _refused(sandbox, address, _token(sandbox, iam["endpoint"]), "IAM database authentication is not enabled")
        _refused(sandbox, address, APP_PASSWORD, "IAM database authentication is not enabled")
    finally:
        rds.modify_db_cluster(DBClusterIdentifier=iam["cid"], EnableIAMDatabaseAuthentication=True)
    with _connect(address, APP, _token(sandbox, iam["endpoint"])) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (APP,)


def test_other_roles_keep_their_passwords(iam: dict[str, Any], sandbox: SandboxConfig) -> None:
    address = _local(sandbox, iam["endpoint"])
    for user, password in ((PLAIN, PLAIN_PASSWORD), (MASTER, MASTER_PASSWORD)):
        with _connect(address, user, password) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (user,)
    # Not a member of rds_iam: a token is just a wrong password (scram-sha-256, not the verifier).
    with pytest.raises(psycopg.OperationalError, match=f'password authentication failed for user "{PLAIN}"'):
        _connect(address, PLAIN, _token(sandbox, iam["endpoint"], user=PLAIN)).close()


def test_global_writer_endpoint_secondary_and_a_dark_region(sandbox: SandboxConfig) -> None:
    """The global writer endpoint's tokens reach the writer only; a secondary checks tokens of its own region;
    while the primary's region is dark the verifier (sandbox-wide) still serves the secondary."""
    east, west = _rds(sandbox, REGION), _rds(sandbox, OTHER_REGION)
    suffix = uuid.uuid4().hex[:8]
    gid, pid, sid = f"g-{suffix}", f"p-{suffix}", f"s-{suffix}"
    primary = _create_primary(east, pid, iam=True)
    try:
        wait_until("the primary", lambda: _available(east, pid))
        _make_roles(_local(sandbox, primary["Endpoint"]))
        glob = east.create_global_cluster(
            GlobalClusterIdentifier=gid, SourceDBClusterIdentifier=primary["DBClusterArn"]
        )
        secondary = _create(west, sid, iam=True, GlobalClusterIdentifier=gid)
        assert _cluster(west, sid)["IAMDatabaseAuthenticationEnabled"] is True
        wait_until("the secondary", lambda: _available(west, sid))
        global_endpoint = glob["GlobalCluster"]["Endpoint"]
        with _connect(_local(sandbox, global_endpoint), APP, _token(sandbox, global_endpoint)) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        # By its AWS name the global writer endpoint takes the writer's region only; by its loopback address (what
        # an ECS task's environment names) the other member's too: no name there to read the writer's region from.
        _refused(
            sandbox,
            _local(sandbox, global_endpoint),
            _token(sandbox, global_endpoint, region=OTHER_REGION),
            f"the token is signed for region {OTHER_REGION}",
        )
        listener = _local(sandbox, global_endpoint)
        from_the_other_region = _token(sandbox, listener[0], port=listener[1], region=OTHER_REGION)
        with _connect(listener, APP, from_the_other_region) as conn:
            assert conn.execute("SELECT current_user, pg_is_in_recovery()").fetchone() == (APP, False)
        _refused(sandbox, listener, _token(sandbox, listener[0], port=listener[1], region="eu-west-1"), "eu-west-1")
        on_secondary = _local(sandbox, secondary["Endpoint"])
        wait_until("the role replicated", lambda: _can_log_in(on_secondary, PLAIN, PLAIN_PASSWORD))
        with _connect(on_secondary, APP, _token(sandbox, secondary["Endpoint"], region=OTHER_REGION)) as conn:
            assert conn.execute("SELECT current_user, pg_is_in_recovery()").fetchone() == (APP, True)
        _refused(sandbox, on_secondary, _token(sandbox, global_endpoint), "the token is signed for region us-east-1")
        _refused(
            sandbox,
            on_secondary,
            _token(sandbox, global_endpoint, region=OTHER_REGION),
            "does not lead to this database",
        )
        sandbox_control(sandbox, "POST", "outage", {"region": REGION})
        try:
            with _connect(on_secondary, APP, _token(sandbox, secondary["Endpoint"], region=OTHER_REGION)) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (APP,)
        finally:
            sandbox_control(sandbox, "POST", "restore", {"region": REGION})
        wait_until("the primary back", lambda: _can_log_in(_local(sandbox, primary["Endpoint"]), PLAIN, PLAIN_PASSWORD))
        with _connect(_local(sandbox, primary["Endpoint"]), APP, _token(sandbox, primary["Endpoint"])) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (APP,)
    finally:
        sandbox_control(sandbox, "POST", "restore", {"region": REGION})
        with contextlib.suppress(ClientError):
            east.remove_from_global_cluster(GlobalClusterIdentifier=gid, DbClusterIdentifier=_arn(west, sid))
        for client, each in ((west, sid), (east, pid)):
            with contextlib.suppress(ClientError):
                client.delete_db_cluster(DBClusterIdentifier=each, SkipFinalSnapshot=True)
        with contextlib.suppress(ClientError):
            east.delete_global_cluster(GlobalClusterIdentifier=gid)


def _arn(rds: Any, cid: str) -> str:
    return _cluster(rds, cid)["DBClusterArn"]


def _can_log_in(address: tuple[str, int], user: str, password: str) -> bool:
    try:
        _connect(address, user, password).close()
    except psycopg.OperationalError:
        return False
    return True


def test_after_a_failover_the_new_writer_takes_tokens(iam: dict[str, Any], sandbox: SandboxConfig) -> None:
    rds = iam["rds"]
    # A reader is a failover target once its node runs again after an earlier test's outage of the region.
    wait_until("the failover accepted", lambda: _fail_over(rds, iam["cid"], iam["reader"]))
    wait_until("the failover", lambda: _available(rds, iam["cid"]) and _writer(rds, iam["cid"]) == iam["reader"])
    with _connect(_local(sandbox, iam["endpoint"]), APP, _token(sandbox, iam["endpoint"])) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    # The old writer came back as a reader (pg_rewind): its node still sends rds_iam members to the verifier.
    old = iam["instance_endpoints"][iam["writer"]]
    wait_until("the old writer back", lambda: _can_log_in(_local(sandbox, old), PLAIN, PLAIN_PASSWORD), 60)
    with _connect(_local(sandbox, old), APP, _token(sandbox, old)) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def _fail_over(rds: Any, cid: str, target: str) -> bool:
    try:
        rds.failover_db_cluster(DBClusterIdentifier=cid, TargetDBInstanceIdentifier=target)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("InvalidDBInstanceState", "InvalidDBClusterStateFault"):
            raise
        return False
    return True


def _writer(rds: Any, cid: str) -> str | None:
    return next(
        (m["DBInstanceIdentifier"] for m in _cluster(rds, cid)["DBClusterMembers"] if m["IsClusterWriter"]), None
    )


def test_rds_cluster_module_sets_the_flag_and_converges(sandbox: SandboxConfig, tmp_path: Path) -> None:
    """amazon.aws.rds_cluster creates with enable_iam_database_authentication and its second run is unchanged.

    The option is sent only to create: amazon.aws 10.1.2 reads ``EnableIAMDatabaseAuthentication`` from
    DescribeDBClusters on an existing cluster (AWS answers ``IAMDatabaseAuthenticationEnabled``) and fails with a
    KeyError, against AWS as here; docs/sandbox.md says how to change the flag on an existing cluster.
    """
    cid = f"mod-{uuid.uuid4().hex[:8]}"
    playbook = tmp_path / "iam.yml"
    playbook.write_text(PLAYBOOK.format(cid=cid, region=REGION, version=VERSION, user=MASTER))
    extra = {"master_password": MASTER_PASSWORD, "ansible_python_interpreter": str(VENV_BIN / "python")}
    try:
        runs = [
            run_playbook(playbook, sandbox_port=sandbox.port, inventory="localhost,", extra_vars=extra,
                         env=sandbox.client_env(), timeout=180)
            for _ in range(2)
        ]  # fmt: skip
        for run in runs:
            assert run.returncode == 0, run.failure_messages() or run.stderr[-2000:]
        assert [run.changed_tasks() for run in runs] == [
            ["localhost: The cluster, with IAM database authentication"],
            [],
        ]
        assert _cluster(_rds(sandbox), cid)["IAMDatabaseAuthenticationEnabled"] is True
    finally:
        with contextlib.suppress(ClientError):
            _rds(sandbox).delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Read the cluster
      amazon.aws.rds_cluster_info:
        db_cluster_identifier: {cid}
        region: {region}
      register: before
    - name: The cluster, with IAM database authentication
      amazon.aws.rds_cluster:
        db_cluster_identifier: {cid}
        engine: aurora-postgresql
        engine_version: "{version}"
        master_username: {user}
        master_user_password: "{{{{ omit if before.clusters else master_password }}}}"
        enable_iam_database_authentication: "{{{{ omit if before.clusters else true }}}}"
        region: {region}
        wait: false
        state: present
"""


# -- the token check and the LDAP codec alone (no sandbox): what boto3 cannot be made to sign ----------------------

HOST = "db.cluster-abc.us-east-1.rds.amazonaws.com:5432"


def _signed(**overrides: str) -> str:
    """A token for HOST and APP, signed with the sandbox's key after overrides (so only they can be wrong)."""
    from urllib.parse import urlencode

    from sandbox.services.rds import iam_tokens

    now = dt.datetime.now(dt.UTC)
    params = {
        "Action": "connect",
        "DBUser": APP,
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{ACCESS_KEY_ID}/{now:%Y%m%d}/{REGION}/rds-db/aws4_request",
        "X-Amz-Date": f"{now:%Y%m%dT%H%M%SZ}",
        "X-Amz-Expires": "900",
        "X-Amz-SignedHeaders": "host",
    }
    params.update(overrides)
    credential = params["X-Amz-Credential"].split("/")
    token = iam_tokens.Token(HOST, {**params, "X-Amz-Signature": ""})
    params["X-Amz-Signature"] = iam_tokens.sign(token, iam_tokens.Secret(SECRET_ACCESS_KEY), credential[2])
    return f"{HOST}/?{urlencode(params)}"


def _check(token: str) -> str | None:
    from sandbox.services.rds import iam_auth, iam_tokens

    try:
        iam_tokens.check_token(token, user=APP, region=REGION, hosts={HOST}, secret_for=iam_auth.secret_for)
    except iam_tokens.TokenRefused as exc:
        return str(exc)
    return None


def test_the_token_check_alone() -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    assert _check(_signed()) is None  # the signing above is what an SDK does: accepted
    refused = {
        "expires too long": (_signed(**{"X-Amz-Expires": "901"}), "X-Amz-Expires is '901'"),
        "dated ahead": (
            _signed(
                **{
                    "X-Amz-Date": f"{later:%Y%m%dT%H%M%SZ}",
                    "X-Amz-Credential": f"{ACCESS_KEY_ID}/{later:%Y%m%d}/{REGION}/rds-db/aws4_request",
                }
            ),
            "in the future",
        ),
        "another service": (
            _signed(
                **{"X-Amz-Credential": f"{ACCESS_KEY_ID}/{dt.datetime.now(dt.UTC):%Y%m%d}/{REGION}/rds/aws4_request"}
            ),
            "signed for service 'rds', not rds-db",
        ),
        "another action": (_signed(Action="describe"), "Action is 'describe'"),
        "another header set": (_signed(**{"X-Amz-SignedHeaders": "host;x-amz-date"}), "X-Amz-SignedHeaders"),
        "an extra parameter": (_signed(Extra="1"), "unexpected query parameters: Extra"),
        "a repeated parameter": (_signed() + "&Action=connect", "Action appears twice"),
        "no signature": (_signed().rsplit("&X-Amz-Signature=", 1)[0], "missing query parameters: X-Amz-Signature"),
        "a password": ("hunter2", "not an IAM auth token"),
    }
    for case, (token, reason) in refused.items():
        said = _check(token)
        assert said is not None and reason in said, (case, said)


def test_expired_temporary_credentials_sign_no_token() -> None:
    from sandbox.services.rds import iam_tokens

    ended = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    secret = iam_tokens.Secret(SECRET_ACCESS_KEY, "session-token", expires_at=ended)
    token = _signed(**{"X-Amz-Security-Token": "session-token"})
    with pytest.raises(iam_tokens.TokenRefused, match=r"temporary credentials of access key .* expired at"):
        iam_tokens.check_token(token, user=APP, region=REGION, hosts={HOST}, secret_for=lambda _key: secret)
    live = iam_tokens.Secret(SECRET_ACCESS_KEY, "session-token", expires_at=ended + dt.timedelta(hours=1))
    iam_tokens.check_token(token, user=APP, region=REGION, hosts={HOST}, secret_for=lambda _key: live)


def test_the_ldap_codec_round_trips_a_long_bind() -> None:
    from sandbox.services.rds import ldap_verifier as ldap

    password = "p" * 3000  # a long-form length, as a token needs
    bind = ldap.encode(
        ldap.BIND_REQUEST,
        ldap.encode(ldap.INTEGER, b"\x03")
        + ldap.encode(ldap.OCTET_STRING, b"hawa_app@cluster-X")
        + ldap.encode(ldap.SIMPLE_AUTH, password.encode()),
    )
    message = ldap.encode(ldap.SEQUENCE, ldap.encode(ldap.INTEGER, b"\x07") + bind)
    assert ldap.parse_bind(message) == (b"\x07", ldap.BIND_REQUEST, "hawa_app@cluster-X", password)
    unbind = ldap.encode(ldap.SEQUENCE, ldap.encode(ldap.INTEGER, b"\x08") + bytes([ldap.UNBIND_REQUEST, 0]))
    assert ldap.parse_bind(unbind)[1] == ldap.UNBIND_REQUEST
    _tag, body, _end = ldap.decode(ldap.bind_response(b"\x07", ldap.INVALID_CREDENTIALS, "why"))
    _id_tag, message_id, offset = ldap.decode(body)
    op, result, _end = ldap.decode(body, offset)
    assert (message_id, op, ldap.decode(result)[:2]) == (b"\x07", ldap.BIND_RESPONSE, (ldap.ENUMERATED, b"\x31"))

"""`python -m app migrate` as Aurora's master user makes the app's own role, least privilege, idempotently.

A server of its own, set up as Aurora is: the master user is no superuser but a member of rds_superuser with
CREATEDB and CREATEROLE, and owns the app's database (sandbox/services/rds/reconcile.py does the same).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors
from webapp_support import WEBAPP, _base_env, db_env, free_port

from sandbox.postgres import PostgresNode

MASTER, MASTER_PASSWORD = "hawa_admin", "master-password-0123456789"
APP_USER, APP_PASSWORD = "hawa_app", "app-password-0123456789abcdef"
DB = "app"


@pytest.fixture(scope="module")
def aurora(pg_base: Path) -> Iterator[PostgresNode]:
    node = PostgresNode(pg_base / "app-role", free_port(), "superuser-password", fast=True)
    node.init().start()
    node.execute("CREATE ROLE rds_superuser NOLOGIN")
    node.execute("GRANT pg_monitor, pg_signal_backend TO rds_superuser")
    node.execute(f"CREATE ROLE {MASTER} LOGIN CREATEDB CREATEROLE IN ROLE rds_superuser PASSWORD '{MASTER_PASSWORD}'")
    node.execute(f"CREATE DATABASE {DB} OWNER {MASTER}")
    yield node
    node.destroy()


def migrate(node: PostgresNode, *, succeeds: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **_base_env(),
        **db_env(host=f"127.0.0.1:{node.port}", DB_NAME=DB, DB_USER=MASTER, DB_PASSWORD=MASTER_PASSWORD),
        "DB_APP_USER": APP_USER,
        "DB_APP_PASSWORD": APP_PASSWORD,
        **extra,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "app", "migrate"], cwd=WEBAPP, env=env, capture_output=True, text=True, check=False
    )
    assert (proc.returncode == 0) == succeeds, proc.stdout + proc.stderr
    assert APP_PASSWORD not in proc.stdout + proc.stderr
    return proc


def as_app(node: PostgresNode, password: str = APP_PASSWORD) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1", port=node.port, dbname=DB, user=APP_USER, password=password, autocommit=True
    )


def catalog(node: PostgresNode) -> list:
    """Everything migrate may change about the app role: attributes, memberships and every ACL it might be in."""
    return node.execute(
        "SELECT (SELECT row(rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolinherit)::text FROM pg_roles"
        "        WHERE rolname = %(user)s),"
        "       (SELECT array_agg(roleid::regrole::text ORDER BY 1) FROM pg_auth_members"
        "        WHERE member = %(user)s::regrole),"
        "       (SELECT datacl::text FROM pg_database WHERE datname = %(db)s),"
        "       (SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'),"
        "       (SELECT array_agg(relname || '=' || coalesce(relacl::text, '-') ORDER BY relname) FROM pg_class"
        "        WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'S')),"
        "       (SELECT array_agg(defaclobjtype::text || '=' || defaclacl::text ORDER BY 1) FROM pg_default_acl)",
        {"user": APP_USER, "db": DB},
        dbname=DB,
    )


@pytest.fixture(scope="module")
def migrated(aurora: PostgresNode) -> subprocess.CompletedProcess[str]:
    return migrate(aurora)


def test_master_user_is_no_superuser_but_may_create_roles(aurora):
    ((superuser, createrole),) = aurora.execute(
        "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = %s", (MASTER,)
    )
    assert not superuser and createrole


def test_app_role_reads_and_writes_the_app_tables(aurora, migrated):
    assert f"create role {APP_USER}" in migrated.stdout
    with as_app(aurora) as conn:
        (row_id,) = conn.execute(
            "INSERT INTO records (key, value, region) VALUES ('k', 'v', 'us-east-1') RETURNING id"
        ).fetchone()
        conn.execute("UPDATE records SET value = 'w' WHERE id = %s", (row_id,))
        assert conn.execute("SELECT value FROM records WHERE id = %s", (row_id,)).fetchone() == ("w",)
        conn.execute("DELETE FROM records WHERE id = %s", (row_id,))
        conn.execute("SELECT nextval('records_id_seq')")


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE public.intruder (id int)",
        "CREATE TABLE intruder (id int)",
        "DROP TABLE records",
        "ALTER TABLE records ADD COLUMN extra int",
        "TRUNCATE records",
        "UPDATE alembic_version SET version_num = version_num",
        "CREATE TEMPORARY TABLE scratch (id int)",
        "CREATE SCHEMA intruders",
        "CREATE ROLE intruder",
    ],
)
def test_app_role_cannot_change_the_schema(aurora, migrated, statement):
    with as_app(aurora) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_app_role_is_no_superuser_nor_in_rds_superuser(aurora, migrated):
    ((superuser, createdb, createrole, rds, owns),) = aurora.execute(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, pg_has_role(%(user)s, 'rds_superuser', 'MEMBER'),"
        " (SELECT count(*) FROM pg_class WHERE relowner = %(user)s::regrole)"
        " FROM pg_roles WHERE rolname = %(user)s",
        {"user": APP_USER},
        dbname=DB,
    )
    assert (superuser, createdb, createrole, rds, owns) == (False, False, False, False, 0)
    members = aurora.execute(
        "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = %s::regrole", (APP_USER,)
    )
    assert members == [("pg_read_all_stats",)]


def test_second_migrate_changes_nothing(aurora, migrated):
    before = catalog(aurora)
    again = migrate(aurora)
    assert f"app role {APP_USER}: 0 change(s)" in again.stdout, again.stdout
    assert catalog(aurora) == before


def test_migrate_takes_back_extra_privileges_and_sets_a_new_password(aurora, migrated):
    aurora.execute(f"GRANT TRUNCATE, REFERENCES ON records TO {APP_USER}", dbname=DB)
    aurora.execute(f"GRANT CREATE ON SCHEMA public TO {APP_USER}", dbname=DB)
    aurora.execute(f"GRANT rds_superuser TO {APP_USER}")
    aurora.execute(f"ALTER ROLE {APP_USER} CREATEDB")
    new_password = "a-new-app-password-from-the-secret"
    repaired = migrate(aurora, DB_APP_PASSWORD=new_password)
    assert f"set the password of {APP_USER}" in repaired.stdout
    assert "revoke membership in rds_superuser" in repaired.stdout
    with as_app(aurora, new_password) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("TRUNCATE records")
    with pytest.raises(psycopg.OperationalError):
        as_app(aurora)
    expected = catalog(aurora)
    migrate(aurora, DB_APP_PASSWORD=new_password)
    assert catalog(aurora) == expected
    migrate(aurora)  # back to the fixture's password for the other tests


def test_migrate_refuses_an_app_role_that_owns_a_table(aurora, migrated):
    aurora.execute(f"CREATE TABLE owned_by_app (id int); ALTER TABLE owned_by_app OWNER TO {APP_USER}", dbname=DB)
    try:
        refused = migrate(aurora, succeeds=False)
        assert f"REASSIGN OWNED BY {APP_USER}" in refused.stderr, refused.stderr
    finally:
        aurora.execute("DROP TABLE owned_by_app", dbname=DB)


def test_tables_created_later_are_granted(aurora, migrated):
    with psycopg.connect(
        host="127.0.0.1", port=aurora.port, dbname=DB, user=MASTER, password=MASTER_PASSWORD, autocommit=True
    ) as owner:
        owner.execute("CREATE TABLE later (id bigint GENERATED ALWAYS AS IDENTITY, note text)")
    try:
        with as_app(aurora) as conn:
            conn.execute("INSERT INTO later (note) VALUES ('granted by default privileges')")
            assert conn.execute("SELECT count(*) FROM later").fetchone() == (1,)
    finally:
        aurora.execute("DROP TABLE later", dbname=DB)


def test_app_serves_as_the_app_role(aurora, migrated, start_app):
    app = start_app(db_env(host=f"127.0.0.1:{aurora.port}", DB_NAME=DB, DB_USER=APP_USER, DB_PASSWORD=APP_PASSWORD))
    with app.client() as http:
        created = http.post("/api/data", json={"key": "k", "value": "v"})
        assert created.status_code == 201, created.text
        assert http.get(f"/api/data/{created.json()['id']}").status_code == 200


IAM_USER = "hawa_iam_app"


def test_an_iam_app_role_joins_rds_iam_without_a_password_and_a_server_without_rds_iam_is_named(aurora, migrated):
    # One test, in order: whether rds_iam exists is server-wide, and the other tests must not depend on it.
    from app import dbrole

    aurora.execute("DROP ROLE IF EXISTS rds_iam")

    def ensure(password: str | None) -> list[str]:
        with psycopg.connect(
            host="127.0.0.1", port=aurora.port, dbname=DB, user=MASTER, password=MASTER_PASSWORD
        ) as conn:
            return dbrole.ensure_app_role(conn, dbrole.AppRole(IAM_USER, password))

    with pytest.raises(RuntimeError, match="no rds_iam role: IAM database authentication needs Aurora"):
        ensure(None)
    assert aurora.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (IAM_USER,)) == []  # rolled back

    aurora.execute("CREATE ROLE rds_iam NOLOGIN")
    try:
        made = ensure(None)
        assert f"create role {IAM_USER}" in made and "grant membership in rds_iam" in made
        assert "remove the password" not in " ".join(made)  # a new role never had one
        members = aurora.execute(
            "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = %s::regrole ORDER BY 1", (IAM_USER,)
        )
        assert members == [("pg_read_all_stats",), ("rds_iam",)]
        assert aurora.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (IAM_USER,)) == [(None,)]
        assert ensure(None) == []

        # Back to a password (development), then to IAM again: the password goes with the move.
        moved_back = ensure("a-password-for-the-iam-app-role")
        assert "revoke membership in rds_iam" in moved_back
        aurora.execute(f"ALTER ROLE {IAM_USER} PASSWORD 'a-password-for-the-iam-app-role'")
        moved = ensure(None)
        assert f"remove the password of {IAM_USER}" in moved and "grant membership in rds_iam" in moved
        assert aurora.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (IAM_USER,)) == [(None,)]
    finally:
        aurora.execute(f"DROP OWNED BY {IAM_USER}", dbname=DB)
        aurora.execute(f"DROP ROLE {IAM_USER}")
        aurora.execute("DROP ROLE rds_iam")

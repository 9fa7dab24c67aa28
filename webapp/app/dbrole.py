"""The app's own database role, made and kept by ``python -m app migrate`` (which runs as the schema owner).

The web tasks log in as a role that may only use the data: CONNECT to the database, USAGE on the schema,
SELECT/INSERT/UPDATE/DELETE on the app's tables and USAGE/SELECT on its sequences. It owns nothing, may create
nothing and is a member of no role but pg_read_all_stats (the replication lag; on Aurora the master user is in
rds_superuser, the app role must not be).
Tables the schema owner creates later get the same grants (ALTER DEFAULT PRIVILEGES), and every migrate brings
the grants back to exactly this set: what is missing is granted, anything more is revoked, and a second run finds
nothing to do. The role is replicated to the secondary region with everything else (physical replication), so
one role serves both regions.

The role logs in one of two ways:
- IAM database authentication (``DB_APP_IAM_AUTH=true``, what the deployment uses): the role is a member of
  Aurora's ``rds_iam`` and has no password; the web tasks sign a token per connection with the task role's
  credentials (app/core/credentials.py), and the task role's ``rds-db:connect`` decides who may.
- A password (``DB_APP_PASSWORD``, development): sent to the server only as a SCRAM verifier computed here, since
  a statement that fails is written to the server log (exported to CloudWatch on Aurora) with its text. It is set
  when the role is made, and again only when a login with it fails: no superuser may be needed to compare it.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

SCHEMA = "public"
# Alembic's bookkeeping: the schema owner's, never the app's.
MIGRATIONS_TABLE = "alembic_version"
TABLE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
SEQUENCE_PRIVILEGES = frozenset({"USAGE", "SELECT"})
SCHEMA_PRIVILEGES = frozenset({"USAGE"})
DATABASE_PRIVILEGES = frozenset({"CONNECT"})
# The one role it belongs to: PostgreSQL's read-only statistics role. Without it pg_stat_wal_receiver shows a
# replica's app only its pid, and /api/status could not measure the replication lag (app/core/db.py).
MEMBERSHIPS = frozenset({"pg_read_all_stats"})
# Aurora's group for IAM database authentication: a member logs in with an IAM token only, never a password.
IAM_GROUP = "rds_iam"
# pg_class.relkind -> the privileges the app role gets on it.
_WANTED = {"r": TABLE_PRIVILEGES, "p": TABLE_PRIVILEGES, "S": SEQUENCE_PRIVILEGES}
_KIND = {"r": "TABLE", "p": "TABLE", "S": "SEQUENCE"}
# pg_default_acl.defaclobjtype -> what ALTER DEFAULT PRIVILEGES calls it, and the privileges wanted.
_DEFAULTS = {"r": ("TABLES", TABLE_PRIVILEGES), "S": ("SEQUENCES", SEQUENCE_PRIVILEGES)}


@dataclass(frozen=True)
class AppRole:
    name: str
    password: str | None  # None: IAM database authentication (a member of rds_iam, no password)

    @property
    def iam(self) -> bool:
        return self.password is None

    @property
    def memberships(self) -> frozenset[str]:
        return MEMBERSHIPS | {IAM_GROUP} if self.iam else MEMBERSHIPS


def scram_verifier(conn: psycopg.Connection, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier libpq computes (PQencryptPasswordConn): what the server stores, not the password."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()


def ensure_app_role(conn: psycopg.Connection, role: AppRole) -> list[str]:
    """Make the role if missing and bring its attributes, memberships and privileges to exactly the wanted set.

    Runs in the caller's transaction as the schema owner. Returns the statements' descriptions (no passwords);
    empty when nothing had to change.
    """
    changes: list[str] = []
    ident = sql.Identifier(role.name)

    def run(statement: sql.Composable, description: str) -> None:
        conn.execute(statement)
        changes.append(description)

    found = conn.execute(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication, rolbypassrls"
        " FROM pg_roles WHERE rolname = %s",
        (role.name,),
    ).fetchone()
    if found is None and role.password is None:
        run(sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB NOCREATEROLE").format(ident), f"create role {role.name}")
    elif found is None:
        verifier = scram_verifier(conn, role.name, role.password)
        run(
            sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB NOCREATEROLE PASSWORD {}").format(ident, sql.Literal(verifier)),
            f"create role {role.name}",
        )
    else:
        superuser, createdb, createrole, login, replication, bypassrls = found
        if superuser or replication or bypassrls:
            # Only a superuser may take these away; the schema owner (Aurora's master user) is none.
            raise RuntimeError(
                f"database role {role.name} is a superuser or has REPLICATION or BYPASSRLS: an administrator must "
                f"remove them (ALTER ROLE {role.name} NOSUPERUSER NOREPLICATION NOBYPASSRLS) or choose another name"
            )
        (owned,) = conn.execute(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
            " + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid) FROM pg_roles r WHERE r.rolname = %s",
            (role.name,),
        ).fetchone()
        if owned:
            # An owner may alter and drop what it owns, whatever is granted; moving ownership needs the privileges
            # of both roles, which the schema owner does not hold over the app role.
            raise RuntimeError(
                f"database role {role.name} owns {owned} table(s), sequence(s) or schema(s) in this database: an "
                f"administrator must give them to the schema owner (REASSIGN OWNED BY {role.name} TO <owner>)"
            )
        if createdb or createrole or not login:
            run(
                sql.SQL("ALTER ROLE {} LOGIN NOCREATEDB NOCREATEROLE").format(ident), f"reset attributes of {role.name}"
            )

    groups = {
        group
        for (group,) in conn.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            " JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s",
            (role.name,),
        ).fetchall()
    }
    wanted_groups = role.memberships
    if role.iam and IAM_GROUP not in groups and found is not None:
        # Moving a role to IAM authentication: a password it had would stay usable wherever rds_iam is not
        # enforced (a restored snapshot with IAM authentication off). Whether it has one only a superuser may
        # read, so drop it unasked, once, as the role joins rds_iam.
        run(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(ident), f"remove the password of {role.name}")
    for group in sorted(wanted_groups - groups):
        if group == IAM_GROUP and not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone():
            raise RuntimeError(
                f"this server has no {IAM_GROUP} role: IAM database authentication needs Aurora or RDS PostgreSQL "
                "(or the sandbox); for a plain PostgreSQL give the app role a password (DB_APP_PASSWORD)"
            )
        run(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), ident), f"grant membership in {group}")
    for group in sorted(groups - wanted_groups):
        run(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), ident), f"revoke membership in {group}")

    database = conn.execute("SELECT current_database()").fetchone()[0]
    # NULL ACLs stand for the built-in defaults (acldefault): on a database, PUBLIC's CONNECT and TEMPORARY.
    database_acl = ("SELECT coalesce(datacl, acldefault('d', datdba)) FROM pg_database WHERE datname = %s", (database,))
    schema_acl = ("SELECT coalesce(nspacl, acldefault('n', nspowner)) FROM pg_namespace WHERE nspname = %s", (SCHEMA,))
    # Nobody but the owner creates in the schema (PUBLIC still may in PostgreSQL < 15), and nobody reaches the
    # database through PUBLIC's CONNECT and TEMPORARY: the app role has exactly its own grants.
    for kind, label, (query, params), unwanted in (
        ("DATABASE", database, database_acl, None),
        ("SCHEMA", SCHEMA, schema_acl, {"CREATE"}),
    ):
        target = sql.Identifier(label)
        held = _granted(conn, _acl(conn, query, params), None)
        for privilege in sorted(held if unwanted is None else held & unwanted):
            run(
                sql.SQL("REVOKE {} ON {} {} FROM PUBLIC").format(sql.SQL(privilege), sql.SQL(kind), target),
                f"revoke {privilege} on {kind.lower()} {label} from PUBLIC",
            )
    for kind, label, (query, params), wanted in (
        ("DATABASE", database, database_acl, DATABASE_PRIVILEGES),
        ("SCHEMA", SCHEMA, schema_acl, SCHEMA_PRIVILEGES),
    ):
        held = _granted(conn, _acl(conn, query, params), role.name)
        _exact(run, kind, (label,), held, wanted, role.name)

    relations = conn.execute(
        "SELECT c.relname, c.relkind, coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\","
        " c.relowner)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'S') ORDER BY c.relname",
        (SCHEMA,),
    ).fetchall()
    for name, kind, acl in relations:
        wanted = frozenset() if name == MIGRATIONS_TABLE else _WANTED[kind]
        _exact(run, _KIND[kind], (SCHEMA, name), _granted(conn, acl, role.name), wanted, role.name)

    # Tables and sequences the schema owner (this session's user) creates later are granted at creation.
    for objtype, (noun, wanted) in _DEFAULTS.items():
        acl = _acl(
            conn,
            "SELECT d.defaclacl FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace"
            " WHERE n.nspname = %s AND d.defaclrole = current_user::regrole AND d.defaclobjtype = %s",
            (SCHEMA, objtype),
        )
        held = _granted(conn, acl, role.name)
        for verb, privileges in (("GRANT", wanted - held), ("REVOKE", held - wanted)):
            if privileges:
                run(
                    sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} {} {} ON {} {} {}").format(
                        sql.Identifier(SCHEMA),
                        sql.SQL(verb),
                        sql.SQL(", ").join(sql.SQL(p) for p in sorted(privileges)),
                        sql.SQL(noun),
                        sql.SQL("TO" if verb == "GRANT" else "FROM"),
                        ident,
                    ),
                    f"default privileges on new {noun.lower()}: {verb.lower()} {', '.join(sorted(privileges))}",
                )
    return changes


def _acl(conn: psycopg.Connection, query: str, params: tuple) -> object:
    """The one ACL (aclitem[]) the query selects, or None."""
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _granted(conn: psycopg.Connection, acl: object, grantee: str | None) -> frozenset[str]:
    """The privileges an ACL grants to grantee (None: PUBLIC), not counting what the grantee gets through roles."""
    if acl is None:
        return frozenset()
    if grantee is None:
        rows = conn.execute("SELECT privilege_type FROM aclexplode(%s::aclitem[]) WHERE grantee = 0", (acl,))
    else:
        rows = conn.execute(
            "SELECT privilege_type FROM aclexplode(%s::aclitem[])"
            " WHERE grantee = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            (acl, grantee),
        )
    return frozenset(r[0] for r in rows.fetchall())


def _exact(run, kind: str, names: tuple[str, ...], held: frozenset[str], wanted: frozenset[str], role: str) -> None:
    """GRANT what is missing and REVOKE what is more than wanted on one object (names: its qualified name)."""
    ident, target = sql.Identifier(role), sql.Identifier(*names)
    for verb, privileges in (("GRANT", wanted - held), ("REVOKE", held - wanted)):
        if privileges:
            run(
                sql.SQL("{} {} ON {} {} {} {}").format(
                    sql.SQL(verb),
                    sql.SQL(", ").join(sql.SQL(p) for p in sorted(privileges)),
                    sql.SQL(kind),
                    target,
                    sql.SQL("TO" if verb == "GRANT" else "FROM"),
                    ident,
                ),
                f"{verb.lower()} {', '.join(sorted(privileges))} on {kind.lower()} {'.'.join(names)} "
                f"{'to' if verb == 'GRANT' else 'from'} {role}",
            )


def can_log_in(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn):
            return True
    except psycopg.OperationalError:
        return False


def set_password(conn: psycopg.Connection, role: AppRole) -> None:
    assert role.password is not None, "an IAM role has no password"
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(role.name), sql.Literal(scram_verifier(conn, role.name, role.password))
        )
    )

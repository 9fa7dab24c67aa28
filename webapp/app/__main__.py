"""``python -m app`` serves the app with uvicorn; ``python -m app migrate`` runs ``alembic upgrade head`` and then,
with DB_APP_USER and DB_APP_IAM_AUTH=true (or DB_APP_PASSWORD), makes the app's own database role and grants it
exactly what it needs (app/dbrole.py). Migrate runs as the schema owner (DB_USER, Aurora's master user); the web
tasks as the app role.

Options come from the environment (see app/core/config.py and docs/webapp.md): HOST, PORT,
WEB_CONCURRENCY, GRACEFUL_TIMEOUT, LOG_LEVEL.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError

from app import dbrole
from app.core.config import get_settings

HERE = Path(__file__).resolve().parent.parent


def _settings_or_exit():  # -> Settings
    try:
        return get_settings()
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()]
        sys.exit("webapp: invalid settings in the environment (see docs/webapp.md):\n" + "\n".join(lines))


def migrate() -> None:
    from alembic import command
    from alembic.config import Config

    settings = _settings_or_exit()
    command.upgrade(Config(str(HERE / "alembic.ini")), "head")
    if settings.db_app_user is not None:
        password = settings.db_app_password.get_secret_value() if settings.db_app_password is not None else None
        grant_app_role(settings, dbrole.AppRole(settings.db_app_user, password))


def grant_app_role(settings, role) -> None:  # (Settings, dbrole.AppRole)
    """Make the app role and its grants exact (one transaction), then make sure it logs in as the web tasks will."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from app.core.credentials import IamTokens, credentials_for
    from app.core.db import conninfo

    hosts = settings.writer_hosts
    owner_dsn = conninfo(settings, credentials_for(settings).password(hosts), hosts, read_write=True)
    try:
        with psycopg.connect(owner_dsn) as conn:
            changes = dbrole.ensure_app_role(conn, role)
    except RuntimeError as exc:
        sys.exit(f"webapp migrate: {exc}")
    if role.password is None:
        # Signed with this task's credentials: the web tasks share its task role.
        token = IamTokens.for_settings(settings, user=role.name).password(hosts[:1])
        if not dbrole.can_log_in(
            make_conninfo(owner_dsn, host=hosts[0][0], port=hosts[0][1], user=role.name, password=token)
        ):
            sys.exit(
                f"webapp migrate: {role.name} cannot log in with an IAM authentication token at {hosts[0][0]}: the "
                "cluster's IAM database authentication is off, or this task's role may not rds-db:connect as "
                f"{role.name} (see the server log for the reason)"
            )
    elif not dbrole.can_log_in(make_conninfo(owner_dsn, user=role.name, password=role.password)):
        with psycopg.connect(owner_dsn) as conn:
            dbrole.set_password(conn, role)
        changes.append(f"set the password of {role.name}")
        if not dbrole.can_log_in(make_conninfo(owner_dsn, user=role.name, password=role.password)):
            sys.exit(f"webapp migrate: {role.name} cannot log in with DB_APP_PASSWORD after setting it")
    for change in changes:
        print(f"webapp migrate: {change}", flush=True)
    print(f"webapp migrate: app role {role.name}: {len(changes)} change(s)", flush=True)


def serve() -> None:
    settings = _settings_or_exit()
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before any worker imports prometheus_client.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="webapp-metrics-")
    import uvicorn

    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,  # our middleware writes one JSON line per request instead
        server_header=False,
        proxy_headers=True,
        timeout_graceful_shutdown=settings.graceful_timeout_s,
        timeout_keep_alive=75,  # longer than the ALB's 60 s idle timeout: the ALB closes first
    )


def main(argv: list[str]) -> None:
    if argv[1:] == ["migrate"]:
        migrate()
    elif argv[1:]:
        sys.exit(f"usage: python -m app [migrate]   (got {' '.join(argv[1:])!r})")
    else:
        serve()


if __name__ == "__main__":
    main(sys.argv)

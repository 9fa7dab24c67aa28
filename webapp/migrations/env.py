"""Alembic environment: the app's own settings pick the database; migrations always go to the writer.

A caller that already has a connection (the tests) passes it as ``config.attributes["connection"]``.
"""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import Connection, create_engine, pool

from app.core.config import Settings
from app.core.credentials import credentials_for
from app.core.db import conninfo
from app.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url="postgresql+psycopg://", target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    settings = Settings()  # type: ignore[call-arg]  # from the environment
    password = credentials_for(settings).password(settings.writer_hosts)
    dsn = conninfo(settings, password, settings.writer_hosts, read_write=True)
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""records.idempotency_key: a client's retry of POST /api/data finds the record its first try stored

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

A nullable column (no table rewrite) and a unique index on the records that have a key. Building the
index reads the table once while holding writes; for a larger table, build it first by hand with
CREATE UNIQUE INDEX CONCURRENTLY (same name and definition), and this migration finds it there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("records", sa.Column("idempotency_key", sa.String(length=255), nullable=True))
    op.create_index(
        "records_idempotency_key",
        "records",
        ["idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("records_idempotency_key", table_name="records")
    op.drop_column("records", "idempotency_key")

"""The schema, as SQLAlchemy 2 typed mappings. Alembic's migrations create it; the app never does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

KEY_MAX = 128
VALUE_MAX = 4096
REGION_MAX = 32
IDEMPOTENCY_KEY_MAX = 255


class Base(DeclarativeBase):
    pass


class Record(Base):
    __tablename__ = "records"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_MAX))
    value: Mapped[str] = mapped_column(Text)
    # The region whose app wrote the record: after a failover it shows who took the writes.
    region: Mapped[str] = mapped_column(String(REGION_MAX))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The client's Idempotency-Key of the POST that created the record, if it sent one: a retry with the
    # same key finds this record instead of storing another. Unique among the records that have one; the
    # index leaves out the others (most), so a write without a key costs no index entry.
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_MAX))

    __table_args__ = (
        Index(
            "records_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=idempotency_key.isnot(None),
        ),
    )

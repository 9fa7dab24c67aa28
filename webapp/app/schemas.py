"""Request and response bodies. Responses are documented with these models and serialised with orjson."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models import IDEMPOTENCY_KEY_MAX, KEY_MAX, VALUE_MAX

# POST /api/data's Idempotency-Key: 1-255 printable ASCII characters (space to tilde), taken as they are.
# FastAPI's header parameter (app/api/data.py) and the fast path (app/api/edge.py) check the same pattern.
IDEMPOTENCY_KEY_PATTERN = rf"^[\x20-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}$"
IDEMPOTENCY_KEY_BYTES = re.compile(IDEMPOTENCY_KEY_PATTERN.encode())


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    # Both required: a body without ``value`` was stored as "", indistinguishable from an empty value
    # sent on purpose. The fast path (app/api/edge.py, record_fields) reads the same limits.
    key: str = Field(min_length=1, max_length=KEY_MAX, description="required, 1-128 characters")
    value: str = Field(max_length=VALUE_MAX, description="required, 0-4096 characters (may be empty)")

    @field_validator("key", "value")
    @classmethod
    def _storable(cls, text: str) -> str:
        why = unstorable(text)
        if why is not None:
            raise ValueError(why)
        return text


def unstorable(text: str) -> str | None:
    """Why PostgreSQL cannot store ``text``, or None. ``RecordIn``'s check, and the fast path's
    (app/api/edge.py)."""
    # PostgreSQL text cannot hold NUL, and a lone surrogate (valid JSON escape) is not UTF-8.
    if "\x00" in text:
        return "must not contain NUL (\\u0000) characters"
    if text.isascii():  # a flag of the string: no scan, and no surrogate possible
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


class RecordOut(BaseModel):
    id: int
    key: str
    value: str
    region: str
    created_at: datetime


class RecordPage(BaseModel):
    items: list[RecordOut]
    next_before: int | None = Field(description="pass as `before` to get the next (older) page; null on the last page")


class Problem(BaseModel):
    detail: str
    reason: str


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "unavailable"]
    region: str
    role: str | None = None
    latency_ms: float | None = None
    # A category only: the database's error text is logged, never answered (this answer is public).
    reason: Literal["database unavailable", "database timeout"] | None = None


class Status(BaseModel):
    region: str
    role: Literal["writer", "replica", "unknown"]
    role_checked_at: datetime | None
    replication_lag_s: float | None
    role_error: str | None
    writes_to: Literal["local", "writer-endpoint"]
    version: str
    task: str
    time: datetime

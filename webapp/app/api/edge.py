"""The /api/data requests, answered at the edge of the app: before FastAPI's routing, validation and
dependency machinery, which cost more than the rest of the request (docs/webapp.md, Design choices).
The request middleware (app/core/observability.py) calls ``Edge.route``; /health and /api/status are
answered there too, from memory.

Only well-formed requests are answered here, by the same code paths as the FastAPI routes
(app/records.py); anything else (a bad or unusual query string, path or body, another content type,
another method) goes on to FastAPI, which validates it and answers as documented, 422s included. The
routes stay defined in FastAPI for the OpenAPI schema.

A handler returns ``(status, body, headers)``, or None to hand the request to FastAPI, or ``Defer`` to
hand it over with the body it already read.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI

from app.api.data import NOT_FOUND
from app.core.errors import Problem, database_problem
from app.models import KEY_MAX, VALUE_MAX
from app.records import BIGINT_MAX, PAGE_DEFAULT, PAGE_MAX

Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, bytes, Headers]


@dataclass(slots=True)
class Defer:
    """Go on to FastAPI with this ``receive`` (it replays the body already read)."""

    receive: Callable[[], Awaitable[dict[str, Any]]]


Handler = Callable[[dict[str, Any], Any], Awaitable[Answer | Defer | None]]

# A positive integer as FastAPI would read it, in canonical form only (no sign, no leading zero).
_POSITIVE = re.compile(rb"[1-9][0-9]{0,18}")
_ONE_PREFIX = "/api/data/"
_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8"})
# A valid body is at most about 25 KB (4096 characters of \uXXXX escapes): larger ones go on to FastAPI.
BODY_MAX = 64 * 1024
_NOT_FOUND = Problem(404, "not-found", NOT_FOUND)


class Edge:
    """``edge.route(scope)`` -> ``(route template, handler)`` for the requests answered here, else None."""

    def __init__(self, app: FastAPI) -> None:
        self._state = app.state
        self._settings = app.state.settings
        self._page = ("/api/data", self._get_page)
        self._one = ("/api/data/{record_id}", self._get_one)
        self._create = ("/api/data", self._post)

    def route(self, scope: dict[str, Any]) -> tuple[str, Handler] | None:
        method, path = scope["method"], scope["path"]
        if method == "GET":
            if path == "/api/data":
                return self._page
            if path.startswith(_ONE_PREFIX):
                return self._one
        elif method == "POST" and path == "/api/data":
            return self._create
        return None

    async def _answer(self, result: Awaitable[bytes | None], status: int) -> Answer:
        try:
            body = await result
        except Exception as exc:
            problem = database_problem(self._settings, exc)
            if problem is None:
                raise  # unexpected: the app's 500 handler answers
            return problem.status, problem.body(), problem.raw_headers()
        if body is None:
            return _NOT_FOUND.status, _NOT_FOUND.body(), []
        return status, body, []

    async def _get_page(self, scope: dict[str, Any], receive: Any) -> Answer | None:
        query = page_query(scope["query_string"])
        if query is None:
            return None
        return await self._answer(self._state.records.page(*query), 200)

    async def _get_one(self, scope: dict[str, Any], receive: Any) -> Answer | None:
        if scope["query_string"]:
            return None
        raw = scope["path"][len(_ONE_PREFIX) :].encode("latin-1", "replace")
        if not _POSITIVE.fullmatch(raw) or (record_id := int(raw)) > BIGINT_MAX:
            return None
        return await self._answer(self._state.records.one(record_id), 200)

    async def _post(self, scope: dict[str, Any], receive: Any) -> Answer | Defer | None:
        if not _json_content(scope["headers"]):
            return None
        messages: list[dict[str, Any]] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client went away
                return Defer(_replay(messages, receive))
            size += len(message.get("body", b""))
            if size > BODY_MAX:
                return Defer(_replay(messages, receive))
            if not message.get("more_body", False):
                break
        fields = record_fields(b"".join(m.get("body", b"") for m in messages))
        if fields is None:
            return Defer(_replay(messages, receive))
        return await self._answer(self._state.records.create(*fields), 201)


def page_query(query_string: bytes) -> tuple[int, int | None] | None:
    """``limit`` and ``before`` from a query string holding nothing else, each once and valid; else None."""
    limit, before = PAGE_DEFAULT, None
    if not query_string:
        return limit, before
    seen: list[bytes] = []
    for part in query_string.split(b"&"):
        name, sep, value = part.partition(b"=")
        if not sep or name in seen or not _POSITIVE.fullmatch(value):
            return None
        seen.append(name)
        number = int(value)
        if name == b"limit" and number <= PAGE_MAX:
            limit = number
        elif name == b"before" and number <= BIGINT_MAX:
            before = number
        else:
            return None
    return limit, before


def record_fields(body: bytes) -> tuple[str, str] | None:
    """(key, value) from a body that ``RecordIn`` accepts as it is; None for anything else."""
    try:
        doc = orjson.loads(body)  # rejects invalid UTF-8 and lone surrogates
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict:
        return None
    # Exactly the two fields, both strings: a missing one (or any other) goes on to FastAPI's 422.
    key = doc.get("key")
    value = doc.get("value")
    if type(key) is not str or type(value) is not str or len(doc) != 2:
        return None
    if not 0 < len(key) <= KEY_MAX or len(value) > VALUE_MAX or "\x00" in key or "\x00" in value:
        return None
    return key, value


def _json_content(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.lower() in _JSON_TYPES
    return False


def _replay(messages: list[dict[str, Any]], receive: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
    pending = list(messages)

    async def replay() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay

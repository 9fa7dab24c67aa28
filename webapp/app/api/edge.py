"""The fast path: an ASGI router in front of FastAPI for the hot requests, answering them before
FastAPI's routing, validation and dependency machinery, which cost more than the rest of the request
(docs/webapp.md, Design choices). ``Observability`` (app/core/observability.py) wraps it: request ids,
metrics and the access log are not its business.

It answers ``GET /health`` (liveness: FastAPI has no such route; app/api/health.py documents it),
``GET /api/status`` from memory, and the well-formed ``/api/data`` requests, through the same code
paths as the FastAPI routes (app/records.py). Anything else (a bad or unusual query string, path or
body, another content type, another method) goes on to FastAPI, which validates it and answers as
documented, 422s included. What "well-formed" means comes from the FastAPI routes' own definitions:
the same page bounds (app/records.py), and the limits and checks of ``RecordIn`` (app/schemas.py),
read from its field metadata. ``RecordIn.model_validate_json`` itself was measured at 3.2 µs a body
against 1.0 µs here (docs/webapp.md).

A handler returns ``(status, body, headers)``, or None to hand the request to FastAPI, or ``Defer`` to
hand it over with the body it already read. An answer sets ``scope["route"]`` to name the FastAPI
route it stands for, as FastAPI's routing does, so that it is counted and logged under the same path.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel

from app.api import health, status
from app.api.data import NOT_FOUND, REPLAYED
from app.core.errors import IdempotencyKeyReused, Problem, database_problem
from app.records import BIGINT_MAX, PAGE_DEFAULT, PAGE_MAX
from app.schemas import IDEMPOTENCY_KEY_BYTES, RecordIn, unstorable

Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, bytes, Headers]


@dataclass(slots=True)
class Defer:
    """Go on to FastAPI with this ``receive`` (it replays the body already read)."""

    receive: Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Route:
    """``scope["route"]`` of an answer of the fast path: the FastAPI route's full path, as FastAPI's own
    ``scope["route"].path`` (a property there, computed on every read)."""

    path: str


Handler = Callable[[dict[str, Any], Any], Awaitable[Answer | Defer | None]]

# A positive integer as FastAPI would read it, in canonical form only (no sign, no leading zero).
_POSITIVE = re.compile(rb"[1-9][0-9]{0,18}")
_ONE_PREFIX = "/api/data/"
_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8"})
_NOT_FOUND = Problem(404, "not-found", NOT_FOUND)
_JSON = (b"content-type", b"application/json")
_NOT_ALLOWED: Answer = (405, b'{"detail":"Method Not Allowed"}', [(b"allow", b"GET")])


class FastPath:
    """``FastPath(app, api=...)``: answers what it recognises (above), passes the rest on to ``app``."""

    def __init__(self, app: Any, *, api: FastAPI) -> None:
        self.app = app
        self._api = api
        self._state = api.state
        self._settings = api.state.settings
        # The FastAPI routes answered for, by method and full path (a KeyError here: a route renamed
        # without the fast path). Their ``path`` is what FastAPI's routing would name.
        routes = {
            (m, c.path): Route(c.path)
            for c in iter_route_contexts(api.routes)
            for m in getattr(c.original_route, "methods", ())
        }
        self._liveness_route = Route(health.liveness.routes[0].path)
        self._liveness = (200, health.LIVENESS_BODY, [])
        self._routes: dict[tuple[str, str], tuple[Any, Handler]] = {
            ("GET", "/api/status"): (routes["GET", "/api/status"], self._status),
            ("GET", "/api/data"): (routes["GET", "/api/data"], self._get_page),
            ("POST", "/api/data"): (routes["POST", "/api/data"], self._post),
        }
        self._one = (routes["GET", "/api/data/{record_id}"], self._get_one)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            answer: Answer | Defer | None
            if path == "/health":
                # Liveness touches nothing else. Other methods: the 405 FastAPI's route answered.
                route, answer = self._liveness_route, self._liveness if method == "GET" else _NOT_ALLOWED
            else:
                found = self._routes.get((method, path))
                if found is None and method == "GET" and path.startswith(_ONE_PREFIX):
                    found = self._one
                if found is None:
                    await self.app(scope, receive, send)
                    return
                route, handler = found
                answer = await handler(scope, receive)
            if type(answer) is tuple:
                scope["route"] = route
                status, body, headers = answer
                headers = [_JSON, (b"content-length", str(len(body)).encode()), *headers]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            if answer is not None:
                receive = answer.receive
        await self.app(scope, receive, send)

    async def _status(self, scope: dict[str, Any], receive: Any) -> Answer:
        return 200, status.status_body(self._api), []

    async def _answer(self, result: Awaitable[bytes | None], status: int) -> Answer:
        try:
            body = await result
        except Exception as exc:
            return self._problem(exc)
        if body is None:
            return _NOT_FOUND.status, _NOT_FOUND.body(), []
        return status, body, []

    def _problem(self, exc: Exception) -> Answer:
        problem = database_problem(self._settings, exc)
        if problem is None:
            raise exc  # unexpected: the app's 500 handler answers
        return problem.status, problem.body(), problem.raw_headers()

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
        # The body's size is bounded before it gets here (app/core/limits.py).
        json_content, key_valid, idempotency_key = _post_headers(scope["headers"])
        if not json_content or not key_valid:
            return None  # FastAPI reads it, and answers an invalid Idempotency-Key with its 422
        messages: list[dict[str, Any]] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client went away
                return Defer(_replay(messages, receive))
            if not message.get("more_body", False):
                break
        fields = record_fields(b"".join(m.get("body", b"") for m in messages))
        if fields is None:
            return Defer(_replay(messages, receive))
        try:
            body, replayed = await self._state.records.create(*fields, idempotency_key)
        except IdempotencyKeyReused as exc:
            return 422, exc.body(), []
        except Exception as exc:
            return self._problem(exc)
        return 201, body, [REPLAYED] if replayed else []


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


def _length_bounds(model: type[BaseModel], name: str) -> tuple[int, int]:
    """A string field's ``min_length`` and ``max_length``, from its pydantic metadata."""
    low, high = 0, sys.maxsize
    for item in model.model_fields[name].metadata:
        low = getattr(item, "min_length", low)
        high = getattr(item, "max_length", high)
    return low, high


_KEY_LEN = _length_bounds(RecordIn, "key")
_VALUE_LEN = _length_bounds(RecordIn, "value")


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
    if not _KEY_LEN[0] <= len(key) <= _KEY_LEN[1] or not _VALUE_LEN[0] <= len(value) <= _VALUE_LEN[1]:
        return None
    if unstorable(key) or unstorable(value):
        return None
    return key, value


def _post_headers(headers: list[tuple[bytes, bytes]]) -> tuple[bool, bool, str | None]:
    """Whether the content type is JSON; whether the Idempotency-Key, if any, is one FastAPI's header
    parameter accepts (the same pattern); the key (None without one). The first of each, as FastAPI reads."""
    json_content: bool | None = None
    key: bytes | None = None
    for name, value in headers:
        if name == b"content-type":
            if json_content is None:
                json_content = value.lower() in _JSON_TYPES
        elif name == b"idempotency-key" and key is None:
            key = value
    if key is None:
        return bool(json_content), True, None
    if IDEMPOTENCY_KEY_BYTES.fullmatch(key) is None:
        return bool(json_content), False, None
    return bool(json_content), True, key.decode("ascii")


def _replay(messages: list[dict[str, Any]], receive: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
    pending = list(messages)

    async def replay() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay

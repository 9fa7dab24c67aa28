"""The request body limit (MAX_BODY_BYTES): a larger body is answered 413 before it is read.

``BodyLimit`` is a pure ASGI layer between the observability middleware and the fast path: a
``Content-Length`` over the limit is answered at once, without reading a byte of the body; a chunked
body (no length announced) is counted as it is received, and the request stops at the first chunk
over the limit (``BodyTooLarge``, raised from ``receive`` to whoever reads: the fast path, or FastAPI,
whose handler answers the same 413). The answer closes the connection, so that uvicorn does not go on
reading the rest of the body to find the next request.

GET and HEAD requests pass untouched: nothing here reads their body (no FastAPI route declares one,
the fast path never reads one), and uvicorn buffers at most 64 KiB of an unread body before it stops
reading the socket.
"""

from __future__ import annotations

from typing import Any

from app.core.errors import BodyTooLarge, body_too_large

_BODILESS = frozenset({"GET", "HEAD"})


class BodyLimit:
    """``BodyLimit(app, max_bytes=...)``: see the module's docstring."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        problem = body_too_large(max_bytes)
        self._answer = problem.body()
        self._headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._answer)).encode()),
            *problem.raw_headers(),
        ]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                # uvicorn has checked that it is digits; a length of more digits than the limit's is over it.
                if len(value) > 20 or int(value) > self.max_bytes:
                    await self._refuse(send)
                    return
                break
            if name == b"transfer-encoding":
                chunked = True
        if not chunked:  # a body of a known, acceptable length, or none
            await self.app(scope, receive, send)
            return

        limit = self.max_bytes
        received = 0
        started = False

        async def counted() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:  # FastAPI answered it already (its handler); anything else is a bug
                raise
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        await send({"type": "http.response.start", "status": 413, "headers": self._headers})
        await send({"type": "http.response.body", "body": self._answer})

"""The sandbox's one HTTP client layer: HTTP/1.1 on asyncio streams, on the runtime's loop.

The edge fetches from origins with it (keep-alive ``Pool``, ``read_head``, bodies by Content-Length,
chunked or until close) and Route 53's health checkers probe with it (``connect``, ``read_head``,
``read_body_prefix``); the edge also reads its viewers' requests with the same framing helpers. Plain
HTTP on loopback only: the sandbox has no TLS. The ALB listener keeps its own httptools data plane
(sandbox/services/elbv2/listener.py and sandbox/services/elbv2/proxy.py), where speed needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

Headers = list[tuple[str, str]]


@dataclass
class Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float, keepalive: float) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof() and now - self.idle_since < keepalive

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def connect(addr: tuple[str, int], timeout: float, source: str | None = None) -> Conn:
    """A new connection; TimeoutError when it takes longer than timeout, OSError when refused.

    ``source``: the loopback address to connect from (the edge's, Route 53's checker's: sandbox/config.py),
    which an ALB's security groups see as the client; by default the kernel's choice, 127.0.0.1.
    """
    local_addr = (source, 0) if source else None
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(*addr, local_addr=local_addr)
    return Conn(reader, writer)


class Pool:
    """Keep-alive connections, per local address (only ever used on the aio loop)."""

    def __init__(self, max_idle_per_address: int) -> None:
        self._idle: dict[tuple[str, int], list[Conn]] = {}
        self._max_idle = max_idle_per_address

    def take(self, addr: tuple[str, int], keepalive: float) -> Conn | None:
        idle = self._idle.get(addr)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable(now, keepalive):
                return conn
            conn.close()
        return None

    def give(self, addr: tuple[str, int], conn: Conn) -> None:
        idle = self._idle.setdefault(addr, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def drop(self, addr: tuple[str, int]) -> None:
        for conn in self._idle.pop(addr, []):
            conn.close()

    def close_all(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


async def read_head(reader: asyncio.StreamReader, *, strict: bool = True) -> tuple[str, Headers]:
    """(start line, headers) of a request or response; a header line without a colon is a ValueError
    (``strict``) or skipped."""
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            if strict:
                raise ValueError(f"malformed header line {line!r}")
            continue
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def header(headers: Headers, name: str) -> str | None:
    """The value of the header ``name`` (lower case), or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def read_chunked(reader: asyncio.StreamReader, on_read: Callable[[], None] | None, limit: int) -> bytes:
    """A whole chunked body (trailers read and dropped); ValueError past ``limit`` bytes."""
    parts = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if on_read:
            on_read()
        if size == 0:
            # Trailers, then the empty line.
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise ValueError("body too large")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def read_body_prefix(reader: asyncio.StreamReader, headers: Headers, limit: int) -> bytes:
    """Up to limit bytes of a response body (Content-Length, chunked or read-until-close framing)."""
    body = b""
    if "chunked" in (header(headers, "transfer-encoding") or "").lower():
        while len(body) < limit:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return body[:limit]
    length = header(headers, "content-length")
    if length is not None:
        return await reader.readexactly(min(int(length), limit))
    while len(body) < limit:
        chunk = await reader.read(limit - len(body))
        if not chunk:
            break
        body += chunk
    return body

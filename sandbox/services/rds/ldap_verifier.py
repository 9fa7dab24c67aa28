"""A loopback LDAP server that only answers simple binds: how the sandbox's PostgreSQL checks IAM auth tokens.

Aurora PostgreSQL lets a member of ``rds_iam`` in with an IAM auth token as the password (through PAM). A stock
PostgreSQL can hand a password to an outside judge only through LDAP: pg_hba's simple-bind mode asks the client for
a cleartext password and binds as ``<prefix><user><suffix>`` with it. Every Aurora node's pg_hba sends ``rds_iam``
members here (engine: nodes.py ``AuroraNode``, suffix ``@<cluster resource id>``), and this server answers each
BindRequest with success (0) or invalidCredentials (49) as the engine's check (iam_auth.py) decides.

Only what libldap's ``ldap_simple_bind_s`` and ``ldap_unbind`` send is understood (RFC 4511, BER): a BindRequest
with simple authentication, and an UnbindRequest; anything else closes the connection. The check runs on a worker
thread (``asyncio.to_thread``): the runtime's loop never takes the engine's locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger("sandbox.aurora")

# BER tags (RFC 4511): LDAPMessage, messageID, BindRequest and its parts, UnbindRequest, BindResponse's parts.
SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
ENUMERATED = 0x0A
BIND_REQUEST = 0x60
BIND_RESPONSE = 0x61
UNBIND_REQUEST = 0x42
SIMPLE_AUTH = 0x80
SUCCESS = 0
INVALID_CREDENTIALS = 49
AUTH_METHOD_NOT_SUPPORTED = 7
# An IAM token is 1-2 KB (more with a session token); nothing a client should send comes near this.
MAX_MESSAGE = 64 * 1024
READ_TIMEOUT_S = 10.0

# Checks (bind DN, password) and returns None to let the user in, or the reason it refuses.
Check = Callable[[str, str], str | None]


class ProtocolError(Exception):
    """Not an LDAP message this server answers: the connection is closed."""


def encode(tag: int, content: bytes) -> bytes:
    """One BER TLV with a definite length (short form under 128 bytes, long form otherwise)."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def decode(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """The (tag, content, next offset) of the TLV at offset."""
    if offset + 2 > len(data):
        raise ProtocolError("truncated element")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise ProtocolError("unsupported length")
        size = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    else:
        size = first
    if offset + size > len(data):
        raise ProtocolError("truncated element")
    return tag, data[offset : offset + size], offset + size


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One whole LDAPMessage (its tag, length and content) from the stream."""
    head = await reader.readexactly(2)
    if head[0] != SEQUENCE:
        raise ProtocolError(f"not an LDAPMessage (tag {head[0]:#x})")
    count = head[1] & 0x7F if head[1] & 0x80 else 0
    if head[1] & 0x80 and not 0 < count <= 4:
        raise ProtocolError("unsupported length")
    raw = await reader.readexactly(count) if count else b""
    size = int.from_bytes(raw, "big") if count else head[1]
    if size > MAX_MESSAGE:
        raise ProtocolError(f"message of {size} bytes is too long")
    return head + raw + await reader.readexactly(size)


def parse_bind(message: bytes) -> tuple[bytes, int, str, str | None]:
    """(messageID as sent, protocol op tag, bind DN, simple password or None) of an LDAPMessage."""
    _tag, body, _end = decode(message)
    id_tag, message_id, offset = decode(body)
    if id_tag != INTEGER:
        raise ProtocolError("no messageID")
    op_tag, op, _end = decode(body, offset)
    if op_tag != BIND_REQUEST:
        return message_id, op_tag, "", None
    version_tag, _version, offset = decode(op)
    name_tag, name, offset = decode(op, offset)
    auth_tag, auth, _end = decode(op, offset)
    if version_tag != INTEGER or name_tag != OCTET_STRING:
        raise ProtocolError("malformed BindRequest")
    password = auth.decode("utf-8", "replace") if auth_tag == SIMPLE_AUTH else None
    return message_id, op_tag, name.decode("utf-8", "replace"), password


def bind_response(message_id: bytes, code: int, diagnostic: str = "") -> bytes:
    result = encode(ENUMERATED, bytes([code])) + encode(OCTET_STRING, b"") + encode(OCTET_STRING, diagnostic.encode())
    return encode(SEQUENCE, encode(INTEGER, message_id) + encode(BIND_RESPONSE, result))


class LdapVerifier:
    """The asyncio server: one BindRequest after another per connection, each judged by ``check``."""

    def __init__(self, check: Check) -> None:
        self._check = check
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, host: str) -> int:
        self._server = await asyncio.start_server(self._handle, host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                message = await asyncio.wait_for(read_message(reader), READ_TIMEOUT_S)
                message_id, op, dn, password = parse_bind(message)
                if op != BIND_REQUEST:
                    return  # an UnbindRequest (or an operation this server does not offer): close
                writer.write(await self._answer(message_id, dn, password))
                await writer.drain()
        except (ProtocolError, asyncio.IncompleteReadError, TimeoutError, ConnectionError) as exc:
            if isinstance(exc, ProtocolError):
                log.info("aurora IAM verifier: closed a connection: %s", exc)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, message_id: bytes, dn: str, password: str | None) -> bytes:
        if password is None:
            return bind_response(message_id, AUTH_METHOD_NOT_SUPPORTED, "only simple binds are supported")
        try:
            reason = await asyncio.to_thread(self._check, dn, password)
        except Exception:
            log.exception("aurora IAM verifier: the check of %r failed", dn)
            reason = "internal error while checking the token"
        if reason is None:
            return bind_response(message_id, SUCCESS)
        return bind_response(message_id, INVALID_CREDENTIALS, reason)

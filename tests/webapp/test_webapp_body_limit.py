"""MAX_BODY_BYTES: a body over it is answered 413 before it is read, on the fast path and FastAPI's alike."""

from __future__ import annotations

import json
import re
import socket

import httpx
import pytest
from webapp_support import DB_NAME, AppProcess, db_env

LIMIT = 2048
EDGE = "application/json"  # a content type the fast path reads
FASTAPI = "application/vnd.api+json"  # one it leaves to FastAPI


@pytest.fixture(scope="module")
def small(pg, tmp_path_factory: pytest.TempPathFactory):
    """An app with a 2 KiB body limit, so that bodies just over it are cheap to send."""
    proc = AppProcess(
        db_env(host=f"127.0.0.1:{pg.port}", MAX_BODY_BYTES=str(LIMIT)), tmp_path_factory.mktemp("small") / "app.log"
    ).start()
    yield proc
    proc.stop()


def _exchange(app: AppProcess, head: bytes, chunks: list[bytes] = ()) -> tuple[bytes, bytes, bool]:  # type: ignore[assignment]
    """Send a request's head and then ``chunks`` on a socket of its own; (status line and headers, body,
    whether the server closed the connection after its answer). The request is never finished."""
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head_part, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1] for line in head_part.split(b"\r\n") if line.lower().startswith(b"content-length:")
            )
        )
        while len(body) < length:
            body += sock.recv(65536)
        sock.settimeout(2)
        try:
            closed = sock.recv(65536) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
    return head_part, body, closed


def _stored(pg) -> int:
    return pg.execute("SELECT count(*) FROM records", dbname=DB_NAME)[0][0]


def _body_of(size: int) -> bytes:
    """A valid record's body of exactly ``size`` bytes (the value pads it)."""
    frame = b'{"key": "k", "value": ""}'
    return frame[:-2] + b"v" * (size - len(frame)) + frame[-2:]


@pytest.mark.parametrize("ctype", [EDGE, FASTAPI], ids=["edge", "fastapi"])
def test_a_content_length_over_the_limit_is_413_before_the_body_is_sent(small: AppProcess, pg, ctype: str) -> None:
    """Answered from the head alone: not a byte of the (announced) megabyte is ever sent."""
    head = f"POST /api/data HTTP/1.1\r\nHost: app\r\nContent-Type: {ctype}\r\nContent-Length: 1000000\r\n\r\n"
    status, body, closed = _exchange(small, head.encode())
    assert status.startswith(b"HTTP/1.1 413 "), status
    assert b"connection: close" in status.lower()
    assert json.loads(body) == {
        "detail": f"the request body is larger than {LIMIT} bytes (MAX_BODY_BYTES)",
        "reason": "body-too-large",
    }
    assert closed  # the server does not go on reading the body to find the next request
    assert _stored(pg) == 0


@pytest.mark.parametrize("ctype", [EDGE, FASTAPI], ids=["edge", "fastapi"])
def test_a_chunked_body_stops_at_the_limit(small: AppProcess, pg, ctype: str) -> None:
    """No length announced: counted as received, and answered at the first chunk over the limit, while the
    client has not finished its body (the last chunk is never sent), by the fast path and by FastAPI."""
    head = f"POST /api/data HTTP/1.1\r\nHost: app\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = [b'{"key": "k", "value": "', *[b"v" * 700] * 3]  # 2,124 bytes: over 2,048 with the fourth chunk
    status, body, closed = _exchange(small, head.encode(), [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks])
    assert status.startswith(b"HTTP/1.1 413 "), status
    assert json.loads(body)["reason"] == "body-too-large"
    assert closed
    assert _stored(pg) == 0


@pytest.mark.parametrize("ctype", [EDGE, FASTAPI], ids=["edge", "fastapi"])
def test_a_body_at_the_limit_is_read(small: AppProcess, ctype: str) -> None:
    def chunked(body: bytes):
        yield body[:1000]
        yield body[1000:]

    with small.client() as http:
        for content in (_body_of(LIMIT), chunked(_body_of(LIMIT))):
            resp = http.post("/api/data", content=content, headers={"content-type": ctype})
            # The value is over 4096 characters only past 4 KiB: at 2 KiB a valid record, on either path.
            assert resp.status_code == 201, resp.text
        resp = http.post("/api/data", content=_body_of(LIMIT + 1), headers={"content-type": ctype})
        assert resp.status_code == 413 and resp.json()["reason"] == "body-too-large"
        assert resp.headers["connection"] == "close"
        # Counted (and logged) like any answer: the observability layer is outside the limit.
        assert re.search(
            r'http_requests_total\{method="POST",route="unmatched",status="413"\} [1-9]', http.get("/metrics").text
        )


def test_the_default_limit_holds_any_valid_record(client: httpx.Client) -> None:
    """64 KiB: the largest valid record, every character an escaped astral one, is 50,709 bytes."""
    body = json.dumps({"key": "😀" * 128, "value": "😀" * 4096}, separators=(",", ":")).encode()
    assert len(body) == 50_709
    resp = client.post("/api/data", content=body, headers={"content-type": EDGE})
    assert resp.status_code == 201, resp.text
    assert client.post("/api/data", content=b" " * (64 * 1024 + 1), headers={"content-type": EDGE}).status_code == 413

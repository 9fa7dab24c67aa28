"""SNS deliveries: HTTP/HTTPS POSTs on the runtime's asyncio loop, email, email-json and SMS to the outbox.

``Postman`` is called on whatever thread made the subscription or the publish (a request thread, or
CloudWatch's alarm evaluation calling moto's ``SNSBackend.publish``); it records mail and SMS in the
``Outbox`` at once and schedules each HTTP delivery on the loop (``Runtime.run_coro``), so the publish
returns without waiting for any endpoint. Every attempt, HTTP ones included, is an outbox record.

HTTP delivery follows AWS: the documented headers, a 15 s limit per attempt, success on a status from
200 to 499, and the subscription's (else the topic's, else the default) healthy retry policy: 3 retries,
20 s apart. An endpoint that is not on loopback is never contacted: the attempt is recorded as failed
at once and not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import uuid
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox import httpclient, runtime
from sandbox.services.sns import messages

ATTEMPT_TIMEOUT_S = 15.0
OUTBOX_LIMIT = 10_000
DEFAULT_RETRIES = 3
DEFAULT_DELAY_S = 20.0
MAX_TOTAL_S = 3600.0
MAIL_PROTOCOLS = frozenset({"email", "email-json", "sms"})
HTTP_PROTOCOLS = frozenset({"http", "https"})


@dataclass
class Letter:
    """One message to one subscription (or phone number)."""

    topic_arn: str | None
    protocol: str
    endpoint: str
    subscription_arn: str | None
    type: str
    message_id: str
    subject: str | None
    message: str
    body: str  # what goes on the wire (HTTP, email-json) or into the mailbox (email, SMS)
    subscribe_url: str | None = None
    raw: bool = False  # RawMessageDelivery: the body is the message alone


class Outbox:
    """Every delivery attempt, newest last (bounded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque(maxlen=OUTBOX_LIMIT)

    def add(self, letter: Letter, *, delivered: bool, status: int | None, error: str | None, attempt: int) -> None:
        record = {
            "time": messages.now_iso(),
            "topic_arn": letter.topic_arn,
            "protocol": letter.protocol,
            "endpoint": letter.endpoint,
            "subscription_arn": letter.subscription_arn,
            "type": letter.type,
            "message_id": letter.message_id,
            "subject": letter.subject,
            "message": letter.message,
            "body": letter.body,
            "subscribe_url": letter.subscribe_url,
            "delivered": delivered,
            "status": status,
            "attempt": attempt,
            "error": error,
        }
        with self._lock:
            self._records.append(record)

    def records(self, since: datetime | None = None) -> list[dict[str, Any]]:
        with self._lock:
            records = list(self._records)
        if since is None:
            return records
        return [r for r in records if parse_time(r["time"]) >= since]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def parse_time(value: str) -> datetime:
    """An ISO 8601 time; one without a zone is UTC. ValueError names the expected shape.

    A "+hh:mm" offset put into a query string unencoded arrives as " hh:mm" (the query's '+' is a space):
    read it as the offset it was.
    """
    value = re.sub(r"(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?) (\d{2}:\d{2})$", r"\1+\4", value.strip())
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time such as 2026-01-31T12:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=messages.UTC)


def retry_policy(subscription: Any) -> tuple[int, float]:
    """(retries, delay in s) from the subscription's DeliveryPolicy, else the topic's, else AWS's default."""
    sources = [subscription.attributes.get("DeliveryPolicy"), getattr(subscription.topic, "delivery_policy", "")]
    for source in sources:
        try:
            policy = json.loads(source) if isinstance(source, str) and source else (source or {})
        except ValueError:
            continue
        healthy = policy.get("healthyRetryPolicy") or (policy.get("http") or {}).get("defaultHealthyRetryPolicy")
        if isinstance(healthy, dict) and "numRetries" in healthy:
            retries = int(healthy.get("numRetries", DEFAULT_RETRIES))
            delay = float(healthy.get("minDelayTarget", DEFAULT_DELAY_S))
            return max(0, retries), max(1.0, delay)
    return DEFAULT_RETRIES, DEFAULT_DELAY_S


def raw_delivery(subscription: Any) -> bool:
    return subscription.protocol in HTTP_PROTOCOLS and (
        str(subscription.attributes.get("RawMessageDelivery", "false")).lower() == "true"
    )


class Postman:
    """Sends confirmation requests and notifications to their endpoints (see the module's docstring)."""

    def __init__(self, rt: runtime.Runtime, outbox: Outbox, signer: messages.Signer) -> None:
        self.rt = rt
        self.outbox = outbox
        self.signer = signer
        self._lock = threading.Lock()
        self._inflight: set[Future[Any]] = set()

    # -- what moto calls (through the patches) -------------------------------------------------------

    def request_confirmation(self, subscription: Any, token: str) -> None:
        topic_arn = subscription.topic.arn
        doc = messages.confirmation(self.rt, self.signer, topic_arn, token, str(uuid.uuid4()))
        if subscription.protocol == "email":
            body = (
                f"You have chosen to subscribe to the topic: \n{topic_arn}\n\n"
                "To confirm this subscription, click or visit the link below "
                f"(If this was in error no action is necessary):\n{doc['SubscribeURL']}"
            )
        else:
            body = json.dumps(doc)
        subject = "AWS Notification - Subscription Confirmation" if subscription.protocol == "email" else None
        self._send(subscription, doc, body, subject, retries=(DEFAULT_RETRIES, DEFAULT_DELAY_S))

    def notify(
        self, subscription: Any, message_id: str, message: str, subject: str | None, attributes: dict[str, Any] | None
    ) -> None:
        doc = messages.notification(self.rt, self.signer, subscription, message_id, message, subject, attributes)
        if subscription.protocol == "email":
            body = (
                f"{message}\n\n--\nIf you wish to stop receiving notifications from this topic, please click or "
                f"visit the link below to unsubscribe:\n{doc['UnsubscribeURL']}"
            )
        elif subscription.protocol == "sms" or raw_delivery(subscription):
            body = message  # RawMessageDelivery: the message alone, as AWS posts it
        else:
            body = json.dumps(doc)
        self._send(subscription, doc, body, subject, retries=retry_policy(subscription))

    def sms(self, phone_number: str, message_id: str, message: str) -> None:
        """A Publish straight to a phone number (no topic)."""
        letter = Letter(None, "sms", phone_number, None, messages.NOTIFICATION, message_id, None, message, message)
        self.outbox.add(letter, delivered=True, status=None, error=None, attempt=1)

    # -- sending -------------------------------------------------------------------------------------

    def _send(
        self, subscription: Any, doc: dict[str, Any], body: str, subject: str | None, retries: tuple[int, float]
    ) -> None:
        letter = Letter(
            topic_arn=subscription.topic.arn,
            protocol=subscription.protocol,
            endpoint=subscription.endpoint,
            subscription_arn=subscription.arn,
            type=doc["Type"],
            message_id=doc["MessageId"],
            subject=subject if subject is not None else doc.get("Subject"),
            message=doc["Message"],
            body=body,
            subscribe_url=doc.get("SubscribeURL"),
            raw=doc["Type"] == messages.NOTIFICATION and raw_delivery(subscription),
        )
        if letter.protocol in MAIL_PROTOCOLS:
            self.outbox.add(letter, delivered=True, status=None, error=None, attempt=1)
        elif letter.protocol in HTTP_PROTOCOLS:
            future = self.rt.run_coro(self._post_with_retries(letter, *retries))
            with self._lock:
                self._inflight.add(future)
            future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._inflight.discard(future)

    def reset(self) -> None:
        """Drop every delivery still waiting for a retry (POST /moto-api/reset)."""
        with self._lock:
            inflight, self._inflight = self._inflight, set()
        for future in inflight:
            future.cancel()
        self.outbox.clear()

    async def _post_with_retries(self, letter: Letter, retries: int, delay: float) -> None:
        started = asyncio.get_running_loop().time()
        for attempt in range(1, retries + 2):
            try:
                status, error = await self._post(letter)
            except messages.NotLoopback as exc:
                # Never contacted, so never retried: no retry could reach it either.
                self.outbox.add(letter, delivered=False, status=None, error=str(exc), attempt=attempt)
                return
            delivered = status is not None and 200 <= status < 500
            self.outbox.add(letter, delivered=delivered, status=status, error=error, attempt=attempt)
            elapsed = asyncio.get_running_loop().time() - started
            if delivered or attempt > retries or elapsed + delay > MAX_TOTAL_S:
                return
            await asyncio.sleep(delay)

    async def _post(self, letter: Letter) -> tuple[int | None, str | None]:
        host, port, target = messages.loopback_address(self.rt, letter.endpoint)
        payload = letter.body.encode()
        head = [
            f"POST {target} HTTP/1.1",
            f"Host: {host}:{port}",
            f"x-amz-sns-message-type: {letter.type}",
            f"x-amz-sns-message-id: {letter.message_id}",
            f"x-amz-sns-topic-arn: {letter.topic_arn}",
            "Content-Type: text/plain; charset=UTF-8",
            "User-Agent: Amazon Simple Notification Service Agent",
            f"Content-Length: {len(payload)}",
            "Connection: close",
        ]
        if letter.type == messages.NOTIFICATION:  # AWS sends it with notifications only
            head.insert(5, f"x-amz-sns-subscription-arn: {letter.subscription_arn}")
        if letter.raw:
            head.insert(6, "x-amz-sns-rawdelivery: true")
        conn = None
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                conn = await httpclient.connect((host, port), ATTEMPT_TIMEOUT_S)
                conn.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
                await conn.writer.drain()
                start, headers = await httpclient.read_head(conn.reader)
                await httpclient.read_body_prefix(conn.reader, headers, 65536)
            return int(start.split()[1]), None
        except TimeoutError:
            return None, f"no answer within {ATTEMPT_TIMEOUT_S:.0f} s"
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            if conn is not None:
                conn.close()


async def http_get(rt: runtime.Runtime, url: str) -> int:
    """GET a loopback URL (a SubscribeURL) and return the status; NotLoopback for any other address."""
    host, port, target = messages.loopback_address(rt, url)
    conn = None
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
            conn = await httpclient.connect((host, port), ATTEMPT_TIMEOUT_S)
            request = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
            conn.writer.write(request.encode("latin-1"))
            await conn.writer.drain()
            start, headers = await httpclient.read_head(conn.reader)
            with contextlib.suppress(asyncio.IncompleteReadError):
                await httpclient.read_body_prefix(conn.reader, headers, 65536)
        return int(start.split()[1])
    finally:
        if conn is not None:
            conn.close()

"""The sandbox's own webhook receiver: an HTTP endpoint for SNS that behaves like a real one.

``POST /_sandbox/webhook?name=<name>`` takes an SNS message as AWS posts it. A SubscriptionConfirmation
is confirmed as a real receiver would: by GETting its SubscribeURL (off the request thread, on the
runtime's loop, loopback only). Notifications and the rest are recorded; ``GET /_sandbox/webhook?name=<name>``
lists them (without ``name``: every receiver). The sandbox inventory subscribes one per region's alarm
topic, so alarm notifications have a confirmed HTTP subscriber to reach.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from sandbox import runtime
from sandbox.services.sns import delivery, messages

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RECORDS_PER_RECEIVER = 1000
SNS_TYPES = ("SubscriptionConfirmation", "Notification", "UnsubscribeConfirmation")


def receiver_name(query: dict[str, str], *, required: bool) -> str | None:
    name = query.get("name")
    if name is None and not required:
        return None
    if not name or not NAME.match(name):
        raise runtime.ControlError(
            400,
            f"name the receiver in the query: /_sandbox/webhook?name=alarms (letters, digits, '_', '.', '-'); got {name!r}",
        )
    return name


class Webhooks:
    """The receivers' records, by receiver name."""

    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        self._lock = threading.Lock()
        self._received: dict[str, list[dict[str, Any]]] = {}

    def receive(self, name: str, message: dict[str, Any]) -> dict[str, Any]:
        kind = message.get("Type")
        if kind not in SNS_TYPES:
            raise runtime.ControlError(
                400, f"not an SNS message: Type must be one of {', '.join(SNS_TYPES)}, got {kind!r}"
            )
        record = {
            "time": messages.now_iso(),
            "type": kind,
            "message_id": message.get("MessageId"),
            "topic_arn": message.get("TopicArn"),
            "subject": message.get("Subject"),
            "message": message.get("Message"),
            "confirmation": None,
        }
        with self._lock:
            records = self._received.setdefault(name, [])
            records.append(record)
            del records[:-RECORDS_PER_RECEIVER]
        if kind == "SubscriptionConfirmation":
            url = message.get("SubscribeURL")
            if not isinstance(url, str) or not url:
                raise runtime.ControlError(400, "a SubscriptionConfirmation needs its SubscribeURL")
            record["confirmation"] = "pending"
            # Answer SNS first, then confirm, as a receiver does: the confirmation needs a free request thread.
            self.rt.run_coro(self._confirm(record, url))
        return record

    async def _confirm(self, record: dict[str, Any], url: str) -> None:
        try:
            status = await delivery.http_get(self.rt, url)
            outcome = "confirmed" if status == 200 else f"failed: HTTP {status}"
        except messages.NotLoopback as exc:
            outcome = f"refused: {exc}"
        except (OSError, TimeoutError, ValueError) as exc:
            outcome = f"failed: {type(exc).__name__}: {exc}"
        with self._lock:
            record["confirmation"] = outcome

    def received(self, name: str | None) -> dict[str, Any]:
        with self._lock:
            if name is not None:
                return {"name": name, "messages": [dict(r) for r in self._received.get(name, [])]}
            return {"receivers": {n: [dict(r) for r in rs] for n, rs in sorted(self._received.items())}}

    def reset(self) -> None:
        with self._lock:
            self._received.clear()

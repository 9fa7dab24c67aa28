"""SNS message documents as AWS sends them, signed, and the loopback rule for endpoints.

The JSON bodies (SubscriptionConfirmation, Notification) carry the fields AWS documents, and a real
``SignatureVersion`` 2 signature (SHA256withRSA over AWS's string to sign) by a key the sandbox makes on
first use; its self-signed certificate is served at ``SigningCertURL``
(``/_sandbox/sns/signing-cert.pem`` on the sandbox's port). A receiver that checks the signature against
that certificate succeeds; one that also insists the certificate URL be on ``amazonaws.com`` (as AWS
advises) rejects it, since the sandbox cannot sign as Amazon.
"""

from __future__ import annotations

import base64
import ipaddress
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from sandbox import config, runtime

CONFIRMATION = "SubscriptionConfirmation"
NOTIFICATION = "Notification"
SIGNING_CERT_PATH = "sns/signing-cert.pem"

# The fields each type signs, in AWS's order (docs: "Verifying the signatures of Amazon SNS messages").
_SIGNED_FIELDS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def now_iso() -> str:
    """UTC now as SNS writes it: 2012-04-26T20:45:04.751Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Signer:
    """One RSA key and self-signed certificate per sandbox process, made on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Any = None
        self._cert_pem = b""

    def _ensure(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        with self._lock:
            if self._key is not None:
                return
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com (sandbox)")])
            start = datetime.now(UTC) - timedelta(minutes=5)
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(start + timedelta(days=365))
                .sign(key, hashes.SHA256())
            )
            self._cert_pem = cert.public_bytes(serialization.Encoding.PEM)
            self._key = key

    def cert_pem(self) -> bytes:
        self._ensure()
        return self._cert_pem

    def sign(self, doc: dict[str, Any]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        self._ensure()
        text = "".join(f"{field}\n{doc[field]}\n" for field in _SIGNED_FIELDS[doc["Type"]] if field in doc)
        return base64.b64encode(self._key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def _api(rt: runtime.Runtime) -> str:
    return f"http://{config.HOST}:{rt.api_port}"


def subscribe_url(rt: runtime.Runtime, topic_arn: str, token: str) -> str:
    """AWS's shape (?Action=ConfirmSubscription&TopicArn=...&Token=...), on the sandbox's own port."""
    return f"{_api(rt)}/?Action=ConfirmSubscription&TopicArn={quote(topic_arn, safe='')}&Token={token}"


def unsubscribe_url(rt: runtime.Runtime, subscription_arn: str) -> str:
    return f"{_api(rt)}/?Action=Unsubscribe&SubscriptionArn={quote(subscription_arn, safe='')}"


def _finish(rt: runtime.Runtime, signer: Signer, doc: dict[str, Any]) -> dict[str, Any]:
    doc["SignatureVersion"] = "2"
    doc["Signature"] = signer.sign(doc)
    doc["SigningCertURL"] = f"{_api(rt)}/_sandbox/{SIGNING_CERT_PATH}"
    return doc


def confirmation(rt: runtime.Runtime, signer: Signer, topic_arn: str, token: str, message_id: str) -> dict[str, Any]:
    doc = {
        "Type": CONFIRMATION,
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic_arn,
        "Message": (
            f"You have chosen to subscribe to the topic {topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message."
        ),
        "SubscribeURL": subscribe_url(rt, topic_arn, token),
        "Timestamp": now_iso(),
    }
    return _finish(rt, signer, doc)


def notification(
    rt: runtime.Runtime,
    signer: Signer,
    subscription: Any,
    message_id: str,
    message: str,
    subject: str | None,
    attributes: dict[str, Any] | None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"Type": NOTIFICATION, "MessageId": message_id, "TopicArn": subscription.topic.arn}
    if subject:
        doc["Subject"] = subject
    doc.update({"Message": message, "Timestamp": now_iso()})
    _finish(rt, signer, doc)
    doc["UnsubscribeURL"] = unsubscribe_url(rt, subscription.arn)
    if attributes:
        doc["MessageAttributes"] = {
            name: {
                "Type": value.get("DataType", value.get("Type")),
                "Value": value.get("StringValue", value.get("Value")),
            }
            for name, value in attributes.items()
        }
    return doc


class NotLoopback(Exception):
    """The endpoint is not on loopback: the sandbox never connects there."""


def loopback_address(rt: runtime.Runtime, url: str) -> tuple[str, int, str]:
    """(host to connect to, port, request target) for an http(s) URL on loopback.

    An address in 127.0.0.0/8 (or ``localhost``) is used as is; a name goes through the sandbox's name map
    (it must map to loopback). Anything else is ``NotLoopback``: the sandbox never connects elsewhere.
    HTTPS is spoken as plain HTTP (the sandbox has no TLS).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotLoopback(f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    if host == "localhost":
        return config.HOST, port, target
    try:
        if ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8"):
            return host, port, target
        raise NotLoopback(f"{host} is not a loopback address: the sandbox connects to 127.0.0.0/8 only")
    except ValueError:
        pass
    local = rt.resolve(host, port)
    if local is None or ipaddress.ip_address(local[0]) not in ipaddress.ip_network("127.0.0.0/8"):
        raise NotLoopback(f"{host}:{port} is not in the sandbox's name map: the sandbox connects to loopback only")
    return local[0], local[1], target

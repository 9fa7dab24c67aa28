"""SNS delivers (sandbox/services/sns/): the confirmation handshake, notifications, the outbox, the webhook receiver.

An HTTP receiver on a loopback port stands for a subscriber's endpoint; each test makes its own topic.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox import cli
from sandbox.config import SandboxConfig
from tests.support import sandbox_control as control


class Receiver:
    """A subscriber's HTTP endpoint: records each POST (path, headers, JSON body) and answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    doc = json.loads(body)
                except ValueError:  # RawMessageDelivery: the message alone
                    doc = {"Type": "raw", "Message": body.decode()}
                receiver.posts.append((self.path, dict(self.headers), doc))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_type(self, kind: str) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        return [post for post in self.posts if post[2]["Type"] == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


@pytest.fixture
def sns(aws: Callable[..., Any]) -> Any:
    return aws("sns", "us-east-1")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def topic(sns: Any) -> str:
    return sns.create_topic(Name=f"t-{uuid.uuid4().hex[:10]}")["TopicArn"]


def listed(sns: Any, topic_arn: str) -> dict[str, str]:
    """Endpoint -> SubscriptionArn as ListSubscriptionsByTopic shows it."""
    return {
        s["Endpoint"]: s["SubscriptionArn"]
        for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    }


def outbox(sandbox: SandboxConfig, topic_arn: str) -> list[dict[str, Any]]:
    return [m for m in control(sandbox, "GET", "sns/outbox")["messages"] if m["topic_arn"] == topic_arn]


def verify_signature(doc: dict[str, Any], fields: tuple[str, ...]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    with urllib.request.urlopen(doc["SigningCertURL"], timeout=5) as response:  # noqa: S310 - loopback
        cert = x509.load_pem_x509_certificate(response.read())
    text = "".join(f"{field}\n{doc[field]}\n" for field in fields if field in doc)
    cert.public_key().verify(  # type: ignore[union-attr, call-arg]
        base64.b64decode(doc["Signature"]),
        text.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),  # type: ignore[arg-type]
    )


def test_http_endpoint_gets_the_confirmation_then_notifications(sandbox, sns, receiver):
    topic_arn = topic(sns)
    endpoint = f"http://127.0.0.1:{receiver.port}/hooks/sns?team=ops"
    assert (
        sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=endpoint)["SubscriptionArn"]
        == "pending confirmation"
    )
    assert listed(sns, topic_arn) == {endpoint: "PendingConfirmation"}

    path, headers, doc = wait_for("the confirmation", lambda: receiver.of_type("SubscriptionConfirmation"))[0]
    assert path == "/hooks/sns?team=ops"
    assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert headers["x-amz-sns-message-id"] == doc["MessageId"]
    assert headers["x-amz-sns-topic-arn"] == topic_arn
    assert headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert headers["User-Agent"] == "Amazon Simple Notification Service Agent"
    assert doc["TopicArn"] == topic_arn and doc["Token"] and doc["SignatureVersion"] == "2"
    assert doc["Message"] == (
        f"You have chosen to subscribe to the topic {topic_arn}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message."
    )
    assert doc["SubscribeURL"].startswith(f"{sandbox.endpoint}/?Action=ConfirmSubscription&TopicArn=")
    assert doc["Timestamp"].endswith("Z")
    verify_signature(doc, ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"))

    with urllib.request.urlopen(doc["SubscribeURL"], timeout=5) as response:  # noqa: S310 - loopback
        answer = response.read().decode()
    arn = listed(sns, topic_arn)[endpoint]
    assert arn.startswith(topic_arn + ":") and f"<SubscriptionArn>{arn}</SubscriptionArn>" in answer
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert attributes["PendingConfirmation"] == "false"

    message_id = sns.publish(TopicArn=topic_arn, Message="disk full", Subject="ALARM: disk")["MessageId"]
    _, headers, note = wait_for("the notification", lambda: receiver.of_type("Notification"))[0]
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-message-id"] == message_id == note["MessageId"]
    assert headers["x-amz-sns-subscription-arn"] == arn
    assert (note["TopicArn"], note["Subject"], note["Message"]) == (topic_arn, "ALARM: disk", "disk full")
    assert note["UnsubscribeURL"].startswith(f"{sandbox.endpoint}/?Action=Unsubscribe&SubscriptionArn=")
    verify_signature(note, ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"))

    records = wait_for(
        "two outbox records", lambda: len(outbox(sandbox, topic_arn)) == 2 and outbox(sandbox, topic_arn)
    )
    assert [(r["type"], r["protocol"], r["delivered"], r["status"]) for r in records] == [
        ("SubscriptionConfirmation", "http", True, 200),
        ("Notification", "http", True, 200),
    ]
    assert records[1]["message_id"] == message_id and records[1]["message"] == "disk full"

    with urllib.request.urlopen(note["UnsubscribeURL"], timeout=5):  # noqa: S310 - loopback
        pass
    assert listed(sns, topic_arn) == {}


def test_confirm_subscription_needs_the_token_and_pending_gets_nothing(sandbox, sns, receiver):
    topic_arn = topic(sns)
    pending = f"http://127.0.0.1:{receiver.port}/pending"
    confirmed = f"http://127.0.0.1:{receiver.port}/confirmed"
    arn = sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=confirmed, ReturnSubscriptionArn=True)[
        "SubscriptionArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=pending)
    assert sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]["PendingConfirmation"] == "true"
    confirmations = wait_for("both confirmations", lambda: len(receiver.of_type("SubscriptionConfirmation")) == 2)
    assert confirmations
    token = next(doc["Token"] for path, _, doc in receiver.posts if path == "/confirmed")

    with pytest.raises(ClientError) as error:
        sns.confirm_subscription(TopicArn=topic_arn, Token="not-the-token")
    assert error.value.response["Error"]["Code"] == "InvalidParameter"
    assert sns.confirm_subscription(TopicArn=topic_arn, Token=token)["SubscriptionArn"] == arn
    assert listed(sns, topic_arn) == {confirmed: arn, pending: "PendingConfirmation"}

    sns.publish(TopicArn=topic_arn, Message="only to the confirmed one")
    wait_for("the notification", lambda: receiver.of_type("Notification"))
    time.sleep(0.3)  # the pending one would have been sent at the same moment
    assert [path for path, _, _ in receiver.of_type("Notification")] == ["/confirmed"]


def test_raw_message_delivery_posts_the_message_alone(sns, receiver):
    topic_arn = topic(sns)
    endpoint = f"http://127.0.0.1:{receiver.port}/raw"
    sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=endpoint, Attributes={"RawMessageDelivery": "true"})
    _, _, doc = wait_for("the confirmation", lambda: receiver.of_type("SubscriptionConfirmation"))[0]
    sns.confirm_subscription(TopicArn=topic_arn, Token=doc["Token"])
    sns.publish(TopicArn=topic_arn, Message="not: {json")
    _, headers, raw = wait_for("the raw message", lambda: receiver.of_type("raw"))[0]
    assert raw["Message"] == "not: {json" and headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-rawdelivery"] == "true"


def test_endpoints_off_loopback_are_never_contacted(sandbox, sns, receiver):
    topic_arn = topic(sns)
    outside = ["http://192.0.2.10:8080/hook", "https://hooks.example.com/aws"]
    for endpoint in outside:
        sns.subscribe(TopicArn=topic_arn, Protocol=endpoint.split(":")[0], Endpoint=endpoint)
    # A name the sandbox's name map sends to loopback is delivered to.
    control(sandbox, "POST", "names", {"name": "hooks.sandbox.test", "port": 80, "local_port": receiver.port})
    sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint="http://hooks.sandbox.test/sns")
    wait_for("the mapped name's confirmation", lambda: receiver.of_type("SubscriptionConfirmation"))

    records = wait_for("three attempts", lambda: len(outbox(sandbox, topic_arn)) == 3 and outbox(sandbox, topic_arn))
    failed = {r["endpoint"]: r for r in records if not r["delivered"]}
    assert sorted(failed) == sorted(outside)
    assert "not a loopback address" in failed[outside[0]]["error"]
    assert "not in the sandbox's name map" in failed[outside[1]]["error"]
    assert all(r["status"] is None and r["attempt"] == 1 for r in failed.values())  # refused, not retried


def test_email_and_sms_land_in_the_outbox(sandbox, sns):
    topic_arn = topic(sns)
    started = control(sandbox, "GET", "sns/outbox")["messages"]
    since = started[-1]["time"] if started else "2000-01-01T00:00:00Z"
    sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint="oncall@example.com")
    sns.subscribe(TopicArn=topic_arn, Protocol="email-json", Endpoint="robot@example.com")
    sns.subscribe(TopicArn=topic_arn, Protocol="sms", Endpoint="+15555550100")
    shown = listed(sns, topic_arn)
    assert shown["oncall@example.com"] == shown["robot@example.com"] == "PendingConfirmation"
    assert shown["+15555550100"].startswith(topic_arn + ":")  # SMS needs no confirmation

    records = outbox(sandbox, topic_arn)
    assert [(r["protocol"], r["type"]) for r in records] == [
        ("email", "SubscriptionConfirmation"),
        ("email-json", "SubscriptionConfirmation"),
    ]
    assert records[0]["subscribe_url"] in records[0]["body"]
    assert json.loads(records[1]["body"])["SubscribeURL"] == records[1]["subscribe_url"]

    sns.publish(TopicArn=topic_arn, Message="before the click")
    assert [(r["protocol"], r["message"]) for r in outbox(sandbox, topic_arn)[2:]] == [("sms", "before the click")]

    clicked = control(sandbox, "POST", "sns/confirm", {"endpoint": "oncall@example.com"})
    assert clicked["confirmed"] == [listed(sns, topic_arn)["oncall@example.com"]]
    with urllib.request.urlopen(records[1]["subscribe_url"], timeout=5):  # noqa: S310 - loopback: the email's link
        pass
    message_id = sns.publish(TopicArn=topic_arn, Message="after the click", Subject="Alarm")["MessageId"]
    latest = {r["protocol"]: r for r in outbox(sandbox, topic_arn)[3:]}
    assert sorted(latest) == ["email", "email-json", "sms"]
    assert all(r["message_id"] == message_id and r["delivered"] and r["status"] is None for r in latest.values())
    assert latest["email"]["body"].startswith("after the click\n") and latest["email"]["subject"] == "Alarm"
    assert json.loads(latest["email-json"]["body"])["Message"] == "after the click"

    direct = sns.publish(PhoneNumber="+15555550199", Message="straight to a phone")["MessageId"]
    mine = control(sandbox, "GET", f"sns/outbox?since={since}")["messages"]
    assert any(r["message_id"] == direct and r["endpoint"] == "+15555550199" for r in mine)
    assert all(r["time"] >= since for r in mine)
    # An offset sent unencoded ("+" arrives as a space) still reads as the offset.
    assert control(sandbox, "GET", "sns/outbox?since=2999-01-01T00:00:00+00:00")["messages"] == []


def test_the_webhook_receiver_confirms_itself_and_records_notifications(sandbox, sns):
    topic_arn = topic(sns)
    name = f"test-{uuid.uuid4().hex[:8]}"
    endpoint = f"{sandbox.endpoint}/_sandbox/webhook?name={name}"
    sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=endpoint)
    wait_for("the receiver to confirm", lambda: listed(sns, topic_arn)[endpoint] != "PendingConfirmation")
    message_id = sns.publish(TopicArn=topic_arn, Message='{"AlarmName": "x"}', Subject="ALARM")["MessageId"]
    received = wait_for(
        "the notification at the receiver",
        lambda: (
            len(control(sandbox, "GET", f"webhook?name={name}")["messages"]) == 2
            and control(sandbox, "GET", f"webhook?name={name}")["messages"]
        ),
    )
    assert [(m["type"], m["confirmation"]) for m in received] == [
        ("SubscriptionConfirmation", "confirmed"),
        ("Notification", None),
    ]
    assert (received[1]["message_id"], received[1]["message"]) == (message_id, '{"AlarmName": "x"}')


def test_bad_input_gets_a_clear_answer(sandbox):
    for path, method, body, expected in (
        ("sns/outbox?since=yesterday", "GET", None, "not an ISO 8601 time"),
        ("webhook", "POST", {"Type": "Notification"}, "name the receiver"),
        ("webhook?name=x", "POST", {"hello": 1}, "not an SNS message"),
        ("sns/confirm", "POST", {"endpoint": "nobody@example.com"}, "is pending confirmation"),
    ):
        with pytest.raises(urllib.error.HTTPError) as error:
            control(sandbox, method, path, body)
        assert expected in json.load(error.value)["error"]


def test_the_cli_prints_the_outbox(sandbox, sns):
    topic_arn = topic(sns)
    sns.subscribe(TopicArn=topic_arn, Protocol="sms", Endpoint="+15555550123")
    message_id = sns.publish(TopicArn=topic_arn, Message="region us-east-1 is down", Subject="ALARM")["MessageId"]
    text = cli.outbox(sandbox, since=None, as_json=False, confirm=None)
    assert f"message {message_id}" in text and "+15555550123  delivered" in text and "region us-east-1 is down" in text
    as_json = json.loads(cli.outbox(sandbox, since="2000-01-01T00:00:00Z", as_json=True, confirm=None))
    assert any(r["message_id"] == message_id for r in as_json["messages"])
    assert cli.outbox(sandbox, since="2999-01-01T00:00:00Z", as_json=False, confirm=None).startswith(
        "the outbox is empty"
    )


def test_a_publish_inside_the_sandbox_is_delivered():
    """CloudWatch's alarm actions call moto's SNSBackend.publish: the same path reaches the engine."""
    from moto.sns.models import sns_backends

    from sandbox import patches
    from sandbox.services.sns import patches as sns_patches
    from sandbox.services.sns import provider

    class Postman:
        def __init__(self) -> None:
            self.sent: list[tuple[str, str, str]] = []

        def request_confirmation(self, subscription: Any, token: str) -> None:
            self.sent.append(("confirm", subscription.endpoint, token))

        def notify(self, subscription: Any, message_id: str, message: str, subject: Any, _attrs: Any) -> None:
            self.sent.append(("notify", subscription.endpoint, message))

        def sms(self, phone: str, message_id: str, message: str) -> None:
            self.sent.append(("sms", phone, message))

    postman = Postman()
    sns_patches.install(None)
    provider._patch_publish(postman)  # type: ignore[arg-type]
    sns_patches.attach(postman)
    try:
        backend = sns_backends["123456789012"]["us-west-2"]
        arn = backend.create_topic(f"inside-{uuid.uuid4().hex[:8]}").arn
        backend.subscribe(arn, "http://127.0.0.1:9/pending", "http")
        confirmed = backend.subscribe(arn, "http://127.0.0.1:9/confirmed", "http")
        token = next(t for kind, endpoint, t in postman.sent if endpoint.endswith("/confirmed"))
        sns_patches.confirm(backend, arn, token, authenticated=True)
        assert confirmed.attributes["PendingConfirmation"] == "false"
        backend.publish('{"NewStateValue": "ALARM"}', arn=arn, subject="ALARM")
        assert ("notify", "http://127.0.0.1:9/confirmed", '{"NewStateValue": "ALARM"}') in postman.sent
        assert not [s for s in postman.sent if s[0] == "notify" and s[1].endswith("/pending")]
    finally:
        sns_patches._SENDERS.remove(postman)
        patches.REGISTRY.undo(owner=provider.__name__)
        patches.REGISTRY.undo(owner=sns_patches.__name__)

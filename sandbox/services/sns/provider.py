"""SNS delivers: the API calls onto the delivery engine (delivery.py), SubscribeURL, and the control routes.

Plain moto records subscriptions and publishes and shows nobody anything (its own HTTP delivery POSTed
synchronously, unsigned, to any address). Here:

- Subscribing an HTTP/HTTPS endpoint POSTs the real SubscriptionConfirmation to it (patches.py keeps the
  subscription ``PendingConfirmation`` until confirmed); email and email-json put the confirmation
  request in the outbox; SMS needs none.
- Every publish to a topic, through the Publish API or moto's ``SNSBackend.publish`` called inside the
  sandbox (CloudWatch's alarm actions), reaches each confirmed subscription whose filter policy matches:
  HTTP/HTTPS get the Notification JSON with AWS's headers, off the request thread; email, email-json and
  SMS land in the outbox. Other protocols (SQS, Lambda) keep moto's behaviour.
- The SubscribeURL and UnsubscribeURL (``/?Action=ConfirmSubscription&TopicArn=...&Token=...`` and
  ``/?Action=Unsubscribe&SubscriptionArn=...`` on the sandbox's port) work unsigned, as AWS's do.

Control routes: ``GET /_sandbox/sns/outbox[?since=ISO]`` (every delivery attempt), ``POST /_sandbox/sns/confirm
{"endpoint": "oncall@example.com"}`` (follow the confirmation link of that address's pending email
subscriptions: the sandbox's "click"), ``GET /_sandbox/sns/signing-cert.pem`` (the certificate of
``SigningCertURL``), and the webhook receiver ``POST|GET /_sandbox/webhook?name=<name>`` (webhook.py).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from sandbox import patches, runtime
from sandbox.services.sns import delivery, messages
from sandbox.services.sns import patches as sns_patches
from sandbox.services.sns.webhook import Webhooks, receiver_name

DELIVERED_HERE = delivery.MAIL_PROTOCOLS | delivery.HTTP_PROTOCOLS
XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"


def _patch_publish(postman: delivery.Postman) -> None:
    """Subscription.publish (every topic publish goes through it) and SNSBackend.publish (SMS to a number)."""
    from moto.sns.models import SNSBackend, Subscription

    original_subscription_publish = Subscription.publish
    original_backend_publish = SNSBackend.publish

    def subscription_publish(
        self: Any,
        message: str,
        message_id: str,
        subject: str | None = None,
        message_attributes: dict[str, Any] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        message_structure: str | None = None,
    ) -> None:
        if self.protocol not in DELIVERED_HERE:
            return original_subscription_publish(
                self, message, message_id, subject, message_attributes, group_id, deduplication_id, message_structure
            )
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(
            message_attributes, message
        ):
            return None
        if message_structure == "json":
            message = self._parse_message_structure(message, self.protocol)
        if sns_patches.is_pending(self):
            return None  # AWS delivers nothing to an unconfirmed subscription
        postman.notify(self, message_id, message, subject, message_attributes)
        return None

    def backend_publish(
        self: Any, message: str, arn: str | None, phone_number: str | None = None, **kwargs: Any
    ) -> str:
        message_id = original_backend_publish(self, message, arn, phone_number, **kwargs)
        if phone_number:
            postman.sms(phone_number, message_id, message)
        return message_id

    patches.patch(Subscription, "publish", subscription_publish, owner=__name__)
    patches.patch(SNSBackend, "publish", backend_publish, owner=__name__)


def _xml(start_response: Any, status: str, body: str) -> list[bytes]:
    payload = f'<?xml version="1.0"?>\n{body}'.encode()
    start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))])
    return [payload]


def _error(start_response: Any, status: str, code: str, message: str) -> list[bytes]:
    return _xml(
        start_response,
        status,
        f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>",
    )


def _backend_for(arn: str) -> Any:
    from moto.sns.models import sns_backends

    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "sns":
        raise ValueError(f"{arn!r} is not an SNS ARN")
    return sns_backends[parts[4]][parts[3]]


def _link(query: dict[str, list[str]], start_response: Any) -> list[bytes]:
    """The SubscribeURL / UnsubscribeURL, answered as AWS answers them (no signature needed)."""
    from moto.core.exceptions import ServiceException

    action = query["Action"][0]
    request_id = uuid.uuid4()
    try:
        if action == "ConfirmSubscription":
            topic_arn = query.get("TopicArn", [""])[0]
            subscription = sns_patches.confirm(
                _backend_for(topic_arn), topic_arn, query.get("Token", [""])[0], authenticated=False
            )
            result = f"<SubscriptionArn>{escape(subscription.arn)}</SubscriptionArn>"
            body = f"<ConfirmSubscriptionResult>{result}</ConfirmSubscriptionResult>"
        else:
            arn = query.get("SubscriptionArn", [""])[0]
            _backend_for(arn).unsubscribe(arn)
            body = ""
    except ValueError as exc:
        return _error(start_response, "400 Bad Request", "InvalidParameter", str(exc))
    except ServiceException as exc:
        status = "404 Not Found" if exc.code in ("NotFound", "ResourceNotFound") else "400 Bad Request"
        return _error(start_response, status, exc.code, exc.message)
    metadata = f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
    return _xml(start_response, "200 OK", f'<{action}Response xmlns="{XMLNS}">{body}{metadata}</{action}Response>')


def _install_links(app: Any) -> None:
    def middleware(inner: Any) -> Any:
        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("PATH_INFO", "/") == "/" and "HTTP_AUTHORIZATION" not in environ:
                query = parse_qs(environ.get("QUERY_STRING", ""))
                if (
                    query.get("Action", [""])[0] in ("ConfirmSubscription", "Unsubscribe")
                    and "X-Amz-Signature" not in query
                ):
                    return _link(query, start_response)
            return inner(environ, start_response)

        return wsgi

    app.wrap(middleware)


def _click(body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
    """Follow the confirmation link of every pending email subscription of an address."""
    from moto.sns.models import sns_backends

    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise runtime.ControlError(
            400, 'name the address whose confirmation to follow: {"endpoint": "oncall@example.com"}'
        )
    confirmed = []
    for account in list(sns_backends.keys()):
        for region in runtime.REGIONS:
            backend = sns_backends[account][region]
            for sub in list(backend.subscriptions.values()):
                if sub.endpoint == endpoint and sub.protocol in ("email", "email-json") and sns_patches.is_pending(sub):
                    token = sns_patches.token_of(sub) or ""
                    confirmed.append(sns_patches.confirm(backend, sub.topic.arn, token, authenticated=False).arn)
    if not confirmed:
        raise runtime.ControlError(
            404,
            f"no email or email-json subscription of {endpoint!r} is pending confirmation (see GET /_sandbox/sns/outbox)",
        )
    return 200, {"endpoint": endpoint, "confirmed": confirmed}


def _install_routes(rt: runtime.Runtime, postman: delivery.Postman, webhooks: Webhooks) -> None:
    def outbox(_body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        since = None
        if query.get("since"):
            try:
                since = delivery.parse_time(query["since"])
            except ValueError as exc:
                raise runtime.ControlError(400, f"since: {exc}") from None
        return 200, {"messages": postman.outbox.records(since)}

    def webhook_post(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        name = receiver_name(query, required=True)
        assert name is not None
        return 200, webhooks.receive(name, body)

    def webhook_get(_body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        return 200, webhooks.received(receiver_name(query, required=False))

    rt.route("GET", "sns/outbox", outbox)
    rt.route("POST", "sns/confirm", _click)
    rt.route("GET", messages.SIGNING_CERT_PATH, lambda _body, _query: (200, postman.signer.cert_pem()))
    rt.route("POST", "webhook", webhook_post)
    rt.route("GET", "webhook", webhook_get)


def install(app: Any) -> None:
    rt = runtime.get()
    postman = delivery.Postman(rt, delivery.Outbox(), messages.Signer())
    webhooks = Webhooks(rt)
    sns_patches.attach(postman)
    _patch_publish(postman)
    _install_links(app)
    _install_routes(rt, postman, webhooks)
    rt.on_reset(postman.reset)
    rt.on_reset(webhooks.reset)

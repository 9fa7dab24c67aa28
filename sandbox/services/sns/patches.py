"""SNS: where the sandbox corrects moto's SNS API (moto fidelity; the deliveries are provider.py).

- ``confirmation``: HTTP, HTTPS, email and email-json subscriptions start ``PendingConfirmation`` with a
  token, and become confirmed only through ConfirmSubscription with that token (or the SubscribeURL,
  which calls the same ``confirm``), as AWS documents. moto confirmed every subscription at once and
  accepted any token.
- ``listing``: Subscribe answers ``pending confirmation`` for such a subscription (unless
  ``ReturnSubscriptionArn``), and ListSubscriptions / ListSubscriptionsByTopic show its SubscriptionArn
  as ``PendingConfirmation``, as AWS does (community.aws.sns_topic relies on that to leave it alone).

The live delivery engine (provider.py) registers itself with ``attach`` to send the confirmation
request when a subscription is made; without it these methods are the AWS fidelity alone.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from sandbox import patches

# AWS asks the endpoint's owner to confirm these protocols; the others (sms, sqs in the same account,
# lambda, application, firehose) are confirmed at once.
CONFIRMED_BY_OWNER = frozenset({"http", "https", "email", "email-json"})

PENDING_ARN = "PendingConfirmation"  # ListSubscriptions(ByTopic)'s SubscriptionArn while pending
PENDING_ANSWER = "pending confirmation"  # Subscribe's SubscriptionArn while pending


class ConfirmationSender(Protocol):
    """What the live engine does when a subscription needs its owner's confirmation."""

    def request_confirmation(self, subscription: Any, token: str) -> None: ...


_SENDERS: list[ConfirmationSender] = []


def attach(sender: ConfirmationSender) -> None:
    _SENDERS.append(sender)


def is_pending(subscription: Any) -> bool:
    return str(subscription.attributes.get("PendingConfirmation", "false")).lower() == "true"


def token_of(subscription: Any) -> str | None:
    return getattr(subscription, "sandbox_confirmation_token", None)


def confirm(backend: Any, topic_arn: str, token: str, *, authenticated: bool) -> Any:
    """Confirm the subscription to topic_arn that token was issued for, and return it.

    ``InvalidParameter`` (as AWS: "Invalid token") when no subscription of that topic holds the token; a
    confirmed subscription answers its ARN again (AWS accepts a token for its three days).
    """
    from moto.sns.exceptions import SNSInvalidParameter

    backend.get_topic(topic_arn)  # NotFound, as AWS, for an unknown topic
    for subscription in list(backend.subscriptions.values()):
        if subscription.topic.arn == topic_arn and token and token_of(subscription) == token:
            if is_pending(subscription):
                subscription.attributes["PendingConfirmation"] = "false"
                subscription.attributes["ConfirmationWasAuthenticated"] = "true" if authenticated else "false"
                subscription.confirmed = True
            return subscription
    raise SNSInvalidParameter("Invalid token")


# == confirmation: subscriptions that need their owner's word start PendingConfirmation.


def _patch_subscribe() -> None:
    from moto.sns.models import SNSBackend

    original_subscribe = SNSBackend.subscribe

    def subscribe(self: Any, topic_arn: str, endpoint: str, protocol: str) -> Any:
        existing = self._find_subscription(topic_arn, endpoint, protocol)
        subscription = original_subscribe(self, topic_arn, endpoint, protocol)
        if protocol not in CONFIRMED_BY_OWNER:
            return subscription
        if existing is None:
            subscription.attributes["PendingConfirmation"] = "true"
            subscription.attributes["ConfirmationWasAuthenticated"] = "false"
            subscription.confirmed = False
            subscription.sandbox_confirmation_token = secrets.token_hex(64)
        if is_pending(subscription):
            # Subscribing again while pending sends the confirmation request again, as AWS does.
            for sender in _SENDERS:
                sender.request_confirmation(subscription, token_of(subscription) or "")
        return subscription

    patches.patch(SNSBackend, "subscribe", subscribe, owner=__name__)


def _patch_confirm_subscription() -> None:
    from moto.core.responses import ActionResult
    from moto.sns.responses import SNSResponse

    def confirm_subscription(self: Any) -> Any:
        # AuthenticateOnUnsubscribe=true is what an authenticated (signed) confirmation asks for.
        subscription = confirm(
            self.backend, self._get_param("TopicArn"), self._get_param("Token") or "", authenticated=True
        )
        return ActionResult({"SubscriptionArn": subscription.arn})

    patches.patch(SNSResponse, "confirm_subscription", confirm_subscription, owner=__name__)


# == listing: a pending subscription shows as pending.


def _listed(subscription: Any) -> dict[str, Any]:
    return {
        "SubscriptionArn": PENDING_ARN if is_pending(subscription) else subscription.arn,
        "Owner": subscription.owner,
        "Protocol": subscription.protocol,
        "Endpoint": subscription.endpoint,
        "TopicArn": subscription.topic.arn,
    }


def _patch_listing() -> None:
    from moto.core.responses import ActionResult
    from moto.sns.responses import SNSResponse

    original_subscribe = SNSResponse.subscribe

    def subscribe(self: Any) -> Any:
        result = original_subscribe(self)
        arn = result.result["SubscriptionArn"]
        subscription = self.backend.subscriptions.get(arn)
        wants_arn = str(self._get_param("ReturnSubscriptionArn") or "false").lower() == "true"
        if subscription is not None and is_pending(subscription) and not wants_arn:
            return ActionResult({"SubscriptionArn": PENDING_ANSWER})
        return result

    def list_subscriptions(self: Any) -> Any:
        subscriptions, next_token = self.backend.list_subscriptions(next_token=self._get_param("NextToken"))
        return ActionResult({"Subscriptions": [_listed(s) for s in subscriptions], "NextToken": next_token})

    def list_subscriptions_by_topic(self: Any) -> Any:
        subscriptions, next_token = self.backend.list_subscriptions_by_topic(
            self._get_param("TopicArn"), next_token=self._get_param("NextToken")
        )
        return ActionResult({"Subscriptions": [_listed(s) for s in subscriptions], "NextToken": next_token})

    patches.patch(SNSResponse, "subscribe", subscribe, owner=__name__)
    patches.patch(SNSResponse, "list_subscriptions", list_subscriptions, owner=__name__)
    patches.patch(SNSResponse, "list_subscriptions_by_topic", list_subscriptions_by_topic, owner=__name__)


def install(_app: Any) -> None:
    _patch_subscribe()
    _patch_confirm_subscription()
    _patch_listing()

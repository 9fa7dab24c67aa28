"""sandbox/services/kms/policy.py: a key policy decides what an AWS service principal may do with the key."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from sandbox.services.kms import policy

SERVICE = "cloudwatch.amazonaws.com"
ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


def key(*statements: dict[str, Any], state: str = "Enabled") -> Any:
    return SimpleNamespace(key_state=state, policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def allow(**extra: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Service": SERVICE},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
    } | extra


ROOT = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}


def test_the_account_statement_alone_does_not_let_a_service_in() -> None:
    # moto's default policy, and in effect the AWS managed alias/aws/sns key's for CloudWatch.
    assert not policy.service_may_use(key(ROOT), SERVICE, ACTIONS, {})


def test_a_statement_for_the_service_with_every_action_lets_it_in() -> None:
    assert policy.service_may_use(key(ROOT, allow()), SERVICE, ACTIONS, {})
    assert not policy.service_may_use(key(ROOT, allow(Action="kms:Decrypt")), SERVICE, ACTIONS, {})
    assert not policy.service_may_use(key(ROOT, allow()), "logs.us-east-1.amazonaws.com", ACTIONS, {})


def test_disabled_or_missing_keys_and_explicit_denies_refuse() -> None:
    assert not policy.service_may_use(key(ROOT, allow(), state="Disabled"), SERVICE, ACTIONS, {})
    assert not policy.service_may_use(key(ROOT, allow(), state="PendingDeletion"), SERVICE, ACTIONS, {})
    assert not policy.service_may_use(None, SERVICE, ACTIONS, {})
    deny = {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt"}
    assert not policy.service_may_use(key(ROOT, allow(), deny), SERVICE, ACTIONS, {})


def test_conditions_match_the_context_and_fail_on_a_missing_key() -> None:
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web"
    scoped = allow(
        Condition={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:*:log-group:/ecs/*"}}
    )
    context = {"kms:EncryptionContext:aws:logs:arn": arn}
    assert policy.service_may_use(key(scoped), SERVICE, ACTIONS, context)
    assert not policy.service_may_use(
        key(scoped),
        SERVICE,
        ACTIONS,
        {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:1:log-group:/vpc/flow"},
    )
    assert not policy.service_may_use(key(scoped), SERVICE, ACTIONS, {})
    if_exists = allow(Condition={"StringEqualsIfExists": {"aws:SourceAccount": "123456789012"}})
    assert policy.service_may_use(key(if_exists), SERVICE, ACTIONS, {})
    assert not policy.service_may_use(key(if_exists), SERVICE, ACTIONS, {"aws:SourceAccount": "999999999999"})
    unknown = allow(Condition={"NumericLessThan": {"kms:RecipientAttestation": "1"}})
    assert not policy.service_may_use(key(unknown), SERVICE, ACTIONS, {})

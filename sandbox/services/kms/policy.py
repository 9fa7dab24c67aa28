"""Whether a KMS key lets an AWS service use it: the key policy check services make before using a key.

AWS services that encrypt with a customer managed key act as their service principal
(``logs.<region>.amazonaws.com`` for CloudWatch Logs, ``cloudwatch.amazonaws.com`` for an alarm
publishing to an encrypted SNS topic), and KMS grants them only what the key policy grants: an IAM
policy in the account cannot. CloudWatch Logs refuses CreateLogGroup / AssociateKmsKey with
``AccessDeniedException`` ("The specified KMS key does not exist or is not allowed to be used with
Arn ...") when the key is missing, not enabled, or its policy does not allow the logs principal for
that log group; an alarm's SNS action fails (``AccessDeniedException`` from AWSKMS in the alarm
history) when the topic's key does not allow ``cloudwatch.amazonaws.com``, which is always so for
the AWS managed ``alias/aws/sns`` key: its policy allows only callers through SNS, and it cannot be
changed.

``service_may_use`` evaluates the key policy as IAM does for the statements these services meet: an
explicit Deny wins, then an Allow whose Principal, Action and Condition all match; nothing matching is
a denial. Conditions support the String*, Arn* and Bool operators (with ``...IfExists``) over the keys
the caller passes in ``context``; a condition on a key absent from the context fails, as in IAM, and so
does an operator this module does not know, so that an unusual policy is refused rather than waved
through.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from typing import Any


def find_key(account: str, region: str, key_id: str) -> Any | None:
    """The key named by key_id (key id, key ARN, alias name or alias ARN) in that account and region, or None.

    A key ARN or alias ARN of another region or account is not this region's key: None, as the service
    would find nothing.
    """
    from moto.kms.models import kms_backends

    if key_id.startswith("arn:"):
        parts = key_id.split(":")
        if len(parts) < 6 or parts[3] != region or parts[4] != account:
            return None
    backend = kms_backends[account][region]
    try:
        raw = backend.any_id_to_key_id(key_id)
    except (KeyError, TypeError, AttributeError):
        return None
    return backend.keys.get(raw) if raw else None


def service_may_use(key: Any, service: str, actions: Iterable[str], context: Mapping[str, str]) -> bool:
    """Whether key is enabled and its policy allows the service principal every one of actions."""
    if key is None or getattr(key, "key_state", "Enabled") != "Enabled":
        return False
    try:
        document = json.loads(key.policy)
    except (TypeError, ValueError):
        return False
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return all(_decision(statements, service, action, context) for action in actions)


def _decision(statements: list[dict[str, Any]], service: str, action: str, context: Mapping[str, str]) -> bool:
    matching = [s for s in statements if _applies(s, service, action, context)]
    if any(s.get("Effect") == "Deny" for s in matching):
        return False
    return any(s.get("Effect") == "Allow" for s in matching)


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _applies(statement: dict[str, Any], service: str, action: str, context: Mapping[str, str]) -> bool:
    if "NotAction" in statement or "NotPrincipal" in statement:
        return False  # not used by the project's key policies; refused rather than guessed
    principal = statement.get("Principal")
    if principal != "*":
        if not isinstance(principal, dict):
            return False
        if service not in _listed(principal.get("Service")) and "*" not in _listed(principal.get("AWS")):
            return False
    if not any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in _listed(statement.get("Action"))):
        return False
    return _conditions_hold(statement.get("Condition") or {}, context)


_STRING_OPERATORS = {
    "StringEquals": lambda actual, wanted: actual == wanted,
    "StringNotEquals": lambda actual, wanted: actual != wanted,
    "StringEqualsIgnoreCase": lambda actual, wanted: actual.lower() == wanted.lower(),
    "StringLike": lambda actual, wanted: fnmatch.fnmatchcase(actual, wanted),
    "StringNotLike": lambda actual, wanted: not fnmatch.fnmatchcase(actual, wanted),
    "ArnEquals": lambda actual, wanted: fnmatch.fnmatchcase(actual, wanted),
    "ArnLike": lambda actual, wanted: fnmatch.fnmatchcase(actual, wanted),
    "ArnNotEquals": lambda actual, wanted: not fnmatch.fnmatchcase(actual, wanted),
    "ArnNotLike": lambda actual, wanted: not fnmatch.fnmatchcase(actual, wanted),
    "Bool": lambda actual, wanted: actual.lower() == wanted.lower(),
}


def _conditions_hold(conditions: dict[str, Any], context: Mapping[str, str]) -> bool:
    by_key = {k.lower(): v for k, v in context.items()}
    for operator, clauses in conditions.items():
        if_exists = operator.endswith("IfExists")
        test = _STRING_OPERATORS.get(operator.removesuffix("IfExists"))
        if test is None or not isinstance(clauses, dict):
            return False
        negated = "Not" in operator
        for key, wanted in clauses.items():
            actual = by_key.get(key.lower())
            if actual is None:
                if if_exists:
                    continue
                return False
            values = _listed(wanted)
            # A list of values: any may match; for a negated operator none may.
            held = all(test(actual, v) for v in values) if negated else any(test(actual, v) for v in values)
            if not held:
                return False
    return True

"""plugins/modules/cloudwatchlogs_resource_policy.py: its helpers against a fake CloudWatch Logs (unit)."""

from __future__ import annotations

import json
from typing import Any

from tests.support import REPO_ROOT, load_module_file

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "cloudwatchlogs_resource_policy.py")

DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "route53.amazonaws.com"}, "Action": "logs:PutLogEvents"}
    ],
}


class FakeLogs:
    """Just enough of CloudWatch Logs' resource policies (one per page), recording every write."""

    def __init__(self, policies: dict[str, str] | None = None) -> None:
        self.policies = dict(policies or {})
        self.writes: list[tuple[str, str]] = []

    def describe_resource_policies(self, aws_retry: bool, nextToken: str | None = None) -> dict[str, Any]:
        names = sorted(self.policies)
        index = int(nextToken or 0)
        page = [{"policyName": n, "policyDocument": self.policies[n]} for n in names[index : index + 1]]
        return {"resourcePolicies": page, **({"nextToken": str(index + 1)} if index + 1 < len(names) else {})}

    def put_resource_policy(self, aws_retry: bool, policyName: str, policyDocument: str) -> None:
        self.writes.append(("put", policyName))
        self.policies[policyName] = policyDocument

    def delete_resource_policy(self, aws_retry: bool, policyName: str) -> None:
        self.writes.append(("delete", policyName))
        del self.policies[policyName]


def test_puts_a_new_policy_found_on_a_later_page_next_time() -> None:
    logs = FakeLogs({"a-other": "{}"})
    assert mod.ensure_policy(logs, "z-mine", "present", DOCUMENT, check_mode=False)["changed"] is True
    assert logs.writes == [("put", "z-mine")]
    assert mod.ensure_policy(logs, "z-mine", "present", DOCUMENT, check_mode=False)["changed"] is False


def test_the_same_document_in_other_key_order_and_spacing_is_unchanged() -> None:
    stored = json.dumps({"Statement": DOCUMENT["Statement"], "Version": "2012-10-17"}, indent=4)
    logs = FakeLogs({"mine": stored})
    result = mod.ensure_policy(logs, "mine", "present", DOCUMENT, check_mode=False)
    assert result["changed"] is False and logs.writes == []


def test_a_changed_document_is_put_again() -> None:
    logs = FakeLogs({"mine": json.dumps(dict(DOCUMENT, Version="2008-10-17"))})
    result = mod.ensure_policy(logs, "mine", "present", DOCUMENT, check_mode=False)
    assert result["changed"] is True and result["previous"]["Version"] == "2008-10-17"
    assert json.loads(logs.policies["mine"]) == DOCUMENT


def test_check_mode_reports_without_writing() -> None:
    logs = FakeLogs({"mine": "{}"})
    assert mod.ensure_policy(logs, "mine", "present", DOCUMENT, check_mode=True)["changed"] is True
    assert mod.ensure_policy(logs, "mine", "absent", None, check_mode=True)["changed"] is True
    assert logs.writes == []


def test_absent_deletes_and_is_then_unchanged() -> None:
    logs = FakeLogs({"mine": json.dumps(DOCUMENT), "other": "{}"})
    assert mod.ensure_policy(logs, "mine", "absent", None, check_mode=False)["changed"] is True
    assert logs.writes == [("delete", "mine")] and "other" in logs.policies
    assert mod.ensure_policy(logs, "mine", "absent", None, check_mode=False)["changed"] is False

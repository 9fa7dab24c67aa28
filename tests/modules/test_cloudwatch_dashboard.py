"""plugins/modules/cloudwatch_dashboard.py: pure helpers (unit) and the module on the sandbox (integration)."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import REPO_ROOT, run_playbook

_spec = importlib.util.spec_from_file_location(
    "cloudwatch_dashboard", REPO_ROOT / "plugins" / "modules" / "cloudwatch_dashboard.py"
)
assert _spec and _spec.loader
mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mod)

TARGET = Path("tests/modules/targets/cloudwatch_dashboard.yml")
GRAPH = {
    "type": "metric",
    "x": 0,
    "y": 0,
    "width": 12,
    "height": 6,
    "properties": {"region": "us-east-1", "metrics": [["AWS/ECS", "CPUUtilization", "ClusterName", "c"]]},
}
BODY = {"widgets": [GRAPH]}


# --- unit: names and bodies -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "hawa-sandbox-us-east-1", "A_b-9", "x" * 255])
def test_valid_names(name: str) -> None:
    mod.validate_name(name)


@pytest.mark.parametrize("name", ["", "with space", "dotted.name", "slash/name", "x" * 256, None])
def test_invalid_names_name_the_rule(name: str | None) -> None:
    with pytest.raises(mod.DashboardError, match="letters, digits, '-' or '_'"):
        mod.validate_name(name)


def test_body_from_dict_or_text_is_the_same() -> None:
    assert mod.parse_body(BODY) == BODY
    assert mod.parse_body(json.dumps(BODY, indent=4)) == BODY


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{widgets: oops", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ({"rows": []}, "no 'widgets' list"),
        ({"widgets": {"type": "metric"}}, "no 'widgets' list"),
        ({"widgets": [GRAPH, {"x": 1}]}, r"widgets\[1\]"),
        ({"widgets": ["metric"]}, r"widgets\[0\]"),
    ],
)
def test_invalid_bodies_name_the_fix(body: Any, message: str) -> None:
    with pytest.raises(mod.DashboardError, match=message):
        mod.parse_body(body)


def test_serialized_body_is_compact_and_keeps_the_callers_order() -> None:
    body = {"widgets": [{"type": "text", "x": 0, "properties": {"markdown": "hi"}}], "start": "-PT3H"}
    text = mod.serialize_body(body)
    assert text == '{"widgets":[{"type":"text","x":0,"properties":{"markdown":"hi"}}],"start":"-PT3H"}'
    assert json.loads(text) == body


def test_equality_ignores_order_whitespace_and_int_versus_float() -> None:
    reordered = json.loads(
        '{"widgets": [{"properties": {"metrics": [["AWS/ECS", "CPUUtilization", "ClusterName", "c"]],'
        ' "region": "us-east-1"}, "height": 6.0, "width": 12, "y": 0, "x": 0, "type": "metric"}]}'
    )
    assert mod.bodies_equal(reordered, BODY)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["widgets"][0].update(width=24),
        lambda b: b["widgets"][0]["properties"]["metrics"][0].__setitem__(3, "other"),
        lambda b: b["widgets"].append({"type": "text", "properties": {"markdown": "x"}}),
        lambda b: b["widgets"].reverse() or b["widgets"].insert(0, {"type": "text"}),
        lambda b: b.update(periodOverride="inherit"),
    ],
)
def test_every_difference_counts(change: Callable[[dict[str, Any]], None]) -> None:
    live = json.loads(json.dumps(BODY))
    change(live)
    assert not mod.bodies_equal(live, BODY)


@pytest.mark.parametrize(
    ("state", "current", "wanted", "expected"),
    [
        ("present", None, BODY, "create"),
        ("present", BODY, BODY, None),
        ("present", {"widgets": []}, BODY, "update"),
        ("absent", BODY, None, "delete"),
        ("absent", None, None, None),
    ],
)
def test_plan(state: str, current: Any, wanted: Any, expected: str | None) -> None:
    assert mod.plan(state, current, wanted) == expected


def test_render_for_diff_is_stable() -> None:
    assert mod.render_for_diff(None) == ""
    assert mod.render_for_diff({"b": 1, "a": 2}) == mod.render_for_diff({"a": 2, "b": 1})


def test_validation_failure_detail_lists_the_messages() -> None:
    error = ClientError(
        {
            "Error": {"Code": "InvalidParameterInput", "Message": "bad"},
            "DashboardValidationMessages": [{"DataPath": "/widgets/0", "Message": "Should have 'type'"}],
        },
        "PutDashboard",
    )
    assert mod.validation_failure_detail(error) == "/widgets/0: Should have 'type'"
    assert mod.validation_failure_detail(ClientError({"Error": {"Code": "X"}}, "PutDashboard")) == ""


# --- unit: the module's flow with a fake client (no writer is called in check mode) ----------------


class FakeClient:
    def __init__(self, stored: dict[str, str] | None = None) -> None:
        self.stored = dict(stored or {})
        self.writes: list[str] = []

    def get_dashboard(self, DashboardName: str, aws_retry: bool = False) -> dict[str, Any]:
        if DashboardName not in self.stored:
            raise ClientError({"Error": {"Code": "ResourceNotFound", "Message": "no"}}, "GetDashboard")
        return {
            "DashboardName": DashboardName,
            "DashboardArn": f"arn:aws:cloudwatch::123456789012:dashboard/{DashboardName}",
            "DashboardBody": self.stored[DashboardName],
        }

    def put_dashboard(self, DashboardName: str, DashboardBody: str, aws_retry: bool = False) -> dict[str, Any]:
        self.writes.append(f"put {DashboardName}")
        self.stored[DashboardName] = DashboardBody
        return {"DashboardValidationMessages": [{"DataPath": "/widgets/0", "Message": "remark"}]}

    def delete_dashboards(self, DashboardNames: list[str], aws_retry: bool = False) -> dict[str, Any]:
        self.writes.append(f"delete {DashboardNames}")
        for name in DashboardNames:
            if name not in self.stored:
                raise ClientError({"Error": {"Code": "ResourceNotFound", "Message": "no"}}, "DeleteDashboards")
            del self.stored[name]
        return {}


class FakeModule:
    def __init__(self, check_mode: bool, **params: Any) -> None:
        self.params = {"name": "d1", "state": "present", "body": None, **params}
        self.check_mode = check_mode
        self._diff = True
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@pytest.mark.parametrize(
    ("stored", "params"),
    [
        ({}, {"body": json.dumps(BODY)}),
        ({"d1": json.dumps({"widgets": []})}, {"body": json.dumps(BODY)}),
        ({"d1": json.dumps(BODY)}, {"state": "absent"}),
    ],
)
def test_check_mode_reports_the_change_and_writes_nothing(stored: dict[str, str], params: dict[str, Any]) -> None:
    client = FakeClient(stored)
    result = mod.ensure(FakeModule(True, **params), client)
    assert result["changed"] is True
    assert client.writes == []
    assert client.stored == stored


def test_create_writes_once_and_reports_remarks_as_warnings() -> None:
    client = FakeClient()
    module = FakeModule(False, body=json.dumps(BODY))
    result = mod.ensure(module, client)
    assert client.writes == ["put d1"]
    assert result["changed"] and result["dashboard_body"] == BODY
    assert result["dashboard_arn"].endswith(":dashboard/d1")
    assert result["validation_messages"] == [{"data_path": "/widgets/0", "message": "remark"}]
    assert module.warnings and "remark" in module.warnings[0]
    again = mod.ensure(FakeModule(False, body=json.dumps(BODY, indent=2)), client)
    assert again["changed"] is False and client.writes == ["put d1"]
    assert again["diff"]["before"] == again["diff"]["after"]


def test_delete_of_a_missing_dashboard_is_not_a_change() -> None:
    client = FakeClient()
    result = mod.ensure(FakeModule(False, state="absent"), client)
    assert result["changed"] is False and client.writes == []


def test_delete_racing_another_delete_is_not_a_change() -> None:
    client = FakeClient({"d1": json.dumps(BODY)})
    assert mod.delete_dashboard(client, "gone-meanwhile") is False
    assert mod.delete_dashboard(client, "d1") is True


# --- integration: the module on the sandbox -------------------------------------------------------


def test_module_create_modify_delete(sandbox: Any, aws: Callable[..., Any]) -> None:
    name = f"cwd-{uuid.uuid4().hex[:10]}"
    run = run_playbook(TARGET, sandbox_port=sandbox.port, extra_vars={"cwd_name": name}, args=[])
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    # Exactly these report changed: each check-mode run that would act, each real change, the clean-up.
    changed = sorted(t.split(": ", 1)[1] for t in run.changed_tasks())
    assert changed == sorted(
        [
            "Create (check mode)",
            "Create in check mode again still sees no dashboard",
            "Create",
            "Modify (check mode)",
            "Modify again in check mode sees the unmodified dashboard still live",
            "Modify",
            "Delete (check mode)",
            "Delete in check mode again still sees the dashboard",
            "Delete",
        ]
    ), changed
    entries = aws("cloudwatch").list_dashboards(DashboardNamePrefix=name)["DashboardEntries"]
    assert entries == [], "the target left its dashboard behind"


def test_module_leaves_an_equivalent_dashboard_written_elsewhere_alone(
    sandbox: Any, aws: Callable[..., Any], tmp_path: Path
) -> None:
    """A body stored by another tool (pretty-printed, keys sorted) is not rewritten."""
    name = f"cwd-{uuid.uuid4().hex[:10]}"
    stored_text = json.dumps(BODY, indent=2, sort_keys=True)
    cloudwatch = aws("cloudwatch")
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=stored_text)
    playbook = tmp_path / "equivalent.yml"
    play = {
        "name": "Equivalent body",
        "hosts": "us-east-1",
        "gather_facts": False,
        "environment": "{{ aws_environment }}",
        "tasks": [
            {
                "name": "Put the same dashboard",
                "hawa.platform.cloudwatch_dashboard": {"region": "us-east-1", "name": name, "body": BODY},
            }
        ],
    }
    playbook.write_text(json.dumps([play]))
    try:
        run = run_playbook(playbook, sandbox_port=sandbox.port, extra_vars={}, args=[])
        assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
        assert run.changed == 0, run.changed_tasks()
        assert cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"] == stored_text
    finally:
        cloudwatch.delete_dashboards(DashboardNames=[name])

"""ec2_vpc_flow_log: unit tests of its decisions, and the create/modify/delete matrix on the sandbox."""

from __future__ import annotations

import uuid

import pytest

from tests.support import REPO_ROOT, load_module_file, run_playbook

TARGET = "tests/modules/targets/ec2_vpc_flow_log.yml"


def _module():
    return load_module_file(REPO_ROOT / "plugins" / "modules" / "ec2_vpc_flow_log.py")


def test_replacement_needed_only_for_a_different_role_or_interval():
    mod = _module()
    current = {"DeliverLogsPermissionArn": "arn:aws:iam::1:role/a", "MaxAggregationInterval": 600}
    assert not mod.needs_replacement(current, "arn:aws:iam::1:role/a", 600)
    assert mod.needs_replacement(current, "arn:aws:iam::1:role/b", 600)
    assert mod.needs_replacement(current, "arn:aws:iam::1:role/a", 60)
    # An emulator or older API that omits the interval does not force a replacement.
    assert not mod.needs_replacement({"DeliverLogsPermissionArn": "arn:aws:iam::1:role/a"}, "arn:aws:iam::1:role/a", 60)


def test_find_flow_log_asks_the_api_for_the_traffic_type() -> None:
    mod = _module()

    class Client:
        def describe_flow_logs(self, aws_retry: bool, Filter: list) -> dict:
            assert aws_retry
            assert {"Name": "resource-id", "Values": ["vpc-1"]} in Filter
            assert {"Name": "log-group-name", "Values": ["/g"]} in Filter
            wanted = next(f["Values"][0] for f in Filter if f["Name"] == "traffic-type")
            found = [{"FlowLogId": "fl-rej", "TrafficType": "REJECT"}, {"FlowLogId": "fl-all", "TrafficType": "ALL"}]
            return {"FlowLogs": [f for f in found if f["TrafficType"] == wanted]}

    assert mod.find_flow_log(Client(), "vpc-1", "/g", "ALL")["FlowLogId"] == "fl-all"
    assert mod.find_flow_log(Client(), "vpc-1", "/g", "ACCEPT") is None


def test_delete_reads_the_unsuccessful_ids_of_a_successful_call() -> None:
    mod = _module()

    class Client:
        def __init__(self, unsuccessful: list) -> None:
            self.unsuccessful = unsuccessful

        def delete_flow_logs(self, FlowLogIds: list) -> dict:
            return {"Unsuccessful": [dict(item, ResourceId=FlowLogIds[0]) for item in self.unsuccessful]}

    assert mod.delete_flow_log(Client([]), "fl-1") is True
    gone = {"Error": {"Code": "InvalidFlowLogId.NotFound", "Message": "This flow log does not exist"}}
    assert mod.delete_flow_log(Client([gone]), "fl-1") is False
    denied = {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}
    with pytest.raises(mod.FlowLogError, match="AccessDenied: not allowed"):
        mod.delete_flow_log(Client([denied]), "fl-1")


def test_delete_of_a_flow_log_gone_meanwhile_is_no_change_whatever_the_error_shape(sandbox, aws) -> None:
    """The sandbox (moto) answers an unknown id with the call's own InvalidFlowLogId.NotFound error."""
    mod = _module()
    assert mod.delete_flow_log(aws("ec2", "us-east-1"), "fl-0123456789abcdef0") is False


def test_module_create_modify_delete(sandbox, aws):
    prefix = f"flt-{uuid.uuid4().hex[:8]}"
    run = run_playbook(TARGET, sandbox_port=sandbox.port, extra_vars={"flow_log_prefix": prefix})
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    changed = sorted(task.split(": ", 1)[1] for task in run.changed_tasks())
    assert changed == sorted(
        [
            "Create a VPC to log",
            "Create (check mode)",
            "Create",
            "Modify tags (check mode)",
            "Modify tags",
            "Delete (check mode)",
            "Delete",
            "Remove the VPC",
        ]
    ), changed
    assert (
        aws("ec2").describe_flow_logs(Filter=[{"Name": "log-group-name", "Values": [f"/vpc/{prefix}/flow-logs"]}])[
            "FlowLogs"
        ]
        == []
    )

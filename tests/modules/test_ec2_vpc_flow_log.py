"""ec2_vpc_flow_log: unit tests of its decisions, and the create/modify/delete matrix on the sandbox."""

from __future__ import annotations

import uuid

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


def test_find_flow_log_matches_the_traffic_type():
    mod = _module()

    class Client:
        def describe_flow_logs(self, Filter):
            assert {"Name": "resource-id", "Values": ["vpc-1"]} in Filter
            return {
                "FlowLogs": [
                    {"FlowLogId": "fl-rej", "TrafficType": "REJECT"},
                    {"FlowLogId": "fl-all", "TrafficType": "ALL"},
                ]
            }

    assert mod.find_flow_log(Client(), "vpc-1", "/g", "ALL")["FlowLogId"] == "fl-all"
    assert mod.find_flow_log(Client(), "vpc-1", "/g", "ACCEPT") is None


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

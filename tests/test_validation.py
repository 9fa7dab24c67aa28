"""A bad inventory stops site.yml before anything changes, with a message naming the variable and the fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.support import REPO_ROOT, run_playbook

PROJECT = "badinv"  # its own name prefix, so "nothing applied" can be checked among other tests' resources


def _inventory(tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    root = tmp_path / "inventory"
    shutil.copytree(REPO_ROOT / "inventories" / "sandbox", root)
    project = root / "group_vars" / "all" / "project.yml"
    doc = yaml.safe_load(project.read_text())
    doc["project_name"] = PROJECT
    project.write_text(yaml.safe_dump(doc))
    edit(root)
    return root / "hosts.yml"


def _set(root: Path, relative: str, **values: object) -> None:
    path = root / relative
    doc = yaml.safe_load(path.read_text()) or {}
    doc.update(values)
    path.write_text(yaml.safe_dump(doc))


def _write(root: Path, relative: str, text: str) -> None:
    (root / relative).write_text(text)


CASES = {
    "one region twice": (
        lambda root: _set(root, "host_vars/us-west-2.yml", aws_region="us-east-1"),
        "in two different AWS regions",
    ),
    "no primary": (
        lambda root: _set(root, "host_vars/us-east-1.yml", region_role="secondary"),
        "one with region_role=primary",
    ),
    "overlapping CIDRs": (
        lambda root: _set(root, "host_vars/us-west-2.yml", region_vpc_cidr="10.10.128.0/17"),
        "region_vpc_cidr overlaps",
    ),
    "string where a boolean belongs": (
        # Quoted on purpose: the classic mistake is "false" (a non-empty, truthy string).
        lambda root: _write(
            root,
            "group_vars/all/networking.yml",
            'region_nat_gateway_mode: per_az\nregion_flow_logs_enabled: "false"\n',
        ),
        "'region_flow_logs_enabled' is \"false\" (str), not a boolean",
    ),
    "missing variable": (
        lambda root: _write(root, "group_vars/all/networking.yml", "region_flow_logs_enabled: true\n"),
        "variable 'region_nat_gateway_mode' is not defined",
    ),
    "bad role name": (
        lambda root: _set(root, "host_vars/us-west-2.yml", region_role="standby"),
        "must be primary or secondary",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_inventory_is_refused_before_anything_changes(case, tmp_path, sandbox, aws):
    edit, expected = CASES[case]
    inventory = _inventory(tmp_path, edit)
    run = run_playbook("site.yml", sandbox_port=sandbox.port, inventory=inventory)
    messages = "\n".join(run.failure_messages())
    assert run.returncode != 0, f"{case}: site.yml succeeded on a bad inventory"
    assert expected in messages, f"{case}: expected {expected!r} in the failure:\n{messages}"
    assert run.changed == 0
    for region in ("us-east-1", "us-west-2"):
        vpcs = aws("ec2", region).describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{PROJECT}-*"]}])["Vpcs"]
        assert vpcs == [], f"{case}: a VPC was created in {region} despite the bad inventory"


def test_unreachable_endpoint_names_the_fix(tmp_path):
    inventory = _inventory(tmp_path, lambda root: None)
    # Nothing listens on port 9 (discard) on loopback.
    run = run_playbook("site.yml", sandbox_port=9, inventory=inventory, timeout=300)
    assert run.returncode != 0
    assert "make sandbox-up" in run.stdout + run.stderr

"""Every role documents exactly its defaults, opens with preflight checks and supports state absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support import REPO_ROOT

ROLES = sorted(p.name for p in (REPO_ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
AREA_ROLES = ["networking", "storage", "database", "compute", "monitoring", "dns", "cdn"]


def _yaml(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def test_every_area_of_the_design_has_a_role():
    assert set(AREA_ROLES) <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_cover_exactly_the_defaults(role):
    root = REPO_ROOT / "roles" / role
    defaults = set(_yaml(root / "defaults" / "main.yml"))
    specs = _yaml(root / "meta" / "argument_specs.yml")["argument_specs"]
    documented = set(specs["main"]["options"])
    assert defaults - documented == set(), f"{role}: defaults without a spec"
    assert documented - defaults == set(), f"{role}: specs without a default"
    for name in defaults:
        assert all(name.startswith(f"{role}_") for name in defaults), f"{role}: {name} is not prefixed {role}_"
        assert specs["main"]["options"][name].get("description"), f"{role}: {name} has no description"
    # Each default lives in one place: defaults/main.yml is what Ansible uses; a copy in the spec drifts.
    repeated = sorted(name for name, spec in specs["main"]["options"].items() if "default" in spec)
    assert repeated == [], f"{role}: argument_specs repeats the defaults of defaults/main.yml for {repeated}"


@pytest.mark.parametrize("role", [r for r in ROLES if r in AREA_ROLES])
def test_area_roles_have_preflight_present_absent_outputs(role):
    tasks = REPO_ROOT / "roles" / role / "tasks"
    for name in ("preflight.yml", "present.yml", "absent.yml", "outputs.yml"):
        assert (tasks / name).exists(), f"{role} lacks tasks/{name}"
    main = (tasks / "main.yml").read_text()
    assert main.index("preflight") < main.index("present"), f"{role}: preflight must come first"
    defaults = _yaml(REPO_ROOT / "roles" / role / "defaults" / "main.yml")
    assert defaults.get(f"{role}_state") == "present"


def _entry_points() -> list[tuple[str, str]]:
    """(role, task file) for main.yml, outputs.yml and every file a playbook runs alone (tasks_from)."""
    points = {(role, "main.yml") for role in AREA_ROLES} | {(role, "outputs.yml") for role in AREA_ROLES}
    for playbook in (REPO_ROOT / "playbooks").rglob("*.yml"):
        for task in _tasks(_yaml(playbook)):
            include = task.get("ansible.builtin.include_role") or {}
            if include.get("tasks_from") and include.get("name") in AREA_ROLES:
                points.add((include["name"], f"{include['tasks_from']}.yml"))
    return sorted(points)


def _tasks(node):
    """Every task dict in a playbook or task list, blocks and plays included."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("tasks", "pre_tasks", "post_tasks", "block", "rescue", "always"):
            yield from _tasks(node.get(key) or [])


@pytest.mark.parametrize(("role", "entry"), _entry_points())
def test_each_entry_point_sets_the_roles_region_once_for_every_aws_module(role, entry):
    """The region comes from one module_defaults per entry point (tasks do not repeat region:), and
    amazon.aws.route53, whose region option means latency routing, is kept out of it."""
    tasks = _yaml(REPO_ROOT / "roles" / role / "tasks" / entry)
    assert len(tasks) == 1 and "block" in tasks[0], f"{role}/tasks/{entry}: one block holding the role's tasks"
    defaults = tasks[0].get("module_defaults") or {}
    assert defaults.get("group/hawa.platform.aws") == {"region": f"{{{{ {role}_region }}}}"}, defaults
    assert defaults.get("amazon.aws.route53") == {"region": "{{ omit }}"}, defaults

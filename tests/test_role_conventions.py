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


@pytest.mark.parametrize("role", [r for r in ROLES if r in AREA_ROLES])
def test_area_roles_have_preflight_present_absent_outputs(role):
    tasks = REPO_ROOT / "roles" / role / "tasks"
    for name in ("preflight.yml", "present.yml", "absent.yml", "outputs.yml"):
        assert (tasks / name).exists(), f"{role} lacks tasks/{name}"
    main = (tasks / "main.yml").read_text()
    assert main.index("preflight") < main.index("present"), f"{role}: preflight must come first"
    defaults = _yaml(REPO_ROOT / "roles" / role / "defaults" / "main.yml")
    assert defaults.get(f"{role}_state") == "present"

"""Each role's molecule scenario (converge, idempotence, verify, cleanup) against the test sandbox."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import REPO_ROOT, VENV_BIN, ansible_env

SCENARIOS = sorted(p.parent.parent.parent.name for p in (REPO_ROOT / "roles").glob("*/molecule/default/molecule.yml"))


def test_every_area_role_has_a_scenario():
    assert {"networking", "storage", "database", "compute", "monitoring", "dns", "cdn"} <= set(SCENARIOS)


@pytest.mark.slow
@pytest.mark.parametrize("role", SCENARIOS)
def test_molecule(role, sandbox):
    env = ansible_env(sandbox.port, {"VIRTUAL_ENV": str(VENV_BIN.parent), "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1"})
    # Molecule keeps a scenario's state (e.g. "prepared") under ~/.ansible/tmp across runs; a
    # stale one from an interrupted run would skip prepare. Start from a clean slate.
    subprocess.run(
        [str(VENV_BIN / "molecule"), "reset"], cwd=REPO_ROOT / "roles" / role, env=env, capture_output=True, check=False
    )
    proc = subprocess.run(
        [str(VENV_BIN / "molecule"), "test"],
        cwd=REPO_ROOT / "roles" / role,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    for step in ("converge", "idempotence", "verify"):
        assert re.search(rf"{step}: Executed: Successful", plain), f"{role}: molecule did not run {step}"

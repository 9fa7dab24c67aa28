"""scripts/bootstrap.sh says what it does, a line per step, and a re-run is quiet and quick."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.support import REPO_ROOT


def test_bootstrap_reports_each_step_and_a_rerun_is_silent(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "requirements").mkdir()
    shutil.copy(REPO_ROOT / "scripts/bootstrap.sh", tmp_path / "scripts/bootstrap.sh")
    shutil.copytree(REPO_ROOT / "scripts/venv", tmp_path / "scripts/venv")
    shutil.copy(REPO_ROOT / "requirements/lock.txt", tmp_path / "requirements/lock.txt")
    # A virtualenv that sees the project's installed packages (through a .pth file), so pip finds every pin
    # satisfied instead of downloading them again: the test is about what bootstrap says, not pip's speed.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True)
    subprocess.run(
        [str(tmp_path / ".venv/bin/python"), "-m", "ensurepip", "--default-pip"], check=True, capture_output=True
    )
    site = Path(
        subprocess.run(
            [str(tmp_path / ".venv/bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "PIP_"))}

    first = subprocess.run(
        ["bash", "scripts/bootstrap.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    packages = sum(1 for line in (REPO_ROOT / "requirements/lock.txt").read_text().splitlines() if "==" in line)
    assert lines[0] == (
        f"bootstrap: installing the {packages} pinned Python packages of requirements/lock.txt "
        "(2-3 minutes on a fresh machine)"
    ), first.stdout
    assert lines[-1] == "bootstrap: Python packages ready", first.stdout

    again = subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == "", again.stdout + again.stderr

    # The start-up hook: nothing imported at start-up, one botocore data loader per process once it is.
    hooked = subprocess.run(
        [str(tmp_path / ".venv/bin/python"), "-c", HOOK_CHECK], env=env, capture_output=True, text=True, timeout=60
    )
    assert (hooked.returncode, hooked.stdout.split(), hooked.stderr) == (0, ["False", "True"], ""), hooked
    # The hook names no folder of this checkout: a copy of it sharing the virtualenv (the README walk makes one)
    # may be deleted without breaking every Python of the virtualenv.
    site = subprocess.run(
        [str(tmp_path / ".venv/bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(site, "hawa-venv-hooks.pth").read_text() == "import hawa_botocore_shared_loader\n"


HOOK_CHECK = """
import sys
print("botocore" in sys.modules)
import boto3
one, two = (boto3.session.Session(region_name=region) for region in ("us-east-1", "us-west-2"))
print(one._session.get_component("data_loader") is two._session.get_component("data_loader"))
"""

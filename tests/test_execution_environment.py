"""The execution environment (execution-environment.yml): `ansible-builder create` makes its build context
(there is no container engine here to build the image), and what it installs is what the project is tested
with and what its modules import."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from tests.support import REPO_ROOT, VENV_BIN, ansible_env

DEFINITION = REPO_ROOT / "execution-environment.yml"


def _definition() -> dict[str, Any]:
    return yaml.safe_load(DEFINITION.read_text())


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements" / "lock.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _galaxy_version() -> str:
    return yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"]


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(
        cmd, cwd=cwd, env=ansible_env(None), capture_output=True, text=True, timeout=300, check=False
    )  # fmt: skip
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build context, made as docs/awx.md says: the collection built into .ansible/build beside the
    definition, then `ansible-builder create` (in a copy, so the checkout gains no artifact)."""
    work = tmp_path_factory.mktemp("ee")
    shutil.copy(DEFINITION, work / DEFINITION.name)
    _run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work / ".ansible" / "build")],
        REPO_ROOT,
    )
    _run(
        [str(VENV_BIN / "ansible-builder"), "create", "-f", DEFINITION.name, "-c", "context", "--output-filename", "Containerfile"],
        work,
    )  # fmt: skip
    return work / "context"


def test_the_containerfile_installs_the_pinned_core_on_the_documented_base(context: Path) -> None:
    containerfile = (context / "Containerfile").read_text()
    definition = _definition()
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    pins = _lock_pins()
    refs = f"ansible-core=={pins['ansible-core']} ansible-runner=={pins['ansible-runner']}"
    assert f'ARG ANSIBLE_INSTALL_REFS="{refs}"' in containerfile
    # The galaxy stage installs from /build, where the collection's artifact is copied.
    assert "COPY _build /build" in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile


def test_the_galaxy_requirements_hold_this_collection_and_requirements_yml_pins(context: Path) -> None:
    collections = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    local = [c for c in collections if c.get("type") == "file"]
    assert [c["name"] for c in local] == [f"collections/hawa-platform-{_galaxy_version()}.tar.gz"], (
        "execution-environment.yml must name the artifact of galaxy.yml's version"
    )
    tarball = context / "_build" / local[0]["name"]
    with tarfile.open(tarball) as tar:
        info = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("hawa", "platform", _galaxy_version())

    pinned = {c["name"]: c["version"] for c in collections if c.get("type") != "file"}
    for wanted in yaml.safe_load((REPO_ROOT / "requirements.yml").read_text())["collections"]:
        assert pinned.get(wanted["name"]) == wanted["version"], f"{wanted['name']}: requirements.yml and the EE differ"
    # Every dependency galaxy.yml declares is pinned, inside its range, so the image is reproducible.
    for name, spec in info["dependencies"].items():
        assert name in pinned, f"galaxy.yml depends on {name}: pin it in execution-environment.yml"
        assert pinned[name] in SpecifierSet(spec), f"{name} {pinned[name]} is outside galaxy.yml's {spec}"


def test_the_python_and_system_requirements_are_the_modules_own(context: Path) -> None:
    lines = (context / "_build" / "requirements.txt").read_text().split()
    pins = _lock_pins()
    # Our plugins' own imports, and what amazon.aws (whose AnsibleAWSModule our modules build on) requires.
    wanted = {name: pins[name] for name in _third_party_imports() | _amazon_aws_requirements()}
    assert dict(line.split("==") for line in lines) == wanted
    # The web app's and the sandbox's packages never enter the image.
    assert not {"moto", "fastapi", "uvicorn", "psycopg", "pytest"} & {line.split("==")[0] for line in lines}
    assert (context / "_build" / "bindep.txt").read_text().split("\n") == ["ca-certificates [platform:rpm]"]


def _amazon_aws_requirements() -> set[str]:
    import ansible_collections.amazon.aws as amazon_aws

    text = (Path(next(iter(amazon_aws.__path__))) / "requirements.txt").read_text()
    return {re.split(r"[<>=!~ ]", line)[0].lower() for line in text.splitlines() if line and not line.startswith("#")}


def _third_party_imports() -> set[str]:
    """Top-level packages the modules, module utils, filters and callbacks import that neither the standard
    library nor Ansible provides."""
    found = set()
    for path in (REPO_ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    # The distribution that provides each import, where their names differ.
    distribution = {"ansible_mitogen": "mitogen", "yaml": "pyyaml"}
    # ansible-core's own requirements (Jinja2, PyYAML, ...) come with it in every execution environment.
    with_ansible_core = {re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in importlib.metadata.requires("ansible-core")}
    return {
        distribution.get(name, name)
        for name in found - set(sys.stdlib_module_names) - {"ansible", "ansible_collections"}
    } - with_ansible_core

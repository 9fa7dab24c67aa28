"""Every module of ours documents itself: DOCUMENTATION, EXAMPLES and RETURN parse, and ansible-doc renders them."""

from __future__ import annotations

import ast
import json
import subprocess

import pytest
import yaml

from tests.support import REPO_ROOT, VENV_BIN, ansible_env

MODULES = sorted(p for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_doc_blocks_are_yaml(path) -> None:
    # Read the blocks without importing: modules import module_utils only Ansible's loader provides.
    blocks = {
        node.targets[0].id: node.value.value
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    doc = yaml.safe_load(blocks["DOCUMENTATION"])
    assert doc["module"] == path.stem
    assert isinstance(yaml.safe_load(blocks["EXAMPLES"]), list)
    returns = yaml.safe_load(blocks["RETURN"]) or {}
    for name, spec in returns.items():
        description = spec["description"]
        lines = description if isinstance(description, list) else [description]
        assert all(isinstance(line, str) for line in lines), (
            f"{path.stem} RETURN {name}: a description line is not text"
        )


def test_ansible_doc_renders_every_module() -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-M", "plugins/modules", "--json", *[p.stem for p in MODULES]],
        cwd=REPO_ROOT, env=ansible_env(None), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    docs = json.loads(proc.stdout)
    assert set(docs) == {p.stem for p in MODULES}
    for name, doc in docs.items():
        assert doc["doc"]["description"] and doc["examples"] and doc["return"], name

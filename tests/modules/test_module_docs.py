"""Every module of ours documents itself: DOCUMENTATION, EXAMPLES and RETURN parse, ansible-doc renders them,
and the documented options agree with the argument spec (as ansible-test validate-modules demands)."""

from __future__ import annotations

import ast
import json
import subprocess
from typing import Any

import pytest
import yaml
from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec

from tests.support import REPO_ROOT, VENV_BIN, ansible_env, load_module_file

MODULES = sorted(p for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if p.name != "__init__.py")


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    """ansible-doc's JSON for every module: the doc blocks with their fragments merged in."""
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-M", "plugins/modules", "--json", *[p.stem for p in MODULES]],
        cwd=REPO_ROOT, env=ansible_env(None), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_doc_blocks_are_yaml(path) -> None:
    # Read the blocks without importing them: a YAML error must not hide behind an import error.
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
    # An unquoted "a: b" in a line makes it a mapping, which ansible-doc and validate-modules refuse.
    documented = {"module": doc} | {f"option {key}": spec for key, spec in (doc.get("options") or {}).items()}
    for name, spec in documented.items():
        description = spec["description"]
        lines = description if isinstance(description, list) else [description]
        assert all(isinstance(line, str) for line in lines), f"{path.stem} {name}: a description line is not text"
    returns = yaml.safe_load(blocks["RETURN"]) or {}
    for name, spec in returns.items():
        description = spec["description"]
        lines = description if isinstance(description, list) else [description]
        assert all(isinstance(line, str) for line in lines), (
            f"{path.stem} RETURN {name}: a description line is not text"
        )


def test_ansible_doc_renders_every_module(rendered: dict[str, Any]) -> None:
    assert set(rendered) == {p.stem for p in MODULES}
    for name, doc in rendered.items():
        assert doc["doc"]["description"] and doc["examples"] and doc["return"], name


class _SpecCaptured(Exception):
    pass


def argument_spec(path) -> dict[str, Any]:
    """The argument spec main() gives AnsibleAWSModule, with the common AWS options the class adds; for a
    module that is an action plugin (its file holds only the documentation), the spec the action validates."""
    action = REPO_ROOT / "plugins" / "action" / path.name
    if action.exists():
        return load_module_file(action).ARGUMENT_SPEC
    module = load_module_file(path)
    spec = aws_argument_spec()

    class Capture:
        def __init__(self, argument_spec: dict[str, Any], **_: Any) -> None:
            spec.update(argument_spec)
            raise _SpecCaptured

    module.AnsibleAWSModule = Capture
    with pytest.raises(_SpecCaptured):
        module.main()
    return spec


def disagreements(documented: dict[str, Any], spec: dict[str, Any], where: str = "") -> list[str]:
    """What the documentation says differently from the spec, option by option and suboption by suboption."""
    found = []
    for name in sorted(set(documented) | set(spec)):
        here = f"{where}{name}"
        if name not in spec:
            found.append(f"{here}: documented but not in the argument spec")
            continue
        if name not in documented:
            found.append(f"{here}: in the argument spec but not documented")
            continue
        doc, arg = documented[name] or {}, spec[name]
        for key, unset in (("type", "str"), ("default", None), ("required", False), ("elements", None)):
            if doc.get(key, unset) != arg.get(key, unset):
                found.append(
                    f"{here}: {key} is {doc.get(key, unset)!r} in the docs, {arg.get(key, unset)!r} in the spec"
                )
        for key in ("choices", "aliases"):
            if sorted(map(str, doc.get(key) or [])) != sorted(map(str, arg.get(key) or [])):
                found.append(f"{here}: {key} are {doc.get(key)} in the docs, {arg.get(key)} in the spec")
        found += disagreements(doc.get("suboptions") or {}, arg.get("options") or {}, f"{here}.")
    return found


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_documentation_agrees_with_the_argument_spec(path, rendered: dict[str, Any]) -> None:
    # A documented default the spec does not declare is one the code fills in by hand, or not at all.
    assert disagreements(rendered[path.stem]["doc"].get("options") or {}, argument_spec(path)) == []


def test_disagreements_are_found() -> None:
    documented = {"a": {"type": "int", "default": 1}, "b": {"suboptions": {"c": {"choices": ["x", "y"]}}}}
    spec = {"a": {"type": "int"}, "b": {"type": "str", "options": {"c": {"choices": ["x"]}}}, "d": {}}
    assert disagreements(documented, spec) == [
        "a: default is 1 in the docs, None in the spec",
        "b.c: choices are ['x', 'y'] in the docs, ['x'] in the spec",
        "d: in the argument spec but not documented",
    ]

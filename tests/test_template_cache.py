"""plugins/plugin_utils/template_cache.py: the workers of a run share compiled templates, the next run finds them,
and a template renders exactly as it does without them (its variables, backslash escaping, conditionals, syntax
errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jinja2
from ansible.release import __version__ as ansible_version

from tests.support import REPO_ROOT

# Runs in its own interpreter: install() changes Ansible's template environment for the whole process.
SCRIPT = textwrap.dedent(
    r"""
    import json, os, sys
    import jinja2
    from ansible.errors import AnsibleTemplateSyntaxError
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template
    sys.path.insert(0, "collections")  # the repository as the collection hawa.platform
    from ansible_collections.hawa.platform.plugins.plugin_utils import template_cache

    compiled = []  # every compilation Jinja itself performs
    jinja_compile = jinja2.Environment.compile
    def counting(self, source, *args, **kwargs):
        compiled.append(source if isinstance(source, str) else "<tree>")
        return jinja_compile(self, source, *args, **kwargs)
    jinja2.Environment.compile = counting
    template_cache.install()
    directory = template_cache._directory

    def render(text, **options):
        variables = options.pop("variables", {"a": 1})
        return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(text), **options)

    def condition(text, a):
        return Templar(loader=DataLoader(), variables={"a": a}).evaluate_conditional(trust_as_template(text))

    out = {"directory": directory}
    out["sum"] = [render("{{ a + 1 }}"), render("{{ a + 1 }}", variables={"a": 5})]
    out["escaped"] = [render("{{ 'x\\1' }}"), render("{{ 'x\\1' }}", escape_backslashes=False)]
    out["conditions"] = [condition("a == 1", 1), condition("a == 1", 2), condition("a == '1'", 1)]
    errors = []
    for _ in range(2):
        try:
            render("{{ a + }}")
        except AnsibleTemplateSyntaxError as error:
            errors.append(type(error).__name__)
    out["errors"] = errors
    out["parent_compiled"] = list(compiled)
    stored = sorted(os.listdir(directory))
    out["stored"] = len(stored)

    # A forked worker finds what the parent compiled, and what it compiles itself is there for the next one.
    read, write = os.pipe()
    if os.fork() == 0:
        del compiled[:]
        template_cache._compiled.clear()  # a fresh worker knows only the directory
        child = {"sum": render("{{ a + 1 }}", variables={"a": 41}), "new": render("{{ a * 3 }}")}
        child["compiled"] = list(compiled)
        os.write(write, json.dumps(child).encode())
        os._exit(0)
    os.close(write)
    out["child"] = json.loads(os.read(read, 65536))
    out["stored_after_child"] = len(os.listdir(directory))

    if sys.argv[1:] == ["remove"]:
        # Storing is only an optimisation: with the directory gone, templates still render.
        import shutil
        shutil.rmtree(directory)
        out["without_directory"] = [render("{{ a - 1 }}"), render("{{ a + 1 }}", variables={"a": 9})]
    print(json.dumps(out))
    """
)


def _run(tmp_path: Path, home: Path, *args: str) -> dict:
    run = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/python"), "-c", SCRIPT, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(tmp_path), "ANSIBLE_HOME": str(home)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def _tag() -> str:
    return f"{sys.implementation.cache_tag}-jinja2-{jinja2.__version__}-ansible-core-{ansible_version}-1"


def test_workers_share_compiled_templates_and_the_next_run_finds_them(tmp_path: Path):
    home = tmp_path / "ansible-home"
    stale = home / "hawa_platform" / "templates" / "cpython-39-jinja2-2.11-ansible-core-2.9-1"
    stale.mkdir(parents=True)
    (stale / ("0" * 40)).write_bytes(b"not for this Python")
    out = _run(tmp_path, home)

    # The same results as Ansible's own rendering, whatever was compiled before.
    assert out["sum"] == [2, 6]
    assert out["escaped"] == ["x\\1", "x\x01"], "backslash escaping is part of what a template compiles to"
    assert out["conditions"] == [True, False, False]
    assert out["errors"] == ["AnsibleTemplateSyntaxError"] * 2, "a broken template fails every time"

    # Each distinct template compiled once: the second render of a string and the second variable value reuse it;
    # the escaped and unescaped forms of one string are two entries; the broken one is tried each time, never kept.
    parent = out["parent_compiled"]
    assert parent.count("{{ a + 1 }}") == 1 and parent.count("{{ 'x\\1' }}") == 2, parent
    assert parent.count("{{ a + }}") == 2, parent
    assert out["stored"] == len(parent) - 2, (out["stored"], parent)

    # The forked worker compiled only the template the parent never saw, and stored it.
    assert out["child"]["sum"] == 42 and out["child"]["new"] == 3
    assert out["child"]["compiled"] == ["{{ a * 3 }}"], out["child"]
    assert out["stored_after_child"] == out["stored"] + 1

    # The directory is the user's, for this Python, Jinja and Ansible, and outlives the run; another version's is gone.
    directory = Path(out["directory"])
    assert directory == home / "hawa_platform" / "templates" / _tag(), directory
    assert directory.is_dir() and oct(directory.stat().st_mode & 0o777) == "0o700"
    assert not stale.exists()

    # The next run compiles nothing it compiled before (the broken template still fails, each time).
    again = _run(tmp_path, home)
    assert again["directory"] == out["directory"]
    assert again["parent_compiled"] == ["{{ a + }}"] * 2, again["parent_compiled"]
    assert again["child"]["compiled"] == [] and again["sum"] == [2, 6] and again["conditions"] == [True, False, False]

    assert _run(tmp_path, home, "remove")["without_directory"] == [0, 10]


def test_a_directory_others_may_write_to_is_not_used(tmp_path: Path):
    home = tmp_path / "ansible-home"
    shared = home / "hawa_platform" / "templates" / _tag()
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    out = _run(tmp_path, home)
    # The run's own directory instead, in the temporary directory, gone once the process that made it has exited.
    assert out["sum"] == [2, 6] and out["stored"] > 0
    assert Path(out["directory"]).parent == tmp_path and not Path(out["directory"]).exists()
    assert list(shared.iterdir()) == []

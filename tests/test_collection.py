"""The repository is the collection hawa.platform: its artifact holds what an execution environment needs
(roles, playbooks, plugins) and none of the developer's machine; its action group covers our modules and
amazon.aws's and community.aws's; every task calls our modules by their FQCN."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile

import pytest
import yaml

from tests.support import REPO_ROOT, VENV_BIN, ansible_env

MODULES = sorted(p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py"))
# The modules that call AWS (their documentation extends amazon.aws's): the action group `aws` lists them, so that a
# play's module_defaults (region, endpoint) reach them; a controller-side action such as assert_all takes none.
AWS_MODULES = sorted(
    name
    for name in MODULES
    if "amazon.aws.common.modules" in (REPO_ROOT / "plugins" / "modules" / f"{name}.py").read_text()
)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out)],
        cwd=REPO_ROOT, env=ansible_env(None), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tarball,) = out.glob("hawa-platform-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    return names, manifest


def test_the_artifact_holds_what_an_execution_environment_runs(artifact):
    names, manifest = artifact
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("hawa", "platform")
    assert {"amazon.aws", "community.aws"} <= set(info["dependencies"])
    expected = {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "playbooks/site.yml", "playbooks/failover.yml"}
    expected |= {f"plugins/modules/{name}.py" for name in MODULES}
    expected |= {f"plugins/module_utils/{p.name}" for p in (REPO_ROOT / "plugins" / "module_utils").glob("*.py")}
    expected |= {f"roles/{role}/tasks/main.yml" for role in ("networking", "database", "dns", "cdn")}
    assert expected - names == set()


def test_the_artifact_leaves_out_the_developers_machine(artifact):
    names, _ = artifact
    tops = {name.split("/")[0] for name in names}
    left_out = {"sandbox", "webapp", "tests", "inventories", "collections", "scripts", ".venv", ".sandbox", "reports"}
    left_out |= {"execution-environment.yml", "Makefile", "site.yml", "failover.yml"}
    assert tops & left_out == set(), "build_ignore in galaxy.yml should keep these out of the artifact"
    assert not [name for name in names if "/molecule/" in name or "__pycache__" in name]


def test_the_action_group_lists_every_module_and_extends_the_aws_groups():
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    group = runtime["action_groups"]["aws"]
    metadata = [entry["metadata"] for entry in group if isinstance(entry, dict)]
    assert metadata == [{"extend_group": ["amazon.aws.aws", "community.aws.aws"]}]
    assert sorted(entry for entry in group if isinstance(entry, str)) == AWS_MODULES
    assert "assert_all" in MODULES and "assert_all" not in AWS_MODULES


def test_tasks_call_our_modules_by_their_fqcn():
    short = re.compile(rf"^\s*-?\s*({'|'.join(MODULES)}):", re.M)
    places = [REPO_ROOT / "roles", REPO_ROOT / "playbooks", REPO_ROOT / "tests" / "modules" / "targets"]
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {match.group(1)}"
        for place in places
        for path in place.rglob("*.yml")
        for match in short.finditer(path.read_text())
    ]
    assert offenders == [], "call these by hawa.platform.<module>"


def test_the_repository_resolves_as_the_collection():
    link = REPO_ROOT / "collections" / "ansible_collections" / "hawa" / "platform"
    assert link.is_symlink() and link.resolve() == REPO_ROOT.resolve()
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "--json", "hawa.platform.health_check_gate"],
        cwd=REPO_ROOT, env=ansible_env(None), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "hawa.platform.health_check_gate" in json.loads(proc.stdout)

"""plugins/modules/ecs_cluster_settings.py: pure helpers (unit) and the module on the sandbox (integration)."""

from __future__ import annotations

import importlib.util
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO_ROOT, run_playbook

_spec = importlib.util.spec_from_file_location(
    "ecs_cluster_settings", REPO_ROOT / "plugins" / "modules" / "ecs_cluster_settings.py"
)
assert _spec and _spec.loader
mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mod)

ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/c1"


class FakeEcs:
    """Just enough of the ECS client: describe_clusters and update_cluster, recording writes."""

    def __init__(self, clusters: list[dict[str, Any]]) -> None:
        self.clusters = clusters
        self.updates: list[dict[str, Any]] = []

    def describe_clusters(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["include"] == ["SETTINGS"]
        return {"clusters": self.clusters, "failures": []}

    def update_cluster(self, **kwargs: Any) -> dict[str, Any]:
        self.updates.append(kwargs)
        merged = {s["name"]: s["value"] for s in self.clusters[0].get("settings", [])}
        merged.update({s["name"]: s["value"] for s in kwargs["settings"]})
        return {"cluster": {"clusterArn": ARN, "settings": [{"name": k, "value": v} for k, v in merged.items()]}}


def _cluster(status: str = "ACTIVE", **settings: str) -> dict[str, Any]:
    return {"clusterArn": ARN, "status": status, "settings": [{"name": k, "value": v} for k, v in settings.items()]}


# --- unit ----------------------------------------------------------------------------------------


def test_settings_to_dict() -> None:
    assert mod.settings_to_dict([{"name": "containerInsights", "value": "enabled"}]) == {"containerInsights": "enabled"}
    assert mod.settings_to_dict(None) == {}


def test_settings_to_change_only_lists_differences() -> None:
    wanted = mod.wanted_settings("enabled")
    assert mod.settings_to_change({"containerInsights": "enabled"}, wanted) == []
    assert mod.settings_to_change({}, wanted) == [{"name": "containerInsights", "value": "enabled"}]
    assert mod.settings_to_change({"containerInsights": "disabled"}, wanted) == [
        {"name": "containerInsights", "value": "enabled"}
    ]


def test_check_mode_reports_change_without_writing() -> None:
    client = FakeEcs([_cluster(containerInsights="disabled")])
    result = mod.ensure_settings(client, "c1", mod.wanted_settings("enabled"), check_mode=True)
    assert result["changed"] is True
    assert result["settings"] == {"containerInsights": "enabled"}
    assert result["diff"]["before"]["settings"] == {"containerInsights": "disabled"}
    assert client.updates == []


def test_real_run_writes_once_and_returns_new_settings() -> None:
    client = FakeEcs([_cluster()])
    result = mod.ensure_settings(client, "c1", mod.wanted_settings("enhanced"), check_mode=False)
    assert result["changed"] is True
    assert client.updates == [
        {"aws_retry": True, "cluster": ARN, "settings": [{"name": "containerInsights", "value": "enhanced"}]}
    ]
    assert result["settings"] == {"containerInsights": "enhanced"}


def test_no_change_means_no_write() -> None:
    client = FakeEcs([_cluster(containerInsights="enabled")])
    result = mod.ensure_settings(client, "c1", mod.wanted_settings("enabled"), check_mode=False)
    assert result["changed"] is False
    assert client.updates == []


@pytest.mark.parametrize("clusters", [[], [_cluster(status="INACTIVE")]])
def test_missing_or_inactive_cluster_raises(clusters: list[dict[str, Any]]) -> None:
    with pytest.raises(mod.ClusterNotFound, match="'c1' does not exist"):
        mod.ensure_settings(FakeEcs(clusters), "c1", mod.wanted_settings("enabled"), check_mode=False)


# --- integration ---------------------------------------------------------------------------------


def test_ansible_doc_renders() -> None:
    proc = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "ansible-doc"), "-M", "plugins/modules", "ecs_cluster_settings"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "container_insights" in proc.stdout


def test_module_on_sandbox(sandbox: Any) -> None:
    run = run_playbook(
        Path("tests/modules/targets/ecs_cluster_settings.yml"),
        sandbox_port=sandbox.port,
        extra_vars={"target_suffix": uuid.uuid4().hex[:8]},
    )
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    # Exactly these report changed: each check-mode run that would act, each real change, the clean-up.
    changed = sorted(t.split(": ", 1)[1] for t in run.changed_tasks())
    assert changed == sorted(
        [
            "A cluster without settings",
            "Turn Container Insights on (check mode)",
            "Turn Container Insights on",
            "Switch to enhanced (check mode)",
            "Switch to enhanced",
            "Turn Container Insights off",
            "Remove the cluster",
        ]
    )

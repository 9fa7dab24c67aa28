"""plugins/modules/cloudfront_origin_access_control.py on the sandbox (integration) plus its pure helpers."""

from __future__ import annotations

import importlib.util
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import REPO_ROOT, run_playbook

TARGET = Path("tests/modules/targets/cloudfront_origin_access_control.yml")


def _load_module() -> types.ModuleType:
    # The module imports amazon.aws at import time: the collections ship with the `ansible` package.
    spec = importlib.util.spec_from_file_location(
        "cloudfront_origin_access_control", REPO_ROOT / "plugins" / "modules" / "cloudfront_origin_access_control.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oac = _load_module()
PARAMS = {
    "name": "n",
    "description": "d",
    "origin_type": "s3",
    "signing_behavior": "always",
    "signing_protocol": "sigv4",
}


def test_desired_config_uses_api_names() -> None:
    assert oac.desired_config(PARAMS) == {
        "Name": "n",
        "Description": "d",
        "SigningProtocol": "sigv4",
        "SigningBehavior": "always",
        "OriginAccessControlOriginType": "s3",
    }


def test_differs_treats_a_missing_description_as_empty() -> None:
    desired = oac.desired_config(dict(PARAMS, description=""))
    current = {k: v for k, v in desired.items() if k != "Description"}
    assert oac.differs(current, desired) == []
    assert oac.differs(dict(current, SigningBehavior="never"), desired) == ["SigningBehavior"]


def test_module_create_modify_delete(sandbox: Any, aws: Callable[..., Any]) -> None:
    name = f"oac-{uuid.uuid4().hex[:10]}"
    run = run_playbook(TARGET, sandbox_port=sandbox.port, extra_vars={"target_name": name})
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    expected = ("Create (check mode)", "Create", "Modify (check mode)", "Modify", "Delete (check mode)", "Delete")
    assert sorted(run.changed_tasks()) == sorted(f"us-east-1: {task}" for task in expected)
    listed = aws("cloudfront").list_origin_access_controls()["OriginAccessControlList"].get("Items") or []
    assert name not in [c["Name"] for c in listed]

"""scripts/controller.py start on a controller that runs already: kept when its settings are what the inventory
renders now, restarted when they changed (a deploy that turned HTTPS on, a sandbox restarted on new ports), since
the controller reads its settings once, when it starts. The controller itself is faked: the end-to-end runs are in
tests/eda/test_controller.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts import controller

RUNNING = {"failover_automation_mode": "automatic", "scheme": "http", "tls": False, "connect_to": {"a:80": "b:1"}}


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A controller (pid 4242) started with RUNNING; returns the calls made to stop it."""
    (tmp_path / "vars.json").write_text(json.dumps(RUNNING))
    stopped: list[str] = []
    monkeypatch.setattr(controller, "_pid", lambda state: None if stopped else 4242)
    monkeypatch.setattr(controller, "stop", lambda state: stopped.append(str(state)) or "stopped")
    return stopped


def _rendering(monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any]) -> None:
    monkeypatch.setattr(controller, "render_vars", lambda inventory, state, extra: dict(settings))


def test_the_same_settings_keep_the_running_controller(tmp_path, running, monkeypatch) -> None:
    _rendering(monkeypatch, RUNNING)
    said = controller.start(Path("inventories/sandbox/hosts.yml"), tmp_path, [])
    assert said.startswith("controller already running (pid 4242)") and running == []


def test_changed_settings_restart_it_and_say_which(tmp_path, running, monkeypatch) -> None:
    # Mode off after the change: it stops the old one and starts none, which needs no process here.
    _rendering(monkeypatch, {**RUNNING, "failover_automation_mode": "off", "scheme": "https"})
    said = controller.start(Path("inventories/sandbox/hosts.yml"), tmp_path, [])
    assert running == [str(tmp_path)], "the controller with the old settings is stopped"
    assert "not started (restarted: its settings changed: failover_automation_mode, scheme)" in said, said

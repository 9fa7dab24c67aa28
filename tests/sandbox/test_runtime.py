"""The shared runtime (sandbox/runtime.py): no implicit runtime outside `sandbox serve`."""

from __future__ import annotations

import pytest

from sandbox import runtime


def test_get_without_init_refuses(monkeypatch):
    monkeypatch.setattr(runtime, "_RUNTIME", None)
    with pytest.raises(RuntimeError, match=r"runtime.init\(\) first"):
        runtime.get()


def test_init_then_get(monkeypatch, tmp_path):
    monkeypatch.setattr(runtime, "_RUNTIME", None)
    made = runtime.init(tmp_path, 1, 2)
    assert runtime.get() is made and made.state_dir == tmp_path

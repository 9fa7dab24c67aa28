"""hawa.platform.assert_all: each check as an assert task of its own would be, every failing one reported at once
(no sandbox needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support import run_playbook


def _run(tmp_path: Path, checks: list[dict], **task_vars) -> tuple:
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"size": 3, "name": "web"},
            "tasks": [
                {
                    "name": "Check the inputs",
                    "hawa.platform.assert_all": {"checks": checks},
                    "vars": task_vars,
                    "register": "checked",
                },
                {"name": "Show the result", "ansible.builtin.debug": {"var": "checked"}},
            ],
        }
    ]
    playbook = tmp_path / "checks.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    run = run_playbook(playbook, sandbox_port=None, inventory="localhost,", timeout=120)
    return run, run.failure_messages()


def _result(run) -> dict:
    (task,) = [t for play in run.plays for t in play["tasks"] if t["task"]["name"] == "Check the inputs"]
    return task["hosts"]["localhost"]


def test_passing_checks_pass_and_a_check_whose_when_is_false_is_not_evaluated(tmp_path: Path) -> None:
    run, messages = _run(
        tmp_path,
        [
            {"that": ["size >= 2", "name is match('^[a-z]+$')"], "fail_msg": "size={{ size }}"},
            {"that": "'a,b' is match('^a,b$')", "fail_msg": "a condition with commas is one condition"},
            # Neither its condition nor its message could be evaluated: it does not apply.
            {"that": "missing_variable > 1", "fail_msg": "{{ missing_variable }}", "when": "size > 5"},
        ],
    )
    assert run.returncode == 0, messages or run.stderr[-2000:]
    result = _result(run)
    assert (result["passed"], result["not_applicable"], result["failures"]) == (2, 1, [])
    assert result["msg"] == "All 2 check(s) passed, 1 not applicable"


def test_every_failing_check_is_reported_with_its_own_message(tmp_path: Path) -> None:
    run, _ = _run(
        tmp_path,
        [
            {"that": "size >= 5", "fail_msg": "size={{ size }} must be at least 5"},
            {"that": "name == 'web'", "fail_msg": "never shown"},
            {"that": ["size > 0", "limit < size"], "fail_msg": "limit={{ limit }} must stay below size={{ size }}"},
            {"that": "size == 4", "fail_msg": "not applicable", "when": ["name == 'api'"]},
        ],
        limit=10,
    )
    assert run.returncode != 0
    result = _result(run)
    assert result["failures"] == [
        {"check": 1, "assertion": "size >= 5", "msg": "size=3 must be at least 5"},
        {"check": 3, "assertion": "limit < size", "msg": "limit=10 must stay below size=3"},
    ]
    assert result["msg"] == "2 checks failed: (1) size=3 must be at least 5 (2) limit=10 must stay below size=3"
    assert (result["passed"], result["not_applicable"]) == (1, 1)


def test_one_failing_check_says_only_its_message(tmp_path: Path) -> None:
    run, messages = _run(tmp_path, [{"that": "size == 4", "fail_msg": "size={{ size }}: use 4"}])
    assert run.returncode != 0 and messages == ["localhost: Check the inputs: size=3: use 4"], messages


def test_a_malformed_check_is_named(tmp_path: Path) -> None:
    run, messages = _run(tmp_path, [{"that": "size == 3", "fail_msg": "x", "unless": "size == 4"}])
    assert run.returncode != 0 and any("checks.unless" in m for m in messages), messages
    run, messages = _run(tmp_path, [{"that": "size == 3"}])
    assert run.returncode != 0 and any("fail_msg" in m for m in messages), messages


def test_a_check_that_relies_on_an_earlier_one_is_not_evaluated_after_that_one_failed(tmp_path: Path) -> None:
    checks = [
        {"that": "settings is mapping", "fail_msg": "settings={{ settings }} must be a mapping"},
        {"that": "settings.port > 0", "fail_msg": "settings.port must be positive"},
    ]
    run, messages = _run(tmp_path, checks, settings="port=80")
    assert run.returncode != 0 and messages == ["localhost: Check the inputs: settings=port=80 must be a mapping"], (
        messages
    )
    # Alone, the same error fails the task as it would fail an assert task.
    run, messages = _run(tmp_path, checks[1:], settings="port=80")
    assert run.returncode != 0 and messages and "settings=port=80" not in messages[0], messages

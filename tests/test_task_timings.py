"""plugins/callback/task_timings.py: each task's time lands on the task that spent it, under the free strategy
and with hosts that include different task files (profile_tasks charged it to another task)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import REPO_ROOT, ansible_env

PLAYBOOK = """
- hosts: all
  gather_facts: false
  strategy: ansible.builtin.free
  tasks:
    - name: Build
      ansible.builtin.include_tasks: present.yml
    - name: Remove (never runs)
      ansible.builtin.include_tasks: absent.yml
      when: false
    - name: After
      ansible.builtin.debug:
        msg: after
    - name: Fails, ignored
      ansible.builtin.command: "false"
      changed_when: false
      ignore_errors: true
"""
PRESENT = """
- name: Primary work
  ansible.builtin.command: sleep 3
  changed_when: false
  when: role == 'primary'
- name: Join the secondary
  ansible.builtin.include_tasks: secondary.yml
  when: role == 'secondary'
"""
SECONDARY = """
- name: Slow join
  ansible.builtin.command: sleep 4
  changed_when: false
"""


def test_slowest_tasks_are_named_by_the_task_that_spent_the_time(tmp_path):
    python = sys.executable
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts:\n"
        f"    a: {{ansible_connection: local, ansible_python_interpreter: {python}, role: primary}}\n"
        f"    b: {{ansible_connection: local, ansible_python_interpreter: {python}, role: secondary}}\n"
    )
    (tmp_path / "main.yml").write_text(PLAYBOOK)
    (tmp_path / "present.yml").write_text(PRESENT)
    (tmp_path / "secondary.yml").write_text(SECONDARY)
    (tmp_path / "absent.yml").write_text("- ansible.builtin.debug:\n    msg: never\n")
    # The repository's ansible.cfg enables the callback, as it does for every playbook run.
    run = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/ansible-playbook"), "-i", "inventory.yml", "main.yml"],
        cwd=tmp_path,
        env=ansible_env(None),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    recap = run.stdout[run.stdout.index("SLOWEST TASKS") :]
    timings = {m[1]: float(m[2]) for m in re.finditer(r"^(.+?)\s{2,}(\d+\.\d+) s$", recap, re.MULTILINE)}
    assert timings["Primary work [a]"] >= 2.9, recap
    assert timings["Slow join [b]"] >= 3.9, recap
    assert timings["Remove (never runs) [a]"] < 1.5 and timings["After [a]"] < 1.5, recap
    # Ansible passes failures on with ignore_errors=: the callback takes it (it once warned on every failure).
    assert "Fails, ignored [a]" in timings and "Callback dispatch" not in run.stdout + run.stderr, run.stderr

"""plugins/strategy (mitogen_linear, ansible.cfg's strategy): under Mitogen each host runs its modules in its own
interpreter, or in the one its mitogen_interpreter_name names (the inventories' us-east-1 names the global host's); the same inventory runs under Ansible's own linear
strategy (ANSIBLE_STRATEGY=linear, docs/performance.md), which starts a Python per task."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.support import REPO_ROOT

MODULE = """#!/usr/bin/python
import os
from ansible.module_utils.basic import AnsibleModule
AnsibleModule(argument_spec={}).exit_json(changed=False, pid=os.getpid())
"""
PLAYBOOK = """
- name: Each host on its own
  hosts: all
  gather_facts: false
  tasks:
    - interpreter_pid:
      register: own
    - ansible.builtin.debug:
        msg: "PID own {{ inventory_hostname }} {{ own.pid }}"
- name: Every host in the interpreter named global
  hosts: all
  gather_facts: false
  vars:
    mitogen_interpreter_name: global
  tasks:
    - interpreter_pid:
      register: shared
    - ansible.builtin.debug:
        msg: "PID shared {{ inventory_hostname }} {{ shared.pid }}"
"""


def _pids(tmp_path, strategy: str | None) -> dict[tuple[str, str], int]:
    (tmp_path / "library").mkdir(exist_ok=True)
    (tmp_path / "library" / "interpreter_pid.py").write_text(MODULE)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(REPO_ROOT / "ansible.cfg")
    if strategy:
        env["ANSIBLE_STRATEGY"] = strategy
    run = subprocess.run(
        [
            str(REPO_ROOT / ".venv/bin/ansible-playbook"),
            "-i",
            "inventories/sandbox/hosts.yml",
            str(tmp_path / "play.yml"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    found = re.findall(r"PID (own|shared) (\S+) (\d+)", run.stdout)
    pids = {(play, host): int(pid) for play, host, pid in found}
    return pids


def test_mitogen_runs_each_host_in_its_own_interpreter_or_the_one_it_names(tmp_path):
    pids = _pids(tmp_path, None)
    own = {host: pid for (play, host), pid in pids.items() if play == "own"}
    shared = {host: pid for (play, host), pid in pids.items() if play == "shared"}
    assert set(own) == set(shared) == {"us-east-1", "us-west-2", "global"}, pids
    # The inventories give us-east-1 the global host's interpreter (host_vars/us-east-1.yml), us-west-2 its own.
    assert own["us-east-1"] == own["global"] != own["us-west-2"], (
        f"us-east-1 in the global host's, us-west-2 apart: {own}"
    )
    assert set(shared.values()) == {own["global"]}, f"mitogen_interpreter_name: global is the global host's: {pids}"


@pytest.mark.parametrize("strategy", ["linear", "hawa.platform.mitogen_linear"])
def test_the_inventory_runs_under_either_strategy(tmp_path, strategy):
    pids = _pids(tmp_path, strategy)
    assert len(pids) == 6, json.dumps({f"{p} {h}": pid for (p, h), pid in pids.items()})
    if strategy == "linear":  # Ansible's own: a new Python for every task
        assert len(set(pids.values())) == 6, pids

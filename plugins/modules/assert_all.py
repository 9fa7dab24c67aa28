#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: assert_all
short_description: Several assert tasks in one, reporting every failing check
version_added: 1.0.0
description:
  - Evaluates a list of checks, each like an M(ansible.builtin.assert) task of its own (O(checks[].that) and
    O(checks[].fail_msg)), with an optional O(checks[].when). Fails when any applicable check fails, with every
    failing check's message; a single failure's message is its O(checks[].fail_msg) unchanged.
  - One task instead of one per check, since each task costs a task result per host and a role's preflight is
    about a dozen checks (docs/performance.md).
  - A check whose O(checks[].when) is false is not evaluated and its message is not rendered, as with a skipped
    task; a passing check's message is not rendered either.
  - A check may take for granted what an earlier one checks, as a later assert task could. When a check cannot be
    evaluated (an undefined variable, say) after an earlier one failed, evaluation stops and the failures so far are
    reported; with no failure before it, the error fails the task, as it would fail an assert task.
  - This module is an action plugin (C(plugins/action/assert_all.py)); it runs on the controller and calls nothing.
author:
  - hawa platform team (!UNKNOWN)
options:
  checks:
    description: The checks, evaluated in order.
    type: list
    elements: dict
    required: true
    suboptions:
      that:
        description: A condition or list of conditions, as M(ansible.builtin.assert) takes them; the check
          fails at its first false one.
        type: list
        elements: str
        required: true
      fail_msg:
        description: The message when the check fails; rendered only then.
        type: str
        required: true
      when:
        description: A condition or list of conditions that must all hold for the check to apply.
        type: list
        elements: str
notes:
  - Conditions are expressions without C({{ }}), as in C(when) and M(ansible.builtin.assert)'s C(that).
  - It changes nothing, so it runs the same in check mode.
"""

EXAMPLES = r"""
- name: Check the inputs
  hawa.platform.assert_all:
    checks:
      - that:
          - compute_state in ['present', 'absent']
        fail_msg: compute_state={{ compute_state }} must be present or absent
      - that: compute_vpc_id is match('^vpc-[0-9a-f]+$')
        fail_msg: compute_vpc_id={{ compute_vpc_id }} must be a VPC id; run the networking role first
        when: compute_state == 'present'
"""

RETURN = r"""
passed:
  description: How many checks applied and passed.
  type: int
  returned: always
not_applicable:
  description: How many checks did not apply (their O(checks[].when) was false).
  type: int
  returned: always
failures:
  description: Each failing check, in order.
  type: list
  elements: dict
  returned: always
  contains:
    check:
      description: The check's position in O(checks), from 1.
      type: int
    assertion:
      description: Its first condition that was false.
      type: str
    msg:
      description: Its rendered O(checks[].fail_msg).
      type: str
"""

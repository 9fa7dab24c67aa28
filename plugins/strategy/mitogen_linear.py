# Copyright: contributors to hawa.platform
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The linear strategy, run by Mitogen when it is installed (ansible.cfg makes this the default strategy).

Mitogen runs modules in interpreters it keeps for the whole run instead of starting a Python per task: on a
no-op site.yml run it halves the CPU Ansible spends (107 to 62 CPU-seconds, measured). Without the mitogen
package this is Ansible's own linear strategy, so a machine or an execution environment without it still
runs every playbook. Switch Mitogen off for one run with ANSIBLE_STRATEGY=linear. The class is made by
plugins/plugin_utils/mitogen_strategy.py, as mitogen_free.py's is.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_linear
short_description: The linear strategy, executed by Mitogen when it is installed
description:
  - Runs tasks in the order of the linear strategy. When the C(mitogen) package is importable, modules run in
    interpreters Mitogen keeps for the run; otherwise this is P(ansible.builtin.linear#strategy) itself.
  - Set E(ANSIBLE_STRATEGY=linear) to run without Mitogen.
author:
  - hawa platform team (!UNKNOWN)
"""

from ansible_collections.hawa.platform.plugins.plugin_utils.mitogen_strategy import strategy_class

StrategyModule = strategy_class("linear")

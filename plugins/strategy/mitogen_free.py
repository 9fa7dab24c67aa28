# Copyright: contributors to hawa.platform
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The free strategy, run by Mitogen when it is installed: mitogen_linear.py's counterpart for the plays that let
each region go at its own pace (playbooks/database.yml). Without it those plays started a Python per task:
about 1.7 s for each of the database area's reads on a no-op run. ANSIBLE_STRATEGY does not reach a play that
names its strategy; without the mitogen package this is Ansible's own free strategy. The class is made by
plugins/plugin_utils/mitogen_strategy.py.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_free
short_description: The free strategy, executed by Mitogen when it is installed
description:
  - Runs tasks as the free strategy does, each host as fast as it can. When the C(mitogen) package is
    importable, modules run in interpreters Mitogen keeps for the run; otherwise this is
    P(ansible.builtin.free#strategy) itself.
author:
  - hawa platform team (!UNKNOWN)
"""

from ansible_collections.hawa.platform.plugins.plugin_utils.mitogen_strategy import strategy_class

StrategyModule = strategy_class("free")

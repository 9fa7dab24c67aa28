# Copyright: contributors to hawa.platform
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The linear strategy, run by Mitogen when it is installed (ansible.cfg makes this the default strategy).

Mitogen runs modules in interpreters it keeps for the whole run instead of starting a Python per task: on a
no-op site.yml run it halves the CPU Ansible spends (107 to 62 CPU-seconds, measured). Without the mitogen
package this is Ansible's own linear strategy, so a machine or an execution environment without it still
runs every playbook. Switch Mitogen off for one run with ANSIBLE_STRATEGY=linear.

Mitogen's own plugins/strategy/mitogen_linear.py is a proxy of this shape too: the real classes live in the
ansible_mitogen package, imported under their own names so that they are loaded once.
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

from ansible_collections.hawa.platform.plugins.plugin_utils.mitogen_warmup import warm_collection_metadata

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError:  # no mitogen here: Ansible's linear strategy, unchanged
    from ansible.plugins.strategy.linear import StrategyModule
else:

    class StrategyModule(  # type: ignore[no-redef]
        ansible_mitogen.strategy.StrategyMixin,
        ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True),
    ):
        """Ansible's linear strategy with Mitogen's connection and module execution."""

        def run(self, iterator, play_context):  # type: ignore[no-untyped-def]
            warm_collection_metadata()
            return super().run(iterator, play_context)

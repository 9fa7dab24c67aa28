# Copyright: contributors to hawa.platform
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The strategy classes of plugins/strategy/mitogen_linear.py and mitogen_free.py: Ansible's own strategy, run by
Mitogen when the mitogen package is installed.

Mitogen runs modules in interpreters it keeps for the whole run instead of starting a Python per task. Its own
plugins/strategy/mitogen_*.py are proxies of this shape too: the real classes live in the ansible_mitogen
package, imported under their own names so that they are loaded once.

Before the first task, the controller lists the installed collections once. Before Mitogen runs a collection's
module, its planner lists every installed collection (ansible_mitogen.planner._load_collections ->
ansible.collections.list.list_collection_dirs), which imports each collection's package and so parses its
meta/runtime.yml. It did that in the worker process Ansible forks for each task and host, which forgets it on
exit: the 92 collections of the ansible package, again for every task. Listed once in the controller, before
it forks any worker, every worker inherits them (a no-op site.yml: 53 s and 52 CPU-seconds to 44 s and 43).
"""

from __future__ import annotations

import importlib
from typing import Any

_listed = False


def list_collections_once() -> None:
    """Import every installed collection's package (and its runtime metadata) in this process, once."""
    global _listed
    if not _listed:
        from ansible.collections.list import list_collection_dirs

        for _path in list_collection_dirs():
            pass
        _listed = True


def strategy_class(base: str) -> Any:
    """Ansible's strategy ``base`` (linear, free) run by Mitogen; Ansible's own where mitogen is missing."""
    try:
        import ansible_mitogen.loaders
        import ansible_mitogen.strategy
    except ImportError:  # no mitogen here: Ansible's strategy, unchanged
        return importlib.import_module(f"ansible.plugins.strategy.{base}").StrategyModule

    class StrategyModule(
        ansible_mitogen.strategy.StrategyMixin,
        ansible_mitogen.loaders.strategy_loader.get(base, class_only=True),
    ):
        __doc__ = f"Ansible's {base} strategy with Mitogen's connection and module execution."

        def run(self, iterator: Any, play_context: Any) -> Any:
            list_collections_once()
            return super().run(iterator, play_context)

    return StrategyModule

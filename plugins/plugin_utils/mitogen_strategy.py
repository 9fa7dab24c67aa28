# Copyright: contributors to hawa.platform
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The strategy classes of plugins/strategy/mitogen_linear.py and mitogen_free.py: Ansible's own strategy, run by
Mitogen when the mitogen package is installed.

Mitogen runs modules in interpreters it keeps for the whole run instead of starting a Python per task. Its own
plugins/strategy/mitogen_*.py are proxies of this shape too: the real classes live in the ansible_mitogen
package, imported under their own names so that they are loaded once.

Ansible forks a worker process for each task and host, and a worker forgets on exit every cache it filled. So
before each play's first task the controller fills, once, the caches every worker needs, and every worker it
forks inherits them (warm_controller_caches; a no-op site.yml went from 53 s to 44 s with the first, and from
43 s and 42 CPU-seconds to 34 s and 33 with the others):
- the installed collections, imported with their runtime metadata, and the list of their directories. Before
  Mitogen runs a collection's module its planner lists every installed collection
  (ansible_mitogen.planner._load_collections -> ansible.collections.list.list_collection_dirs), reading each
  one's manifest: the 92 collections of the ansible package, again for every task. It is handed the list made
  once instead;
- compiled templates (plugins/plugin_utils/template_cache.py), which each worker compiled from source;
- the Jinja filter and test plugins, which the first filter of each task loaded from every plugin file;
- the lookups the inventory and the roles call on most tasks (every AWS play's environment reads
  SANDBOX_PORT with ansible.builtin.env).
Without Mitogen the controller fills the same caches, except the planner's.

It also freezes its objects for the moment of each fork (_queue_task, gc.freeze), so a worker's garbage
collections leave the pages it shares with the controller unwritten (a no-op site.yml: about 1 s and 1 CPU-second
less, three runs against three of its parent, alternating).
"""

from __future__ import annotations

import gc
import importlib
from typing import Any

from ansible_collections.hawa.platform.plugins.plugin_utils import template_cache

_LOOKUPS = ("ansible.builtin.env", "ansible.builtin.vars", "ansible.builtin.template")

_collection_dirs: tuple[bytes, ...] | None = None


def list_collections_once() -> tuple[bytes, ...]:
    """Every installed collection's directory, listed (importing its package and runtime metadata) once."""
    global _collection_dirs
    if _collection_dirs is None:
        from ansible.collections.list import list_collection_dirs

        _collection_dirs = tuple(list_collection_dirs())
    return _collection_dirs


def _load_collections(invocation: Any) -> None:
    """ansible_mitogen.planner._load_collections, from the list made once in the controller."""
    for collection_path in list_collections_once():
        invocation._extra_sys_paths.add(collection_path.decode("utf-8"))


def _one_interpreter_per_host(spec_class: Any) -> None:
    """Give each host of a local connection its own Mitogen interpreter (see connection.yml in each inventory).

    Mitogen keeps one interpreter per interpreter command and runs one module at a time in it: with one
    command for every host, us-west-2's modules waited while us-east-1's slept in a collection module or an
    AWS waiter. The command gains `-X hawa_host=<name>`, an option Python ignores, which only tells the commands
    apart: the name is the host's `mitogen_interpreter_name`, or else its inventory name. It is added here, not
    in the inventory's ansible_python_interpreter, because Ansible's own strategies take that as one path.
    """
    python_path = spec_class.python_path
    if getattr(python_path, "one_per_host", False):  # both strategy plugins ask for it
        return

    def per_host(self: Any, rediscover_python: bool = False) -> list[str]:
        command = python_path(self, rediscover_python)
        if self.transport() != "local":
            return command
        name = self._task_vars.get("mitogen_interpreter_name") or self.inventory_name()
        return [*command, "-X", f"hawa_host={name}"]

    per_host.one_per_host = True  # type: ignore[attr-defined]
    spec_class.python_path = per_host


def warm_controller_caches() -> None:
    """Fill, in the controller and before it forks a task's workers, the caches every worker needs."""
    from ansible.plugins.loader import filter_loader, lookup_loader, test_loader

    template_cache.install()
    list_collections_once()
    for jinja_loader in (filter_loader, test_loader):
        for _plugin in jinja_loader.all():  # loads every plugin file once; a no-op when already loaded
            pass
    for name in _LOOKUPS:
        lookup_loader.get(name)


def strategy_class(base: str) -> Any:
    """Ansible's strategy ``base`` (linear, free) run by Mitogen; Ansible's own where mitogen is missing."""
    try:
        import ansible_mitogen.loaders
        import ansible_mitogen.planner
        import ansible_mitogen.strategy
        import ansible_mitogen.transport_config
    except ImportError:  # no mitogen here: Ansible's strategy, with the controller's caches filled
        bases: tuple[type, ...] = (importlib.import_module(f"ansible.plugins.strategy.{base}").StrategyModule,)
        description = f"Ansible's {base} strategy."
    else:
        bases = (
            ansible_mitogen.strategy.StrategyMixin,
            ansible_mitogen.loaders.strategy_loader.get(base, class_only=True),
        )
        description = f"Ansible's {base} strategy with Mitogen's connection and module execution."
        ansible_mitogen.planner._load_collections = _load_collections
        _one_interpreter_per_host(ansible_mitogen.transport_config.PlayContextSpec)

    class StrategyModule(*bases):
        __doc__ = description

        def run(self, iterator: Any, play_context: Any) -> Any:
            warm_controller_caches()
            return super().run(iterator, play_context)

        def _queue_task(self, *args: Any, **kwargs: Any) -> Any:
            # The worker is forked here. A garbage collection in the worker walks every object it inherited,
            # writing to each one's header, so the kernel copies the controller's pages one by one; objects
            # frozen before the fork are never walked. Unfrozen at once, so the controller still collects its own.
            gc.freeze()
            try:
                return super()._queue_task(*args, **kwargs)
            finally:
                gc.unfreeze()

    return StrategyModule

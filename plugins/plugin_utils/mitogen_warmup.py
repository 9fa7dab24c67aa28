# Copyright: contributors to hawa.platform
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What our Mitogen strategies (plugins/strategy/mitogen_*.py) do once in the controller before any task runs.

Before Mitogen runs a collection's module, its planner lists every installed collection
(ansible_mitogen.planner._load_collections -> ansible.collections.list.list_collection_dirs), which imports
each collection's package and so parses its meta/runtime.yml. That happens in the worker process Ansible
forks for each task and host, which forgets it on exit: the 92 collections of the ansible package cost
about 0.12 CPU-seconds per task, a third of a worker's time on a no-op run. Listing them once in the
controller, before it forks any worker, leaves every worker the packages already imported.
"""

from __future__ import annotations

_warmed = False


def warm_collection_metadata() -> None:
    """Import every installed collection's package (and its runtime metadata) in this process, once."""
    global _warmed
    if not _warmed:
        from ansible.collections.list import list_collection_dirs

        for _path in list_collection_dirs():
            pass
        _warmed = True

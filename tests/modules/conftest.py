"""Module unit tests import the module files directly; make our plugins/module_utils importable as
ansible.module_utils.<name> for them, as ansible.cfg's module_utils setting does for Ansible at run time."""

from __future__ import annotations

import ansible.module_utils

from tests.support import REPO_ROOT

MODULE_UTILS = str(REPO_ROOT / "plugins" / "module_utils")

if MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(MODULE_UTILS)

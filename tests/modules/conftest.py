"""Module unit tests import the module files directly. The modules import our plugins/module_utils as
ansible_collections.hawa.platform.plugins.module_utils.<name>, as Ansible resolves them at run time:
collections/ansible_collections/hawa/platform is the repository itself (see ansible.cfg), so that
directory on sys.path makes the collection importable beside the ones the `ansible` package ships."""

from __future__ import annotations

import sys

from tests.support import REPO_ROOT

COLLECTIONS = str(REPO_ROOT / "collections")

if COLLECTIONS not in sys.path:
    sys.path.append(COLLECTIONS)

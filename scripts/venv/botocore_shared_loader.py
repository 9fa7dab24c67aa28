"""One botocore data loader per process: loaded at start-up by every Python of the project's virtualenv.

Why: Mitogen (plugins/strategy/mitogen_linear.py) runs every module of a playbook run in one Python that lives
for the whole run. Each AWS module builds a new boto3 Session (amazon.aws's ``boto3_conn``), and each new
botocore Session has a data loader of its own, so every task parsed botocore's JSON again: the endpoint
rules and the service's model, about 0.15 CPU-seconds of the 0.28 a read-only module took here. Sharing one
loader per data path makes the second and later clients reuse what the first parsed, exactly as the clients
of one Session always do (the loader's own cache hands every caller the same objects). Measured with 40
``amazon.aws.ec2_vpc_net_info`` tasks on the sandbox: 12.1 s and 11.2 CPU-seconds before, 4.7 s and 3.9 after.

How: scripts/bootstrap.sh copies this file into the virtualenv's site-packages as
``hawa_botocore_shared_loader.py`` and writes ``hawa-venv-hooks.pth`` beside it; site.py runs its ``import``
line at start-up. Nothing is imported then: a finder waits for ``botocore.session`` to be
imported and wraps its ``create_loader`` once it is. A Python outside the project's virtualenv (an execution
environment, a user's own) runs unchanged, only slower. Deleting the .pth file turns this off.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

TARGET = "botocore.session"


def share_loader(session_module: ModuleType) -> None:
    """Make ``botocore.session.create_loader`` hand out one loader per data path (idempotent)."""
    create_loader = session_module.create_loader
    if not getattr(create_loader, "shared_per_process", False):
        shared = functools.lru_cache(maxsize=None)(create_loader)
        shared.shared_per_process = True  # type: ignore[attr-defined]
        session_module.create_loader = shared


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of botocore.session so that share_loader runs after it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_share(module: ModuleType) -> None:
            exec_module(module)
            share_loader(module)

        spec.loader.exec_module = exec_then_share  # type: ignore[method-assign]
        return spec


def install() -> None:
    if TARGET in sys.modules:
        share_loader(sys.modules[TARGET])
    elif not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


install()

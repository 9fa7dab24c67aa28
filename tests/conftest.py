"""Fixtures every suite shares: a sandbox of the test session's own, and AWS clients for it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import cli
from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SandboxConfig
from tests.support import free_ports


def start_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxConfig]:
    """Start a sandbox server on a free port with its own state folder; stop it afterwards."""
    port, edge_port = free_ports(2)
    cfg = SandboxConfig(port=port, state_dir=tmp_path_factory.mktemp("sandbox"), edge_port=edge_port)
    print(cli.up(cfg))
    yield cfg
    cli.down(cfg)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxConfig]:
    """A sandbox server for this test session, on its own port so a user's sandbox is untouched.

    A test module that must see an otherwise empty AWS (e.g. "teardown leaves nothing behind")
    overrides this fixture with a module-scoped one built on start_sandbox().
    """
    yield from start_sandbox(tmp_path_factory)


@pytest.fixture
def aws(sandbox: SandboxConfig) -> Callable[..., Any]:
    """aws("ec2", "us-west-2") -> a boto3 client bound to the test sandbox."""

    def client(service: str, region: str = "us-east-1") -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=sandbox.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    return client


# The longest files (the README walk, about 11 minutes alone and 16 among the others; the molecule scenarios,
# about 8; the eda file, which deploys a stack of its own, about 7), in this order: xdist's loadfile hands each
# of them to a worker of its own, and the other files to the first worker free. `make test` passes
# --no-loadscope-reorder: by default xdist sorts the files by their number of tests, and the long files started
# after many short ones (the eda file last, alone on one worker for minutes). It runs three workers on two
# cores: the suites mostly wait on the sandbox (with two workers about half the CPU was busy), and the README
# walk, the longest path, then has no other long file queued behind it on its worker.
LONGEST_FILES = ("tests/test_readme.py", "tests/roles/test_molecule.py", "tests/eda/test_controller.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first, then the other slow ones: `make test` runs three xdist workers (--dist
    loadfile), and the longest files must start at once, one per worker, rather than finish last."""

    def rank(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::")[0]
        if path in LONGEST_FILES:
            return (0, LONGEST_FILES.index(path))
        return (1 if item.get_closest_marker("slow") else 2, 0)

    items.sort(key=rank)


# The README walk is the longest path of `make test` (about 11 minutes alone): every other file runs beside it,
# on two cores. Under xdist, a worker lowers its own priority (and its sandbox's and playbooks', started after)
# before its first test of another file, so that the walk gets a core whenever it needs one and the other files
# take what it leaves. A worker never raises it back: the walk's worker is niced, too, once it moves on.
CRITICAL_PATH_FILE = LONGEST_FILES[0]
BESIDE_THE_CRITICAL_PATH_NICENESS = 10


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER") or item.nodeid.split("::")[0] == CRITICAL_PATH_FILE:
        return
    if os.getpriority(os.PRIO_PROCESS, 0) < BESIDE_THE_CRITICAL_PATH_NICENESS:
        os.setpriority(os.PRIO_PROCESS, 0, BESIDE_THE_CRITICAL_PATH_NICENESS)

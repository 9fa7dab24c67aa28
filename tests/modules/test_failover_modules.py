"""aurora_global_failover and health_check_gate on the live sandbox (integration): check mode, real,
idempotent, refusals - tests/modules/targets/failover_modules.yml does the work and asserts as it goes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import run_playbook

TARGET = Path("tests/modules/targets/failover_modules.yml")


def test_failover_modules_on_a_live_global_database(sandbox: Any, aws: Callable[..., Any]) -> None:
    prefix = f"fm-{uuid.uuid4().hex[:10]}"
    run = run_playbook(TARGET, sandbox_port=sandbox.port, extra_vars={"fm_prefix": prefix}, timeout=600)
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    # The gates never change anything; the module reports a change only when it moves or detaches a member.
    changed = {t.split(": ", 1)[1] for t in run.changed_tasks()}
    assert {"Switchover to us-west-2 (check mode)", "Switchover to us-west-2", "Detach us-east-1"} <= changed
    assert not {t for t in changed if "again" in t or t.startswith("Gate")}, changed
    for region in ("us-east-1", "us-west-2"):
        left = [
            c
            for c in aws("rds", region).describe_db_clusters()["DBClusters"]
            if c["DBClusterIdentifier"].startswith(prefix)
        ]
        assert left == [], f"clean-up left {left} in {region}"

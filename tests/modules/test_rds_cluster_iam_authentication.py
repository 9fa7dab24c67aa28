"""plugins/modules/rds_cluster_iam_authentication.py against a fake RDS: once, only when it differs, waiting for it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import REPO_ROOT, load_module_file

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "rds_cluster_iam_authentication.py")


class FakeRds:
    """One cluster whose setting turns after `settle` more describes, as AWS's does while the cluster modifies."""

    class exceptions:
        class DBClusterNotFoundFault(Exception):
            pass

    def __init__(self, enabled: bool | None, settle: int = 0) -> None:
        self.enabled, self.settle, self.pending = enabled, settle, None
        self.modifies: list[dict[str, Any]] = []

    def describe_db_clusters(self, aws_retry: bool, DBClusterIdentifier: str) -> dict[str, Any]:
        if self.enabled is None:
            raise self.exceptions.DBClusterNotFoundFault(DBClusterIdentifier)
        status = "available"
        if self.pending is not None:
            if self.settle > 0:
                self.settle -= 1
                status = "modifying"
            else:
                self.enabled, self.pending = self.pending, None
        return {"DBClusters": [{"Status": status, "IAMDatabaseAuthenticationEnabled": self.enabled}]}

    def modify_db_cluster(self, aws_retry: bool, **kwargs: Any) -> None:
        self.modifies.append(kwargs)
        self.pending = kwargs["EnableIAMDatabaseAuthentication"]


def run(rds: FakeRds, enabled: bool = True, check_mode: bool = False, timeout: int = 60) -> dict[str, Any]:
    clock = iter(range(0, 10_000, 5))
    return mod.ensure(rds, "db", enabled, check_mode, True, timeout, sleep=lambda _: None, clock=lambda: next(clock))


def test_turns_it_on_once_and_waits_until_the_cluster_reports_it() -> None:
    rds = FakeRds(enabled=False, settle=2)
    first = run(rds)
    assert first["changed"] and not first["previous_iam_database_authentication_enabled"]
    assert rds.enabled is True and rds.pending is None
    assert rds.modifies == [
        {"DBClusterIdentifier": "db", "EnableIAMDatabaseAuthentication": True, "ApplyImmediately": True}
    ]
    assert run(rds)["changed"] is False
    assert len(rds.modifies) == 1


def test_check_mode_reports_without_modifying_and_off_turns_it_off() -> None:
    rds = FakeRds(enabled=False)
    assert run(rds, check_mode=True)["changed"] and rds.modifies == []
    on = FakeRds(enabled=True)
    off = run(on, enabled=False)
    assert off["changed"] and off["iam_database_authentication_enabled"] is False and on.enabled is False


def test_a_missing_cluster_and_a_cluster_that_never_settles_are_named() -> None:
    with pytest.raises(mod.ClusterNotFound):
        run(FakeRds(enabled=None))
    with pytest.raises(mod.Timeout, match="cluster db still modifying"):
        run(FakeRds(enabled=False, settle=1000), timeout=20)

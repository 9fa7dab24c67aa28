"""plugins/modules/route53_query_logging.py: its helpers against a fake Route 53 (unit)."""

from __future__ import annotations

from typing import Any

from tests.support import REPO_ROOT, load_module_file

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "route53_query_logging.py")

GROUP = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/route53/example.com"
OTHER = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/route53/other"


class _Paginator:
    def __init__(self, configs: list[dict[str, Any]]) -> None:
        self.configs = configs

    def paginate(self, HostedZoneId: str) -> list[dict[str, Any]]:
        # Every zone's configurations, on two pages: the module filters by zone itself.
        return [{"QueryLoggingConfigs": self.configs[:1]}, {"QueryLoggingConfigs": self.configs[1:]}]


class FakeRoute53:
    """Just enough of Route 53's query logging, recording every write."""

    def __init__(self, configs: dict[str, tuple[str, str]] | None = None) -> None:
        self.configs = {
            i: {"Id": i, "HostedZoneId": z, "CloudWatchLogsLogGroupArn": a} for i, (z, a) in (configs or {}).items()
        }
        self.writes: list[tuple[str, str]] = []

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "list_query_logging_configs"
        return _Paginator(list(self.configs.values()))

    def create_query_logging_config(self, aws_retry: bool, HostedZoneId: str, CloudWatchLogsLogGroupArn: str) -> Any:
        config = {
            "Id": f"q{len(self.writes)}",
            "HostedZoneId": HostedZoneId,
            "CloudWatchLogsLogGroupArn": CloudWatchLogsLogGroupArn,
        }
        self.writes.append(("create", CloudWatchLogsLogGroupArn))
        self.configs[config["Id"]] = config
        return {"QueryLoggingConfig": config}

    def delete_query_logging_config(self, aws_retry: bool, Id: str) -> None:
        self.writes.append(("delete", Id))
        del self.configs[Id]


def test_creates_the_zones_configuration_beside_another_zones() -> None:
    r53 = FakeRoute53({"a": ("ZOTHER", OTHER)})
    result = mod.ensure_query_logging(r53, "Z1", "present", GROUP + ":*", check_mode=False)
    assert result["changed"] is True and result["previous"] == {}
    assert result["query_logging_config"]["hosted_zone_id"] == "Z1"
    assert r53.writes == [("create", GROUP + ":*")]


def test_the_same_log_group_with_or_without_the_suffix_is_unchanged() -> None:
    r53 = FakeRoute53({"a": ("Z1", GROUP)})
    for arn in (GROUP, GROUP + ":*"):
        result = mod.ensure_query_logging(r53, "Z1", "present", arn, check_mode=False)
        assert result["changed"] is False
        assert result["query_logging_config"] == {
            "id": "a",
            "hosted_zone_id": "Z1",
            "cloudwatch_logs_log_group_arn": GROUP,
        }
    assert r53.writes == []


def test_another_log_group_is_delete_then_create() -> None:
    r53 = FakeRoute53({"a": ("Z1", OTHER)})
    result = mod.ensure_query_logging(r53, "Z1", "present", GROUP, check_mode=False)
    assert result["changed"] is True
    assert result["previous"]["cloudwatch_logs_log_group_arn"] == OTHER
    assert r53.writes == [("delete", "a"), ("create", GROUP)]


def test_check_mode_reports_without_writing() -> None:
    r53 = FakeRoute53({"a": ("Z1", OTHER)})
    assert mod.ensure_query_logging(r53, "Z1", "present", GROUP, check_mode=True)["changed"] is True
    assert mod.ensure_query_logging(r53, "Z1", "absent", None, check_mode=True)["changed"] is True
    assert r53.writes == []


def test_absent_deletes_only_this_zones_configuration() -> None:
    r53 = FakeRoute53({"a": ("ZOTHER", OTHER), "b": ("Z1", GROUP)})
    result = mod.ensure_query_logging(r53, "Z1", "absent", None, check_mode=False)
    assert result["changed"] is True and result["query_logging_config"] == {}
    assert r53.writes == [("delete", "b")]
    assert mod.ensure_query_logging(r53, "Z1", "absent", None, check_mode=False)["changed"] is False


def test_zone_id_drops_the_prefix() -> None:
    assert mod.zone_id("/hostedzone/Z1") == "Z1"
    assert mod.zone_id("Z1") == "Z1"

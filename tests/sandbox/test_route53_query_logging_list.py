"""ListQueryLoggingConfigs with a HostedZoneId answers that zone's configuration only, as AWS does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _zone_with_logging(route53: Any, logs: Any) -> tuple[str, str]:
    name = f"q{uuid.uuid4().hex[:10]}.example.com"
    zone_id = route53.create_hosted_zone(Name=name, CallerReference=name)["HostedZone"]["Id"].split("/")[-1]
    group = f"/aws/route53/{name}"
    logs.create_log_group(logGroupName=group)
    arn = next(g["arn"] for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"])
    config = route53.create_query_logging_config(HostedZoneId=zone_id, CloudWatchLogsLogGroupArn=arn)
    return zone_id, config["QueryLoggingConfig"]["Id"]


def test_each_zone_lists_its_own_configuration(aws: Callable[..., Any]) -> None:
    route53, logs = aws("route53"), aws("logs", "us-east-1")
    first, first_config = _zone_with_logging(route53, logs)
    second, second_config = _zone_with_logging(route53, logs)
    for zone_id, config_id in ((first, first_config), (second, second_config), (f"/hostedzone/{first}", first_config)):
        listed = route53.list_query_logging_configs(HostedZoneId=zone_id)["QueryLoggingConfigs"]
        assert [c["Id"] for c in listed] == [config_id]
    everything = {c["Id"] for c in route53.list_query_logging_configs()["QueryLoggingConfigs"]}
    assert {first_config, second_config} <= everything


def test_an_unknown_zone_is_no_such_hosted_zone(aws: Callable[..., Any]) -> None:
    with pytest.raises(ClientError, match="NoSuchHostedZone"):
        aws("route53").list_query_logging_configs(HostedZoneId="Z0000000000NOTAZONE")

"""sandbox/services/cloudfront/patches.py: behaviours may target origin groups, as on AWS."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
READS = ["GET", "HEAD", "OPTIONS"]
ALL = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]


def _origin(origin_id: str) -> dict[str, Any]:
    return {
        "Id": origin_id,
        "DomainName": f"{origin_id}.example.com",
        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"},
    }


def _behaviour(target: str, methods: list[str], path: str | None = None) -> dict[str, Any]:
    behaviour: dict[str, Any] = {
        "TargetOriginId": target,
        "ViewerProtocolPolicy": "redirect-to-https",
        "AllowedMethods": {"Quantity": len(methods), "Items": methods},
        "CachePolicyId": CACHING_DISABLED,
    }
    if path:
        behaviour["PathPattern"] = path
    return behaviour


def _config(
    default_target: str = "grp",
    behaviours: list[dict[str, Any]] | None = None,
    members: tuple[str, ...] = ("a", "b"),
    codes: tuple[int, ...] = (500, 502, 503, 504),
) -> dict[str, Any]:
    behaviours = behaviours or []
    return {
        "CallerReference": str(uuid.uuid4()),
        "Comment": "",
        "Enabled": True,
        "Origins": {"Quantity": 3, "Items": [_origin("a"), _origin("b"), _origin("writes")]},
        "OriginGroups": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "grp",
                    "FailoverCriteria": {"StatusCodes": {"Quantity": len(codes), "Items": list(codes)}},
                    "Members": {"Quantity": len(members), "Items": [{"OriginId": m} for m in members]},
                }
            ],
        },
        "DefaultCacheBehavior": _behaviour(default_target, READS),
        "CacheBehaviors": {"Quantity": len(behaviours), "Items": behaviours},
    }


def _error(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_default_behaviour_may_target_an_origin_group(aws: Callable[..., Any]) -> None:
    cf = aws("cloudfront")
    created = cf.create_distribution(DistributionConfig=_config())["Distribution"]
    config = cf.get_distribution_config(Id=created["Id"])["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "grp"
    assert [m["OriginId"] for m in config["OriginGroups"]["Items"][0]["Members"]["Items"]] == ["a", "b"]


def test_update_keeps_a_group_target(aws: Callable[..., Any]) -> None:
    cf = aws("cloudfront")
    created = cf.create_distribution(DistributionConfig=_config(default_target="a"))
    dist_id = created["Distribution"]["Id"]
    current = cf.get_distribution_config(Id=dist_id)
    config = current["DistributionConfig"]
    config["DefaultCacheBehavior"]["TargetOriginId"] = "grp"
    cf.update_distribution(Id=dist_id, IfMatch=current["ETag"], DistributionConfig=config)
    assert (
        cf.get_distribution_config(Id=dist_id)["DistributionConfig"]["DefaultCacheBehavior"]["TargetOriginId"] == "grp"
    )


def test_ordered_behaviours_targeting_a_group_or_an_origin_are_accepted(aws: Callable[..., Any]) -> None:
    cf = aws("cloudfront")
    behaviours = [_behaviour("grp", READS, "/api/read/*"), _behaviour("writes", ALL, "/api/*")]
    created = cf.create_distribution(DistributionConfig=_config(behaviours=behaviours))["Distribution"]
    items = cf.get_distribution_config(Id=created["Id"])["DistributionConfig"]["CacheBehaviors"]["Items"]
    assert [(b["PathPattern"], b["TargetOriginId"]) for b in items] == [("/api/read/*", "grp"), ("/api/*", "writes")]


@pytest.mark.parametrize(
    ("config", "code"),
    [
        pytest.param(_config(default_target="nowhere"), "NoSuchOrigin", id="unknown default target"),
        pytest.param(_config(behaviours=[_behaviour("nowhere", READS, "/x/*")]), "NoSuchOrigin", id="unknown ordered"),
        pytest.param(_config(members=("a", "ghost")), "NoSuchOrigin", id="group member is not an origin"),
        pytest.param(_config(codes=(500, 501)), "InvalidArgument", id="status code not allowed"),
        pytest.param(_config(behaviours=[_behaviour("grp", ALL, "/api/*")]), "InvalidArgument", id="writes to a group"),
    ],
)
def test_invalid_origin_group_references_fail_as_on_aws(
    aws: Callable[..., Any], config: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as exc:
        aws("cloudfront").create_distribution(DistributionConfig=config)
    assert _error(exc) == code

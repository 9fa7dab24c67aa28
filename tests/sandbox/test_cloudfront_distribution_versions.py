"""sandbox/services/cloudfront/patches.py: ETags, IfMatch and disable-before-delete, as on AWS."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _config(enabled: bool) -> dict[str, Any]:
    return {
        "CallerReference": str(uuid.uuid4()),
        "Comment": "v1",
        "Enabled": enabled,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "app",
                    "DomainName": "app.example.com",
                    "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"},
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "app",
            "ViewerProtocolPolicy": "https-only",
            "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
        },
    }


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_update_returns_a_new_etag_and_refuses_a_stale_one(aws: Callable[..., Any]) -> None:
    cf = aws("cloudfront")
    created = cf.create_distribution(DistributionConfig=_config(enabled=True))
    dist_id, first = created["Distribution"]["Id"], created["ETag"]
    config = cf.get_distribution_config(Id=dist_id)["DistributionConfig"]
    config["Comment"] = "v2"
    second = cf.update_distribution(Id=dist_id, IfMatch=first, DistributionConfig=config)["ETag"]
    assert second != first
    assert cf.get_distribution_config(Id=dist_id)["ETag"] == second
    config["Comment"] = "v3"
    with pytest.raises(ClientError) as exc:
        cf.update_distribution(Id=dist_id, IfMatch=first, DistributionConfig=config)
    assert _code(exc) == "PreconditionFailed"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_enabled_distribution_cannot_be_deleted(aws: Callable[..., Any]) -> None:
    cf = aws("cloudfront")
    created = cf.create_distribution(DistributionConfig=_config(enabled=True))
    dist_id = created["Distribution"]["Id"]
    with pytest.raises(ClientError) as exc:
        cf.delete_distribution(Id=dist_id, IfMatch=created["ETag"])
    assert _code(exc) == "DistributionNotDisabled"
    config = cf.get_distribution_config(Id=dist_id)["DistributionConfig"]
    config["Enabled"] = False
    etag = cf.update_distribution(Id=dist_id, IfMatch=created["ETag"], DistributionConfig=config)["ETag"]
    with pytest.raises(ClientError) as exc:
        cf.delete_distribution(Id=dist_id, IfMatch=created["ETag"])
    assert _code(exc) == "PreconditionFailed"
    cf.delete_distribution(Id=dist_id, IfMatch=etag)
    with pytest.raises(ClientError) as exc:
        cf.get_distribution(Id=dist_id)
    assert _code(exc) == "NoSuchDistribution"

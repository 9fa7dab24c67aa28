"""sandbox/services/cloudfront/patches.py: S3 origins keep their OAC, OAC rules as on AWS."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _oac(cf: Any, name: str | None = None) -> str:
    config = {
        "Name": name or f"oac-{uuid.uuid4().hex[:8]}",
        "SigningProtocol": "sigv4",
        "SigningBehavior": "always",
        "OriginAccessControlOriginType": "s3",
    }
    return cf.create_origin_access_control(OriginAccessControlConfig=config)["OriginAccessControl"]["Id"]


def _config(oac_id: str, identity: str = "") -> dict[str, Any]:
    return {
        "CallerReference": str(uuid.uuid4()),
        "Comment": "",
        "Enabled": False,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "static",
                    "DomainName": "bucket.s3.us-east-1.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": identity},
                    "OriginAccessControlId": oac_id,
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "static",
            "ViewerProtocolPolicy": "https-only",
            "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
        },
    }


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_s3_origin_keeps_oac_and_s3_config(aws: Callable[..., Any]) -> None:
    cf = aws("cloudfront")
    oac_id = _oac(cf)
    dist = cf.create_distribution(DistributionConfig=_config(oac_id))["Distribution"]
    origin = cf.get_distribution_config(Id=dist["Id"])["DistributionConfig"]["Origins"]["Items"][0]
    assert origin["OriginAccessControlId"] == oac_id
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert "CustomOriginConfig" not in origin


def test_unknown_oac_is_refused(aws: Callable[..., Any]) -> None:
    with pytest.raises(ClientError) as exc:
        aws("cloudfront").create_distribution(DistributionConfig=_config("E000NOTANOAC"))
    assert _code(exc) == "NoSuchOriginAccessControl"


def test_oac_with_identity_is_refused(aws: Callable[..., Any]) -> None:
    cf = aws("cloudfront")
    with pytest.raises(ClientError) as exc:
        cf.create_distribution(DistributionConfig=_config(_oac(cf), identity="origin-access-identity/cloudfront/E1"))
    assert _code(exc) == "IllegalOriginAccessConfiguration"


def test_oac_names_are_unique(aws: Callable[..., Any]) -> None:
    cf = aws("cloudfront")
    name = f"dup-{uuid.uuid4().hex[:8]}"
    _oac(cf, name)
    with pytest.raises(ClientError) as exc:
        _oac(cf, name)
    assert _code(exc) == "OriginAccessControlAlreadyExists"


def test_oac_in_use_cannot_be_deleted_until_the_distribution_is_gone(aws: Callable[..., Any]) -> None:
    cf = aws("cloudfront")
    oac_id = _oac(cf)
    dist = cf.create_distribution(DistributionConfig=_config(oac_id))
    with pytest.raises(ClientError) as exc:
        cf.delete_origin_access_control(Id=oac_id, IfMatch="any")
    assert _code(exc) == "OriginAccessControlInUse"
    cf.delete_distribution(Id=dist["Distribution"]["Id"], IfMatch=dist["ETag"])
    cf.delete_origin_access_control(Id=oac_id, IfMatch="any")
    listed = cf.list_origin_access_controls()["OriginAccessControlList"].get("Items") or []
    assert oac_id not in [c["Id"] for c in listed]

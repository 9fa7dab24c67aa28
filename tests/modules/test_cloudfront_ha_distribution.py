"""plugins/modules/cloudfront_ha_distribution.py: pure helpers (unit) and the module on the sandbox (integration)."""

from __future__ import annotations

import copy
import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO_ROOT, run_playbook

_spec = importlib.util.spec_from_file_location(
    "cloudfront_ha", REPO_ROOT / "plugins" / "module_utils" / "cloudfront_ha.py"
)
assert _spec and _spec.loader
cf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cf)

TARGET = Path("tests/modules/targets/cloudfront_ha_distribution.yml")
OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]


def _origin(origin_id: str, **overrides: Any) -> dict[str, Any]:
    origin = {
        "id": origin_id,
        "domain_name": f"{origin_id}.example.com",
        "type": "custom",
        "origin_path": "",
        "protocol_policy": "https-only",
        "http_port": 80,
        "https_port": 443,
        "connection_attempts": 1,
        "connection_timeout": 2,
        "read_timeout": 7,
        "keepalive_timeout": 5,
        "origin_access_control_id": None,
    }
    origin.update(overrides)
    return origin


def _behaviour(target: str, path: str | None = None, **overrides: Any) -> dict[str, Any]:
    behaviour = {
        "target": target,
        "viewer_protocol_policy": "redirect-to-https",
        "allowed_methods": ["GET", "HEAD", "OPTIONS"],
        "cached_methods": ["GET", "HEAD"],
        "cache_policy_id": DISABLED,
        "origin_request_policy_id": "",
        "compress": True,
    }
    if path is not None:
        behaviour["path_pattern"] = path
    behaviour.update(overrides)
    return behaviour


def _params(**overrides: Any) -> dict[str, Any]:
    params = {
        "comment": "c",
        "enabled": True,
        "price_class": "PriceClass_100",
        "http_version": "http2and3",
        "ipv6_enabled": True,
        "aliases": [],
        "acm_certificate_arn": "",
        "minimum_protocol_version": "TLSv1.2_2021",
        "origins": [
            _origin("primary"),
            _origin("secondary"),
            _origin("writes"),
            _origin("static", type="s3", domain_name="b.s3.us-east-1.amazonaws.com", origin_access_control_id="OAC1"),
        ],
        "origin_groups": [{"id": "app", "primary": "primary", "secondary": "secondary", "status_codes": [504, 500]}],
        "default_cache_behavior": _behaviour("app"),
        "cache_behaviors": [
            _behaviour("static", "/static/*", allowed_methods=["HEAD", "GET"], cache_policy_id=OPTIMIZED),
            _behaviour("writes", "/api/*", allowed_methods=ALL_METHODS),
        ],
    }
    params.update(overrides)
    return params


def _validate(params: dict[str, Any]) -> None:
    cf.validate_spec(
        params["origins"], params["origin_groups"], params["default_cache_behavior"], params["cache_behaviors"]
    )


# --- unit: validation ------------------------------------------------------------------------------


def test_valid_spec_passes() -> None:
    _validate(_params())


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        pytest.param(
            {"default_cache_behavior": _behaviour("ghost")}, "neither an origin nor an origin group", id="target"
        ),
        pytest.param(
            {"cache_behaviors": [_behaviour("app", "/api/*", allowed_methods=ALL_METHODS)]},
            "CloudFront fails over only GET, HEAD and OPTIONS",
            id="writes to group",
        ),
        pytest.param(
            {"origin_groups": [{"id": "app", "primary": "primary", "secondary": "ghost", "status_codes": [500]}]},
            "origin_groups[app].secondary",
            id="unknown member",
        ),
        pytest.param(
            {"origin_groups": [{"id": "app", "primary": "primary", "secondary": "secondary", "status_codes": [501]}]},
            "status_codes",
            id="bad status code",
        ),
        pytest.param(
            {
                "origin_groups": [
                    {"id": "primary", "primary": "primary", "secondary": "secondary", "status_codes": [500]}
                ]
            },
            "already used",
            id="group id collides",
        ),
        pytest.param(
            {"cache_behaviors": [_behaviour("writes", "/x", allowed_methods=["GET", "POST"])]},
            "not a set CloudFront accepts",
            id="method set",
        ),
        pytest.param(
            {"cache_behaviors": [_behaviour("writes", "/x"), _behaviour("writes", "/x")]},
            "duplicate path_pattern",
            id="duplicate path",
        ),
        pytest.param(
            {
                "origins": [_origin("s", type="s3")],
                "origin_groups": [],
                "default_cache_behavior": _behaviour("s"),
                "cache_behaviors": [],
            },
            "origin_access_control_id is required",
            id="s3 no oac",
        ),
        pytest.param({"origins": [_origin("a"), _origin("a")]}, "duplicate id", id="duplicate origin"),
    ],
)
def test_invalid_spec_names_the_field_and_the_fix(overrides: dict[str, Any], fragment: str) -> None:
    params = _params(**overrides)
    with pytest.raises(cf.SpecError, match=None) as exc:
        _validate(params)
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("connection_attempts", 1, True),
        ("connection_attempts", 4, False),
        ("connection_timeout", 0, False),
        ("connection_timeout", 10, True),
        ("read_timeout", 121, False),
        ("read_timeout", 120, True),
    ],
)
def test_origin_ranges(key: str, value: int, ok: bool) -> None:
    origins = [_origin("a", **{key: value})]
    if ok:
        cf.check_origin_ranges(origins)
    else:
        with pytest.raises(cf.SpecError, match=f"origins\\[a\\].{key}={value} is out of range"):
            cf.check_origin_ranges(origins)


# --- unit: building and normalising ------------------------------------------------------------------


def test_build_config_shapes_the_api_request() -> None:
    config = cf.build_config(_params(), "ref")
    assert config["CallerReference"] == "ref"
    primary = config["Origins"]["Items"][0]
    assert primary["ConnectionAttempts"] == 1
    assert primary["ConnectionTimeout"] == 2
    assert primary["CustomOriginConfig"]["OriginReadTimeout"] == 7
    static = config["Origins"]["Items"][3]
    assert static["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert static["OriginAccessControlId"] == "OAC1"
    assert "CustomOriginConfig" not in static
    group = config["OriginGroups"]["Items"][0]
    assert group["FailoverCriteria"]["StatusCodes"] == {"Quantity": 2, "Items": [500, 504]}
    assert group["Members"]["Items"] == [{"OriginId": "primary"}, {"OriginId": "secondary"}]
    static_behaviour = config["CacheBehaviors"]["Items"][0]
    assert static_behaviour["AllowedMethods"]["Items"] == ["GET", "HEAD"]
    assert "OriginRequestPolicyId" not in static_behaviour
    assert config["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1"}
    assert config["Aliases"] == {"Quantity": 0}


def test_acm_certificate_switches_off_the_default_certificate() -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    config = cf.build_config(_params(acm_certificate_arn=arn, aliases=["www.example.com"]), "ref")
    assert config["ViewerCertificate"]["ACMCertificateArn"] == arn
    assert config["ViewerCertificate"]["CloudFrontDefaultCertificate"] is False
    assert config["ViewerCertificate"]["SSLSupportMethod"] == "sni-only"
    assert config["Aliases"] == {"Quantity": 1, "Items": ["www.example.com"]}


def test_origin_custom_headers_are_sent_and_shown_by_digest_only() -> None:
    secret = "s3cr3t-origin-verify-value"
    origins = [_origin("primary", custom_headers={"X-Origin-Verify": secret}), *_params()["origins"][1:]]
    config = cf.build_config(_params(origins=origins), "ref")
    assert config["Origins"]["Items"][0]["CustomHeaders"] == {
        "Quantity": 1,
        "Items": [{"HeaderName": "X-Origin-Verify", "HeaderValue": secret}],
    }
    assert config["Origins"]["Items"][1]["CustomHeaders"] == {"Quantity": 0}
    shown = cf.normalize_config(config)
    assert secret not in str(shown)
    (primary,) = [o for o in shown["origins"] if o["id"] == "primary"]
    assert primary["custom_headers"] == {"X-Origin-Verify": cf.header_digest(secret)}
    # A new value (a rotated secret) is a change; the same value is none.
    rotated = [_origin("primary", custom_headers={"X-Origin-Verify": "rotated"}), *_params()["origins"][1:]]
    current = _as_returned_by_api(config)
    assert cf.config_differences(current, cf.build_config(_params(origins=rotated), "ref")) == ["origins"]
    assert cf.config_differences(current, config) == []


def _as_returned_by_api(config: dict[str, Any]) -> dict[str, Any]:
    """What GetDistributionConfig answers: extra fields, defaults filled in, lists reordered."""
    returned = copy.deepcopy(config)
    returned["Origins"]["Items"].reverse()
    returned["Logging"] = {"Enabled": False, "IncludeCookies": False, "Bucket": "", "Prefix": ""}
    returned["ViewerCertificate"].update({"IAMCertificateId": "", "CertificateSource": "cloudfront"})
    for behaviour in [returned["DefaultCacheBehavior"], *returned["CacheBehaviors"]["Items"]]:
        behaviour["AllowedMethods"]["Items"].reverse()
        behaviour["ForwardedValues"] = {"QueryString": False, "Cookies": {"Forward": "none"}}
        behaviour.setdefault("OriginRequestPolicyId", "")
    returned["OriginGroups"]["Items"][0]["FailoverCriteria"]["StatusCodes"]["Items"].reverse()
    return returned


def test_normalised_config_ignores_order_defaults_and_extras() -> None:
    desired = cf.build_config(_params(), "ref")
    assert cf.config_differences(_as_returned_by_api(desired), desired) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"comment": "other"}, "comment"),
        ({"enabled": False}, "enabled"),
        ({"origins": [_origin("primary", read_timeout=9), *_params()["origins"][1:]]}, "origins"),
        (
            {"origin_groups": [{"id": "app", "primary": "secondary", "secondary": "primary", "status_codes": [500]}]},
            "origin_groups",
        ),
        ({"default_cache_behavior": _behaviour("primary")}, "default_cache_behavior"),
        ({"cache_behaviors": list(reversed(_params()["cache_behaviors"]))}, "cache_behaviors"),
        ({"price_class": "PriceClass_All"}, "price_class"),
    ],
)
def test_each_managed_change_is_detected(overrides: dict[str, Any], field: str) -> None:
    current = _as_returned_by_api(cf.build_config(_params(), "ref"))
    assert cf.config_differences(current, cf.build_config(_params(**overrides), "ref")) == [field]


def test_merge_keeps_unmanaged_settings_and_the_caller_reference() -> None:
    current = _as_returned_by_api(cf.build_config(_params(), "original-ref"))
    current["Logging"]["Enabled"] = True
    current["WebACLId"] = "acl"
    desired = cf.build_config(_params(comment="new"), "ignored")
    merged = cf.merge_config(current, desired)
    assert merged["Comment"] == "new"
    assert merged["Logging"]["Enabled"] is True
    assert merged["WebACLId"] == "acl"
    assert merged["CallerReference"] == "original-ref"
    # Behaviours are replaced whole: nothing of the old ForwardedValues leaks into an update.
    assert "ForwardedValues" not in merged["DefaultCacheBehavior"]


# --- unit: standard logging --------------------------------------------------------------------------

LOGGING = {"bucket": "hawa-logs", "prefix": "cloudfront/", "include_cookies": False}


def test_logging_is_built_with_the_bucket_domain_name() -> None:
    config = cf.build_config(_params(logging=LOGGING), "ref")
    assert config["Logging"] == {
        "Enabled": True,
        "IncludeCookies": False,
        "Bucket": "hawa-logs.s3.amazonaws.com",
        "Prefix": "cloudfront/",
    }
    same = cf.build_config(_params(logging=dict(LOGGING, bucket="hawa-logs.s3.amazonaws.com")), "ref")
    assert same["Logging"] == config["Logging"]


def test_an_empty_bucket_turns_logging_off() -> None:
    config = cf.build_config(_params(logging=dict(LOGGING, bucket="", include_cookies=True)), "ref")
    assert config["Logging"] == {"Enabled": False, "IncludeCookies": False, "Bucket": "", "Prefix": ""}


def test_without_the_option_logging_is_neither_built_nor_compared_nor_merged() -> None:
    desired = cf.build_config(_params(), "ref")
    assert "Logging" not in desired
    current = _as_returned_by_api(cf.build_config(_params(), "ref"))
    current["Logging"] = cf.build_config(_params(logging=LOGGING), "ref")["Logging"]
    assert cf.config_differences(current, desired) == []
    assert cf.merge_config(current, desired)["Logging"]["Bucket"] == "hawa-logs.s3.amazonaws.com"


@pytest.mark.parametrize(
    "logging",
    [LOGGING, dict(LOGGING, prefix="cf/"), dict(LOGGING, include_cookies=True), dict(LOGGING, bucket="")],
)
def test_each_logging_change_is_detected_and_merged(logging: dict[str, Any]) -> None:
    current = _as_returned_by_api(cf.build_config(_params(), "ref"))
    current["Logging"] = {
        "Enabled": "true",
        "IncludeCookies": "false",
        "Bucket": "other.s3.amazonaws.com",
        "Prefix": "x/",
    }
    desired = cf.build_config(_params(logging=logging), "ref")
    assert cf.config_differences(current, desired) == ["logging"]
    merged = cf.merge_config(current, desired)
    assert merged["Logging"] == desired["Logging"]
    assert cf.config_differences(merged, desired) == []


def test_disabled_logging_compares_equal_whatever_its_leftover_fields() -> None:
    current = _as_returned_by_api(cf.build_config(_params(), "ref"))
    current["Logging"] = {"Enabled": False, "IncludeCookies": False, "Bucket": "old.s3.amazonaws.com", "Prefix": "p/"}
    assert cf.config_differences(current, cf.build_config(_params(logging=dict(LOGGING, bucket="")), "ref")) == []


# --- unit: the web ACL ---------------------------------------------------------------------------------

WEB_ACL = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/hawa-prod-edge/0c0ffee0"


def test_without_the_option_the_web_acl_is_neither_built_nor_compared_nor_merged() -> None:
    desired = cf.build_config(_params(), "ref")
    assert "WebACLId" not in desired
    current = _as_returned_by_api(cf.build_config(_params(), "ref"))
    current["WebACLId"] = WEB_ACL
    assert cf.config_differences(current, desired) == []
    assert cf.merge_config(current, desired)["WebACLId"] == WEB_ACL


@pytest.mark.parametrize(("live", "wanted"), [("", WEB_ACL), (WEB_ACL, ""), (WEB_ACL, WEB_ACL + "-2")])
def test_each_web_acl_change_is_detected_and_merged(live: str, wanted: str) -> None:
    current = _as_returned_by_api(cf.build_config(_params(), "ref"))
    current["WebACLId"] = live
    desired = cf.build_config(_params(web_acl_id=wanted), "ref")
    assert desired["WebACLId"] == wanted
    assert cf.config_differences(current, desired) == ["web_acl_id"]
    merged = cf.merge_config(current, desired)
    assert merged["WebACLId"] == wanted and cf.config_differences(merged, desired) == []


def test_tag_changes() -> None:
    assert cf.tag_changes({"a": "1", "b": "2"}, {"a": "1", "c": "3"}, purge=True) == ({"c": "3"}, ["b"])
    assert cf.tag_changes({"a": "1", "b": "2"}, {"a": "9"}, purge=False) == ({"a": "9"}, [])
    assert cf.tags_from_api(cf.tags_to_api({"k": "v"})) == {"k": "v"}


# --- integration: the module on the sandbox ------------------------------------------------------------


def test_module_create_modify_delete(sandbox: Any, aws: Callable[..., Any]) -> None:
    name = f"cfha-{uuid.uuid4().hex[:10]}"
    run = run_playbook(TARGET, sandbox_port=sandbox.port, extra_vars={"target_name": name}, args=["--diff"])
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    # Exactly the three check-mode previews and the five real changes; no repeat reports a change.
    assert sorted(run.changed_tasks()) == sorted(
        f"us-east-1: {task}"
        for task in (
            "Origin access control for the S3 origin",
            "Create (check mode)",
            "Create",
            "Modify (check mode)",
            "Modify",
            "Delete (check mode)",
            "Delete",
            "Cleanup | origin access control",
        )
    )
    client = aws("cloudfront")
    for summary in client.list_distributions()["DistributionList"].get("Items") or []:
        assert client.get_distribution_config(Id=summary["Id"])["DistributionConfig"]["CallerReference"] != name

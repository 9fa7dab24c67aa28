# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers for the cloudfront_ha_distribution module: spec -> DistributionConfig, and a
normalised view of a DistributionConfig that two configurations can be compared on.

No boto3 and no AnsibleModule here: every function takes and returns plain values, so the
unit tests exercise them directly.
"""

from __future__ import annotations

import copy
import hashlib

# The method sets CloudFront accepts, as frozensets (AWS: AllowedMethods must be one of these).
ALLOWED_METHOD_SETS = (
    frozenset({"GET", "HEAD"}),
    frozenset({"GET", "HEAD", "OPTIONS"}),
    frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}),
)
CACHED_METHOD_SETS = (frozenset({"GET", "HEAD"}), frozenset({"GET", "HEAD", "OPTIONS"}))
# Only reads are failed over, so a behaviour that targets an origin group may allow only these.
ORIGIN_GROUP_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FAILOVER_STATUS_CODES = frozenset({400, 403, 404, 416, 500, 502, 503, 504})
# Canonical method order for the API (CloudFront returns them in no guaranteed order).
_METHOD_ORDER = ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE")

# Top-level DistributionConfig keys this module manages; the rest are preserved on update.
MANAGED_KEYS = (
    "Aliases",
    "Origins",
    "OriginGroups",
    "DefaultCacheBehavior",
    "CacheBehaviors",
    "Comment",
    "PriceClass",
    "Enabled",
    "ViewerCertificate",
    "HttpVersion",
    "IsIPV6Enabled",
)

# Managed only when the spec sets them (logging: null leaves the distribution's logging as it is; web_acl_id: null
# its web ACL).
OPTIONAL_MANAGED_KEYS = ("Logging", "WebACLId")
# Standard (legacy) logging names the bucket by its global S3 domain name.
S3_LOG_BUCKET_SUFFIX = ".s3.amazonaws.com"


class SpecError(ValueError):
    """The declarative spec is invalid; the message names the field and the fix."""


def _sorted_methods(methods):
    return [m for m in _METHOD_ORDER if m in set(methods)]


def _items(container):
    if not container:
        return []
    return list(container.get("Items") or [])


def _listing(items):
    items = list(items)
    result = {"Quantity": len(items)}
    if items:
        result["Items"] = items
    return result


def validate_spec(origins, origin_groups, default_behavior, behaviors):
    """Check references and AWS limits before any API call. Raises SpecError."""
    origin_ids = [o["id"] for o in origins]
    if not origin_ids:
        raise SpecError("origins: at least one origin is required")
    duplicates = {i for i in origin_ids if origin_ids.count(i) > 1}
    if duplicates:
        raise SpecError(f"origins: duplicate id(s) {sorted(duplicates)}; every origin id must be unique")
    group_ids = []
    for group in origin_groups:
        if group["id"] in origin_ids or group["id"] in group_ids:
            raise SpecError(f"origin_groups: id {group['id']!r} is already used by an origin or another group")
        for role in ("primary", "secondary"):
            if group[role] not in origin_ids:
                raise SpecError(
                    f"origin_groups[{group['id']}].{role}: {group[role]!r} is not an origin id; use one of {origin_ids}"
                )
        if group["primary"] == group["secondary"]:
            raise SpecError(f"origin_groups[{group['id']}]: primary and secondary must be different origins")
        bad = sorted(set(group["status_codes"]) - FAILOVER_STATUS_CODES)
        if bad or not group["status_codes"]:
            raise SpecError(
                f"origin_groups[{group['id']}].status_codes: {bad or 'empty'} not allowed; "
                f"choose from {sorted(FAILOVER_STATUS_CODES)}"
            )
        group_ids.append(group["id"])
    for origin in origins:
        if origin["type"] == "s3" and not origin.get("origin_access_control_id"):
            raise SpecError(
                f"origins[{origin['id']}].origin_access_control_id is required for an s3 origin "
                "(the bucket is private; CloudFront reaches it through origin access control)"
            )
    paths = [b["path_pattern"] for b in behaviors]
    duplicates = {p for p in paths if paths.count(p) > 1}
    if duplicates:
        raise SpecError(f"cache_behaviors: duplicate path_pattern(s) {sorted(duplicates)}")
    for label, behavior in [("default_cache_behavior", default_behavior)] + [
        (f"cache_behaviors[{b['path_pattern']}]", b) for b in behaviors
    ]:
        target = behavior["target"]
        if target not in origin_ids and target not in group_ids:
            raise SpecError(f"{label}.target: {target!r} is neither an origin nor an origin group id")
        allowed = frozenset(behavior["allowed_methods"])
        if allowed not in ALLOWED_METHOD_SETS:
            raise SpecError(
                f"{label}.allowed_methods: {sorted(allowed)} is not a set CloudFront accepts; use "
                "[GET, HEAD], [GET, HEAD, OPTIONS] or all seven (GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE)"
            )
        if frozenset(behavior["cached_methods"]) not in CACHED_METHOD_SETS:
            raise SpecError(f"{label}.cached_methods: use [GET, HEAD] or [GET, HEAD, OPTIONS]")
        if target in group_ids and not allowed <= ORIGIN_GROUP_METHODS:
            raise SpecError(
                f"{label}: targets origin group {target!r} but allows {sorted(allowed - ORIGIN_GROUP_METHODS)}; "
                "CloudFront fails over only GET, HEAD and OPTIONS, so writes need a behaviour whose target "
                "is a single origin (e.g. a DNS name that fails over itself)"
            )


# AWS limits on origin timeouts (seconds) and attempts.
ORIGIN_LIMITS = {
    "connection_attempts": (1, 3),
    "connection_timeout": (1, 10),
    "read_timeout": (1, 120),
    "keepalive_timeout": (1, 120),
}


def check_origin_ranges(origins):
    """Raise SpecError for an origin timeout or attempt count outside what CloudFront accepts."""
    for origin in origins:
        # Read and keep-alive timeouts exist only for custom origins.
        keys = ("connection_attempts", "connection_timeout") if origin["type"] == "s3" else tuple(ORIGIN_LIMITS)
        for key in keys:
            low, high = ORIGIN_LIMITS[key]
            if not low <= origin[key] <= high:
                raise SpecError(f"origins[{origin['id']}].{key}={origin[key]} is out of range: use {low}-{high}")


def _build_origin(origin):
    result = {
        "Id": origin["id"],
        "DomainName": origin["domain_name"],
        "OriginPath": origin.get("origin_path") or "",
        "CustomHeaders": _listing(
            [
                {"HeaderName": name, "HeaderValue": value}
                for name, value in sorted((origin.get("custom_headers") or {}).items())
            ]
        ),
        "ConnectionAttempts": origin["connection_attempts"],
        "ConnectionTimeout": origin["connection_timeout"],
        "OriginShield": {"Enabled": False},
    }
    if origin["type"] == "s3":
        result["S3OriginConfig"] = {"OriginAccessIdentity": ""}
        result["OriginAccessControlId"] = origin["origin_access_control_id"]
    else:
        result["CustomOriginConfig"] = {
            "HTTPPort": origin["http_port"],
            "HTTPSPort": origin["https_port"],
            "OriginProtocolPolicy": origin["protocol_policy"],
            "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
            "OriginReadTimeout": origin["read_timeout"],
            "OriginKeepaliveTimeout": origin["keepalive_timeout"],
        }
    return result


def _build_behavior(behavior, path_pattern=None):
    allowed = _sorted_methods(behavior["allowed_methods"])
    cached = _sorted_methods(behavior["cached_methods"])
    result = {}
    if path_pattern is not None:
        result["PathPattern"] = path_pattern
    result.update(
        {
            "TargetOriginId": behavior["target"],
            "ViewerProtocolPolicy": behavior["viewer_protocol_policy"],
            "AllowedMethods": {
                "Quantity": len(allowed),
                "Items": allowed,
                "CachedMethods": {"Quantity": len(cached), "Items": cached},
            },
            "Compress": behavior["compress"],
            "CachePolicyId": behavior["cache_policy_id"],
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
            "TrustedKeyGroups": {"Enabled": False, "Quantity": 0},
            "SmoothStreaming": False,
            "LambdaFunctionAssociations": {"Quantity": 0},
            "FunctionAssociations": {"Quantity": 0},
            "FieldLevelEncryptionId": "",
        }
    )
    if behavior.get("origin_request_policy_id"):
        result["OriginRequestPolicyId"] = behavior["origin_request_policy_id"]
    return result


def _viewer_certificate(acm_certificate_arn, minimum_protocol_version):
    if acm_certificate_arn:
        return {
            "CloudFrontDefaultCertificate": False,
            "ACMCertificateArn": acm_certificate_arn,
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": minimum_protocol_version,
        }
    # The *.cloudfront.net certificate only supports TLSv1 as its minimum (AWS rejects anything else).
    return {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1"}


def log_bucket_domain(bucket):
    """The Logging.Bucket CloudFront expects (<name>.s3.amazonaws.com) from a bucket name or that domain name."""
    if not bucket:
        return ""
    return bucket if bucket.endswith(S3_LOG_BUCKET_SUFFIX) else bucket + S3_LOG_BUCKET_SUFFIX


def _build_logging(logging):
    """Standard logging to an S3 bucket; an empty bucket turns it off (CloudFront wants every field either way)."""
    bucket = log_bucket_domain(logging.get("bucket") or "")
    return {
        "Enabled": bool(bucket),
        "IncludeCookies": bool(bucket) and bool(logging.get("include_cookies")),
        "Bucket": bucket,
        "Prefix": (logging.get("prefix") or "") if bucket else "",
    }


def build_config(spec, caller_reference):
    """The managed part of a DistributionConfig, as the API expects it, from the module's spec."""
    config = _build_managed_config(spec, caller_reference)
    if spec.get("logging") is not None:
        config["Logging"] = _build_logging(spec["logging"])
    if spec.get("web_acl_id") is not None:
        config["WebACLId"] = spec["web_acl_id"]
    return config


def _build_managed_config(spec, caller_reference):
    return {
        "CallerReference": caller_reference,
        "Aliases": _listing(sorted(spec["aliases"])),
        "Origins": _listing(_build_origin(o) for o in spec["origins"]),
        "OriginGroups": _listing(
            {
                "Id": g["id"],
                "FailoverCriteria": {"StatusCodes": _listing(sorted(g["status_codes"]))},
                "Members": _listing([{"OriginId": g["primary"]}, {"OriginId": g["secondary"]}]),
            }
            for g in spec["origin_groups"]
        ),
        "DefaultCacheBehavior": _build_behavior(spec["default_cache_behavior"]),
        "CacheBehaviors": _listing(_build_behavior(b, b["path_pattern"]) for b in spec["cache_behaviors"]),
        "Comment": spec["comment"],
        "PriceClass": spec["price_class"],
        "Enabled": spec["enabled"],
        "ViewerCertificate": _viewer_certificate(spec["acm_certificate_arn"], spec["minimum_protocol_version"]),
        "HttpVersion": spec["http_version"],
        "IsIPV6Enabled": spec["ipv6_enabled"],
    }


def merge_config(current, desired):
    """The config to send on update: the current one with every managed key replaced by ours.

    Keys we do not manage (Restrictions, CustomErrorResponses, ...; Logging and WebACLId unless the spec
    sets them) keep what the distribution has, so the module never touches attributes the user did not set.
    """
    merged = copy.deepcopy(current)
    for key in MANAGED_KEYS + tuple(k for k in OPTIONAL_MANAGED_KEYS if k in desired):
        merged[key] = copy.deepcopy(desired[key])
    merged["CallerReference"] = current["CallerReference"]
    return merged


def header_digest(value):
    """How a custom header's value appears in results and diffs: enough to see that it changed, not what it is."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


def _norm_origin(origin):
    result = {
        "id": origin["Id"],
        "domain_name": origin["DomainName"],
        "origin_path": origin.get("OriginPath") or "",
        "connection_attempts": origin.get("ConnectionAttempts", 3),
        "connection_timeout": origin.get("ConnectionTimeout", 10),
        # Values are secrets (an origin-verify header): compared and shown by digest only.
        "custom_headers": {
            header["HeaderName"]: header_digest(header["HeaderValue"]) for header in _items(origin.get("CustomHeaders"))
        },
    }
    custom = origin.get("CustomOriginConfig")
    if custom:
        result.update(
            {
                "type": "custom",
                "http_port": custom.get("HTTPPort"),
                "https_port": custom.get("HTTPSPort"),
                "protocol_policy": custom.get("OriginProtocolPolicy"),
                "read_timeout": custom.get("OriginReadTimeout", 30),
                "keepalive_timeout": custom.get("OriginKeepaliveTimeout", 5),
            }
        )
    else:
        result.update({"type": "s3", "origin_access_control_id": origin.get("OriginAccessControlId") or ""})
    return result


def _norm_behavior(behavior):
    methods = behavior.get("AllowedMethods") or {}
    return {
        "path_pattern": behavior.get("PathPattern"),
        "target": behavior["TargetOriginId"],
        "viewer_protocol_policy": behavior["ViewerProtocolPolicy"],
        "allowed_methods": _sorted_methods(_items(methods) or ["GET", "HEAD"]),
        "cached_methods": _sorted_methods(_items(methods.get("CachedMethods")) or ["GET", "HEAD"]),
        "compress": bool(behavior.get("Compress", False)),
        "cache_policy_id": behavior.get("CachePolicyId") or "",
        "origin_request_policy_id": behavior.get("OriginRequestPolicyId") or "",
    }


def _flag(value):
    # The API's booleans; a stored configuration may hold them as XML text.
    return value is True or str(value).lower() == "true"


def _norm_logging(logging):
    if not _flag(logging.get("Enabled")):
        return {"bucket": "", "prefix": "", "include_cookies": False}
    return {
        "bucket": log_bucket_domain(logging.get("Bucket") or ""),
        "prefix": logging.get("Prefix") or "",
        "include_cookies": _flag(logging.get("IncludeCookies")),
    }


def normalize_config(config):
    """A comparable, snake_case view of the managed part of a DistributionConfig.

    Order is kept where CloudFront gives it meaning (ordered cache behaviours are matched first
    to last; group members are primary then secondary) and dropped where it has none (origins,
    aliases, methods, status codes).
    """
    certificate = config.get("ViewerCertificate") or {}
    acm = certificate.get("ACMCertificateArn") or ""
    normalized = {
        "aliases": sorted(_items(config.get("Aliases"))),
        "origins": sorted((_norm_origin(o) for o in _items(config.get("Origins"))), key=lambda o: o["id"]),
        "origin_groups": sorted(
            (
                {
                    "id": g["Id"],
                    "members": [m["OriginId"] for m in _items(g.get("Members"))],
                    "status_codes": sorted(int(c) for c in _items(g.get("FailoverCriteria", {}).get("StatusCodes"))),
                }
                for g in _items(config.get("OriginGroups"))
            ),
            key=lambda g: g["id"],
        ),
        "default_cache_behavior": _norm_behavior(config["DefaultCacheBehavior"]),
        "cache_behaviors": [_norm_behavior(b) for b in _items(config.get("CacheBehaviors"))],
        "comment": config.get("Comment") or "",
        "price_class": config.get("PriceClass") or "PriceClass_All",
        "enabled": bool(config.get("Enabled")),
        "acm_certificate_arn": acm,
        "minimum_protocol_version": certificate.get("MinimumProtocolVersion") or "TLSv1",
        "http_version": config.get("HttpVersion") or "http2",
        "ipv6_enabled": bool(config.get("IsIPV6Enabled")),
        # A configuration without Logging has it off (CloudFront's default).
        "logging": _norm_logging(config.get("Logging") or {}),
        # A WAFv2 web ACL's ARN; none is "".
        "web_acl_id": config.get("WebACLId") or "",
    }
    return normalized


def config_differences(current, desired):
    """Names of the normalised fields that differ (for the module's `diff` and messages)."""
    before, after = normalize_config(current), normalize_config(desired)
    # A spec without logging (or without a web ACL) leaves the live one alone: not compared.
    optional = {"logging": "Logging", "web_acl_id": "WebACLId"}
    compared = [key for key in after if key not in optional or optional[key] in desired]
    return sorted(key for key in compared if before.get(key) != after[key])


def find_distribution(client, name):
    """(distribution summary, config, etag) of the distribution whose CallerReference is name, else Nones."""
    paginator = client.get_paginator("list_distributions")
    for summary in paginator.paginate().build_full_result().get("DistributionList", {}).get("Items") or []:
        response = client.get_distribution_config(aws_retry=True, Id=summary["Id"])
        if response["DistributionConfig"].get("CallerReference") == name:
            return summary, response["DistributionConfig"], response["ETag"]
    return None, None, None


def tags_to_api(tags):
    return {"Items": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}


def tags_from_api(tags):
    return {t["Key"]: t.get("Value", "") for t in (tags or {}).get("Items") or []}


def tag_changes(current, desired, purge):
    """(tags to set, keys to remove) to go from current to desired."""
    to_set = {k: v for k, v in desired.items() if current.get(k) != v}
    to_remove = sorted(k for k in current if k not in desired) if purge else []
    return to_set, to_remove

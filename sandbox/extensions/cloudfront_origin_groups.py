"""CloudFront cache behaviours may target an origin group, as AWS documents.

moto checks only the default cache behaviour's ``TargetOriginId``, and only against the plain
origins, so a default behaviour that targets an origin group fails with ``NoSuchOrigin`` while
an ordered behaviour that targets nothing at all is accepted. AWS resolves every behaviour's
target against the origins *and* the origin groups, requires each group to have exactly two
members that are origins of the distribution, and lets a behaviour that targets a group allow
only GET, HEAD and OPTIONS (origin failover never replays a write). This extension restores
those rules for CreateDistribution(WithTags) and UpdateDistribution.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches

# A behaviour that targets an origin group may allow only these methods (AWS: "origin failover").
GROUP_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VALID_STATUS_CODES = frozenset({400, 403, 404, 416, 500, 502, 503, 504})


def _items(container: Any) -> list[Any]:
    if not isinstance(container, dict):
        return []
    items = container.get("Items") or []
    return items if isinstance(items, list) else [items]


def validate(config: dict[str, Any]) -> None:
    """Raise the error AWS would for origin-group references in a DistributionConfig (plain dicts)."""
    from moto.cloudfront.exceptions import CloudFrontException, OriginDoesNotExist

    origin_ids = {o["Id"] for o in _items(config.get("Origins"))}
    groups = _items(config.get("OriginGroups"))
    group_ids = set()
    for group in groups:
        members = [m.get("OriginId") for m in _items(group.get("Members"))]
        if len(members) != 2:
            raise CloudFrontException(
                "InvalidArgument", f"Origin group {group.get('Id')} must have exactly 2 members, got {len(members)}."
            )
        if any(m not in origin_ids for m in members):
            raise OriginDoesNotExist
        codes = [int(c) for c in _items(group.get("FailoverCriteria", {}).get("StatusCodes"))]
        if not codes or any(c not in VALID_STATUS_CODES for c in codes):
            raise CloudFrontException(
                "InvalidArgument",
                f"Origin group {group.get('Id')}: FailoverCriteria status codes must be among "
                f"{sorted(VALID_STATUS_CODES)}.",
            )
        group_ids.add(group["Id"])
    behaviours = [config.get("DefaultCacheBehavior") or {}, *_items(config.get("CacheBehaviors"))]
    for behaviour in behaviours:
        target = behaviour.get("TargetOriginId")
        if target not in origin_ids | group_ids:
            raise OriginDoesNotExist
        if target in group_ids:
            methods = set(_items(behaviour.get("AllowedMethods"))) or {"GET", "HEAD"}
            if not methods <= GROUP_METHODS:
                raise CloudFrontException(
                    "InvalidArgument",
                    f"The cache behavior targeting origin group {target} allows {sorted(methods - GROUP_METHODS)}: "
                    "a behavior that targets an origin group may allow only GET, HEAD and OPTIONS.",
                )


def install(_app: Any) -> None:
    from moto.cloudfront import models

    original_init = models.DistributionConfig.__init__

    def __init__(self: Any, config: dict[str, Any]) -> None:
        validate(config)
        default = config.get("DefaultCacheBehavior") or {}
        target = default.get("TargetOriginId")
        group_ids = {g["Id"] for g in _items(config.get("OriginGroups"))}
        if target in group_ids:
            # moto's own check knows only origins: hand it one, then restore the real (validated) target.
            default["TargetOriginId"] = _items(config["Origins"])[0]["Id"]
            original_init(self, config)
            self.DefaultCacheBehavior.target_origin_id = target
        else:
            original_init(self, config)

    patches.patch(models.DistributionConfig, "__init__", __init__, owner=__name__)

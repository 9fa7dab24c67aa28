"""CloudFront: where the sandbox corrects moto's CloudFront API (moto fidelity).

- ``origin_groups``: cache behaviours may target an origin group.
- ``s3_origin_access_control``: S3 origins keep ``S3OriginConfig`` and ``OriginAccessControlId``.
- ``distribution_versions``: ETags per update, IfMatch, disable before delete.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches

# == origin_groups: CloudFront cache behaviours may target an origin group, as AWS documents.
#
# moto checks only the default cache behaviour's ``TargetOriginId``, and only against the plain
# origins, so a default behaviour that targets an origin group fails with ``NoSuchOrigin`` while
# an ordered behaviour that targets nothing at all is accepted. AWS resolves every behaviour's
# target against the origins *and* the origin groups, requires each group to have exactly two
# members that are origins of the distribution, and lets a behaviour that targets a group allow
# only GET, HEAD and OPTIONS (origin failover never replays a write). This extension restores
# those rules for CreateDistribution(WithTags) and UpdateDistribution.


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


def _install_origin_groups(_app: Any) -> None:
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


# == s3_origin_access_control: CloudFront keeps an S3 origin's ``S3OriginConfig`` and ``OriginAccessControlId``, as AWS does.
#
# moto reads ``S3OriginConfig.OriginAccessIdentity`` into an attribute that is never returned and
# ignores ``OriginAccessControlId`` altogether, so GetDistributionConfig answers with an S3 origin
# that has neither: a module comparing desired and actual configuration sees a difference on every
# run, and nobody can check that the bucket sits behind origin access control. AWS also refuses an
# ``OriginAccessControlId`` that does not exist (``NoSuchOriginAccessControl``) and the combination
# of an origin access control with a legacy origin access identity (``IllegalOriginAccessConfiguration``),
# a second origin access control with a name already taken (``OriginAccessControlAlreadyExists``) and
# the deletion of one a distribution still uses (``OriginAccessControlInUse``), which is what makes
# teardown order matter.


def _install_s3_origin_access_control(_app: Any) -> None:
    from moto.cloudfront import models
    from moto.cloudfront.exceptions import CloudFrontException

    original_init = models.Origin.__init__

    def __init__(self: Any, origin: dict[str, Any]) -> None:
        original_init(self, origin)
        s3_config = origin.get("S3OriginConfig")
        self.origin_access_control_id = origin.get("OriginAccessControlId") or ""
        if s3_config is not None:
            identity = s3_config.get("OriginAccessIdentity") or ""
            if identity and self.origin_access_control_id:
                raise CloudFrontException(
                    "IllegalOriginAccessConfiguration",
                    "An origin cannot use both an origin access control and an origin access identity.",
                )
            self.s3_origin_config = {"OriginAccessIdentity": identity}
        if self.origin_access_control_id and not _oac_exists(self.origin_access_control_id):
            raise CloudFrontException(
                "NoSuchOriginAccessControl",
                f"The origin access control {self.origin_access_control_id} does not exist.",
            )

    patches.patch(models.Origin, "__init__", __init__, owner=__name__)

    backend_cls = models.CloudFrontBackend
    original_create = backend_cls.create_origin_access_control
    original_delete = backend_cls.delete_origin_access_control

    def create_origin_access_control(self: Any, config_dict: dict[str, str]) -> Any:
        if any(c.name == config_dict.get("Name") for c in self.origin_access_controls.values()):
            raise CloudFrontException(
                "OriginAccessControlAlreadyExists",
                f"An origin access control named {config_dict.get('Name')} already exists.",
            )
        return original_create(self, config_dict)

    def delete_origin_access_control(self: Any, control_id: str) -> None:
        self.get_origin_access_control(control_id)  # NoSuchOriginAccessControl, as AWS
        for dist in self.distributions.values():
            if any(
                getattr(o, "origin_access_control_id", "") == control_id
                for o in dist.distribution_config.Origins["Items"]
            ):
                raise CloudFrontException(
                    "OriginAccessControlInUse",
                    f"The origin access control {control_id} is in use by distribution {dist.distribution_id}.",
                )
        original_delete(self, control_id)

    patches.patch(backend_cls, "create_origin_access_control", create_origin_access_control, owner=__name__)
    patches.patch(backend_cls, "delete_origin_access_control", delete_origin_access_control, owner=__name__)


def _oac_exists(control_id: str) -> bool:
    from moto.cloudfront.models import cloudfront_backends

    # CloudFront is global: one backend per account and partition.
    return any(
        control_id in backend.origin_access_controls
        for account in cloudfront_backends.values()
        for backend in account.values()
    )


# == distribution_versions: CloudFront distributions are versioned by ETag and must be disabled before deletion, as on AWS.
#
# moto hands out one ETag per distribution for its whole life and accepts any ``IfMatch``, and it
# deletes a distribution that is still enabled. On AWS every UpdateDistribution returns a new ETag,
# an ``IfMatch`` that is not the current ETag fails with ``PreconditionFailed`` (HTTP 412), and
# DeleteDistribution of an enabled distribution fails with ``DistributionNotDisabled``. Without
# these rules a module that forgets to re-read the ETag after disabling, or deletes without
# disabling first, passes in the sandbox and fails against AWS.


def _install_distribution_versions(_app: Any) -> None:
    from moto.cloudfront import models
    from moto.cloudfront.exceptions import CloudFrontException, InvalidIfMatchVersion, NoSuchDistribution

    backend_cls = models.CloudFrontBackend
    original_update = backend_cls.update_distribution
    original_delete = backend_cls.delete_distribution

    def _check_if_match(dist: Any, if_match: Any) -> None:
        if not if_match:
            raise InvalidIfMatchVersion
        if if_match != dist.etag:
            raise CloudFrontException(
                "PreconditionFailed", "The precondition given in one or more of the request fields evaluated to false."
            )

    def update_distribution(self: Any, dist_config: dict[str, Any], _id: str, if_match: Any) -> Any:
        dist = self.distributions.get(_id)
        if dist is None:
            raise NoSuchDistribution
        _check_if_match(dist, if_match)
        result = original_update(self, dist_config, _id, if_match)
        dist.etag = models.random_id()
        return result[0], result[1], dist.etag

    def delete_distribution(self: Any, distribution_id: str, if_match: Any) -> None:
        dist = self.distributions.get(distribution_id)
        if dist is None:
            raise NoSuchDistribution
        _check_if_match(dist, if_match)
        if dist.distribution_config.Enabled:
            raise CloudFrontException(
                "DistributionNotDisabled", "The distribution you are trying to delete has not been disabled."
            )
        original_delete(self, distribution_id, if_match)

    patches.patch(backend_cls, "update_distribution", update_distribution, owner=__name__)
    patches.patch(backend_cls, "delete_distribution", delete_distribution, owner=__name__)


def install(app: Any) -> None:
    _install_origin_groups(app)
    _install_s3_origin_access_control(app)
    _install_distribution_versions(app)

"""CloudFront keeps an S3 origin's ``S3OriginConfig`` and ``OriginAccessControlId``, as AWS does.

moto reads ``S3OriginConfig.OriginAccessIdentity`` into an attribute that is never returned and
ignores ``OriginAccessControlId`` altogether, so GetDistributionConfig answers with an S3 origin
that has neither: a module comparing desired and actual configuration sees a difference on every
run, and nobody can check that the bucket sits behind origin access control. AWS also refuses an
``OriginAccessControlId`` that does not exist (``NoSuchOriginAccessControl``) and the combination
of an origin access control with a legacy origin access identity (``IllegalOriginAccessConfiguration``),
a second origin access control with a name already taken (``OriginAccessControlAlreadyExists``) and
the deletion of one a distribution still uses (``OriginAccessControlInUse``), which is what makes
teardown order matter.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches


def install(_app: Any) -> None:
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

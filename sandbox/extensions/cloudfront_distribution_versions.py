"""CloudFront distributions are versioned by ETag and must be disabled before deletion, as on AWS.

moto hands out one ETag per distribution for its whole life and accepts any ``IfMatch``, and it
deletes a distribution that is still enabled. On AWS every UpdateDistribution returns a new ETag,
an ``IfMatch`` that is not the current ETag fails with ``PreconditionFailed`` (HTTP 412), and
DeleteDistribution of an enabled distribution fails with ``DistributionNotDisabled``. Without
these rules a module that forgets to re-read the ETag after disabling, or deletes without
disabling first, passes in the sandbox and fails against AWS.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches


def install(_app: Any) -> None:
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

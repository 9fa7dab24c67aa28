"""ListQueryLoggingConfigs with a HostedZoneId answers that zone's configuration, as AWS does.

Moto compared the id given with each zone's ``/hostedzone/<id>`` path, so a zone's own id (which
CreateQueryLoggingConfig takes and returns) got ``NoSuchHostedZone``; and with the filter fixed it
would still have listed every zone's configuration. Here the id is taken with or without its
``/hostedzone/`` prefix, an unknown zone is ``NoSuchHostedZone``, and only that zone's configuration
is listed (without a HostedZoneId, every configuration of the account, as before).
"""

from __future__ import annotations

from typing import Any

from sandbox import patches


def zone_query_logging_configs(backend: Any, hosted_zone_id: str | None) -> list[Any]:
    """The configurations ListQueryLoggingConfigs answers for hosted_zone_id (None: all of them)."""
    from moto.route53.exceptions import NoSuchHostedZone

    configs = list(backend.query_logging_configs.values())
    if not hosted_zone_id:
        return configs
    zone_id = hosted_zone_id.split("/")[-1]
    if not any(zone.resource_id == zone_id for zone in backend.zones.values()):
        raise NoSuchHostedZone(hosted_zone_id)
    return [config for config in configs if config.hosted_zone_id.split("/")[-1] == zone_id]


def install(_app: Any) -> None:
    from moto.route53.models import Route53Backend
    from moto.route53.utils import PAGINATION_MODEL
    from moto.utilities.paginator import paginate

    # The paginator finds its model by the function's name: keep moto's.
    @paginate(pagination_model=PAGINATION_MODEL)
    def list_query_logging_configs(self: Any, hosted_zone_id: str | None = None) -> list[Any]:
        return zone_query_logging_configs(self, hosted_zone_id)

    patches.patch(Route53Backend, "list_query_logging_configs", list_query_logging_configs, owner=__name__)

"""ListServices lists ACTIVE services only: a deleted service (DRAINING, then INACTIVE) is no longer listed.

AWS documents it under DeleteService: "the service status moves from ACTIVE to DRAINING, and the
service is no longer visible in the console or in the ListServices API operation [...] Services in
the DRAINING or INACTIVE status can still be viewed with the DescribeServices API operation."
moto keeps a deleted service in its table with status INACTIVE and ListServices keeps returning it,
so after a teardown every deleted service still looked like a leftover. DescribeServices by name is
left as it is (it reports INACTIVE, as AWS does).

Deleted clusters are not touched: AWS's ListClusters keeps listing an INACTIVE cluster for a while
("Clusters with an INACTIVE status might remain discoverable in your account for a period of time",
DeleteCluster), and moto does the same.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches


def install(_app: Any) -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    original_list_services = EC2ContainerServiceBackend.list_services

    def list_services(self: Any, cluster_str: str, *args: Any, **kwargs: Any) -> list[str]:
        listed = original_list_services(self, cluster_str, *args, **kwargs)
        active = {service.arn for service in self.services.values() if service.status == "ACTIVE"}
        return [arn for arn in listed if arn in active]

    patches.patch(EC2ContainerServiceBackend, "list_services", list_services, owner=__name__)

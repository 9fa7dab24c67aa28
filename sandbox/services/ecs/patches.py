"""ECS: where the sandbox corrects moto's ECS API (moto fidelity; the live tasks are scheduler.py).

- ``service_attributes``: CreateService keeps every setting it was given.
- ``cluster_capacity_providers``: DescribeClusters always reports the capacity-provider lists.
- ``list_services_active``: ListServices lists ACTIVE services only.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox import patches

# == service_attributes: CreateService keeps every setting it was given, and DescribeServices returns them, as AWS does.
#
# moto's CreateService drops ``healthCheckGracePeriodSeconds``, ``deploymentConfiguration`` (the
# deployment circuit breaker among it), placement, ``enableExecuteCommand`` and
# ``enableECSManagedTags``: a module that compares what it asked for with what DescribeServices says
# (community.aws.ecs_service compares the grace period) sees a difference and updates the service on
# the next run. AWS also answers a default ``deploymentConfiguration`` (200 % / 100 %, circuit
# breaker off) when none was given. moto also fails with HTTP 500 when ``awsvpcConfiguration`` has
# no ``securityGroups``, which AWS accepts (the VPC's default security group is used).


# Request parameter -> Service attribute that moto's serializer reads for the response key.
KEPT_PARAMETERS = {
    "healthCheckGracePeriodSeconds": "health_check_grace_period_seconds",
    "deploymentConfiguration": "deployment_configuration",
    "placementConstraints": "placement_constraints",
    "placementStrategy": "placement_strategy",
    "enableExecuteCommand": "enable_execute_command",
    "enableECSManagedTags": "enable_ecs_managed_tags",
}

# What DescribeServices reports for a service created without a deploymentConfiguration.
DEFAULT_DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


def _install_service_attributes(_app: Any) -> None:
    from moto.ecs import models, responses

    original_create = responses.EC2ContainerServiceResponse.create_service

    def create_service(self: Any) -> Any:
        result = original_create(self)
        cluster = self._get_param("cluster", "default").split("/")[-1]
        service = self.ecs_backend.services[f"{cluster}:{self._get_param('serviceName')}"]
        for param, attribute in KEPT_PARAMETERS.items():
            value = self._get_param(param)
            if value is not None:
                setattr(service, attribute, value)
        if getattr(service, "deployment_configuration", None) is None:
            service.deployment_configuration = copy.deepcopy(DEFAULT_DEPLOYMENT_CONFIGURATION)
        return result

    patches.patch(responses.EC2ContainerServiceResponse, "create_service", create_service, owner=__name__)

    original_validate = models.Service._validate_network

    def _validate_network(self: Any, nc: dict[str, Any]) -> dict[str, Any]:
        awsvpc = nc.get("awsvpcConfiguration", {})
        if "securityGroups" in awsvpc:
            return original_validate(self, nc)
        # moto indexes securityGroups unconditionally; validate the rest with an empty list.
        checked = original_validate(self, {"awsvpcConfiguration": {**awsvpc, "securityGroups": []}})
        checked["awsvpcConfiguration"].pop("securityGroups", None)
        return checked

    patches.patch(models.Service, "_validate_network", _validate_network, owner=__name__)


# == cluster_capacity_providers: DescribeClusters always reports ``capacityProviders`` and ``defaultCapacityProviderStrategy``, as AWS does.
#
# AWS returns both lists for every cluster, empty when none were set. moto omits them unless the
# cluster was created with them, and community.aws.ecs_cluster indexes both when it checks an
# existing cluster, so its second run fails with a KeyError.


def _install_cluster_capacity_providers(_app: Any) -> None:
    from moto.ecs.models import Cluster

    original_init = Cluster.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.capacity_providers is None:
            self.capacity_providers = []
        if self.default_capacity_provider_strategy is None:
            self.default_capacity_provider_strategy = []

    patches.patch(Cluster, "__init__", __init__, owner=__name__)


# == list_services_active: ListServices lists ACTIVE services only: a deleted service (DRAINING, then INACTIVE) is no longer listed.
#
# AWS documents it under DeleteService: "the service status moves from ACTIVE to DRAINING, and the
# service is no longer visible in the console or in the ListServices API operation [...] Services in
# the DRAINING or INACTIVE status can still be viewed with the DescribeServices API operation."
# moto keeps a deleted service in its table with status INACTIVE and ListServices keeps returning it,
# so after a teardown every deleted service still looked like a leftover. DescribeServices by name is
# left as it is (it reports INACTIVE, as AWS does).
#
# Deleted clusters are not touched: AWS's ListClusters keeps listing an INACTIVE cluster for a while
# ("Clusters with an INACTIVE status might remain discoverable in your account for a period of time",
# DeleteCluster), and moto does the same.


def _install_list_services_active(_app: Any) -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    original_list_services = EC2ContainerServiceBackend.list_services

    def list_services(self: Any, cluster_str: str, *args: Any, **kwargs: Any) -> list[str]:
        listed = original_list_services(self, cluster_str, *args, **kwargs)
        active = {service.arn for service in self.services.values() if service.status == "ACTIVE"}
        return [arn for arn in listed if arn in active]

    patches.patch(EC2ContainerServiceBackend, "list_services", list_services, owner=__name__)


def install(app: Any) -> None:
    _install_service_attributes(app)
    _install_cluster_capacity_providers(app)
    _install_list_services_active(app)

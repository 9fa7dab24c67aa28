"""CreateService keeps every setting it was given, and DescribeServices returns them, as AWS does.

moto's CreateService drops ``healthCheckGracePeriodSeconds``, ``deploymentConfiguration`` (the
deployment circuit breaker among it), placement, ``enableExecuteCommand`` and
``enableECSManagedTags``: a module that compares what it asked for with what DescribeServices says
(community.aws.ecs_service compares the grace period) sees a difference and updates the service on
the next run. AWS also answers a default ``deploymentConfiguration`` (200 % / 100 %, circuit
breaker off) when none was given. moto also fails with HTTP 500 when ``awsvpcConfiguration`` has
no ``securityGroups``, which AWS accepts (the VPC's default security group is used).
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox import patches

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


def install(_app: Any) -> None:
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

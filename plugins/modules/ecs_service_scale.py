#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ecs_service_scale
short_description: Set the desired task count of an existing ECS service and its autoscaling floor, nothing else
author:
  - hawa platform team (!UNKNOWN)
version_added: 1.0.0
description:
  - Calls C(UpdateService) with C(desiredCount) only. M(community.aws.ecs_service) needs the whole service
    definition (task definition, network, load balancers) to change the count; a failover that scales the
    standby region up should not restate - or risk changing - anything else.
  - With O(autoscaling_min_capacity), also sets the C(MinCapacity) of the service's Application Auto Scaling
    target (C(ecs:service:DesiredCount)), so that target tracking does not scale a region that has just become
    the primary back in to its standby floor. Its C(MaxCapacity) is kept (raised to the minimum if below).
  - Idempotent (no call when the count and the floor are already right) and supports check mode. Pair it with
    M(hawa.platform.health_check_gate) (type V(ecs_service)) to wait for the steady state.
options:
  cluster:
    description: The cluster's name or ARN.
    type: str
    required: true
  service:
    description: The service's name or ARN.
    type: str
    required: true
  desired_count:
    description: The number of tasks to run. Omitted, the count is left as it is.
    type: int
  minimum:
    description:
      - When V(true), O(desired_count) is a floor - a service already running more tasks (autoscaling) keeps its
        count.
    type: bool
    default: false
  autoscaling_min_capacity:
    description:
      - The C(MinCapacity) of the service's scalable target. Omitted, the scalable target is left alone; a service
        without one is left without one (the result says so).
    type: int
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Scale the standby region to the primary's capacity, and keep autoscaling from shrinking it back
  ecs_service_scale:
    region: us-west-2
    cluster: hawa-production-us-west-2-cluster
    service: hawa-production-us-west-2-web
    desired_count: 3
    minimum: true
    autoscaling_min_capacity: 3

- name: The old primary may shrink to the standby floor (its tasks keep running until autoscaling acts)
  ecs_service_scale:
    region: us-east-1
    cluster: hawa-production-us-east-1-cluster
    service: hawa-production-us-east-1-web
    autoscaling_min_capacity: 1
"""

RETURN = r"""
desired_count:
  description: The service's desired count after the task.
  returned: success
  type: int
previous_desired_count:
  description: The desired count before the task.
  returned: success
  type: int
running_count:
  description: Tasks running when the module looked (before any change takes effect).
  returned: success
  type: int
autoscaling:
  description:
    - The scalable target's C(min_capacity) and C(max_capacity) after the task, and C(previous_min_capacity); empty
      when O(autoscaling_min_capacity) was not given or the service has no scalable target.
  returned: success
  type: dict
  sample: {"min_capacity": 3, "max_capacity": 12, "previous_min_capacity": 1}
"""

import contextlib

with contextlib.suppress(ImportError):  # protected by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

DIMENSION = "ecs:service:DesiredCount"


def target_count(current, wanted, minimum):
    if wanted is None:
        return current
    return max(current, wanted) if minimum else wanted


def resource_id(service):
    """Application Auto Scaling's name of an ECS service: service/<cluster name>/<service name>."""
    return f"service/{service['clusterArn'].split('/')[-1]}/{service['serviceName']}"


class ServiceNotFound(Exception):
    pass


def set_floor(autoscaling, service, floor, check_mode):
    """(changed, bounds): the scalable target's bounds after setting its MinCapacity to floor; {} when none."""
    name = resource_id(service)
    found = autoscaling.describe_scalable_targets(
        aws_retry=True, ServiceNamespace="ecs", ResourceIds=[name], ScalableDimension=DIMENSION
    )["ScalableTargets"]
    if not found:
        return False, {}
    before = found[0]
    bounds = dict(
        min_capacity=floor,
        max_capacity=max(before["MaxCapacity"], floor),
        previous_min_capacity=before["MinCapacity"],
    )
    changed = (before["MinCapacity"], before["MaxCapacity"]) != (bounds["min_capacity"], bounds["max_capacity"])
    if changed and not check_mode:
        autoscaling.register_scalable_target(
            aws_retry=True,
            ServiceNamespace="ecs",
            ResourceId=name,
            ScalableDimension=DIMENSION,
            MinCapacity=bounds["min_capacity"],
            MaxCapacity=bounds["max_capacity"],
        )
    return changed, bounds


def scale(ecs, autoscaling, params, check_mode):
    """Set the service's desired count and its autoscaling floor as params say; returns the module's result."""
    found = ecs.describe_services(aws_retry=True, cluster=params["cluster"], services=[params["service"]])
    services = [s for s in found["services"] if s["status"] == "ACTIVE"]
    if not services:
        raise ServiceNotFound(
            f"ECS service {params['service']} not found (or not ACTIVE) in cluster {params['cluster']}"
        )
    service = services[0]
    before = service["desiredCount"]
    wanted = target_count(before, params["desired_count"], params["minimum"])
    # The floor first: once it is raised, autoscaling cannot take the new count back.
    floor_changed, bounds = False, {}
    if params["autoscaling_min_capacity"] is not None:
        floor_changed, bounds = set_floor(autoscaling, service, params["autoscaling_min_capacity"], check_mode)
    if wanted != before and not check_mode:
        ecs.update_service(aws_retry=True, cluster=params["cluster"], service=params["service"], desiredCount=wanted)
    return dict(
        changed=wanted != before or floor_changed,
        desired_count=wanted,
        previous_desired_count=before,
        running_count=service["runningCount"],
        autoscaling=bounds,
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            service=dict(type="str", required=True),
            desired_count=dict(type="int"),
            minimum=dict(type="bool", default=False),
            autoscaling_min_capacity=dict(type="int"),
        ),
        required_one_of=[("desired_count", "autoscaling_min_capacity")],
        supports_check_mode=True,
    )
    p = module.params
    for name in ("desired_count", "autoscaling_min_capacity"):
        if p[name] is not None and p[name] < 0:
            module.fail_json(msg=f"{name} must be 0 or more, got {p[name]}")
    retry = AWSRetry.jittered_backoff()
    try:
        result = scale(
            module.client("ecs", retry_decorator=retry),
            module.client("application-autoscaling", retry_decorator=retry),
            p,
            module.check_mode,
        )
    except ServiceNotFound as e:
        module.fail_json(msg=f"{e} in {module.region}: check the names and the region, or deploy it first (site.yml)")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to scale ECS service {p['service']} in {module.region}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

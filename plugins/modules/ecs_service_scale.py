#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ecs_service_scale
short_description: Set the desired task count of an existing ECS service, and nothing else
author:
  - hawa platform team (!UNKNOWN)
version_added: 1.0.0
description:
  - Calls C(UpdateService) with C(desiredCount) only. M(community.aws.ecs_service) needs the whole service
    definition (task definition, network, load balancers) to change the count; a failover that scales the
    standby region up should not restate - or risk changing - anything else.
  - Idempotent (no call when the count is already right) and supports check mode. Pair it with
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
    description: The number of tasks to run.
    type: int
    required: true
  minimum:
    description:
      - When V(true), O(desired_count) is a floor - a service already running more tasks (autoscaling) keeps its
        count.
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Scale the standby region to the primary's capacity before it takes the traffic
  ecs_service_scale:
    region: us-west-2
    cluster: hawa-production-us-west-2-cluster
    service: hawa-production-us-west-2-web
    desired_count: 3
    minimum: true
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
"""

import contextlib

with contextlib.suppress(ImportError):  # protected by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def target_count(current, wanted, minimum):
    return max(current, wanted) if minimum else wanted


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            service=dict(type="str", required=True),
            desired_count=dict(type="int", required=True),
            minimum=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["desired_count"] < 0:
        module.fail_json(msg=f"desired_count must be 0 or more, got {p['desired_count']}")
    client = module.client("ecs", retry_decorator=AWSRetry.jittered_backoff())
    try:
        found = client.describe_services(aws_retry=True, cluster=p["cluster"], services=[p["service"]])
        services = [s for s in found["services"] if s["status"] == "ACTIVE"]
        if not services:
            module.fail_json(
                msg=f"ECS service {p['service']} not found (or not ACTIVE) in cluster {p['cluster']} in {module.region}: "
                "check the names and the region, or deploy it first (site.yml)"
            )
        service = services[0]
        before = service["desiredCount"]
        wanted = target_count(before, p["desired_count"], p["minimum"])
        changed = wanted != before
        if changed and not module.check_mode:
            client.update_service(aws_retry=True, cluster=p["cluster"], service=p["service"], desiredCount=wanted)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to scale ECS service {p['service']} in {module.region}")
    module.exit_json(
        changed=changed, desired_count=wanted, previous_desired_count=before, running_count=service["runningCount"]
    )


if __name__ == "__main__":
    main()

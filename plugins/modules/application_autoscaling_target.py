#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: application_autoscaling_target
short_description: Register or deregister an Application Auto Scaling scalable target
description:
  - Registers a scalable target (for example an ECS service's desired count) with its capacity bounds,
    or deregisters it.
  - community.aws.application_autoscaling_policy registers the target as a side effect of creating a
    policy but never deregisters it, so a teardown would leave the target behind.
  - Deregistering a target also deletes the scaling policies attached to it.
author:
  - hawa platform team (!UNKNOWN)
options:
  service_namespace:
    description: The namespace of the scaled service.
    choices:
      [ecs, elasticmapreduce, ec2, appstream, dynamodb, rds, sagemaker, custom-resource, comprehend, lambda, cassandra, kafka,
       elasticache, neptune, workspaces]
    default: ecs
    type: str
  resource_id:
    description: The scaled resource, e.g. C(service/<cluster>/<service>).
    required: true
    type: str
  scalable_dimension:
    description: The scaled property, e.g. C(ecs:service:DesiredCount).
    required: true
    type: str
  min_capacity:
    description: Lower bound of the capacity. Required when O(state=present).
    type: int
  max_capacity:
    description: Upper bound of the capacity. Required when O(state=present).
    type: int
  state:
    description: Whether the target should be registered.
    choices: [present, absent]
    default: present
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Let the web service scale between 3 and 12 tasks
  application_autoscaling_target:
    region: us-east-1
    resource_id: service/app-cluster/app-web
    scalable_dimension: ecs:service:DesiredCount
    min_capacity: 3
    max_capacity: 12

- name: Deregister it (its policies go with it)
  application_autoscaling_target:
    region: us-east-1
    resource_id: service/app-cluster/app-web
    scalable_dimension: ecs:service:DesiredCount
    state: absent
"""

RETURN = r"""
scalable_target:
  description: The target as DescribeScalableTargets returns it, in snake_case; empty when absent.
  returned: always
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def find_target(client, namespace, resource_id, dimension):
    targets = client.describe_scalable_targets(
        ServiceNamespace=namespace, ResourceIds=[resource_id], ScalableDimension=dimension, aws_retry=True
    )["ScalableTargets"]
    return targets[0] if targets else None


def needs_update(current, min_capacity, max_capacity):
    if current is None:
        return True
    return current.get("MinCapacity") != min_capacity or current.get("MaxCapacity") != max_capacity


def main():
    argument_spec = dict(
        service_namespace=dict(
            type="str",
            default="ecs",
            choices=[
                "ecs",
                "elasticmapreduce",
                "ec2",
                "appstream",
                "dynamodb",
                "rds",
                "sagemaker",
                "custom-resource",
                "comprehend",
                "lambda",
                "cassandra",
                "kafka",
                "elasticache",
                "neptune",
                "workspaces",
            ],
        ),
        resource_id=dict(type="str", required=True),
        scalable_dimension=dict(type="str", required=True),
        min_capacity=dict(type="int"),
        max_capacity=dict(type="int"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ["min_capacity", "max_capacity"])],
    )
    params = module.params
    if params["state"] == "present" and params["min_capacity"] > params["max_capacity"]:
        module.fail_json(
            msg=f"min_capacity ({params['min_capacity']}) is above max_capacity ({params['max_capacity']}): swap or correct them"
        )
    client = module.client("application-autoscaling", retry_decorator=AWSRetry.jittered_backoff())
    key = (params["service_namespace"], params["resource_id"], params["scalable_dimension"])
    try:
        current = find_target(client, *key)
        if params["state"] == "absent":
            if current is None:
                module.exit_json(changed=False, scalable_target={})
            if not module.check_mode:
                client.deregister_scalable_target(
                    ServiceNamespace=key[0], ResourceId=key[1], ScalableDimension=key[2], aws_retry=True
                )
            module.exit_json(changed=True, scalable_target={})
        if not needs_update(current, params["min_capacity"], params["max_capacity"]):
            module.exit_json(changed=False, scalable_target=camel_dict_to_snake_dict(current))
        if module.check_mode:
            module.exit_json(changed=True, scalable_target=camel_dict_to_snake_dict(current or {}))
        client.register_scalable_target(
            ServiceNamespace=key[0],
            ResourceId=key[1],
            ScalableDimension=key[2],
            MinCapacity=params["min_capacity"],
            MaxCapacity=params["max_capacity"],
            aws_retry=True,
        )
        module.exit_json(changed=True, scalable_target=camel_dict_to_snake_dict(find_target(client, *key) or {}))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage scalable target {params['resource_id']}")


if __name__ == "__main__":
    main()

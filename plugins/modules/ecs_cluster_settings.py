#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ecs_cluster_settings
short_description: Set the settings of an ECS cluster (Container Insights)
author:
  - hawa platform team (!UNKNOWN)
version_added: 1.0.0
description:
  - Reads an existing ECS cluster's settings (C(DescribeClusters) with C(SETTINGS)) and changes the
    C(containerInsights) setting with C(UpdateCluster) when it differs from O(container_insights).
  - community.aws.ecs_cluster creates and deletes clusters but cannot set cluster settings, hence this module.
    It does not create or delete clusters; use community.aws.ecs_cluster for that.
  - Idempotent; supports check mode and diff mode.
options:
  cluster:
    description:
      - Name or ARN of the cluster. It must exist and be C(ACTIVE).
    required: true
    type: str
    aliases: ['name']
  container_insights:
    description:
      - V(enabled) turns CloudWatch Container Insights on, V(enhanced) turns on Container Insights with
        enhanced observability, V(disabled) turns it off.
    required: true
    choices: ['enabled', 'enhanced', 'disabled']
    type: str
notes:
  - There is no C(state) option, since a cluster always has settings. Deleting the cluster is
    community.aws.ecs_cluster's job.
  - C(UpdateCluster) takes effect synchronously, so there is no C(wait) option.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Container Insights on
  ecs_cluster_settings:
    region: us-east-1
    cluster: hawa-sandbox-us-east-1-cluster
    container_insights: enabled
"""

RETURN = r"""
cluster_arn:
  description: ARN of the cluster.
  returned: always
  type: str
  sample: arn:aws:ecs:us-east-1:123456789012:cluster/hawa-sandbox-us-east-1-cluster
settings:
  description: The cluster's settings after the task (the wanted ones in check mode), as a name to value mapping.
  returned: always
  type: dict
  sample: {"containerInsights": "enabled"}
"""

import contextlib

with contextlib.suppress(ImportError):  # protected by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


class ClusterNotFound(Exception):
    """The cluster named in the task does not exist or is not ACTIVE."""


def settings_to_dict(settings):
    """[{'name': n, 'value': v}, ...] as returned by the ECS API -> {n: v}."""
    return {item["name"]: item["value"] for item in settings or []}


def wanted_settings(container_insights):
    return {"containerInsights": container_insights}


def settings_to_change(current, wanted):
    """The settings whose value differs, in the API's list form, sorted by name."""
    return [{"name": name, "value": value} for name, value in sorted(wanted.items()) if current.get(name) != value]


def describe_cluster(client, cluster):
    response = client.describe_clusters(aws_retry=True, clusters=[cluster], include=["SETTINGS"])
    for found in response.get("clusters", []):
        if found.get("status") == "ACTIVE":
            return found
    raise ClusterNotFound(
        f"ECS cluster '{cluster}' does not exist or is not ACTIVE: create it first with community.aws.ecs_cluster"
    )


def ensure_settings(client, cluster, wanted, check_mode):
    found = describe_cluster(client, cluster)
    current = settings_to_dict(found.get("settings"))
    changes = settings_to_change(current, wanted)
    after = dict(current, **wanted)
    if changes and not check_mode:
        updated = client.update_cluster(aws_retry=True, cluster=found["clusterArn"], settings=changes)["cluster"]
        after = settings_to_dict(updated.get("settings")) or after
    return {
        "changed": bool(changes),
        "cluster_arn": found["clusterArn"],
        "settings": after,
        "diff": {"before": {"settings": current}, "after": {"settings": after}},
    }


def main():
    argument_spec = dict(
        cluster=dict(type="str", required=True, aliases=["name"]),
        container_insights=dict(type="str", required=True, choices=["enabled", "enhanced", "disabled"]),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    client = module.client("ecs", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = ensure_settings(
            client,
            module.params["cluster"],
            wanted_settings(module.params["container_insights"]),
            module.check_mode,
        )
    except ClusterNotFound as e:
        module.fail_json(msg=f"Failed to set ECS cluster settings: {e}")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Failed to set ECS cluster settings")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

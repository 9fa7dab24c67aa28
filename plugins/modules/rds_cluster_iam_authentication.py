#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: rds_cluster_iam_authentication
short_description: Turn IAM database authentication on or off on an existing Aurora DB cluster
version_added: 1.0.0
description:
  - Makes an existing DB cluster's C(IAMDatabaseAuthenticationEnabled) the one given, with C(ModifyDBCluster)
    (C(EnableIAMDatabaseAuthentication), applied immediately), and waits until the cluster reports it. Nothing
    else about the cluster changes.
  - M(amazon.aws.rds_cluster) takes C(enable_iam_database_authentication) when it creates a cluster, but on an
    existing cluster it compares the option with a key C(DescribeDBClusters) does not return
    (C(EnableIAMDatabaseAuthentication) instead of C(IAMDatabaseAuthenticationEnabled)) and fails with a
    C(KeyError) (amazon.aws 10); this module is the one that keeps it on an existing cluster.
  - With IAM database authentication on, a database user that is a member of C(rds_iam) logs in with an IAM
    authentication token (C(generate_db_auth_token)) signed by a principal allowed C(rds-db:connect) as that user;
    off, such a user cannot log in at all.
  - In a global database each region's cluster has its own setting, so set it on every member.
author:
  - hawa platform team (!UNKNOWN)
options:
  db_cluster_identifier:
    description: The cluster's identifier.
    type: str
    required: true
  enabled:
    description: Whether IAM database authentication should be on.
    type: bool
    default: true
  wait:
    description: Wait until the cluster reports the setting and is C(available) again.
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds.
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The app role logs in with IAM tokens, so the cluster must take them
  rds_cluster_iam_authentication:
    region: us-west-2
    db_cluster_identifier: hawa-production-us-west-2-aurora
"""

RETURN = r"""
db_cluster_identifier:
  description: The cluster's identifier.
  returned: always
  type: str
iam_database_authentication_enabled:
  description: The setting after the task (in check mode, the one it would have).
  returned: always
  type: bool
previous_iam_database_authentication_enabled:
  description: The setting before the task.
  returned: always
  type: bool
"""

import time

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

POLL_S = 5


class ClusterNotFound(Exception):
    pass


class Timeout(Exception):
    pass


def describe(client, cluster_id):
    try:
        return client.describe_db_clusters(aws_retry=True, DBClusterIdentifier=cluster_id)["DBClusters"][0]
    except client.exceptions.DBClusterNotFoundFault:
        raise ClusterNotFound(cluster_id) from None


def ensure(client, cluster_id, enabled, check_mode, wait, wait_timeout, sleep=time.sleep, clock=time.monotonic):
    """Make the cluster's setting match enabled; returns the module result."""
    cluster = describe(client, cluster_id)
    previous = bool(cluster.get("IAMDatabaseAuthenticationEnabled", False))
    result = {
        "changed": previous != enabled,
        "db_cluster_identifier": cluster_id,
        "iam_database_authentication_enabled": enabled,
        "previous_iam_database_authentication_enabled": previous,
    }
    if not result["changed"] or check_mode:
        return result
    client.modify_db_cluster(
        aws_retry=True, DBClusterIdentifier=cluster_id, EnableIAMDatabaseAuthentication=enabled, ApplyImmediately=True
    )
    if wait:
        deadline = clock() + wait_timeout
        while True:
            cluster = describe(client, cluster_id)
            if bool(cluster.get("IAMDatabaseAuthenticationEnabled")) == enabled and cluster["Status"] == "available":
                break
            if clock() >= deadline:
                raise Timeout(
                    f"cluster {cluster_id} still {cluster['Status']} with IAMDatabaseAuthenticationEnabled="
                    f"{cluster.get('IAMDatabaseAuthenticationEnabled')} after {wait_timeout} s"
                )
            sleep(POLL_S)
    return result


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            db_cluster_identifier=dict(type="str", required=True),
            enabled=dict(type="bool", default=True),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    cluster_id = module.params["db_cluster_identifier"]
    client = module.client("rds", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = ensure(
            client,
            cluster_id,
            module.params["enabled"],
            module.check_mode,
            module.params["wait"],
            module.params["wait_timeout"],
        )
    except ClusterNotFound:
        module.fail_json(msg=f"Failed to find DB cluster {cluster_id}: create it first (amazon.aws.rds_cluster)")
    except Timeout as e:
        module.fail_json(msg=f"Timed out waiting for IAM database authentication: {e}")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to set IAM database authentication on DB cluster {cluster_id}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: route53_query_logging
short_description: Log a public hosted zone's DNS queries to CloudWatch Logs, or stop
version_added: 1.0.0
description:
  - Creates (C(CreateQueryLoggingConfig)) or deletes the query logging configuration of a Route 53 public
    hosted zone. A zone has at most one; pointing it at another log group deletes the old one and creates a new one
    (Route 53 has no update).
  - The log group must exist in us-east-1 and a CloudWatch Logs resource policy must let
    C(route53.amazonaws.com) create log streams and put log events in it (M(amazon.aws.cloudwatchlogs_log_group)
    and C(PutResourcePolicy)); Route 53 checks the policy when the configuration is created. AWS recommends
    naming the group C(/aws/route53/<zone name>).
  - No module of amazon.aws or community.aws manages query logging.
author:
  - hawa platform team (!UNKNOWN)
options:
  hosted_zone_id:
    description: Id of the public hosted zone (with or without the C(/hostedzone/) prefix).
    type: str
    required: true
  log_group_arn:
    description:
      - ARN of the CloudWatch Logs log group in us-east-1 (a trailing C(:*), as C(DescribeLogGroups) gives it, is
        accepted). Required with O(state=present).
    type: str
  state:
    description: Whether the zone's queries should be logged.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Log the public zone's queries
  route53_query_logging:
    region: us-east-1
    hosted_zone_id: Z0123456789ABCDEFGHIJ
    log_group_arn: arn:aws:logs:us-east-1:123456789012:log-group:/aws/route53/hawa-production.example.com:*

- name: Stop logging them (before the zone or the log group is deleted)
  route53_query_logging:
    region: us-east-1
    hosted_zone_id: Z0123456789ABCDEFGHIJ
    state: absent
"""

RETURN = r"""
query_logging_config:
  description: The zone's query logging configuration after the task; empty when absent (in check mode before creation, without id).
  returned: always
  type: dict
  contains:
    id:
      description: The configuration's id.
      type: str
    hosted_zone_id:
      description: The zone's id.
      type: str
    cloudwatch_logs_log_group_arn:
      description: The log group's ARN.
      type: str
previous:
  description: The configuration before the task (same shape; empty when there was none).
  returned: always
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def zone_id(value):
    return value.split("/")[-1]


def _bare_arn(arn):
    arn = arn or ""
    return arn[:-2] if arn.endswith(":*") else arn


def same_log_group(left, right):
    """Compare log group ARNs with or without DescribeLogGroups' trailing ':*'."""
    return _bare_arn(left) == _bare_arn(right)


def describe(config):
    if not config:
        return {}
    return {
        "id": config.get("Id", ""),
        "hosted_zone_id": config["HostedZoneId"],
        "cloudwatch_logs_log_group_arn": config["CloudWatchLogsLogGroupArn"],
    }


def find_config(client, hosted_zone_id):
    """The zone's query logging configuration, or None (filtered here as well as by the API's HostedZoneId)."""
    paginator = client.get_paginator("list_query_logging_configs")
    for page in paginator.paginate(HostedZoneId=hosted_zone_id):
        for config in page.get("QueryLoggingConfigs", []):
            if zone_id(config["HostedZoneId"]) == hosted_zone_id:
                return config
    return None


def ensure_query_logging(client, hosted_zone_id, state, log_group_arn, check_mode):
    """Make the zone's query logging match state; returns the module result."""
    current = find_config(client, hosted_zone_id)
    previous = describe(current)
    if state == "absent":
        if current is not None and not check_mode:
            client.delete_query_logging_config(aws_retry=True, Id=current["Id"])
        return {"changed": current is not None, "query_logging_config": {}, "previous": previous}
    if current is not None and same_log_group(current["CloudWatchLogsLogGroupArn"], log_group_arn):
        return {"changed": False, "query_logging_config": previous, "previous": previous}
    wanted = {"HostedZoneId": hosted_zone_id, "CloudWatchLogsLogGroupArn": log_group_arn}
    if not check_mode:
        # One configuration per zone and no update: another log group means delete, then create.
        if current is not None:
            client.delete_query_logging_config(aws_retry=True, Id=current["Id"])
        wanted = client.create_query_logging_config(aws_retry=True, **wanted)["QueryLoggingConfig"]
    return {"changed": True, "query_logging_config": describe(wanted), "previous": previous}


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            hosted_zone_id=dict(type="str", required=True),
            log_group_arn=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        required_if=[["state", "present", ["log_group_arn"]]],
        supports_check_mode=True,
    )
    hosted_zone_id = zone_id(module.params["hosted_zone_id"])
    # A resource policy just put may take a moment to reach Route 53's check.
    client = module.client(
        "route53",
        retry_decorator=AWSRetry.jittered_backoff(catch_extra_error_codes=["InsufficientCloudWatchLogsResourcePolicy"]),
    )
    try:
        result = ensure_query_logging(
            client, hosted_zone_id, module.params["state"], module.params["log_group_arn"], module.check_mode
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage the query logging of hosted zone {hosted_zone_id}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

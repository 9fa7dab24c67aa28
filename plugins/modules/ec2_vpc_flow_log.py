#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_vpc_flow_log
short_description: Manage a VPC flow log delivered to CloudWatch Logs
description:
  - Creates, updates the tags of, or deletes the flow log of one VPC, subnet or network interface that
    delivers to a CloudWatch Logs log group.
  - Neither amazon.aws nor community.aws has a module that calls C(CreateFlowLogs).
  - A flow log is identified by its resource, log group and traffic type. Flow logs cannot be modified
    in place; a change of role or aggregation interval replaces the flow log.
author:
  - hawa platform team (!UNKNOWN)
options:
  resource_id:
    description: The VPC, subnet or network interface whose traffic is logged.
    required: true
    type: str
  resource_type:
    description: The type of O(resource_id).
    choices: [VPC, Subnet, NetworkInterface]
    default: VPC
    type: str
  traffic_type:
    description: Which traffic to log.
    choices: [ACCEPT, REJECT, ALL]
    default: ALL
    type: str
  log_group_name:
    description: The CloudWatch Logs log group that receives the records.
    required: true
    type: str
  deliver_logs_role_arn:
    description:
      - IAM role that the flow logs service assumes to write to the log group.
      - Required when O(state=present).
    type: str
  max_aggregation_interval:
    description: Seconds over which a flow is captured and aggregated into one record.
    choices: [60, 600]
    default: 600
    type: int
  state:
    description: Whether the flow log should exist.
    choices: [present, absent]
    default: present
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Log every flow of the VPC to CloudWatch Logs
  ec2_vpc_flow_log:
    region: us-east-1
    resource_id: vpc-0123456789abcdef0
    log_group_name: /vpc/flow-logs/app
    deliver_logs_role_arn: arn:aws:iam::123456789012:role/app-flow-logs
    tags:
      Name: app-flow-log

- name: Stop logging
  ec2_vpc_flow_log:
    region: us-east-1
    resource_id: vpc-0123456789abcdef0
    log_group_name: /vpc/flow-logs/app
    state: absent
"""

RETURN = r"""
flow_log_id:
  description: The ID of the flow log (empty after deletion or when none exists).
  returned: always
  type: str
  sample: fl-0123456789abcdef0
flow_log:
  description: The flow log as DescribeFlowLogs returns it, in snake_case.
  returned: when O(state=present)
  type: dict
"""

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    ansible_dict_to_boto3_tag_list,
    boto3_tag_list_to_ansible_dict,
    compare_aws_tags,
)


def find_flow_log(client, resource_id, log_group_name, traffic_type):
    filters = [
        {"Name": "resource-id", "Values": [resource_id]},
        {"Name": "log-group-name", "Values": [log_group_name]},
        {"Name": "traffic-type", "Values": [traffic_type]},
    ]
    flow_logs = client.describe_flow_logs(aws_retry=True, Filter=filters)["FlowLogs"]
    return flow_logs[0] if flow_logs else None


def needs_replacement(flow_log, role_arn, max_interval):
    if role_arn and flow_log.get("DeliverLogsPermissionArn") != role_arn:
        return True
    interval = flow_log.get("MaxAggregationInterval")
    return interval is not None and int(interval) != max_interval


def create_flow_log(client, params, tags):
    request = {
        "ResourceIds": [params["resource_id"]],
        "ResourceType": params["resource_type"],
        "TrafficType": params["traffic_type"],
        "LogDestinationType": "cloud-watch-logs",
        "LogGroupName": params["log_group_name"],
        "DeliverLogsPermissionArn": params["deliver_logs_role_arn"],
        "MaxAggregationInterval": params["max_aggregation_interval"],
    }
    if tags:
        request["TagSpecifications"] = [{"ResourceType": "vpc-flow-log", "Tags": ansible_dict_to_boto3_tag_list(tags)}]
    response = client.create_flow_logs(**request)
    if response.get("Unsuccessful"):
        error = response["Unsuccessful"][0].get("Error", {})
        raise FlowLogError(f"{error.get('Code', 'Unknown')}: {error.get('Message', response['Unsuccessful'])}")
    return response["FlowLogIds"][0]


def delete_flow_log(client, flow_log_id):
    """Delete one flow log; False when it was already gone.

    DeleteFlowLogs answers 200 and names the ids it could not delete in Unsuccessful, with their error
    (InvalidFlowLogId.NotFound for one deleted meanwhile). The same code may also come back as the call's
    own error (moto raises it; Terraform's AWS provider accepts both shapes), so both mean "gone".
    """
    try:
        response = client.delete_flow_logs(FlowLogIds=[flow_log_id])
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") == "InvalidFlowLogId.NotFound":
            return False
        raise
    for item in response.get("Unsuccessful") or []:
        error = item.get("Error", {})
        if error.get("Code") == "InvalidFlowLogId.NotFound":
            return False
        raise FlowLogError(f"{error.get('Code', 'Unknown')}: {error.get('Message', item)}")
    return True


def describe_result(flow_log):
    """The flow log in snake_case, with its tags as a plain dict."""
    if not flow_log:
        return {}
    result = camel_dict_to_snake_dict(flow_log, ignore_list=["Tags"])
    result["tags"] = boto3_tag_list_to_ansible_dict(flow_log.get("Tags", []))
    return result


class FlowLogError(Exception):
    pass


def ensure_present(module, client):
    params = module.params
    if not params["deliver_logs_role_arn"]:
        module.fail_json(
            msg="deliver_logs_role_arn is required when state=present: pass the ARN of a role that vpc-flow-logs.amazonaws.com can assume"
        )
    existing = find_flow_log(client, params["resource_id"], params["log_group_name"], params["traffic_type"])
    wanted_tags = params["tags"]
    if existing and needs_replacement(existing, params["deliver_logs_role_arn"], params["max_aggregation_interval"]):
        if module.check_mode:
            module.exit_json(changed=True, flow_log_id=existing["FlowLogId"], flow_log=describe_result(existing))
        delete_flow_log(client, existing["FlowLogId"])
        existing = None
    if existing is None:
        if module.check_mode:
            module.exit_json(changed=True, flow_log_id="", flow_log={})
        flow_log_id = create_flow_log(client, params, wanted_tags)
        created = find_flow_log(client, params["resource_id"], params["log_group_name"], params["traffic_type"])
        module.exit_json(changed=True, flow_log_id=flow_log_id, flow_log=describe_result(created))

    changed = False
    if wanted_tags is not None:
        current = boto3_tag_list_to_ansible_dict(existing.get("Tags", []))
        to_set, to_unset = compare_aws_tags(current, wanted_tags, module.params["purge_tags"])
        if to_set or to_unset:
            changed = True
            if not module.check_mode:
                if to_unset:
                    client.delete_tags(Resources=[existing["FlowLogId"]], Tags=[{"Key": k} for k in to_unset])
                if to_set:
                    client.create_tags(Resources=[existing["FlowLogId"]], Tags=ansible_dict_to_boto3_tag_list(to_set))
                existing = find_flow_log(
                    client, params["resource_id"], params["log_group_name"], params["traffic_type"]
                )
    module.exit_json(changed=changed, flow_log_id=existing["FlowLogId"], flow_log=describe_result(existing))


def ensure_absent(module, client):
    params = module.params
    existing = find_flow_log(client, params["resource_id"], params["log_group_name"], params["traffic_type"])
    if existing is None:
        module.exit_json(changed=False, flow_log_id="")
    if not module.check_mode and not delete_flow_log(client, existing["FlowLogId"]):
        module.exit_json(changed=False, flow_log_id="")
    module.exit_json(changed=True, flow_log_id="")


def main():
    argument_spec = dict(
        resource_id=dict(type="str", required=True),
        resource_type=dict(type="str", default="VPC", choices=["VPC", "Subnet", "NetworkInterface"]),
        traffic_type=dict(type="str", default="ALL", choices=["ACCEPT", "REJECT", "ALL"]),
        log_group_name=dict(type="str", required=True),
        deliver_logs_role_arn=dict(type="str"),
        max_aggregation_interval=dict(type="int", default=600, choices=[60, 600]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    try:
        if module.params["state"] == "present":
            ensure_present(module, client)
        else:
            ensure_absent(module, client)
    except FlowLogError as e:
        verb = "create" if module.params["state"] == "present" else "delete"
        module.fail_json(msg=f"Failed to {verb} flow log for {module.params['resource_id']}: {e}")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage flow log for {module.params['resource_id']}")


if __name__ == "__main__":
    main()

#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: cloudwatch_dashboard
short_description: Create, update or delete a CloudWatch dashboard
author:
  - hawa platform team (!UNKNOWN)
version_added: 1.0.0
description:
  - Creates or replaces a CloudWatch dashboard (C(PutDashboard)), reads it (C(GetDashboard)) and deletes it
    (C(DeleteDashboards)).
  - Idempotent. The wanted body and the stored body are compared as parsed JSON, so key order, whitespace and
    C(1) versus C(1.0) do not count as changes; the dashboard is written only when the parsed bodies differ.
  - Supports check mode and diff mode (the parsed bodies before and after).
  - No amazon.aws or community.aws module manages dashboards, hence this one.
options:
  name:
    description:
      - Name of the dashboard.
      - 1 to 255 characters; letters, digits, C(-) and C(_) only.
      - Dashboards are account-wide (their ARN has no region), so the name must be unique across regions.
    required: true
    type: str
    aliases: ['dashboard_name']
  body:
    description:
      - The dashboard body, a JSON object with a C(widgets) list, given as a dictionary or as a JSON string.
      - See U(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).
      - Required when O(state=present).
    type: json
    aliases: ['dashboard_body']
  state:
    description:
      - V(present) creates the dashboard or replaces its body; V(absent) deletes it.
      - Deleting a dashboard that does not exist is not a change.
    choices: ['present', 'absent']
    default: 'present'
    type: str
notes:
  - C(PutDashboard) and C(DeleteDashboards) take effect synchronously, so there is no C(wait) option.
  - CloudWatch checks the body when it is written; messages for a dashboard it still accepts are returned in
    RV(validation_messages) and as warnings, a body it rejects fails the task with those messages.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Dashboard from a Jinja template
  cloudwatch_dashboard:
    region: us-east-1
    name: hawa-production-us-east-1
    body: "{{ lookup('ansible.builtin.template', 'dashboard.json.j2') }}"

- name: Dashboard from a dictionary
  cloudwatch_dashboard:
    region: us-east-1
    name: my-dashboard
    body:
      widgets:
        - type: metric
          x: 0
          y: 0
          width: 12
          height: 6
          properties:
            region: us-east-1
            title: ALB 5xx
            stat: Sum
            period: 60
            metrics:
              - ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", "app/my-alb/0123456789abcdef"]

- name: Delete a dashboard
  cloudwatch_dashboard:
    region: us-east-1
    name: my-dashboard
    state: absent
"""

RETURN = r"""
dashboard_name:
  description: Name of the dashboard.
  returned: always
  type: str
  sample: hawa-sandbox-us-east-1
dashboard_arn:
  description: ARN of the dashboard; empty when it does not exist (yet, in check mode) or was deleted.
  returned: always
  type: str
  sample: arn:aws:cloudwatch::123456789012:dashboard/hawa-sandbox-us-east-1
dashboard_body:
  description: The dashboard body as stored (parsed); the wanted body in check mode; empty after deletion.
  returned: always
  type: dict
  sample: {"widgets": []}
validation_messages:
  description: What CloudWatch said about the body when it accepted it (C(DashboardValidationMessages)).
  returned: always
  type: list
  elements: dict
  contains:
    data_path:
      description: Where in the body the message applies.
      type: str
    message:
      description: The message.
      type: str
"""

import contextlib
import json
import re

with contextlib.suppress(ImportError):  # protected by AnsibleAWSModule
    import botocore

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class DashboardError(Exception):
    """A problem with the module's input, worded for the person who wrote the task."""


def validate_name(name):
    """Raise DashboardError unless CloudWatch would accept ``name`` as a dashboard name."""
    if not NAME_PATTERN.match(name or ""):
        raise DashboardError(
            f"name {name!r} is not a valid dashboard name: use 1 to 255 letters, digits, '-' or '_'"
            " (no spaces, dots or slashes)"
        )


def parse_body(body):
    """The dashboard body as a dict, from a dict or a JSON string; DashboardError if it cannot be one."""
    if isinstance(body, dict):
        parsed = body
    else:
        try:
            parsed = json.loads(body)
        except (TypeError, ValueError) as e:
            raise DashboardError(f"body is not valid JSON ({e}): pass a dictionary or a JSON object string") from e
    if not isinstance(parsed, dict):
        raise DashboardError(
            f"body must be a JSON object with a 'widgets' list, got a {type(parsed).__name__}:"
            ' wrap the widgets as {"widgets": [...]}'
        )
    widgets = parsed.get("widgets")
    if not isinstance(widgets, list):
        raise DashboardError("body has no 'widgets' list: CloudWatch requires {\"widgets\": [...]} at the top level")
    for index, widget in enumerate(widgets):
        if not isinstance(widget, dict) or not isinstance(widget.get("type"), str):
            raise DashboardError(
                f"body widgets[{index}] is not an object with a 'type' (metric, text, alarm, log, ...): fix that widget"
            )
    return parsed


def serialize_body(parsed):
    """The compact JSON text sent to CloudWatch, keys in the order the caller wrote them."""
    return json.dumps(parsed, separators=(",", ":"))


def bodies_equal(current, wanted):
    """True when two parsed bodies describe the same dashboard (JSON equality, not text equality)."""
    return current == wanted


def plan(state, current, wanted):
    """What to do: 'create', 'update', 'delete' or None, from the stored (parsed) body and the wanted one."""
    if state == "absent":
        return "delete" if current is not None else None
    if current is None:
        return "create"
    return None if bodies_equal(current, wanted) else "update"


def render_for_diff(parsed):
    """A stable, readable text of a parsed body for diff mode ('' for no dashboard)."""
    return "" if parsed is None else json.dumps(parsed, indent=2, sort_keys=True) + "\n"


def get_dashboard(client, name):
    """The stored dashboard as {'arn', 'body'} (body parsed), or None when it does not exist."""
    try:
        response = client.get_dashboard(DashboardName=name, aws_retry=True)
    except is_boto3_error_code("ResourceNotFound"):
        return None
    text = response.get("DashboardBody") or "{}"
    try:
        body = json.loads(text)
    except ValueError:
        # Stored bodies are always JSON; if one is not, treat it as different so it gets rewritten.
        body = {"_unparsable_body": text}
    return {"arn": response.get("DashboardArn", ""), "body": body}


def put_dashboard(client, name, parsed):
    response = client.put_dashboard(DashboardName=name, DashboardBody=serialize_body(parsed), aws_retry=True)
    return [camel_dict_to_snake_dict(m) for m in response.get("DashboardValidationMessages", [])]


def delete_dashboard(client, name):
    try:
        client.delete_dashboards(DashboardNames=[name], aws_retry=True)
    except is_boto3_error_code("ResourceNotFound"):
        # Deleted by someone else between our read and our delete: the goal is met.
        return False
    return True


def validation_failure_detail(error):
    """The DashboardValidationMessages of a rejected PutDashboard, as one readable line."""
    messages = getattr(error, "response", {}).get("DashboardValidationMessages") or []
    return "; ".join(f"{m.get('DataPath', '?')}: {m.get('Message', '')}" for m in messages)


def ensure(module, client):
    name = module.params["name"]
    state = module.params["state"]
    validate_name(name)
    wanted = parse_body(module.params["body"]) if state == "present" else None

    current = get_dashboard(client, name)
    action = plan(state, current["body"] if current else None, wanted)
    result = {
        "changed": action is not None,
        "dashboard_name": name,
        "dashboard_arn": current["arn"] if current else "",
        "dashboard_body": current["body"] if current else {},
        "validation_messages": [],
    }
    if module._diff:
        before = render_for_diff(current["body"] if current else None)
        # Equal bodies may still print differently (3 versus 3.0): show no diff for a no-op.
        result["diff"] = {"before": before, "after": render_for_diff(wanted) if action else before}
    if action is None:
        return result
    if module.check_mode:
        if action == "delete":
            result.update(dashboard_arn="", dashboard_body={})
        else:
            result["dashboard_body"] = wanted
        return result

    if action == "delete":
        result["changed"] = delete_dashboard(client, name)
        result.update(dashboard_arn="", dashboard_body={})
        return result

    try:
        messages = put_dashboard(client, name, wanted)
    except is_boto3_error_code(["InvalidParameterInput", "DashboardInvalidInputError"]) as e:
        detail = validation_failure_detail(e)
        reason = f" ({detail})" if detail else ""
        module.fail_json_aws(e, msg=f"Failed to put dashboard {name}: CloudWatch rejected the body{reason}")
    for message in messages:
        where, what = message.get("data_path"), message.get("message")
        module.warn(f"CloudWatch accepted dashboard {name} with a remark at {where}: {what}")
    stored = get_dashboard(client, name)
    result.update(
        dashboard_arn=stored["arn"] if stored else "",
        dashboard_body=stored["body"] if stored else wanted,
        validation_messages=messages,
    )
    return result


def main():
    argument_spec = dict(
        name=dict(type="str", required=True, aliases=["dashboard_name"]),
        body=dict(type="json", aliases=["dashboard_body"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["body"])],
        supports_check_mode=True,
    )
    client = module.client("cloudwatch", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = ensure(module, client)
    except DashboardError as e:
        module.fail_json(msg=f"Failed to manage dashboard {module.params['name']}: {e}")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage dashboard {module.params['name']}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

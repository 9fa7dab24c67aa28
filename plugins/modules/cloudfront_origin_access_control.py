#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: cloudfront_origin_access_control
short_description: Manage a CloudFront origin access control (OAC)
version_added: 1.0.0
description:
  - Creates, updates and deletes a CloudFront origin access control, the way CloudFront signs its
    requests to a private S3 bucket (the successor of origin access identities).
  - Identified by O(name), which is unique per account.
  - community.aws 10 has no module for origin access controls.
author:
  - hawa platform team (!UNKNOWN)
options:
  name:
    description: Name of the origin access control (unique in the account, at most 64 characters).
    type: str
    required: true
  state:
    description: Whether the origin access control should exist.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Free text.
    type: str
    default: ""
  origin_type:
    description: Kind of origin the control is for.
    type: str
    choices: [s3, mediastore, mediapackagev2, lambda]
    default: s3
  signing_behavior:
    description: C(always) signs every request (and replaces a viewer's Authorization header).
    type: str
    choices: [always, never, no-override]
    default: always
  signing_protocol:
    description: Signing protocol.
    type: str
    choices: [sigv4]
    default: sigv4
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Origin access control for the static-assets bucket
  cloudfront_origin_access_control:
    name: hawa-prod-static
    description: CloudFront to the hawa-prod static bucket
    region: us-east-1

- name: Remove it (after the distribution that uses it is gone)
  cloudfront_origin_access_control:
    name: hawa-prod-static
    state: absent
    region: us-east-1
"""

RETURN = r"""
origin_access_control:
  description: The origin access control; empty when absent.
  returned: always
  type: dict
  contains:
    id:
      description: Its id, for an origin's C(origin_access_control_id).
      type: str
      sample: E2QWRUHAPOMQZL
    name:
      description: Its name.
      type: str
    description:
      description: Its description.
      type: str
    origin_type:
      description: Origin type.
      type: str
    signing_behavior:
      description: Signing behaviour.
      type: str
    signing_protocol:
      description: Signing protocol.
      type: str
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def desired_config(params):
    return {
        "Name": params["name"],
        "Description": params["description"],
        "SigningProtocol": params["signing_protocol"],
        "SigningBehavior": params["signing_behavior"],
        "OriginAccessControlOriginType": params["origin_type"],
    }


def describe(control_id, config):
    return {"id": control_id, **_snake(config)}


def _snake(config):
    return {
        "name": config.get("Name", ""),
        "description": config.get("Description") or "",
        "origin_type": config.get("OriginAccessControlOriginType", ""),
        "signing_behavior": config.get("SigningBehavior", ""),
        "signing_protocol": config.get("SigningProtocol", ""),
    }


def find_control(client, name):
    """Id of the origin access control called name, or None."""
    paginator = client.get_paginator("list_origin_access_controls")
    for page in paginator.paginate():
        for item in page.get("OriginAccessControlList", {}).get("Items") or []:
            if item["Name"] == name:
                return item["Id"]
    return None


def differs(current, desired):
    return sorted(k for k, v in desired.items() if (current.get(k) or "") != v)


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        description=dict(type="str", default=""),
        origin_type=dict(type="str", default="s3", choices=["s3", "mediastore", "mediapackagev2", "lambda"]),
        signing_behavior=dict(type="str", default="always", choices=["always", "never", "no-override"]),
        signing_protocol=dict(type="str", default="sigv4", choices=["sigv4"]),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if len(params["name"]) > 64:
        module.fail_json(msg=f"name {params['name']!r} is longer than 64 characters: shorten it")
    client = module.client("cloudfront", retry_decorator=AWSRetry.jittered_backoff())
    desired = desired_config(params)
    try:
        control_id = find_control(client, params["name"])
        if params["state"] == "absent":
            if control_id is None:
                module.exit_json(changed=False, origin_access_control={})
            if not module.check_mode:
                etag = client.get_origin_access_control(aws_retry=True, Id=control_id)["ETag"]
                client.delete_origin_access_control(aws_retry=True, Id=control_id, IfMatch=etag)
            module.exit_json(changed=True, origin_access_control={})
        if control_id is None:
            if module.check_mode:
                module.exit_json(changed=True, origin_access_control=describe("", desired))
            created = client.create_origin_access_control(aws_retry=True, OriginAccessControlConfig=desired)
            control = created["OriginAccessControl"]
            module.exit_json(
                changed=True, origin_access_control=describe(control["Id"], control["OriginAccessControlConfig"])
            )
        response = client.get_origin_access_control(aws_retry=True, Id=control_id)
        current = response["OriginAccessControl"]["OriginAccessControlConfig"]
        changes = differs(current, desired)
        if changes and not module.check_mode:
            client.update_origin_access_control(
                aws_retry=True, Id=control_id, IfMatch=response["ETag"], OriginAccessControlConfig=desired
            )
        module.exit_json(
            changed=bool(changes),
            changed_settings=changes,
            origin_access_control=describe(control_id, desired if changes else current),
        )
    except is_boto3_error_code("OriginAccessControlInUse") as e:
        module.fail_json_aws(
            e,
            msg=f"Failed to delete origin access control {params['name']!r}: "
            "a distribution still uses it; remove that first",
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Failed to manage origin access control {params['name']!r}")


if __name__ == "__main__":
    main()

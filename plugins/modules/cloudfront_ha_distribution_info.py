#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: cloudfront_ha_distribution_info
short_description: Look up a distribution managed by cloudfront_ha_distribution
version_added: 1.0.0
description:
  - Finds the CloudFront distribution whose C(CallerReference) is O(name) (as created by
    M(hawa.platform.cloudfront_ha_distribution)) and returns the same normalised view that module returns.
  - Read-only; runs in check mode.
  - M(community.aws.cloudfront_distribution_info) cannot find a distribution by caller reference
    and its summary mode needs four calls per distribution.
author:
  - hawa platform team (!UNKNOWN)
options:
  name:
    description: The distribution's O(hawa.platform.cloudfront_ha_distribution#module:name) (its C(CallerReference)).
    type: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Find the project's distribution
  cloudfront_ha_distribution_info:
    name: hawa-prod-cdn
    region: us-east-1
  register: cdn
"""

RETURN = r"""
exists:
  description: Whether the distribution exists.
  returned: always
  type: bool
distribution:
  description: Same as M(hawa.platform.cloudfront_ha_distribution)'s C(distribution); empty when it does not exist.
  returned: always
  type: dict
  contains:
    id:
      description: Distribution id.
      type: str
    arn:
      description: Distribution ARN.
      type: str
    domain_name:
      description: The C(*.cloudfront.net) name.
      type: str
    status:
      description: C(InProgress) or C(Deployed).
      type: str
    etag:
      description: Current ETag.
      type: str
    config:
      description: Normalised view of the managed configuration.
      type: dict
    tags:
      description: Tags on the distribution.
      type: dict
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.cloudfront_ha import (
    find_distribution,
    normalize_config,
    tags_from_api,
)


def main():
    module = AnsibleAWSModule(argument_spec=dict(name=dict(type="str", required=True)), supports_check_mode=True)
    client = module.client("cloudfront", retry_decorator=AWSRetry.jittered_backoff())
    name = module.params["name"]
    try:
        summary, config, etag = find_distribution(client, name)
        if summary is None:
            module.exit_json(changed=False, exists=False, distribution={})
        tags = tags_from_api(client.list_tags_for_resource(aws_retry=True, Resource=summary["ARN"])["Tags"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to describe distribution {name!r}")
    module.exit_json(
        changed=False,
        exists=True,
        distribution={
            "id": summary["Id"],
            "arn": summary["ARN"],
            "domain_name": summary["DomainName"],
            "status": summary["Status"],
            "etag": etag,
            "config": normalize_config(config),
            "tags": tags,
        },
    )


if __name__ == "__main__":
    main()

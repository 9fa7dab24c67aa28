#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: cloudfront_ha_distribution
short_description: Idempotent CloudFront distribution with origin groups (origin failover)
version_added: 1.0.0
description:
  - Creates, updates and deletes a CloudFront distribution from a small declarative spec of
    custom and S3 origins (with their timeouts), origin groups that fail over from a primary to a
    secondary origin, the default and ordered cache behaviours, the viewer certificate and tags.
  - The distribution is identified by O(name), which becomes its C(CallerReference) and C(Name) tag.
  - The module compares a normalised view of the managed settings, so a second run with the same
    spec reports C(changed=false). Updates send the current C(ETag) as C(IfMatch); settings the spec
    does not manage (geo restrictions, custom error responses; logging unless O(logging) is given, the web
    ACL unless O(web_acl_id) is) are left as they are.
  - O(state=absent) disables the distribution, waits until CloudFront reports it C(Deployed), then
    deletes it (CloudFront refuses to delete an enabled distribution).
  - Unlike M(community.aws.cloudfront_distribution), which reports a change on every run and has no
    origin groups.
author:
  - hawa platform team (!UNKNOWN)
options:
  name:
    description:
      - Stable identifier of the distribution, used as its C(CallerReference) and C(Name) tag.
    type: str
    required: true
  state:
    description: Whether the distribution should exist.
    type: str
    choices: [present, absent]
    default: present
  comment:
    description: The distribution's comment.
    type: str
    default: ""
  enabled:
    description: Whether the distribution serves requests.
    type: bool
    default: true
  price_class:
    description: Edge locations to use.
    type: str
    choices: [PriceClass_100, PriceClass_200, PriceClass_All]
    default: PriceClass_100
  http_version:
    description: Highest HTTP version viewers may use.
    type: str
    choices: [http1.1, http2, http3, http2and3]
    default: http2and3
  ipv6_enabled:
    description: Answer AAAA queries for the distribution's domain name.
    type: bool
    default: true
  aliases:
    description: Alternate domain names (CNAMEs). They need O(acm_certificate_arn).
    type: list
    elements: str
    default: []
  acm_certificate_arn:
    description:
      - ARN of an ACM certificate in us-east-1 for O(aliases). Empty uses the default
        C(*.cloudfront.net) certificate.
    type: str
    default: ""
  minimum_protocol_version:
    description: Minimum TLS policy for viewers when O(acm_certificate_arn) is set.
    type: str
    default: TLSv1.2_2021
  origins:
    description:
      - The origins. At least one.
      - Required with O(state=present).
    type: list
    elements: dict
    suboptions:
      id:
        description: Unique origin id, referenced by origin groups and behaviours.
        type: str
        required: true
      domain_name:
        description: DNS name of the origin (an ALB, a failover record, a bucket's regional domain name).
        type: str
        required: true
      type:
        description: C(custom) for an HTTP(S) server, C(s3) for a private bucket behind origin access control.
        type: str
        choices: [custom, s3]
        default: custom
      origin_path:
        description: Path prepended to requests sent to the origin.
        type: str
        default: ""
      protocol_policy:
        description: Protocol CloudFront uses to reach a custom origin.
        type: str
        choices: [http-only, https-only, match-viewer]
        default: https-only
      http_port:
        description: HTTP port of a custom origin.
        type: int
        default: 80
      https_port:
        description: HTTPS port of a custom origin.
        type: int
        default: 443
      connection_attempts:
        description: Connection attempts before CloudFront gives up on the origin (1-3).
        type: int
        default: 3
      connection_timeout:
        description: Seconds to wait for a connection (1-10).
        type: int
        default: 10
      read_timeout:
        description: Seconds to wait for a response from a custom origin (1-120).
        type: int
        default: 30
      keepalive_timeout:
        description: Seconds a connection to a custom origin is kept idle (1-120).
        type: int
        default: 5
      origin_access_control_id:
        description: Origin access control id; required for O(origins[].type=s3).
        type: str
      custom_headers:
        description:
          - Headers CloudFront adds to every request to this origin, name to value - for example a secret header the
            origin's load balancer requires, so that it serves only through CloudFront.
          - The values are secrets - never logged; results and diffs show a digest of each.
        type: dict
        default: {}
  origin_groups:
    description: Origin groups for origin failover.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Unique group id, referenced by behaviours.
        type: str
        required: true
      primary:
        description: Origin id tried first.
        type: str
        required: true
      secondary:
        description: Origin id used when the primary fails.
        type: str
        required: true
      status_codes:
        description:
          - Origin response codes that fail over (from 400, 403, 404, 416, 500, 502, 503, 504).
            Connection failures and timeouts always fail over.
        type: list
        elements: int
        default: [500, 502, 503, 504]
  default_cache_behavior:
    description:
      - The behaviour for requests no ordered behaviour matches.
      - Same keys as O(cache_behaviors) without C(path_pattern).
      - Required with O(state=present).
    type: dict
    suboptions:
      target:
        description:
          - Origin id or origin group id. A behaviour that targets a group may allow only GET, HEAD and OPTIONS.
        type: str
        required: true
      viewer_protocol_policy:
        description: How viewers may connect.
        type: str
        choices: [redirect-to-https, https-only, allow-all]
        default: redirect-to-https
      allowed_methods:
        description: One of the sets CloudFront accepts (GET+HEAD, +OPTIONS, or all seven methods).
        type: list
        elements: str
        default: [GET, HEAD, OPTIONS]
      cached_methods:
        description: GET+HEAD, or GET+HEAD+OPTIONS.
        type: list
        elements: str
        default: [GET, HEAD]
      cache_policy_id:
        description:
          - Cache policy id, e.g. the managed C(CachingOptimized) 658327ea-f89d-4fab-a63d-7e88639e58f6 or
            C(CachingDisabled) 4135ea2d-6df8-44a3-9df3-4b5a84be39ad.
        type: str
        required: true
      origin_request_policy_id:
        description:
          - Origin request policy id, e.g. the managed C(AllViewerExceptHostHeader)
            b689b0a8-53d0-40ab-baf2-68738e2966ac. Empty for none.
        type: str
        default: ""
      compress:
        description: Compress objects for viewers that accept it.
        type: bool
        default: true
  cache_behaviors:
    description: Ordered cache behaviours, matched first to last.
    type: list
    elements: dict
    default: []
    suboptions:
      path_pattern:
        description: Path pattern, e.g. C(/static/*).
        type: str
        required: true
      target:
        description: Origin id or origin group id.
        type: str
        required: true
      viewer_protocol_policy:
        description: How viewers may connect.
        type: str
        choices: [redirect-to-https, https-only, allow-all]
        default: redirect-to-https
      allowed_methods:
        description: One of the sets CloudFront accepts.
        type: list
        elements: str
        default: [GET, HEAD, OPTIONS]
      cached_methods:
        description: GET+HEAD, or GET+HEAD+OPTIONS.
        type: list
        elements: str
        default: [GET, HEAD]
      cache_policy_id:
        description: Cache policy id.
        type: str
        required: true
      origin_request_policy_id:
        description: Origin request policy id; empty for none.
        type: str
        default: ""
      compress:
        description: Compress objects for viewers that accept it.
        type: bool
        default: true
  logging:
    description:
      - Standard (legacy) access logging to an S3 bucket. Omitted, the distribution's logging is left as it is.
      - CloudFront delivers these logs as its C(awslogsdelivery) account, granted FULL_CONTROL by a bucket ACL
        that CloudFront adds when the configuration is applied (the caller needs C(s3:GetBucketAcl) and
        C(s3:PutBucketAcl)). The bucket must therefore have ACLs enabled (object ownership
        C(BucketOwnerPreferred)); with C(BucketOwnerEnforced) the configuration is refused. Its default
        encryption must be SSE-S3 (SSE-KMS needs a key policy for the log delivery).
    type: dict
    suboptions:
      bucket:
        description:
          - The bucket's name (or its C(<name>.s3.amazonaws.com) domain name, which the API takes). Empty turns
            logging off.
        type: str
        required: true
      prefix:
        description: Key prefix of the log objects, e.g. C(cloudfront/).
        type: str
        default: ""
      include_cookies:
        description: Log cookies too.
        type: bool
        default: false
  web_acl_id:
    description:
      - The ARN of the AWS WAF (WAFv2) web ACL that filters the distribution's requests, one of scope
        C(CLOUDFRONT) (such web ACLs live in us-east-1). An empty string takes the web ACL off. Omitted, the
        distribution's web ACL is left as it is.
    type: str
  tags:
    description: Tags for the distribution (the C(Name) tag is always O(name)).
    type: dict
    default: {}
  purge_tags:
    description: Remove tags not in O(tags).
    type: bool
    default: true
  wait:
    description:
      - With O(state=present), wait until the distribution is C(Deployed). O(state=absent) always waits
        for the disabled distribution to deploy before deleting it.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 1200
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Distribution failing over from the primary ALB to the secondary
  cloudfront_ha_distribution:
    name: hawa-prod-cdn
    region: us-east-1
    comment: hawa production
    origins:
      - id: primary-alb
        domain_name: primary-123.us-east-1.elb.amazonaws.com
        connection_attempts: 1
        connection_timeout: 2
        read_timeout: 10
      - id: secondary-alb
        domain_name: secondary-456.us-west-2.elb.amazonaws.com
        connection_attempts: 1
        connection_timeout: 2
        read_timeout: 10
      - id: static
        type: s3
        domain_name: hawa-prod-static.s3.us-east-1.amazonaws.com
        origin_access_control_id: E2QWRUHAPOMQZL
    origin_groups:
      - id: app
        primary: primary-alb
        secondary: secondary-alb
        status_codes: [500, 502, 503, 504]
    default_cache_behavior:
      target: app
      cache_policy_id: 4135ea2d-6df8-44a3-9df3-4b5a84be39ad
      origin_request_policy_id: b689b0a8-53d0-40ab-baf2-68738e2966ac
    cache_behaviors:
      - path_pattern: /static/*
        target: static
        allowed_methods: [GET, HEAD]
        cache_policy_id: 658327ea-f89d-4fab-a63d-7e88639e58f6
    logging:
      bucket: hawa-prod-us-east-1-logs-123456789012
      prefix: cloudfront/
    tags:
      Project: hawa

- name: Remove it (disable, wait, delete)
  cloudfront_ha_distribution:
    name: hawa-prod-cdn
    region: us-east-1
    state: absent
"""

RETURN = r"""
distribution:
  description: The distribution (empty when absent; in check mode before creation, without id).
  returned: always
  type: dict
  contains:
    id:
      description: Distribution id.
      type: str
      sample: E1ABCDEF2GHIJK
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
      description: Current ETag of the configuration.
      type: str
    config:
      description: Normalised view of the managed configuration.
      type: dict
    tags:
      description: Tags on the distribution.
      type: dict
changed_settings:
  description: Names of the normalised settings that differ(ed) from the spec.
  returned: always
  type: list
  elements: str
  sample: [origins, default_cache_behavior]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.cloudfront_ha import (
    SpecError,
    build_config,
    check_origin_ranges,
    config_differences,
    find_distribution,
    merge_config,
    normalize_config,
    tag_changes,
    tags_from_api,
    tags_to_api,
    validate_spec,
)
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, run_waiter

POLL_DELAY_S = 5


class DistributionError(Exception):
    """A failure the module reports as-is (message already says what to do)."""


def get_distribution(client, distribution_id):
    response = client.get_distribution(aws_retry=True, Id=distribution_id)
    return response["Distribution"], response["ETag"]


def wait_deployed(client, distribution_id, timeout):
    """(distribution, etag) once CloudFront reports it Deployed: botocore's distribution_deployed waiter."""
    try:
        run_waiter(
            client.get_waiter("distribution_deployed"),
            f"distribution '{distribution_id}' to be Deployed",
            timeout,
            POLL_DELAY_S,
            lambda response: response.get("Distribution", {}).get("Status", "unknown"),
            Id=distribution_id,
        )
    except WaitTimeout as e:
        raise DistributionError(f"{e}; raise wait_timeout or run again later") from None
    # The waiter returns nothing; the result and a delete need the deployed ETag.
    return get_distribution(client, distribution_id)


def describe(distribution, etag, config, tags):
    return {
        "id": distribution.get("Id", ""),
        "arn": distribution.get("ARN", ""),
        "domain_name": distribution.get("DomainName", ""),
        "status": distribution.get("Status", ""),
        "etag": etag or "",
        "config": normalize_config(config),
        "tags": tags,
    }


def ensure_tags(client, arn, current, desired, purge, check_mode):
    to_set, to_remove = tag_changes(current, desired, purge)
    if (to_set or to_remove) and not check_mode:
        if to_remove:
            client.untag_resource(aws_retry=True, Resource=arn, TagKeys={"Items": to_remove})
        if to_set:
            client.tag_resource(aws_retry=True, Resource=arn, Tags=tags_to_api(to_set))
    return bool(to_set or to_remove)


def ensure_present(client, params, check_mode):
    name = params["name"]
    desired = build_config(params, name)
    desired_tags = dict(params["tags"], Name=name)
    summary, current, etag = find_distribution(client, name)

    if summary is None:
        if check_mode:
            return True, ["state"], describe({}, "", desired, desired_tags), {}
        response = client.create_distribution_with_tags(
            aws_retry=True,
            DistributionConfigWithTags={"DistributionConfig": desired, "Tags": tags_to_api(desired_tags)},
        )
        distribution, etag = response["Distribution"], response["ETag"]
        if params["wait"]:
            distribution, etag = wait_deployed(client, distribution["Id"], params["wait_timeout"])
        return True, ["state"], describe(distribution, etag, desired, desired_tags), {}

    differences = config_differences(current, desired)
    before = normalize_config(current)
    distribution, _ = get_distribution(client, summary["Id"])
    arn = distribution["ARN"]
    current_tags = tags_from_api(client.list_tags_for_resource(aws_retry=True, Resource=arn)["Tags"])
    tags_changed = ensure_tags(client, arn, current_tags, desired_tags, params["purge_tags"], check_mode)
    tags = desired_tags if params["purge_tags"] else dict(current_tags, **desired_tags)
    # What the distribution has once updated: the spec's settings over the ones it leaves alone (logging, if unset).
    if differences and not check_mode:
        merged = merge_config(current, desired)
        response = client.update_distribution(aws_retry=True, Id=summary["Id"], IfMatch=etag, DistributionConfig=merged)
        distribution, etag = response["Distribution"], response["ETag"]
        current = merged
    elif differences:
        current = merge_config(current, desired)
    if params["wait"] and not check_mode:
        distribution, etag = wait_deployed(client, summary["Id"], params["wait_timeout"])
    if tags_changed:
        differences = sorted(set(differences) | {"tags"})
    before["tags"] = current_tags
    return bool(differences), differences, describe(distribution, etag, current, tags), before


def ensure_absent(client, params, check_mode):
    summary, config, etag = find_distribution(client, params["name"])
    if summary is None:
        return False, [], {}, {}
    before = normalize_config(config)
    if check_mode:
        return True, ["state"], {}, before
    if config.get("Enabled"):
        config = dict(config, Enabled=False)
        etag = client.update_distribution(aws_retry=True, Id=summary["Id"], IfMatch=etag, DistributionConfig=config)[
            "ETag"
        ]
    # Disabling deploys to every edge location (minutes on AWS); the delete needs its final ETag.
    _, etag = wait_deployed(client, summary["Id"], params["wait_timeout"])
    client.delete_distribution(aws_retry=True, Id=summary["Id"], IfMatch=etag)
    return True, ["state"], {}, before


BEHAVIOR_OPTIONS = dict(
    target=dict(type="str", required=True),
    viewer_protocol_policy=dict(
        type="str", default="redirect-to-https", choices=["redirect-to-https", "https-only", "allow-all"]
    ),
    allowed_methods=dict(type="list", elements="str", default=["GET", "HEAD", "OPTIONS"]),
    cached_methods=dict(type="list", elements="str", default=["GET", "HEAD"]),
    cache_policy_id=dict(type="str", required=True),
    origin_request_policy_id=dict(type="str", default=""),
    compress=dict(type="bool", default=True),
)


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        comment=dict(type="str", default=""),
        enabled=dict(type="bool", default=True),
        price_class=dict(
            type="str", default="PriceClass_100", choices=["PriceClass_100", "PriceClass_200", "PriceClass_All"]
        ),
        http_version=dict(type="str", default="http2and3", choices=["http1.1", "http2", "http3", "http2and3"]),
        ipv6_enabled=dict(type="bool", default=True),
        aliases=dict(type="list", elements="str", default=[]),
        acm_certificate_arn=dict(type="str", default=""),
        minimum_protocol_version=dict(type="str", default="TLSv1.2_2021"),
        origins=dict(
            type="list",
            elements="dict",
            options=dict(
                id=dict(type="str", required=True),
                domain_name=dict(type="str", required=True),
                type=dict(type="str", default="custom", choices=["custom", "s3"]),
                origin_path=dict(type="str", default=""),
                protocol_policy=dict(
                    type="str", default="https-only", choices=["http-only", "https-only", "match-viewer"]
                ),
                http_port=dict(type="int", default=80),
                https_port=dict(type="int", default=443),
                connection_attempts=dict(type="int", default=3),
                connection_timeout=dict(type="int", default=10),
                read_timeout=dict(type="int", default=30),
                keepalive_timeout=dict(type="int", default=5),
                origin_access_control_id=dict(type="str"),
                custom_headers=dict(type="dict", default={}, no_log=True),
            ),
        ),
        origin_groups=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                id=dict(type="str", required=True),
                primary=dict(type="str", required=True),
                secondary=dict(type="str", required=True),
                status_codes=dict(type="list", elements="int", default=[500, 502, 503, 504]),
            ),
        ),
        default_cache_behavior=dict(type="dict", options=BEHAVIOR_OPTIONS),
        cache_behaviors=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(path_pattern=dict(type="str", required=True), **BEHAVIOR_OPTIONS),
        ),
        logging=dict(
            type="dict",
            options=dict(
                bucket=dict(type="str", required=True),
                prefix=dict(type="str", default=""),
                include_cookies=dict(type="bool", default=False),
            ),
        ),
        web_acl_id=dict(type="str"),
        tags=dict(type="dict", default={}),
        purge_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=1200),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["origins", "default_cache_behavior"])],
        supports_check_mode=True,
    )
    params = module.params
    if params["state"] == "present":
        try:
            validate_spec(
                params["origins"], params["origin_groups"], params["default_cache_behavior"], params["cache_behaviors"]
            )
            check_origin_ranges(params["origins"])
            if params["aliases"] and not params["acm_certificate_arn"]:
                raise SpecError(
                    "aliases need acm_certificate_arn (the default certificate covers only *.cloudfront.net)"
                )
        except SpecError as e:
            module.fail_json(msg=f"Invalid distribution spec for {params['name']!r}: {e}")

    client = module.client("cloudfront", retry_decorator=AWSRetry.jittered_backoff())
    try:
        if params["state"] == "present":
            changed, differences, distribution, before = ensure_present(client, params, module.check_mode)
        else:
            changed, differences, distribution, before = ensure_absent(client, params, module.check_mode)
    except DistributionError as e:
        module.fail_json(msg=str(e))
    except is_boto3_error_code("PreconditionFailed") as e:
        module.fail_json_aws(
            e, msg=f"Failed to update distribution {params['name']!r}: it changed while we worked; run again"
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(
            e, msg=f"Failed to {'apply' if params['state'] == 'present' else 'delete'} distribution {params['name']!r}"
        )
    result = dict(changed=changed, changed_settings=differences, distribution=distribution)
    if module._diff:
        after = dict(distribution["config"], tags=distribution["tags"]) if distribution else {}
        result["diff"] = {"before": before, "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()

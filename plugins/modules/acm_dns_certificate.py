#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: acm_dns_certificate
short_description: Request a public ACM certificate validated by DNS, or delete it
version_added: 1.0.0
description:
  - Requests (C(RequestCertificate)) a public certificate with DNS validation, once, and returns the CNAME
    records that prove control of its names, so that the caller can create them (M(amazon.aws.route53)) and,
    with O(wait=true), wait until ACM issues it.
  - The certificate's C(Name) tag O(name_tag) identifies it, as M(community.aws.acm_certificate) does; that module
    only imports certificates.
  - A certificate cannot be changed once requested. If the certificate called O(name_tag) covers other names than
    those asked, the module fails rather than requesting a second one; use another O(name_tag), or delete that
    certificate once nothing uses it.
  - Certificates that ACM gave up on (C(FAILED), C(VALIDATION_TIMED_OUT)), or that were revoked, expired or are
    inactive, are ignored by O(state=present), which requests a new one beside them; O(state=absent) deletes them
    too.
author:
  - hawa platform team (!UNKNOWN)
options:
  name_tag:
    description: The value of the certificate's C(Name) tag, which identifies it.
    type: str
    required: true
  domain_name:
    description:
      - The certificate's main name (its subject). Required with O(state=present).
    type: str
  subject_alternative_names:
    description:
      - Further names the certificate covers. O(domain_name) may be repeated here; the order does not matter.
    type: list
    elements: str
    default: []
  tags:
    description:
      - Tags given to the certificate when it is requested, beside C(Name). Not changed on an existing certificate.
    type: dict
    default: {}
  state:
    description: Whether the certificate should exist.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - With O(state=present), wait until the certificate is C(ISSUED). ACM issues it once every validation record
        exists in the public zone of its name, which takes minutes on AWS.
    type: bool
    default: false
  wait_timeout:
    description: How long to wait, in seconds, with O(wait=true).
    type: int
    default: 900
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - A certificate for CloudFront must be requested in us-east-1.
  - A certificate in use (by a load balancer listener, a CloudFront distribution) cannot be deleted; remove the
    user first.
"""

EXAMPLES = r"""
- name: Request the site's certificate
  hawa.platform.acm_dns_certificate:
    region: us-east-1
    name_tag: hawa-production-site
    domain_name: example.com
    subject_alternative_names: [www.example.com]
    tags:
      Project: hawa
  register: __certificate

- name: Create its validation records
  amazon.aws.route53:
    zone: example.com
    record: "{{ item.name }}"
    type: "{{ item.type }}"
    value: "{{ item.value }}"
    ttl: 300
    overwrite: true
  loop: "{{ __certificate.certificate.validation_records }}"

- name: Wait until ACM issues it
  hawa.platform.acm_dns_certificate:
    region: us-east-1
    name_tag: hawa-production-site
    domain_name: example.com
    subject_alternative_names: [www.example.com]
    wait: true

- name: Delete it (once no listener or distribution uses it)
  hawa.platform.acm_dns_certificate:
    region: us-east-1
    name_tag: hawa-production-site
    state: absent
"""

RETURN = r"""
certificate:
  description:
    - The certificate after the task; empty when absent. In check mode, when it would be requested, only
      O(domain_name) and O(subject_alternative_names), without C(arn).
  returned: always
  type: dict
  contains:
    arn:
      description: The certificate's ARN.
      type: str
      sample: arn:aws:acm:us-east-1:123456789012:certificate/0b3b8a0e-1f7c-4d2b-9a55-5d8d3bcf1c11
    domain_name:
      description: Its main name.
      type: str
      sample: example.com
    subject_alternative_names:
      description: Every name it covers, O(domain_name) included, as ACM lists them.
      type: list
      elements: str
      sample: [example.com, www.example.com]
    status:
      description: Its status (C(PENDING_VALIDATION), C(ISSUED), ...).
      type: str
      sample: PENDING_VALIDATION
    in_use_by:
      description: ARNs of the resources using it.
      type: list
      elements: str
    not_after:
      description: When it expires (ISO 8601); only once issued.
      type: str
      returned: when issued
    validation_records:
      description:
        - The DNS records that validate it, to create in the public zone of each name. A record shared by several
          names (C(example.com) and C(*.example.com)) is listed once, with the first of them.
      type: list
      elements: dict
      contains:
        domain_name:
          description: The name it validates.
          type: str
        name:
          description: The record's name.
          type: str
          sample: _a79865eb4cd1a6ab990a45779b4e0b96.example.com.
        type:
          description: The record's type.
          type: str
          sample: CNAME
        value:
          description: The record's value.
          type: str
          sample: _424c7224e9b0146f9a8808af955727d0.acm-validations.aws.
        validation_status:
          description: C(PENDING_VALIDATION), C(SUCCESS) or C(FAILED).
          type: str
msg:
  description: In check mode, what would be requested.
  returned: when a certificate would be requested in check mode
  type: str
"""

import contextlib
import functools
import hashlib
import time

with contextlib.suppress(ImportError):  # protected by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, wait_until

# Every status: without CertificateStatuses ListCertificates still lists all, but say so rather than rely on it.
ALL_STATUSES = ["PENDING_VALIDATION", "ISSUED", "INACTIVE", "EXPIRED", "VALIDATION_TIMED_OUT", "REVOKED", "FAILED"]
# Certificates that will never serve: present requests a new one beside them.
UNUSABLE = {"FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED", "INACTIVE"}
# ListCertificates lists only RSA_1024 and RSA_2048 keys unless asked for more: a certificate of another
# key type made elsewhere under the same Name tag must be seen too.
KEY_TYPES = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]

# AWS fills a new certificate's ResourceRecords a few seconds after the request.
RECORDS_DELAY_S = 2
RECORDS_TIMEOUT_S = 60
# Waiting for ISSUED: AWS takes minutes, an emulator seconds. Start short, back off to AWS's own 5-10 s.
ISSUED_DELAY_S = 1
ISSUED_MAX_DELAY_S = 10
# A certificate just requested may not be readable at once (eventual consistency).
NEW_CERTIFICATE_TIMEOUT_S = 8


class CertificateError(Exception):
    """A failure whose message says what to change; main() turns it into fail_json."""


def names_of(domain_name, subject_alternative_names):
    """The set of names a certificate covers: ACM lists the DomainName among the SANs as well."""
    return {n.lower() for n in [domain_name, *(subject_alternative_names or [])] if n}


def idempotency_token(name_tag, domain_name, subject_alternative_names, salt=""):
    """A token for RequestCertificate (ACM: [\\w]+, at most 32 characters), the same for the same request, so that a
    retried call does not make a second certificate."""
    names = ",".join(sorted(names_of(domain_name, subject_alternative_names)))
    return hashlib.sha256(f"{name_tag}|{names}|{salt}".encode()).hexdigest()[:32]


def list_certificates(client):
    paginator = client.get_paginator("list_certificates")
    result = AWSRetry.jittered_backoff()(
        lambda: paginator.paginate(
            CertificateStatuses=ALL_STATUSES, Includes={"keyTypes": KEY_TYPES}
        ).build_full_result()
    )()
    return result.get("CertificateSummaryList", [])


def find_tagged(client, name_tag):
    """Summaries (ListCertificates) of every certificate whose Name tag is name_tag, in any status."""
    found = []
    for summary in list_certificates(client):
        try:
            tags = client.list_tags_for_certificate(aws_retry=True, CertificateArn=summary["CertificateArn"])["Tags"]
        except is_boto3_error_code("ResourceNotFoundException"):
            continue  # deleted since it was listed
        if any(t["Key"] == "Name" and t.get("Value") == name_tag for t in tags):
            found.append(summary)
    return found


def describe_certificate(client, arn):
    return client.describe_certificate(aws_retry=True, CertificateArn=arn)["Certificate"]


def validation_records(certificate):
    """The records to create, each (name, value) once: example.com and *.example.com share theirs."""
    records, seen = [], set()
    for option in certificate.get("DomainValidationOptions", []):
        record = option.get("ResourceRecord")
        if not record or (record["Name"], record["Value"]) in seen:
            continue
        seen.add((record["Name"], record["Value"]))
        records.append(
            {
                "domain_name": option["DomainName"],
                "name": record["Name"],
                "type": record["Type"],
                "value": record["Value"],
                "validation_status": option.get("ValidationStatus", ""),
            }
        )
    return records


def result_certificate(certificate):
    result = {
        "arn": certificate["CertificateArn"],
        "domain_name": certificate["DomainName"],
        "subject_alternative_names": certificate.get("SubjectAlternativeNames", []),
        "status": certificate["Status"],
        "in_use_by": certificate.get("InUseBy", []),
        "validation_records": validation_records(certificate),
    }
    if certificate.get("NotAfter"):
        not_after = certificate["NotAfter"]
        result["not_after"] = not_after.isoformat() if hasattr(not_after, "isoformat") else str(not_after)
    return result


def records_complete(certificate):
    """True once every name has its validation record, or when none will come (no longer pending)."""
    if certificate["Status"] != "PENDING_VALIDATION":
        return True
    options = certificate.get("DomainValidationOptions", [])
    covered = {o["DomainName"].lower() for o in options if o.get("ResourceRecord")}
    wanted = names_of(certificate["DomainName"], certificate.get("SubjectAlternativeNames"))
    return bool(options) and wanted <= covered and all(o.get("ResourceRecord") for o in options)


def pending_names(certificate):
    return [
        o["DomainName"]
        for o in certificate.get("DomainValidationOptions", [])
        if o.get("ValidationStatus") != "SUCCESS"
    ]


def wait_for_records(client, arn, sleep):
    try:
        return wait_until(
            lambda: describe_certificate(client, arn),
            records_complete,
            f"the validation records of certificate {arn}",
            RECORDS_TIMEOUT_S,
            delay=RECORDS_DELAY_S,
            state=lambda c: f"{len(validation_records(c))} record(s) for {len(pending_names(c))} pending name(s)",
            sleep=sleep,
        )
    except WaitTimeout as e:
        raise CertificateError(str(e)) from None


def wait_for_issued(client, arn, timeout, sleep):
    """Poll until ISSUED; CertificateError when ACM gives up or the deadline passes first."""
    try:
        certificate = wait_until(
            lambda: describe_certificate(client, arn),
            lambda c: c["Status"] != "PENDING_VALIDATION",
            f"certificate {arn} to be issued",
            timeout,
            delay=ISSUED_DELAY_S,
            max_delay=ISSUED_MAX_DELAY_S,
            state=lambda c: c["Status"],
            sleep=sleep,
        )
    except WaitTimeout as e:
        last = e.last or {}
        records = "; ".join(f"{r['name']} CNAME {r['value']}" for r in validation_records(last)) or "none listed yet"
        raise CertificateError(
            f"{e}. Names still pending validation: {', '.join(pending_names(last)) or 'none'}. ACM issues the "
            f"certificate once these CNAME records exist in the public zone of each name: {records}"
        ) from None
    if certificate["Status"] != "ISSUED":
        raise CertificateError(
            f"Certificate {arn} is {certificate['Status']}, not ISSUED: "
            f"{certificate.get('FailureReason', 'ACM gave no reason')}. Delete it (state=absent) and request it again "
            "once the validation records exist."
        )
    return certificate


def check_matches(name_tag, certificate, domain_name, subject_alternative_names):
    """CertificateError when the certificate found covers other names than those asked (it cannot be changed)."""
    has = names_of(certificate["DomainName"], certificate.get("SubjectAlternativeNames"))
    wanted = names_of(domain_name, subject_alternative_names)
    if certificate["DomainName"].lower() == domain_name.lower() and has == wanted:
        return
    raise CertificateError(
        f"Certificate {certificate['CertificateArn']} tagged Name={name_tag} has domain_name "
        f"{certificate['DomainName']} and names {sorted(has)}, but domain_name {domain_name} and names {sorted(wanted)} "
        "were asked. A certificate cannot be changed: use another name_tag, or delete that certificate "
        "(state=absent) once nothing uses it."
    )


def describe_if_found(client, arn):
    """The certificate as described, or None while ACM does not know it (yet, or any more)."""
    try:
        return describe_certificate(client, arn)
    except is_boto3_error_code("ResourceNotFoundException"):
        return None


def request(client, name_tag, domain_name, subject_alternative_names, tags, sleep):
    """RequestCertificate, then the certificate as described; returns its description."""
    params = {
        "DomainName": domain_name,
        "ValidationMethod": "DNS",
        "Tags": [{"Key": "Name", "Value": name_tag}]
        + [{"Key": k, "Value": str(v)} for k, v in sorted(tags.items()) if k != "Name"],
    }
    extra = sorted(names_of(None, subject_alternative_names) - {domain_name.lower()})
    if extra:
        params["SubjectAlternativeNames"] = [domain_name, *extra]
    salt = ""
    for _ in range(2):
        token = idempotency_token(name_tag, domain_name, subject_alternative_names, salt)
        arn = client.request_certificate(aws_retry=True, IdempotencyToken=token, **params)["CertificateArn"]
        try:
            return wait_until(
                functools.partial(describe_if_found, client, arn),
                lambda c: c is not None,
                f"new certificate {arn} to be readable",
                NEW_CERTIFICATE_TIMEOUT_S,
                delay=RECORDS_DELAY_S,
                state=lambda c: "not found",
                sleep=sleep,
            )
        except WaitTimeout:
            # ACM answers a token it saw in the last hour with the same certificate, even one deleted since
            # (state=absent, then present again): request anew with a token of its own.
            salt = arn
    raise CertificateError(f"ACM returned certificate {arn} for a new request, but it cannot be described")


def ensure_present(client, p, check_mode, sleep):
    name_tag, domain_name, sans = p["name_tag"], p["domain_name"], p["subject_alternative_names"]
    usable = [s for s in find_tagged(client, name_tag) if s.get("Status") not in UNUSABLE]
    if len(usable) > 1:
        arns = ", ".join(s["CertificateArn"] for s in usable)
        raise CertificateError(
            f"{len(usable)} certificates are tagged Name={name_tag}: {arns}. Delete all but one (or all, with "
            "state=absent) once nothing uses them."
        )
    changed = not usable
    if usable:
        certificate = describe_certificate(client, usable[0]["CertificateArn"])
        check_matches(name_tag, certificate, domain_name, sans)
    elif check_mode:
        names = sorted(names_of(domain_name, sans))
        return {
            "changed": True,
            "certificate": {"domain_name": domain_name, "subject_alternative_names": names},
            "msg": f"Would request a certificate tagged Name={name_tag} for {', '.join(names)} (check mode)",
        }
    else:
        certificate = request(client, name_tag, domain_name, sans, p["tags"], sleep)
    arn = certificate["CertificateArn"]
    certificate = wait_for_records(client, arn, sleep) if not records_complete(certificate) else certificate
    if p["wait"] and certificate["Status"] != "ISSUED":
        certificate = wait_for_issued(client, arn, p["wait_timeout"], sleep)
    return {"changed": changed, "certificate": result_certificate(certificate)}


def ensure_absent(client, name_tag, check_mode):
    found = find_tagged(client, name_tag)
    if not check_mode:
        for summary in found:
            arn = summary["CertificateArn"]
            try:
                client.delete_certificate(aws_retry=True, CertificateArn=arn)
            except is_boto3_error_code("ResourceNotFoundException"):
                continue  # gone meanwhile
            except is_boto3_error_code("ResourceInUseException"):
                in_use_by = describe_certificate(client, arn).get("InUseBy", [])
                raise CertificateError(
                    f"Certificate {arn} tagged Name={name_tag} is in use by {', '.join(in_use_by) or 'another resource'}: "
                    "remove the listener or distribution that uses it first, then delete it."
                ) from None
    return {"changed": bool(found), "certificate": {}}


def ensure_certificate(client, p, check_mode, sleep):
    if p["state"] == "absent":
        return ensure_absent(client, p["name_tag"], check_mode)
    return ensure_present(client, p, check_mode, sleep)


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name_tag=dict(type="str", required=True),
            domain_name=dict(type="str"),
            subject_alternative_names=dict(type="list", elements="str", default=[]),
            tags=dict(type="dict", default={}),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=900),
        ),
        required_if=[["state", "present", ["domain_name"]]],
        supports_check_mode=True,
    )
    p = module.params
    if p["tags"].get("Name", p["name_tag"]) != p["name_tag"]:
        module.fail_json(
            msg=f"tags.Name is {p['tags']['Name']!r} but name_tag is {p['name_tag']!r}: leave Name out of tags"
        )
    client = module.client("acm", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = ensure_certificate(client, p, module.check_mode, sleep=time.sleep)
    except CertificateError as e:
        module.fail_json(msg=str(e))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(
            e, msg=f"Failed to manage the ACM certificate tagged Name={p['name_tag']} in {module.region}"
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()

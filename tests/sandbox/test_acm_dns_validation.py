"""A DNS-validated ACM certificate is issued once its validation records exist in the sandbox's public
Route 53 zones (sandbox/services/acm/patches.py): one record per (account, name), whatever the certificate
or region; a certificate that load balancers or distributions use cannot be deleted."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.config import SandboxConfig

NAME = re.compile(r"^_[0-9a-f]{32}\.(?P<domain>.+)\.$")
VALUE = re.compile(r"^_[0-9a-f]{32}\.[0-9a-z]{10}\.acm-validations\.aws\.$")


def _domain() -> str:
    return f"acm{uuid.uuid4().hex[:10]}.example.net"


def _zone(route53: Any, name: str, **kwargs: Any) -> str:
    return route53.create_hosted_zone(Name=name, CallerReference=f"{name}-{uuid.uuid4().hex}", **kwargs)["HostedZone"][
        "Id"
    ]


def _cname(route53: Any, zone_id: str, name: str, value: str) -> None:
    record = {"Name": name, "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": value}]}
    route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]}
    )


def _request(acm: Any, domain: str, *sans: str) -> str:
    extra = {"SubjectAlternativeNames": [domain, *sans]} if sans else {}
    return acm.request_certificate(DomainName=domain, ValidationMethod="DNS", **extra)["CertificateArn"]


def _describe(acm: Any, arn: str) -> dict[str, Any]:
    return acm.describe_certificate(CertificateArn=arn)["Certificate"]


def _records(acm: Any, arn: str) -> dict[str, dict[str, str]]:
    return {o["DomainName"]: o["ResourceRecord"] for o in _describe(acm, arn)["DomainValidationOptions"]}


def test_a_new_certificate_is_pending_with_a_record_of_its_own_per_name(aws: Callable[..., Any]) -> None:
    acm = aws("acm")
    domain = _domain()
    arn = _request(acm, f"www.{domain}", f"api.{domain}")
    certificate = _describe(acm, arn)
    assert certificate["Status"] == "PENDING_VALIDATION"
    for absent in ("IssuedAt", "NotBefore", "NotAfter", "Serial"):
        assert absent not in certificate
    options = certificate["DomainValidationOptions"]
    assert [o["DomainName"] for o in options] == [f"www.{domain}", f"api.{domain}"]
    assert certificate["SubjectAlternativeNames"] == [f"www.{domain}", f"api.{domain}"]
    for option in options:
        assert option["ValidationMethod"] == "DNS"
        assert option["ValidationStatus"] == "PENDING_VALIDATION"
        assert option["ValidationDomain"] == option["DomainName"]
        record = option["ResourceRecord"]
        assert record["Type"] == "CNAME"
        assert NAME.match(record["Name"])["domain"] == option["DomainName"]  # type: ignore[index]
        assert VALUE.match(record["Value"])
    first, second = (o["ResourceRecord"] for o in options)
    assert first["Name"].split(".")[0] != second["Name"].split(".")[0]
    assert first["Value"] != second["Value"]


def test_one_name_has_one_record_across_certificates_and_regions_and_it_validates_them_all(
    aws: Callable[..., Any],
) -> None:
    east, west, route53 = aws("acm", "us-east-1"), aws("acm", "us-west-2"), aws("route53")
    domain = _domain()
    zone_id = _zone(route53, domain)
    arns = [
        (east, _request(east, f"app.{domain}")),
        (east, _request(east, f"app.{domain}")),
        (west, _request(west, f"app.{domain}")),
    ]
    records = [_records(acm, arn)[f"app.{domain}"] for acm, arn in arns]
    assert records[0] == records[1] == records[2]
    assert _records(east, _request(east, f"other.{domain}"))[f"other.{domain}"] != records[0]

    _cname(route53, zone_id, records[0]["Name"], records[0]["Value"])
    for acm, arn in arns:
        certificate = _describe(acm, arn)
        assert certificate["Status"] == "ISSUED"
        assert certificate["DomainValidationOptions"][0]["ValidationStatus"] == "SUCCESS"


def test_it_stays_pending_without_the_exact_record_in_the_public_zone_that_holds_the_name(
    aws: Callable[..., Any],
) -> None:
    acm, route53, ec2 = aws("acm"), aws("route53"), aws("ec2")
    domain = _domain()
    public = _zone(route53, domain)
    deeper = _zone(route53, f"sub.{domain}")
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    private = _zone(
        route53,
        f"sub.{domain}",
        VPC={"VPCRegion": "us-east-1", "VPCId": vpc},
        HostedZoneConfig={"PrivateZone": True, "Comment": "private"},
    )
    arn = _request(acm, f"www.sub.{domain}")
    record = _records(acm, arn)[f"www.sub.{domain}"]
    # A wrong value where it belongs; the right one in a private zone, and in the parent zone, which a
    # resolver never asks for www.sub.<domain> (sub.<domain> is a zone of its own).
    _cname(route53, deeper, record["Name"], "_0123456789abcdef0123456789abcdef.wrongvalue.acm-validations.aws.")
    _cname(route53, private, record["Name"], record["Value"])
    _cname(route53, public, record["Name"], record["Value"])
    certificate = _describe(acm, arn)
    assert certificate["Status"] == "PENDING_VALIDATION"
    assert certificate["DomainValidationOptions"][0]["ValidationStatus"] == "PENDING_VALIDATION"
    assert [
        c["CertificateArn"] for c in acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]
    ].count(arn) == 0

    # Without the trailing dots, the value in upper case: DNS names compare case-insensitively.
    _cname(route53, deeper, record["Name"].rstrip("."), record["Value"].upper().rstrip("."))
    assert _describe(acm, arn)["Status"] == "ISSUED"


def test_a_certificate_with_a_subject_alternative_name_needs_both_records(aws: Callable[..., Any]) -> None:
    acm, route53 = aws("acm"), aws("route53")
    domain = _domain()
    zone_id = _zone(route53, domain)
    arn = _request(acm, domain, f"www.{domain}")
    records = _records(acm, arn)

    _cname(route53, zone_id, records[domain]["Name"], records[domain]["Value"])
    certificate = _describe(acm, arn)
    assert certificate["Status"] == "PENDING_VALIDATION"
    statuses = {o["DomainName"]: o["ValidationStatus"] for o in certificate["DomainValidationOptions"]}
    assert statuses == {domain: "SUCCESS", f"www.{domain}": "PENDING_VALIDATION"}

    _cname(route53, zone_id, records[f"www.{domain}"]["Name"], records[f"www.{domain}"]["Value"])
    # Read first through ListCertificates: every read checks.
    listed = acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]
    assert arn in [c["CertificateArn"] for c in listed]
    certificate = _describe(acm, arn)
    assert certificate["Status"] == "ISSUED"
    assert {o["ValidationStatus"] for o in certificate["DomainValidationOptions"]} == {"SUCCESS"}
    assert certificate["NotBefore"] <= certificate["IssuedAt"] < certificate["NotAfter"]
    assert acm.get_certificate(CertificateArn=arn)["Certificate"].startswith("-----BEGIN CERTIFICATE-----")


def test_a_wildcard_is_validated_by_the_record_of_its_parent_name(aws: Callable[..., Any]) -> None:
    acm, route53 = aws("acm"), aws("route53")
    domain = _domain()
    zone_id = _zone(route53, domain)
    arn = _request(acm, f"*.{domain}", domain)
    records = _records(acm, arn)
    assert records[f"*.{domain}"] == records[domain]
    assert NAME.match(records[domain]["Name"])["domain"] == domain  # type: ignore[index]

    _cname(route53, zone_id, records[domain]["Name"], records[domain]["Value"])
    certificate = _describe(acm, arn)
    assert certificate["Status"] == "ISSUED"
    assert [o["ValidationStatus"] for o in certificate["DomainValidationOptions"]] == ["SUCCESS", "SUCCESS"]


def test_email_validation_lists_the_addresses_and_stays_pending(aws: Callable[..., Any]) -> None:
    acm = aws("acm")
    domain = _domain()
    arn = acm.request_certificate(DomainName=f"www.{domain}")["CertificateArn"]
    (option,) = _describe(acm, arn)["DomainValidationOptions"]
    assert option["ValidationMethod"] == "EMAIL"
    assert option["ValidationStatus"] == "PENDING_VALIDATION"
    assert "ResourceRecord" not in option
    assert f"admin@www.{domain}" in option["ValidationEmails"]


def test_moto_s_timer_never_issues(sandbox: SandboxConfig) -> None:
    """Moto issued any pending certificate MOTO_ACM_VALIDATION_WAIT seconds (60) after its request: the
    sandbox replaces that check (the server's patch list), and the replacement leaves an old one pending."""
    import datetime

    from moto.acm.models import CertBundle

    from sandbox.services.acm import patches as acm_patches

    with urllib.request.urlopen(f"{sandbox.endpoint}/_sandbox/patches", timeout=10) as resp:  # noqa: S310 - loopback
        owners = {entry["patch"]: entry["owner"] for entry in json.load(resp)}
    assert owners["moto.acm.models.CertBundle.check"] == "sandbox.services.acm.patches"

    bundle = CertBundle.generate_cert("old.example.net", account_id="123456789012", region="us-east-1")
    bundle.created_at -= datetime.timedelta(days=1)
    setattr(bundle, acm_patches.STATE, acm_patches.Validation("EMAIL", ["old.example.net"]))
    acm_patches.check(bundle)
    assert bundle.status == "PENDING_VALIDATION"


def test_a_certificate_in_use_cannot_be_deleted(aws: Callable[..., Any]) -> None:
    acm, ec2, elb, cloudfront = aws("acm"), aws("ec2"), aws("elbv2"), aws("cloudfront")
    vpc = ec2.create_vpc(CidrBlock="10.92.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.92.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    name = f"acm-{uuid.uuid4().hex[:8]}"
    lb = elb.create_load_balancer(Name=name, Subnets=subnets, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    listened = acm.request_certificate(DomainName=f"www.{_domain()}")["CertificateArn"]
    distributed = acm.request_certificate(DomainName=f"cdn.{_domain()}")["CertificateArn"]
    unused = acm.request_certificate(DomainName=f"spare.{_domain()}")["CertificateArn"]
    listener = elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTPS",
        Port=443,
        Certificates=[{"CertificateArn": listened}],
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    dist = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": name,
            "Comment": name,
            "Enabled": False,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "o",
                        "DomainName": "origin.example.net",
                        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "o",
                "ViewerProtocolPolicy": "allow-all",
                "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
            },
            "ViewerCertificate": {
                "ACMCertificateArn": distributed,
                "SSLSupportMethod": "sni-only",
                "MinimumProtocolVersion": "TLSv1.2_2021",
            },
        }
    )["Distribution"]
    try:
        assert _describe(acm, listened)["InUseBy"] == [lb]
        assert _describe(acm, distributed)["InUseBy"] == [dist["ARN"]]
        for arn in (listened, distributed):
            with pytest.raises(ClientError) as caught:
                acm.delete_certificate(CertificateArn=arn)
            assert caught.value.response["Error"]["Code"] == "ResourceInUseException"
        summaries = {c["CertificateArn"]: c["InUse"] for c in acm.list_certificates()["CertificateSummaryList"]}
        assert summaries[listened] is True and summaries[unused] is False
        acm.delete_certificate(CertificateArn=unused)
    finally:
        elb.delete_listener(ListenerArn=listener)
        elb.delete_load_balancer(LoadBalancerArn=lb)
        etag = cloudfront.get_distribution(Id=dist["Id"])["ETag"]
        cloudfront.delete_distribution(Id=dist["Id"], IfMatch=etag)
    assert _describe(acm, listened)["InUseBy"] == []
    acm.delete_certificate(CertificateArn=listened)
    acm.delete_certificate(CertificateArn=distributed)


def test_a_token_whose_certificate_was_deleted_requests_a_new_one(aws: Callable[..., Any]) -> None:
    """A deploy right after a teardown asks again with the same IdempotencyToken within the hour."""
    acm, domain = aws("acm", "us-east-1"), _domain()
    token = uuid.uuid4().hex
    request = {"DomainName": domain, "ValidationMethod": "DNS", "IdempotencyToken": token}
    first = acm.request_certificate(**request)["CertificateArn"]
    assert acm.request_certificate(**request)["CertificateArn"] == first, "within the hour: the same certificate"
    acm.delete_certificate(CertificateArn=first)
    again = acm.request_certificate(**request)["CertificateArn"]
    assert again != first
    assert _describe(acm, again)["Status"] == "PENDING_VALIDATION"

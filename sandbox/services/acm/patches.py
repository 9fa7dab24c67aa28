"""ACM: where the sandbox corrects moto's Certificate Manager (moto fidelity).

- ``validation``: a DNS-validated certificate is issued once its validation records exist. RequestCertificate
  with ``ValidationMethod: DNS`` answers one DomainValidationOption per name (DomainName, then each
  SubjectAlternativeName) with its own CNAME, ``_<32 hex>.<name>.`` -> ``_<32 hex>.<10 alnum>.acm-validations.aws.``,
  the same for one name in one account whatever the certificate or region (AWS's, which is what lets one
  record validate several certificates; ``*.x.y`` uses the record of ``x.y``). A name is ``SUCCESS`` once
  that CNAME, with that value, is in the public hosted zone of the sandbox that holds the name (the zone
  with the longest name the name falls in, as a resolver would find it); the certificate is ``ISSUED``
  once every name is, checked whenever it is read (DescribeCertificate, ListCertificates, GetCertificate).
  A pending certificate shows no Serial, NotBefore, NotAfter or IssuedAt, as on AWS. Moto issued every
  certificate after ``MOTO_ACM_VALIDATION_WAIT`` seconds (60) whatever DNS held, and gave every name the
  same fixed record. E-mail validation (``ValidationMethod: EMAIL``, AWS's default) lists the five
  addresses AWS mails and stays pending: the sandbox sends no approval mail. Imported and private
  certificates are moto's.
- ``in use``: DescribeCertificate's ``InUseBy`` lists the load balancers (ELBv2 and Classic, in the
  certificate's region) whose listeners and the CloudFront distributions whose viewer certificate use it
  now, and DeleteCertificate of such a certificate is ``ResourceInUseException``, as AWS answers. Moto
  deleted it, and its ``InUseBy`` named listener ARNs (Classic: DNS names) and kept them after the
  listener was gone. An IdempotencyToken whose certificate was deleted within the hour makes a new
  certificate (moto failed with an HTTP 500 on it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox import patches
from sandbox.services.route53 import checker

# Where the sandbox keeps its own facts on moto's CertBundle.
STATE = "sandbox_validation"
VALIDATION_HOST = "acm-validations.aws"
# The addresses ACM mails for e-mail validation (besides WHOIS contacts, which the sandbox has none of).
EMAIL_BOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")
_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass
class Validation:
    """How a requested certificate's names are validated and how far they are."""

    method: str  # DNS or EMAIL
    names: list[str]  # DomainName, then the SubjectAlternativeNames, each once
    validation_domains: dict[str, str] = field(default_factory=dict)
    validated: set[str] = field(default_factory=set)
    issued_at: datetime | None = None


def _base(domain: str) -> str:
    """The name a domain is validated as: ``*.x.y`` by ``x.y``; lower case, no trailing dot."""
    name = checker.norm_name(domain)
    return name[2:] if name.startswith("*.") else name


def validation_record(account: str, domain: str) -> dict[str, str]:
    """The CNAME ACM asks for: one per (account, name), whatever the certificate or region."""
    base = _base(domain)
    name_hex = hashlib.sha256(f"acm-name:{account}:{base}".encode()).hexdigest()
    value_digest = hashlib.sha256(f"acm-value:{account}:{base}".encode()).hexdigest()
    number = int(value_digest[32:], 16)
    label = ""
    for _ in range(10):
        number, digit = divmod(number, len(_ALNUM))
        label += _ALNUM[digit]
    return {
        "Name": f"_{name_hex[:32]}.{base}.",
        "Type": "CNAME",
        "Value": f"_{value_digest[:32]}.{label}.{VALIDATION_HOST}.",
    }


def record_exists(record: dict[str, str]) -> bool:
    """Whether the public zone a resolver would ask for the record's name holds it, with its value."""
    zone = checker.resolver().zone_for(record["Name"])
    if zone is None:
        return False
    name, value = checker.norm_name(record["Name"]), checker.norm_name(record["Value"])
    for rrset in list(zone.rrsets):
        if rrset.type != "CNAME" or checker.norm_name(rrset.name) != name or rrset.alias_target:
            continue
        values = [v["Value"] if isinstance(v, dict) else str(v) for v in rrset.records or []]
        if any(checker.norm_name(v) == value for v in values):
            return True
    return False


def _account(arn: str) -> str:
    return arn.split(":")[4]


def _region(arn: str) -> str:
    return arn.split(":")[3]


def _epoch(moment: datetime) -> float:
    from moto.acm.models import datetime_to_epoch

    return datetime_to_epoch(moment)


def _dedupe(names: list[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        if name and name not in seen:
            seen.append(name)
    return seen


# == validation: names validate by their CNAME in the sandbox's public zones; moto's timer never issues.


def _option(bundle: Any, state: Validation, name: str) -> dict[str, Any]:
    status = "SUCCESS" if name in state.validated else bundle.status
    if state.method == "DNS":
        return {
            "DomainName": name,
            "ValidationDomain": name,
            "ValidationStatus": status,
            "ValidationMethod": "DNS",
            "ResourceRecord": validation_record(_account(bundle.arn), name),
        }
    domain = state.validation_domains.get(name) or _base(name)
    return {
        "DomainName": name,
        "ValidationDomain": domain,
        "ValidationStatus": status,
        "ValidationMethod": "EMAIL",
        "ValidationEmails": [f"{box}@{domain}" for box in EMAIL_BOXES],
    }


def check(bundle: Any) -> None:
    """CertBundle.check: expiry as moto has it, then DNS validation instead of moto's timer."""
    from moto.core.utils import utcnow

    now = utcnow()
    if bundle._not_valid_after(bundle._cert) <= now:
        bundle.status = "EXPIRED"
        return
    state: Validation | None = getattr(bundle, STATE, None)
    if bundle.type != "AMAZON_ISSUED" or bundle.status != "PENDING_VALIDATION" or state is None:
        return
    if state.method != "DNS":
        return
    account = _account(bundle.arn)
    for name in state.names:
        if name not in state.validated and record_exists(validation_record(account, name)):
            state.validated.add(name)
    if all(name in state.validated for name in state.names):
        bundle.status = "ISSUED"
        state.issued_at = now


def _describe_validation(bundle: Any, certificate: dict[str, Any]) -> None:
    state: Validation | None = getattr(bundle, STATE, None)
    if bundle.type != "AMAZON_ISSUED" or state is None:
        return
    certificate["DomainValidationOptions"] = [_option(bundle, state, name) for name in state.names]
    # AWS lists the names as requested, DomainName first (moto: in a set's order).
    certificate["SubjectAlternativeNames"] = list(state.names)
    if bundle.status == "ISSUED" and state.issued_at is not None:
        certificate["IssuedAt"] = _epoch(state.issued_at)
    elif bundle.status != "ISSUED":
        # AWS has no certificate yet: none of its facts show.
        for key in ("IssuedAt", "NotBefore", "NotAfter", "Serial"):
            certificate.pop(key, None)


def _patch_validation() -> None:
    from moto.acm.models import CertBundle
    from moto.acm.responses import AWSCertificateManagerResponse

    @patches.wraps(AWSCertificateManagerResponse, "request_certificate", owner=__name__)
    def request_certificate(original: Any, self: Any) -> Any:
        method = (self._get_param("ValidationMethod") or "EMAIL").upper()
        domain = self._get_param("DomainName") or ""
        sans = self._get_param("SubjectAlternativeNames") or []
        options = self._get_param("DomainValidationOptions") or []
        result = original(self)
        bundle = self.acm_backend._certificates.get(result.result["CertificateArn"])
        # An idempotent repeat answers the first request's certificate: it keeps its state.
        if bundle is not None and bundle.type == "AMAZON_ISSUED" and getattr(bundle, STATE, None) is None:
            domains = {o.get("DomainName"): o.get("ValidationDomain") for o in options if o.get("ValidationDomain")}
            setattr(bundle, STATE, Validation(method, _dedupe([domain, *sans]), domains))
        return result

    original_describe = CertBundle.describe

    def describe(self: Any) -> dict[str, Any]:
        result = original_describe(self)
        certificate = result["Certificate"]
        _describe_validation(self, certificate)
        certificate["InUseBy"] = in_use_by(self)
        return result

    patches.patch(CertBundle, "check", check, owner=__name__)
    patches.patch(CertBundle, "describe", describe, owner=__name__)


# == in use: load balancers and distributions that use a certificate keep it.


def in_use_by(bundle: Any) -> list[str]:
    """The ARNs of what uses the certificate now: load balancers (ELBv2 listeners, Classic listeners) in its
    region and distributions. Moto's own list only grew (listener ARNs and Classic DNS names, never removed)."""
    from moto.cloudfront.models import cloudfront_backends
    from moto.elb.models import elb_backends
    from moto.elbv2.models import elbv2_backends

    arn, account, region = bundle.arn, _account(bundle.arn), _region(bundle.arn)
    partition = arn.split(":")[1]
    users = []
    for lb in checker.snapshot(elbv2_backends[account][region].load_balancers):
        if any(arn in (listener.certificates or []) for listener in checker.snapshot(lb.listeners)):
            users.append(lb.arn)
    for classic in checker.snapshot(elb_backends[account][region].load_balancers):
        if any(listener.ssl_certificate_id == arn for listener in list(classic.listeners)):
            users.append(f"arn:{partition}:elasticloadbalancing:{region}:{account}:loadbalancer/{classic.name}")
    for key in list(cloudfront_backends[account].keys()):
        for dist in checker.snapshot(cloudfront_backends[account][key].distributions):
            viewer = getattr(dist.distribution_config, "ViewerCertificate", None)
            if getattr(viewer, "acm_certificate_arn", "") == arn:
                users.append(dist.arn)
    return _dedupe(users)


def _patch_in_use() -> None:
    from moto.acm.exceptions import CertificateNotFound
    from moto.acm.models import AWSCertificateManagerBackend
    from moto.core.exceptions import AWSError

    original_delete = AWSCertificateManagerBackend.delete_certificate

    def delete_certificate(self: Any, arn: str) -> None:
        bundle = self._certificates.get(arn)
        if bundle is None:
            raise CertificateNotFound(arn=arn, account_id=self.account_id)
        if in_use_by(bundle):
            raise AWSError(f"Certificate {arn} in account {self.account_id} is in use.", "ResourceInUseException")
        original_delete(self, arn)

    patches.patch(AWSCertificateManagerBackend, "delete_certificate", delete_certificate, owner=__name__)

    original_token = AWSCertificateManagerBackend._get_arn_from_idempotency_token

    def token_arn(self: Any, token: str) -> str | None:
        # A token whose certificate was deleted within the hour requests a new one: moto looked the deleted
        # certificate up and failed (KeyError, an HTTP 500), so a deploy after a teardown could not request again.
        arn = original_token(self, token)
        return arn if arn in self._certificates else None

    patches.patch(AWSCertificateManagerBackend, "_get_arn_from_idempotency_token", token_arn, owner=__name__)


def install(_app: Any) -> None:
    _patch_validation()
    _patch_in_use()

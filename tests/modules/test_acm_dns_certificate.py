"""plugins/modules/acm_dns_certificate.py: its helpers against a fake ACM (unit) and the module on the sandbox
(integration)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import yaml

from tests.support import REPO_ROOT, load_module_file, run_playbook

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "acm_dns_certificate.py")

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/"


def _error(code: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": code}}, "op")


class _Paginator:
    def __init__(self, acm: FakeAcm) -> None:
        self.acm = acm

    def paginate(self, **kwargs: Any) -> _Paginator:
        self.acm.list_params.append(kwargs)
        return self

    def build_full_result(self) -> dict[str, Any]:
        return {
            "CertificateSummaryList": [
                {"CertificateArn": c["CertificateArn"], "DomainName": c["DomainName"], "Status": c["Status"]}
                for c in self.acm.certs.values()
            ]
        }


class FakeAcm:
    """Just enough of ACM: certificates with tags and validation options, recording every write.

    `records_after` describes a new certificate that many times without ResourceRecords (AWS fills them in
    a few seconds after the request); `issue_after` that many describes PENDING_VALIDATION before ISSUED
    (None: never)."""

    def __init__(self, records_after: int = 0, issue_after: int | None = None, final: str = "ISSUED") -> None:
        self.certs: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.describes: dict[str, int] = {}
        self.writes: list[tuple[str, Any]] = []
        self.list_params: list[dict[str, Any]] = []
        self.tokens: dict[str, str] = {}
        self.records_after = records_after
        self.issue_after = issue_after
        self.final = final
        self.in_use: dict[str, list[str]] = {}

    def add(self, domain: str, sans: list[str], name_tag: str | None, status: str = "PENDING_VALIDATION") -> str:
        arn = ARN + uuid.uuid4().hex
        names = [domain, *[s for s in sans if s != domain]]
        self.certs[arn] = {
            "CertificateArn": arn,
            "DomainName": domain,
            # ACM lists the DomainName among the SANs.
            "SubjectAlternativeNames": names,
            "Status": status,
            "InUseBy": [],
            "DomainValidationOptions": [
                {
                    "DomainName": n,
                    "ValidationStatus": "PENDING_VALIDATION",
                    # example.com and *.example.com share one record, as on AWS.
                    "ResourceRecord": {
                        "Name": f"_name.{n.removeprefix('*.')}.",
                        "Type": "CNAME",
                        "Value": f"_{n.removeprefix('*.')}.acm-validations.aws.",
                    },
                }
                for n in names
            ],
        }
        self.tags[arn] = {"Name": name_tag} if name_tag else {}
        self.describes[arn] = 0
        return arn

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "list_certificates"
        return _Paginator(self)

    def list_tags_for_certificate(self, aws_retry: bool, CertificateArn: str) -> dict[str, Any]:
        return {"Tags": [{"Key": k, "Value": v} for k, v in self.tags[CertificateArn].items()]}

    def describe_certificate(self, aws_retry: bool, CertificateArn: str) -> dict[str, Any]:
        if CertificateArn not in self.certs:
            raise _error("ResourceNotFoundException")
        cert = json.loads(json.dumps(self.certs[CertificateArn]))
        seen = self.describes[CertificateArn]
        self.describes[CertificateArn] += 1
        if seen < self.records_after:
            for option in cert["DomainValidationOptions"]:
                del option["ResourceRecord"]
        if cert["Status"] == "PENDING_VALIDATION" and self.issue_after is not None and seen >= self.issue_after:
            cert["Status"] = self.final
            if self.final == "FAILED":
                cert["FailureReason"] = "CAA_ERROR"
        cert["InUseBy"] = self.in_use.get(CertificateArn, [])
        return {"Certificate": cert}

    def request_certificate(self, aws_retry: bool, IdempotencyToken: str, **params: Any) -> dict[str, Any]:
        self.writes.append(("request", {"IdempotencyToken": IdempotencyToken, **params}))
        if IdempotencyToken in self.tokens:  # ACM: the same token within the hour, the same certificate
            return {"CertificateArn": self.tokens[IdempotencyToken]}
        tags = {t["Key"]: t["Value"] for t in params["Tags"]}
        arn = self.add(params["DomainName"], params.get("SubjectAlternativeNames", []), tags["Name"])
        self.tags[arn] = tags
        self.tokens[IdempotencyToken] = arn
        return {"CertificateArn": arn}

    def delete_certificate(self, aws_retry: bool, CertificateArn: str) -> None:
        if self.in_use.get(CertificateArn):
            raise _error("ResourceInUseException")
        self.writes.append(("delete", CertificateArn))
        del self.certs[CertificateArn]


def params(**overrides: Any) -> dict[str, Any]:
    return {
        "name_tag": "site",
        "domain_name": "example.com",
        "subject_alternative_names": ["www.example.com"],
        "tags": {},
        "state": "present",
        "wait": False,
        "wait_timeout": 900,
        **overrides,
    }


class Clock:
    """A fake monotonic clock that sleep() advances, so waits take no time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    original = mod.wait_until
    monkeypatch.setattr(mod, "wait_until", lambda *a, **kw: original(*a, **{**kw, "clock": clock}))
    return clock


def ensure(acm: FakeAcm, clock: Clock, check_mode: bool = False, **overrides: Any) -> dict[str, Any]:
    return mod.ensure_certificate(acm, params(**overrides), check_mode, sleep=clock.sleep)


# --- unit ----------------------------------------------------------------------------------------


def test_requests_once_then_finds_it_by_its_name_tag(clock: Clock) -> None:
    acm = FakeAcm()
    acm.add("example.com", [], "another-site")
    first = ensure(acm, clock, tags={"Project": "hawa"})
    again = ensure(acm, clock, subject_alternative_names=["www.example.com", "example.com"])  # order, repeats
    assert (first["changed"], again["changed"]) == (True, False)
    assert first["certificate"]["arn"] == again["certificate"]["arn"]
    [(verb, request)] = acm.writes
    assert verb == "request"
    assert request["DomainName"] == "example.com" and request["ValidationMethod"] == "DNS"
    assert request["SubjectAlternativeNames"] == ["example.com", "www.example.com"]
    assert request["Tags"] == [{"Key": "Name", "Value": "site"}, {"Key": "Project", "Value": "hawa"}]
    assert len(request["IdempotencyToken"]) <= 32 and request["IdempotencyToken"].isalnum()
    # Every status and every key type is listed, so that nothing tagged Name=site is missed.
    assert set(acm.list_params[0]["CertificateStatuses"]) == set(mod.ALL_STATUSES)
    assert "EC_prime256v1" in acm.list_params[0]["Includes"]["keyTypes"]
    cert = first["certificate"]
    assert cert["domain_name"] == "example.com" and cert["status"] == "PENDING_VALIDATION"
    assert sorted(cert["subject_alternative_names"]) == ["example.com", "www.example.com"]
    assert [r["domain_name"] for r in cert["validation_records"]] == ["example.com", "www.example.com"]


def test_idempotency_token_is_stable_and_acceptable() -> None:
    token = mod.idempotency_token("a name/with:odd chars", "example.com", ["www.example.com"])
    assert token == mod.idempotency_token("a name/with:odd chars", "EXAMPLE.com", ["www.example.com", "example.com"])
    assert len(token) == 32 and token.isalnum()
    assert token != mod.idempotency_token("a name/with:odd chars", "example.com", [])


def test_a_token_acm_remembers_for_a_deleted_certificate_is_not_reused(clock: Clock) -> None:
    acm = FakeAcm()
    first = ensure(acm, clock)["certificate"]["arn"]
    ensure(acm, clock, state="absent")
    again = ensure(acm, clock)
    assert again["changed"] is True and again["certificate"]["arn"] not in (first, "")
    tokens = [w[1]["IdempotencyToken"] for w in acm.writes if w[0] == "request"]
    assert len(tokens) == 3 and tokens[0] == tokens[1] != tokens[2]


def test_different_names_fail_with_the_fix(clock: Clock) -> None:
    acm = FakeAcm()
    arn = acm.add("example.com", ["www.example.com"], "site")
    with pytest.raises(mod.CertificateError) as e:
        ensure(acm, clock, subject_alternative_names=["www.example.com", "api.example.com"])
    message = str(e.value)
    assert arn in message and "api.example.com" in message
    assert "cannot be changed" in message and "another name_tag" in message
    # The same names under another DomainName are another certificate too.
    with pytest.raises(mod.CertificateError):
        ensure(acm, clock, domain_name="www.example.com", subject_alternative_names=["example.com"])
    assert acm.writes == []


def test_failed_certificates_are_skipped_and_a_new_one_requested(clock: Clock) -> None:
    acm = FakeAcm()
    for status in ("FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED", "INACTIVE"):
        acm.add("other.example.com", [], "site", status=status)  # even with other names: ignored
    result = ensure(acm, clock)
    assert result["changed"] is True and [w[0] for w in acm.writes] == ["request"]


def test_two_usable_certificates_fail_naming_both(clock: Clock) -> None:
    acm = FakeAcm()
    arns = [acm.add("example.com", ["www.example.com"], "site", status=s) for s in ("ISSUED", "PENDING_VALIDATION")]
    with pytest.raises(mod.CertificateError) as e:
        ensure(acm, clock)
    assert all(arn in str(e.value) for arn in arns)


def test_check_mode_requests_nothing_and_says_so(clock: Clock) -> None:
    acm = FakeAcm()
    result = ensure(acm, clock, check_mode=True, wait=True)
    assert result["changed"] is True and "arn" not in result["certificate"]
    assert "Would request" in result["msg"] and acm.writes == []


def test_duplicate_records_are_listed_once(clock: Clock) -> None:
    acm = FakeAcm()
    result = ensure(acm, clock, subject_alternative_names=["*.example.com"])
    records = result["certificate"]["validation_records"]
    assert [(r["domain_name"], r["type"]) for r in records] == [("example.com", "CNAME")]
    assert records[0]["validation_status"] == "PENDING_VALIDATION"


def test_records_are_awaited_until_acm_fills_them_in(clock: Clock) -> None:
    acm = FakeAcm(records_after=3)
    result = ensure(acm, clock)
    assert len(result["certificate"]["validation_records"]) == 2
    assert clock.sleeps and all(s <= mod.RECORDS_DELAY_S for s in clock.sleeps)


def test_records_that_never_come_time_out(clock: Clock) -> None:
    acm = FakeAcm(records_after=10**6)
    with pytest.raises(mod.CertificateError, match="Timeout waiting for the validation records of certificate"):
        ensure(acm, clock)
    assert clock.now == pytest.approx(mod.RECORDS_TIMEOUT_S)


def test_wait_returns_the_issued_certificate(clock: Clock) -> None:
    acm = FakeAcm(issue_after=4)
    result = ensure(acm, clock, wait=True)
    assert result["certificate"]["status"] == "ISSUED"
    # Short pauses first, backing off to at most ISSUED_MAX_DELAY_S.
    assert clock.sleeps[0] <= mod.ISSUED_DELAY_S and max(clock.sleeps) <= mod.ISSUED_MAX_DELAY_S


def test_wait_fails_with_acms_reason(clock: Clock) -> None:
    acm = FakeAcm(issue_after=2, final="FAILED")
    with pytest.raises(mod.CertificateError) as e:
        ensure(acm, clock, wait=True)
    assert "is FAILED, not ISSUED: CAA_ERROR" in str(e.value)


def test_wait_timeout_names_the_pending_names_and_their_records(clock: Clock) -> None:
    acm = FakeAcm(issue_after=None)
    with pytest.raises(mod.CertificateError) as e:
        ensure(acm, clock, wait=True, wait_timeout=30)
    message = str(e.value)
    arn = next(iter(acm.certs))
    assert f"Timeout waiting for certificate {arn} to be issued (last state: PENDING_VALIDATION)" in message
    assert "pending validation: example.com, www.example.com" in message
    for option in acm.certs[arn]["DomainValidationOptions"]:
        record = option["ResourceRecord"]
        assert f"{record['Name']} CNAME {record['Value']}" in message
    assert clock.now == pytest.approx(30)


def test_absent_deletes_every_tagged_certificate_once(clock: Clock) -> None:
    acm = FakeAcm()
    ours = [acm.add("example.com", [], "site", status=s) for s in ("ISSUED", "FAILED")]
    other = acm.add("example.com", [], "another-site")
    assert ensure(acm, clock, check_mode=True, state="absent")["changed"] is True
    assert acm.writes == []
    first = ensure(acm, clock, state="absent")
    again = ensure(acm, clock, state="absent")
    assert (first["changed"], again["changed"]) == (True, False)
    assert first["certificate"] == {}
    assert sorted(acm.writes) == sorted(("delete", arn) for arn in ours) and other in acm.certs


def test_absent_on_a_certificate_in_use_names_its_users(clock: Clock) -> None:
    acm = FakeAcm()
    arn = acm.add("example.com", [], "site", status="ISSUED")
    listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/2"
    acm.in_use[arn] = [listener]
    with pytest.raises(mod.CertificateError) as e:
        ensure(acm, clock, state="absent")
    assert arn in str(e.value) and listener in str(e.value) and "remove the listener" in str(e.value)


# --- integration ---------------------------------------------------------------------------------
# The playbooks live here rather than in tests/modules/targets/: they are this file's alone.

REQUEST_PLAYBOOK = """
- name: Integration | acm_dns_certificate request, check mode, idempotence, absent
  hosts: us-east-1
  gather_facts: false
  environment: "{{ aws_environment }}"
  module_defaults:
    group/hawa.platform.aws:
      region: "{{ aws_region }}"
    amazon.aws.route53:
      region: "{{ omit }}"
  vars:
    _domain: "acm-{{ target_suffix }}.example.com"
  tasks:
    - name: Exercise the module, always deleting the certificate
      block:
        - name: Request the certificate (check mode)
          hawa.platform.acm_dns_certificate: &present
            name_tag: "it-acm-{{ target_suffix }}"
            domain_name: "{{ _domain }}"
            subject_alternative_names: ["www.{{ _domain }}"]
            tags: {Purpose: integration}
          check_mode: true
          register: __request_check

        - name: Nothing was requested in check mode
          hawa.platform.acm_dns_certificate: *present
          check_mode: true
          register: __request_check_again

        - name: Request the certificate
          hawa.platform.acm_dns_certificate: *present
          register: __request

        - name: Request the certificate again
          hawa.platform.acm_dns_certificate:
            <<: *present
            subject_alternative_names: ["www.{{ _domain }}", "{{ _domain }}"]
          register: __request_again

        - name: Check requesting
          ansible.builtin.assert:
            that:
              - __request_check is changed
              - __request_check.certificate.arn is not defined
              - __request_check_again is changed
              - __request is changed
              - __request.certificate.arn is match('^arn:aws:acm:us-east-1:[0-9]{12}:certificate/')
              - __request.certificate.domain_name == _domain
              - __request.certificate.subject_alternative_names | sort == [_domain, 'www.' ~ _domain]
              - __request.certificate.validation_records | map(attribute='domain_name') | sort
                == [_domain, 'www.' ~ _domain]
              - __request.certificate.validation_records | map(attribute='type') | unique == ['CNAME']
              - __request_again is not changed
              - __request_again.certificate.arn == __request.certificate.arn

        - name: Delete the certificate (check mode)
          hawa.platform.acm_dns_certificate: &absent
            name_tag: "it-acm-{{ target_suffix }}"
            state: absent
          check_mode: true
          register: __delete_check

        - name: Still there after check mode
          hawa.platform.acm_dns_certificate: *present
          check_mode: true
          register: __still_there

        - name: Delete the certificate
          hawa.platform.acm_dns_certificate: *absent
          register: __delete

        - name: Delete the certificate again
          hawa.platform.acm_dns_certificate: *absent
          register: __delete_again

        - name: Check deleting
          ansible.builtin.assert:
            that:
              - __delete_check is changed
              - __still_there is not changed
              - __still_there.certificate.arn == __request.certificate.arn
              - __delete is changed
              - __delete.certificate == {}
              - __delete_again is not changed
      always:
        - name: Delete the certificate whatever happened
          hawa.platform.acm_dns_certificate: *absent
"""


def _run(tmp_path: Path, sandbox: Any, name: str, playbook: str) -> Any:
    path = tmp_path / f"{name}.yml"
    path.write_text(playbook)
    yaml.safe_load(playbook)  # a YAML error here rather than as a failed run
    run = run_playbook(path, sandbox_port=sandbox.port, extra_vars={"target_suffix": uuid.uuid4().hex[:8]})
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    return sorted(t.split(": ", 1)[1] for t in run.changed_tasks())


def test_module_on_sandbox(sandbox: Any, tmp_path: Path) -> None:
    assert _run(tmp_path, sandbox, "request", REQUEST_PLAYBOOK) == sorted(
        [
            "Request the certificate (check mode)",
            "Nothing was requested in check mode",
            "Request the certificate",
            "Delete the certificate (check mode)",
            "Delete the certificate",
        ]
    )


WAIT_PLAYBOOK = """
- name: Integration | acm_dns_certificate wait until issued
  hosts: us-east-1
  gather_facts: false
  environment: "{{ aws_environment }}"
  module_defaults:
    group/hawa.platform.aws:
      region: "{{ aws_region }}"
    amazon.aws.route53:
      region: "{{ omit }}"
  vars:
    _zone: "acm-wait-{{ target_suffix }}.example.com"
  tasks:
    - name: Validate a certificate by DNS, always removing the certificate, the records and the zone
      block:
        - name: Create the public zone
          amazon.aws.route53_zone:
            zone: "{{ _zone }}"
            state: present
          register: __zone

        - name: Request the certificate
          hawa.platform.acm_dns_certificate: &present
            name_tag: "it-acm-wait-{{ target_suffix }}"
            domain_name: "{{ _zone }}"
            subject_alternative_names: ["www.{{ _zone }}"]
          register: __request

        - name: Create the validation records
          # amazon.aws.route53's region option means latency routing: the client region comes from here.
          environment:
            AWS_DEFAULT_REGION: "{{ aws_region }}"
          amazon.aws.route53:
            state: present
            hosted_zone_id: "{{ __zone.zone_id }}"
            record: "{{ item.name }}"
            type: "{{ item.type }}"
            value: "{{ item.value }}"
            ttl: 300
            wait: false
          loop: "{{ __request.certificate.validation_records }}"
          loop_control:
            label: "{{ item.name }}"

        - name: Wait until the certificate is issued
          hawa.platform.acm_dns_certificate:
            <<: *present
            wait: true
            wait_timeout: 300
          register: __issued

        - name: Check waiting
          ansible.builtin.assert:
            that:
              - __request is changed
              - __request.certificate.status == 'PENDING_VALIDATION'
              - __request.certificate.validation_records | length == 2
              - __issued is not changed
              - __issued.certificate.arn == __request.certificate.arn
              - __issued.certificate.status == 'ISSUED'
      always:
        - name: Delete the certificate
          hawa.platform.acm_dns_certificate:
            name_tag: "it-acm-wait-{{ target_suffix }}"
            state: absent

        - name: Delete the validation records
          environment:
            AWS_DEFAULT_REGION: "{{ aws_region }}"
          amazon.aws.route53:
            state: absent
            hosted_zone_id: "{{ __zone.zone_id }}"
            record: "{{ item.name }}"
            type: "{{ item.type }}"
            value: "{{ item.value }}"
            ttl: 300
            wait: false
          loop: "{{ __request.certificate.validation_records | default([]) }}"
          loop_control:
            label: "{{ item.name }}"
          when: __zone.zone_id is defined

        - name: Delete the zone
          amazon.aws.route53_zone:
            zone: "{{ _zone }}"
            state: absent
"""


def test_wait_until_issued_on_sandbox(sandbox: Any, tmp_path: Path) -> None:
    """ACM issues the certificate once its validation CNAMEs exist in the public zone (the sandbox's ACM
    checks Route 53 for them, as AWS checks DNS)."""
    assert _run(tmp_path, sandbox, "wait", WAIT_PLAYBOOK) == sorted(
        [
            "Create the public zone",
            "Request the certificate",
            "Create the validation records",
            "Delete the certificate",
            "Delete the validation records",
            "Delete the zone",
        ]
    )

"""A bad inventory stops site.yml before anything changes, with a message naming the variable and the fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.support import REPO_ROOT, run_playbook

PROJECT = "badinv"  # its own name prefix, so "nothing applied" can be checked among other tests' resources
REGIONS = ("us-east-1", "us-west-2")


def _inventory(tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    root = tmp_path / "inventory"
    shutil.copytree(REPO_ROOT / "inventories" / "sandbox", root)
    project = root / "group_vars" / "all" / "project.yml"
    doc = yaml.safe_load(project.read_text())
    doc["project_name"] = PROJECT
    project.write_text(yaml.safe_dump(doc))
    edit(root)
    return root / "hosts.yml"


def _set(root: Path, relative: str, **values: object) -> None:
    path = root / relative
    doc = yaml.safe_load(path.read_text()) or {}
    doc.update(values)
    path.write_text(yaml.safe_dump(doc))


def _write(root: Path, relative: str, text: str) -> None:
    (root / relative).write_text(text)


CASES = {
    "one region twice": (
        lambda root: _set(root, "host_vars/us-west-2.yml", aws_region="us-east-1"),
        "in two different AWS regions",
    ),
    "no primary": (
        lambda root: _set(root, "host_vars/us-east-1.yml", region_role="secondary"),
        "one with region_role=primary",
    ),
    "overlapping CIDRs": (
        lambda root: _set(root, "host_vars/us-west-2.yml", region_vpc_cidr="10.10.128.0/17"),
        "region_vpc_cidr overlaps",
    ),
    "string where a boolean belongs": (
        # Quoted on purpose: the classic mistake is "false" (a non-empty, truthy string).
        lambda root: _write(
            root,
            "group_vars/all/networking.yml",
            'region_nat_gateway_mode: per_az\nregion_flow_logs_enabled: "false"\nalb_ingress_cidrs: [127.0.0.1/32]\n',
        ),
        "'region_flow_logs_enabled' is \"false\" (str), not a boolean",
    ),
    "missing variable": (
        lambda root: _write(
            root, "group_vars/all/networking.yml", "region_flow_logs_enabled: true\nalb_ingress_cidrs: [127.0.0.1/32]\n"
        ),
        "variable 'region_nat_gateway_mode' is not defined",
    ),
    "two missing variables, named in one message": (
        lambda root: (
            _write(
                root,
                "group_vars/all/networking.yml",
                "region_flow_logs_enabled: true\nalb_ingress_cidrs: [127.0.0.1/32]\n",
            ),
            _write(root, "group_vars/all/logs.yml", "{}\n"),
        ),
        "variables 'log_retention_days', 'region_nat_gateway_mode' are not defined: set them in the inventory",
    ),
    "bad role name": (
        lambda root: _set(root, "host_vars/us-west-2.yml", region_role="standby"),
        "must be primary or secondary",
    ),
    "request_certificates not a boolean": (
        lambda root: _set(root, "group_vars/all/app.yml", request_certificates="yes"),
        "'request_certificates' is \"yes\" (str), not a boolean",
    ),
    "an ALB ingress address that is not a CIDR": (
        lambda root: _set(root, "group_vars/all/networking.yml", alb_ingress_cidrs=["127.0.0.1"]),
        'alb_ingress_cidrs=["127.0.0.1"] must be a list of IPv4 networks in CIDR form',
    ),
    "a watching failover controller that cannot reach the ALBs": (
        # The sandbox's controller is automatic; production's notifies, and is held to the same.
        lambda root: _set(root, "group_vars/all/networking.yml", alb_ingress_cidrs=[]),
        "Add the controller's egress address to alb_ingress_cidrs",
    ),
    "log retention CloudWatch Logs does not accept": (
        lambda root: _set(root, "group_vars/all/logs.yml", log_retention_days=42),
        "log_retention_days=42 is not a retention CloudWatch Logs accepts",
    ),
}


# What a production deployment gives besides the sandbox inventory's settings: its domain and certificates.
PRODUCTION_DOMAIN = "shop.hawa-corp.net"
PRODUCTION_CERTIFICATES = {
    "public_zone_name": PRODUCTION_DOMAIN,
    "app_certificate_arns": {
        region: f"arn:aws:acm:{region}:123456789012:certificate/0c0ffee0-{i}" for i, region in enumerate(REGIONS)
    },
    "cdn_certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0c0ffee0-cdn",
}


def _production(root: Path, **broken: object) -> None:
    """The sandbox inventory as a production deployment that meets every safeguard but the broken one."""
    _set(root, "group_vars/all/project.yml", deployment_environment="production")
    _set(root, "group_vars/all/database.yml", aurora_deletion_protection=True)
    _set(root, "group_vars/all/logs.yml", log_retention_days=365)
    _set(root, "group_vars/all/database.yml", app_db_sslmode="verify-full")
    _set(root, "group_vars/all/app.yml", **PRODUCTION_CERTIFICATES)
    for name, value in broken.items():
        relative = {
            "aurora_deletion_protection": "database.yml",
            "log_retention_days": "logs.yml",
            "app_db_sslmode": "database.yml",
            **dict.fromkeys(PRODUCTION_CERTIFICATES, "app.yml"),
        }.get(name, "monitoring.yml")
        _set(root, f"group_vars/all/{relative}", **{name: value})


CASES |= {
    "production without alarm recipients": (
        lambda root: _production(
            root, alarm_notification_emails=[], alarm_notification_sms_numbers=[], alarm_notification_webhook_urls=[]
        ),
        "deployment_environment=production has no alarm recipients: alarm_notification_emails,"
        " alarm_notification_sms_numbers and alarm_notification_webhook_urls are all empty",
    ),
    "production without Aurora deletion protection": (
        lambda root: _production(root, aurora_deletion_protection=False),
        "aurora_deletion_protection=false for deployment_environment=production",
    ),
    "production keeping logs less than a year": (
        lambda root: _production(root, log_retention_days=30),
        "production keeps its task and flow logs at least 365 days. Set log_retention_days: 365",
    ),
    "production without verified TLS to the database": (
        lambda root: _production(root, app_db_sslmode="require"),
        'app_db_sslmode="require" for deployment_environment=production: production connects to Aurora only with',
    ),
    "production on a reserved domain": (
        lambda root: _production(root, public_zone_name="hawa-production.example.com"),
        'public_zone_name="hawa-production.example.com" for deployment_environment=production is a reserved name',
    ),
    "production without an ALB certificate in a region": (
        lambda root: _production(
            root, app_certificate_arns={"us-east-1": PRODUCTION_CERTIFICATES["app_certificate_arns"]["us-east-1"]}
        ),
        "app_certificate_arns has no ACM certificate of us-west-2 for deployment_environment=production",
    ),
    "production with CloudFront's certificate outside us-east-1": (
        lambda root: _production(
            root, cdn_certificate_arn="arn:aws:acm:us-west-2:123456789012:certificate/0c0ffee0-cdn"
        ),
        "without an ACM certificate of us-east-1 (where CloudFront takes its certificates from)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_inventory_is_refused_before_anything_changes(case, tmp_path, sandbox, aws):
    edit, expected = CASES[case]
    inventory = _inventory(tmp_path, edit)
    run = run_playbook("site.yml", sandbox_port=sandbox.port, inventory=inventory)
    messages = "\n".join(run.failure_messages())
    assert run.returncode != 0, f"{case}: site.yml succeeded on a bad inventory"
    assert expected in messages, f"{case}: expected {expected!r} in the failure:\n{messages}"
    assert run.changed == 0
    for region in ("us-east-1", "us-west-2"):
        vpcs = aws("ec2", region).describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{PROJECT}-*"]}])["Vpcs"]
        assert vpcs == [], f"{case}: a VPC was created in {region} despite the bad inventory"


def test_unreachable_endpoint_names_the_fix(tmp_path):
    inventory = _inventory(tmp_path, lambda root: None)
    # Nothing listens on port 9 (discard) on loopback.
    run = run_playbook("site.yml", sandbox_port=9, inventory=inventory, timeout=300)
    assert run.returncode != 0
    assert "make sandbox-up" in run.stdout + run.stderr


# -- the production inventory itself, as a user runs it (validation only: no AWS endpoint is called) ----------

PRODUCTION = REPO_ROOT / "inventories" / "production" / "hosts.yml"
# site.yml's own switch, and no STS call: these runs never reach AWS.
DEPLOYMENT = {"validate_inventory_production_safeguards": True, "validate_inventory_check_endpoint": False}
# The failover controller's egress address, which production's watching controller needs admitted to the ALBs.
CONTROLLER = ["203.0.113.10/32"]


def test_site_yml_turns_the_production_safeguards_on_and_teardown_and_failover_do_not() -> None:
    imports = {
        name: yaml.safe_load((REPO_ROOT / "playbooks" / name).read_text())
        for name in ("site.yml", "teardown.yml", "failover.yml")
    }
    validate = {
        name: next(p for p in plays if p.get("ansible.builtin.import_playbook") == "validate.yml")
        for name, plays in imports.items()
    }
    assert validate["site.yml"]["vars"]["validate_inventory_production_safeguards"] is True
    assert "validate_inventory_production_safeguards" not in validate["teardown.yml"].get("vars", {})
    assert "validate_inventory_production_safeguards" not in validate["failover.yml"].get("vars", {})


def test_the_production_inventory_names_what_a_user_must_set() -> None:
    run = run_playbook("playbooks/validate.yml", sandbox_port=None, inventory=PRODUCTION, extra_vars=DEPLOYMENT)
    messages = "\n".join(run.failure_messages())
    assert run.returncode != 0
    assert "has no alarm recipients" in messages and "alarm_notification_emails: [oncall@example.com]" in messages


def test_the_production_inventory_passes_with_the_recipients_domain_and_certificates_a_user_gives() -> None:
    given = {
        "alarm_notification_emails": ["oncall@example.com"],
        "alb_ingress_cidrs": CONTROLLER,
    } | PRODUCTION_CERTIFICATES
    run = run_playbook("playbooks/validate.yml", sandbox_port=None, inventory=PRODUCTION, extra_vars=DEPLOYMENT | given)
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]


def test_the_production_inventory_asks_for_the_failover_controllers_address() -> None:
    given = {"alarm_notification_emails": ["oncall@example.com"]} | PRODUCTION_CERTIFICATES
    run = run_playbook("playbooks/validate.yml", sandbox_port=None, inventory=PRODUCTION, extra_vars=DEPLOYMENT | given)
    messages = "\n".join(run.failure_messages())
    assert run.returncode != 0 and "failover_automation_mode=notify with alb_ingress_cidrs=[]" in messages, messages
    off = given | {"failover_automation_mode": "off"}
    run = run_playbook("playbooks/validate.yml", sandbox_port=None, inventory=PRODUCTION, extra_vars=DEPLOYMENT | off)
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]


def test_the_production_inventory_needs_no_certificates_it_requests_itself_but_refuses_none_without() -> None:
    """request_certificates (on in production) makes site.yml request them: no ARNs needed. Turned off, the
    deployment must bring its own, and is refused naming both ways."""
    given = {
        "alarm_notification_emails": ["oncall@example.com"],
        "public_zone_name": PRODUCTION_DOMAIN,
        "alb_ingress_cidrs": CONTROLLER,
    }
    run = run_playbook("playbooks/validate.yml", sandbox_port=None, inventory=PRODUCTION, extra_vars=DEPLOYMENT | given)
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    off = DEPLOYMENT | given | {"request_certificates": False}
    run = run_playbook("playbooks/validate.yml", sandbox_port=None, inventory=PRODUCTION, extra_vars=off)
    messages = "\n".join(run.failure_messages())
    assert run.returncode != 0 and "app_certificate_arns has no ACM certificate of us-east-1" in messages, messages
    assert "Set request_certificates: true" in messages, messages

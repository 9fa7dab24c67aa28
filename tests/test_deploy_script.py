"""scripts/deploy.sh: every refusal of a bad input (no sandbox, no set-up: they come first), --help, `make deploy`
unchanged without DOMAIN= and EMAIL=, the inputs kept with the inventory, and one deploy on a sandbox of this
module's own, in a copy of the repository, typed as a user types it, whose printed endpoints are compared with
what the AWS APIs say."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.config import SandboxConfig
from scripts import deploy_vars
from tests.conftest import start_sandbox
from tests.support import REPO_ROOT, VENV_BIN, ansible_env, copy_checkout
from tests.test_readme import user_environment

DOMAIN = "deploy-test.example.com"
EMAIL = "you@example.com"
PREFIX = "hawa-sandbox"


def deploy_sh(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["scripts/deploy.sh", *args],
        cwd=REPO_ROOT,
        env=env or ansible_env(None),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- refusals: each names the input and the fix, exits 2, and starts nothing ------------------------------

GOOD = ["--domain", "app.example.com", "--email", "oncall@example.com"]


@pytest.mark.parametrize(
    ("args", "named", "fix"),
    [
        ([], "--domain is required", "--domain app.example.com"),
        (["--domain", "app.example.com"], "--email is required", "--email oncall@example.com"),
        (["--domain"], "--domain needs a value", "--help"),
        ([*GOOD, "--bogus"], "unknown argument '--bogus'", "takes --domain, --email, --inventory, --check"),
        ([*GOOD, "-e", "x=1"], "unknown argument '-e'", "takes --domain"),
        ([*GOOD, "--inventory", "staging"], "--inventory 'staging'", "sandbox, production nor an inventory file"),
        (["--domain", "", "--email", EMAIL], "--domain ''", "it is empty"),
        (["--domain", "localhost", "--email", EMAIL], "--domain 'localhost'", "localhost.example.com"),
        (["--domain", "App.Example.com", "--email", EMAIL], "--domain 'App.Example.com'", "--domain app.example.com"),
        (["--domain", "https://app.example.com/x", "--email", EMAIL], "without a scheme", "--domain app.example.com"),
        (["--domain", "app.example.com/x", "--email", EMAIL], "without a path", "--domain app.example.com"),
        (["--domain", "app.example.com.", "--email", EMAIL], "trailing dot", "--domain app.example.com"),
        (["--domain", "app..example.com", "--email", EMAIL], "empty label", "such as app.example.com"),
        (["--domain", "-app.example.com", "--email", EMAIL], "'-app'", "hyphens"),
        (["--domain", "app_1.example.com", "--email", EMAIL], "'app_1'", "letters, digits and hyphens"),
        (["--domain", f"{'a' * 64}.example.com", "--email", EMAIL], "64 characters", "DNS allows 63"),
        (["--domain", "10.0.0.1", "--email", EMAIL], "IP address", "such as app.example.com"),
        (["--domain", "app example.com", "--email", EMAIL], "white space", "such as app.example.com"),
        (["--domain", "bücher.example.com", "--email", EMAIL], "xn--", "ASCII"),
        (["--domain", "app.example.com", "--email", ""], "--email ''", "such as oncall@example.com"),
        (["--domain", "app.example.com", "--email", "oncall"], "--email 'oncall'", "exactly one @"),
        (["--domain", "app.example.com", "--email", "a@b@example.com"], "exactly one @", "oncall@example.com"),
        (["--domain", "app.example.com", "--email", "oncall@localhost"], "'localhost' is not a domain", "oncall@"),
        (["--domain", "app.example.com", "--email", "on call@example.com"], "white space", "oncall@example.com"),
        (["--domain", "app.example.com", "--email", '"x"@example.com'], "mailbox name", "oncall@example.com"),
        (["--domain", "app.example.com", "--email", "$(id)@example.com"], "mailbox name", "oncall@example.com"),
    ],
)
def test_a_bad_input_is_refused_naming_it_and_the_fix(args: list[str], named: str, fix: str) -> None:
    proc = deploy_sh(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert named in proc.stderr and fix in proc.stderr, proc.stderr
    assert proc.stdout == "", "refused before anything ran"


def test_help_prints_the_usage() -> None:
    for flag in ("--help", "-h"):
        proc = deploy_sh(flag, "--bogus")  # --help wins over what follows: a user asking for help gets it
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("Usage: scripts/deploy.sh --domain NAME --email ADDRESS")
        for option in ("--domain", "--email", "--inventory", "--check", "sandbox", "production"):
            assert option in proc.stdout
        assert "ACM certificates" in proc.stdout, "says what it does not do yet"


def test_odd_but_valid_inputs_become_json_extra_vars() -> None:
    email = "o'brien+alarms&pager@example.com"
    assert json.loads(json.dumps(deploy_vars.extra_vars("a-1.example.co.uk", email))) == {
        "public_zone_name": "a-1.example.co.uk",
        "alarm_notification_emails": [email],
    }
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "scripts/deploy_vars.py", "--domain", "xn--bcher-kva.example", "--email", email],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout) == {
        "public_zone_name": "xn--bcher-kva.example",
        "alarm_notification_emails": [email],
    }


def _dry_run(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """The commands `make -n deploy ...` would run, as make prints them."""
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", "deploy", *args],
        cwd=REPO_ROOT,
        env=env or user_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.splitlines()


def test_make_deploy_without_domain_and_email_runs_what_it_ran_before() -> None:
    before = [
        "scripts/bootstrap.sh",
        ".venv/bin/python -m sandbox up",
        ".venv/bin/ansible-playbook -i inventories/sandbox/hosts.yml site.yml",
        ".venv/bin/python -m sandbox serving",
        'if [ "inventories/sandbox/hosts.yml" = "inventories/sandbox/hosts.yml" ]; then .venv/bin/python '
        "scripts/controller.py start -i inventories/sandbox/hosts.yml; fi",
    ]
    assert _dry_run() == before
    # EMAIL and DOMAIN exported in the shell (mail and packaging tools use EMAIL) do not count: only make's command line.
    assert _dry_run(env={**user_environment(), "EMAIL": "me@example.org", "DOMAIN": "example.org"}) == before
    with_inputs = _dry_run(f"DOMAIN={DOMAIN}", f"EMAIL={EMAIL}")
    assert with_inputs[2] == (
        '.venv/bin/python scripts/deploy_vars.py --write-to inventories/sandbox/hosts.yml --domain="$DOMAIN" --email="$EMAIL"'
    ), "the values reach the shell through the environment, never pasted into its text"
    assert with_inputs[:2] + with_inputs[3:] == before


def test_the_inputs_are_kept_with_the_inventory_and_win_over_its_own_values(tmp_path) -> None:
    """Recorded, not given for one run: failover.yml, the controller and teardown read the same inventory."""
    inventory = tmp_path / "sandbox"
    shutil.copytree(REPO_ROOT / "inventories" / "sandbox", inventory)
    hosts = inventory / "hosts.yml"
    write = [str(VENV_BIN / "python"), "scripts/deploy_vars.py", "--write-to", str(hosts)]
    run = functools.partial(subprocess.run, cwd=REPO_ROOT, capture_output=True, text=True, check=False)

    first = run([*write, "--domain", DOMAIN, "--email", EMAIL])
    assert first.returncode == 0, first.stderr
    recorded = inventory / "group_vars" / "all" / "zz-deploy-inputs.yml"
    assert f"recorded in {recorded}" in first.stdout
    # A later run given only one input keeps the other.
    assert run([*write, "--email", "pager@example.org"]).returncode == 0
    refused = run([*write, "--domain", "Bad.Example.com"])
    assert refused.returncode == 2 and "--domain 'Bad.Example.com'" in refused.stderr

    seen = json.loads(
        run([str(VENV_BIN / "ansible-inventory"), "-i", str(hosts), "--host", "us-east-1"], check=True).stdout
    )
    assert seen["public_zone_name"] == DOMAIN
    assert seen["alarm_notification_emails"] == ["pager@example.org"]
    missing = run([*write, "--domain", DOMAIN, "--write-to", str(tmp_path / "nope.yml")])
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert (
        subprocess.run(
            ["git", "check-ignore", "-q", "inventories/sandbox/group_vars/all/zz-deploy-inputs.yml"], cwd=REPO_ROOT
        ).returncode
        == 0
    ), "the recorded inputs are this machine's, never committed"


# -- one real deploy on a sandbox of this module's own ---------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxConfig]:
    """An empty sandbox for this module (the deploy must create the zone), as conftest.py's docstring says."""
    yield from start_sandbox(tmp_path_factory)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository: deploy.sh records its inputs with the sandbox inventory, which other tests read."""
    return copy_checkout(tmp_path_factory.mktemp("deploy") / "hawa")


@pytest.fixture(scope="module")
def deployed(sandbox: SandboxConfig, checkout: Path) -> Iterator[subprocess.CompletedProcess]:
    env = {
        **user_environment(),
        "SANDBOX_PORT": str(sandbox.port),
        "SANDBOX_EDGE_PORT": str(sandbox.edge_port),
        "SANDBOX_STATE_DIR": str(sandbox.state_dir),
    }
    command = f"scripts/deploy.sh --domain {DOMAIN} --email {EMAIL}"  # as a user types it
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=2400,
        check=False,
    )
    print(proc.stdout[-4000:])
    yield proc
    # make deploy started the failover controller on this sandbox: stop it before the sandbox goes.
    subprocess.run(
        [str(VENV_BIN / "python"), "scripts/controller.py", "stop"], cwd=checkout, env=env, check=False, timeout=60
    )


def _printed(output: str, label: str) -> str:
    """The value of the endpoints' line `  <label>: <value>`."""
    match = re.search(rf"^  {re.escape(label)}: (\S+)", output, re.MULTILINE)
    assert match, f"no line '{label}:' in the endpoints:\n{output[-3000:]}"
    return match.group(1)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_deploy_sh_on_the_sandbox_prints_true_endpoints(deployed: Any, checkout: Path, aws: Any) -> None:
    assert deployed.returncode == 0, deployed.stdout[-6000:]
    # Kept with the inventory, so every later run (failover.yml, the controller, teardown) has the same zone.
    assert "recorded in inventories/sandbox/group_vars/all/zz-deploy-inputs.yml" in deployed.stdout
    kept = (checkout / "inventories/sandbox/group_vars/all/zz-deploy-inputs.yml").read_text()
    assert f'public_zone_name: "{DOMAIN}"' in kept and f'alarm_notification_emails: ["{EMAIL}"]' in kept
    assert re.search(r"^global\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", deployed.stdout, re.MULTILINE)
    out = deployed.stdout[deployed.stdout.rindex(f"Endpoints of {PREFIX}:") :]

    # The public zone is the domain, and the printed name servers are the zone's.
    route53 = aws("route53")
    zones = [z for z in route53.list_hosted_zones()["HostedZones"] if z["Name"] == f"{DOMAIN}."]
    assert len(zones) == 1 and not zones[0]["Config"]["PrivateZone"]
    zone_id = zones[0]["Id"].split("/")[-1]
    assert _printed(out, "public zone") == DOMAIN and f"(hosted zone {zone_id})" in out
    name_servers = route53.get_hosted_zone(Id=zone_id)["DelegationSet"]["NameServers"]
    assert name_servers and re.search(rf"^  name servers: {re.escape(', '.join(name_servers))}$", out, re.MULTILINE)
    assert f"delegate {DOMAIN} to these name servers at your registrar" in out
    records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    assert {f"app.{DOMAIN}.", f"origin.{DOMAIN}."} <= {r["Name"] for r in records}
    assert _printed(out, "app") == f"app.{DOMAIN}"

    # CloudFront: the distribution roles/cdn made, at https://<id>.cloudfront.net.
    cloudfront = aws("cloudfront")
    (summary,) = cloudfront.list_distributions()["DistributionList"]["Items"]
    assert cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]["CallerReference"] == (
        f"{PREFIX}-cdn"
    )
    assert re.fullmatch(r"[a-z0-9]+\.cloudfront\.net", summary["DomainName"])
    assert _printed(out, "CloudFront") == f"https://{summary['DomainName']}"

    # Each region's ALB.
    for region, role in (("us-east-1", "primary"), ("us-west-2", "secondary")):
        (alb,) = aws("elbv2", region).describe_load_balancers(Names=[f"{PREFIX}-{region}-alb"])["LoadBalancers"]
        assert _printed(out, f"ALB {region} ({role})") == alb["DNSName"]

    # The email subscription waits for its owner's click, as on AWS, and the output says so plainly.
    account = aws("sts").get_caller_identity()["Account"]
    for region in ("us-east-1", "us-west-2"):
        topic = f"arn:aws:sns:{region}:{account}:{PREFIX}-{region}-alarms"
        subs = aws("sns", region).list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        emails = [s for s in subs if s["Protocol"] == "email"]
        assert [(s["Endpoint"], s["SubscriptionArn"]) for s in emails] == [(EMAIL, "PendingConfirmation")], subs
        assert f"{region} topic {PREFIX}-{region}-alarms:" in out
    assert f"email {EMAIL}: pending confirmation - check your inbox" in out
    assert "/_sandbox/webhook" not in out, "a webhook URL is shown without its path and query"

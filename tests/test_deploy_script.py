"""scripts/deploy.sh: every refusal of a bad input (no sandbox, no set-up: they come first), --help, `make deploy`
unchanged without DOMAIN= and EMAIL=, and the inputs kept with the inventory. The script's run on the sandbox,
with its printed endpoints compared with what the AWS APIs say, is part of the README walk
(tests/test_readme.py, on the stack the README deployed: a second deploy would cost minutes)."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess

import pytest

from scripts import deploy_vars
from tests.support import REPO_ROOT, VENV_BIN, ansible_env
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
        "request_certificates": True,
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
        "request_certificates": True,
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

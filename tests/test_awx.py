"""The AWX configuration: its failover survey asks exactly what failover.yml validates, and its job templates
run through ansible-runner (AWX's engine) against an empty sandbox as AWX runs them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.config import SandboxConfig
from tests.support import REPO_ROOT, job_template, run_job_template, survey_extra_vars


def _validate_tasks() -> str:
    return (REPO_ROOT / "playbooks" / "failover" / "validate.yml").read_text()


def test_survey_offers_the_modes_and_regions_failover_yml_accepts() -> None:
    survey = json.loads((REPO_ROOT / "awx" / "failover-survey.json").read_text())
    questions = {q["variable"]: q for q in survey["spec"]}
    assert set(questions) == {"failover_mode", "failover_target_region", "failover_confirm_data_loss", "failover_force"}

    modes = re.search(r"failover_mode in (\[[^\]]+\])", _validate_tasks())
    assert modes, "validate.yml no longer lists the modes the way this test reads them"
    assert questions["failover_mode"]["choices"] == yaml.safe_load(modes.group(1))

    for inventory in ("sandbox", "production"):
        hosts = yaml.safe_load((REPO_ROOT / "inventories" / inventory / "hosts.yml").read_text())
        regions = sorted(hosts["all"]["children"]["regions"]["hosts"])
        assert sorted(questions["failover_target_region"]["choices"]) == regions

    # Surveys answer in strings: validate.yml must read the confirmation through | bool.
    for yes_no in ("failover_confirm_data_loss", "failover_force"):
        assert questions[yes_no]["choices"] == ["false", "true"]
    assert "failover_confirm_data_loss | default(false) | bool" in _validate_tasks()
    confirm = (REPO_ROOT / "playbooks" / "failover" / "confirm_source_down.yml").read_text()
    assert "failover_force | bool" in confirm


def test_job_templates_point_at_playbooks_that_exist() -> None:
    (play,) = yaml.safe_load((REPO_ROOT / "awx" / "configure.yml").read_text())
    (templates,) = [t for t in play["tasks"] if "awx.awx.job_template" in t]
    for item in templates["loop"]:
        assert (REPO_ROOT / item["playbook"]).is_file(), item
    assert {item["playbook"] for item in templates["loop"]} == {"site.yml", "failover.yml", "playbooks/teardown.yml"}


def test_job_templates_run_in_the_execution_environment_built_from_the_repository() -> None:
    (play,) = yaml.safe_load((REPO_ROOT / "awx" / "configure.yml").read_text())
    (environment,) = [t for t in play["tasks"] if "awx.awx.execution_environment" in t]
    (templates,) = [t for t in play["tasks"] if "awx.awx.job_template" in t]
    (project,) = [t for t in play["tasks"] if "awx.awx.project" in t]
    name = environment["awx.awx.execution_environment"]["name"]
    assert name == "{{ awx_execution_environment_name }}"
    assert templates["awx.awx.job_template"]["execution_environment"] == name
    assert project["awx.awx.project"]["default_environment"] == name
    assert (REPO_ROOT / "execution-environment.yml").is_file()


def test_survey_answers_are_checked_as_awx_checks_them() -> None:
    failover = job_template("hawa failover")
    # Unanswered questions take their default where it is a valid answer; "" is no region, so none is passed.
    assert survey_extra_vars(failover, {"failover_mode": "failback"}) == {
        "failover_mode": "failback",
        "failover_confirm_data_loss": "false",
        "failover_force": "false",
    }
    with pytest.raises(ValueError, match="failover_mode='sideways' is not one of"):
        survey_extra_vars(failover, {"failover_mode": "sideways"})
    with pytest.raises(ValueError, match="does not take"):
        survey_extra_vars(failover, {"deploy_state": "absent"})
    with pytest.raises(ValueError, match="no job template 'failover'"):
        job_template("failover")
    with pytest.raises(ValueError, match="does not ask the job type"):
        run_job_template("hawa failover", {}, sandbox_port=1, private_data_dir=Path("unused"), job_type="check")
    # Teardown asks for variables at launch: its confirmation passes through.
    assert survey_extra_vars(job_template("hawa teardown"), {"teardown_confirm": "true"}) == {
        "teardown_confirm": "true"
    }


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxConfig]:
    """An empty account of this file's own: a check run must find nothing, so it must plan to create all."""
    from tests.conftest import start_sandbox

    yield from start_sandbox(tmp_path_factory)


def _artifacts(runner: Any) -> Path:
    artifacts = Path(runner.config.artifact_dir)
    for name in ("stdout", "rc", "status", "command"):
        assert (artifacts / name).is_file(), f"an AWX job's artifact {name} is missing"
    assert (artifacts / "status").read_text() == runner.status
    assert (artifacts / "rc").read_text() == str(runner.rc)
    assert list((artifacts / "job_events").glob("*.json")), "no job_events/ recorded"
    return artifacts


def test_the_failover_template_refuses_an_unconfirmed_unplanned_failover(
    sandbox: SandboxConfig, tmp_path: Path
) -> None:
    answers = {"failover_mode": "unplanned", "failover_target_region": "us-west-2"}
    runner = run_job_template(
        "hawa failover", answers, sandbox_port=sandbox.port, private_data_dir=tmp_path, timeout=300
    )
    assert (runner.status, runner.rc) == ("failed", 2), runner.stdout.read()
    _artifacts(runner)
    refusals = [
        e["event_data"]["res"]["msg"]
        for e in runner.events
        if e.get("event") == "runner_on_failed"
        and e["event_data"].get("task") == "An unplanned failover has its data loss acknowledged"
    ]
    assert refusals and "confirm with -e failover_confirm_data_loss=true" in refusals[0], refusals
    # An empty account has no global database: what would be lost is said to be unknown, and why.
    assert "us-west-2 trails the writer by an unknown amount (" in refusals[0], refusals
    # As AWX passes them: the answers and the survey's default as strings, with the job's own variables.
    extravars = json.loads((tmp_path / "env" / "extravars").read_text())
    assert extravars["failover_confirm_data_loss"] == "false"
    assert extravars["awx_job_template_name"] == "hawa failover"
    command = json.loads((Path(runner.config.artifact_dir) / "command").read_text())["command"]
    assert "--check" not in command


def _account(aws: Callable[..., Any]) -> dict[str, Any]:
    """What the first plays of site.yml would create, per region: VPCs (with the default one), buckets."""
    return {
        "buckets": sorted(b["Name"] for b in aws("s3").list_buckets()["Buckets"]),
        **{region: aws("ec2", region).describe_vpcs()["Vpcs"] for region in ("us-east-1", "us-west-2")},
    }


# site.yml --check on an empty account stops today at the database role's preflight: networking_outputs has no
# subnets until the networking play really creates them (roles/database/tasks/preflight.yml, its network inputs'
# check, whose message is the only one). Only that known failure is an expected failure; any other fails the test,
# and once the check run succeeds the test checks its stats.
KNOWN_CHECK_MODE_FAILURE = ("Check the database inputs", "database_subnet_ids=")


@pytest.mark.slow
def test_the_site_template_in_check_mode_plans_everything_and_creates_nothing(
    sandbox: SandboxConfig, tmp_path: Path, aws: Callable[..., Any]
) -> None:
    before = _account(aws)
    runner = run_job_template(
        "hawa site", sandbox_port=sandbox.port, private_data_dir=tmp_path, job_type="check", timeout=1200
    )
    artifacts = _artifacts(runner)
    assert "--check" in json.loads((artifacts / "command").read_text())["command"]
    # Whatever the outcome, a check job writes nothing.
    assert _account(aws) == before
    failures = {
        (
            e["event_data"]["task"],
            str(e["event_data"].get("res", {}).get("msg", ""))[: len(KNOWN_CHECK_MODE_FAILURE[1])],
        )
        for e in runner.events
        if e.get("event") == "runner_on_failed"
    }
    if runner.status == "failed" and failures == {KNOWN_CHECK_MODE_FAILURE}:
        pytest.xfail("site.yml --check on an empty account fails at the database preflight (its network inputs)")
    assert (runner.status, runner.rc) == ("successful", 0), (artifacts / "stdout").read_text()[-4000:]
    stats = runner.stats
    assert not stats["failures"] and not stats["dark"], stats
    assert set(stats["ok"]) >= {"us-east-1", "us-west-2", "global"}
    assert sum(stats["changed"].values()) > 0, "a check run on an empty account must plan to create the stack"

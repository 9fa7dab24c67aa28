"""The AWX configuration: its failover survey asks exactly what failover.yml validates."""

from __future__ import annotations

import json
import re

import yaml

from tests.support import REPO_ROOT


def _validate_tasks() -> str:
    return (REPO_ROOT / "playbooks" / "failover" / "validate.yml").read_text()


def test_survey_offers_the_modes_and_regions_failover_yml_accepts() -> None:
    survey = json.loads((REPO_ROOT / "awx" / "failover-survey.json").read_text())
    questions = {q["variable"]: q for q in survey["spec"]}
    assert set(questions) == {"failover_mode", "failover_target_region", "failover_confirm_data_loss"}

    modes = re.search(r"failover_mode in (\[[^\]]+\])", _validate_tasks())
    assert modes, "validate.yml no longer lists the modes the way this test reads them"
    assert questions["failover_mode"]["choices"] == yaml.safe_load(modes.group(1))

    for inventory in ("sandbox", "production"):
        hosts = yaml.safe_load((REPO_ROOT / "inventories" / inventory / "hosts.yml").read_text())
        regions = sorted(hosts["all"]["children"]["regions"]["hosts"])
        assert sorted(questions["failover_target_region"]["choices"]) == regions

    # Surveys answer in strings: validate.yml must read the confirmation through | bool.
    assert questions["failover_confirm_data_loss"]["choices"] == ["false", "true"]
    assert "failover_confirm_data_loss | default(false) | bool" in _validate_tasks()


def test_job_templates_point_at_playbooks_that_exist() -> None:
    (play,) = yaml.safe_load((REPO_ROOT / "awx" / "configure.yml").read_text())
    (templates,) = [t for t in play["tasks"] if "awx.awx.job_template" in t]
    for item in templates["loop"]:
        assert (REPO_ROOT / item["playbook"]).is_file(), item
    assert {item["playbook"] for item in templates["loop"]} == {"site.yml", "failover.yml", "playbooks/teardown.yml"}

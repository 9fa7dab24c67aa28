"""roles/compute's preflight refuses what would deploy wrongly, before any AWS call (no sandbox needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_playbook

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: compute
        tasks_from: preflight
      vars:
        compute_region: us-east-1
        compute_name_prefix: hawa-production-us-east-1
        compute_vpc_id: vpc-0a1b2c3d
        compute_public_subnet_ids: [subnet-01, subnet-02]
        compute_private_subnet_ids: [subnet-03, subnet-04]
        compute_alb_security_group_ids: [sg-01]
        compute_app_security_group_id: sg-02
        compute_db_master_secret_arn: arn:aws:secretsmanager:us-east-1:123456789012:secret:db-master-AbCdEf
        compute_db_master_username: hawa_admin
        compute_db_username: hawa_app
        compute_db_writer_endpoint: db.cluster-x.us-east-1.rds.amazonaws.com
        compute_bucket_name: assets
        compute_bucket_arn: arn:aws:s3:::assets
"""


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({"compute_ecr_image_tag_mutability": "immutable", "compute_image_tag": "latest"}, True),
        ({"compute_ecr_image_tag_mutability": "immutable", "compute_image_tag": "2026.12.03-1a2b3c4"}, False),
        ({"compute_ecr_image_tag_mutability": "mutable", "compute_image_tag": "latest"}, False),
        (
            {
                "compute_ecr_image_tag_mutability": "immutable",
                "compute_image_tag": "latest",
                "compute_image": "registry.example.com/web@sha256:" + "0" * 64,
            },
            False,
        ),
    ],
    ids=["immutable-latest", "immutable-release-tag", "mutable-latest", "image-by-digest"],
)
def test_an_immutable_repository_needs_a_release_tag(tmp_path: Path, given: dict, refused: bool) -> None:
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PLAY)
    run = run_playbook(playbook, sandbox_port=None, inventory="localhost,", extra_vars=given, timeout=120)
    messages = run.failure_messages()
    if refused:
        assert run.returncode != 0 and any("-e app_image_tag=" in m for m in messages), messages
    else:
        assert run.returncode == 0, messages or run.stderr[-2000:]

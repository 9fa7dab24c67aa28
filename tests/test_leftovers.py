"""scripts/leftovers.py on the test sandbox: what a teardown left behind (exit 1), what AWS keeps or is
kept on purpose (exit 0), nothing at all (one-line verdict), and a sandbox that does not answer (exit 2).

Each test deploys nothing: it makes a few resources with boto3 under a project name of its own (an
inventory copied from inventories/sandbox with another project_name), so other suites' resources in
the shared sandbox never match."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO_ROOT, ansible_env

SCRIPT = REPO_ROOT / "scripts" / "leftovers.py"
EAST, WEST = "us-east-1", "us-west-2"


@pytest.fixture
def project(tmp_path: Path) -> tuple[str, Path]:
    """A project name no other test uses, and a copy of the sandbox inventory that names it."""
    name = f"lo{uuid.uuid4().hex[:6]}"
    inventory = tmp_path / "inventory"
    shutil.copytree(REPO_ROOT / "inventories" / "sandbox", inventory)
    project_vars = inventory / "group_vars" / "all" / "project.yml"
    project_vars.write_text(project_vars.read_text().replace("project_name: hawa", f"project_name: {name}"))
    return name, inventory / "hosts.yml"


def leftovers(inventory: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = ansible_env(port)  # SANDBOX_PORT, and no AWS_ENDPOINT_URL: the inventory leads to the sandbox
    return subprocess.run(
        [sys.executable, str(SCRIPT), "-i", str(inventory)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def section(output: str, verdict: str) -> str:
    """The lines listed under one verdict heading, every region together."""
    lines, keep = [], False
    for line in output.splitlines():
        if line.startswith("  ") and not line.startswith("    "):
            keep = line.strip() == f"{verdict}:"
        elif line.startswith("    ") and keep:
            lines.append(line.strip())
    return "\n".join(lines)


def test_nothing_deployed_is_one_line_verdict(sandbox: Any, project: tuple[str, Path]) -> None:
    name, inventory = project
    run = leftovers(inventory, sandbox.port)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == (
        f"{name}-sandbox: nothing left in {EAST}, {WEST} or the global services (nothing left behind, nothing kept)."
    )


def test_left_behind_then_only_what_aws_keeps(sandbox: Any, aws: Callable[..., Any], project: tuple[str, Path]) -> None:
    name, inventory = project
    east, west = f"{name}-sandbox-{EAST}", f"{name}-sandbox-{WEST}"
    ec2, ecs, kms_east = aws("ec2", EAST), aws("ecs", EAST), aws("kms", EAST)
    rds, kms_west, secrets = aws("rds", WEST), aws("kms", WEST), aws("secretsmanager", WEST)
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": f"{east}-vpc"}])
    ecs.create_cluster(clusterName=f"{east}-cluster")
    ecs.register_task_definition(
        family=f"{east}-web", containerDefinitions=[{"name": "web", "image": "example/web:1", "memory": 128}]
    )
    ecs.create_service(cluster=f"{east}-cluster", serviceName=f"{east}-web", taskDefinition=f"{east}-web")
    bucket_key = kms_east.create_key(Tags=[{"TagKey": "Name", "TagValue": f"{east}-static"}])["KeyMetadata"]
    kms_east.create_alias(AliasName=f"alias/{east}-static", TargetKeyId=bucket_key["KeyId"])
    aws("s3", EAST).create_bucket(Bucket=f"{east}-static-123456789012")
    aws("iam", EAST).create_role(RoleName=f"{east}-task", AssumeRolePolicyDocument="{}")
    secrets.create_secret(Name=f"{name}-sandbox-database-master", SecretString="{}")
    db_key = kms_west.create_key(Tags=[{"TagKey": "Name", "TagValue": f"{west}-aurora"}])["KeyMetadata"]
    kms_west.create_alias(AliasName=f"alias/{west}-aurora", TargetKeyId=db_key["KeyId"])
    wafv2 = aws("wafv2", EAST)
    acl = wafv2.create_web_acl(
        Name=f"{name}-sandbox-edge",
        Scope="CLOUDFRONT",
        DefaultAction={"Allow": {}},
        VisibilityConfig={"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "edge"},
    )["Summary"]
    certificate = aws("acm", WEST).request_certificate(
        DomainName=f"origin-{WEST}.{name}.example.com",
        ValidationMethod="DNS",
        Tags=[{"Key": "Name", "Value": f"{name}-sandbox-{WEST}-origin-{name}.example.com"}],
    )["CertificateArn"]
    rds.create_db_cluster(
        DBClusterIdentifier=f"{west}-aurora",
        Engine="aurora-mysql",  # a record only: no PostgreSQL server starts
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1234",
        StorageEncrypted=True,
        KmsKeyId=db_key["Arn"],
    )

    before = leftovers(inventory, sandbox.port)
    assert before.returncode == 1, before.stdout + before.stderr
    left = section(before.stdout, "left behind")
    for expected in (
        f"VPC                         {vpc} {east}-vpc",
        f"ECS cluster                 {east}-cluster  (ACTIVE)",
        f"ECS service                 {east}-web",
        f"ECS task definition         {east}-web:1",
        f"KMS alias                   alias/{east}-static",
        f"KMS key                     {bucket_key['KeyId']} {east}-static  (Enabled)",
        f"S3 bucket                   {east}-static-123456789012",
        f"IAM role                    {east}-task",
        f"secret                      {name}-sandbox-database-master",
        f"Aurora cluster              {west}-aurora",
        f"KMS alias                   alias/{west}-aurora",
        f"KMS key                     {db_key['KeyId']} {west}-aurora  (Enabled)",
        f"web ACL (CloudFront)        {acl['Id']} {name}-sandbox-edge",
        f"ACM certificate             origin-{WEST}.{name}.example.com {name}-sandbox-{WEST}-origin-{name}.example.com"
        "  (PENDING_VALIDATION)",
    ):
        assert expected in left, f"{expected!r} not in\n{before.stdout}"
    assert before.stdout.splitlines()[-1] == (
        f"{name}-sandbox: 14 left behind (listed above): resources teardown removes."
    )

    # What a teardown does: delete, schedule the keys' deletion, keep a final snapshot.
    ec2.delete_vpc(VpcId=vpc)
    ecs.delete_service(cluster=f"{east}-cluster", service=f"{east}-web", force=True)
    ecs.delete_cluster(cluster=f"{east}-cluster")
    ecs.deregister_task_definition(taskDefinition=f"{east}-web:1")
    kms_east.schedule_key_deletion(KeyId=bucket_key["KeyId"], PendingWindowInDays=7)
    kms_east.delete_alias(AliasName=f"alias/{east}-static")
    aws("s3", EAST).delete_bucket(Bucket=f"{east}-static-123456789012")
    aws("iam", EAST).delete_role(RoleName=f"{east}-task")
    secrets.delete_secret(SecretId=f"{name}-sandbox-database-master", RecoveryWindowInDays=7)
    wafv2.delete_web_acl(Name=acl["Name"], Scope="CLOUDFRONT", Id=acl["Id"], LockToken=acl["LockToken"])
    aws("acm", WEST).delete_certificate(CertificateArn=certificate)
    final = f"{west}-aurora-final-20260101000000"
    rds.delete_db_cluster(DBClusterIdentifier=f"{west}-aurora", FinalDBSnapshotIdentifier=final)

    after = leftovers(inventory, sandbox.port)
    assert after.returncode == 0, after.stdout + after.stderr
    assert section(after.stdout, "left behind") == ""
    by_aws = section(after.stdout, "kept by AWS")
    assert f"KMS key                     {bucket_key['KeyId']} {east}-static  (pending deletion, deleted on" in by_aws
    assert f"ECS cluster                 {east}-cluster  (INACTIVE: deleted)" in by_aws
    assert f"secret                      {name}-sandbox-database-master  (deleted " in by_aws
    on_purpose = section(after.stdout, "kept on purpose")
    assert f"DB cluster snapshot         {final}  (final snapshot taken by teardown)" in on_purpose
    assert f"KMS key                     {db_key['KeyId']} {west}-aurora  (Enabled, encrypts {final})" in on_purpose
    assert f"KMS alias                   alias/{west}-aurora" in on_purpose
    assert "rds:" not in after.stdout, "the automated backup went with the cluster"
    assert after.stdout.splitlines()[-1] == (
        f"{name}-sandbox: nothing left behind in {EAST}, {WEST} or the global services; "
        "3 kept by AWS, 3 kept on purpose (listed above)."
    )

    # The final snapshot's key scheduled for deletion all the same: reported with the way back.
    kms_west.schedule_key_deletion(KeyId=db_key["KeyId"], PendingWindowInDays=7)
    kms_west.delete_alias(AliasName=f"alias/{west}-aurora")
    warned = leftovers(inventory, sandbox.port)
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert f"{final} needs it: CancelKeyDeletion keeps the snapshot restorable" in section(warned.stdout, "kept by AWS")


def test_a_sandbox_that_does_not_answer_names_the_fix(project: tuple[str, Path]) -> None:
    _, inventory = project
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = leftovers(inventory, port)
    assert run.returncode == 2
    assert f"nothing answers at http://127.0.0.1:{port}" in run.stderr
    assert "make sandbox-up" in run.stderr


def test_aws_endpoint_url_wins_over_the_inventory(sandbox: Any, project: tuple[str, Path]) -> None:
    _, inventory = project
    env = {**ansible_env(None), **sandbox.client_env()}
    env["SANDBOX_PORT"] = "1"  # would be refused: AWS_ENDPOINT_URL must be the one used
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "-i", str(inventory)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"at {sandbox.endpoint}, account" in run.stdout.splitlines()[0]

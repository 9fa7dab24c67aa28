"""The README, followed as a new user would: every command of its walk, in order, exactly as written, on a
sandbox of its own (a copy of the repository on the default ports), with no environment a user would not
have. Between the README's steps the deployment is checked resource by resource with boto3, and the
failover drills run with a client reading and writing through the edge all along. The tests in this file
run in order and share one deployment."""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import config
from sandbox.config import SandboxConfig
from tests.support import REPO_ROOT, copy_checkout, run_playbook, sandbox_control

PRIMARY, SECONDARY = "us-east-1", "us-west-2"
REGIONS = (PRIMARY, SECONDARY)
PREFIX = "hawa-sandbox"

# Whole playbook runs: a deploy on a busy 2-core machine can take longer than pytest.ini's 900 s per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _name(tags: list[dict[str, str]] | None) -> str:
    return next((t["Value"] for t in tags or [] if t["Key"] == "Name"), "")


# -- the README's commands, run as a user runs them ----------------------------------------------------


def readme_blocks(text: str) -> dict[str, list[str]]:
    """The commands of each ```sh block marked `<!-- readme-walk: NAME -->`, continuation lines joined."""
    blocks = {}
    for name, body in re.findall(r"<!-- readme-walk: (\S+) -->\n```sh\n(.*?)```", text, re.DOTALL):
        commands: list[str] = []
        for line in body.splitlines():
            if commands and commands[-1].rstrip().endswith("\\"):
                commands[-1] += "\n" + line
            elif line.strip():
                commands.append(line)
        blocks[name] = commands
    return blocks


def user_environment() -> dict[str, str]:
    """What a user's shell has: none of the variables make, pytest, the virtualenv or a sandbox set."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SANDBOX_", "ANSIBLE_", "MAKE", "MFLAGS", "PYTEST_", "VIRTUAL_ENV", "FAILOVER_"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "/.venv/" not in p + "/")
    return env


@dataclass
class Ran:
    command: str
    returncode: int
    output: str
    started: float
    ended: float

    def recap(self) -> dict[str, dict[str, int]]:
        """The last PLAY RECAP in the output: host -> {ok, changed, failed, ...}."""
        hosts: dict[str, dict[str, int]] = {}
        for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", self.output, re.MULTILINE):
            hosts[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
        return hosts


@dataclass
class UserShell:
    """Runs README commands one by one in the checkout, carrying the shell's exported variables from one
    command to the next (so `eval "$(make -s sandbox-env)"` works as it does at a prompt)."""

    cwd: Path
    state: Path
    history: list[Ran] = field(default_factory=list)

    def run(self, command: str, timeout: float = 1800) -> Ran:
        script = f"source {self.state}\n{command}\nstatus=$?\nexport -p > {self.state}\nexit $status\n"
        started = time.monotonic()
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=user_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        ran = Ran(command, proc.returncode, proc.stdout, started, time.monotonic())
        self.history.append(ran)
        print(f"$ {command}\n  -> exit {ran.returncode} after {ran.ended - ran.started:.1f} s")
        return ran

    def ok(self, command: str, timeout: float = 1800) -> Ran:
        ran = self.run(command, timeout)
        assert ran.returncode == 0, f"`{command}` exited {ran.returncode}:\n{ran.output[-6000:]}"
        return ran


README = readme_blocks((REPO_ROOT / "README.md").read_text())


def test_the_readme_walk_is_where_this_file_expects_it():
    assert list(README) == ["deploy", "use", "drill", "failover", "teardown"], list(README)
    assert README["deploy"][:2] == [
        "make deploy",
        "make deploy                                   # idempotent: changed=0",
    ]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the repository (what git tracks, plus new files not ignored), sharing the virtualenv."""
    for port in (config.DEFAULT_PORT, config.DEFAULT_PORT + 1):
        with socket.socket() as sock:
            if sock.connect_ex((config.HOST, port)) == 0:
                pytest.fail(f"port {port} is taken: the README walk runs on the default ports; stop the sandbox there")
    return copy_checkout(tmp_path_factory.mktemp("readme") / "hawa")


@pytest.fixture(scope="module")
def shell(checkout, tmp_path_factory) -> UserShell:
    state = tmp_path_factory.mktemp("shell") / "exports.sh"
    state.write_text("")
    yield UserShell(checkout, state)
    # Whatever happened, leave no sandbox running on the default ports.
    subprocess.run(
        ["make", "-s", "sandbox-down"], cwd=checkout, env=user_environment(), capture_output=True, check=False
    )


@pytest.fixture(scope="module")
def sandbox(checkout):
    """The sandbox the README starts: default ports, state in the checkout's .sandbox/."""
    return SandboxConfig(port=config.DEFAULT_PORT, state_dir=checkout / ".sandbox", edge_port=config.DEFAULT_PORT + 1)


@pytest.fixture(scope="module")
def deployed(shell):
    return shell.ok(README["deploy"][0])


@pytest.mark.parametrize("region", REGIONS)
def test_network_spans_three_azs(deployed, aws, region):
    ec2 = aws("ec2", region)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{PREFIX}-{region}-vpc"]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    tiers = {"public": set(), "private": set()}
    for subnet in subnets:
        tier = next(t["Value"] for t in subnet["Tags"] if t["Key"] == "Tier")
        tiers[tier].add(subnet["AvailabilityZone"])
    assert len(tiers["public"]) == 3 and tiers["public"] == tiers["private"]

    nats = ec2.describe_nat_gateways(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available"]}]
    )["NatGateways"]
    assert len(nats) == 3, "one NAT gateway per AZ by default"
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    by_name = {_name(t.get("Tags")): t for t in tables}
    public_default = [
        r for r in by_name[f"{PREFIX}-{region}-public"]["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"
    ]
    assert public_default and public_default[0]["GatewayId"].startswith("igw-")
    private_tables = [t for name, t in by_name.items() if name.startswith(f"{PREFIX}-{region}-private-")]
    assert len(private_tables) == 3
    nat_targets = {
        r.get("NatGatewayId")
        for t in private_tables
        for r in t["Routes"]
        if r.get("DestinationCidrBlock") == "0.0.0.0/0"
    }
    assert nat_targets == {n["NatGatewayId"] for n in nats}, "each private subnet routes through its own AZ's NAT"

    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    assert [e["ServiceName"] for e in endpoints] == [f"com.amazonaws.{region}.s3"]
    assert set(endpoints[0]["RouteTableIds"]) == {t["RouteTableId"] for t in private_tables}
    assert len(ec2.describe_flow_logs(Filter=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]) == 1


@pytest.mark.parametrize("region", REGIONS)
def test_database_is_reachable_only_from_the_app(deployed, aws, region):
    ec2 = aws("ec2", region)
    groups = {
        g["GroupName"].removeprefix(f"{PREFIX}-{region}-"): g
        for g in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{PREFIX}-{region}-*"]}])[
            "SecurityGroups"
        ]
    }
    assert {"alb", "alb-http", "alb-probes", "app", "database"} <= set(groups)
    (db_rule,) = groups["database"]["IpPermissions"]
    assert (db_rule["FromPort"], db_rule["ToPort"]) == (5432, 5432)
    assert db_rule["IpRanges"] == [] and [p["GroupId"] for p in db_rule["UserIdGroupPairs"]] == [
        groups["app"]["GroupId"]
    ]
    (app_rule,) = groups["app"]["IpPermissions"]
    assert [p["GroupId"] for p in app_rule["UserIdGroupPairs"]] == [groups["alb"]["GroupId"]] and app_rule[
        "IpRanges"
    ] == []
    # The ALB's own groups (what each admits: test_the_load_balancer_serves_only_through_the_edge).
    assert [sorted(r["FromPort"] for r in groups[name]["IpPermissions"]) for name in ("alb", "alb-http", "alb-probes")] == [
        [443], [80], [80, 443]
    ]  # fmt: skip


def test_global_database_has_two_members_one_writer(deployed, aws):
    rds = aws("rds", PRIMARY)
    (cluster,) = rds.describe_global_clusters()["GlobalClusters"]
    members = cluster["GlobalClusterMembers"]
    assert len(members) == 2
    writers = [m["DBClusterArn"] for m in members if m["IsWriter"]]
    assert len(writers) == 1 and f":{PRIMARY}:" in writers[0]
    assert cluster["Engine"] == "aurora-postgresql" and cluster["StorageEncrypted"]
    for region in REGIONS:
        (regional,) = aws("rds", region).describe_db_clusters(DBClusterIdentifier=f"{PREFIX}-{region}-aurora")[
            "DBClusters"
        ]
        assert regional["StorageEncrypted"] and regional["DBSubnetGroup"]


def test_master_credentials_live_in_secrets_manager_and_the_app_logs_in_with_iam_tokens(deployed, aws):
    (global_cluster,) = aws("rds", PRIMARY).describe_global_clusters()["GlobalClusters"]
    # A secondary inherits the primary's master user, so both regions' secrets name the primary's.
    (primary,) = aws("rds", PRIMARY).describe_db_clusters(DBClusterIdentifier=f"{PREFIX}-{PRIMARY}-aurora")[
        "DBClusters"
    ]
    for region in REGIONS:
        secrets = aws("secretsmanager", region)
        listed = {s["Name"]: s for s in secrets.list_secrets()["SecretList"]}
        master_entry = listed[f"{PREFIX}-database-master"]
        secret = json.loads(secrets.get_secret_value(SecretId=master_entry["ARN"])["SecretString"])
        assert {"username", "password", "host", "port", "dbname", "engine"} <= set(secret)
        assert len(secret["password"]) >= 16
        assert secret["username"] == primary["MasterUsername"]
        # The global writer endpoint, so the same secret stays right after a failover.
        assert secret["host"] == global_cluster["Endpoint"]
        # The app's own role has no password, so no secret: it logs in with IAM authentication tokens (RDS.12).
        assert f"{PREFIX}-database-app" not in listed
        (cluster,) = aws("rds", region).describe_db_clusters(DBClusterIdentifier=f"{PREFIX}-{region}-aurora")[
            "DBClusters"
        ]
        assert cluster["IAMDatabaseAuthenticationEnabled"] is True
        # The web tasks get no secret at all; the migrations task definition alone gets the master's.
        ecs = aws("ecs", region)
        (service,) = ecs.describe_services(cluster=f"{PREFIX}-{region}-cluster", services=[f"{PREFIX}-{region}-web"])[
            "services"
        ]
        web_task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        (web,) = web_task["containerDefinitions"]
        web_env = {e["name"]: e["value"] for e in web["environment"]}
        assert web_env["DB_USER"] != secret["username"] and web_env["DB_IAM_AUTH"] == "true"
        assert not web.get("secrets")
        (migrate,) = ecs.describe_task_definition(taskDefinition=f"{PREFIX}-{region}-migrate")["taskDefinition"][
            "containerDefinitions"
        ]
        migrate_env = {e["name"]: e["value"] for e in migrate["environment"]}
        assert migrate_env["DB_USER"] == secret["username"]
        assert migrate_env["DB_APP_USER"] == web_env["DB_USER"] and migrate_env["DB_APP_IAM_AUTH"] == "true"
        assert {s["name"]: s["valueFrom"].split(":password")[0] for s in migrate["secrets"]} == {
            "DB_PASSWORD": master_entry["ARN"]
        }
        # The task role may connect as the app role and nobody else.
        iam = aws("iam", region)
        role = web_task["taskRoleArn"].rsplit("/", 1)[-1]
        statements = [
            statement
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
            for statement in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]
        ]
        connect = [s for s in statements if "rds-db:connect" in s["Action"]]
        assert [r.rsplit("/", 1)[-1] for s in connect for r in s["Resource"]] == [web_env["DB_USER"]]


def test_static_assets_replicate_to_the_secondary(deployed, aws):
    s3 = aws("s3", PRIMARY)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    source = next(b for b in buckets if b.startswith(f"{PREFIX}-{PRIMARY}-static"))
    destination = next(b for b in buckets if b.startswith(f"{PREFIX}-{SECONDARY}-static"))
    rules = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Rules"]
    assert [r["Destination"]["Bucket"] for r in rules] == [f"arn:aws:s3:::{destination}"]
    assert rules[0]["DeleteMarkerReplication"] == {"Status": "Enabled"}
    for bucket in (source, destination):
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


@pytest.mark.parametrize("region", REGIONS)
def test_app_runs_behind_a_load_balancer(deployed, aws, region):
    elbv2 = aws("elbv2", region)
    (alb,) = [
        lb for lb in elbv2.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerName"].startswith("hawa")
    ]
    assert len(alb["AvailabilityZones"]) == 3
    (group,) = elbv2.describe_target_groups(LoadBalancerArn=alb["LoadBalancerArn"])["TargetGroups"]
    assert group["TargetType"] == "ip" and group["HealthCheckPath"] == "/health"
    ecs = aws("ecs", region)
    (cluster_arn,) = ecs.list_clusters()["clusterArns"]
    (service_arn,) = ecs.list_services(cluster=cluster_arn)["serviceArns"]
    (service,) = ecs.describe_services(cluster=cluster_arn, services=[service_arn])["services"]
    assert service["launchType"] == "FARGATE" or service.get("capacityProviderStrategy")
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["loadBalancers"][0]["targetGroupArn"] == group["TargetGroupArn"]
    if region == PRIMARY:
        assert service["desiredCount"] >= 3, "at least one task per AZ in the primary"
    subnets = service["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
    assert len(subnets) == 3
    # Least privilege in the container: unprivileged user, no capabilities, read-only root with a writable /tmp.
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    (container,) = task["containerDefinitions"]
    assert container["user"] == "10001:10001" and container["privileged"] is False, container
    assert container["readonlyRootFilesystem"] is True, container
    assert container["linuxParameters"]["capabilities"]["drop"] == ["ALL"], container
    assert container["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    assert [v["name"] for v in task["volumes"]] == ["tmp"]


@pytest.mark.parametrize("region", REGIONS)
def test_the_load_balancer_serves_only_through_the_edge(deployed, sandbox, aws, region):
    """Two layers. The ALB's security groups admit only CloudFront's and Route 53's prefix lists and the
    inventory's alb_ingress_cidrs (this machine, 127.0.0.1): from any other address nothing answers. From an
    admitted address: 403 without CloudFront's origin-verify header, but the health paths answer (Route 53 and the
    failover controller probe them); through the edge the same request is served."""
    ec2 = aws("ec2", region)
    (alb,) = [
        lb
        for lb in aws("elbv2", region).describe_load_balancers()["LoadBalancers"]
        if lb["LoadBalancerName"].startswith(f"{PREFIX}-{region}-alb")
    ]
    lists = {
        pl["PrefixListName"]: pl["PrefixListId"]
        for pl in ec2.describe_managed_prefix_lists()["PrefixLists"]
        if pl["OwnerId"] == "AWS"
    }
    groups = ec2.describe_security_groups(GroupIds=alb["SecurityGroups"])["SecurityGroups"]
    sources = {
        (rule["FromPort"], source)
        for group in groups
        for rule in group["IpPermissions"]
        for source in [p["PrefixListId"] for p in rule["PrefixListIds"]] + [r["CidrIp"] for r in rule["IpRanges"]]
    }
    cloudfront = lists["com.amazonaws.global.cloudfront.origin-facing"]
    route53 = lists[f"com.amazonaws.{region}.route53-healthchecks"]
    assert sources == {
        (443, cloudfront), (80, cloudfront), (80, route53), (443, route53), (80, "127.0.0.1/32"), (443, "127.0.0.1/32")
    }  # fmt: skip

    names = sandbox_control(sandbox, "GET", "")["names"]
    (listener,) = [target for name, target in names.items() if name.startswith(f"{PREFIX}-{region}-alb")]
    host, port = listener.rsplit(":", 1)
    # Another address of this machine, outside alb_ingress_cidrs: the connection is dropped, as on AWS.
    with socket.create_connection((host, int(port)), timeout=2, source_address=("127.0.0.9", 0)) as outsider:
        outsider.sendall(b"GET /health/ready HTTP/1.1\r\nHost: alb\r\nConnection: close\r\n\r\n")
        with pytest.raises(TimeoutError):
            outsider.recv(1)
    status, body = _edge(sandbox, "GET", "/api/status", base=f"http://{listener}")
    assert status == 403 and "only through the CDN" in body["error"], (status, body)
    assert _edge(sandbox, "GET", "/health/ready", base=f"http://{listener}")[0] == 200
    assert _edge(sandbox, "GET", "/api/status")[0] == 200


@pytest.mark.parametrize("region", REGIONS)
def test_alarms_notify_the_regional_topic(deployed, aws, region):
    topics = [
        t["TopicArn"]
        for t in aws("sns", region).list_topics()["Topics"]
        if t["TopicArn"].split(":")[-1].startswith("hawa")
    ]
    assert topics
    alarms = aws("cloudwatch", region).describe_alarms(AlarmNamePrefix=f"{PREFIX}-{region}")["MetricAlarms"]
    metrics = {a["MetricName"] for a in alarms}
    assert {
        "HTTPCode_ELB_5XX_Count",
        "UnHealthyHostCount",
        "TargetResponseTime",
        "CPUUtilization",
        "MemoryUtilization",
    } <= metrics
    if region == SECONDARY:
        assert {"AuroraGlobalDBReplicationLag", "AuroraGlobalDBRPOLag"} <= metrics
    else:
        assert "OperationsFailedReplication" in metrics
    for alarm in alarms:
        assert set(alarm["AlarmActions"]) & set(topics), f"{alarm['AlarmName']} notifies no topic of {region}"
    assert aws("cloudwatch", region).list_dashboards(DashboardNamePrefix=PREFIX)["DashboardEntries"]


def _assert_failover_pair(aws, primary: str, secondary: str) -> dict:
    """The failover pair's PRIMARY aliases `primary`'s ALB and SECONDARY `secondary`'s, each with the health check
    that probes its own ALB; returns the PRIMARY record's health check."""
    route53 = aws("route53", PRIMARY)
    (zone,) = route53.list_hosted_zones()["HostedZones"]
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    failover = {r["Failover"]: r for r in records if r.get("Failover")}
    assert set(failover) == {"PRIMARY", "SECONDARY"}, failover
    checks = {c["Id"]: c["HealthCheckConfig"] for c in route53.list_health_checks()["HealthChecks"]}
    for role, region in (("PRIMARY", primary), ("SECONDARY", secondary)):
        alias = failover[role]["AliasTarget"]["DNSName"]
        assert region in alias, (role, alias)
        check = checks[failover[role]["HealthCheckId"]]
        assert check["FullyQualifiedDomainName"].rstrip(".") == alias.rstrip("."), (role, check, alias)
    return checks[failover["PRIMARY"]["HealthCheckId"]]


def test_failover_records_follow_health_checks(deployed, aws):
    primary_check = _assert_failover_pair(aws, PRIMARY, SECONDARY)
    assert primary_check["RequestInterval"] == 10 and primary_check["ResourcePath"] == "/health/ready"


def test_cdn_fails_over_between_the_regions(deployed, aws):
    cloudfront = aws("cloudfront", PRIMARY)
    (summary,) = cloudfront.list_distributions()["DistributionList"]["Items"]
    config = cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]
    (group,) = config["OriginGroups"]["Items"]
    members = [m["OriginId"] for m in group["Members"]["Items"]]
    origins = {o["Id"]: o for o in config["Origins"]["Items"]}
    assert "us-east-1" in origins[members[0]]["DomainName"] and "us-west-2" in origins[members[1]]["DomainName"]
    assert {500, 502, 503, 504} <= set(group["FailoverCriteria"]["StatusCodes"]["Items"])
    assert origins[members[0]]["CustomOriginConfig"]["OriginReadTimeout"] < 30
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == group["Id"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] in ("https-only", "redirect-to-https")
    patterns = {b["PathPattern"] for b in config["CacheBehaviors"]["Items"]}
    assert {"/static/*", "/api/*"} <= patterns


def _database_group(ec2, region: str) -> dict:
    (group,) = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"{PREFIX}-{region}-database"]}]
    )["SecurityGroups"]
    return group


def _alarm_names(cloudwatch, region: str) -> list[str]:
    """The region's own alarms (the monitoring play's; the Route 53 health-check alarms are the dns play's)."""
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"{PREFIX}-{region}-")["MetricAlarms"]
    return sorted(a["AlarmName"] for a in alarms)


def test_a_rerun_puts_back_what_was_changed_by_hand(deployed, checkout, sandbox, aws):
    """Drift: a database rule opened to the world and an alarm deleted, by hand. --check reports both and changes
    nothing; the area playbooks' re-run puts both back and touches nothing else (the next test's re-run of the
    whole site then changes nothing)."""
    ec2, cloudwatch = aws("ec2", PRIMARY), aws("cloudwatch", PRIMARY)
    group, alarms = _database_group(ec2, PRIMARY), _alarm_names(cloudwatch, PRIMARY)
    ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    ec2.authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    cloudwatch.delete_alarms(AlarmNames=[alarms[0]])
    drifted = _database_group(ec2, PRIMARY)["IpPermissions"]

    def rerun(*args: str):
        run = run_playbook(
            "playbooks/networking.yml", sandbox_port=sandbox.port, args=["playbooks/monitoring.yml", *args],
            timeout=600, cwd=checkout,
        )  # fmt: skip
        assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stdout[-3000:]
        changed = run.changed_tasks()
        assert not [t for t in changed if not t.startswith(f"{PRIMARY}: ")], changed
        assert any("security group" in t for t in changed) and any("larm" in t for t in changed), changed
        return run

    rerun("--check")
    assert _database_group(ec2, PRIMARY)["IpPermissions"] == drifted and alarms[0] not in _alarm_names(
        cloudwatch, PRIMARY
    )
    rerun()
    assert _database_group(ec2, PRIMARY)["IpPermissions"] == group["IpPermissions"]
    assert _alarm_names(cloudwatch, PRIMARY) == alarms


def test_readme_deploy_again_changes_nothing(deployed, shell):
    ran = shell.ok(README["deploy"][1])
    recap = ran.recap()
    assert set(recap) == {"global", PRIMARY, SECONDARY}, ran.output[-3000:]
    assert {host: counts["changed"] for host, counts in recap.items()} == dict.fromkeys(recap, 0), ran.output[-8000:]


def _printed(output: str, label: str) -> str:
    """The value of scripts/endpoints.py's line `  <label>: <value>`."""
    match = re.search(rf"^  {re.escape(label)}: (\S+)", output, re.MULTILINE)
    assert match, f"no line '{label}:' in the endpoints:\n{output[-3000:]}"
    return match.group(1)


def test_deploy_sh_serves_the_domain_over_tls_and_prints_true_endpoints(deployed, shell, checkout, sandbox, aws):
    """scripts/deploy.sh as a user types it (docs/deployment-guide.md, step 4), on the stack the README deployed,
    with the sandbox inventory's own zone and a recipient: the domain flow turns TLS on. ACM issues the certificates
    once their validation records are in the zone, the ALBs listen on HTTPS only, CloudFront reaches them by their
    origin names over HTTPS and serves the zone's names, which alias it; the inputs and the certificates are
    recorded with the inventory; the endpoints it prints are what the AWS APIs say. The drill after this one
    checks that site.yml has nothing left to change (tests/test_deploy_script.py checks every refusal)."""
    domain, email = f"{PREFIX}.example.com", "oncall@example.com"
    ran = shell.ok(f"scripts/deploy.sh --domain {domain} --email {email}", timeout=1200)
    assert "recorded in inventories/sandbox/group_vars/all/zz-deploy-inputs.yml" in ran.output
    kept = (checkout / "inventories/sandbox/group_vars/all/zz-deploy-inputs.yml").read_text()
    assert f'public_zone_name: "{domain}"' in kept and f'alarm_notification_emails: ["{email}"]' in kept
    assert "request_certificates: true" in kept
    recorded = yaml.safe_load((checkout / "inventories/sandbox/group_vars/all/zz-certificates.yml").read_text())
    out = ran.output[ran.output.rindex(f"Endpoints of {PREFIX}:") :]

    # The certificates: issued, CloudFront's in us-east-1 for the zone's names, each ALB's for its origin names.
    edge_cert = aws("acm", PRIMARY).describe_certificate(CertificateArn=recorded["cdn_certificate_arn"])["Certificate"]
    assert edge_cert["Status"] == "ISSUED" and edge_cert["DomainName"] == domain, edge_cert
    assert set(edge_cert["SubjectAlternativeNames"]) == {domain, f"app.{domain}"}
    assert recorded["cdn_alternate_domain_names"] == [domain, f"app.{domain}"]
    route53 = aws("route53")
    (zone,) = [z for z in route53.list_hosted_zones()["HostedZones"] if z["Name"] == f"{domain}."]
    zone_id = zone["Id"].split("/")[-1]
    records = {
        (r["Name"], r["Type"]): r for r in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    }
    for option in edge_cert["DomainValidationOptions"]:
        record = option["ResourceRecord"]
        assert records[(record["Name"], "CNAME")]["ResourceRecords"] == [{"Value": record["Value"]}], option
    for region in REGIONS:
        origin = f"origin-{region}.{domain}"
        assert recorded["origin_domain_names"][region] == origin
        cert = aws("acm", region).describe_certificate(CertificateArn=recorded["app_certificate_arns"][region])
        cert = cert["Certificate"]
        assert cert["Status"] == "ISSUED" and set(cert["SubjectAlternativeNames"]) == {origin, f"origin.{domain}"}
        # HTTPS only at the ALB, with the current TLS policy; HTTP redirects.
        elbv2 = aws("elbv2", region)
        (alb,) = elbv2.describe_load_balancers(Names=[f"{PREFIX}-{region}-alb"])["LoadBalancers"]
        listeners = {
            lsn["Port"]: lsn for lsn in elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]
        }
        assert (
            listeners[443]["Protocol"] == "HTTPS"
            and listeners[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
        )
        assert listeners[443]["Certificates"] == [{"CertificateArn": cert["CertificateArn"]}]
        (redirect,) = listeners[80]["DefaultActions"]
        assert redirect["Type"] == "redirect" and redirect["RedirectConfig"]["Protocol"] == "HTTPS", redirect
        # Route 53 probes it over HTTPS now: checks of that type replaced the HTTP ones (a type cannot change).
        (check,) = [
            c
            for c in route53.list_health_checks()["HealthChecks"]
            if c["HealthCheckConfig"].get("FullyQualifiedDomainName", "").lower() == alb["DNSName"].lower()
        ]
        assert (check["HealthCheckConfig"]["Type"], check["HealthCheckConfig"]["Port"]) == ("HTTPS", 443), check
        # The origin name leads to its own region's ALB.
        target = records[(f"{origin}.", "A")]["AliasTarget"]
        assert target["DNSName"].rstrip(".").lower() == alb["DNSName"].lower(), target

    # CloudFront: the zone's names with the certificate, TLS 1.2 at least, HTTPS to the origins by their names.
    cloudfront = aws("cloudfront")
    (summary,) = cloudfront.list_distributions()["DistributionList"]["Items"]
    config = cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]
    assert sorted(config["Aliases"]["Items"]) == sorted([domain, f"app.{domain}"])
    viewer = config["ViewerCertificate"]
    assert (
        viewer["ACMCertificateArn"] == edge_cert["CertificateArn"]
        and viewer["MinimumProtocolVersion"] == "TLSv1.2_2021"
    )
    origins = {o["DomainName"]: o for o in config["Origins"]["Items"] if "CustomOriginConfig" in o}
    assert set(origins) == {f"origin-{PRIMARY}.{domain}", f"origin-{SECONDARY}.{domain}", f"origin.{domain}"}
    assert {o["CustomOriginConfig"]["OriginProtocolPolicy"] for o in origins.values()} == {"https-only"}
    for name in (domain, f"app.{domain}"):
        target = records[(f"{name}.", "A")]["AliasTarget"]
        assert target["HostedZoneId"] == "Z2FDTNDATAQYW2" and target["DNSName"].rstrip(".") == summary["DomainName"]
        # The edge answers under the name (as CloudFront does, HTTPS spoken as HTTP on this machine).
        status, body = _edge(sandbox, "GET", "/api/status", host=name)
        assert status == 200 and body["region"] == PRIMARY, (name, status, body)
    # The ALB itself still answers only CloudFront, now on its HTTPS port.
    names = sandbox_control(sandbox, "GET", "")["names"]
    listener = names[f"{alb_dns_name(aws, PRIMARY)}:443".lower()]
    status, body = _edge(sandbox, "GET", "/api/status", base=f"http://{listener}")
    assert status == 403 and "only through the CDN" in body["error"], (status, body)

    # The endpoints: the site's names, the zone and the name servers to delegate it to, each region's ALB.
    assert f"site: https://{domain}" in out and f"site: https://app.{domain}" in out
    assert _printed(out, "public zone") == domain and f"(hosted zone {zone_id})" in out
    name_servers = route53.get_hosted_zone(Id=zone_id)["DelegationSet"]["NameServers"]
    assert name_servers and re.search(rf"^  name servers: {re.escape(', '.join(name_servers))}$", out, re.MULTILINE)
    assert f"delegate {domain} to these name servers at your registrar" in out
    assert f"app: app.{domain}  (an alias of CloudFront)" in out
    assert _printed(out, "CloudFront") == f"https://{summary['DomainName']}"
    for region, role in ((PRIMARY, "primary"), (SECONDARY, "secondary")):
        assert _printed(out, f"ALB {region} ({role})") == alb_dns_name(aws, region)

    # The email subscription waits for its owner's click, as on AWS, and the output says so plainly.
    account = aws("sts").get_caller_identity()["Account"]
    for region in REGIONS:
        topic = f"arn:aws:sns:{region}:{account}:{PREFIX}-{region}-alarms"
        subs = aws("sns", region).list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        emails = [sub for sub in subs if sub["Protocol"] == "email"]
        assert [(sub["Endpoint"], sub["SubscriptionArn"]) for sub in emails] == [(email, "PendingConfirmation")], subs
        assert f"{region} topic {PREFIX}-{region}-alarms:" in out
    assert f"email {email}: pending confirmation - check your inbox" in out
    assert "/_sandbox/webhook" not in out, "a webhook URL is shown without its path and query"


def alb_dns_name(aws, region: str) -> str:
    (alb,) = aws("elbv2", region).describe_load_balancers(Names=[f"{PREFIX}-{region}-alb"])["LoadBalancers"]
    return alb["DNSName"]


def test_readme_status_says_what_runs(deployed, shell):
    ran = shell.ok(README["deploy"][2])
    for region in REGIONS:
        line = next(line for line in ran.output.splitlines() if line.startswith(f"{region}: "))
        assert f'1 project VPC(s) ["{PREFIX}-{region}-vpc"]' in line, ran.output
        assert re.search(r"ECS \S+ (\d+)/\1 running", line), ran.output
        assert f"Aurora {PREFIX}-{region}-aurora available" in line, ran.output
    assert f"global database: {PREFIX}-global writer in {PRIMARY}" in ran.output
    assert f"from {PRIMARY} (database writer)" in ran.output


def test_readme_drill_measures_a_killed_task_and_leaves_nothing_to_change(deployed, shell, checkout):
    listing, drill = README["drill"]
    assert "single-container" in shell.ok(listing).output
    ran = shell.ok(drill, timeout=1200)
    folder = max((checkout / "reports" / "drills").iterdir())
    assert f"report: reports/drills/{folder.name}/report.md" in ran.output, ran.output[-2000:]
    report = json.loads((folder / "report.json").read_text())
    (result,) = report["drills"]
    assert result["scenario"] == "single-container" and result["verdict"]["met"], result["verdict"]
    # The killed task was seen through the APIs (ECS count, target health), and the service came back.
    assert result["detection"]["first"] is not None and result["detection"]["first"] <= 30, result["detection"]
    assert result["recovery"]["full_capacity_s"] is not None and result["recovery"]["automatic"], result["recovery"]
    assert result["impact"]["read"]["failed"] == 0 and result["impact"]["read"]["total"] > 50, result["impact"]
    assert result["rpo"]["acknowledged_writes"] > 50 and result["rpo"]["lost_writes"] == 0, result["rpo"]
    assert (folder / "single-container.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| single-container | 30 s / < 2 min / none |" in (folder / "report.md").read_text()
    # The drill ends with site.yml --check on the deployed stack: nothing to change (honest check mode).
    site = report["site_check"]
    assert site["exit"] == 0 and set(site["changed"]) == {"global", PRIMARY, SECONDARY}, site
    assert not any(site["changed"].values()), site


# -- the live sandbox: the deployed app serves, replicates and fails over for real -----------------


def _edge(
    sandbox, method: str, path: str, body: dict | None = None, *, base: str | None = None, host: str | None = None
) -> tuple[int, dict]:
    """A request through the edge (or to base); host is the name a viewer asked for (the Host header)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"Host": host} if host else {})}
    req = urllib.request.Request(  # noqa: S310 - the sandbox's loopback edge
        f"{base or sandbox.edge}{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read(500).decode(errors="replace")}
    except (urllib.error.URLError, OSError) as exc:
        return 0, {"error": str(exc)}


class ContinuousWriter(threading.Thread):
    """POSTs a record through the edge every few milliseconds; remembers what was acknowledged (201)."""

    def __init__(self, sandbox, pause: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.sandbox = sandbox
        self.pause = pause
        self.stop = threading.Event()
        self.acknowledged: list[tuple[int, str]] = []
        self.failures: list[str] = []
        self.successes: list[float] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            key = f"writer-{n}"
            status, body = _edge(self.sandbox, "POST", "/api/data", {"key": key, "value": "x"})
            if status == 201:
                self.acknowledged.append((body["id"], key))
                self.successes.append(time.monotonic())
            else:
                self.failures.append(f"{status}: {str(body)[:120]}")
                time.sleep(0.05)
            time.sleep(self.pause)

    def longest_gap(self, started: float, ended: float) -> float:
        points = [started, *self.successes, ended]
        return max(b - a for a, b in itertools.pairwise(points))


def _missing(sandbox, acknowledged: list[tuple[int, str]]) -> list[str]:
    """Acknowledged records the app cannot find (404). A read refused for a moment (503 while a node it
    reads from restarts as a standby) is retried: that is unavailability, not loss."""
    missing = []
    for record_id, key in acknowledged:
        deadline = time.monotonic() + 15
        status, body = _edge(sandbox, "GET", f"/api/data/{record_id}")
        while status != 200 and status != 404 and time.monotonic() < deadline:
            time.sleep(0.2)
            status, body = _edge(sandbox, "GET", f"/api/data/{record_id}")
        if status != 200 or body.get("key") != key:
            missing.append(f"{key} (id {record_id}): HTTP {status}")
    return missing


def _global(aws) -> dict:
    (cluster,) = aws("rds", SECONDARY).describe_global_clusters()["GlobalClusters"]
    return cluster


def _writer_region(cluster: dict) -> str:
    (writer,) = [m["DBClusterArn"] for m in cluster["GlobalClusterMembers"] if m["IsWriter"]]
    return writer.split(":")[3]


def _wait_global(aws, want_writer: str, timeout: float = 180) -> dict:
    """Until want_writer's cluster is the writer, no operation runs and every reader is connected."""
    deadline = time.monotonic() + timeout
    while True:
        cluster = _global(aws)
        readers = [m for m in cluster["GlobalClusterMembers"] if not m["IsWriter"]]
        if (
            not cluster.get("FailoverState")
            and _writer_region(cluster) == want_writer
            and all(m.get("SynchronizationStatus") == "connected" for m in readers)
        ):
            return cluster
        assert time.monotonic() < deadline, f"global cluster did not settle with the writer in {want_writer}: {cluster}"
        time.sleep(1)


def _cluster_arn(aws, region: str) -> str:
    return aws("rds", region).describe_db_clusters(DBClusterIdentifier=f"{PREFIX}-{region}-aurora")["DBClusters"][0][
        "DBClusterArn"
    ]


def test_readme_use_the_app_through_the_edge(deployed, shell):
    env_line, health, status, post, listing = README["use"]
    shell.ok(env_line)
    assert json.loads(shell.ok(health).output) == {"status": "ok"}
    body = json.loads(shell.ok(status).output)
    assert body["region"] == PRIMARY and body["role"] == "writer", body
    record = json.loads(shell.ok(post).output)
    assert record["key"] == "hello" and record["value"] == "world" and record["region"] == PRIMARY, record
    items = json.loads(shell.ok(listing).output)["items"]
    assert items[0]["id"] == record["id"], "newest records first"


def test_switchover_loses_no_acknowledged_write(deployed, sandbox, aws):
    gid = _global(aws)["GlobalClusterIdentifier"]
    writer = ContinuousWriter(sandbox)
    started = time.monotonic()
    writer.start()
    try:
        time.sleep(2)
        for target in (SECONDARY, PRIMARY):  # there and back: the layout the next tests expect
            aws("rds", target).switchover_global_cluster(
                GlobalClusterIdentifier=gid, TargetDbClusterIdentifier=_cluster_arn(aws, target)
            )
            _wait_global(aws, target)
            time.sleep(2)
    finally:
        writer.stop.set()
        writer.join(30)
    ended = time.monotonic()
    assert len(writer.acknowledged) > 20, writer.failures[-5:]
    lost = _missing(sandbox, writer.acknowledged)
    print(
        f"switchover there and back: {len(writer.acknowledged)} acknowledged writes, {len(writer.failures)} refused, "
        f"longest time without a successful write {writer.longest_gap(started, ended):.2f} s"
    )
    assert lost == [], f"acknowledged writes lost in the switchover: {lost[:10]}"


def _failover(checkout, sandbox, **extra_vars) -> tuple:
    """Run failover.yml from the checkout; returns (run, its report or None)."""
    latest = checkout / "reports" / "failover-latest.json"
    latest.unlink(missing_ok=True)
    run = run_playbook(
        "failover.yml", sandbox_port=sandbox.port, extra_vars=extra_vars, timeout=1200, cwd=checkout
    )  # fmt: skip
    report = json.loads(latest.read_text()) if latest.exists() else None
    return run, report


def _unchanged(aws, writer: str) -> None:
    cluster = _global(aws)
    assert _writer_region(cluster) == writer and not cluster.get("FailoverState"), cluster


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        (
            {"failover_mode": "unplanned", "failover_target_region": SECONDARY},
            # The refusal shows what would be lost, measured.
            " ms (AuroraGlobalDBRPOLag, newest datapoint); confirm with -e failover_confirm_data_loss=true",
        ),
        (
            {
                "failover_mode": "unplanned",
                "failover_target_region": SECONDARY,
                "failover_confirm_data_loss": True,
                "failover_source_down_timeout": 4,
            },
            f"Route 53 still calls {PRIMARY} healthy after 4 s",
        ),
        ({"failover_mode": "planned", "failover_target_region": "eu-west-1"}, "is not a region of this inventory"),
        ({"failover_mode": "sideways", "failover_target_region": SECONDARY}, "failover_mode must be planned"),
        (
            # The lag check never passes, so the gate waits out its timeout: a few polls are enough to report it.
            {
                "failover_mode": "planned",
                "failover_target_region": SECONDARY,
                "failover_max_replication_lag_ms": -1,
                "failover_gate_timeout": 6,
            },
            " ms; bound -1 ms",
        ),
    ],
    ids=["no-confirmation", "healthy-source", "unknown-region", "unknown-mode", "lag-over-bound"],
)
def test_failover_refuses_bad_requests_and_changes_nothing(deployed, checkout, sandbox, aws, extra_vars, message):
    run, _ = _failover(checkout, sandbox, **{"failover_gate_timeout": 20, **extra_vars})
    assert run.returncode != 0
    assert any(message in m for m in run.failure_messages()), run.failure_messages()
    _unchanged(aws, PRIMARY)


def _west_service(aws) -> tuple[Any, str, str]:
    ecs = aws("ecs", SECONDARY)
    (cluster_arn,) = ecs.list_clusters()["clusterArns"]
    (service_arn,) = ecs.list_services(cluster=cluster_arn)["serviceArns"]
    return ecs, cluster_arn, service_arn


def _healthy_targets(aws, region: str) -> int:
    elbv2 = aws("elbv2", region)
    (group,) = [g for g in elbv2.describe_target_groups()["TargetGroups"] if g["TargetGroupName"].startswith(PREFIX)]
    health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
    return sum(1 for t in health if t["TargetHealth"]["State"] == "healthy")


def test_failover_refuses_an_unhealthy_target(deployed, checkout, sandbox, aws):
    ecs, cluster_arn, service_arn = _west_service(aws)
    ecs.update_service(cluster=cluster_arn, service=service_arn, desiredCount=0)
    try:
        run, report = _failover(
            checkout, sandbox, failover_mode="planned", failover_target_region=SECONDARY, failover_gate_timeout=6
        )
        assert run.returncode != 0
        assert report["outcome"] == "failed" and report["steps"][0]["name"] == "gate_both"
        gate = report["steps"][0]
        assert gate["outcome"] == "failed" and f"healthy targets in {SECONDARY}: 0 healthy" in gate["detail"], gate
        assert {s["outcome"] for s in report["steps"][1:]} == {"skipped"}
        _unchanged(aws, PRIMARY)
    finally:
        ecs.update_service(cluster=cluster_arn, service=service_arn, desiredCount=1)
    deadline = time.monotonic() + 90
    while _healthy_targets(aws, SECONDARY) < 1:
        assert time.monotonic() < deadline, "the standby's task did not come back healthy"
        time.sleep(1)


class Reader(threading.Thread):
    """GETs /api/data through the edge ten times a second; remembers when each read failed."""

    def __init__(self, sandbox) -> None:
        super().__init__(daemon=True)
        self.sandbox = sandbox
        self.stop = threading.Event()
        self.reads: list[tuple[float, int, str]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            status, body = _edge(self.sandbox, "GET", "/api/data?limit=1")
            self.reads.append((time.monotonic(), status, "" if status == 200 else str(body.get("error", body))[:160]))
            time.sleep(0.1)

    def failures(self, start: float, end: float) -> list[str]:
        """Each failed read's time and status; the first's answer too (which region, which reason)."""
        failed = [(t, status, why) for t, status, why in self.reads if start <= t <= end and status != 200]
        return [
            f"+{t - start:.1f} s: HTTP {status}" + (f" {why}" if i == 0 else "")
            for i, (t, status, why) in enumerate(failed)
        ]


def _report(checkout) -> tuple[dict, str]:
    reports = checkout / "reports"
    return json.loads((reports / "failover-latest.json").read_text()), (reports / "failover-latest.md").read_text()


def _settle_reads(reader: Reader, since: float, seconds: float) -> None:
    """Keep reading until `seconds` have passed since `since` (a run's OK): long enough to span the edge's
    cached answer for the failover record (60 s) running out."""
    time.sleep(max(0.0, since + seconds - time.monotonic()))


def test_readme_failover_drills(deployed, checkout, shell, sandbox, aws):
    outage, unplanned, restore, failback, planned = README["failover"]
    reader, writer = Reader(sandbox), ContinuousWriter(sandbox, pause=0.1)
    reader.start()
    writer.start()
    try:
        dark = shell.ok(outage).ended
        ran = shell.ok(unplanned)
        report, text = _report(checkout)
        assert report["outcome"] == "ok" and _writer_region(_global(aws)) == SECONDARY, text
        assert text.startswith(f"# Unplanned failover to {SECONDARY}: OK"), text
        assert report["data_loss_estimate_ms"] is not None and report["public_endpoint"]["write_region"] == SECONDARY
        print(f"unplanned: first write through the edge {ran.ended - dark:.1f} s after the outage; steps "
              + ", ".join(f"{s['name']} {s['seconds']} s" for s in report["steps"]))  # fmt: skip
        unplanned_ok = ran.ended
        _settle_reads(reader, unplanned_ok, 10)
        assert reader.failures(unplanned_ok, time.monotonic()) == [], "reads failed after the unplanned run said OK"

        restored = shell.ok(restore).ended
        ran = shell.ok(failback)
        report, text = _report(checkout)
        assert text.startswith(f"# Failback to {PRIMARY}: OK"), text
        assert report["moved"] and _writer_region(_global(aws)) == PRIMARY, text
        _assert_failover_pair(aws, PRIMARY, SECONDARY)
        print(f"failback {ran.ended - ran.started:.1f} s (started {ran.started - restored:.1f} s after the restore)")
        _settle_reads(reader, ran.ended, 15)
        assert reader.failures(ran.ended, time.monotonic()) == [], "reads failed after the failback said OK"

        ran = shell.ok(planned)
        report, text = _report(checkout)
        assert text.startswith(f"# Planned switchover to {SECONDARY}: OK"), text
        assert f"the writer moved from {PRIMARY} to {SECONDARY}" in text and report["data_loss_estimate_ms"] == 0
        if report["public_endpoint"]["write_region"] != SECONDARY:
            # Said plainly: which region still takes API requests, until when, and where their writes go.
            assert f"API requests (/api/*) still reach {PRIMARY}" in text and report["api_old_region_until"] in text
        # move_traffic re-pointed the pair (the dns role's failover_records), each record with its own ALB's check.
        _assert_failover_pair(aws, SECONDARY, PRIMARY)
        planned_ok = ran.ended

        # The same command again: nothing to do, and the report says so.
        again = shell.ok(planned)
        report, text = _report(checkout)
        assert again.recap()["global"]["changed"] == 0 and not report["moved"], text
        assert f"{SECONDARY} was already the writer" in text and f"from {PRIMARY} to" not in text, text
        _settle_reads(reader, planned_ok, 65)
        assert reader.failures(planned_ok, time.monotonic()) == [], "reads failed after the planned run said OK"
    finally:
        reader.stop.set()
        writer.stop.set()
        reader.join(30)
        writer.join(30)
    # Reads may fail while a fault is in force or a run is under way (not asserted); shown from the outage on.
    print(f"reads through the edge: {len(reader.reads)}, failed: {reader.failures(dark, time.monotonic())[:20]}")
    # An unplanned failover may lose what was not replicated; every write acknowledged after it must survive.
    kept = [(i, key) for (i, key), t in zip(writer.acknowledged, writer.successes, strict=True) if t > unplanned_ok]
    lost = _missing(sandbox, kept)
    print(f"writes after the unplanned failover: {len(kept)} acknowledged, {len(writer.failures)} refused in all")
    assert len(kept) > 20 and lost == [], lost[:10]


def test_readme_teardown_leaves_nothing(deployed, shell, sandbox, aws):
    teardown, leftovers, down = README["teardown"]
    shell.ok(teardown)
    ran = shell.ok(leftovers)
    assert f"{PREFIX}: nothing left behind in" in ran.output, ran.output
    # A second opinion, read here directly.
    for region in REGIONS:
        ec2 = aws("ec2", region)
        assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{PREFIX}-*"]}])["Vpcs"] == []
        assert ec2.describe_addresses()["Addresses"] == []
        assert aws("rds", region).describe_db_clusters()["DBClusters"] == []
        assert aws("rds", region).describe_db_cluster_snapshots()["DBClusterSnapshots"] == []
        assert aws("cloudwatch", region).describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"] == []
        assert [a for a in aws("kms", region).list_aliases()["Aliases"] if PREFIX in a["AliasName"]] == []
        ecs, kms = aws("ecs", region), aws("kms", region)
        clusters = ecs.list_clusters()["clusterArns"]
        if clusters:  # deleted clusters stay listed as INACTIVE for a while, on AWS too
            described = ecs.describe_clusters(clusters=clusters)["clusters"]
            assert [c["clusterName"] for c in described if c["status"] != "INACTIVE"] == []
        for cluster in clusters:  # a deleted service is not listed (DeleteService)
            assert ecs.list_services(cluster=cluster)["serviceArns"] == []
        states = {kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] for k in kms.list_keys()["Keys"]}
        assert states <= {"PendingDeletion"}, "a key can only wait out its deletion window"
    assert aws("rds", PRIMARY).describe_global_clusters()["GlobalClusters"] == []
    assert aws("route53", PRIMARY).list_hosted_zones()["HostedZones"] == []
    assert aws("cloudfront", PRIMARY).list_distributions()["DistributionList"].get("Items", []) == []

    again = shell.ok(teardown)
    assert {host: counts["changed"] for host, counts in again.recap().items()} == dict.fromkeys(again.recap(), 0)
    assert "sandbox stopped" in shell.ok(down).output

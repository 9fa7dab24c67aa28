"""site.yml end to end on the sandbox: the whole design in both regions plus the global layer,
checked resource by resource with boto3; a second run and a --check run change nothing; the
teardown leaves nothing behind. The tests in this file run in order and share one deployment."""

from __future__ import annotations

import json

import pytest

from tests.conftest import start_sandbox
from tests.support import run_playbook

PRIMARY, SECONDARY = "us-east-1", "us-west-2"
REGIONS = (PRIMARY, SECONDARY)
PREFIX = "hawa-sandbox"

pytestmark = pytest.mark.slow


def _name(tags: list[dict[str, str]] | None) -> str:
    return next((t["Value"] for t in tags or [] if t["Key"] == "Name"), "")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A sandbox of this module's own: other suites' leftovers must not hide or fake a leftover here."""
    yield from start_sandbox(tmp_path_factory)


@pytest.fixture(scope="module")
def deployed(sandbox):
    run = run_playbook("site.yml", sandbox_port=sandbox.port, timeout=1800)
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-4000:]
    return run


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
    assert {"alb", "app", "database"} <= set(groups)
    (db_rule,) = groups["database"]["IpPermissions"]
    assert (db_rule["FromPort"], db_rule["ToPort"]) == (5432, 5432)
    assert db_rule["IpRanges"] == [] and [p["GroupId"] for p in db_rule["UserIdGroupPairs"]] == [
        groups["app"]["GroupId"]
    ]
    (app_rule,) = groups["app"]["IpPermissions"]
    assert [p["GroupId"] for p in app_rule["UserIdGroupPairs"]] == [groups["alb"]["GroupId"]] and app_rule[
        "IpRanges"
    ] == []
    alb_ports = sorted(r["FromPort"] for r in groups["alb"]["IpPermissions"])
    assert alb_ports == [80, 443]


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


def test_master_credentials_live_in_secrets_manager(deployed, aws):
    (global_cluster,) = aws("rds", PRIMARY).describe_global_clusters()["GlobalClusters"]
    # A secondary inherits the primary's master user, so both regions' secrets name the primary's.
    (primary,) = aws("rds", PRIMARY).describe_db_clusters(DBClusterIdentifier=f"{PREFIX}-{PRIMARY}-aurora")[
        "DBClusters"
    ]
    for region in REGIONS:
        secrets = aws("secretsmanager", region)
        (entry,) = [s for s in secrets.list_secrets()["SecretList"] if s["Name"] == f"{PREFIX}-database-master"]
        secret = json.loads(secrets.get_secret_value(SecretId=entry["ARN"])["SecretString"])
        assert {"username", "password", "host", "port", "dbname", "engine"} <= set(secret)
        assert len(secret["password"]) >= 16
        assert secret["username"] == primary["MasterUsername"]
        # The global writer endpoint, so the same secret stays right after a failover.
        assert secret["host"] == global_cluster["Endpoint"]


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


def test_failover_records_follow_health_checks(deployed, aws):
    route53 = aws("route53", PRIMARY)
    (zone,) = route53.list_hosted_zones()["HostedZones"]
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    failover = {r["Failover"]: r for r in records if r.get("Failover")}
    assert set(failover) == {"PRIMARY", "SECONDARY"}
    assert failover["PRIMARY"]["HealthCheckId"]
    assert "us-east-1" in failover["PRIMARY"]["AliasTarget"]["DNSName"]
    assert "us-west-2" in failover["SECONDARY"]["AliasTarget"]["DNSName"]
    checks = {c["Id"]: c["HealthCheckConfig"] for c in route53.list_health_checks()["HealthChecks"]}
    assert len(checks) >= 2
    primary_check = checks[failover["PRIMARY"]["HealthCheckId"]]
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


def test_second_run_changes_nothing(deployed, sandbox):
    run = run_playbook("site.yml", sandbox_port=sandbox.port, timeout=1800)
    assert run.returncode == 0, "\n".join(run.failure_messages())
    assert run.changed == 0, run.changed_tasks()


def test_check_mode_on_the_deployed_stack_reports_no_changes(deployed, sandbox):
    run = run_playbook("site.yml", sandbox_port=sandbox.port, check=True, timeout=1800)
    assert run.returncode == 0, "\n".join(run.failure_messages())
    assert run.changed == 0, run.changed_tasks()


def test_teardown_leaves_nothing_behind(deployed, sandbox, aws):
    run = run_playbook("playbooks/teardown.yml", sandbox_port=sandbox.port, timeout=1800)
    assert run.returncode == 0, "\n".join(run.failure_messages())
    for region in REGIONS:
        ec2 = aws("ec2", region)
        assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{PREFIX}-*"]}])["Vpcs"] == []
        assert ec2.describe_addresses()["Addresses"] == []
        live_nats = [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] not in ("deleted", "deleting")]
        assert live_nats == []
        assert [
            c
            for c in aws("rds", region).describe_db_clusters()["DBClusters"]
            if c["DBClusterIdentifier"].startswith(PREFIX)
        ] == []
        assert [
            lb
            for lb in aws("elbv2", region).describe_load_balancers()["LoadBalancers"]
            if lb["LoadBalancerName"].startswith("hawa")
        ] == []
        assert aws("cloudwatch", region).describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"] == []
        assert [t for t in aws("sns", region).list_topics()["Topics"] if PREFIX in t["TopicArn"]] == []
        assert (
            aws("application-autoscaling", region).describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
            == []
        )
        clusters = aws("ecs", region).list_clusters()["clusterArns"]
        if clusters:  # deleted clusters stay listed as INACTIVE for a while, on AWS too
            described = aws("ecs", region).describe_clusters(clusters=clusters)["clusters"]
            assert [c["clusterName"] for c in described if c["status"] != "INACTIVE"] == []
    assert aws("rds", PRIMARY).describe_global_clusters()["GlobalClusters"] == []
    assert [b for b in aws("s3", PRIMARY).list_buckets()["Buckets"] if b["Name"].startswith(PREFIX)] == []
    assert aws("route53", PRIMARY).list_hosted_zones()["HostedZones"] == []
    assert aws("cloudfront", PRIMARY).list_distributions()["DistributionList"].get("Items", []) == []
    assert [r for r in aws("iam", PRIMARY).list_roles()["Roles"] if r["RoleName"].startswith("hawa")] == []

    again = run_playbook("playbooks/teardown.yml", sandbox_port=sandbox.port, timeout=1800)
    assert again.returncode == 0 and again.changed == 0, again.changed_tasks()

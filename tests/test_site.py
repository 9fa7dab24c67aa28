"""site.yml end to end on the sandbox: the whole design in both regions plus the global layer,
checked resource by resource with boto3; a second run and a --check run change nothing; the
teardown leaves nothing behind. The tests in this file run in order and share one deployment."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from sandbox import cli
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


# -- the live sandbox: the deployed app serves, replicates and fails over for real -----------------


def _edge(sandbox, method: str, path: str, body: dict | None = None, *, base: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 - the sandbox's loopback edge
        f"{base or sandbox.edge}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
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

    def __init__(self, sandbox) -> None:
        super().__init__(daemon=True)
        self.sandbox = sandbox
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
            time.sleep(0.02)

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


def test_app_serves_reads_and_writes_through_the_edge(deployed, sandbox):
    cli.serving(sandbox, timeout=120)
    assert _edge(sandbox, "GET", "/health")[0] == 200
    status, body = _edge(sandbox, "GET", "/api/status")
    assert status == 200 and body["region"] == PRIMARY and body["role"] == "writer", body
    status, record = _edge(sandbox, "POST", "/api/data", {"key": "e2e", "value": "through the edge"})
    assert status == 201 and record["region"] == PRIMARY, record
    status, read = _edge(sandbox, "GET", f"/api/data/{record['id']}")
    assert status == 200 and read["value"] == "through the edge"
    status, page = _edge(sandbox, "GET", "/api/data?limit=5")
    assert status == 200 and record["id"] in [item["id"] for item in page["items"]]


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


def _failover(sandbox, tmp_path, **extra_vars) -> tuple:
    """Run failover.yml; returns (run, report or None)."""
    run = run_playbook(
        "failover.yml",
        sandbox_port=sandbox.port,
        extra_vars=extra_vars,
        timeout=1200,
        env={"SANDBOX_URL": sandbox.edge, "FAILOVER_REPORT_DIR": str(tmp_path)},
    )
    latest = tmp_path / "failover-latest.json"
    report = json.loads(latest.read_text()) if latest.exists() else None
    return run, report


def _unchanged(aws, writer: str) -> None:
    cluster = _global(aws)
    assert _writer_region(cluster) == writer and not cluster.get("FailoverState"), cluster


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"failover_mode": "unplanned", "failover_target_region": SECONDARY}, "failover_confirm_data_loss=true"),
        ({"failover_mode": "planned", "failover_target_region": "eu-west-1"}, "is not a region of this inventory"),
        ({"failover_mode": "sideways", "failover_target_region": SECONDARY}, "failover_mode must be planned"),
        (
            {"failover_mode": "planned", "failover_target_region": SECONDARY, "failover_max_replication_lag_ms": -1},
            " ms; bound -1 ms",
        ),
    ],
    ids=["no-confirmation", "unknown-region", "unknown-mode", "lag-over-bound"],
)
def test_failover_refuses_bad_requests_and_changes_nothing(deployed, sandbox, aws, tmp_path, extra_vars, message):
    run, _ = _failover(sandbox, tmp_path, failover_gate_timeout=20, **extra_vars)
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


def test_failover_refuses_an_unhealthy_target(deployed, sandbox, aws, tmp_path):
    ecs, cluster_arn, service_arn = _west_service(aws)
    ecs.update_service(cluster=cluster_arn, service=service_arn, desiredCount=0)
    try:
        run, report = _failover(
            sandbox, tmp_path, failover_mode="planned", failover_target_region=SECONDARY, failover_gate_timeout=6
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


def test_planned_failover_and_failback_lose_no_acknowledged_write(deployed, sandbox, aws, tmp_path):
    writer = ContinuousWriter(sandbox)
    started = time.monotonic()
    writer.start()
    try:
        run, report = _failover(sandbox, tmp_path, failover_mode="planned", failover_target_region=SECONDARY)
        assert run.returncode == 0, run.failure_messages() or run.stderr[-3000:]
        assert report["outcome"] == "ok" and [s["outcome"] for s in report["steps"]] == ["ok"] * 6
        assert _writer_region(_global(aws)) == SECONDARY
        status, body = _edge(sandbox, "GET", "/api/status")
        assert status == 200 and body["region"] == SECONDARY and body["role"] == "writer", body
        print(
            f"planned: {report['time_without_writer_s']} s without a writer (polled); steps "
            + ", ".join(f"{s['name']} {s['seconds']} s" for s in report["steps"])
        )

        run, report = _failover(sandbox, tmp_path, failover_mode="failback")
        assert run.returncode == 0, run.failure_messages() or run.stderr[-3000:]
        assert report["target_region"] == PRIMARY and _writer_region(_global(aws)) == PRIMARY
        assert (tmp_path / "failover-latest.md").read_text().startswith("# Failback failover to us-east-1: OK")
    finally:
        writer.stop.set()
        writer.join(30)
    ended = time.monotonic()
    lost = _missing(sandbox, writer.acknowledged)
    print(
        f"planned failover and failback: {len(writer.acknowledged)} acknowledged writes, {len(writer.failures)} refused, "
        f"longest time without a successful write {writer.longest_gap(started, ended):.2f} s"
    )
    assert len(writer.acknowledged) > 20 and lost == [], lost[:10]

    # Re-running finds everything done: nothing changes and nobody is paged again.
    run, report = _failover(sandbox, tmp_path, failover_mode="failback")
    assert run.returncode == 0 and run.changed == 0, run.changed_tasks()
    assert report["database"]["changed"] is False


def test_region_outage_unplanned_failover_and_rejoin(deployed, sandbox, aws, tmp_path):
    route53 = aws("route53", PRIMARY)
    checks = route53.list_health_checks()["HealthChecks"]
    (east_check,) = [c for c in checks if PRIMARY in c["HealthCheckConfig"].get("FullyQualifiedDomainName", "")]
    config = east_check["HealthCheckConfig"]
    budget = config["RequestInterval"] * (config["FailureThreshold"] + 1)

    cli.outage(sandbox, PRIMARY)
    try:
        dark = time.monotonic()
        served = detected = None
        while time.monotonic() - dark < budget + 5 and (served is None or detected is None):
            status, body = _edge(sandbox, "GET", "/api/status")
            if served is None and status == 200 and body["region"] == SECONDARY:
                served = time.monotonic() - dark
                assert body["role"] == "replica", body  # the writer is dark and nothing failed over yet
            # Route 53 has detected the outage when it answers the failover record with the secondary.
            (zone,) = route53.list_hosted_zones()["HostedZones"]
            answer = route53.test_dns_answer(
                HostedZoneId=zone["Id"], RecordName=f"origin.{zone['Name']}", RecordType="A"
            )["RecordData"]
            if detected is None and any(SECONDARY in value for value in answer):
                detected = time.monotonic() - dark
            time.sleep(0.5)
        print(f"us-east-1 dark: edge served us-west-2 after {served} s, Route 53 answered us-west-2 after {detected} s")
        assert served is not None and served <= budget, f"the edge did not serve from {SECONDARY} within {budget} s"
        assert detected is not None and detected <= budget, f"Route 53 did not fail over within {budget} s"
        # /api/* (reads and writes alike) goes through the failover record, on purpose (docs/roles/cdn.md): it
        # follows Route 53 once the edge's cached answer expires (the alias's 60 s TTL).
        deadline = dark + budget + 60 + 5
        while _edge(sandbox, "GET", "/api/data?limit=1")[0] != 200:
            assert time.monotonic() < deadline, "API reads did not follow the failover record within its TTL"
            time.sleep(1)
        print(f"us-east-1 dark: API reads served again after {time.monotonic() - dark:.1f} s")

        # us-east-1's API answers 503 throughout: the run succeeding proves it needs nothing from there.
        run, report = _failover(
            sandbox,
            tmp_path,
            failover_mode="unplanned",
            failover_target_region=SECONDARY,
            failover_confirm_data_loss=True,
        )
        assert run.returncode == 0, run.failure_messages() or run.stderr[-3000:]
        assert report["outcome"] == "ok" and _writer_region(_global(aws)) == SECONDARY
        assert report["data_loss_estimate_ms"] is not None
        print("unplanned: steps " + ", ".join(f"{s['name']} {s['seconds']} s" for s in report["steps"]))
        status, record = _edge(sandbox, "POST", "/api/data", {"key": "after-failover", "value": "west"})
        assert status == 201 and record["region"] == SECONDARY, record
    finally:
        cli.restore(sandbox, PRIMARY)
    cluster = _wait_global(aws, SECONDARY, timeout=180)
    (east,) = [m for m in cluster["GlobalClusterMembers"] if f":{PRIMARY}:" in m["DBClusterArn"]]
    assert not east["IsWriter"] and east["SynchronizationStatus"] == "connected"


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

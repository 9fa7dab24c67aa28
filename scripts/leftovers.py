"""What is left of a deployment after `make teardown`, per region, through the AWS APIs only.

    .venv/bin/python scripts/leftovers.py [-i inventories/sandbox/hosts.yml]

Reads project_name, deployment_environment and the regions from the inventory (ansible-inventory
--list) and looks for everything site.yml creates, by the names and Name tags the roles give it
(<project>-<env>-<region>-..., and <project>-<env>-... for the global layer). The same for the
sandbox and for real AWS: AWS_ENDPOINT_URL when it is set; otherwise a sandbox inventory (its
aws_environment names an endpoint) reaches the sandbox on SANDBOX_PORT with its fake credentials,
as the playbooks do, and any other inventory uses the default credential chain. Each find is:

- left behind: teardown should have removed it;
- kept on purpose: the final Aurora snapshot teardown takes when aurora_skip_final_snapshot is false,
  any other manual snapshot (teardown never deletes one), and the KMS key (and alias) encrypting them;
- kept by AWS: what AWS keeps after a deletion: KMS keys pending deletion (7-30 days, then deleted
  with their aliases), secrets in their recovery window, INACTIVE ECS clusters (ListClusters lists a
  deleted cluster for a while), retained automated Aurora backups (they expire).

Exit status: 0 when nothing is left behind, 1 when something is, 2 when AWS cannot be asked.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from scripts.deployment import Deployment, clients, connect, read_inventory  # noqa: E402 - after sys.path

LEFT, ON_PURPOSE, BY_AWS = "left behind", "kept on purpose", "kept by AWS"


@dataclass
class Found:
    kind: str
    name: str
    verdict: str = LEFT
    note: str = ""


def _tag(tags: list[dict[str, str]] | None, key: str = "Name") -> str:
    """A tag's value, from Key/Value tags or KMS's TagKey/TagValue."""
    return next((t.get("Value", t.get("TagValue", "")) for t in tags or [] if t.get("Key", t.get("TagKey")) == key), "")


def _pages(client: Any, method: str, key: str, **kwargs: Any) -> list[Any]:
    return [item for page in client.get_paginator(method).paginate(**kwargs) for item in page.get(key, [])]


def _named(kind: str, prefix: str, client: Any, method: str, key: str, field: str, **kwargs: Any) -> list[Found]:
    """Every item a List/Describe call returns whose `field` starts with `prefix`, as left behind."""
    return [Found(kind, i[field]) for i in _pages(client, method, key, **kwargs) if i[field].startswith(prefix)]


def scan_network(ec2: Any, logs: Any, prefix: str) -> list[Found]:
    found: list[Found] = []
    named = [{"Name": "tag:Name", "Values": [f"{prefix}-*"]}]
    for kind, method, key, id_key in (
        ("VPC", "describe_vpcs", "Vpcs", "VpcId"),
        ("subnet", "describe_subnets", "Subnets", "SubnetId"),
        ("route table", "describe_route_tables", "RouteTables", "RouteTableId"),
        ("internet gateway", "describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
        ("VPC endpoint", "describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId"),
    ):
        for item in _pages(ec2, method, key, Filters=named):
            if item.get("State", "").lower() not in ("deleted", "deleting"):
                found.append(Found(kind, f"{item[id_key]} {_tag(item.get('Tags'))}"))
    # A deleted NAT gateway stays listed for about an hour, a record of the deletion rather than a
    # resource; its addresses tell which (untagged) Elastic IPs teardown should have released.
    nat_addresses: dict[str, str] = {}
    for nat in _pages(ec2, "describe_nat_gateways", "NatGateways", Filters=named):
        nat_addresses.update({a["AllocationId"]: nat["NatGatewayId"] for a in nat.get("NatGatewayAddresses", [])})
        if nat["State"] != "deleted":
            found.append(Found("NAT gateway", f"{nat['NatGatewayId']} {_tag(nat.get('Tags'))}", note=nat["State"]))
    for address in ec2.describe_addresses()["Addresses"]:
        nat = nat_addresses.get(address.get("AllocationId", ""))
        if nat or _tag(address.get("Tags")).startswith(prefix):
            found.append(Found("Elastic IP", address["PublicIp"], note=f"address of {nat}" if nat else ""))
    by_group_name = [{"Name": "group-name", "Values": [f"{prefix}-*"]}]
    groups = _pages(ec2, "describe_security_groups", "SecurityGroups", Filters=by_group_name)
    found += [Found("security group", f"{g['GroupId']} {g['GroupName']}") for g in groups]
    flow_logs = ec2.describe_flow_logs(Filters=[{"Name": "log-group-name", "Values": [f"/vpc/{prefix}/flow-logs"]}])
    found += [Found("VPC flow log", f"{f['FlowLogId']} to {f.get('LogGroupName')}") for f in flow_logs["FlowLogs"]]
    for log_prefix in (f"/ecs/{prefix}/", f"/vpc/{prefix}/"):
        found += _named("log group", log_prefix, logs, "describe_log_groups", "logGroups", "logGroupName")
    return found


def scan_compute(client: Callable[[str], Any], prefix: str, project: str) -> list[Found]:
    elbv2, ecs, ecr = client("elbv2"), client("ecs"), client("ecr")
    found = _named("load balancer", prefix, elbv2, "describe_load_balancers", "LoadBalancers", "LoadBalancerName")
    found += _named("target group", prefix, elbv2, "describe_target_groups", "TargetGroups", "TargetGroupName")
    arns = [a for a in _pages(ecs, "list_clusters", "clusterArns") if a.split("/")[-1].startswith(prefix)]
    for cluster in ecs.describe_clusters(clusters=arns)["clusters"] if arns else []:
        if cluster["status"] == "INACTIVE":  # deleted; AWS's ListClusters lists it for a while (DeleteCluster)
            found.append(Found("ECS cluster", cluster["clusterName"], BY_AWS, "INACTIVE: deleted"))
            continue
        found.append(Found("ECS cluster", cluster["clusterName"], note=cluster["status"]))
        # ListServices lists ACTIVE services: a deleted one (DRAINING, INACTIVE) is not listed (DeleteService).
        for arn in _pages(ecs, "list_services", "serviceArns", cluster=cluster["clusterArn"]):
            found.append(Found("ECS service", arn.split("/")[-1]))
    # Deregistered (INACTIVE) revisions stay describable on AWS: only ACTIVE ones are left behind.
    for family in _pages(ecs, "list_task_definition_families", "families", familyPrefix=prefix, status="ACTIVE"):
        for arn in _pages(ecs, "list_task_definitions", "taskDefinitionArns", familyPrefix=family, status="ACTIVE"):
            found.append(Found("ECS task definition", arn.split("/")[-1]))
    try:
        for repo in ecr.describe_repositories(repositoryNames=[f"{project}/web"])["repositories"]:
            found.append(Found("ECR repository", repo["repositoryName"]))
    except ecr.exceptions.RepositoryNotFoundException:
        pass
    scaling, service_ids = client("application-autoscaling"), f"service/{prefix}-"
    for target in _pages(scaling, "describe_scalable_targets", "ScalableTargets", ServiceNamespace="ecs"):
        if target["ResourceId"].startswith(service_ids):
            found.append(Found("autoscaling target", target["ResourceId"]))
    for policy in _pages(scaling, "describe_scaling_policies", "ScalingPolicies", ServiceNamespace="ecs"):
        if policy["ResourceId"].startswith(service_ids):
            found.append(Found("autoscaling policy", policy["PolicyName"]))
    return found


def scan_database(rds: Any, secrets: Any, prefix: str, project_prefix: str) -> tuple[list[Found], dict[str, str]]:
    """Aurora, its snapshots and secret; also {KMS key id or ARN: a snapshot kept on purpose it encrypts}."""
    clusters = {c["DBClusterIdentifier"] for c in _pages(rds, "describe_db_clusters", "DBClusters")}
    found = [Found("Aurora cluster", c) for c in sorted(clusters) if c.startswith(prefix)]
    found += _named("DB instance", prefix, rds, "describe_db_instances", "DBInstances", "DBInstanceIdentifier")
    found += _named("DB subnet group", prefix, rds, "describe_db_subnet_groups", "DBSubnetGroups", "DBSubnetGroupName")
    found += _named("DB cluster parameter group", prefix, rds, "describe_db_cluster_parameter_groups",
                    "DBClusterParameterGroups", "DBClusterParameterGroupName")  # fmt: skip
    snapshot_keys: dict[str, str] = {}
    for snap in _pages(rds, "describe_db_cluster_snapshots", "DBClusterSnapshots"):
        name, source = snap["DBClusterSnapshotIdentifier"], snap.get("DBClusterIdentifier", "")
        if not source.startswith(prefix):
            continue
        if snap.get("SnapshotType") == "automated":
            # A live cluster's backups go with it; a deleted one's stay only when retained, and expire.
            if source not in clusters:
                note = "retained automated backup (AWS Backup rule or DeleteAutomatedBackups=false); it expires"
                found.append(Found("DB cluster snapshot", name, BY_AWS, note))
            continue
        final = name.startswith(f"{source}-final-")
        note = "final snapshot taken by teardown" if final else "manual snapshot: teardown never deletes one"
        found.append(Found("DB cluster snapshot", name, ON_PURPOSE, note))
        if snap.get("KmsKeyId"):
            snapshot_keys[snap["KmsKeyId"]] = name
    # The master-credentials secret has one name in every region: <project>-<env>-database-master.
    by_name = [{"Key": "name", "Values": [f"{project_prefix}-"]}]
    for secret in _pages(secrets, "list_secrets", "SecretList", IncludePlannedDeletion=True, Filters=by_name):
        if secret.get("DeletedDate"):
            found.append(
                Found("secret", secret["Name"], BY_AWS, f"deleted {secret['DeletedDate']:%F}, recovery window")
            )
        else:
            found.append(Found("secret", secret["Name"]))
    return found, snapshot_keys


def scan_kms(kms: Any, prefix: str, snapshot_keys: dict[str, str]) -> list[Found]:
    """The roles' keys (Name tag <prefix>-...) and aliases (alias/<prefix>-...)."""
    found: list[Found] = []
    kept: set[str] = set()  # keys kept on purpose: their aliases are kept too
    aliases = [a for a in _pages(kms, "list_aliases", "Aliases") if a["AliasName"].startswith(f"alias/{prefix}-")]
    aliased = {a.get("TargetKeyId") for a in aliases}
    for key in _pages(kms, "list_keys", "Keys"):
        try:  # ListKeys lists every key of the account; another team's key policy may refuse us its details
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            # A key whose alias is gone (teardown removes it) is still known by the Name tag the roles give it.
            tags = kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] if meta.get("KeyManager") != "AWS" else []
        except kms.exceptions.ClientError as e:
            if e.response["Error"]["Code"] != "AccessDeniedException":
                raise
            continue
        name = _tag(tags)
        if meta.get("KeyManager") == "AWS" or (meta["KeyId"] not in aliased and not name.startswith(f"{prefix}-")):
            continue
        label = f"{meta['KeyId']} {name}".strip()
        snapshot = snapshot_keys.get(meta["Arn"]) or snapshot_keys.get(meta["KeyId"])
        if meta["KeyState"] == "PendingDeletion":
            note = f"pending deletion, deleted on {meta['DeletionDate']:%F}"
            if snapshot:  # then the snapshot can never be restored: say so while it can still be cancelled
                note += f"; {snapshot} needs it: CancelKeyDeletion keeps the snapshot restorable"
            found.append(Found("KMS key", label, BY_AWS, note))
        elif snapshot:
            kept.add(meta["KeyId"])
            found.append(Found("KMS key", label, ON_PURPOSE, f"{meta['KeyState']}, encrypts {snapshot}"))
        else:
            found.append(Found("KMS key", label, note=meta["KeyState"]))
    for alias in aliases:
        if alias.get("TargetKeyId") in kept:
            found.append(Found("KMS alias", alias["AliasName"], ON_PURPOSE, "of a key a kept snapshot needs"))
        else:
            found.append(Found("KMS alias", alias["AliasName"]))
    return found


def scan_region(session: Any, deployment: Deployment, region: str) -> list[Found]:
    client = clients(session, region)
    prefix = f"{deployment.prefix}-{region}"
    found = scan_network(client("ec2"), client("logs"), prefix)
    found += scan_compute(client, prefix, deployment.project)
    database, snapshot_keys = scan_database(client("rds"), client("secretsmanager"), prefix, deployment.prefix)
    found += database + scan_kms(client("kms"), prefix, snapshot_keys)
    buckets = client("s3").list_buckets()["Buckets"]  # global list: the region is in the name
    found += [Found("S3 bucket", b["Name"]) for b in buckets if b["Name"].startswith(f"{prefix}-")]
    topics = [t["TopicArn"].split(":")[-1] for t in _pages(client("sns"), "list_topics", "Topics")]
    found += [Found("SNS topic", topic) for topic in topics if topic.startswith(f"{prefix}-")]
    cloudwatch = client("cloudwatch")
    found += _named("alarm", f"{prefix}-", cloudwatch, "describe_alarms", "MetricAlarms", "AlarmName")
    found += _named("dashboard", prefix, cloudwatch, "list_dashboards", "DashboardEntries", "DashboardName")
    return found + scan_certificates(client("acm"), f"{deployment.prefix}-")


def scan_certificates(acm: Any, prefix: str) -> list[Found]:
    """ACM certificates playbooks/certificates.yml requested, by their Name tag (<project>-<env>-edge-<zone> in
    us-east-1, <project>-<env>-<region>-origin-<zone> in each region)."""
    found = []
    for cert in _pages(
        acm, "list_certificates", "CertificateSummaryList", Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]}
    ):
        name = _tag(acm.list_tags_for_certificate(CertificateArn=cert["CertificateArn"]).get("Tags"))
        if name.startswith(prefix):
            found.append(Found("ACM certificate", f"{cert['DomainName']} {name}", note=cert.get("Status", "")))
    return found


def scan_global(session: Any, deployment: Deployment) -> list[Found]:
    """The Aurora global cluster, Route 53 (and its query logs), CloudFront, IAM and the us-east-1 health-check alarms."""
    client, prefix = clients(session, "us-east-1"), f"{deployment.prefix}-"
    found = _named("Aurora global cluster", prefix, client("rds"), "describe_global_clusters", "GlobalClusters",
                   "GlobalClusterIdentifier")  # fmt: skip
    route53 = client("route53")
    for zone in _pages(route53, "list_hosted_zones", "HostedZones"):  # made by dns unless public_zone_id is set
        zone_id = zone["Id"].split("/")[-1]
        tags = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)["ResourceTagSet"]["Tags"]
        if (_tag(tags, "Project"), _tag(tags, "Environment")) == (deployment.project, deployment.environment):
            found.append(Found("hosted zone", f"{zone_id} {zone['Name']}"))
    checks = [c["Id"] for c in _pages(route53, "list_health_checks", "HealthChecks")]
    for start in range(0, len(checks), 10):  # ListTagsForResources takes 10 ids at a time
        batch = route53.list_tags_for_resources(ResourceType="healthcheck", ResourceIds=checks[start : start + 10])
        for tagset in batch["ResourceTagSets"]:
            if _tag(tagset["Tags"]).startswith(prefix):
                found.append(Found("health check", f"{tagset['ResourceId']} {_tag(tagset['Tags'])}"))
    # Route 53 query logging (dns role): the zone's log group /aws/route53/<zone> in us-east-1, tagged like the zone
    # (its name is the zone's, which the inventory may choose), and the resource policy, named by the prefix.
    logs = client("logs")
    for group in _pages(logs, "describe_log_groups", "logGroups", logGroupNamePrefix="/aws/route53/"):
        tags = logs.list_tags_log_group(logGroupName=group["logGroupName"]).get("tags", {})
        if (tags.get("Project"), tags.get("Environment")) == (deployment.project, deployment.environment):
            found.append(Found("log group", group["logGroupName"]))
    policies = logs.describe_resource_policies().get("resourcePolicies", [])
    found += [Found("logs resource policy", p["policyName"]) for p in policies if p["policyName"].startswith(prefix)]
    cloudfront = client("cloudfront")
    for dist in cloudfront.list_distributions()["DistributionList"].get("Items", []):
        name = _tag(cloudfront.list_tags_for_resource(Resource=dist["ARN"])["Tags"].get("Items"))
        if name.startswith(prefix):
            found.append(Found("CloudFront distribution", f"{dist['Id']} {name}", note=dist["Status"]))
    for oac in cloudfront.list_origin_access_controls()["OriginAccessControlList"].get("Items", []):
        if oac["Name"].startswith(prefix):
            found.append(Found("origin access control", f"{oac['Id']} {oac['Name']}"))
    # The cdn role's web ACL (scope CLOUDFRONT: listed in us-east-1), <project>-<env>-edge.
    wafv2 = client("wafv2")
    for acl in wafv2.list_web_acls(Scope="CLOUDFRONT").get("WebACLs", []):
        if acl["Name"].startswith(prefix):
            found.append(Found("web ACL (CloudFront)", f"{acl['Id']} {acl['Name']}"))
    # The Route 53 health-check alarms live in us-east-1 under <project>-<env>-global-.
    found += _named("alarm", f"{prefix}global-", client("cloudwatch"), "describe_alarms", "MetricAlarms", "AlarmName")
    iam = client("iam")  # global: the roles carry their region in their names
    found += _named("IAM role", prefix, iam, "list_roles", "Roles", "RoleName")
    found += _named("IAM policy", prefix, iam, "list_policies", "Policies", "PolicyName", Scope="Local")
    return found


def report(deployment: Deployment, sections: dict[str, list[Found]]) -> int:
    count = {v: sum(f.verdict == v for found in sections.values() for f in found) for v in (LEFT, ON_PURPOSE, BY_AWS)}
    for title, found in sections.items():
        print(f"{title}:" + ("" if found else " nothing left"))
        for verdict in count:
            chosen = sorted((f for f in found if f.verdict == verdict), key=lambda f: (f.kind.lower(), f.name))
            if chosen:
                print(f"  {verdict}:")
            for f in chosen:
                print(f"    {f.kind:<27} {f.name}" + (f"  ({f.note})" if f.note else ""))
    # One verdict line, led by the deployment's prefix; "nothing left behind" whenever exit status is 0.
    where = f"{', '.join(deployment.regions)} or the global services"
    if not any(count.values()):
        print(f"{deployment.prefix}: nothing left in {where} (nothing left behind, nothing kept).")
    elif count[LEFT]:
        print(f"{deployment.prefix}: {count[LEFT]} left behind (listed above): resources teardown removes.")
    else:
        kept = f"{count[BY_AWS]} kept by AWS, {count[ON_PURPOSE]} kept on purpose (listed above)"
        print(f"{deployment.prefix}: nothing left behind in {where}; {kept}.")
    return 1 if count[LEFT] else 0


def main(argv: list[str] | None = None) -> int:
    import botocore.exceptions

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-i", "--inventory", default="inventories/sandbox/hosts.yml", help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        deployment = read_inventory(args.inventory)
        session, account = connect(deployment)
        where = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
        print(f"What is left of {deployment.prefix} ({args.inventory}) at {where}, account {account}")
        sections = {region: scan_region(session, deployment, region) for region in deployment.regions}
        sections["global"] = scan_global(session, deployment)
    except SystemExit as stop:
        print(f"leftovers: {stop}", file=sys.stderr)
        return 2
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        # Only Describe/List/Get calls are made: a refusal means the credentials may not read something.
        print(f"leftovers: AWS refused a read ({e}): use credentials that may read (ReadOnlyAccess)", file=sys.stderr)
        return 2
    return report(deployment, sections)


if __name__ == "__main__":
    sys.exit(main())

"""The deployed stack as the AWS APIs report it: one snapshot of the facts the drills watch, and the
verdict "as deployed" (writer in the primary region, desired counts met, everything healthy).

Only Describe/List/Get calls, the same against the sandbox and against AWS. A region whose APIs do
not answer (a dark region) is a fact of the snapshot, not an error.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scripts.deployment import Deployment, clients

# Facts are flat: key -> value, so that a change of any value is a transition the timeline can show.
# key examples: ("ecs", "us-east-1") -> "3/3", ("target", "us-east-1", "10.10.1.5:8000") -> "healthy";
# a regional fact's second part is its region, so that a dark region's facts can be told apart.
Facts = dict[tuple[str, ...], str]


@dataclass
class Snapshot:
    facts: Facts = field(default_factory=dict)
    taken_at: float = 0.0  # when its reading started, on the drill's clock (the watcher sets it)
    # Per region: its ECS service ("<cluster> <service>"), target groups and Aurora cluster, for the faults.
    services: dict[str, tuple[str, str]] = field(default_factory=dict)
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # region -> running tasks
    writer_instances: dict[str, dict[str, str]] = field(default_factory=dict)  # region -> {id, az}

    def get(self, *key: str) -> str | None:
        return self.facts.get(key)

    def problems(self, deployment: Deployment, replication: bool = True) -> list[str]:
        """What differs from the stack as deployed; [] when it is as deployed. replication=False leaves out
        the secondary's replication lag (full capacity is reached before a resync's lag has aged out)."""
        found = []
        for region in deployment.regions:
            if self.get("api", region) != "answers":
                found.append(f"{region}: its APIs do not answer ({self.get('api', region)})")
                continue
            ecs = self.get("ecs", region)
            if ecs is None:
                found.append(f"{region}: no ECS service of {deployment.prefix}-{region} (run `make deploy`)")
            elif not _counts_met(ecs):
                found.append(f"{region}: ECS service running/desired {ecs}")
            # A draining target is on its way out (its task stopped): what counts is a healthy target per task.
            targets = {k[2]: v for k, v in self.facts.items() if k[:2] == ("target", region)}
            unhealthy = sorted(t for t, state in targets.items() if state not in ("healthy", "draining"))
            if unhealthy:
                found.append(f"{region}: targets not healthy: {', '.join(unhealthy)}")
            healthy = sum(state == "healthy" for state in targets.values())
            if ecs is not None and healthy < int(ecs.split("/")[1]):
                found.append(f"{region}: {healthy} healthy target(s) for {ecs.split('/')[1]} desired task(s)")
            cluster = self.get("aurora", region)
            if cluster != "available":
                found.append(f"{region}: Aurora cluster {deployment.prefix}-{region}-aurora is {cluster or 'missing'}")
        writer = self.get("global-writer")
        if writer != deployment.primary:
            found.append(f"the global database's writer is {writer or 'unknown'}, not the primary {deployment.primary}")
        # The automatic failover refuses after a lag over its bound (an earlier fault still resynchronising): a
        # drill that starts then would measure the refusal, not the failover.
        lag = self.get("replication", deployment.secondary) or ""
        if replication and "over" in lag:
            found.append(
                f"{deployment.secondary}: replication lag in the newest minute {lag} (failover_max_replication_lag_ms): "
                "an earlier fault is still resynchronising; wait a minute"
            )
        for key, value in self.facts.items():
            if key[0] == "health-check" and value != "healthy":
                found.append(f"Route 53 health check {key[1]} is {value}")
        return found


def replication_bound_ms(deployment: Deployment) -> float:
    return float(deployment.settings.get("failover_max_replication_lag_ms", 1000))


def _counts_met(running_desired: str) -> bool:
    running, desired = running_desired.split("/")
    return int(desired) > 0 and running == desired


class HealthCheckJudge:
    """Route 53's own verdict on a health check, from what GetHealthCheckStatus shows: each checker's latest
    observation only. A checker calls the endpoint unhealthy after FailureThreshold failed checks in a row
    (and healthy again after as many successes), and the check is healthy while more than 18 % of its
    checkers call it healthy. So the judge follows each checker across reads, counting its new observations
    (a new CheckedTime) - a failed observation or two is not yet a failover."""

    def __init__(self) -> None:
        # (check id, checker region, checker IP) -> [last CheckedTime, healthy?, streak of the other result]
        self._checkers: dict[tuple[str, str, str], list[Any]] = {}

    def verdict(self, check_id: str, threshold: int, observations: list[dict[str, Any]]) -> str:
        healthy = 0
        for observation in observations:
            report = observation["StatusReport"]
            success = report["Status"].startswith("Success")
            key = (check_id, observation.get("Region", ""), observation.get("IPAddress", ""))
            state = self._checkers.get(key)
            if state is None:  # first seen: its verdict is its latest result (no history before the drill)
                state = self._checkers[key] = [report["CheckedTime"], success, 0]
            elif report["CheckedTime"] != state[0]:
                state[0] = report["CheckedTime"]
                state[2] = state[2] + 1 if success != state[1] else 0
                if state[2] >= threshold:
                    state[1], state[2] = success, 0
            healthy += bool(state[1])
        return "healthy" if observations and healthy / len(observations) > 0.18 else "unhealthy"


def read(deployment: Deployment, session: Any, judge: HealthCheckJudge | None = None) -> Snapshot:
    """One snapshot of every watched fact, region by region, then the global layer. Give the same judge to
    every read of a drill: it keeps the checkers' history that Route 53's verdict needs."""
    snap = Snapshot()
    for region in deployment.regions:
        client = clients(session, region, connect_timeout=2, read_timeout=10)
        try:
            _read_region(snap, deployment, region, client)
            snap.facts[("api", region)] = "answers"
        except Exception as exc:  # a dark region or a refused call is a fact, not a crash
            snap.facts[("api", region)] = _short(exc)
    _read_global(snap, deployment, session, judge or HealthCheckJudge())
    return snap


def _read_region(snap: Snapshot, deployment: Deployment, region: str, client: Callable[[str], Any]) -> None:
    prefix = f"{deployment.prefix}-{region}"
    ecs = client("ecs")
    for cluster_arn in ecs.list_clusters()["clusterArns"]:
        cluster = cluster_arn.split("/")[-1]
        if not cluster.startswith(prefix):
            continue
        arns = ecs.list_services(cluster=cluster_arn)["serviceArns"]
        for service in ecs.describe_services(cluster=cluster_arn, services=arns)["services"] if arns else []:
            snap.facts[("ecs", region)] = f"{service['runningCount']}/{service['desiredCount']}"
            snap.services[region] = (cluster, service["serviceName"])
            _read_targets(snap, region, client("elbv2"), [lb["targetGroupArn"] for lb in service["loadBalancers"]])
            task_arns = ecs.list_tasks(cluster=cluster_arn, serviceName=service["serviceName"])["taskArns"]
            tasks = ecs.describe_tasks(cluster=cluster_arn, tasks=task_arns)["tasks"] if task_arns else []
            snap.tasks[region] = [t for t in tasks if t["lastStatus"] == "RUNNING"]
    rds = client("rds")
    for cluster in rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [f"{prefix}-aurora"]}])[
        "DBClusters"
    ]:
        snap.facts[("aurora", region)] = cluster["Status"]
        writer = next((m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if m["IsClusterWriter"]), "")
        snap.facts[("aurora-writer", region)] = writer or "none"
        if writer:
            (instance,) = rds.describe_db_instances(DBInstanceIdentifier=writer)["DBInstances"]
            snap.writer_instances[region] = {"id": writer, "az": instance.get("AvailabilityZone", "")}
    cloudwatch = client("cloudwatch")
    for alarm in cloudwatch.describe_alarms(AlarmNamePrefix=f"{prefix}-")["MetricAlarms"]:
        snap.facts[("alarm", region, alarm["AlarmName"])] = alarm["StateValue"]
    if region == deployment.secondary:
        # A verdict, not the figure: the timeline shows when it changes rather than every new sample.
        lag, bound = _replication_lag(cloudwatch, f"{prefix}-aurora"), replication_bound_ms(deployment)
        snap.facts[("replication", region)] = (
            "no datapoint" if lag is None else "within bound" if lag <= bound else f"over {bound:.0f} ms"
        )


def _replication_lag(cloudwatch: Any, cluster_id: str) -> float | None:
    """The secondary's worst AuroraGlobalDBReplicationLag of the newest minute, as the automatic failover
    controller reads it for its "lag before the outage" (extensions/eda/plugins/event_source/region_signals.py)."""
    now = datetime.datetime.now(datetime.UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="AuroraGlobalDBReplicationLag",
        Dimensions=[{"Name": "DBClusterIdentifier", "Value": cluster_id}],
        StartTime=now - datetime.timedelta(minutes=3),
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return float(max(points, key=lambda p: p["Timestamp"])["Maximum"]) if points else None


def _read_targets(snap: Snapshot, region: str, elbv2: Any, group_arns: list[str]) -> None:
    for arn in group_arns:
        for target in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]:
            where = f"{target['Target']['Id']}:{target['Target'].get('Port', '')}"
            snap.facts[("target", region, where)] = target["TargetHealth"]["State"]


def _read_global(snap: Snapshot, deployment: Deployment, session: Any, judge: HealthCheckJudge) -> None:
    """The global cluster's writer, asked in the primary region, else in the secondary (a dark primary's
    RDS API does not answer); and the Route 53 health checks (their control plane is in us-east-1; while
    a region is dark the checks' verdicts still come from the checkers, as on AWS)."""
    snap.facts[("global-writer",)] = "unknown"
    for region in (deployment.primary, deployment.secondary):
        rds = clients(session, region, connect_timeout=2, read_timeout=10)("rds")
        try:
            (cluster,) = rds.describe_global_clusters(GlobalClusterIdentifier=f"{deployment.prefix}-global")[
                "GlobalClusters"
            ]
        except Exception as exc:  # try the other region
            snap.facts[("global-writer",)] = f"unknown ({_short(exc)})"
            continue
        writer = next((m["DBClusterArn"] for m in cluster["GlobalClusterMembers"] if m["IsWriter"]), "")
        snap.facts[("global-writer",)] = writer.split(":")[3] if writer else "none"
        break
    try:
        _read_health_checks(
            snap, deployment, clients(session, "us-east-1", connect_timeout=2, read_timeout=10)("route53"), judge
        )
    except Exception as exc:
        snap.facts[("route53",)] = _short(exc)


def _read_health_checks(snap: Snapshot, deployment: Deployment, route53: Any, judge: HealthCheckJudge) -> None:
    checks = route53.list_health_checks()["HealthChecks"]
    ids = [c["Id"] for c in checks]
    names: dict[str, str] = {}
    for start in range(0, len(ids), 10):  # ListTagsForResources takes 10 ids at a time
        batch = route53.list_tags_for_resources(ResourceType="healthcheck", ResourceIds=ids[start : start + 10])
        for tagset in batch["ResourceTagSets"]:
            name = next((t["Value"] for t in tagset["Tags"] if t["Key"] == "Name"), "")
            if name.startswith(f"{deployment.prefix}-"):
                names[tagset["ResourceId"]] = name
    for check in checks:
        if check["Id"] not in names or check["HealthCheckConfig"]["Type"] == "CALCULATED":
            continue  # a calculated check has no checkers' observations of its own
        observations = route53.get_health_check_status(HealthCheckId=check["Id"])["HealthCheckObservations"]
        threshold = int(check["HealthCheckConfig"].get("FailureThreshold", 3))
        snap.facts[("health-check", names[check["Id"]])] = judge.verdict(check["Id"], threshold, observations)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]

"""Where faults come from: the sandbox's fault commands, or AWS's own means on a real deployment.

A fault is a list of `Step`s: each says exactly what it calls (`call`), so that `--check` can print the
plan without running it, and runs it (`run()`). Every injection has its undo, which the runner calls in a
`finally:`: a drill interrupted with Ctrl-C still undoes what it did.

On AWS the faults are what AWS Fault Injection Service (FIS) actions do, called directly where an API
does the same (`aws:ecs:stop-task` = ECS StopTask, `aws:rds:failover-db-cluster` = RDS FailoverDBCluster)
and as a FIS experiment where only FIS can (`aws:network:disrupt-connectivity`, which blocks a subnet's
traffic for a duration: an AZ's subnets, or every subnet of the primary region's VPC for "the region goes
dark"). FIS needs an IAM role it can assume (`--fis-role-arn`); the runner creates the experiment template,
starts it, and on undo stops the experiment and deletes the template.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scripts.deployment import Deployment, clients


@dataclass
class Step:
    title: str  # what it does, for people: "kill task 1a2b in us-east-1a"
    call: str  # exactly what it calls: "POST /_sandbox/faults/kill-task {...}", "ecs.stop_task(...)"
    run: Callable[[], Any]


def _call(name: str, **params: Any) -> str:
    return f"{name}({', '.join(f'{k}={json.dumps(v)}' for k, v in params.items())})"


class SandboxFaults:
    """The sandbox's fault commands (`python -m sandbox fault|outage|restore`), through its control routes."""

    where = "sandbox"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def _fault(self, title: str, name: str, **args: str) -> Step:
        from sandbox import cli

        pairs = [f"{k}={v}" for k, v in args.items()]
        return Step(
            title,
            f"python -m sandbox fault {name} {' '.join(pairs)}".strip(),
            lambda: json.loads(cli.fault(self.cfg, name, pairs)),
        )

    def stop_task(self, region: str, cluster: str, task: dict[str, Any]) -> Step:
        del cluster  # the sandbox finds the task by its id
        task_id = task["taskArn"].split("/")[-1]
        return self._fault(
            f"kill task {task_id} ({task['availabilityZone']})", "kill-task", region=region, task=task_id
        )

    def stop_tasks_in_az(self, region: str, cluster: str, az: str, tasks: list[dict[str, Any]]) -> list[Step]:
        del region, cluster, tasks
        return [self._fault(f"kill every task in {az}", "kill-az", az=az)]

    def crash_writer(self, region: str, cluster_id: str, writer: str) -> Step:
        del cluster_id
        return self._fault(
            f"crash the writer instance {writer} (its PostgreSQL process is killed)",
            "crash-db-instance",
            region=region,
            instance=writer,
        )

    def isolate_subnets(self, region: str, subnets: list[str], why: str, duration_s: int) -> tuple[Step, Step]:
        """The sandbox has no subnet-level network fault: an AZ is drilled with kill-az (see
        stop_tasks_in_az); a whole region with its outage switch."""
        del subnets, why, duration_s
        from sandbox import cli

        return (
            Step(f"take {region} dark", f"python -m sandbox outage {region}", lambda: cli.outage(self.cfg, region)),
            Step(f"bring {region} back", f"python -m sandbox restore {region}", lambda: cli.restore(self.cfg, region)),
        )


class AwsFaults:
    """AWS's own means: ECS StopTask, RDS FailoverDBCluster, and FIS experiments for network faults."""

    where = "AWS"

    def __init__(self, session: Any, deployment: Deployment, account: str, fis_role_arn: str | None) -> None:
        self.session, self.deployment, self.account, self.fis_role_arn = session, deployment, account, fis_role_arn

    def _client(self, region: str, service: str) -> Any:
        return clients(self.session, region)(service)

    def stop_task(self, region: str, cluster: str, task: dict[str, Any]) -> Step:
        params = {"cluster": cluster, "task": task["taskArn"], "reason": "hawa drill: single container"}
        return Step(
            f"stop task {task['taskArn'].split('/')[-1]} ({task['availabilityZone']})",
            f"[{region}] " + _call("ecs.stop_task", **params),
            lambda: self._client(region, "ecs").stop_task(**params)["task"]["taskArn"],
        )

    def stop_tasks_in_az(self, region: str, cluster: str, az: str, tasks: list[dict[str, Any]]) -> list[Step]:
        return [self.stop_task(region, cluster, t) for t in tasks if t["availabilityZone"] == az]

    def crash_writer(self, region: str, cluster_id: str, writer: str) -> Step:
        # Aurora has no "crash this instance" API; FailoverDBCluster is what aws:rds:failover-db-cluster runs.
        params = {"DBClusterIdentifier": cluster_id}
        return Step(
            f"fail over {cluster_id} away from its writer {writer} (FIS aws:rds:failover-db-cluster)",
            f"[{region}] " + _call("rds.failover_db_cluster", **params),
            lambda: self._client(region, "rds").failover_db_cluster(**params)["DBCluster"]["Status"],
        )

    def isolate_subnets(self, region: str, subnets: list[str], why: str, duration_s: int) -> tuple[Step, Step]:
        """A FIS experiment with aws:network:disrupt-connectivity (scope all) on the subnets, and its undo."""
        if not self.fis_role_arn:
            raise SystemExit(
                f"{why} on AWS is a FIS experiment, which needs an IAM role FIS can assume: pass --fis-role-arn "
                "(a role trusting fis.amazonaws.com with the AWSFaultInjectionSimulatorNetworkAccess policy)"
            )
        template = {
            "clientToken": str(uuid.uuid4()),
            "description": f"hawa drill: {why}",
            "roleArn": self.fis_role_arn,
            "stopConditions": [{"source": "none"}],
            "targets": {
                "subnets": {
                    "resourceType": "aws:ec2:subnet",
                    "resourceArns": [f"arn:aws:ec2:{region}:{self.account}:subnet/{s}" for s in subnets],
                    "selectionMode": "ALL",
                }
            },
            "actions": {
                "disrupt": {
                    "actionId": "aws:network:disrupt-connectivity",
                    "parameters": {"duration": f"PT{duration_s}S", "scope": "all"},
                    "targets": {"Subnets": "subnets"},
                }
            },
            "tags": {"Project": self.deployment.project, "Environment": self.deployment.environment},
        }
        started: dict[str, str] = {}

        def inject() -> str:
            fis = self._client(region, "fis")
            started["template"] = fis.create_experiment_template(**template)["experimentTemplate"]["id"]
            started["experiment"] = fis.start_experiment(
                clientToken=str(uuid.uuid4()), experimentTemplateId=started["template"]
            )["experiment"]["id"]
            return started["experiment"]

        def undo() -> None:
            fis = self._client(region, "fis")
            if "experiment" in started:
                fis.stop_experiment(id=started["experiment"])
            if "template" in started:
                fis.delete_experiment_template(id=started["template"])

        return (
            Step(
                f"{why}: FIS disrupt-connectivity on {len(subnets)} subnet(s) for up to {duration_s} s",
                f"[{region}] fis.create_experiment_template({json.dumps(template)}); fis.start_experiment(...)",
                inject,
            ),
            Step(
                f"end {why}",
                f"[{region}] fis.stop_experiment(id=<experiment>); fis.delete_experiment_template(...)",
                undo,
            ),
        )


def subnets(session: Any, deployment: Deployment, region: str, az: str | None = None) -> list[str]:
    """The project VPC's subnets in region (in one AZ when az is given); a placeholder when AWS cannot be
    read (`--check` without credentials)."""
    if session is None:
        return [f"<the subnets of {deployment.prefix}-{region}{' in ' + az if az else ''}>"]
    ec2 = clients(session, region)("ec2")
    filters = [{"Name": "tag:Name", "Values": [f"{deployment.prefix}-{region}-*"]}]
    if az:
        filters.append({"Name": "availability-zone", "Values": [az]})
    return sorted(s["SubnetId"] for s in ec2.describe_subnets(Filters=filters)["Subnets"])

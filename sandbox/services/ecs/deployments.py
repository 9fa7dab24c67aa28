"""ECS services: how the scheduler keeps desiredCount tasks running and rolls deployments out."""

from __future__ import annotations

import contextlib
import math
import uuid
from typing import Any

from sandbox.services.ecs.model import (
    EVENTS_KEPT,
    STOPPED_RETENTION_S,
    Run,
    _state,
    log,
    moto_now,
    new_deployment_id,
    primary_deployment,
)


class Deployments:
    """The scheduler's services: desired counts, rolling deployments, the circuit breaker, counts (a Scheduler part)."""

    # -- services ----------------------------------------------------------------------------------

    @staticmethod
    def _is_live_service(backend: Any, service: Any) -> bool:
        if not service.task_definition:
            return False
        try:
            definition = backend.describe_task_definition(service.task_definition)
        except Exception:
            return False
        return definition.network_mode == "awsvpc" and bool(
            (service.network_configuration or {}).get("awsvpcConfiguration", {}).get("subnets")
        )

    def _service_runs(self, service: Any) -> list[Run]:
        return [r for r in self.runs.values() if r.service is service and r.active]

    def _schedule(self, backend: Any, region: str, service: Any, now: float) -> None:
        runs = self._service_runs(service)
        primary = primary_deployment(service)
        cluster = backend.clusters.get(service.cluster_name)
        if service.status != "ACTIVE" or primary is None or cluster is None or cluster.status != "ACTIVE":
            label = primary["id"] if primary else "none"
            self._stop_many(service, runs, f"Scaling activity initiated by (deployment {label})")
            return
        mine = [r for r in runs if r.deployment_id == primary["id"]]
        old = [r for r in runs if r.deployment_id != primary["id"]]
        desired = int(service.desired_count or 0)
        if len(mine) > desired:
            self._stop_many(
                service,
                self._victims(mine, len(mine) - desired),
                f"Scaling activity initiated by (deployment {primary['id']})",
            )
            mine = [r for r in mine if r.active]
        state = _state(service)
        settings = getattr(service, "deployment_configuration", None) or {}
        if (
            len(mine) < desired
            and not self.rt.is_dark(region)
            and primary.get("rolloutState") != "FAILED"
            and now >= state.next_launch
        ):
            ceiling = max(desired, math.floor(desired * int(settings.get("maximumPercent", 200)) / 100))
            count = desired - len(mine)
            if old:
                count = min(count, ceiling - len(mine) - len(old))
            started = [self._launch_for(backend, service, primary, mine) for _ in range(max(0, count))]
            started = [r for r in started if r is not None]
            if started:
                ids = " ".join(f"(task {r.task.id})" for r in started)
                self._event(service, f"(service {service.name}) has started {len(started)} tasks: {ids}.")
        if old:
            floor = math.ceil(desired * int(settings.get("minimumHealthyPercent", 100)) / 100)
            ready = sum(r.ready for r in mine) + sum(r.ready for r in old)
            victims = []
            for run in sorted(old, key=lambda r: r.ready):
                if not run.ready:
                    victims.append(run)
                elif ready - 1 >= floor:
                    victims.append(run)
                    ready -= 1
            self._stop_many(service, victims, f"Scaling activity initiated by (deployment {primary['id']})")
        # A deployment leaves the list when its last task is gone; a FAILED one stays visible (ACTIVE)
        # while the deployment that replaced it is still in progress.
        remaining = {r.deployment_id for r in self._service_runs(service)}
        in_progress = primary.get("rolloutState") == "IN_PROGRESS"
        deployments = [
            d
            for d in service.deployments
            if d is primary or d.get("id") in remaining or (in_progress and d.get("rolloutState") == "FAILED")
        ]
        if len(deployments) != len(service.deployments):
            service.deployments = deployments
        self._rollout(service, primary, now)

    def _rollout(self, service: Any, primary: dict[str, Any], now: float) -> None:
        state = _state(service)
        mine = [r for r in self._service_runs(service) if r.deployment_id == primary["id"]]
        if any(r.ready for r in mine) and primary["id"] not in state.unwatched:
            state.unwatched.add(primary["id"])
            primary["failedTasks"] = 0
        desired = int(service.desired_count or 0)
        others = [r for r in self._service_runs(service) if r.deployment_id != primary["id"]]
        settled = not others and len(mine) == desired and all(r.ready for r in mine)
        if primary.get("rolloutState") == "IN_PROGRESS" and settled:
            primary["rolloutState"] = "COMPLETED"
            primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
            primary["updatedAt"] = moto_now()
            state.last_completed = (primary["id"], primary["taskDefinition"])
            self._event(service, f"(service {service.name}) (deployment {primary['id']}) deployment completed.")
        steady = settled and len(service.deployments) == 1 and primary.get("rolloutState") == "COMPLETED"
        if steady and not state.steady:
            self._event(service, f"(service {service.name}) has reached a steady state.")
        state.steady = steady

    def _launch_for(self, backend: Any, service: Any, deployment: dict[str, Any], mine: list[Run]) -> Run | None:
        """Start one task of the deployment in the AZ where the service runs fewest."""
        from moto.ec2 import ec2_backends

        awsvpc = dict(service.network_configuration["awsvpcConfiguration"])
        awsvpc.setdefault("securityGroups", [])
        ec2 = ec2_backends[backend.account_id][backend.region_name]
        per_az: dict[str, int] = {}
        for run in self._service_runs(service):
            per_az[run.task.availability_zone] = per_az.get(run.task.availability_zone, 0) + 1
        state = _state(service)
        state.rotation += 1
        subnets = list(awsvpc["subnets"])
        order = subnets[state.rotation % len(subnets) :] + subnets[: state.rotation % len(subnets)]
        try:
            zones = {s: ec2.get_subnet(s).availability_zone for s in order}
        except Exception as exc:
            self._event(service, f"(service {service.name}) was unable to place a task: {exc}")
            return None
        subnet_id = min(order, key=lambda s: per_az.get(zones[s], 0))
        tags = service.tags if getattr(service, "propagate_tags", "NONE") == "SERVICE" else []
        try:
            return self.create_task(
                backend,
                backend.clusters[service.cluster_name],
                backend.describe_task_definition(deployment["taskDefinition"]),
                awsvpc,
                subnet_id,
                started_by=deployment["id"],
                tags=tags,
                launch_type=service.launch_type or "FARGATE",
                group=f"service:{service.name}",
                platform_version=service.platform_version,
                service=service,
                deployment_id=deployment["id"],
            )
        except Exception as exc:
            log.exception("service %s: could not start a task", service.name)
            self._event(service, f"(service {service.name}) was unable to place a task: {exc}")
            return None

    @staticmethod
    def _victims(runs: list[Run], count: int) -> list[Run]:
        """Which tasks scale-in stops: not yet running first, then from the AZ with the most tasks."""
        chosen: list[Run] = []
        pool = list(runs)
        for _ in range(count):
            per_az: dict[str, int] = {}
            for run in pool:
                per_az[run.task.availability_zone] = per_az.get(run.task.availability_zone, 0) + 1
            victim = max(pool, key=lambda r: (not r.ready, per_az[r.task.availability_zone], r.task.created_at))
            chosen.append(victim)
            pool.remove(victim)
        return chosen

    def _stop_many(self, service: Any, runs: list[Run], reason: str) -> None:
        runs = [r for r in runs if r.active]
        for run in runs:
            self.stop(run, "ServiceSchedulerInitiated", reason)
        if runs:
            ids = " ".join(f"(task {r.task.id})" for r in runs)
            self._event(service, f"(service {service.name}) has stopped {len(runs)} running tasks: {ids}.")

    def _new_deployment(self, service: Any, reason: str | None = None) -> dict[str, Any]:
        new_id = new_deployment_id()
        now = moto_now()
        deployment = {
            "id": new_id,
            "status": "PRIMARY",
            "taskDefinition": service.task_definition,
            "desiredCount": service.desired_count,
            "pendingCount": 0,
            "runningCount": 0,
            "failedTasks": 0,
            "createdAt": now,
            "updatedAt": now,
            "launchType": service.launch_type,
            "platformVersion": service.platform_version,
            "platformFamily": "EC2" if service.launch_type == "EC2" else "FARGATE",
            "networkConfiguration": service.network_configuration or None,
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": reason or f"ECS deployment {new_id} in progress.",
        }
        for old in service.deployments or []:
            if old.get("status") == "PRIMARY":
                old["status"] = "ACTIVE"
                old["updatedAt"] = now
        service.deployments = [deployment, *(service.deployments or [])]
        state = _state(service)
        # The launch throttle starts over with a new deployment (a rollback must not wait for the failures
        # of the deployment it replaces).
        state.steady, state.failures, state.next_launch = False, 0, 0.0
        self.wake.set()
        return deployment

    @staticmethod
    def _event(service: Any, message: str) -> None:
        event = {"id": str(uuid.uuid4()), "createdAt": moto_now(), "message": message}
        service.events = [event, *(service.events or [])][:EVENTS_KEPT]

    def _count(self, backend: Any) -> None:
        """Service, deployment and cluster counts from the real tasks."""
        live = [r for r in self.runs.values() if r.account == backend.account_id and r.region == backend.region_name]
        for service in backend.services.values():
            runs = [r for r in live if r.service is service and r.status != "STOPPED"]
            if not runs and not self._is_live_service(backend, service):
                continue
            service.running_count = sum(r.status == "RUNNING" for r in runs)
            service.pending_count = sum(r.status in ("PROVISIONING", "PENDING") for r in runs)
            for deployment in service.deployments or []:
                mine = [r for r in runs if r.deployment_id == deployment.get("id")]
                deployment["runningCount"] = sum(r.status == "RUNNING" for r in mine)
                deployment["pendingCount"] = sum(r.status in ("PROVISIONING", "PENDING") for r in mine)
                if deployment.get("status") == "PRIMARY":
                    deployment["desiredCount"] = service.desired_count
                else:
                    deployment["desiredCount"] = sum(r.active for r in mine)
        for cluster in backend.clusters.values():
            runs = [r for r in live if r.task.cluster_arn == cluster.arn and r.status != "STOPPED"]
            cluster.running_tasks_count = sum(r.status == "RUNNING" for r in runs)
            cluster.pending_tasks_count = sum(r.status in ("PROVISIONING", "PENDING") for r in runs)
            cluster.active_services_count = sum(
                s.status == "ACTIVE" and s.cluster_name == cluster.name for s in backend.services.values()
            )

    def _prune(self, now: float) -> None:
        """Stopped tasks stay visible for an hour, as on ECS."""
        from moto.ecs.models import ecs_backends

        for arn, run in list(self.runs.items()):
            if run.stopped is not None and now - run.stopped > STOPPED_RETENTION_S:
                del self.runs[arn]
                with contextlib.suppress(KeyError):
                    del ecs_backends[run.account][run.region].tasks[run.task.cluster_name][arn]

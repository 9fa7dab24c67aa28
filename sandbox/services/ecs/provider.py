"""ECS: the API calls onto the live scheduler (scheduler.py), and its control routes.

The moto patches that hand RunTask, StopTask, DescribeTasks / ListTasks and Create/Update/DeleteService
to the scheduler; a WSGI wrapper that serialises ECS API calls with the scheduler's tick; the routes
``POST /_sandbox/faults/kill-task``, ``POST /_sandbox/faults/kill-az`` and ``GET /_sandbox/ecs/tasks``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox import patches, runtime
from sandbox.services.ecs import metrics as ecs_metrics
from sandbox.services.ecs.model import moto_now, new_deployment_id, primary_deployment
from sandbox.services.ecs.scheduler import Scheduler


def _subnet_exists(backend: Any, subnet_id: str) -> bool:
    from moto.ec2 import ec2_backends

    try:
        ec2_backends[backend.account_id][backend.region_name].get_subnet(subnet_id)
    except Exception:
        return False
    return True


def _patch_run_task(sched: Scheduler) -> None:
    """RunTask: the scheduler starts the tasks (placement over the subnets, the app image only)."""
    from moto.ecs import models
    from moto.ecs.exceptions import InvalidParameterException

    backend_cls = models.EC2ContainerServiceBackend
    original_run_task = backend_cls.run_task

    def run_task(
        self: Any,
        cluster_str: str,
        task_definition_str: str,
        count: int,
        overrides: Any,
        started_by: str,
        tags: Any,
        launch_type: str | None,
        networking_configuration: Any = None,
        group: str | None = None,
        platform_version: str | None = None,
        capacity_provider_strategy: Any = None,
    ) -> list[Any]:
        definition = self.describe_task_definition(task_definition_str)
        if definition.network_mode != "awsvpc":
            return original_run_task(
                self,
                cluster_str,
                task_definition_str,
                count,
                overrides,
                started_by,
                tags,
                launch_type,
                networking_configuration,
                group,
                platform_version,
                capacity_provider_strategy,
            )
        cluster = self._get_cluster(cluster_str)
        if launch_type and launch_type not in ("EC2", "FARGATE", "EXTERNAL"):
            raise InvalidParameterException("launch type should be one of [EC2,FARGATE,EXTERNAL]")
        if launch_type and capacity_provider_strategy:
            raise InvalidParameterException("Specify either Launch Type or Capacity Provider Strategy, but not both.")
        if not 1 <= int(count or 1) <= 10:
            raise InvalidParameterException("count must be between 1 and 10.")
        awsvpc = dict((networking_configuration or {}).get("awsvpcConfiguration") or {})
        if not awsvpc.get("subnets"):
            raise InvalidParameterException(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified."
            )
        awsvpc.setdefault("securityGroups", [])
        for subnet_id in awsvpc["subnets"]:
            if not _subnet_exists(self, subnet_id):
                raise InvalidParameterException(
                    f"Error retrieving subnet information for [{subnet_id}]: The subnet ID '{subnet_id}' does not exist"
                )
        strategy = capacity_provider_strategy or (None if launch_type else cluster.default_capacity_provider_strategy)
        provider = strategy[0]["capacityProvider"] if strategy else None
        with sched.lock:
            runs = [
                sched.create_task(
                    self,
                    cluster,
                    definition,
                    awsvpc,
                    sched._next_subnet(awsvpc["subnets"]),
                    overrides=overrides,
                    started_by=started_by,
                    tags=tags,
                    launch_type=launch_type,
                    group=group,
                    platform_version=platform_version,
                    capacity_provider_name=provider,
                )
                for _ in range(int(count or 1))
            ]
        return [run.task for run in runs]

    patches.patch(backend_cls, "run_task", run_task, owner=__name__)


def _patch_tasks(sched: Scheduler) -> None:
    """StopTask and DescribeTasks read and stop the scheduler's tasks."""
    from moto.ecs import models
    from moto.ecs.exceptions import InvalidParameterException

    backend_cls = models.EC2ContainerServiceBackend

    def _find(self: Any, cluster_str: str, task_str: str) -> Any:
        cluster = self._get_cluster(cluster_str)
        wanted = task_str.split("/")[-1]
        for arn, task in self.tasks.get(cluster.name, {}).items():
            if task_str == arn or wanted == task.id:
                return task
        return None

    original_stop_task = backend_cls.stop_task

    def stop_task(self: Any, cluster_str: str, task_str: str, reason: str) -> Any:
        with sched.lock:
            task = _find(self, cluster_str, task_str)
            run = sched.runs.get(task.task_arn) if task is not None else None
            if run is None:
                if task is None:
                    raise InvalidParameterException("The referenced task was not found.")
                return original_stop_task(self, cluster_str, task_str, reason)
            sched.stop(run, "UserInitiated", reason or "Task stopped by user")
            return task

    def describe_tasks(self: Any, cluster_str: str, tasks: list[str]) -> list[Any]:
        if not tasks:
            raise InvalidParameterException("Tasks cannot be empty.")
        found = []
        for wanted in tasks:
            task = _find(self, cluster_str, wanted)
            if task is not None and task not in found:
                if task.task_arn not in sched.runs:
                    task.advance()  # moto's own (made-up) life cycle for tasks the sandbox does not run
                found.append(task)
        return found

    patches.patch(backend_cls, "stop_task", stop_task, owner=__name__)
    patches.patch(backend_cls, "describe_tasks", describe_tasks, owner=__name__)


def _patch_services(sched: Scheduler) -> None:
    """Create/Update/DeleteService: the scheduler runs desiredCount tasks and rolls deployments out."""
    from moto.ecs import models

    backend_cls = models.EC2ContainerServiceBackend
    original_create_service = backend_cls.create_service

    def create_service(self: Any, *args: Any, **kwargs: Any) -> Any:
        with sched.lock:
            service = original_create_service(self, *args, **kwargs)
            primary = primary_deployment(service)
            if primary is not None:
                primary["failedTasks"] = 0
            if sched._is_live_service(self, service):
                service.running_count = service.pending_count = 0
        sched.wake.set()
        return service

    original_update_service = backend_cls.update_service

    def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
        props = dict(service_properties)
        with sched.lock:
            existing = self._get_service(props.get("cluster", "default"), str(props.get("service", "")).split("/")[-1])
            before = existing.task_definition
            force = bool(props.pop("force_new_deployment", False))
            wanted = props.get("task_definition")
            service = original_update_service(self, props)
            if wanted:
                service.task_definition = self.describe_task_definition(wanted).arn
            if sched._is_live_service(self, service):
                if service.task_definition != before or force:
                    sched._new_deployment(service)
                primary = primary_deployment(service)
                if primary is not None:
                    primary["desiredCount"] = service.desired_count
                    primary["updatedAt"] = moto_now()
                sched._count(self)
            elif force and service.deployments:
                service.deployments[0]["id"] = new_deployment_id()
        sched.wake.set()
        return service

    original_delete_service = backend_cls.delete_service

    def delete_service(self: Any, cluster_name: str, service_name: str, force: bool) -> Any:
        with sched.lock:
            service = original_delete_service(self, cluster_name, service_name, force)
        sched.wake.set()
        return service

    patches.patch(backend_cls, "create_service", create_service, owner=__name__)
    patches.patch(backend_cls, "update_service", update_service, owner=__name__)
    patches.patch(backend_cls, "delete_service", delete_service, owner=__name__)


def _patch_backend(sched: Scheduler) -> None:
    _patch_run_task(sched)
    _patch_tasks(sched)
    _patch_services(sched)


def _patch_responses() -> None:
    from moto.core.responses import ActionResult
    from moto.ecs import responses

    cls = responses.EC2ContainerServiceResponse
    original_describe = cls.describe_tasks

    def describe_tasks(self: Any) -> Any:
        result = original_describe(self)
        wanted = self._get_param("tasks", []) or []
        found = result.result["tasks"]
        known = {t.task_arn for t in found} | {t.id for t in found}
        missing = [w for w in wanted if w not in known and w.split("/")[-1] not in known]
        if missing:
            region, account = self.region, self.current_account
            result.result["failures"] = [
                {"arn": w if w.startswith("arn:") else f"arn:aws:ecs:{region}:{account}:task/{w}", "reason": "MISSING"}
                for w in missing
            ]
        return result

    def list_tasks(self: Any) -> Any:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        family = self._get_param("family")
        started_by = self._get_param("startedBy")
        service_name = self._get_param("serviceName")
        launch_type = self._get_param("launchType")
        container_instance = self._get_param("containerInstance")
        desired = self._get_param("desiredStatus") or "RUNNING"
        families = set(backend.list_task_definitions(family)) if family else None
        arns = []
        for arn, task in backend.tasks.get(cluster.name, {}).items():
            if task.desired_status != desired:
                continue
            if families is not None and task.task_definition_arn not in families:
                continue
            if started_by and task.started_by != started_by:
                continue
            if service_name and task.group != f"service:{service_name.split('/')[-1]}":
                continue
            if launch_type and task.launch_type != launch_type:
                continue
            if container_instance and container_instance.split("/")[-1] not in (task.container_instance_arn or ""):
                continue
            arns.append(arn)
        return ActionResult({"taskArns": arns})

    patches.patch(cls, "describe_tasks", describe_tasks, owner=__name__)
    patches.patch(cls, "list_tasks", list_tasks, owner=__name__)


def _serialize_ecs_requests(sched: Scheduler) -> Callable[[Any], Any]:
    """ECS API calls and the scheduler's tick never interleave: they share one lock."""

    def middleware(inner: Any) -> Any:
        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            if runtime.service_from_request(environ) != "ecs":
                return inner(environ, start_response)
            with sched.lock:
                return list(inner(environ, start_response))

        return wsgi

    return middleware


# The scheduler of this sandbox server process (tests built in-process reach it here).
SCHEDULER: Scheduler | None = None


def install(app: Any) -> None:
    global SCHEDULER
    rt = runtime.get()
    sched = SCHEDULER = Scheduler(rt)
    _patch_backend(sched)
    _patch_responses()
    app.wrap(_serialize_ecs_requests(sched))
    rt.on_outage(sched.outage)
    rt.on_restore(lambda _region: sched.wake.set())
    rt.on_reset(lambda: sched.stop_all(graceful=False))
    rt.on_shutdown(lambda: sched.stop_all(graceful=True))
    rt.route("POST", "faults/kill-task", sched.kill_task_route)
    rt.route("POST", "faults/kill-az", sched.kill_az_route)
    rt.route("GET", "ecs/tasks", sched.tasks_route)
    sched.start()
    # AWS/ECS CPUUtilization and MemoryUtilization of each service, from its task processes.
    rt.every("ecs-metrics", ecs_metrics.PUBLISH_INTERVAL_S, ecs_metrics.Usage(sched, rt.is_dark).sample)

"""ECS services and RunTask run real tasks: each task of the project's web image is a real ``python -m app``.

Plain moto records services and tasks and runs nothing: a service reports ``runningCount`` equal to
its desired count at once, tasks step through made-up states on every DescribeTasks, and nothing is
registered in any target group. This extension restores what ECS does:

- **Service scheduler.** Every ACTIVE service (awsvpc task definition) in a region that is not dark
  runs ``desiredCount`` tasks of its PRIMARY deployment's task definition, spread over the AZs of its
  subnets. A task that stops on its own is replaced; scaling starts or stops tasks; DeleteService
  and ``desiredCount=0`` stop them (``ServiceSchedulerInitiated``, "Scaling activity initiated by
  (deployment ...)"). UpdateService with a new task definition (or ``forceNewDeployment``) starts a
  new PRIMARY deployment: new tasks within ``maximumPercent``, old ones stopped while keeping
  ``minimumHealthyPercent`` healthy. The PRIMARY deployment's ``rolloutState`` becomes COMPLETED
  when its tasks are all running (and healthy, when the container has a health check), and the
  service gets the "has reached a steady state." event. ``runningCount`` / ``pendingCount`` (service,
  deployments, cluster) count real tasks. Failed launches are throttled (exponential delay), and
  the deployment circuit breaker fails a deployment after max(3, min(200, ceil(desired / 2)))
  failed tasks (stops launching; with ``rollback`` it rolls back to the last COMPLETED deployment);
  ``failedTasks`` resets and stops being evaluated once one task of the deployment is running.
- **Tasks.** ``PROVISIONING`` → ``PENDING`` → ``RUNNING`` → (``DEACTIVATING`` → ``STOPPING``) →
  ``DEPROVISIONING`` → ``STOPPED``, with ``desiredStatus``, ``stopCode``/``stoppedReason``
  (``TaskFailedToStart`` with CannotPullContainerError or ResourceInitializationError,
  ``EssentialContainerExited`` with ``containers[].exitCode``, ``ServiceSchedulerInitiated``,
  ``UserInitiated`` for StopTask), ``createdAt``/``pullStartedAt``/``startedAt``/``stoppingAt``/
  ``stoppedAt``, ``availabilityZone``, ``group`` (``service:<name>``), ``startedBy`` (the service's
  deployment id) and an ENI attachment with a private IPv4 address from its subnet's CIDR (a real
  ENI in EC2, deleted when the task stops). A stop drains first: the task is deregistered from its
  target groups, waits the target group's deregistration delay (DEACTIVATING), then gets SIGTERM and
  SIGKILL after the container's ``stopTimeout`` (default 30 s) (STOPPING). ListTasks filters by
  ``serviceName`` and defaults to ``desiredStatus=RUNNING``; DescribeTasks reports unknown tasks as
  ``failures`` with reason MISSING; stopped tasks stay visible for an hour.
- **The process.** The image is the project's web app when its repository path is one of
  ``SANDBOX_APP_IMAGE_REPOSITORIES`` (default ``hawa/web``): the task runs
  ``[python, -m, app, *command]`` in ``webapp/`` (``command`` from the container definition or the
  RunTask override, so ``["migrate"]`` runs the migrations). Any other image stops the task with
  ``TaskFailedToStart`` / CannotPullContainerError. The environment is the container's
  ``environment`` (and overrides), its ``secrets`` read from Secrets Manager (``valueFrom`` = a
  secret ARN, optionally ``:json-key:version-stage:version-id``) or SSM Parameter Store, what the
  ECS agent sets (``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``AWS_EXECUTION_ENV``), the sandbox's
  endpoint and fake credentials standing for the task role, and ``HOST=127.0.0.1``,
  ``PORT=<local port>``, ``TASK_ID``, ``WEB_CONCURRENCY=1``. A secret that cannot be read, or an
  awslogs group that does not exist (without ``awslogs-create-group``), stops the task with
  ``TaskFailedToStart`` / ResourceInitializationError. The awslogs stream
  (``<prefix>/<container>/<task id>``) is created as the container starts. Output goes to
  ``<state dir>/ecs/<region>/<task id>.log`` and, when the task stops, to that stream.
- **Network.** A RUNNING task is published in the sandbox's name map as (private IP, containerPort)
  → its local port, and registered in its service's target groups (Id = private IP, Port =
  containerPort) once its port accepts connections; it is deregistered when it stops.
- **Faults.** A region outage SIGKILLs every task there (STOPPED, ``EssentialContainerExited``, exit
  code 137) and nothing is replaced while the region is dark; restore lets the scheduler start them
  again. ``POST /_sandbox/faults/kill-task {"region", "task"?}`` and ``POST /_sandbox/faults/kill-az
  {"az"}`` SIGKILL tasks (ECS then replaces them). ``GET /_sandbox/ecs/tasks`` lists the live tasks.

Where the sandbox differs from AWS:
- Only the first container of a task definition runs; ``entryPoint``, ``workingDirectory``,
  ``user`` and resource limits are ignored. ECR content is not checked (nothing is pushed to the
  sandbox's ECR): the repository path alone decides. Tasks of non-awsvpc task definitions (EC2
  launch type) stay moto's records.
- AWS host names in environment values (``host``, ``host:port`` or comma lists of them) are
  rewritten once, at start, to the local listener the name map has for them (default port: the
  task's ``DB_PORT``, else the only port the map has for that host); on AWS, DNS is asked at each
  connect. An AWS host name the map does not know becomes a loopback port that refuses connections
  (the stand-in for "does not resolve": the sandbox never asks real DNS).
- The container ``healthCheck`` command runs on the host, with ``127.0.0.1``/``localhost`` at the
  containerPort mapped to the task's local port; ``python`` is the sandbox's interpreter.
- A deployment counts a task as healthy when it is RUNNING, accepts connections and passes its
  container health check; ALB target health is only used to replace tasks a target group reports
  ``unhealthy`` after ``healthCheckGracePeriodSeconds``.
- New deployments come only from a new task definition or ``forceNewDeployment`` (on AWS also
  from network or platform changes). DeleteService marks the service INACTIVE at once (AWS:
  DRAINING until its tasks stopped); its tasks drain in the background.
- The launch throttle doubles from 2 s to at most 60 s (AWS's grows to many minutes).
- ``ECS_CONTAINER_METADATA_URI_V4`` is not provided (``TASK_ID`` carries the task id instead).
"""

from __future__ import annotations

import contextlib
import math
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from sandbox import config, runtime
from sandbox.services.ecs import containers as ecs
from sandbox.services.ecs import placement
from sandbox.services.ecs.deployments import Deployments
from sandbox.services.ecs.faults import Faults
from sandbox.services.ecs.model import (
    BUSY_TICK_S,
    DEFAULT_HEALTH,
    DEFAULT_STOP_TIMEOUT_S,
    MAX_LAUNCH_DELAY_S,
    TICK_S,
    WEBAPP_DIR,
    HealthCheck,
    Run,
    _accepts,
    _docker_exit_code,
    _state,
    log,
    moto_now,
)
from sandbox.services.ecs.wiring import TaskWiring


class Scheduler(Deployments, TaskWiring, Faults):
    """ECS tasks for real: the loop and the task life cycle here; services, wiring and faults in their parts."""

    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.runs: dict[str, Run] = {}
        self.repositories = ecs.app_repositories()
        self._rotation = 0

    # -- the loop ----------------------------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(target=self._loop, name="sandbox-ecs-tasks", daemon=True).start()

    def _loop(self) -> None:
        while not self.rt.stopping.is_set():
            self.wake.clear()  # before the tick: a wake-up during it means "look again at once"
            busy = False
            try:
                busy = self.tick()
            except Exception:
                log.exception("ECS scheduler tick failed (will retry)")
            self.wake.wait(BUSY_TICK_S if busy else TICK_S)

    def tick(self) -> bool:
        """One pass: advance every task, schedule every service, refresh the counts. True while busy."""
        now = time.monotonic()
        with self.lock:
            for run in list(self.runs.values()):
                try:
                    self._advance(run, now)
                except Exception:
                    log.exception("task %s: advancing failed", run.task.id)
            services: set[int] = set()
            for _account, region, backend in self._backends():
                for service in list(backend.services.values()):
                    services.add(id(service))
                    # A deleted service's tasks stop even when its task definition is gone already.
                    if service.status != "ACTIVE" or self._is_live_service(backend, service):
                        self._schedule(backend, region, service, now)
                self._count(backend)
            for run in list(self.runs.values()):
                if run.service is not None and run.active and id(run.service) not in services:
                    # moto replaced the service object (CreateService reusing a name): its tasks are orphans.
                    self.stop(
                        run,
                        "ServiceSchedulerInitiated",
                        f"Scaling activity initiated by (deployment {run.deployment_id})",
                    )
            self._prune(now)
            return any(
                run.status not in ("RUNNING", "STOPPED") or (run.status == "RUNNING" and not run.listening)
                for run in self.runs.values()
            )

    @staticmethod
    def _backends() -> Iterator[tuple[str, str, Any]]:
        from moto.ecs.models import ecs_backends

        for account, regional in list(ecs_backends.items()):
            for region, backend in list(regional.items()):
                yield account, region, backend

    # -- tasks -------------------------------------------------------------------------------------

    def create_task(
        self,
        backend: Any,
        cluster: Any,
        definition: Any,
        awsvpc: dict[str, Any],
        subnet_id: str,
        *,
        overrides: dict[str, Any] | None = None,
        started_by: str = "",
        tags: list[dict[str, str]] | None = None,
        launch_type: str | None = "FARGATE",
        group: str | None = None,
        platform_version: str | None = None,
        capacity_provider_name: str | None = None,
        service: Any = None,
        deployment_id: str | None = None,
    ) -> Run:
        """A new task (PROVISIONING) with its ENI in the subnet, recorded in moto and tracked here."""
        nic = placement.attach_eni(backend, subnet_id, awsvpc)
        task = placement.new_task(
            backend,
            cluster,
            definition,
            awsvpc,
            nic,
            overrides=overrides,
            started_by=started_by,
            tags=tags,
            launch_type=launch_type,
            group=group,
            platform_version=platform_version,
            capacity_provider_name=capacity_provider_name,
            now=moto_now(),
        )
        container_definition = definition.container_definitions[0]
        override = placement.container_override(task, container_definition)
        container = placement.new_container(task, cluster, definition, nic)
        task.containers = [container]
        backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task

        command = override.get("command") or container_definition.get("command") or []
        run = Run(
            task=task,
            region=backend.region_name,
            account=backend.account_id,
            container=container_definition,
            command=[str(c) for c in command],
            env_overrides=list(override.get("environment") or []),
            subnet_id=subnet_id,
            ip=nic.ip,
            eni_id=nic.eni.id,
            attachment_id=nic.attachment_id,
            service=service,
            deployment_id=deployment_id,
        )
        self.runs[task.task_arn] = run
        self.wake.set()
        return run

    def _next_subnet(self, subnets: list[str]) -> str:
        self._rotation += 1
        return subnets[self._rotation % len(subnets)]

    def _set(self, run: Run, status: str) -> None:
        run.task.last_status = status
        run.task.version = int(getattr(run.task, "version", 0) or 0) + 1

    def _advance(self, run: Run, now: float) -> None:
        task, status = run.task, run.status
        if status == "STOPPED":
            return
        if status == "PROVISIONING":
            if not run.active:
                self._set(run, "DEPROVISIONING")
                return
            task.attachments[0]["status"] = "ATTACHED"
            task.connectivity, task.connectivity_at = "CONNECTED", moto_now()
            task.pull_started_at = moto_now()
            self._set(run, "PENDING")
        elif status == "PENDING":
            if not run.active:
                self._set(run, "DEPROVISIONING")
                return
            try:
                self._launch(run, now)
            except ecs.TaskStartError as exc:
                self._failed_to_start(run, str(exc))
        elif status == "RUNNING":
            self._watch(run, now)
        elif status == "DEACTIVATING":
            if run.proc is not None and run.proc.poll() is not None:
                self._process_gone(run)
            elif now >= run.drain_until:
                if run.proc is not None:
                    with contextlib.suppress(ProcessLookupError):
                        run.proc.send_signal(signal.SIGTERM)
                task.stopping_at = moto_now()
                run.kill_at = now + float(run.container.get("stopTimeout") or DEFAULT_STOP_TIMEOUT_S)
                self._set(run, "STOPPING")
        elif status == "STOPPING":
            if run.proc is None or run.proc.poll() is not None:
                self._process_gone(run)
            elif now >= run.kill_at:
                with contextlib.suppress(ProcessLookupError):
                    run.proc.kill()
        elif status == "DEPROVISIONING":
            self._deprovision(run, now)

    def _launch(self, run: Run, now: float) -> None:
        image = str(run.container.get("image") or "")
        if not ecs.is_app_image(image, self.repositories):
            raise ecs.TaskStartError(ecs.pull_error(image))
        env = self._environment(run)
        self._open_log_stream(run)
        run.local_port = runtime.free_port()
        env["PORT"] = str(run.local_port)
        run.env = env
        run.log_path = self.rt.path("ecs", run.region, f"{run.task.id}.log")
        try:
            run.proc = self.rt.spawn(
                [sys.executable, "-m", "app", *run.command], env=env, cwd=WEBAPP_DIR, log_path=run.log_path
            )
        except OSError as exc:
            raise ecs.TaskStartError(f"CannotStartContainerError: {exc}") from None
        task = run.task
        task.pull_stopped_at = task.started_at = moto_now()
        container = task.containers[0]
        container.last_status = "RUNNING"
        container.runtime_id = f"{task.id}-{run.proc.pid}"
        run.started = now
        for port in run.container_ports:
            self.rt.publish(run.ip, port, run.local_port)
        if not run.container_ports:
            run.listening = True
        check = run.container.get("healthCheck")
        argv = ecs.health_command(check, run.container_ports, run.local_port) if check else None
        if check and argv:
            settings = {**DEFAULT_HEALTH, **check}
            run.health = HealthCheck(
                argv=argv,
                interval=float(settings["interval"]),
                timeout=float(settings["timeout"]),
                retries=int(settings["retries"]),
                start_period=float(settings["startPeriod"]),
                started=now,
            )
        self._set(run, "RUNNING")
        log.info("task %s (%s) running: pid %s on port %s", task.id, run.region, run.proc.pid, run.local_port)

    def _watch(self, run: Run, now: float) -> None:
        """A RUNNING task: process alive? listening? healthy? asked to stop?"""
        assert run.proc is not None
        code = run.proc.poll()
        if code is not None:
            if run.active:
                run.task.desired_status = "STOPPED"
                run.task.stop_code = "EssentialContainerExited"
                run.task.stopped_reason = "Essential container in task exited"
                run.failure = not run.ready
            self._process_gone(run)
            return
        if not run.active:
            delay = self._deregister(run)
            run.drain_until = now + delay
            self._set(run, "DEACTIVATING")
            return
        if not run.listening and run.local_port and _accepts(run.local_port):
            run.listening = True
            self._register(run)
        container = run.task.containers[0]
        if run.health is not None:
            run.health.poll(now, run.env)
            container.health_status = run.health.status
            run.task.health_status = run.health.status
        was_ready = run.ready
        run.ready = run.listening and (run.health is None or run.health.status == "HEALTHY")
        if run.ready and not was_ready and run.service is not None:
            _state(run.service).failures = 0
        if run.service is None:
            return
        if run.health is not None and run.health.status == "UNHEALTHY":
            self._event(
                run.service, f"(service {run.service.name}) (task {run.task.id}) failed container health checks."
            )
            self.stop(run, "ServiceSchedulerInitiated", "Task failed container health checks", failure=True)
            return
        grace = float(getattr(run.service, "health_check_grace_period_seconds", None) or 0)
        if run.targets and run.started is not None and now - run.started >= grace:
            for arn, port in run.targets:
                if self._target_state(run, arn, port) == "unhealthy":
                    self._event(
                        run.service,
                        f"(service {run.service.name}) (port {port}) is unhealthy in (target-group {arn}).",
                    )
                    self.stop(
                        run,
                        "ServiceSchedulerInitiated",
                        f"Task failed ELB health checks in (target-group {arn})",
                        failure=True,
                    )
                    return

    def _process_gone(self, run: Run) -> None:
        """The process has exited (on its own, killed, or stopped): record the exit and deprovision."""
        code = run.proc.poll() if run.proc is not None else None
        task, container = run.task, run.task.containers[0]
        if code is not None:
            container.exitCode = _docker_exit_code(code)
        container.last_status = "STOPPED"
        task.execution_stopped_at = moto_now()
        if getattr(task, "stopping_at", None) is None:
            task.stopping_at = task.execution_stopped_at
        self._deregister(run)
        if run.health is not None:
            run.health.close()
        self._set(run, "DEPROVISIONING")
        if run.failure:
            self._task_failed(run)

    def _failed_to_start(self, run: Run, reason: str) -> None:
        task, container = run.task, run.task.containers[0]
        task.desired_status = "STOPPED"
        task.stop_code = "TaskFailedToStart"
        task.stopped_reason = reason
        task.stopping_at = task.execution_stopped_at = moto_now()
        container.last_status = "STOPPED"
        container.reason = reason.split(" (the sandbox", 1)[0]
        run.failure = True
        self._set(run, "DEPROVISIONING")
        log.info("task %s (%s) failed to start: %s", task.id, run.region, reason.split(":", 1)[0])
        self._task_failed(run)

    def _deprovision(self, run: Run, now: float) -> None:
        from moto.ec2 import ec2_backends

        for port in run.container_ports:
            if run.local_port is not None and self.rt.resolve(run.ip, port) == (config.HOST, run.local_port):
                self.rt.unpublish(run.ip, port)
        with contextlib.suppress(Exception):
            ec2_backends[run.account][run.region].delete_network_interface(run.eni_id)
        run.task.attachments[0]["status"] = "DELETED"
        self._ship_logs(run)
        run.task.stopped_at = moto_now()
        run.stopped = now
        self._set(run, "STOPPED")

    def stop(self, run: Run, code: str, reason: str, *, failure: bool = False) -> None:
        """Ask a task to stop (the scheduler, StopTask): it drains, then its process gets SIGTERM."""
        if not run.active:
            return
        run.task.desired_status = "STOPPED"
        run.task.stop_code = code
        run.task.stopped_reason = reason
        run.task.version = int(run.task.version or 0) + 1
        run.failure = failure
        self.wake.set()

    def _kill(self, run: Run) -> bool:
        """SIGKILL a running task's process (a fault); the loop then records the exit. False if not running."""
        if run.status != "RUNNING" or run.proc is None or run.proc.poll() is not None:
            return False
        run.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.proc.wait(5)
        self.wake.set()
        return True

    def _task_failed(self, run: Run) -> None:
        """Throttle the service's launches and feed the circuit breaker."""
        service = run.service
        if service is None:
            return
        state = _state(service)
        state.failures += 1
        delay = 0.0 if state.failures <= 1 else min(MAX_LAUNCH_DELAY_S, 2.0 ** (state.failures - 1))
        state.next_launch = time.monotonic() + delay
        deployment = next((d for d in service.deployments or [] if d.get("id") == run.deployment_id), None)
        if deployment is None or deployment["id"] in state.unwatched or deployment.get("rolloutState") != "IN_PROGRESS":
            return
        deployment["failedTasks"] = int(deployment.get("failedTasks") or 0) + 1
        breaker = (getattr(service, "deployment_configuration", None) or {}).get("deploymentCircuitBreaker") or {}
        threshold = max(3, min(200, math.ceil(service.desired_count / 2)))
        if breaker.get("enable") and deployment["failedTasks"] >= threshold:
            self._fail_deployment(service, deployment, rollback=bool(breaker.get("rollback")))

    def _fail_deployment(self, service: Any, deployment: dict[str, Any], *, rollback: bool) -> None:
        state = _state(service)
        deployment["rolloutState"] = "FAILED"
        deployment["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
        deployment["updatedAt"] = moto_now()
        self._event(
            service,
            f"(service {service.name}) (deployment {deployment['id']}) deployment failed: tasks failed to start.",
        )
        target = state.last_completed
        if rollback and target is not None and target[1] != deployment["taskDefinition"]:
            service.task_definition = target[1]
            new = self._new_deployment(
                service, reason=f"ECS deployment circuit breaker: rolling back to deploymentId {target[0]}."
            )
            self._event(service, f"(service {service.name}) rolling back to deployment {target[0]}.")
            log.warning(
                "service %s: deployment %s failed, rolling back as %s", service.name, deployment["id"], new["id"]
            )

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
import logging
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import config, runtime
from sandbox.services.ecs import containers as ecs

log = logging.getLogger("sandbox.ecs_tasks")

WEBAPP_DIR = config.REPO_ROOT / "webapp"
TICK_S = 1.0
# While a task is starting or stopping the loop looks more often, so that CreateService -> RUNNING
# costs the app's own start-up time and not a scheduler tick.
BUSY_TICK_S = 0.2
DEFAULT_STOP_TIMEOUT_S = 30.0
STOPPED_RETENTION_S = 3600.0
MAX_LAUNCH_DELAY_S = 60.0
EVENTS_KEPT = 100
LOG_LINES_SHIPPED = 2000
FARGATE_PLATFORM_VERSION = "1.4.0"
DEFAULT_HEALTH = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
_AZ = re.compile(r"^([a-z]{2}-[a-z]+-\d)[a-z]$")


def moto_now() -> Any:
    """Now, as moto stamps its records (naive UTC)."""
    from moto.core.utils import utcnow

    return utcnow()


def _docker_exit_code(returncode: int) -> int:
    """Popen's -N (killed by signal N) is 128 + N in Docker's (and ECS's) terms."""
    return 128 - returncode if returncode < 0 else returncode


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.05)
        return sock.connect_ex((config.HOST, port)) == 0


@dataclass
class HealthCheck:
    """A container healthCheck, run as Docker does: every ``interval`` s after start, ``retries``
    failures in a row make it UNHEALTHY, failures during ``startPeriod`` do not count."""

    argv: list[str]
    interval: float
    timeout: float
    retries: int
    start_period: float
    started: float
    status: str = "UNKNOWN"
    failures: int = 0
    next_at: float = 0.0
    proc: subprocess.Popen[bytes] | None = None
    proc_started: float = 0.0

    def __post_init__(self) -> None:
        self.next_at = self.started + self.interval

    def poll(self, now: float, env: dict[str, str]) -> None:
        if self.proc is not None:
            code = self.proc.poll()
            if code is None and now - self.proc_started < self.timeout:
                return
            if code is None:
                self.close()
                code = -1
            self.proc = None
            self._record(code == 0, now)
        if now >= self.next_at:
            self.next_at = now + self.interval
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    env=env,
                    cwd=WEBAPP_DIR,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                self.proc_started = now
            except OSError:
                self._record(False, now)

    def _record(self, ok: bool, now: float) -> None:
        if ok:
            self.status, self.failures = "HEALTHY", 0
        elif now - self.started >= self.start_period:
            self.failures += 1
            if self.failures >= self.retries:
                self.status = "UNHEALTHY"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(1)


@dataclass
class Run:
    """One live task: moto's Task object (what the API shows) and the process behind it."""

    task: Any
    region: str
    account: str
    container: dict[str, Any]
    command: list[str]
    env_overrides: list[dict[str, str]]
    subnet_id: str
    ip: str
    eni_id: str
    attachment_id: str
    service: Any | None = None
    deployment_id: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    local_port: int | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)
    listening: bool = False
    ready: bool = False
    targets: list[tuple[str, int]] = field(default_factory=list)
    drain_until: float = 0.0
    kill_at: float = 0.0
    started: float | None = None
    stopped: float | None = None
    health: HealthCheck | None = None
    failure: bool = False
    log_path: Path | None = None

    @property
    def status(self) -> str:
        return str(self.task.last_status)

    @property
    def active(self) -> bool:
        """Counted by the scheduler: the task is meant to run."""
        return self.task.desired_status == "RUNNING"

    @property
    def container_ports(self) -> list[int]:
        return [int(p["containerPort"]) for p in self.container.get("portMappings") or [] if p.get("containerPort")]


@dataclass
class ServiceState:
    """The scheduler's memory of a service (kept on moto's Service object)."""

    failures: int = 0
    next_launch: float = 0.0
    steady: bool = False
    unwatched: set[str] = field(default_factory=set)  # deployments the circuit breaker stopped evaluating
    last_completed: tuple[str, str] | None = None  # (deployment id, task definition ARN)
    rotation: int = 0


def _state(service: Any) -> ServiceState:
    state = getattr(service, "_sandbox_state", None)
    if state is None:
        state = ServiceState()
        service._sandbox_state = state
    return state


def primary_deployment(service: Any) -> dict[str, Any] | None:
    return next((d for d in service.deployments or [] if d.get("status") == "PRIMARY"), None)


def new_deployment_id() -> str:
    return f"ecs-svc/{random.randrange(10**18, 10**19)}"  # noqa: S311 - an id, not a secret


class Scheduler:
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
        """A new task (PROVISIONING) with its ENI in the subnet, recorded in moto and tracked here.

        The Task object is built here rather than by moto's constructor, which puts the ENI on the
        first subnet with an address from no subnet at all and fails in VPCs without DNS host names.
        """
        from moto.ec2 import ec2_backends
        from moto.ecs.models import Container, Task
        from moto.moto_api._internal.managed_state_model import ManagedState

        account, region = backend.account_id, backend.region_name
        ec2 = ec2_backends[account][region]
        subnet = ec2.get_subnet(subnet_id)
        taken = {e.private_ip_address for e in ec2.enis.values() if getattr(e.subnet, "id", None) == subnet_id}
        ip = ecs.allocate_ip(subnet.cidr_block, taken)
        attachment_id = str(uuid.uuid4())
        eni = ec2.create_network_interface(
            subnet=subnet,
            private_ip_address=ip,
            group_ids=awsvpc.get("securityGroups") or [],
            description=f"arn:aws:ecs:{region}:{account}:attachment/{attachment_id}",
        )
        eni.status = "in-use"
        eni.requester_managed = True

        task = Task.__new__(Task)
        # Only the sandbox moves these tasks between states: a one-state machine that never advances.
        ManagedState.__init__(task, model_name="ecs::task", transitions=[("PROVISIONING", "PROVISIONING")])
        task.id = str(uuid.uuid4())
        task.cluster_name, task.cluster_arn = cluster.name, cluster.arn
        task.container_instance_arn = None
        task.task_definition_arn = definition.arn
        task.overrides = overrides or {}
        task.started_by = started_by or ""
        task.tags = tags or []
        task.launch_type = launch_type or ("FARGATE" if not capacity_provider_name else None)
        task.capacity_provider_name = capacity_provider_name
        task.platform_version = platform_version or FARGATE_PLATFORM_VERSION
        task.platform_family = "Linux"
        task.region_name = region
        task._account_id = account
        task._backend = backend
        task.group = group or f"family:{definition.family}"
        task.network_configuration = {"awsvpcConfiguration": awsvpc}
        task.resource_requirements = None
        task.attachments = [
            {
                "id": attachment_id,
                "type": "ElasticNetworkInterface",
                "status": "PRECREATED",
                "details": [
                    {"name": "subnetId", "value": subnet_id},
                    {"name": "networkInterfaceId", "value": eni.id},
                    {"name": "macAddress", "value": eni.mac_address},
                    {"name": "privateDnsName", "value": f"ip-{ip.replace('.', '-')}.ec2.internal"},
                    {"name": "privateIPv4Address", "value": ip},
                ],
            }
        ]
        container_definition = definition.container_definitions[0]
        override = next(
            (
                o
                for o in task.overrides.get("containerOverrides") or []
                if o.get("name") == container_definition.get("name")
            ),
            {},
        )
        container = Container(definition)
        container.task_arn = task.task_arn
        container.container_arn = f"arn:aws:ecs:{region}:{account}:container/{cluster.name}/{task.id}/{uuid.uuid4()}"
        container.last_status = "PENDING"
        container.exitCode = None
        container.reason = None
        container.health_status = "UNKNOWN"
        container.cpu = str(container_definition.get("cpu", 0))
        container.memory = str(container_definition["memory"]) if container_definition.get("memory") else None
        container.network_interfaces = [{"attachmentId": attachment_id, "privateIpv4Address": ip}]
        task.containers = [container]
        task.last_status = "PROVISIONING"
        task.desired_status = "RUNNING"
        task.created_at = moto_now()
        task.availability_zone = subnet.availability_zone
        task.health_status = "UNKNOWN"
        task.stop_code = None
        task.stopped_reason = None
        task.cpu = definition.cpu
        task.memory = definition.memory
        task.enable_execute_command = False
        task.version = 1
        backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task

        command = override.get("command") or container_definition.get("command") or []
        run = Run(
            task=task,
            region=region,
            account=account,
            container=container_definition,
            command=[str(c) for c in command],
            env_overrides=list(override.get("environment") or []),
            subnet_id=subnet_id,
            ip=ip,
            eni_id=eni.id,
            attachment_id=attachment_id,
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

    # -- environment -------------------------------------------------------------------------------

    def _environment(self, run: Run) -> dict[str, str]:
        declared = {e["name"]: str(e.get("value", "")) for e in run.container.get("environment") or [] if e.get("name")}
        declared.update({e["name"]: str(e.get("value", "")) for e in run.env_overrides if e.get("name")})
        port_text = declared.get("DB_PORT", "")
        default_port = int(port_text) if port_text.isdigit() else None
        env = {name: ecs.rewrite_hosts(value, self._lookup, default_port) for name, value in declared.items()}
        for secret in run.container.get("secrets") or []:
            env[secret["name"]] = self._secret(run, str(secret.get("valueFrom", "")))
        venv_bin = str(Path(sys.executable).parent)
        base = runtime.child_env()
        base["PATH"] = venv_bin + os.pathsep + base.get("PATH", "/usr/bin:/bin")
        base["PYTHONUNBUFFERED"] = "1"
        return {
            **base,
            **env,
            # What the ECS agent gives every task.
            "AWS_REGION": run.region,
            "AWS_DEFAULT_REGION": run.region,
            "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
            # The task role, in the sandbox: its endpoint and fake credentials.
            "AWS_ENDPOINT_URL": f"http://{config.HOST}:{self.rt.api_port}",
            "AWS_ACCESS_KEY_ID": config.ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": config.SECRET_ACCESS_KEY,
            # Where and as what the app serves on this machine.
            "HOST": config.HOST,
            "TASK_ID": run.task.id,
            "WEB_CONCURRENCY": "1",
        }

    def _lookup(self, host: str, port: int | None) -> tuple[str, int] | None:
        if port is not None:
            return self.rt.resolve(host, port)
        wanted = host.lower().rstrip(".")
        ports = [int(key.rsplit(":", 1)[1]) for key in self.rt.names() if key.rsplit(":", 1)[0] == wanted]
        return self.rt.resolve(host, ports[0]) if len(ports) == 1 else None

    def _secret(self, run: Run, value_from: str) -> str:
        """The value a container secret injects, read as the task's execution role would."""
        parts = value_from.split(":")
        if value_from.startswith("arn:") and len(parts) > 2 and parts[2] == "ssm":
            return self._parameter(run, value_from, parts[3])
        if not value_from.startswith("arn:"):
            return self._parameter(run, value_from, run.region)
        from moto.secretsmanager.models import secretsmanager_backends

        ref = ecs.parse_value_from(value_from)
        region = ref.secret_id.split(":")[3] or run.region
        prefix = (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
            "failed: unable to retrieve secret from asm: service call has been retried 1 time(s): "
            f"failed to fetch secret {ref.secret_id} from secrets manager: "
        )
        if self.rt.is_dark(region):
            raise ecs.TaskStartError(prefix + f"RequestError: send request failed (region {region} is dark)")
        try:
            found = secretsmanager_backends[run.account][region].get_secret_value(
                ref.secret_id, ref.version_id or None, ref.version_stage or None
            )
        except Exception as exc:
            code = getattr(exc, "error_type", type(exc).__name__)
            raise ecs.TaskStartError(prefix + f"{code}: {getattr(exc, 'message', exc)}") from None
        if "SecretString" not in found:
            raise ecs.TaskStartError(prefix + "the secret holds binary data, which ECS cannot inject")
        return ecs.pick_json_key(found["SecretString"], ref)

    def _parameter(self, run: Run, name: str, region: str) -> str:
        from moto.ssm.models import ssm_backends

        parameter = None
        with contextlib.suppress(Exception):
            parameter = ssm_backends[run.account][region].get_parameter(name)
        if parameter is None:
            raise ecs.TaskStartError(
                "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
                f"failed: unable to retrieve secrets from ssm: invalid parameters: {name}"
            )
        return str(parameter.value)

    # -- load balancers and logs -------------------------------------------------------------------

    def _elb(self, run: Run) -> Any:
        from moto.elbv2.models import elbv2_backends

        return elbv2_backends[run.account][run.region]

    def _register(self, run: Run) -> None:
        service = run.service
        if service is None:
            return
        elb = self._elb(run)
        for lb in service.load_balancers or []:
            arn = lb.get("targetGroupArn")
            if not arn or (lb.get("containerName") and lb["containerName"] != run.container.get("name")):
                continue
            port = int(lb.get("containerPort") or (run.container_ports or [0])[0])
            try:
                elb.register_targets(arn, [{"Id": run.ip, "Port": port}])
            except Exception as exc:
                log.warning("task %s: cannot register %s:%s in %s: %s", run.task.id, run.ip, port, arn, exc)
                continue
            run.targets.append((arn, port))
            self._event(service, f"(service {service.name}) registered 1 targets in (target-group {arn})")

    def _deregister(self, run: Run) -> float:
        """Take the task out of its target groups; returns the longest deregistration delay among them."""
        if not run.targets:
            return 0.0
        elb = self._elb(run)
        delay = 0.0
        for arn, port in run.targets:
            group = elb.target_groups.get(arn)
            if group is None:
                continue
            with contextlib.suppress(ValueError, TypeError):
                delay = max(delay, float(group.attributes.get("deregistration_delay.timeout_seconds", 300)))
            with contextlib.suppress(Exception):
                elb.deregister_targets(arn, [{"Id": run.ip, "Port": port}])
            if run.service is not None:
                self._event(run.service, f"(service {run.service.name}) deregistered 1 targets in (target-group {arn})")
        if run.service is not None and delay > 0 and run.proc is not None and run.proc.poll() is None:
            self._event(run.service, f"(service {run.service.name}) has begun draining connections on 1 tasks.")
        run.targets = []
        return delay

    def _target_state(self, run: Run, arn: str, port: int) -> str | None:
        try:
            found = self._elb(run).describe_target_health(arn, [{"Id": run.ip, "Port": port}])
        except Exception:
            return None
        return getattr(found[0], "status", None) if found else None

    @staticmethod
    def _awslogs(run: Run) -> tuple[str, str, str, dict[str, Any]] | None:
        """(group, stream, region, options) of an awslogs container, else None."""
        settings = run.container.get("logConfiguration") or {}
        if settings.get("logDriver") != "awslogs":
            return None
        options = settings.get("options") or {}
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{run.container.get('name')}/{run.task.id}" if prefix else run.task.id
        return str(options.get("awslogs-group") or ""), stream, options.get("awslogs-region") or run.region, options

    def _open_log_stream(self, run: Run) -> None:
        """The awslogs driver creates the task's stream as the container starts (the group must exist)."""
        target = self._awslogs(run)
        if target is None:
            return
        group, stream, region, options = target
        from moto.logs.models import logs_backends

        logs = logs_backends[run.account][region]
        if group not in logs.groups:
            if str(options.get("awslogs-create-group", "")).lower() != "true":
                raise ecs.TaskStartError(
                    "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 "
                    "times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group "
                    f"does not exist. (awslogs-group {group!r} in {region}): exit status 1"
                )
            logs.create_log_group(group, {})
        with contextlib.suppress(Exception):  # already there: a task id never repeats, but be lenient
            logs.create_log_stream(group, stream)

    def _ship_logs(self, run: Run) -> None:
        """awslogs: the task's output reaches its log stream (at stop, in the sandbox)."""
        target = self._awslogs(run)
        if target is None or run.log_path is None or not run.log_path.exists():
            return
        group, stream, region, _options = target
        lines = run.log_path.read_text(errors="replace").splitlines()[-LOG_LINES_SHIPPED:]
        if not lines:
            return
        from moto.logs.models import logs_backends

        stamp = int(time.time() * 1000)
        try:
            logs = logs_backends[run.account][region]
            if group not in logs.groups:
                return
            with contextlib.suppress(Exception):
                logs.create_log_stream(group, stream)
            logs.put_log_events(group, stream, [{"timestamp": stamp, "message": line or " "} for line in lines])
        except Exception as exc:
            log.warning("task %s: could not ship its log to %s: %s", run.task.id, group, exc)

    # -- hooks -------------------------------------------------------------------------------------

    def outage(self, region: str) -> None:
        """A dark region's tasks vanish at once: SIGKILL, STOPPED, nothing replaced until restore."""
        with self.lock:
            for run in list(self.runs.values()):
                if run.region != region or run.status == "STOPPED":
                    continue
                if run.proc is not None and run.proc.poll() is None:
                    run.proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        run.proc.wait(5)
                if run.active and run.proc is not None:
                    run.task.desired_status = "STOPPED"
                    run.task.stop_code = "EssentialContainerExited"
                    run.task.stopped_reason = "Essential container in task exited"
                elif run.active:
                    run.task.desired_status = "STOPPED"
                    run.task.stop_code = "TaskFailedToStart"
                    run.task.stopped_reason = f"Task stopped before its container started: region {region} went dark"
                if run.proc is None:
                    run.task.containers[0].last_status = "STOPPED"
                    run.task.stopping_at = run.task.execution_stopped_at = moto_now()
                    self._deregister(run)
                else:
                    self._process_gone(run)
                self._deprovision(run, time.monotonic())
            log.warning("region %s dark: its ECS tasks are stopped", region)

    def stop_all(self, *, graceful: bool) -> None:
        """Reset and shutdown: every process goes (SIGTERM first when graceful), nothing is replaced."""
        with self.lock:
            runs = list(self.runs.values())
            self.runs.clear()
        procs = [r.proc for r in runs if r.proc is not None and r.proc.poll() is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        deadline = time.monotonic() + (10 if graceful else 5)
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        for run in runs:
            if run.health is not None:
                run.health.close()
            for port in run.container_ports:
                self.rt.unpublish(run.ip, port)

    # -- control routes ----------------------------------------------------------------------------

    def kill_task_route(self, body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        region = body.get("region")
        if region not in runtime.REGIONS:
            raise runtime.ControlError(
                400, f'name the region of the task: {{"region": "us-east-1", "task": "<arn or id>"}} (got {region!r})'
            )
        wanted = str(body.get("task") or "")
        with self.lock:
            running = sorted(
                (r for r in self.runs.values() if r.region == region and r.status == "RUNNING" and r.active),
                key=lambda r: r.task.created_at,
            )
            if wanted:
                running = [r for r in running if wanted in (r.task.task_arn, r.task.id)]
            if not running:
                what = f"task {wanted}" if wanted else "task"
                raise runtime.ControlError(
                    404, f"no running {what} in {region}: see `aws ecs list-tasks` (or GET /_sandbox/ecs/tasks)"
                )
            run = running[0]
            self._kill(run)
            return 200, self._describe(run) | {"killed": True}

    def kill_az_route(self, body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        zone = str(body.get("az") or "")
        match = _AZ.match(zone)
        if not match or match.group(1) not in runtime.REGIONS:
            raise runtime.ControlError(
                400, f'name an availability zone of {", ".join(runtime.REGIONS)}: {{"az": "us-east-1a"}} (got {zone!r})'
            )
        with self.lock:
            victims = [r for r in self.runs.values() if r.task.availability_zone == zone and r.status == "RUNNING"]
            killed = [self._describe(r) for r in victims if self._kill(r)]
        return 200, {"az": zone, "killed": killed}

    def tasks_route(self, _body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            runs = [r for r in self.runs.values() if not query.get("region") or r.region == query["region"]]
            return 200, {"tasks": [self._describe(r) for r in runs]}

    @staticmethod
    def _describe(run: Run) -> dict[str, Any]:
        return {
            "region": run.region,
            "taskArn": run.task.task_arn,
            "taskId": run.task.id,
            "cluster": run.task.cluster_name,
            "service": run.service.name if run.service is not None else None,
            "lastStatus": run.status,
            "desiredStatus": run.task.desired_status,
            "availabilityZone": run.task.availability_zone,
            "privateIp": run.ip,
            "localPort": run.local_port,
            "pid": run.proc.pid if run.proc is not None else None,
            "healthStatus": run.task.health_status,
            "log": str(run.log_path) if run.log_path else None,
        }


# -- moto patches ----------------------------------------------------------------------------------

"""ECS under faults: a region's outage, shutdown, and the control routes kill-task / kill-az / ecs/tasks."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from typing import Any

from sandbox import runtime
from sandbox.services.ecs.model import (
    _AZ,
    Run,
    log,
    moto_now,
)


class Faults:
    """Outages, stopping everything, and the control routes (a Scheduler part)."""

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

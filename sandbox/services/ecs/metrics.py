"""ECS service metrics (namespace AWS/ECS, dimensions ClusterName and ServiceName) from the real task processes.

Every ``PUBLISH_INTERVAL_S`` (a ``Runtime.every`` loop, thread ``sandbox-ecs-metrics``) each RUNNING
task of a service is measured from /proc (Linux; no other library): the CPU time its process and the
process's descendants used since the last sample (``utime + stime`` of /proc/<pid>/stat) and their
resident memory (``VmRSS`` of /proc/<pid>/status). As ECS defines the service metrics:

- ``CPUUtilization`` = CPU used by the service's tasks / CPU their task definitions reserve x 100, with
  1024 CPU units = one core (the task-level ``cpu``, else the container's; 1024 when neither is set);
- ``MemoryUtilization`` = memory used / memory reserved (the task-level ``memory`` in MiB, else the
  container's) x 100.

Both are published through sandbox/services/cloudwatch/metrics.py (Unit Percent) while the service has
running tasks, and not for a dark region. AWS publishes one-minute datapoints; the sandbox one every
10 s (an alarm's Average over its period is the same). A task's first sample only starts its CPU
clock, so CPU appears one interval after a task starts.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.services.cloudwatch import metrics as cloudwatch

log = logging.getLogger("sandbox.ecs")

NAMESPACE = "AWS/ECS"
PUBLISH_INTERVAL_S = 10.0
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def _process_tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc/<pid>/task/<tid>/children)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in (_PROC / str(current) / "task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def _cpu_seconds(pid: int) -> float | None:
    try:
        # Fields after the command name (which may hold spaces) start at field 3; utime, stime are 14, 15.
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_mib(pid: int) -> float:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _units(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


@dataclass(frozen=True)
class _Task:
    account: str
    region: str
    cluster: str
    service: str
    pid: int
    cpu_units: float
    memory_mib: float


class Usage:
    """Samples the running tasks of a Scheduler and publishes their services' utilisation."""

    def __init__(self, scheduler: Any, is_dark: Any) -> None:
        self.scheduler = scheduler
        self.is_dark = is_dark
        self._previous: dict[int, tuple[float, float]] = {}  # pid -> (CPU seconds, monotonic time)

    def _tasks(self) -> list[_Task]:
        tasks = []
        with self.scheduler.lock:  # lock 1 in docs/sandbox.md, held only to copy the table
            for run in list(self.scheduler.runs.values()):
                proc, service = run.proc, run.service
                if run.status != "RUNNING" or proc is None or service is None or proc.poll() is not None:
                    continue
                container = run.container or {}
                tasks.append(
                    _Task(
                        run.account,
                        run.region,
                        service.cluster_name,
                        service.name,
                        proc.pid,
                        _units(getattr(run.task, "cpu", None), _units(container.get("cpu"), 1024.0)),
                        _units(getattr(run.task, "memory", None), _units(container.get("memory"), 512.0)),
                    )
                )
        return tasks

    def sample(self) -> None:
        now = time.monotonic()
        used: dict[tuple[str, str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        seen: dict[int, tuple[float, float]] = {}
        for task in self._tasks():
            if self.is_dark(task.region):
                continue
            tree = _process_tree(task.pid)
            times = [_cpu_seconds(pid) for pid in tree]
            cpu = sum(t for t in times if t is not None)
            totals = used[(task.account, task.region, task.cluster, task.service)]
            totals[2] += sum(_rss_mib(pid) for pid in tree)
            totals[3] += task.memory_mib
            seen[task.pid] = (cpu, now)
            previous = self._previous.get(task.pid)
            if previous is not None and now > previous[1]:
                cores = task.cpu_units / 1024
                totals[0] += max(0.0, cpu - previous[0]) / (now - previous[1])
                totals[1] += cores
        self._previous = seen
        for (account, region, cluster, service), (cpu_used, cores, rss, memory) in used.items():
            dims = {"ClusterName": cluster, "ServiceName": service}
            data = [
                {
                    "MetricName": "MemoryUtilization",
                    "Value": 100.0 * rss / memory,
                    "Unit": "Percent",
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                }
            ]
            if cores:
                data.append(
                    {
                        "MetricName": "CPUUtilization",
                        "Value": 100.0 * cpu_used / cores,
                        "Unit": "Percent",
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    }
                )
            cloudwatch.put_many(account, region, NAMESPACE, data)

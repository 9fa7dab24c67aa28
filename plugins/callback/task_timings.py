# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Times each task from its start to its result on each host, and prints the slowest at the end.

profile_tasks measures from one task's start to the next task's start anywhere in the play. Under the
free strategy (the database play) and with hosts that include different task files, the next start is
often another host's, so it charges one task's time to another: a deploy's recap named "Remove the
regional Aurora cluster" (skipped) for 17 s that the join of the secondary took. This callback asks
each host when its task started and when its result came back, so the time lands on the task that spent
it, whatever the strategy.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: task_timings
type: aggregate
short_description: the slowest tasks, each timed from its start to its result on each host
description:
  - Records when each task starts and ends on each host (including tasks from included files and
    tasks run under the free strategy) and prints the slowest ones after the play recap.
options:
  count:
    description: How many tasks to list (0 lists none).
    type: int
    default: 20
    env:
      - name: TASK_TIMINGS_COUNT
    ini:
      - section: callback_task_timings
        key: count
"""

import time
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timings"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[tuple[str, str], float] = {}
        # (task uuid, host) -> (task name, seconds)
        self._timings: dict[tuple[str, str], tuple[str, float]] = {}
        self._play_started = time.monotonic()

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._started[(task._uuid, host.get_name())] = time.monotonic()

    def _ended(self, result: Any, ignore_errors: bool = False) -> None:
        task, host = result._task, result._host.get_name()
        started = self._started.pop((task._uuid, host), None)
        if started is not None:
            self._timings[(task._uuid, host)] = (_task_name(task), time.monotonic() - started)

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _ended

    def v2_playbook_on_stats(self, stats: Any) -> None:
        count = self.get_option("count")
        if not count or not self._timings:
            return
        slowest = sorted(self._timings.items(), key=lambda item: item[1][1], reverse=True)[:count]
        width = max(len(f"{name} [{host}]") for (_uuid, host), (name, _seconds) in slowest)
        self._display.banner(f"SLOWEST TASKS (each from its start to its result on a host; {count} at most)")
        for (_uuid, host), (name, seconds) in slowest:
            self._display.display(f"{f'{name} [{host}]':<{width}}  {seconds:8.2f} s")
        self._display.display(f"{'total':<{width}}  {time.monotonic() - self._play_started:8.2f} s")


def _task_name(task: Any) -> str:
    role = getattr(task, "_role", None)
    name = task.get_name().strip()
    return f"{role.get_name()} : {name}" if role and not name.startswith(f"{role.get_name()} :") else name

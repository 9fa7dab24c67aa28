#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ecs_one_off_task
short_description: Run a one-off ECS task (e.g. database migrations), wait until it stops, fail unless it exited 0
author:
  - hawa platform team (!UNKNOWN)
version_added: 1.0.0
description:
  - Calls C(RunTask) for one task of a task definition (optionally with a command override for one container), polls
    C(DescribeTasks) until the task is C(STOPPED), and fails with the container's exit code, the task's stop code and
    C(stoppedReason), and where its logs are (awslogs group and stream, with their last lines) unless the container
    exited 0.
  - M(community.aws.ecs_task) cannot do this - its C(wait) waits for C(RUNNING) (and fails when a short task has
    already stopped), and no module reads a task's exit code.
  - With O(once_tag), the task runs at most once per task definition revision - a revision that already carries
    the tag is skipped (C(changed=false)), and the tag is set (value - the task's ARN) only after a run that exited 0.
    A failed run is therefore retried by the next play. Task definition revisions are immutable except for their
    tags, so a new image or configuration (a new revision) runs again.
  - Check mode runs nothing; it reports C(changed) when the task would run.
options:
  cluster:
    description: The cluster's name or ARN.
    type: str
    required: true
  task_definition:
    description: The task definition, C(family:revision) or its ARN (C(family) alone means the latest ACTIVE revision).
    type: str
    required: true
  container:
    description: The container whose command is overridden and whose exit code decides; default the first one.
    type: str
  command:
    description: Command override for O(container) (e.g. V([migrate])); default the container's own command.
    type: list
    elements: str
  subnets:
    description: Subnets of the task's network interface (awsvpc).
    type: list
    elements: str
    required: true
  security_groups:
    description: Security groups of the task's network interface.
    type: list
    elements: str
    default: []
  assign_public_ip:
    description: Give the task a public IP (only for tasks in public subnets that must reach the internet).
    type: bool
    default: false
  launch_type:
    description: Where the task runs.
    type: str
    choices: [FARGATE, EC2]
    default: FARGATE
  started_by:
    description: The task's C(startedBy) (shows in C(ListTasks), up to 36 characters).
    type: str
    default: ansible
  once_tag:
    description: Tag key that marks a task definition revision as done; "" runs every time.
    type: str
    default: ""
  timeout:
    description: Seconds to wait for the task to stop. On timeout the module fails and leaves the task running.
    type: int
    default: 900
  delay:
    description: Seconds between two C(DescribeTasks).
    type: int
    default: 2
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Database migrations, once per task definition revision
  ecs_one_off_task:
    region: us-east-1
    cluster: hawa-production-us-east-1-cluster
    task_definition: "{{ taskdef.taskdefinition.taskDefinitionArn }}"
    container: web
    command: [migrate]
    subnets: "{{ private_subnet_ids }}"
    security_groups: ["{{ app_security_group_id }}"]
    started_by: ansible-migrate
    once_tag: migrations-applied
"""

RETURN = r"""
ran:
  description: Whether a task was started (false when O(once_tag) says the revision is done, and in check mode).
  returned: always
  type: bool
task_definition_arn:
  description: The task definition revision.
  returned: always
  type: str
task_arn:
  description: The one-off task.
  returned: when a task ran
  type: str
exit_code:
  description: Exit code of O(container) (absent when it never started).
  returned: when a task ran
  type: int
stop_code:
  description: The task's C(stopCode) (C(EssentialContainerExited) after a normal exit, C(TaskFailedToStart), ...).
  returned: when a task ran
  type: str
stopped_reason:
  description: The task's C(stoppedReason).
  returned: when a task ran
  type: str
log_group:
  description: The container's awslogs group ("" without awslogs).
  returned: always
  type: str
log_stream:
  description: The task's awslogs stream (C(<prefix>/<container>/<task id>)).
  returned: when a task ran
  type: str
duration:
  description: Seconds from RunTask to STOPPED.
  returned: when a task ran
  type: float
"""

import contextlib
import time

with contextlib.suppress(ImportError):  # protected by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, run_waiter

LOG_LINES_IN_MESSAGE = 15


def pick_container(definition, wanted):
    """The container definition named wanted (default: the first), or None."""
    containers = definition.get("containerDefinitions") or []
    if not wanted:
        return containers[0] if containers else None
    return next((c for c in containers if c.get("name") == wanted), None)


def log_target(container, task_id):
    """(group, stream) of an awslogs container, or ("", "")."""
    config = container.get("logConfiguration") or {}
    if config.get("logDriver") != "awslogs":
        return "", ""
    options = config.get("options") or {}
    prefix = options.get("awslogs-stream-prefix")
    stream = f"{prefix}/{container['name']}/{task_id}" if prefix else task_id
    return options.get("awslogs-group", ""), stream


def outcome(task, container_name):
    """The facts about a stopped task that decide success: exit code, stop code, reasons."""
    container = next((c for c in task.get("containers") or [] if c.get("name") == container_name), {})
    return {
        "exit_code": container.get("exitCode"),
        "stop_code": task.get("stopCode", ""),
        "stopped_reason": task.get("stoppedReason", ""),
        "container_reason": container.get("reason", ""),
    }


def failure_message(task_arn, definition_arn, command, container_name, facts, log_group, log_stream, log_lines):
    what = f"one-off task {task_arn} of {definition_arn}"
    if command:
        what += f" (command: {' '.join(command)})"
    code = facts["exit_code"]
    parts = [
        f"{what} did not succeed:",
        f"container {container_name} " + ("never started" if code is None else f"exited with code {code}") + ";",
        f"stop code {facts['stop_code'] or '-'}: {facts['stopped_reason'] or '-'}.",
    ]
    if facts["container_reason"] and facts["container_reason"] not in facts["stopped_reason"]:
        parts.append(f"Container reason: {facts['container_reason']}.")
    if log_group:
        parts.append(f"Logs: log group {log_group}, stream {log_stream}.")
    message = " ".join(parts)
    if log_lines:
        message += "\nLast log lines:\n" + "\n".join(log_lines)
    return message


def read_log_tail(logs, group, stream, lines=LOG_LINES_IN_MESSAGE):
    if not group:
        return []
    try:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=False, limit=lines)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
        return []
    return [event["message"] for event in events.get("events", [])]


def _first_task(response):
    return ((response or {}).get("tasks") or [None])[0]


def wait_stopped(client, cluster, task_arn, timeout, delay):
    """(task, task) once it is STOPPED (botocore's tasks_stopped waiter), or (None, last task seen) at the timeout."""
    try:
        run_waiter(
            client.get_waiter("tasks_stopped"),
            f"task '{task_arn}' to stop",
            timeout,
            delay,
            lambda response: (_first_task(response) or {}).get("lastStatus", "unknown"),
            cluster=cluster,
            tasks=[task_arn],
        )
    except WaitTimeout as e:
        return None, _first_task(e.last)
    # The waiter returns nothing; the exit code and stop reason are in the stopped task.
    task = _first_task(client.describe_tasks(aws_retry=True, cluster=cluster, tasks=[task_arn]))
    return task, task


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            task_definition=dict(type="str", required=True),
            container=dict(type="str"),
            command=dict(type="list", elements="str"),
            subnets=dict(type="list", elements="str", required=True),
            security_groups=dict(type="list", elements="str", default=[]),
            assign_public_ip=dict(type="bool", default=False),
            launch_type=dict(type="str", choices=["FARGATE", "EC2"], default="FARGATE"),
            started_by=dict(type="str", default="ansible"),
            once_tag=dict(type="str", default=""),
            timeout=dict(type="int", default=900),
            delay=dict(type="int", default=2),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["subnets"]:
        module.fail_json(msg="subnets is empty: give the subnets of the task's network interface (awsvpc)")
    if p["timeout"] < 1 or p["delay"] < 1:
        module.fail_json(msg=f"timeout ({p['timeout']}) and delay ({p['delay']}) must be at least 1 second")
    client = module.client("ecs", retry_decorator=AWSRetry.jittered_backoff())
    try:
        described = client.describe_task_definition(
            aws_retry=True, taskDefinition=p["task_definition"], include=["TAGS"]
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Cannot read task definition {p['task_definition']} in {module.region}")
    definition = described["taskDefinition"]
    definition_arn = definition["taskDefinitionArn"]
    container = pick_container(definition, p["container"])
    if container is None:
        names = ", ".join(c.get("name", "?") for c in definition.get("containerDefinitions") or [])
        module.fail_json(msg=f"task definition {definition_arn} has no container {p['container']!r} (it has: {names})")
    log_group, _ = log_target(container, "")
    tags = {t["key"]: t["value"] for t in described.get("tags") or []}
    base = {"task_definition_arn": definition_arn, "log_group": log_group}
    if p["once_tag"] and p["once_tag"] in tags:
        module.exit_json(changed=False, ran=False, skipped=f"{p['once_tag']}={tags[p['once_tag']]}", **base)
    if module.check_mode:
        module.exit_json(changed=True, ran=False, **base)

    awsvpc = {
        "subnets": p["subnets"],
        "securityGroups": p["security_groups"],
        "assignPublicIp": "ENABLED" if p["assign_public_ip"] else "DISABLED",
    }
    request = dict(
        cluster=p["cluster"],
        taskDefinition=definition_arn,
        count=1,
        launchType=p["launch_type"],
        networkConfiguration={"awsvpcConfiguration": awsvpc},
        startedBy=p["started_by"],
    )
    if p["command"]:
        request["overrides"] = {"containerOverrides": [{"name": container["name"], "command": p["command"]}]}
    started = time.monotonic()
    try:
        response = client.run_task(**request)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"RunTask of {definition_arn} in cluster {p['cluster']} ({module.region}) failed")
    if response.get("failures") or not response.get("tasks"):
        module.fail_json(
            msg=f"RunTask of {definition_arn} in cluster {p['cluster']} started no task: {response.get('failures')}",
            **base,
        )
    task_arn = response["tasks"][0]["taskArn"]
    _, log_stream = log_target(container, task_arn.rsplit("/", 1)[-1])
    base.update(task_arn=task_arn, log_stream=log_stream)
    try:
        task, last = wait_stopped(client, p["cluster"], task_arn, p["timeout"], p["delay"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Cannot follow task {task_arn}", ran=True, **base)
    duration = round(time.monotonic() - started, 1)
    if task is None:
        status = (last or {}).get("lastStatus", "unknown")
        module.fail_json(
            msg=f"one-off task {task_arn} of {definition_arn} is still {status} after {p['timeout']}s; it was left "
            f"running: look at log group {log_group or '-'} stream {log_stream or '-'}, and stop it with "
            f"`aws ecs stop-task --cluster {p['cluster']} --task {task_arn}` if it hangs",
            changed=True,
            ran=True,
            duration=duration,
            **base,
        )
    facts = outcome(task, container["name"])
    result = dict(
        base, ran=True, duration=duration, **{k: facts[k] for k in ("exit_code", "stop_code", "stopped_reason")}
    )
    if facts["exit_code"] != 0:
        lines = read_log_tail(module.client("logs"), log_group, log_stream)
        module.fail_json(
            msg=failure_message(
                task_arn, definition_arn, p["command"], container["name"], facts, log_group, log_stream, lines
            ),
            changed=True,
            **result,
        )
    if p["once_tag"]:
        try:
            client.tag_resource(
                aws_retry=True, resourceArn=definition_arn, tags=[{"key": p["once_tag"], "value": task_arn}]
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"task {task_arn} succeeded but tagging {definition_arn} failed", **result)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()

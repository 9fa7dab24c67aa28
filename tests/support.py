"""Helpers shared by the test suites: running real playbooks and reading their results."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback TCP ports that nothing listens on right now. Each socket stays bound until all
    are: ports picked one after another may repeat, since a closed socket's port is free to be picked again
    (a sandbox once got the same port for its API and its edge, and did not start)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    return free_ports(1)[0]


@dataclass
class PlaybookRun:
    returncode: int
    stats: dict[str, dict[str, int]]
    plays: list[dict[str, Any]]
    stdout: str
    stderr: str

    @property
    def changed(self) -> int:
        return sum(host.get("changed", 0) for host in self.stats.values())

    @property
    def failed(self) -> int:
        return sum(host.get("failures", 0) + host.get("unreachable", 0) for host in self.stats.values())

    def changed_tasks(self) -> list[str]:
        """'host: task name' for every task that reported changed, to explain a failed idempotence check."""
        found = []
        for play in self.plays:
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    if result.get("changed"):
                        found.append(f"{host}: {task['task']['name']}")
        return found

    def failure_messages(self) -> list[str]:
        found = []
        for play in self.plays:
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    if result.get("failed") or result.get("unreachable"):
                        found.append(f"{host}: {task['task']['name']}: {result.get('msg', result)}")
                        # A loop's own message is only "One or more items failed": add each item's.
                        for item in result.get("results", []):
                            if isinstance(item, dict) and item.get("failed"):
                                found.append(f"{host}: {task['task']['name']}: {item.get('msg', item)}")
        return found


def load_module_file(path: Path) -> Any:
    """Import a plugin file (filter, module) that does not live in an importable package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_under_test_{path.stem}", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ansible_env(
    sandbox_port: int | None, extra: dict[str, str] | None = None, *, root: Path = REPO_ROOT
) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(root / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    # Nothing in the caller's environment may point a test at a real account.
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(key, None)
    if sandbox_port is not None:
        env["SANDBOX_PORT"] = str(sandbox_port)
    env.update(extra or {})
    return env


def run_playbook(
    playbook: str | Path,
    *,
    sandbox_port: int | None,
    inventory: str | Path = "inventories/sandbox/hosts.yml",
    extra_vars: dict[str, Any] | None = None,
    check: bool = False,
    args: list[str] | None = None,
    timeout: int = 900,
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
) -> PlaybookRun:
    """Run ansible-playbook with the JSON callback and return its parsed result (cwd: a copy of the repository
    to run from, with its own ansible.cfg and reports/)."""
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_vars:
        cmd += ["--extra-vars", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    cmd += args or []
    run_env = ansible_env(sandbox_port, {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", **(env or {})}, root=cwd)
    run_env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.json"
    proc = subprocess.run(cmd, cwd=cwd, env=run_env, capture_output=True, text=True, timeout=timeout, check=False)
    # The JSON callback writes a document at the end of each playbook (args may name more than one), each with
    # every play so far and the stats so far: the last one says it all.
    doc: dict[str, Any] = {}
    decoder, at = json.JSONDecoder(), proc.stdout.find("{")
    while at != -1:
        try:
            doc, end = decoder.raw_decode(proc.stdout, at)
        except ValueError:
            break
        at = proc.stdout.find("{", end)
    return PlaybookRun(proc.returncode, doc.get("stats", {}), doc.get("plays", []), proc.stdout, proc.stderr)


def sandbox_control(sandbox: Any, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the sandbox's control route /_sandbox/<path> (sandbox/control.py); an outage or a restore of a region
    answers once it is done, in seconds."""
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{sandbox.endpoint}/_sandbox/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
        return json.load(response)


def wait_until(
    what: str,
    check: Callable[[], Any],
    timeout: float = 60,
    interval: float = 0.1,
    ignoring: tuple[type[BaseException], ...] = (),
) -> Any:
    """check()'s first truthy result, polled every interval (an exception in ignoring counts as not yet);
    AssertionError naming what after timeout seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except ignoring:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def loopback_security_group(ec2: Any, vpc_id: str, name: str = "alb-loopback") -> str:
    """A security group admitting 127.0.0.1/32 on every TCP port: what a test (or an operator's tool) needs
    to reach a sandbox ALB directly, as a user of AWS must admit their own address (docs/sandbox.md)."""
    group = ec2.create_security_group(VpcId=vpc_id, GroupName=name, Description="tests reach the ALB directly")
    ec2.authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}],
    )
    return str(group["GroupId"])


@dataclass
class JobTemplate:
    """One job template of awx/configure.yml, the single source of AWX's templates."""

    name: str
    playbook: str
    job_type: str
    ask_job_type: bool
    ask_variables: bool
    survey: list[dict[str, Any]]


def job_template(name: str) -> JobTemplate:
    import yaml

    (play,) = yaml.safe_load((REPO_ROOT / "awx" / "configure.yml").read_text())
    (task,) = [t for t in play["tasks"] if "awx.awx.job_template" in t]
    items = {item["name"]: item for item in task["loop"]}
    if name not in items:
        raise ValueError(f"awx/configure.yml has no job template {name!r}; it has {sorted(items)}")
    item = items[name]
    survey = []
    if "survey_file" in item:
        survey = json.loads((REPO_ROOT / "awx" / item["survey_file"]).read_text())["spec"]
    return JobTemplate(
        name,
        item["playbook"],
        item.get("job_type", "run"),
        item.get("ask_job_type", False),
        item.get("ask_variables", False),
        survey,
    )


def survey_extra_vars(template: JobTemplate, answers: dict[str, str]) -> dict[str, str]:
    """The extra vars AWX launches a job with: the answers (strings, as AWX passes them) checked against the
    survey, each unanswered question's default where it is a valid answer, and a required question unanswered
    refused, as AWX refuses such a launch."""
    questions = {q["variable"]: q for q in template.survey}
    unknown = set(answers) - set(questions)
    if unknown and not template.ask_variables:
        raise ValueError(f"{template.name} asks only {sorted(questions)}; it does not take {sorted(unknown)}")
    extra_vars = dict(answers)
    for variable, question in questions.items():
        value = answers.get(variable, question.get("default", ""))
        valid = value != "" and (question["type"] != "multiplechoice" or value in question["choices"])
        if variable in answers and not valid:
            raise ValueError(f"{template.name}: {variable}={value!r} is not one of {question.get('choices')}")
        if valid:
            extra_vars[variable] = value
        elif question.get("required"):
            raise ValueError(f"{template.name}: the survey requires an answer for {variable}")
    return extra_vars


def run_job_template(
    name: str,
    answers: dict[str, str] | None = None,
    *,
    sandbox_port: int,
    private_data_dir: Path,
    inventory: str = "inventories/sandbox/hosts.yml",
    job_type: str | None = None,
    job_id: int = 1,
    timeout: int = 900,
) -> Any:
    """Run a job template of awx/configure.yml as AWX does, with ansible-runner (AWX's engine): the project is
    the repository (AWX's checkout; the playbook runs from it, with its ansible.cfg), the inventory is the
    template's inventory source (the sandbox's here, as awx_inventory_source_path=inventories/sandbox/hosts.yml
    makes it), the environment carries the AWS_* variables AWX's credential injects (the sandbox's endpoint and
    fake keys), the extra vars are the survey's answers plus the job's awx_* metadata (failover.yml's lock names
    the AWX user and job from them), and a check job passes --check. Returns the
    ansible_runner.Runner: status, rc, stats, events, config.artifact_dir (job_events/, stdout, rc, status)."""
    import ansible_runner

    from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY

    template = job_template(name)
    job_type = job_type or template.job_type
    if job_type not in ("run", "check"):
        raise ValueError(f"job_type must be run or check (AWX's job types); got {job_type!r}")
    if job_type != template.job_type and not template.ask_job_type:
        raise ValueError(f"{name} does not ask the job type at launch: it runs as {template.job_type} only")
    envvars = {
        # ansible-playbook from the virtualenv, as the execution environment has it on its PATH.
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # The sandbox inventory's endpoint reads SANDBOX_PORT; the rest is what AWX's credential injects.
        "SANDBOX_PORT": str(sandbox_port),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{sandbox_port}",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    }
    return ansible_runner.run(
        private_data_dir=str(private_data_dir),
        project_dir=str(REPO_ROOT),
        playbook=template.playbook,
        inventory=str(REPO_ROOT / inventory),
        extravars={
            "awx_job_id": job_id,
            "awx_job_template_name": template.name,
            "awx_user_name": "tests",
            **survey_extra_vars(template, answers or {}),
        },
        envvars=envvars,
        cmdline="--check" if job_type == "check" else None,
        quiet=True,
        timeout=timeout,
    )


def copy_checkout(root: Path) -> Path:
    """A copy of the repository at root (what git tracks, plus new files not ignored), sharing the virtualenv:
    for tests that run commands which write into the working tree (the README walk, scripts/deploy.sh)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = REPO_ROOT / name
        if source.is_symlink():  # collections/ansible_collections/hawa/platform: the repository as a collection
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).symlink_to(source.readlink())
        elif source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(REPO_ROOT / ".venv")
    return root

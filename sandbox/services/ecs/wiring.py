"""What a task is wired to: environment and secrets, load balancer targets, CloudWatch Logs."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from sandbox import config, runtime
from sandbox.services.ecs import containers as ecs
from sandbox.services.ecs.model import (
    LOG_LINES_SHIPPED,
    Run,
    log,
)


class TaskWiring:
    """A task's connections: its environment and secrets, its target groups, its logs (a Scheduler part)."""

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

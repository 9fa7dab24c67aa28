"""application_autoscaling_target: its decisions, and the register/modify/deregister matrix on the sandbox."""

from __future__ import annotations

import uuid

from tests.support import REPO_ROOT, load_module_file, run_playbook

TARGET = "tests/modules/targets/application_autoscaling_target.yml"


def test_update_needed_only_when_bounds_differ():
    mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "application_autoscaling_target.py")
    assert mod.needs_update(None, 1, 2)
    assert not mod.needs_update({"MinCapacity": 1, "MaxCapacity": 2}, 1, 2)
    assert mod.needs_update({"MinCapacity": 1, "MaxCapacity": 2}, 1, 3)
    assert mod.needs_update({"MinCapacity": 1, "MaxCapacity": 2}, 2, 2)


def test_module_register_modify_deregister(sandbox, aws):
    prefix = f"aat-{uuid.uuid4().hex[:8]}"
    # Application Auto Scaling checks that the ECS service exists, as on AWS.
    ecs = aws("ecs")
    ecs.create_cluster(clusterName=f"{prefix}-cluster")
    ecs.register_task_definition(
        family=prefix, containerDefinitions=[{"name": "web", "image": "nginx", "cpu": 256, "memory": 512}]
    )
    ecs.create_service(cluster=f"{prefix}-cluster", serviceName=f"{prefix}-web", taskDefinition=prefix, desiredCount=1)
    try:
        run = run_playbook(TARGET, sandbox_port=sandbox.port, extra_vars={"asg_prefix": prefix})
    finally:
        ecs.delete_service(cluster=f"{prefix}-cluster", service=f"{prefix}-web", force=True)
        ecs.delete_cluster(cluster=f"{prefix}-cluster")
    assert run.returncode == 0, "\n".join(run.failure_messages()) or run.stderr[-3000:]
    changed = sorted(task.split(": ", 1)[1] for task in run.changed_tasks())
    assert changed == sorted(
        ["Register (check mode)", "Register", "Modify (check mode)", "Modify", "Deregister (check mode)", "Deregister"]
    ), changed
    targets = aws("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/{prefix}-cluster/{prefix}-web"]
    )["ScalableTargets"]
    assert targets == []

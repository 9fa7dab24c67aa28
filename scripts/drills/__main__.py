"""scripts/test-failover.sh: drill the design's failure scenarios and measure them.

    scripts/test-failover.sh --list
    scripts/test-failover.sh --scenario single-container      # on the sandbox (make deploy first)
    scripts/test-failover.sh --scenario all                   # = make drills
    scripts/test-failover.sh --scenario all --domain example.com --fis-role-arn arn:... --check

Exit status: 0 when every drill met its budget, 1 when one did not (the report says which figure), 2 when
no drill could start (bad input, no deployed stack, a stack that is not as deployed).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.deployment import REPO_ROOT, Deployment, connect, read_inventory
from scripts.drills import report, runner, stack
from scripts.drills.faults import AwsFaults, SandboxFaults
from scripts.drills.scenarios import SCENARIOS

RATE = "20 reads/s (GET /api/data) and 10 writes/s (POST /api/data, unique keys)"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/test-failover.sh",
        description="Drill the design's failure scenarios under a steady load through the public entry point, "
        "measure detection, recovery, user impact and lost writes, and write reports/drills/<UTC time>/.",
    )
    parser.add_argument("--scenario", help=f"one of {', '.join(SCENARIOS)}, or all")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--domain", help="drill a real deployment reached at https://DOMAIN (default: the sandbox)")
    parser.add_argument("--inventory", help="default: inventories/sandbox/hosts.yml, or production with --domain")
    parser.add_argument(
        "--preflight", action="store_true", help="only check that the stack is deployed and as deployed"
    )
    parser.add_argument("--check", action="store_true", help="print exactly what each drill would do, and do nothing")
    parser.add_argument("--fis-role-arn", help="AWS only: the IAM role FIS assumes for network faults")
    parser.add_argument("--no-site-check", action="store_true", help="skip `site.yml --check` after the drills")
    parser.add_argument("--report-dir", default=str(REPO_ROOT / "reports" / "drills"), help="default: reports/drills")
    return parser.parse_args(argv)


def list_scenarios() -> str:
    lines = []
    for s in SCENARIOS.values():
        design = f" (design: detect {s.design.detection}, recover {s.design.recovery})" if s.design else ""
        lines.append(f"  {s.name:<20} {s.title}{design}")
    return "Scenarios:\n" + "\n".join(lines)


def chosen(name: str | None) -> list[str]:
    if not name:
        raise SystemExit(f"name a scenario with --scenario NAME or --scenario all\n{list_scenarios()}")
    if name == "all":
        return list(SCENARIOS)
    if name not in SCENARIOS:
        raise SystemExit(f"unknown scenario {name!r}: choose one of {', '.join(SCENARIOS)}, or all")
    return [name]


def context(args: argparse.Namespace, deployment: Deployment, run_id: str) -> runner.Context:
    try:
        session, account = connect(deployment)
    except SystemExit as stop:
        if not (args.check and args.domain):
            raise
        # --check needs no AWS: say why the plan names resources by placeholder.
        print(f"cannot read {deployment.prefix} ({stop}): the plan below names resources by placeholder")
        session, account = None, "<account>"
    if args.domain:
        base_url, outbox, faults = (
            f"https://{args.domain}",
            None,
            AwsFaults(session, deployment, account, args.fis_role_arn),
        )
    else:
        from sandbox import config

        cfg = config.load()
        base_url = os.environ.get("SANDBOX_URL") or cfg.edge
        outbox, faults = f"{cfg.endpoint}/_sandbox/sns/outbox", SandboxFaults(cfg)
    mode = str(deployment.settings.get("failover_automation_mode", "off"))
    judge = stack.HealthCheckJudge()  # one for every read: Route 53's verdict needs the checkers' history
    return runner.Context(
        deployment=deployment,
        session=session,
        inventory=args.inventory,
        base_url=base_url,
        faults=faults,
        read=lambda: stack.read(deployment, session, judge),
        outbox_url=outbox,
        automatic_failover=mode == "automatic",
        automatic_wait_s=120,
        verify_tls=bool(args.domain),
        run_id=run_id,
        report_dir=Path(args.report_dir) / run_id,
    )


def preflight(ctx: runner.Context) -> None:
    """Refuse to start on no stack, or on a stack that is not as deployed: the drill would measure that."""
    if ctx.session is None:
        ctx.snapshot = placeholders(ctx.deployment)
        return
    ctx.snapshot = ctx.read()
    prefix, primary = ctx.deployment.prefix, ctx.deployment.primary
    if ctx.snapshot.get("api", primary) == "answers" and primary not in ctx.snapshot.services:
        raise SystemExit(f"no deployed stack of {prefix} in {primary}: run `make deploy` first")
    problems = ctx.snapshot.problems(ctx.deployment)
    if problems:
        raise SystemExit(
            f"{prefix} is not as deployed, so a drill would measure someone else's fault:\n  - "
            + "\n  - ".join(problems)
            + "\nBring it back first (make sandbox-restore REGION=..., `ansible-playbook failover.yml -e "
            "failover_mode=failback`, make deploy), then drill."
        )


def placeholders(deployment: Deployment) -> stack.Snapshot:
    """A stack described by placeholders, for --check without AWS credentials."""
    primary, name = deployment.primary, f"{deployment.prefix}-{deployment.primary}"
    snap = stack.Snapshot()
    snap.services[primary] = (f"<the ECS cluster {name}-...>", "<its service>")
    snap.tasks[primary] = [
        {"taskArn": f"<a running task of {name} in AZ {zone}>", "availabilityZone": f"<AZ {zone}>"} for zone in "abc"
    ]
    snap.writer_instances[primary] = {"id": f"<the writer instance of {name}-aurora>", "az": "<AZ a>"}
    return snap


def show_plan(ctx: runner.Context, names: list[str]) -> None:
    print(f"--check: what the drills would do against {ctx.deployment.prefix} ({ctx.faults.where}); nothing is done.")
    print(f"Load: {RATE} through {ctx.base_url}, from 5 s before each fault until the stack is as deployed again.")
    for name in names:
        scenario = SCENARIOS[name]
        plan = scenario.plan(ctx)
        print(f"\n{name}: {scenario.title}" + (f" ({plan.note})" if plan.note else ""))
        for step in plan.inject:
            print(f"  fault: {step.title}\n         {step.call}")
        for line in scenario.playbooks:
            print(f"  then:  {line}")
        for step in plan.undo:
            print(f"  undo:  {step.title}\n         {step.call}")
        print("  check: the stack as deployed (writer in the primary region, desired counts, targets healthy)")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        print(list_scenarios())
        return 0
    try:
        names = chosen("all" if args.preflight else args.scenario)
        args.inventory = args.inventory or f"inventories/{'production' if args.domain else 'sandbox'}/hosts.yml"
        deployment = read_inventory(args.inventory)
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        ctx = context(args, deployment, run_id)
        preflight(ctx)
        if args.preflight:
            print(f"{deployment.prefix} is deployed and as deployed: ready to drill")
            return 0
        if args.check:
            show_plan(ctx, names)
            return 0
    except SystemExit as stop:
        if isinstance(stop.code, int):
            raise
        print(f"test-failover: {stop}", file=sys.stderr)
        return 2
    return run(args, ctx, names, sys.argv[1:] if argv is None else argv)


def run(args: argparse.Namespace, ctx: runner.Context, names: list[str], argv: list[str]) -> int:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    results: list[dict[str, Any]] = []
    doc = {
        "deployment": ctx.deployment.prefix,
        "where": ctx.faults.where,
        "started": started,
        "command": "scripts/test-failover.sh " + shlex.join(argv),
        "entry_point": ctx.base_url,
        "load": RATE,
        "drills": results,
    }
    try:
        for name in names:
            ctx.snapshot = ctx.read()
            results.append(runner.Drill(ctx, SCENARIOS[name]).run())
            met = "met its budget" if results[-1]["verdict"]["met"] else "did NOT meet its budget"
            print(f"{name}: {met}")
        if not args.no_site_check:
            print("site.yml --check: does anything differ from the deployed stack?")
            doc["site_check"] = runner.site_check(args.inventory)
    except KeyboardInterrupt:
        print("interrupted: the fault was undone; the report holds the drills that finished", file=sys.stderr)
    finally:
        if results:
            path = report.write(ctx.report_dir, doc)
            print(f"report: {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    site_ok = "site_check" not in doc or (
        doc["site_check"]["exit"] == 0 and not any(doc["site_check"]["changed"].values())
    )
    return 0 if results and len(results) == len(names) and all(r["verdict"]["met"] for r in results) and site_ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: health_check_gate
short_description: Block until named health checks pass (or fail) for N consecutive polls
author:
  - hawa platform team (!UNKNOWN)
version_added: 1.0.0
description:
  - Polls every check in O(checks) until each has been in the expected state (O(expect)) for O(consecutive)
    polls in a row, then returns a per-check report. Fails at O(timeout) with the same report, naming the
    checks that did not get there and what they showed last.
  - Sources are Route 53 health checks (C(GetHealthCheckStatus)), ALB target groups (healthy target count),
    ECS services (steady state), HTTP(S) URLs (status, body match, latency bound), CloudWatch alarms (state
    C(OK)) and Aurora global database replication lag (C(AuroraGlobalDBReplicationLag) with every secondary
    connected).
  - Read-only - it changes nothing, reports C(changed=false) and runs in check mode as it does otherwise.
  - Only the regions and endpoints the checks name are called, so a gate on the surviving region works while
    another region is down.
options:
  checks:
    description:
      - The checks, each a dictionary with a O(checks[].type) and the keys that type needs.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A label for the report (default a description of the target).
        type: str
      type:
        description: What to check.
        type: str
        required: true
        choices: [route53, target_group, ecs_service, http, cloudwatch_alarm, aurora_replication_lag]
      health_check_id:
        description: V(route53) - the health check ID. Healthy when most Route 53 checkers report success.
        type: str
      target_group_arn:
        description: V(target_group) - the target group ARN (its region is taken from the ARN).
        type: str
      min_healthy:
        description: V(target_group) - how many targets must be C(healthy).
        type: int
        default: 1
      cluster:
        description: V(ecs_service) - the ECS cluster name or ARN.
        type: str
      service:
        description:
          - V(ecs_service) - the service name or ARN. Healthy in steady state - C(ACTIVE), as many tasks running as
            desired (at least one), nothing pending, and a single deployment whose rollout is C(COMPLETED).
        type: str
      url:
        description: V(http) - the URL to GET.
        type: str
      status_codes:
        description: V(http) - the statuses that count as healthy.
        type: list
        elements: int
        default: [200]
      body_contains:
        description: V(http) - a string the response body must contain.
        type: str
      max_latency_ms:
        description: V(http) - the response must arrive within this many milliseconds.
        type: int
      request_timeout:
        description: V(http) - seconds before a request counts as failed.
        type: float
        default: 5
      validate_certs:
        description: V(http) - verify TLS certificates.
        type: bool
        default: true
      alarm_name:
        description: V(cloudwatch_alarm) - the alarm's name. Healthy in state C(OK).
        type: str
      global_cluster_identifier:
        description:
          - V(aurora_replication_lag) - the global cluster. Healthy when every secondary member is C(connected)
            and its latest C(AuroraGlobalDBReplicationLag) datapoint (last five minutes) is at most O(checks[].max_lag_ms).
        type: str
      max_lag_ms:
        description: V(aurora_replication_lag) - the replication lag bound in milliseconds.
        type: int
        default: 1000
      region:
        description:
          - The region to call for V(ecs_service), V(cloudwatch_alarm) and V(aurora_replication_lag) (for the
            latter, any region still up - the lag metrics are read in each secondary's own region); defaults to
            the module's O(region).
        type: str
  expect:
    description:
      - V(healthy) waits until every check passes; V(unhealthy) until every check fails (for drills - for example
        until Route 53 has noticed a region taken down).
    type: str
    choices: [healthy, unhealthy]
    default: healthy
  consecutive:
    description: How many polls in a row each check must show the expected state.
    type: int
    default: 3
  interval:
    description: Seconds between polls.
    type: float
    default: 5
  timeout:
    description: Seconds before the gate gives up and fails with its report.
    type: int
    default: 600
notes:
  - An API error on a check (throttling, a region answering 5xx) counts as a failed poll for that check and is
    reported; a check naming something that does not exist fails the gate at once.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Both regions healthy and the replication lag under a second
  health_check_gate:
    region: us-east-1
    checks:
      - type: route53
        health_check_id: "{{ dns_outputs.health_check_ids['us-east-1'] }}"
      - type: target_group
        target_group_arn: "{{ compute_outputs.target_group_arn }}"
        min_healthy: 2
      - type: aurora_replication_lag
        global_cluster_identifier: hawa-production-global
        max_lag_ms: 1000
    consecutive: 3
    timeout: 300

- name: The new primary region serves a deep health check quickly
  health_check_gate:
    region: us-west-2
    checks:
      - type: http
        url: https://app.example.com/health/ready
        body_contains: '"status":"ok"'
        max_latency_ms: 500
      - type: ecs_service
        region: us-west-2
        cluster: hawa-production-us-west-2-cluster
        service: hawa-production-us-west-2-web

- name: Drill - wait until Route 53 has noticed the primary is down
  health_check_gate:
    region: us-east-1
    expect: unhealthy
    consecutive: 1
    checks:
      - type: route53
        health_check_id: "{{ primary_health_check_id }}"
    timeout: 120
"""

RETURN = r"""
passed:
  description: Whether every check reached the expected state (always true when the module succeeds).
  returned: always
  type: bool
elapsed_s:
  description: Seconds the gate waited.
  returned: always
  type: float
polls:
  description: How many polling rounds ran.
  returned: always
  type: int
checks:
  description: One report per check, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check's label.
      type: str
    type:
      description: The check's type.
      type: str
    healthy:
      description: What the last poll found.
      type: bool
    passed:
      description: Whether the check showed the expected state for O(consecutive) polls in a row.
      type: bool
    streak:
      description: Consecutive polls in the expected state at the end.
      type: int
    detail:
      description: What the last poll saw, in words (status code and latency, target counts, lag, ...).
      type: str
    passed_after_s:
      description: Seconds after the start when the check passed; null if it did not.
      type: float
"""

import contextlib
import time

with contextlib.suppress(ImportError):  # protected by AnsibleAWSModule
    import botocore

from ansible.module_utils.urls import open_url
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.arn import region_from_arn
from ansible_collections.hawa.platform.plugins.module_utils.clients import ClientCache
from ansible_collections.hawa.platform.plugins.module_utils.cloudwatch import latest_datapoint
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, wait_until

# Keys each type needs and may have (besides name, type, region).
REQUIRED = {
    "route53": ("health_check_id",),
    "target_group": ("target_group_arn",),
    "ecs_service": ("cluster", "service"),
    "http": ("url",),
    "cloudwatch_alarm": ("alarm_name",),
    "aurora_replication_lag": ("global_cluster_identifier",),
}
OPTIONAL = {
    "route53": (),
    "target_group": ("min_healthy",),
    "ecs_service": (),
    "http": ("status_codes", "body_contains", "max_latency_ms", "request_timeout", "validate_certs"),
    "cloudwatch_alarm": (),
    "aurora_replication_lag": ("max_lag_ms",),
}
COMMON = ("name", "type", "region")
# The defaults of the type-specific keys: declared in the argument spec (main) and documented; a check
# of another type ignores them.
DEFAULTS = {
    "min_healthy": 1,
    "status_codes": [200],
    "request_timeout": 5,
    "validate_certs": True,
    "max_lag_ms": 1000,
}
NOT_FOUND = (
    "NoSuchHealthCheck",
    "TargetGroupNotFound",
    "ClusterNotFoundException",
    "GlobalClusterNotFoundFault",
)


class GateError(Exception):
    """Bad input or a missing resource: fail at once with this message."""


class Unhealthy(Exception):
    """A poll that found the check failing, with what it saw."""


def validate(checks):
    """Static checks of the input; returns each check with the keys its type uses, defaults filled in.

    The argument spec gives every check every default, whatever its type: a key still at its default
    does not count as set on a type it does not apply to, and is dropped from that check.
    """
    if not checks:
        raise GateError("checks is empty: name at least one check to gate on")
    out = []
    for index, raw in enumerate(checks):
        kind = raw.get("type")
        where = f"checks[{index}]" + (f" ({raw['name']})" if raw.get("name") else "")
        if kind not in REQUIRED:
            raise GateError(f"{where}: type {kind!r} is not one of {', '.join(REQUIRED)}")
        present = {k for k, v in raw.items() if v is not None and not (k in DEFAULTS and v == DEFAULTS[k])}
        missing = [k for k in REQUIRED[kind] if k not in present]
        if missing:
            raise GateError(f"{where}: a {kind} check needs {', '.join(missing)}")
        extra = sorted(present - set(REQUIRED[kind]) - set(OPTIONAL[kind]) - set(COMMON))
        if extra:
            raise GateError(f"{where}: {', '.join(extra)} do not apply to a {kind} check (remove them)")
        check = {k: v for k, v in raw.items() if v is not None and (k not in DEFAULTS or k in OPTIONAL[kind])}
        for key in OPTIONAL[kind]:
            if key in DEFAULTS:
                check.setdefault(key, DEFAULTS[key])
        if kind == "target_group" and int(check["min_healthy"]) < 1:
            raise GateError(f"{where}: min_healthy must be at least 1")
        check.setdefault("name", default_name(check))
        out.append(check)
    return out


def default_name(check):
    kind = check["type"]
    target = {
        "route53": lambda c: c["health_check_id"],
        "target_group": lambda c: c["target_group_arn"].split(":")[-1],
        "ecs_service": lambda c: f"{c['cluster'].split('/')[-1]}/{c['service'].split('/')[-1]}",
        "http": lambda c: c["url"],
        "cloudwatch_alarm": lambda c: c["alarm_name"],
        "aurora_replication_lag": lambda c: c["global_cluster_identifier"],
    }[kind](check)
    return f"{kind} {target}"


# -- the probes: each returns a detail string when healthy and raises Unhealthy otherwise ----------


def probe_route53(clients, check):
    observations = clients.get("route53", "us-east-1").get_health_check_status(
        aws_retry=True, HealthCheckId=check["health_check_id"]
    )["HealthCheckObservations"]
    if not observations:
        raise Unhealthy("no observations yet")
    ok = [o for o in observations if o.get("StatusReport", {}).get("Status", "").startswith("Success")]
    detail = f"{len(ok)}/{len(observations)} checkers report success"
    # Route 53 considers an endpoint healthy when more than 18% of its checkers do.
    if len(ok) / len(observations) <= 0.18:
        last = observations[0].get("StatusReport", {}).get("Status", "")
        raise Unhealthy(f"{detail}; e.g. {last}")
    return detail


def probe_target_group(clients, check):
    arn = check["target_group_arn"]
    region = region_from_arn(arn, check.get("region"))
    targets = clients.get("elbv2", region).describe_target_health(aws_retry=True, TargetGroupArn=arn)[
        "TargetHealthDescriptions"
    ]
    states = {}
    for target in targets:
        state = target["TargetHealth"]["State"]
        states[state] = states.get(state, 0) + 1
    healthy = states.get("healthy", 0)
    detail = f"{healthy} healthy of {len(targets)} ({', '.join(f'{k} {v}' for k, v in sorted(states.items())) or 'no targets'})"
    if healthy < int(check["min_healthy"]):
        raise Unhealthy(f"{detail}; need {check['min_healthy']}")
    return detail


def probe_ecs_service(clients, check):
    found = clients.get("ecs", check["region"]).describe_services(
        aws_retry=True, cluster=check["cluster"], services=[check["service"]]
    )
    if not found["services"]:
        reason = (found.get("failures") or [{}])[0].get("reason", "MISSING")
        if reason == "MISSING":
            raise GateError(
                f"ECS service {check['service']} not found in cluster {check['cluster']} ({check['region']})"
            )
        raise Unhealthy(f"DescribeServices failure: {reason}")
    service = found["services"][0]
    deployments = service.get("deployments", [])
    detail = (
        f"{service['status']}, running {service['runningCount']}/{service['desiredCount']}, "
        f"pending {service['pendingCount']}, {len(deployments)} deployment(s) "
        f"({', '.join(d.get('rolloutState', d.get('status', '?')) for d in deployments)})"
    )
    steady = (
        service["status"] == "ACTIVE"
        and service["desiredCount"] >= 1
        and service["runningCount"] == service["desiredCount"]
        and service["pendingCount"] == 0
        and len(deployments) == 1
        and deployments[0].get("rolloutState", "COMPLETED") == "COMPLETED"
    )
    if not steady:
        raise Unhealthy(detail)
    return detail


def probe_http(_clients, check):
    started = time.monotonic()
    try:
        resp = open_url(
            check["url"],
            method="GET",
            timeout=float(check["request_timeout"]),
            validate_certs=check["validate_certs"],
            follow_redirects="safe",
        )
        status, body = resp.getcode(), resp.read(65536)
    except Exception as e:  # urllib's HTTPError carries the status and body too
        status = getattr(e, "code", None)
        if status is None:
            raise Unhealthy(f"no response: {e}") from None
        body = e.read(65536) if hasattr(e, "read") else b""
    latency_ms = (time.monotonic() - started) * 1000
    detail = f"HTTP {status} in {latency_ms:.0f} ms"
    if status not in [int(s) for s in check["status_codes"]]:
        raise Unhealthy(f"{detail}; expected {check['status_codes']}")
    if check.get("body_contains") and check["body_contains"].encode() not in body:
        raise Unhealthy(f"{detail}; body does not contain {check['body_contains']!r}")
    if check.get("max_latency_ms") and latency_ms > int(check["max_latency_ms"]):
        raise Unhealthy(f"{detail}; slower than {check['max_latency_ms']} ms")
    return detail


def probe_cloudwatch_alarm(clients, check):
    alarms = clients.get("cloudwatch", check["region"]).describe_alarms(
        aws_retry=True, AlarmNames=[check["alarm_name"]], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    found = alarms.get("MetricAlarms", []) + alarms.get("CompositeAlarms", [])
    if not found:
        raise GateError(f"CloudWatch alarm {check['alarm_name']} not found in {check['region']}")
    state = found[0]["StateValue"]
    if state != "OK":
        raise Unhealthy(f"state {state}: {found[0].get('StateReason', '')}")
    return "state OK"


def probe_aurora_replication_lag(clients, check):
    gid = check["global_cluster_identifier"]
    found = clients.get("rds", check["region"]).describe_global_clusters(aws_retry=True, GlobalClusterIdentifier=gid)[
        "GlobalClusters"
    ]
    if not found:
        raise GateError(f"global cluster {gid} not found")
    cluster = found[0]
    if cluster.get("FailoverState"):
        state = cluster["FailoverState"]
        raise Unhealthy(f"a {state.get('Status')} operation is running to {state.get('ToDbClusterArn')}")
    secondaries = [m for m in cluster.get("GlobalClusterMembers", []) if not m.get("IsWriter")]
    if not secondaries:
        raise Unhealthy("no secondary cluster in the global cluster")
    parts, worst = [], 0.0
    for member in secondaries:
        arn = member["DBClusterArn"]
        region, cluster_id = region_from_arn(arn), arn.split(":")[-1]
        sync = member.get("SynchronizationStatus", "connected")
        if sync != "connected":
            raise Unhealthy(f"{cluster_id} ({region}) is {sync}")
        # The lag is published in the secondary's own region.
        lag = latest_datapoint(
            clients.get("cloudwatch", region),
            "AWS/RDS",
            "AuroraGlobalDBReplicationLag",
            {"DBClusterIdentifier": cluster_id},
        )
        if lag is None:
            raise Unhealthy(f"{cluster_id} ({region}) has no AuroraGlobalDBReplicationLag datapoint in 5 minutes")
        worst = max(worst, lag)
        parts.append(f"{cluster_id} ({region}) lag {lag:.0f} ms")
    detail = "; ".join(parts)
    if worst > int(check["max_lag_ms"]):
        raise Unhealthy(f"{detail}; bound {check['max_lag_ms']} ms")
    return detail


PROBES = {
    "route53": probe_route53,
    "target_group": probe_target_group,
    "ecs_service": probe_ecs_service,
    "http": probe_http,
    "cloudwatch_alarm": probe_cloudwatch_alarm,
    "aurora_replication_lag": probe_aurora_replication_lag,
}


def poll_once(clients, check):
    """(healthy, detail) for one check; GateError escapes (input or a missing resource)."""
    try:
        return True, PROBES[check["type"]](clients, check)
    except Unhealthy as e:
        return False, str(e)
    except is_boto3_error_code(list(NOT_FOUND)) as e:
        raise GateError(f"{check['name']}: {e}") from None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        return False, f"API error: {e}"


def run_gate(checks, poll, expect, consecutive, interval, timeout, clock=time.monotonic, sleep=time.sleep):
    """Poll every check until each has `consecutive` polls in the expected state. Returns (passed, report, polls, elapsed)."""
    want = expect == "healthy"
    started = clock()
    report = [
        {
            "name": c["name"],
            "type": c["type"],
            "healthy": None,
            "passed": False,
            "streak": 0,
            "detail": "not polled",
            "passed_after_s": None,
        }
        for c in checks
    ]
    polls = 0

    def poll_round():
        nonlocal polls
        polls += 1
        for check, entry in zip(checks, report):  # noqa: B905 - same length by construction; strict= needs 3.10
            if entry["passed"]:
                continue
            healthy, detail = poll(check)
            entry.update(healthy=healthy, detail=detail)
            entry["streak"] = entry["streak"] + 1 if healthy == want else 0
            if entry["streak"] >= consecutive:
                entry["passed"] = True
                entry["passed_after_s"] = round(clock() - started, 2)
        return all(e["passed"] for e in report)

    try:
        # A fixed interval, the user's: no backoff, no jitter (a streak is N polls `interval` apart).
        wait_until(poll_round, bool, "the checks", timeout, delay=interval, jitter=0, clock=clock, sleep=sleep)
        passed = True
    except WaitTimeout:
        passed = False
    return passed, report, polls, round(clock() - started, 2)


def failure_message(report, expect, consecutive, timeout):
    waiting = [e for e in report if not e["passed"]]
    lines = "; ".join(f"{e['name']}: {e['detail']} (streak {e['streak']}/{consecutive})" for e in waiting)
    return (
        f"{len(waiting)} of {len(report)} check(s) were not {expect} for {consecutive} consecutive polls within "
        f"{timeout} s - {lines}. Fix what they show, or raise timeout if the change is still in progress"
    )


def main():
    check_spec = dict(
        name=dict(type="str"),
        type=dict(type="str", required=True, choices=list(REQUIRED)),
        health_check_id=dict(type="str"),
        target_group_arn=dict(type="str"),
        min_healthy=dict(type="int", default=DEFAULTS["min_healthy"]),
        cluster=dict(type="str"),
        service=dict(type="str"),
        url=dict(type="str"),
        status_codes=dict(type="list", elements="int", default=DEFAULTS["status_codes"]),
        body_contains=dict(type="str"),
        max_latency_ms=dict(type="int"),
        request_timeout=dict(type="float", default=DEFAULTS["request_timeout"]),
        validate_certs=dict(type="bool", default=DEFAULTS["validate_certs"]),
        alarm_name=dict(type="str"),
        global_cluster_identifier=dict(type="str"),
        max_lag_ms=dict(type="int", default=DEFAULTS["max_lag_ms"]),
        region=dict(type="str"),
    )
    module = AnsibleAWSModule(
        argument_spec=dict(
            checks=dict(type="list", elements="dict", required=True, options=check_spec),
            expect=dict(type="str", default="healthy", choices=["healthy", "unhealthy"]),
            consecutive=dict(type="int", default=3),
            interval=dict(type="float", default=5),
            timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["consecutive"] < 1 or p["interval"] < 0 or p["timeout"] < 0:
            raise GateError("consecutive must be at least 1, interval and timeout not negative")
        checks = validate(p["checks"])
        for check in checks:
            check.setdefault("region", module.region)
            if check["type"] in ("ecs_service", "cloudwatch_alarm", "aurora_replication_lag") and not check["region"]:
                raise GateError(f"{check['name']}: no region: set the check's region or the module's region")
        clients = ClientCache(
            lambda service, region: module.client(
                service, region=region, retry_decorator=AWSRetry.jittered_backoff(retries=3, delay=1, max_delay=5)
            )
        )
        passed, report, polls, elapsed = run_gate(
            checks, lambda c: poll_once(clients, c), p["expect"], p["consecutive"], p["interval"], p["timeout"]
        )
    except GateError as e:
        module.fail_json(msg=f"health_check_gate: {e}", passed=False)
    result = dict(changed=False, passed=passed, checks=report, polls=polls, elapsed_s=elapsed)
    if not passed:
        module.fail_json(msg=failure_message(report, p["expect"], p["consecutive"], p["timeout"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

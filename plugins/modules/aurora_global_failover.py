#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: aurora_global_failover
short_description: Move the writer of an Aurora global database - planned switchover, unplanned failover, or detach
author:
  - hawa platform team (!UNKNOWN)
version_added: 1.0.0
description:
  - V(switchover) (C(SwitchoverGlobalCluster)) - a planned move with no data loss; Aurora waits for the target to
    catch up, then swaps the roles. Every member must be connected, the engine versions equal and the target's
    replication lag under O(max_replication_lag_ms).
  - V(failover) (C(FailoverGlobalCluster) with C(AllowDataLoss)) - the unplanned move when the writer's region is
    down; the target is promoted at once and writes not yet replicated are lost. Requires O(allow_data_loss=true).
    Only the region in O(region) is called, never the failed writer's.
  - V(detach) (C(RemoveFromGlobalCluster)) - the target leaves the global database and becomes a standalone writer.
  - Idempotent - when the target already is the writer (or, for V(detach), no longer a member) nothing changes. When
    an operation toward the same target is already running (an interrupted earlier run), the module waits for it
    instead of starting another; an operation toward a different target is refused.
  - Pre-flight checks run before any change, also in check mode. Every failure says what was checked, what was
    found and what to do.
options:
  global_cluster_identifier:
    description: The global cluster.
    type: str
    required: true
  mode:
    description: The operation.
    type: str
    required: true
    choices: [switchover, failover, detach]
  target_cluster:
    description:
      - The member cluster that becomes the writer (or leaves, for V(detach)) - its ARN or identifier.
      - Either this or O(target_region).
    type: str
  target_region:
    description: The region of that member cluster (each region holds one member of the global database).
    type: str
  allow_data_loss:
    description: Must be V(true) for V(failover) - the acknowledgement that writes not yet replicated are lost.
    type: bool
    default: false
  max_replication_lag_ms:
    description: V(switchover) refuses to start when the target's C(AuroraGlobalDBReplicationLag) is above this.
    type: int
    default: 1000
  wait:
    description: Wait until the operation has finished (the target is the writer, no operation runs).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 1800
notes:
  - Polls C(DescribeGlobalClusters) with a backoff from 1 to 10 seconds and records every change it observes (the
    operation's state, the writer, each member's synchronization status) in RV(timeline).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Planned switchover to us-west-2, no data loss
  aurora_global_failover:
    region: us-west-2
    global_cluster_identifier: hawa-production-global
    mode: switchover
    target_region: us-west-2
    max_replication_lag_ms: 1000

- name: us-east-1 is down - promote us-west-2, accepting the loss of unreplicated writes
  aurora_global_failover:
    region: us-west-2
    global_cluster_identifier: hawa-production-global
    mode: failover
    target_region: us-west-2
    allow_data_loss: true
  register: failover

- name: What would a switchover do (pre-flight checks only)
  aurora_global_failover:
    region: us-east-1
    global_cluster_identifier: hawa-production-global
    mode: switchover
    target_region: us-east-1
  check_mode: true
"""

RETURN = r"""
mode:
  description: The operation asked for.
  returned: always
  type: str
target_cluster_arn:
  description: The target member's ARN.
  returned: always
  type: str
previous_writer_arn:
  description: The writer before the operation (empty if there was none).
  returned: always
  type: str
writer_cluster_arn:
  description: The writer at the end.
  returned: always
  type: str
resumed:
  description: Whether an operation toward the same target was already running and the module waited for it.
  returned: always
  type: bool
preflight:
  description: The checks made before any change, each with C(check), C(found) and C(ok).
  returned: always
  type: list
  elements: dict
topology:
  description: The members at the end, each with C(arn), C(region), C(is_writer) and C(synchronization_status).
  returned: always
  type: list
  elements: dict
timeline:
  description: Every observed change, each with C(at) (UTC ISO 8601), C(elapsed_s) and C(event).
  returned: always
  type: list
  elements: dict
replication_lag_ms:
  description: The target's last C(AuroraGlobalDBReplicationLag) seen before the operation (milliseconds), or null.
  returned: always
  type: float
rpo_lag_ms:
  description:
    - V(failover) only - the target's last C(AuroraGlobalDBRPOLag) in milliseconds, how far its replayed commits trail
      the writer's last commit - the estimate of the data lost. Null when unknown or for other modes.
  returned: always
  type: float
duration_s:
  description: Seconds from the request to the end of the wait.
  returned: always
  type: float
"""

import contextlib
import datetime
import time

with contextlib.suppress(ImportError):  # protected by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.arn import region_from_arn
from ansible_collections.hawa.platform.plugins.module_utils.clients import ClientCache
from ansible_collections.hawa.platform.plugins.module_utils.cloudwatch import latest_datapoint
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, wait_until

MIN_POLL_S = 1.0
MAX_POLL_S = 10.0
API = {
    "switchover": "SwitchoverGlobalCluster",
    "failover": "FailoverGlobalCluster",
    "detach": "RemoveFromGlobalCluster",
}


class FailoverError(Exception):
    """What was checked, what was found, what to do: main() turns it into fail_json."""


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - modules also run on Pythons before 3.11


def members(cluster):
    return (cluster or {}).get("GlobalClusterMembers", [])


def writer_of(cluster):
    return next((m["DBClusterArn"] for m in members(cluster) if m.get("IsWriter")), "")


def find_target(cluster, target_cluster, target_region):
    """The member ARN named by an ARN, an identifier or a region; FailoverError when none or several match."""
    candidates = members(cluster)
    if target_cluster:
        found = [
            m["DBClusterArn"]
            for m in candidates
            if m["DBClusterArn"] == target_cluster or m["DBClusterArn"].split(":")[-1] == target_cluster
        ]
    else:
        found = [m["DBClusterArn"] for m in candidates if region_from_arn(m["DBClusterArn"]) == target_region]
    if len(found) == 1:
        return found[0]
    wanted = target_cluster or f"the member in {target_region}"
    listed = ", ".join(m["DBClusterArn"] for m in candidates) or "none"
    raise FailoverError(
        f"checked the members of {cluster['GlobalClusterIdentifier']} for {wanted}: "
        f"{'found several' if found else 'it is not a member'} (members: {listed}); "
        "name a member cluster with target_cluster or target_region"
    )


def topology(cluster):
    return [
        {
            "arn": m["DBClusterArn"],
            "region": region_from_arn(m["DBClusterArn"]),
            "is_writer": bool(m.get("IsWriter")),
            "synchronization_status": m.get("SynchronizationStatus", "connected" if not m.get("IsWriter") else ""),
        }
        for m in members(cluster)
    ]


def snapshot(cluster):
    """What the timeline compares between polls."""
    if cluster is None:
        return ("absent",)
    state = cluster.get("FailoverState") or {}
    return (
        state.get("Status", ""),
        writer_of(cluster),
        tuple(sorted((m["DBClusterArn"], m.get("SynchronizationStatus", "")) for m in members(cluster))),
    )


def describe_change(before, after):
    if after == ("absent",):
        return "global cluster gone"
    status, writer, syncs = after
    parts = []
    if before is None or before[0] != status:
        parts.append(f"operation {status.lower() or 'finished'}" if status or before else "no operation running")
    if before is None or before[1] != writer:
        parts.append(f"writer {writer.split(':')[-1] or 'none'}")
    old_syncs = dict(before[2]) if before else {}
    for arn, sync in syncs:
        if old_syncs.get(arn) != sync and sync:
            parts.append(f"{arn.split(':')[-1]} {sync}")
    gone = set(old_syncs) - {arn for arn, _ in syncs}
    parts += [f"{arn.split(':')[-1]} left the global cluster" for arn in sorted(gone)]
    return "; ".join(parts) or "no change"


def finished(mode, cluster, target):
    if mode == "detach":
        return cluster is None or target not in [m["DBClusterArn"] for m in members(cluster)]
    if cluster is None or cluster.get("FailoverState"):
        return False
    if writer_of(cluster) != target:
        return False
    # A switchover ends with the old writer following the new one; a failover leaves it to rejoin later.
    if mode == "switchover":
        return all(
            m.get("SynchronizationStatus", "connected") == "connected"
            for m in members(cluster)
            if not m.get("IsWriter")
        )
    return True


class Failover:
    def __init__(self, module, clients=None, clock=time.monotonic, sleep=time.sleep):
        self.module = module
        self.p = module.params
        self.gid = self.p["global_cluster_identifier"]
        # Clients are made on first use: a failover calls only the region that is up.
        self.clients = ClientCache(self._make_client, clients)
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.timeline = []
        self.preflight = []
        self.rpo_lag_ms = None
        self._last = None

    def _make_client(self, service, region):
        return self.module.client(
            service,
            region=region,
            retry_decorator=AWSRetry.jittered_backoff(
                retries=5, catch_extra_error_codes=["InvalidGlobalClusterStateFault"]
            ),
        )

    @property
    def region(self):
        return self.module.region

    def describe(self):
        try:
            found = self.clients.get("rds", self.region).describe_global_clusters(
                aws_retry=True, GlobalClusterIdentifier=self.gid
            )["GlobalClusters"]
        except is_boto3_error_code("GlobalClusterNotFoundFault"):
            return None
        return next((c for c in found if c["GlobalClusterIdentifier"] == self.gid), None)

    def observe(self, cluster):
        now = snapshot(cluster)
        if now != self._last:
            self.timeline.append(
                {
                    "at": utcnow().isoformat(timespec="milliseconds"),
                    "elapsed_s": round(self.clock() - self.started, 2),
                    "event": describe_change(self._last, now),
                }
            )
            self._last = now

    def check(self, name, found, ok, fix):
        self.preflight.append({"check": name, "found": found, "ok": ok})
        if not ok:
            raise FailoverError(f"pre-flight check '{name}' failed: found {found}; {fix}")

    def replication_lag(self, target, metric="AuroraGlobalDBReplicationLag"):
        """The target's latest datapoint of metric (ms) in its own region, or None (also when unreadable)."""
        try:
            return latest_datapoint(
                self.clients.get("cloudwatch", region_from_arn(target)),
                "AWS/RDS",
                metric,
                {"DBClusterIdentifier": target.split(":")[-1]},
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return None

    def engine_versions(self, cluster):
        versions = {}
        for member in members(cluster):
            arn = member["DBClusterArn"]
            found = self.clients.get("rds", region_from_arn(arn)).describe_db_clusters(
                aws_retry=True, DBClusterIdentifier=arn
            )["DBClusters"]
            versions[arn.split(":")[-1]] = found[0]["EngineVersion"] if found else "unknown"
        return versions

    def run_preflight(self, cluster, target, writer):
        mode = self.p["mode"]
        lag = None
        if mode == "failover":
            self.check(
                "allow_data_loss acknowledged",
                f"allow_data_loss={self.p['allow_data_loss']}",
                self.p["allow_data_loss"],
                "a failover loses the writes not yet replicated: set allow_data_loss: true, or use mode: switchover "
                "while the writer's region is up",
            )
            # The RPO lag is what a failover loses: how far the target's replayed commits trail the
            # writer's last commit (the replication lag keeps growing while the writer is unreachable).
            self.rpo_lag_ms = self.replication_lag(target, "AuroraGlobalDBRPOLag")
            lag = self.replication_lag(target)
        if mode == "switchover":
            not_connected = [
                f"{m['DBClusterArn'].split(':')[-1]} {m.get('SynchronizationStatus')}"
                for m in members(cluster)
                if not m.get("IsWriter") and m.get("SynchronizationStatus", "connected") != "connected"
            ]
            self.check(
                "every secondary connected",
                ", ".join(not_connected) or "all connected",
                not not_connected,
                "wait until the secondaries have resynchronised (or use mode: failover if the writer's region is down)",
            )
            self.check("a writer to switch from", writer or "no writer", bool(writer), "use mode: failover")
            versions = self.engine_versions(cluster)
            self.check(
                "engine versions match",
                ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
                len(set(versions.values())) == 1,
                "upgrade the members to the same engine version first",
            )
            lag = self.replication_lag(target)
            bound = self.p["max_replication_lag_ms"]
            self.check(
                "replication lag within bound",
                "no AuroraGlobalDBReplicationLag datapoint in 5 minutes"
                if lag is None
                else f"{lag:.0f} ms (bound {bound} ms)",
                lag is not None and lag <= bound,
                "wait for the lag to drop (write load, network) or raise max_replication_lag_ms",
            )
        return lag

    def start(self, target):
        rds = self.clients.get("rds", self.region)
        mode = self.p["mode"]
        if mode == "switchover":
            rds.switchover_global_cluster(GlobalClusterIdentifier=self.gid, TargetDbClusterIdentifier=target)
        elif mode == "failover":
            rds.failover_global_cluster(
                GlobalClusterIdentifier=self.gid, TargetDbClusterIdentifier=target, AllowDataLoss=True
            )
        else:
            rds.remove_from_global_cluster(GlobalClusterIdentifier=self.gid, DbClusterIdentifier=target)
        self.timeline.append(
            {
                "at": utcnow().isoformat(timespec="milliseconds"),
                "elapsed_s": round(self.clock() - self.started, 2),
                "event": f"{API[mode]} requested for {target.split(':')[-1]}",
            }
        )

    def _observed(self):
        cluster = self.describe()
        self.observe(cluster)
        return cluster

    def wait(self, target):
        """The global cluster once the operation toward target has finished; wait_timeout counts from the start."""
        try:
            return wait_until(
                self._observed,
                lambda cluster: finished(self.p["mode"], cluster, target),
                f"the {self.p['mode']} to {target.split(':')[-1]}",
                self.started + self.p["wait_timeout"] - self.clock(),
                delay=MIN_POLL_S,
                max_delay=MAX_POLL_S,
                clock=self.clock,
                sleep=self.sleep,
            )
        except WaitTimeout as e:
            cluster = e.last
            state = (cluster or {}).get("FailoverState") or {}
            raise FailoverError(
                f"waited {self.p['wait_timeout']} s for the {self.p['mode']} to {target.split(':')[-1]} to finish: "
                f"found writer {writer_of(cluster).split(':')[-1] or 'none'}, operation "
                f"{state.get('Status', 'none')}; check the RDS events of {self.gid}, then re-run (the module "
                "resumes waiting for the same target) or raise wait_timeout"
            ) from None

    def run(self):
        p = self.p
        mode = p["mode"]
        cluster = self.describe()
        if cluster is None:
            raise FailoverError(
                f"checked that global cluster {self.gid} exists (DescribeGlobalClusters in {self.region}): not found; "
                "check global_cluster_identifier and region"
            )
        self.observe(cluster)
        writer = writer_of(cluster)
        result = dict(mode=mode, previous_writer_arn=writer, resumed=False, replication_lag_ms=None)
        if mode == "detach" and not (
            (
                p["target_cluster"]
                and any(
                    p["target_cluster"] in (m["DBClusterArn"], m["DBClusterArn"].split(":")[-1])
                    for m in members(cluster)
                )
            )
            or (
                p["target_region"]
                and any(region_from_arn(m["DBClusterArn"]) == p["target_region"] for m in members(cluster))
            )
        ):
            # Already detached: nothing to do.
            return self.result(cluster, result, changed=False, target=p["target_cluster"] or "")
        target = find_target(cluster, p["target_cluster"], p["target_region"])
        state = cluster.get("FailoverState") or {}
        if state:
            if state.get("ToDbClusterArn") != target:
                raise FailoverError(
                    f"checked for operations in flight: a {state.get('Status')} operation from "
                    f"{state.get('FromDbClusterArn', '?').split(':')[-1]} to {state.get('ToDbClusterArn', '?').split(':')[-1]} "
                    "is running; wait for it to finish, then run again"
                )
            result["resumed"] = True
            if self.module.check_mode or not p["wait"]:
                return self.result(cluster, result, changed=False, target=target)
            return self.result(self.wait(target), result, changed=False, target=target)
        if mode != "detach" and writer == target:
            return self.result(cluster, result, changed=False, target=target)
        result["replication_lag_ms"] = self.run_preflight(cluster, target, writer)
        if self.module.check_mode:
            return self.result(cluster, result, changed=True, target=target)
        self.start(target)
        final = self.wait(target) if p["wait"] else self.describe()
        return self.result(final, result, changed=True, target=target)

    def result(self, cluster, result, changed, target):
        return dict(
            result,
            changed=changed,
            target_cluster_arn=target,
            writer_cluster_arn=writer_of(cluster),
            topology=topology(cluster),
            timeline=self.timeline,
            preflight=self.preflight,
            duration_s=round(self.clock() - self.started, 2),
            rpo_lag_ms=self.rpo_lag_ms,
        )


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            global_cluster_identifier=dict(type="str", required=True),
            mode=dict(type="str", required=True, choices=["switchover", "failover", "detach"]),
            target_cluster=dict(type="str"),
            target_region=dict(type="str"),
            allow_data_loss=dict(type="bool", default=False),
            max_replication_lag_ms=dict(type="int", default=1000),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=1800),
        ),
        required_one_of=[("target_cluster", "target_region")],
        mutually_exclusive=[("target_cluster", "target_region")],
        supports_check_mode=True,
    )
    if not module.region:
        module.fail_json(msg="aurora_global_failover: set region (for a failover, a region that is up - the target's)")
    operation = Failover(module)
    try:
        result = operation.run()
    except FailoverError as e:
        module.fail_json(
            msg=f"aurora_global_failover {module.params['mode']} of {module.params['global_cluster_identifier']}: {e}",
            preflight=operation.preflight,
            timeline=operation.timeline,
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(
            e,
            msg=f"aurora_global_failover {module.params['mode']} of {module.params['global_cluster_identifier']} failed "
            f"calling AWS in {module.region}",
            timeline=operation.timeline,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: failover_lock
short_description: Take or release the one lock every run that moves the database writer holds
version_added: 1.0.0
description:
  - The automatic failover controller and C(failover.yml) (every mode, either direction) must never move
    the writer at the same time. Each takes this lock before it changes anything and releases it at the end.
  - The lock is an SSM parameter (type String, standard tier) holding who holds it, since when, for which run
    and until when (a lease, so a run that died cannot hold it forever). Taking it is a conditional create
    (C(PutParameter) without C(Overwrite) fails with C(ParameterAlreadyExists)); a lease that has run out is
    taken over through a second conditional create (C(<name>-takeover)), so two runs can never both take
    over the same expired lease. Nothing exists while nobody holds the lock; nothing needs to be deployed.
  - Taken in every region of O(regions) in a fixed (sorted) order, so two runs that both need both regions
    cannot each hold one and wait for the other. When one region is dark (an unplanned failover), only the
    surviving regions are named and the others are given in O(absent_regions); the survivors' lock is the
    authority, and the lock records that it was taken without them.
  - When the lock is held by another run, the task fails before any change, naming the holder, since when,
    its run and when its lease ends. A run that holds it may take it again (its lease is renewed).
author:
  - hawa platform team (!UNKNOWN)
options:
  name:
    description: The parameter's name, the same in every region (e.g. C(/hawa/production/failover-lock)).
    type: str
    required: true
  regions:
    description: The regions to take (or release) the lock in; taken in sorted order.
    type: list
    elements: str
    required: true
  absent_regions:
    description: Regions that are not called (dark); recorded in the lock as taken without them.
    type: list
    elements: str
    default: []
  state:
    description: C(present) takes the lock, C(absent) releases it (only if this run holds it).
    type: str
    choices: [present, absent]
    default: present
  holder:
    description: Who takes the lock, for people (e.g. C(alice@bastion), C(automatic failover controller)).
    type: str
  run_id:
    description: This run's identity (an AWX job id, the controller's decision time); the release needs the same.
    type: str
    required: true
  purpose:
    description: What the run does (e.g. C(Unplanned failover to us-west-2)).
    type: str
    default: ""
  lease_seconds:
    description: How long the lock holds without its holder (a run that died); renewed by taking it again.
    type: int
    default: 3600
notes:
  - The regions called are O(regions); the fragment's O(region) is not used.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Take the failover lock (both regions answer)
  failover_lock:
    name: /hawa/production/failover-lock
    regions: [us-east-1, us-west-2]
    holder: "alice@bastion"
    run_id: "awx-job-1234"
    purpose: Planned switchover to us-west-2

- name: Take it in the surviving region only (us-east-1 is dark)
  failover_lock:
    name: /hawa/production/failover-lock
    regions: [us-west-2]
    absent_regions: [us-east-1]
    holder: automatic failover controller
    run_id: controller-1764698123.5

- name: Release it
  failover_lock:
    name: /hawa/production/failover-lock
    regions: [us-west-2]
    run_id: controller-1764698123.5
    state: absent
"""

RETURN = r"""
lock:
  description: The lock as this run holds it (present), or as it was found (absent; empty when nobody held it).
  returned: always
  type: dict
  contains:
    holder:
      description: Who holds it.
      type: str
    run_id:
      description: The holding run.
      type: str
    purpose:
      description: What the holding run does.
      type: str
    since:
      description: When it was taken (UTC, ISO 8601).
      type: str
    expires:
      description: When its lease ends (UTC, ISO 8601).
      type: str
    regions:
      description: Where it is held.
      type: list
      elements: str
    without:
      description: Regions it was taken without (dark, not called).
      type: list
      elements: str
regions:
  description: Per region, what the task did (C(taken), C(renewed), C(taken over), C(released), C(not held), C(held by another run)).
  returned: always
  type: dict
"""

import datetime
import json

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.clients import ClientCache

# A takeover marker whose taker died is ignored after this long.
TAKEOVER_STALE_S = 120


class Held(Exception):
    """The lock is held by another run: carries the region and the holder's record."""

    def __init__(self, region, record):
        super().__init__(region)
        self.region = region
        self.record = record


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - modules also run on Pythons before 3.11


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)  # noqa: UP017


def expired(record, moment):
    try:
        return parse_iso(record["expires"]) <= moment
    except (KeyError, TypeError, ValueError):
        return True  # a lock nobody can read the lease of protects nothing: treat it as run out


def read(ssm, name):
    """(record, version) of the parameter, or (None, None) when it does not exist."""
    try:
        param = ssm.get_parameter(aws_retry=True, Name=name)["Parameter"]
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "ParameterNotFound":
            return None, None
        raise
    try:
        record = json.loads(param["Value"])
    except ValueError:
        record = {"holder": "unreadable lock value", "raw": param["Value"][:200]}
    return record, param["Version"]


def create(ssm, name, record, overwrite=False):
    """Conditional create (overwrite=False): True when written, False when the parameter already exists."""
    try:
        ssm.put_parameter(
            aws_retry=True, Name=name, Value=json.dumps(record, sort_keys=True), Type="String", Overwrite=overwrite
        )
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "ParameterAlreadyExists":
            return False
        raise
    return True


def delete(ssm, name):
    try:
        ssm.delete_parameter(aws_retry=True, Name=name)
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] != "ParameterNotFound":
            raise


def take_over(ssm, name, seen_version, record, moment):
    """Replace an expired lease (version seen_version): only the run whose marker create succeeds may."""
    marker = name + "-takeover"
    if not create(ssm, marker, {"run_id": record["run_id"], "at": iso(moment), "version": seen_version}):
        mark, _version = read(ssm, marker)
        if mark is not None and (moment - parse_iso(mark.get("at", iso(moment)))).total_seconds() < TAKEOVER_STALE_S:
            return False  # another run is taking it over right now
        delete(ssm, marker)  # its taker died mid-takeover
        if not create(ssm, marker, {"run_id": record["run_id"], "at": iso(moment), "version": seen_version}):
            return False
    try:
        # Read again after holding the marker: a run that took it over before us has written by now.
        _current, version = read(ssm, name)
        if version is not None and version != seen_version:
            return False
        return create(ssm, name, record, overwrite=version is not None)
    finally:
        delete(ssm, marker)


def acquire_region(ssm, name, record, moment):
    """Take the lock in one region: ('taken' | 'renewed' | 'taken over', record written); raise Held otherwise."""
    for _attempt in range(3):
        if create(ssm, name, record):
            return "taken", record
        current, version = read(ssm, name)
        if current is None:
            continue  # released between our create and our read: try again
        if current.get("run_id") == record["run_id"]:
            renewed = dict(record, since=current.get("since", record["since"]))
            create(ssm, name, renewed, overwrite=True)
            return "renewed", renewed
        if not expired(current, moment):
            raise Held(None, current)
        if take_over(ssm, name, version, record, moment):
            return "taken over", record
    current, _version = read(ssm, name)
    raise Held(None, current or {"holder": "another run", "since": "?"})


def acquire(clients, p, moment, check_mode):
    regions = sorted(set(p["regions"]))
    absent = sorted(set(p["absent_regions"]) - set(regions))
    record = {
        "holder": p["holder"],
        "run_id": p["run_id"],
        "purpose": p["purpose"],
        "since": iso(moment),
        "expires": iso(moment + datetime.timedelta(seconds=p["lease_seconds"])),
        "regions": regions,
        "without": absent,
    }
    done = {}
    for region in regions:
        ssm = clients.get("ssm", region)
        try:
            if check_mode:
                current, _version = read(ssm, p["name"])
                if current and current.get("run_id") != p["run_id"] and not expired(current, moment):
                    raise Held(region, current)
                done[region] = "would take"
                continue
            done[region], written = acquire_region(ssm, p["name"], record, moment)
            # A renewal keeps the time the run first took the lock.
            record["since"] = min(record["since"], written["since"])
        except Held as held:
            held.region = region
            # Let go of what this run took in the regions before (the fixed order makes this rare).
            for taken in [r for r, what in done.items() if what in ("taken", "taken over")]:
                release_region(clients.get("ssm", taken), p["name"], p["run_id"])
            raise
    return record, done


def release_region(ssm, name, run_id):
    current, _version = read(ssm, name)
    if current is None:
        return "not held", None
    if current.get("run_id") != run_id:
        return "held by another run", current
    delete(ssm, name)
    return "released", current


def held_message(p, held):
    r = held.record
    return (
        f"failover lock {p['name']} in {held.region} is held by {r.get('holder', '?')} since {r.get('since', '?')} "
        f"(run {r.get('run_id', '?')}{': ' + r['purpose'] if r.get('purpose') else ''}; lease until {r.get('expires', '?')}"
        f"{', taken without ' + ', '.join(r['without']) if r.get('without') else ''}). Nothing was changed. "
        "Wait for that run to finish, or for its lease to end if it died, then run this again."
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            regions=dict(type="list", elements="str", required=True),
            absent_regions=dict(type="list", elements="str", default=[]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            holder=dict(type="str"),
            run_id=dict(type="str", required=True),
            purpose=dict(type="str", default=""),
            lease_seconds=dict(type="int", default=3600),
        ),
        required_if=[["state", "present", ["holder"]]],
        supports_check_mode=True,
    )
    p = module.params
    if not p["regions"]:
        module.fail_json(msg="regions is empty: name at least one region to take the failover lock in")
    if p["lease_seconds"] < 60:
        module.fail_json(msg=f"lease_seconds={p['lease_seconds']} is too short for any run: give 60 or more")
    clients = ClientCache(
        lambda service, region: module.client(service, region=region, retry_decorator=AWSRetry.jittered_backoff())
    )
    if p["state"] == "absent":
        results, found = {}, {}
        for region in sorted(set(p["regions"])):
            try:
                if module.check_mode:
                    current, _version = read(clients.get("ssm", region), p["name"])
                    mine = current is not None and current.get("run_id") == p["run_id"]
                    results[region], current = ("would release" if mine else "not held"), current
                else:
                    results[region], current = release_region(clients.get("ssm", region), p["name"], p["run_id"])
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg=f"Failed to release failover lock {p['name']} in {region}")
            if current:
                found = current
        changed = any(what in ("released", "would release") for what in results.values())
        module.exit_json(changed=changed, lock=found, regions=results)
    try:
        record, done = acquire(clients, p, now_utc(), module.check_mode)
    except Held as held:
        module.fail_json(msg=held_message(p, held), lock=held.record, holder=held.record.get("holder"))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to take failover lock {p['name']}")
    module.exit_json(changed=True, lock=record, regions=done)


if __name__ == "__main__":
    main()

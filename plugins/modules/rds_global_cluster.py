#!/usr/bin/python

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: rds_global_cluster
short_description: Create, describe or delete an Aurora global cluster
author:
  - hawa platform team (!UNKNOWN)
version_added: 1.0.0
description:
  - Creates an Aurora global database (C(CreateGlobalCluster)), either from an existing regional cluster that
    becomes its primary (writer) or empty with an engine, changes its deletion protection
    (C(ModifyGlobalCluster)) and deletes it (C(DeleteGlobalCluster)), optionally detaching the remaining
    member clusters first (C(RemoveFromGlobalCluster)) - secondaries first, the writer last.
  - Secondary clusters join with M(amazon.aws.rds_cluster) and its
    O(amazon.aws.rds_cluster#module:global_cluster_identifier) option. amazon.aws has only
    M(amazon.aws.rds_global_cluster_info) for global clusters, hence this module.
  - Idempotent, supports check mode. The result describes the global cluster (or its absence) in every state,
    so the module also serves as a describe call with O(state=present) in check mode.
options:
  global_cluster_identifier:
    description:
      - Identifier of the global cluster (1 to 255 letters, digits and hyphens, starting with a letter).
      - AWS stores it in lower case.
    required: true
    type: str
    aliases: ['id']
  state:
    description:
      - V(present) creates the global cluster if it does not exist and applies O(deletion_protection).
      - V(absent) deletes it. Deleting a global cluster that does not exist is not a change.
    choices: ['present', 'absent']
    default: 'present'
    type: str
  source_db_cluster_identifier:
    description:
      - ARN of the regional DB cluster that becomes the primary (writer) of a new global cluster.
      - Used only on creation. When the global cluster exists and this cluster is not one of its members,
        the module warns and changes nothing (after a detach, re-adding a cluster is a rebuild, not a setting).
      - Mutually exclusive with O(engine), which AWS takes from the source cluster.
    type: str
  engine:
    description:
      - Engine of an empty global cluster (for example V(aurora-postgresql)); required to create one without
        O(source_db_cluster_identifier). When the global cluster exists, a different engine is an error.
    type: str
  engine_version:
    description:
      - Engine version of an empty global cluster. Used only on creation; upgrades are not managed here.
    type: str
  storage_encrypted:
    description:
      - Whether an empty global cluster is encrypted. A global cluster made from a source cluster inherits the
        source's encryption. Cannot change after creation; a difference is an error.
    type: bool
  deletion_protection:
    description:
      - Whether the global cluster is protected from deletion. Omit to leave it as it is.
      - With O(state=absent), V(false) lifts the protection before deleting; a protected global cluster is
        never deleted otherwise.
    type: bool
  remove_members:
    description:
      - With O(state=absent), detach the member clusters still in the global cluster before deleting it -
        every secondary first, then the writer. Detached clusters keep running as standalone clusters.
      - When V(false) (the default) and members remain, the module fails and names them.
    type: bool
    default: false
  wait:
    description:
      - Wait until the global cluster is C(available) after a change, until each detached member has left,
        and until a deleted global cluster is gone.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait for each of those conditions.
    type: int
    default: 1800
notes:
  - AWS has no waiter for global clusters; the module polls C(DescribeGlobalClusters) about every 5 seconds (the
    first check is immediate, the last one at O(wait_timeout)).
  - Failover and switchover are operations, not states, and are not done by this module.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Make the primary cluster the writer of a new global cluster
  rds_global_cluster:
    region: us-east-1
    global_cluster_identifier: hawa-production-global
    source_db_cluster_identifier: "{{ primary_cluster.db_cluster_arn }}"
    deletion_protection: true

- name: Describe it, changing nothing (check mode)
  rds_global_cluster:
    region: us-east-1
    global_cluster_identifier: hawa-production-global
  check_mode: true
  register: global_cluster

- name: Detach every member (secondaries first) and delete the global cluster
  rds_global_cluster:
    region: us-east-1
    global_cluster_identifier: hawa-production-global
    state: absent
    remove_members: true
    deletion_protection: false
"""

RETURN = r"""
exists:
  description: Whether the global cluster exists after the task (in check mode, whether it would).
  returned: always
  type: bool
  sample: true
global_cluster:
  description: The global cluster as C(DescribeGlobalClusters) returns it, keys in snake case; C({}) when absent.
  returned: always
  type: dict
  contains:
    global_cluster_identifier:
      description: The identifier.
      type: str
      sample: hawa-production-global
    global_cluster_arn:
      description: The ARN (global clusters have no region in their ARN).
      type: str
      sample: arn:aws:rds::123456789012:global-cluster:hawa-production-global
    status:
      description: The status, for example C(available).
      type: str
    engine:
      description: The engine.
      type: str
    engine_version:
      description: The engine version.
      type: str
    storage_encrypted:
      description: Whether storage is encrypted.
      type: bool
    deletion_protection:
      description: Whether deletion protection is on.
      type: bool
    endpoint:
      description: The global writer endpoint, which always points at the current writer cluster.
      type: str
    global_cluster_members:
      description: Member clusters with C(db_cluster_arn), C(is_writer) and C(readers).
      type: list
      elements: dict
writer_cluster_arn:
  description: ARN of the member that is the writer; empty when there is none.
  returned: always
  type: str
member_cluster_arns:
  description: ARNs of every member cluster, the writer first.
  returned: always
  type: list
  elements: str
removed_members:
  description: ARNs of the clusters detached by O(remove_members) (or that would be, in check mode).
  returned: when O(state=absent)
  type: list
  elements: str
"""

import contextlib

with contextlib.suppress(ImportError):  # protected by AnsibleAWSModule
    import botocore

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.hawa.platform.plugins.module_utils.waiters import WaitTimeout, wait_until

POLL_DELAY_S = 5


class GlobalClusterError(Exception):
    """A failure whose message says what to change; main() turns it into fail_json."""


def members_in_removal_order(global_cluster):
    """Member ARNs with every secondary first and the writer last: AWS refuses to detach a writer that has readers."""
    members = (global_cluster or {}).get("GlobalClusterMembers", [])
    secondaries = [m["DBClusterArn"] for m in members if not m.get("IsWriter")]
    writers = [m["DBClusterArn"] for m in members if m.get("IsWriter")]
    return secondaries + writers


def writer_arn(global_cluster):
    for member in (global_cluster or {}).get("GlobalClusterMembers", []):
        if member.get("IsWriter"):
            return member["DBClusterArn"]
    return ""


def creation_params(identifier, source_arn, engine, engine_version, storage_encrypted, deletion_protection):
    """CreateGlobalCluster parameters; raises GlobalClusterError on a combination AWS would refuse."""
    if source_arn and engine:
        raise GlobalClusterError(
            "source_db_cluster_identifier and engine are mutually exclusive: "
            "AWS takes the engine from the source cluster"
        )
    if not source_arn and not engine:
        raise GlobalClusterError(
            f"global cluster {identifier} does not exist: set source_db_cluster_identifier (the primary cluster's ARN) "
            "or engine to create it"
        )
    if source_arn and not source_arn.startswith("arn:"):
        raise GlobalClusterError(f"source_db_cluster_identifier must be a DB cluster ARN, got {source_arn!r}")
    params = {"GlobalClusterIdentifier": identifier}
    if source_arn:
        params["SourceDBClusterIdentifier"] = source_arn
    else:
        params["Engine"] = engine
        if engine_version:
            params["EngineVersion"] = engine_version
    if storage_encrypted is not None and not source_arn:
        params["StorageEncrypted"] = storage_encrypted
    if deletion_protection is not None:
        params["DeletionProtection"] = deletion_protection
    return params


def conflicts(current, engine, storage_encrypted):
    """Settings that cannot change on an existing global cluster but differ from what was asked."""
    found = []
    if engine and current.get("Engine") != engine:
        found.append(f"engine is {current.get('Engine')!r}, not {engine!r}")
    if storage_encrypted is not None and bool(current.get("StorageEncrypted")) != storage_encrypted:
        found.append(f"storage_encrypted is {bool(current.get('StorageEncrypted'))}, not {storage_encrypted}")
    return found


def describe(client, identifier):
    try:
        found = client.describe_global_clusters(aws_retry=True, GlobalClusterIdentifier=identifier)["GlobalClusters"]
    except is_boto3_error_code("GlobalClusterNotFoundFault"):
        return None
    # Filtered by identifier, but compare anyway: an emulator or a future API change must not hand us another cluster.
    for cluster in found:
        if cluster.get("GlobalClusterIdentifier", "").lower() == identifier.lower():
            return cluster
    return None


def wait_for(client, identifier, what, done, timeout):
    """Poll until done(current) is true; current is None once the global cluster is gone (no botocore waiter)."""
    try:
        return wait_until(
            lambda: describe(client, identifier),
            done,
            f"'{identifier}' {what}",
            timeout,
            delay=POLL_DELAY_S,
            state=lambda current: current.get("Status") if current else "absent",
        )
    except WaitTimeout as e:
        raise GlobalClusterError(str(e)) from None


def _available(current):
    return current is not None and current.get("Status") == "available"


def result_for(current, changed, **extra):
    return dict(
        changed=changed,
        exists=current is not None,
        global_cluster=camel_dict_to_snake_dict(current, ignore_list=["TagList"]) if current else {},
        writer_cluster_arn=writer_arn(current),
        member_cluster_arns=list(reversed(members_in_removal_order(current))),
        **extra,
    )


def ensure_present(module, client):
    p = module.params
    identifier = p["global_cluster_identifier"]
    current = describe(client, identifier)
    if current is None:
        params = creation_params(
            identifier,
            p["source_db_cluster_identifier"],
            p["engine"],
            p["engine_version"],
            p["storage_encrypted"],
            p["deletion_protection"],
        )
        if module.check_mode:
            return result_for(None, True) | {"exists": True}
        client.create_global_cluster(aws_retry=True, **params)
        current = describe(client, identifier)
        if p["wait"]:
            current = wait_for(client, identifier, "to be available", _available, p["wait_timeout"])
        return result_for(current, True)

    problems = conflicts(current, p["engine"], p["storage_encrypted"])
    if problems:
        raise GlobalClusterError(
            f"global cluster {identifier} exists but {'; '.join(problems)}: these cannot change after creation "
            "(set the options to the existing values, or delete and recreate the global cluster)"
        )
    source = p["source_db_cluster_identifier"]
    if source and source not in members_in_removal_order(current):
        module.warn(
            f"global cluster {identifier} exists and {source} is not one of its members; nothing was changed "
            "(source_db_cluster_identifier is used only on creation)"
        )
    wanted = p["deletion_protection"]
    if wanted is None or bool(current.get("DeletionProtection")) == wanted:
        return result_for(current, False)
    if module.check_mode:
        return result_for(current | {"DeletionProtection": wanted}, True)
    client.modify_global_cluster(aws_retry=True, GlobalClusterIdentifier=identifier, DeletionProtection=wanted)
    current = describe(client, identifier)
    if p["wait"]:
        current = wait_for(client, identifier, "to be available", _available, p["wait_timeout"])
    return result_for(current, True)


def ensure_absent(module, client):
    p = module.params
    identifier = p["global_cluster_identifier"]
    current = describe(client, identifier)
    if current is None:
        return result_for(None, False, removed_members=[])
    members = members_in_removal_order(current)
    if members and not p["remove_members"]:
        raise GlobalClusterError(
            f"global cluster {identifier} still has member clusters {members}: remove them first "
            "(amazon.aws.rds_cluster with remove_from_global_db: true) or set remove_members: true"
        )
    protected = bool(current.get("DeletionProtection"))
    if protected and p["deletion_protection"] is not False:
        raise GlobalClusterError(
            f"global cluster {identifier} has deletion protection: set deletion_protection: false to lift it and delete"
        )
    if module.check_mode:
        return result_for(None, True, removed_members=members)
    if protected:
        client.modify_global_cluster(aws_retry=True, GlobalClusterIdentifier=identifier, DeletionProtection=False)
    for arn in members:
        client.remove_from_global_cluster(aws_retry=True, GlobalClusterIdentifier=identifier, DbClusterIdentifier=arn)
        if p["wait"]:
            wait_for(
                client,
                identifier,
                f"to release member {arn}",
                lambda c, arn=arn: c is None or arn not in members_in_removal_order(c),
                p["wait_timeout"],
            )
    try:
        client.delete_global_cluster(aws_retry=True, GlobalClusterIdentifier=identifier)
    except is_boto3_error_code("GlobalClusterNotFoundFault"):
        pass
    if p["wait"]:
        wait_for(client, identifier, "to be deleted", lambda c: c is None, p["wait_timeout"])
    return result_for(None, True, removed_members=members)


def main():
    argument_spec = dict(
        global_cluster_identifier=dict(type="str", required=True, aliases=["id"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        source_db_cluster_identifier=dict(type="str"),
        engine=dict(type="str"),
        engine_version=dict(type="str"),
        storage_encrypted=dict(type="bool"),
        deletion_protection=dict(type="bool"),
        remove_members=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=1800),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("source_db_cluster_identifier", "engine")],
        supports_check_mode=True,
    )
    # DescribeGlobalClusters is throttled like any control-plane call; the writes can meet a cluster that is
    # briefly "modifying" after the previous step.
    client = module.client(
        "rds",
        retry_decorator=AWSRetry.jittered_backoff(
            retries=6, catch_extra_error_codes=["InvalidDBClusterStateFault", "InvalidGlobalClusterStateFault"]
        ),
    )
    identifier = module.params["global_cluster_identifier"]
    try:
        if module.params["state"] == "present":
            result = ensure_present(module, client)
        else:
            result = ensure_absent(module, client)
    except GlobalClusterError as e:
        module.fail_json(msg=f"Failed to manage global cluster {identifier}: {e}")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage global cluster {identifier}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

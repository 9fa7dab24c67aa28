"""S3 replication really copies objects to the destination bucket, as AWS does (a live extension).

Plain moto stores a bucket's replication configuration and does nothing with it: no replica ever
appears in the other region and no object carries ``x-amz-replication-status``. Here, a write
through the S3 API to a bucket whose replication configuration has an Enabled rule matching the
object is replicated in the background:

- **Which writes.** PutObject, CopyObject, CompleteMultipartUpload, a POST upload, and the delete
  markers DeleteObject / DeleteObjects create (no ``versionId``). Deleting a specific version is
  never replicated (AWS protects replicas from malicious deletes that way). Only writes made after
  the rule exists are replicated (AWS without Batch Replication: ``ExistingObjectReplication`` is
  stored but not acted on). Objects replication creates are not replicated again, so two rules that
  point two buckets at each other do not ping-pong (AWS replicates replica changes only with
  ``ReplicaModifications``, which is not emulated).
- **Which rules.** A rule applies when its ``Status`` is Enabled and its filter matches: V2
  ``Filter`` with ``Prefix``, ``Tag``, ``And`` (Prefix and Tags) and ``Not`` (Prefix, Tag, Or of
  Prefixes/Tags), or the V1 rule-level ``Prefix``. Objects encrypted with SSE-KMS (or DSSE-KMS)
  are eligible only under a rule with ``SourceSelectionCriteria.SseKmsEncryptedObjects`` Enabled.
  Delete markers are replicated under V2 rules only with ``DeleteMarkerReplication`` Enabled and
  under V1 rules always (AWS's V1 behaviour); a rule whose filter needs tags never matches a
  delete marker (markers have no tags). When several rules match for the same destination bucket,
  the highest ``Priority`` wins (ties: the first listed); rules naming different destination
  buckets each replicate (multi-destination replication).
- **Status.** The source version carries ``ReplicationStatus`` (header ``x-amz-replication-status``
  of HeadObject/GetObject) PENDING as soon as the write returns, then COMPLETED once every
  destination holds its replica, or FAILED. A replica carries REPLICA. The spelling is the one
  the S3 API returns (PENDING | COMPLETED | FAILED | REPLICA); botocore's enum also lists
  ``COMPLETE``, the spelling of S3 Inventory reports, which the API does not send.
  ListObjectVersions does not show it (its model has no such field), nor here.
- **The replica** has the source's key, version ID, bytes, ETag, LastModified ("creation time"),
  metadata (Content-Type and the rest), tags, ACL, checksum and object-lock settings; its storage
  class is the rule's ``Destination.StorageClass`` if set, else the source's. An SSE-KMS source is
  re-encrypted with ``Destination.EncryptionConfiguration.ReplicaKmsKeyID``; another encrypted
  source keeps its encryption; an unencrypted one gets the destination bucket's default
  encryption. A replicated delete marker has the source marker's version ID.
- **FAILED**, once and for good (AWS does not retry a failed replication; Batch Replication
  does), when at the attempt: the destination bucket does not exist (or is in an account the
  sandbox may not reach); its versioning is not Enabled (Suspended, or never enabled); or, for an
  SSE-KMS object, the ``ReplicaKmsKeyID`` key does not exist in its region or is not Enabled
  (Disabled, PendingDeletion). IAM permissions of the replication role are not evaluated.
- **Outages.** While the source bucket's or the destination bucket's region is dark
  (``sandbox outage``), replication waits and the status stays PENDING; it resumes at the next
  pass after the restore. A version deleted (by version ID) before it replicated is dropped.
- **Timing.** A background pass runs every ``TICK_S`` seconds (0.5 s): put -> COMPLETED takes
  0.5 s on average here, where AWS takes seconds to minutes (RTC: 99.99 % within 15 minutes).
- **Metrics**, for rules with ``Destination.Metrics`` (or ``ReplicationTime``) Enabled, in the
  source bucket's region, namespace AWS/S3, dimensions SourceBucket, DestinationBucket, RuleId:
  ``ReplicationLatency`` (Seconds, one datum per replicated operation), ``OperationsFailedReplication``
  (Count, one datum per failure: what the monitoring role's alarm watches), and
  ``OperationsPendingReplication`` / ``BytesPendingReplication`` when their value changes, and once
  a minute while they stay above zero (AWS publishes these every minute).
  S3 event notifications (``s3:Replication:*``) are not sent.

``GET /_sandbox/s3-replication`` reports the pending versions (and what each waits for), counts,
latencies and the last failures. ``POST /moto-api/reset`` forgets the queue.

Where moto lacks the hooks: writes are recognised inside moto's S3 request handlers (thread
local), so an object another moto service writes into S3 internally is not replicated. Writes to
object version lists (moto's own PutObject/DeleteObject and the replicas made here) are
serialised by one lock, so a replica never reads a version a concurrent delete is disposing of.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox import runtime

log = logging.getLogger("sandbox.s3_replication")

TICK_S = 0.5
PENDING, COMPLETED, FAILED, REPLICA = "PENDING", "COMPLETED", "FAILED", "REPLICA"
OBJECT, DELETE_MARKER = "object", "delete-marker"
KMS_ENCRYPTIONS = frozenset({"aws:kms", "aws:kms:dsse"})
METRICS_NAMESPACE = "AWS/S3"
PENDING_METRICS_PERIOD_S = 60.0
FAILURES_KEPT = 20
LATENCIES_KEPT = 100

# Serialises writes to moto's object version lists: moto's PutObject / DeleteObject (wrapped in
# provider.py) and the replicas made here. Reentrant: DeleteObject sets a delete marker inside.
WRITES = threading.RLock()


class _Waiting(Exception):
    """Replication of this leg cannot proceed yet (a region is dark); the text says why."""


class _Failed(Exception):
    """Replication of this leg failed for good; the text says why."""


@dataclass
class _Leg:
    """One destination of one source version."""

    destination: str
    rule_id: str
    storage_class: str | None
    replica_kms_key_id: str | None
    metrics: bool
    state: str = PENDING
    waiting: str = ""


@dataclass
class _Job:
    """A source version waiting to be replicated to one or more destinations."""

    account_id: str
    partition: str
    bucket: str
    region: str
    key: str
    version_id: str
    kind: str
    size: int
    legs: list[_Leg]
    enqueued: float = field(default_factory=time.monotonic)
    waiting: str = ""

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.bucket, self.key, self.version_id)


# -- rules -------------------------------------------------------------------------------------------


def _has_tag(tags: dict[str, str], tag: dict[str, Any]) -> bool:
    return tags.get(tag.get("Key", "")) == tag.get("Value", "")


def _excluded(not_: dict[str, Any], key: str, tags: dict[str, str]) -> bool:
    """Whether a ``Not`` block excludes the object (any of its conditions matching excludes)."""
    if "Prefix" in not_ and key.startswith(not_["Prefix"]):
        return True
    if "Tag" in not_ and _has_tag(tags, not_["Tag"]):
        return True
    or_ = not_.get("Or") or {}
    return any(key.startswith(p) for p in or_.get("Prefixes") or []) or any(
        _has_tag(tags, t) for t in or_.get("Tags") or []
    )


def filter_matches(rule_filter: dict[str, Any], key: str, tags: dict[str, str]) -> bool:
    """Whether a V2 rule ``Filter`` selects an object with this key and these tags ({} selects all)."""
    if not key.startswith(rule_filter.get("Prefix") or ""):
        return False
    if "Tag" in rule_filter and not _has_tag(tags, rule_filter["Tag"]):
        return False
    and_ = rule_filter.get("And")
    if and_ is not None:
        if not key.startswith(and_.get("Prefix") or ""):
            return False
        if not all(_has_tag(tags, t) for t in and_.get("Tags") or []):
            return False
        if "Not" in and_ and _excluded(and_["Not"], key, tags):
            return False
    return not ("Not" in rule_filter and _excluded(rule_filter["Not"], key, tags))


def _enabled(block: Any) -> bool:
    return isinstance(block, dict) and block.get("Status") == "Enabled"


def plan_legs(
    config: dict[str, Any] | None, key: str, kind: str, tags: dict[str, str], encryption: str | None
) -> list[_Leg]:
    """The destinations a new version replicates to under a replication configuration (may be none)."""
    winners: dict[str, tuple[int, int, dict[str, Any]]] = {}
    for index, rule in enumerate((config or {}).get("Rules") or []):
        if rule.get("Status") != "Enabled":
            continue
        v1 = "Filter" not in rule
        matched = key.startswith(rule.get("Prefix") or "") if v1 else filter_matches(rule["Filter"], key, tags)
        if not matched:
            continue
        if (
            kind == OBJECT
            and encryption in KMS_ENCRYPTIONS
            and not _enabled((rule.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects"))
        ):
            continue  # SSE-KMS objects are replicated only by rules that opt in
        destination = (rule.get("Destination") or {}).get("Bucket", "").split(":::", 1)[-1]
        if not destination:
            continue
        priority = int(rule.get("Priority") or 0)
        best = winners.get(destination)
        if best is None or priority > best[0]:
            winners[destination] = (priority, index, rule)
    legs = []
    for destination, (_priority, _index, rule) in winners.items():
        if kind == DELETE_MARKER and "Filter" in rule and not _enabled(rule.get("DeleteMarkerReplication")):
            continue  # the winning V2 rule does not replicate delete markers
        target = rule.get("Destination") or {}
        legs.append(
            _Leg(
                destination=destination,
                rule_id=rule.get("ID", ""),
                storage_class=target.get("StorageClass") or None,
                replica_kms_key_id=(target.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID") or None,
                metrics=_enabled(target.get("Metrics")) or _enabled(target.get("ReplicationTime")),
            )
        )
    return legs


# -- moto access -------------------------------------------------------------------------------------


def _backend(account_id: str, partition: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account_id][partition]


def _find_version(bucket: Any, key: str, version_id: str) -> Any | None:
    for version in bucket.keys.getlist(key, []):
        if str(version.version_id) == version_id:
            return version
    return None


def _get_bucket(backend: Any, name: str) -> Any | None:
    from moto.s3.exceptions import S3ClientError

    try:
        return backend.get_bucket(name)
    except S3ClientError:  # MissingBucket, or AccessDenied for a bucket of an account out of reach
        return None


def _check_replica_key(account_id: str, key_id: str | None, default_region: str, rt: runtime.Runtime) -> None:
    """Raise _Failed unless the replica KMS key exists and is Enabled; _Waiting while its region is dark."""
    if not key_id:
        raise _Failed("the rule has SseKmsEncryptedObjects but no Destination.EncryptionConfiguration.ReplicaKmsKeyID")
    parts = key_id.split(":")
    region = parts[3] if key_id.startswith("arn:") and len(parts) > 5 else default_region
    owner = parts[4] if key_id.startswith("arn:") and len(parts) > 5 and parts[4] else account_id
    if rt.is_dark(region):
        raise _Waiting(f"the replica KMS key's region {region} is dark")
    from moto.kms.models import kms_backends

    try:
        key = kms_backends[owner][region].describe_key(key_id)
    except Exception:  # moto raises KeyError, NotFoundException or worse for an unknown key or alias
        raise _Failed(f"the replica KMS key {key_id} does not exist in {region}") from None
    if key.key_state != "Enabled":
        raise _Failed(f"the replica KMS key {key_id} is {key.key_state}")


def _build_replica_object(source: Any, destination: Any, leg: _Leg) -> Any:
    """A FakeKey in the destination bucket standing for the source version (not yet inserted)."""
    from moto.s3.models import FakeKey

    encryption, kms_key_id = source.encryption, source.kms_key_id
    bucket_key_enabled = source.bucket_key_enabled
    default = ((destination.encryption or {}).get("Rule") or {}).get("ApplyServerSideEncryptionByDefault") or {}
    if encryption in KMS_ENCRYPTIONS:
        kms_key_id = leg.replica_kms_key_id
    elif encryption is None and default.get("SSEAlgorithm"):
        encryption, kms_key_id = default["SSEAlgorithm"], default.get("KMSMasterKeyID")
    if destination.encryption:
        bucket_key_enabled = destination.encryption["Rule"].get("BucketKeyEnabled", bucket_key_enabled)
    replica = FakeKey(
        name=source.name,
        value=source.value,
        account_id=destination.account_id,
        region_name=destination.region_name,
        storage=leg.storage_class or source.storage_class,
        etag=source.etag.strip('"'),
        is_versioned=True,
        version_id=source.version_id,
        bucket_name=destination.name,
        encryption=encryption,
        kms_key_id=kms_key_id,
        bucket_key_enabled=bucket_key_enabled,
        lock_mode=source.lock_mode,
        lock_legal_status=source.lock_legal_status,
        lock_until=source.lock_until,
        checksum_value=source.checksum_value,
        checksum_type=source.checksum_type,
        checksum_parts=source.checksum_parts,
    )
    replica.last_modified = source.last_modified
    replica.set_metadata(dict(source.metadata.items()))
    replica.set_acl(source.acl)
    replica.website_redirect_location = source.website_redirect_location
    replica.checksum_algorithm = source.checksum_algorithm
    replica.replication_status = REPLICA
    return replica


def _build_replica_marker(source: Any, versions: list[Any]) -> Any:
    from moto.s3.models import FakeDeleteMarker

    # moto's marker points at the version it hides; with no version in the destination (the object
    # predates the rule) it points at what the source marker hides, which only lends it the key name.
    marker = FakeDeleteMarker(key=versions[-1] if versions else source.key)
    marker._version_id = source.version_id
    marker.last_modified = source.last_modified
    marker.replication_status = REPLICA
    return marker


# -- the replicator ----------------------------------------------------------------------------------


class Replicator:
    """The queue of versions to replicate, and the background pass that copies them."""

    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str, str], _Job] = {}
        self._completed = 0
        self._failed = 0
        self._latencies: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self._failures: deque[dict[str, Any]] = deque(maxlen=FAILURES_KEPT)
        # (account, region, source, destination, rule) -> (operations, bytes, monotonic time) last published
        self._pending_published: dict[tuple[str, str, str, str, str], tuple[int, int, float]] = {}

    # Called at the end of an S3 request, on the request's thread: must be quick and never raise.
    def schedule(self, written: list[tuple[Any, str, str, str, str]]) -> None:
        for backend, bucket_name, key, version_id, kind in written:
            try:
                self._schedule_one(backend, bucket_name, key, version_id, kind)
            except Exception:
                log.exception("could not schedule replication of s3://%s/%s (%s)", bucket_name, key, version_id)

    def _schedule_one(self, backend: Any, bucket_name: str, key: str, version_id: str, kind: str) -> None:
        bucket = _get_bucket(backend, bucket_name)
        if bucket is None or not bucket.is_versioned:
            return
        config = getattr(bucket, "replication", None)
        if not config or not config.get("Rules"):
            return
        version = _find_version(bucket, key, version_id)
        if version is None or getattr(version, "replication_status", None) == REPLICA:
            return
        owner = _backend(bucket.account_id, bucket.partition)
        tags = owner.tagger.get_tag_dict_for_resource(version.arn) if kind == OBJECT else {}
        legs = plan_legs(config, key, kind, tags, getattr(version, "encryption", None))
        if not legs:
            return
        version.replication_status = PENDING
        job = _Job(
            account_id=bucket.account_id,
            partition=bucket.partition,
            bucket=bucket_name,
            region=bucket.region_name,
            key=key,
            version_id=version_id,
            kind=kind,
            size=version.size if kind == OBJECT else 0,
            legs=legs,
        )
        with self._lock:
            self._jobs[job.ident] = job

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._completed = self._failed = 0
            self._latencies.clear()
            self._failures.clear()
            self._pending_published.clear()

    # -- the background pass -----------------------------------------------------------------------

    def tick(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
            published = bool(self._pending_published)
        if not jobs and not published:
            return
        for job in jobs:
            try:
                self._advance(job)
            except Exception:
                log.exception("replication of s3://%s/%s (%s) failed unexpectedly", job.bucket, job.key, job.version_id)
                self._abandon(job)
        self._publish_pending()

    def _advance(self, job: _Job) -> None:
        backend = _backend(job.account_id, job.partition)
        source_bucket = _get_bucket(backend, job.bucket)
        if self.rt.is_dark(job.region):
            job.waiting = f"the source region {job.region} is dark"
            return
        job.waiting = ""
        failures: list[str] = []
        with WRITES:
            source = _find_version(source_bucket, job.key, job.version_id) if source_bucket is not None else None
            if source is None:
                self._drop(job)  # deleted (by version ID, or with its bucket) before it replicated
                return
            for leg in job.legs:
                if leg.state != PENDING:
                    continue
                try:
                    self._replicate(backend, job, source, leg)
                except _Waiting as wait:
                    leg.waiting = str(wait)
                except _Failed as failure:
                    leg.state, leg.waiting = FAILED, ""
                    failures.append(f"{leg.destination}: {failure}")
                    self._metric(job, leg, "OperationsFailedReplication", 1.0, "Count")
                else:
                    leg.state, leg.waiting = COMPLETED, ""
            if any(leg.state == PENDING for leg in job.legs):
                if failures:
                    self._record_failures(job, failures)
                return
            source.replication_status = FAILED if any(leg.state == FAILED for leg in job.legs) else COMPLETED
        self._finish(job, source.replication_status, failures)

    def _replicate(self, backend: Any, job: _Job, source: Any, leg: _Leg) -> None:
        destination = _get_bucket(backend, leg.destination)
        if destination is None:
            raise _Failed(f"the destination bucket {leg.destination} does not exist")
        if self.rt.is_dark(destination.region_name):
            raise _Waiting(f"the destination region {destination.region_name} is dark")
        if not destination.is_versioned:
            state = destination.versioning_status or "never enabled"
            raise _Failed(f"versioning of the destination bucket {leg.destination} is {state}, not Enabled")
        if job.kind == OBJECT and source.encryption in KMS_ENCRYPTIONS:
            _check_replica_key(destination.account_id, leg.replica_kms_key_id, destination.region_name, self.rt)
        versions = destination.keys.getlist(job.key, [])
        if _find_version(destination, job.key, job.version_id) is not None:
            return  # already there (a destination listed by two paths): S3 replication is idempotent
        if job.kind == OBJECT:
            replica = _build_replica_object(source, destination, leg)
            tags = _backend(job.account_id, job.partition).tagger.list_tags_for_resource(source.arn)["Tags"]
            if tags:
                _backend(destination.account_id, destination.partition).tagger.tag_resource(replica.arn, tags)
        else:
            replica = _build_replica_marker(source, versions)
        # One assignment: readers see the version list with or without the finished replica.
        destination.keys.setlist(job.key, [*versions, replica])

    def _abandon(self, job: _Job) -> None:
        """After a bug here: FAILED rather than PENDING for ever (the log has the traceback)."""
        source_bucket = _get_bucket(_backend(job.account_id, job.partition), job.bucket)
        source = _find_version(source_bucket, job.key, job.version_id) if source_bucket is not None else None
        if source is not None:
            source.replication_status = FAILED
        self._finish(job, FAILED, ["internal error in the sandbox (see its log)"])

    def _drop(self, job: _Job) -> None:
        with self._lock:
            self._jobs.pop(job.ident, None)

    def _finish(self, job: _Job, status: str | None, failures: list[str]) -> None:
        latency = time.monotonic() - job.enqueued
        with self._lock:
            self._jobs.pop(job.ident, None)
            if status == COMPLETED:
                self._completed += 1
                self._latencies.append(latency)
            else:
                self._failed += 1
        if failures:
            self._record_failures(job, failures)
        if status == COMPLETED:
            for leg in job.legs:
                self._metric(job, leg, "ReplicationLatency", latency, "Seconds")

    def _record_failures(self, job: _Job, failures: list[str]) -> None:
        for reason in failures:
            log.warning("replication of s3://%s/%s (%s) FAILED: %s", job.bucket, job.key, job.version_id, reason)
            with self._lock:
                self._failures.append(
                    {
                        "bucket": job.bucket,
                        "key": job.key,
                        "version_id": job.version_id,
                        "kind": job.kind,
                        "reason": reason,
                    }
                )

    # -- metrics -----------------------------------------------------------------------------------

    def _metric(self, job: _Job, leg: _Leg, name: str, value: float, unit: str) -> None:
        if leg.metrics:
            self._put_metric(job.account_id, job.region, job.bucket, leg, name, value, unit)

    @staticmethod
    def _put_metric(
        account_id: str, region: str, bucket: str, leg: _Leg | tuple[str, str], name: str, value: float, unit: str
    ) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        destination, rule_id = (leg.destination, leg.rule_id) if isinstance(leg, _Leg) else leg
        dimensions = [
            {"Name": "SourceBucket", "Value": bucket},
            {"Name": "DestinationBucket", "Value": destination},
            {"Name": "RuleId", "Value": rule_id},
        ]
        cloudwatch_backends[account_id][region].put_metric_data(
            METRICS_NAMESPACE, [{"MetricName": name, "Value": float(value), "Unit": unit, "Dimensions": dimensions}]
        )

    def _publish_pending(self) -> None:
        """OperationsPendingReplication / BytesPendingReplication: on change, and each minute while > 0."""
        now = time.monotonic()
        current: dict[tuple[str, str, str, str, str], tuple[int, int]] = {}
        with self._lock:
            for job in self._jobs.values():
                for leg in job.legs:
                    if leg.metrics and leg.state == PENDING:
                        ident = (job.account_id, job.region, job.bucket, leg.destination, leg.rule_id)
                        operations, size = current.get(ident, (0, 0))
                        current[ident] = (operations + 1, size + job.size)
            published = dict(self._pending_published)
        for ident in set(current) | set(published):
            operations, size = current.get(ident, (0, 0))
            last = published.get(ident)
            due = last is None or (operations, size) != last[:2] or now - last[2] >= PENDING_METRICS_PERIOD_S
            account_id, region, bucket, destination, rule_id = ident
            if not due or self.rt.is_dark(region):
                continue  # CloudWatch of a dark region takes no data
            for name, value, unit in (
                ("OperationsPendingReplication", operations, "Count"),
                ("BytesPendingReplication", size, "Bytes"),
            ):
                self._put_metric(account_id, region, bucket, (destination, rule_id), name, value, unit)
            with self._lock:
                if operations:
                    self._pending_published[ident] = (operations, size, now)
                else:
                    self._pending_published.pop(ident, None)

    # -- report ------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            pending = [
                {
                    "bucket": job.bucket,
                    "key": job.key,
                    "version_id": job.version_id,
                    "kind": job.kind,
                    "age_s": round(now - job.enqueued, 3),
                    "waiting": job.waiting,
                    "destinations": [
                        {"bucket": leg.destination, "rule_id": leg.rule_id, "state": leg.state, "waiting": leg.waiting}
                        for leg in job.legs
                    ],
                }
                for job in self._jobs.values()
            ]
            latencies = list(self._latencies)
            return {
                "tick_s": TICK_S,
                "pending": pending,
                "completed": self._completed,
                "failed": self._failed,
                "latency_s": {
                    "last": round(latencies[-1], 3) if latencies else None,
                    "max": round(max(latencies), 3) if latencies else None,
                },
                "failures": list(self._failures),
            }

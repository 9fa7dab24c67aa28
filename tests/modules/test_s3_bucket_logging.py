"""plugins/modules/s3_bucket_logging.py: its helpers against a fake S3 (unit)."""

from __future__ import annotations

from typing import Any

from tests.support import REPO_ROOT, load_module_file

mod = load_module_file(REPO_ROOT / "plugins" / "modules" / "s3_bucket_logging.py")


class FakeS3:
    """Just enough of S3's bucket logging, recording every write."""

    def __init__(self, logging: dict[str, Any] | None = None) -> None:
        self.logging = dict(logging or {})
        self.writes: list[dict[str, Any]] = []

    def get_bucket_logging(self, aws_retry: bool, Bucket: str) -> dict[str, Any]:
        return {"LoggingEnabled": self.logging} if self.logging else {}

    def put_bucket_logging(self, aws_retry: bool, Bucket: str, BucketLoggingStatus: dict[str, Any]) -> None:
        self.writes.append(BucketLoggingStatus)
        self.logging = BucketLoggingStatus.get("LoggingEnabled", {})


ON = {"TargetBucket": "logs", "TargetPrefix": "s3/"}


def test_turns_logging_on() -> None:
    s3 = FakeS3()
    result = mod.ensure_logging(s3, "assets", "present", "logs", "s3/", check_mode=False)
    assert result == {"changed": True, "logging": {"target_bucket": "logs", "target_prefix": "s3/"}, "previous": {}}
    assert s3.writes == [{"LoggingEnabled": ON}]


def test_leaves_matching_logging_alone() -> None:
    s3 = FakeS3(ON)
    result = mod.ensure_logging(s3, "assets", "present", "logs", "s3/", check_mode=False)
    assert result["changed"] is False
    assert s3.writes == []


def test_a_new_prefix_is_a_change() -> None:
    s3 = FakeS3(ON)
    result = mod.ensure_logging(s3, "assets", "present", "logs", "s3/assets/", check_mode=False)
    assert result["changed"] is True
    assert result["previous"] == {"target_bucket": "logs", "target_prefix": "s3/"}
    assert s3.logging == {"TargetBucket": "logs", "TargetPrefix": "s3/assets/"}


def test_check_mode_reports_without_writing() -> None:
    s3 = FakeS3()
    assert mod.ensure_logging(s3, "assets", "present", "logs", "s3/", check_mode=True)["changed"] is True
    s3_on = FakeS3(ON)
    assert mod.ensure_logging(s3_on, "assets", "absent", None, "", check_mode=True)["changed"] is True
    assert s3.writes == [] and s3_on.writes == []


def test_absent_turns_logging_off_and_is_then_unchanged() -> None:
    s3 = FakeS3(ON)
    result = mod.ensure_logging(s3, "assets", "absent", None, "", check_mode=False)
    assert result == {"changed": True, "logging": {}, "previous": {"target_bucket": "logs", "target_prefix": "s3/"}}
    assert s3.writes == [{}]
    assert mod.ensure_logging(s3, "assets", "absent", None, "", check_mode=False)["changed"] is False

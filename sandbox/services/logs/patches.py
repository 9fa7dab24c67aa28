"""CloudWatch Logs: where the sandbox corrects moto's Logs API (moto fidelity).

- ``kms``: a log group's KMS key. CreateLogGroup with ``kmsKeyId`` and AssociateKmsKey accept a key only
  when it exists in the log group's region, is enabled and its key policy lets
  ``logs.<region>.amazonaws.com`` use it for that log group (the encryption context
  ``kms:EncryptionContext:aws:logs:arn`` is the log group's ARN); otherwise AWS answers
  ``AccessDeniedException: The specified KMS key does not exist or is not allowed to be used with Arn
  '<log group ARN>'``. moto stored any string at creation and had no AssociateKmsKey /
  DisassociateKmsKey at all (HTTP 500), so a log group made before its key could never be encrypted.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches
from sandbox.services.kms import policy

LOGS_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey")


def _access_denied(group_arn: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError(
        "AccessDeniedException",
        f"The specified KMS key does not exist or is not allowed to be used with Arn '{group_arn}'",
    )
    error.code = 400
    return error


def check_key(account: str, region: str, group_arn: str, key_id: str) -> None:
    """Raise AWS's AccessDeniedException unless CloudWatch Logs may use key_id for the log group group_arn."""
    key = policy.find_key(account, region, key_id)
    context = {"kms:EncryptionContext:aws:logs:arn": group_arn, "aws:SourceAccount": account}
    if not policy.service_may_use(key, f"logs.{region}.amazonaws.com", LOGS_KEY_ACTIONS, context):
        raise _access_denied(group_arn)


def _group_arn(backend: Any, name: str) -> str:
    from moto.utilities.utils import get_partition

    region = backend.region_name
    return f"arn:{get_partition(region)}:logs:{region}:{backend.account_id}:log-group:{name}"


# == kms: a log group's key is checked as CloudWatch Logs checks it, and can be changed later.


def _patch_kms() -> None:
    from moto.logs.exceptions import ResourceNotFoundException
    from moto.logs.models import LogsBackend
    from moto.logs.responses import LogsResponse

    original_create = LogsBackend.create_log_group

    def create_log_group(self: Any, log_group_name: str, tags: dict[str, str], **kwargs: Any) -> Any:
        key_id = kwargs.get("kmsKeyId")
        if key_id and log_group_name not in self.groups:
            check_key(self.account_id, self.region_name, _group_arn(self, log_group_name), key_id)
        return original_create(self, log_group_name, tags, **kwargs)

    def _group(backend: Any, name: str | None) -> Any:
        if not name or name not in backend.groups:
            raise ResourceNotFoundException()
        return backend.groups[name]

    def associate_kms_key(self: Any) -> str:
        backend = self.logs_backend
        group = _group(backend, self._get_param("logGroupName"))
        key_id = self._get_param("kmsKeyId") or ""
        check_key(backend.account_id, backend.region_name, _group_arn(backend, group.name), key_id)
        group.kms_key_id = key_id
        return ""

    def disassociate_kms_key(self: Any) -> str:
        group = _group(self.logs_backend, self._get_param("logGroupName"))
        group.kms_key_id = None
        return ""

    patches.patch(LogsBackend, "create_log_group", create_log_group, owner=__name__)
    patches.patch(LogsResponse, "associate_kms_key", associate_kms_key, owner=__name__)
    patches.patch(LogsResponse, "disassociate_kms_key", disassociate_kms_key, owner=__name__)


def install(_app: Any) -> None:
    _patch_kms()

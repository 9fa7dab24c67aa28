"""ScheduleKeyDeletion and CancelKeyDeletion accept a key ARN as well as a key id, as AWS does.

AWS documents ``KeyId`` of both operations as "key ID or key ARN". moto indexes its keys by bare
id, so a key ARN raises KeyError inside the backend and the client gets HTTP 500.
amazon.aws.kms_key passes the key ARN when it removes a key (state=absent), so every teardown of a
KMS key failed on plain moto.
"""

from __future__ import annotations

from typing import Any


def install(_app: Any) -> None:
    from moto.kms.models import KmsBackend

    schedule = KmsBackend.schedule_key_deletion
    cancel = KmsBackend.cancel_key_deletion

    def schedule_key_deletion(self: Any, key_id: str, pending_window_in_days: int) -> float:
        return schedule(self, self.any_id_to_key_id(key_id), pending_window_in_days)

    def cancel_key_deletion(self: Any, key_id: str) -> None:
        cancel(self, self.any_id_to_key_id(key_id))

    KmsBackend.schedule_key_deletion = schedule_key_deletion  # type: ignore[method-assign]
    KmsBackend.cancel_key_deletion = cancel_key_deletion  # type: ignore[method-assign]

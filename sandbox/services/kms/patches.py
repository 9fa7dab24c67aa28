"""EnableKey, DisableKey, ScheduleKeyDeletion and CancelKeyDeletion accept a key ARN, as AWS does.

AWS documents ``KeyId`` of these operations as "key ID or key ARN". moto indexes its keys by bare
id, so a key ARN raises KeyError inside the backend and the client gets HTTP 500.
amazon.aws.kms_key passes the key ARN: removing a key (state=absent) failed, and so did bringing
back a key pending deletion (state=present cancels the deletion, then enables the key), i.e. a
deploy after a teardown.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches

# Backend methods whose first argument is the KeyId exactly as the client sent it.
KEY_ID_METHODS = ("enable_key", "disable_key", "schedule_key_deletion", "cancel_key_deletion")


def _resolving(method: Any) -> Any:
    def wrapper(self: Any, key_id: str, *args: Any, **kwargs: Any) -> Any:
        return method(self, self.any_id_to_key_id(key_id), *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def install(_app: Any) -> None:
    from moto.kms.models import KmsBackend

    for name in KEY_ID_METHODS:
        patches.patch(KmsBackend, name, _resolving(getattr(KmsBackend, name)), owner=__name__)

"""S3: the API calls onto the replication engine (replication.py), and its control route.

Patches S3's object writes so that each version a request writes is scheduled for replication when
the request returns (``PENDING`` is visible at once), and shows ``x-amz-replication-status``;
``GET /_sandbox/s3-replication`` reports the engine's state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sandbox import patches, runtime
from sandbox.services.s3.replication import DELETE_MARKER, OBJECT, TICK_S, WRITES, Replicator

# Per request thread: the versions the current S3 request created (None outside S3 requests).
_request = threading.local()


def _capture(backend: Any, bucket_name: str, key: str, version_id: str, kind: str) -> None:
    written = getattr(_request, "written", None)
    if written is not None:
        written.append((backend, bucket_name, key, version_id, kind))


def _in_s3_request(method: Callable[..., Any], replicator: Replicator) -> Callable[..., Any]:
    """Run an S3 request handler collecting the versions it writes; schedule them when it returns."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_request, "depth", 0)
        if depth == 0:
            _request.written = []
        _request.depth = depth + 1
        try:
            return method(self, *args, **kwargs)
        finally:
            # Scheduled before the response leaves: a HeadObject right after the PUT sees PENDING.
            # Tags and metadata are set by then too (moto sets them after creating the version).
            _request.depth = depth
            if depth == 0:
                written, _request.written = _request.written, None
                if written:
                    replicator.schedule(written)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def install(_app: Any) -> None:
    from moto.s3.models import FakeKey, S3Backend
    from moto.s3.responses import S3Response

    rt = runtime.get()
    replicator = Replicator(rt)

    original_put_object = S3Backend.put_object
    original_delete_object = S3Backend.delete_object
    original_set_delete_marker = S3Backend._set_delete_marker
    original_response_dict = FakeKey.response_dict

    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        with WRITES:
            key = original_put_object(self, bucket_name, key_name, *args, **kwargs)
        _capture(self, bucket_name, key_name, str(key.version_id), OBJECT)
        return key

    def delete_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        with WRITES:
            return original_delete_object(self, *args, **kwargs)

    def set_delete_marker(self: Any, bucket_name: str, key_name: str) -> Any:
        # Only DeleteObject(s) without a version ID sets a marker; deleting a version never does.
        with WRITES:
            marker = original_set_delete_marker(self, bucket_name, key_name)
        _capture(self, bucket_name, key_name, str(marker.version_id), DELETE_MARKER)
        return marker

    def response_dict(self: Any) -> dict[str, Any]:
        headers = original_response_dict.fget(self)
        status = getattr(self, "replication_status", None)
        if status:
            headers["x-amz-replication-status"] = status
        return headers

    patches.patch(S3Backend, "put_object", put_object, owner=__name__)
    patches.patch(S3Backend, "delete_object", delete_object, owner=__name__)
    patches.patch(S3Backend, "_set_delete_marker", set_delete_marker, owner=__name__)
    patches.patch(FakeKey, "response_dict", property(response_dict), owner=__name__)
    patches.patch(S3Response, "key_response", _in_s3_request(S3Response.key_response, replicator), owner=__name__)
    patches.patch(S3Response, "bucket_response", _in_s3_request(S3Response.bucket_response, replicator), owner=__name__)

    def report(_body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        return 200, replicator.describe()

    rt.route("GET", "s3-replication", report)
    rt.on_reset(replicator.reset)
    rt.every("s3-replication", TICK_S, replicator.tick)
    # No outage/restore hooks: each pass checks rt.is_dark, so a restore resumes at the next pass.

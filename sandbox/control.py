"""The sandbox's own control surface, and regional outages at the API.

- ``/_sandbox/...`` answers the control routes the live extensions register with the runtime
  (``GET /_sandbox/`` describes the sandbox: its edge address, dark regions, name map and routes;
  ``GET /_sandbox/health`` is the cheap liveness probe;
  ``POST /_sandbox/outage`` and ``/_sandbox/restore`` with ``{"region": "us-east-1"}`` take a region
  dark and back).
- While a region is dark, every API call signed for it (SigV4 credential scope) gets HTTP 503
  ``ServiceUnavailable``, as a regional endpoint in an outage does. Global services (Route 53,
  CloudFront, IAM, STS) keep answering: their data planes are global, and the failover design must
  not need the dark region's regional APIs.
- ``POST /moto-api/reset`` first stops everything the live extensions run, then lets moto forget.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox import patches, runtime

GLOBAL_SERVICES = frozenset({"route53", "cloudfront", "iam", "sts", "organizations"})


def _respond(start_response: Any, status: int, body: Any, content_type: str = "application/json") -> list[bytes]:
    payload = body if isinstance(body, bytes) else json.dumps(body, indent=1, default=str).encode()
    reason = {
        200: "OK",
        400: "Bad Request",
        404: "Not Found",
        409: "Conflict",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    start_response(
        f"{status} {reason.get(status, 'Status')}",
        [("Content-Type", content_type), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def _unavailable(environ: dict[str, Any], start_response: Any, region: str) -> list[bytes]:
    message = f"The sandbox region {region} is dark (make sandbox-restore REGION={region} brings it back)"
    if "json" in environ.get("CONTENT_TYPE", ""):
        return _respond(start_response, 503, {"__type": "ServiceUnavailableException", "message": message})
    xml = (
        "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
        f"<Message>{message}</Message></Error><RequestId>sandbox-outage</RequestId></ErrorResponse>"
    )
    return _respond(start_response, 503, xml.encode(), "text/xml")


def _control(rt: runtime.Runtime, environ: dict[str, Any], start_response: Any) -> list[bytes]:
    from urllib.parse import parse_qsl

    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")[len("/_sandbox") :].strip("/")
    if method == "GET" and path == "":
        return _respond(start_response, 200, rt.describe())
    if method == "GET" and path == "health":
        # The liveness probe of `python -m sandbox up|status`: answered without touching any state, so it
        # costs the same with an empty sandbox and a deployed one.
        return _respond(start_response, 200, {"status": "ok"})
    handler = rt.handler(method, path)
    if handler is None:
        return _respond(
            start_response, 404, {"error": f"no control route {method} /_sandbox/{path}", "routes": rt.routes()}
        )
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = runtime.json_body(environ["wsgi.input"].read(length) if length else b"")
        status, result = handler(body, dict(parse_qsl(environ.get("QUERY_STRING", ""))))
    except runtime.ControlError as exc:
        return _respond(start_response, exc.status, {"error": str(exc)})
    return _respond(start_response, status, result)


def _region_arg(body: dict[str, Any], query: dict[str, str]) -> str:
    region = body.get("region") or query.get("region")
    if not isinstance(region, str) or not region:
        raise runtime.ControlError(400, 'name the region: {"region": "us-east-1"}')
    return region


def install(app: Any) -> None:
    rt = runtime.get()

    def outage(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        region = _region_arg(body, query)
        changed = rt.outage(region)
        return 200, {"region": region, "dark": True, "changed": changed}

    def restore(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        region = _region_arg(body, query)
        changed = rt.restore(region)
        return 200, {"region": region, "dark": False, "changed": changed}

    rt.route("POST", "outage", outage)
    rt.route("POST", "restore", restore)
    # Every change the extensions made to moto, with its one owner (sandbox/patches.py).
    rt.route("GET", "patches", lambda _body, _query: (200, [p.describe() for p in patches.applied()]))

    def middleware(inner: Any) -> Any:
        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            path = environ.get("PATH_INFO", "")
            if path == "/_sandbox" or path.startswith("/_sandbox/"):
                return _control(rt, environ, start_response)
            if path == "/moto-api/reset" and environ["REQUEST_METHOD"] == "POST":
                rt.reset()
                return inner(environ, start_response)
            region, service = runtime.credential_scope(environ)
            if region and rt.is_dark(region) and service not in GLOBAL_SERVICES:
                return _unavailable(environ, start_response, region)
            return inner(environ, start_response)

        return wsgi

    app.wrap(middleware)

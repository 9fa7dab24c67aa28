"""The edge: a local entry point that serves the sandbox's CloudFront distribution, as CloudFront would.

Plain moto records CloudFront distributions but nothing serves them, so the public URL of the app (the
distribution, or the domain in front of it) cannot be used, and origin failover, the Route 53 write
origin and the S3 origin behind origin access control are never exercised. This extension starts the
edge (sandbox/edge/server.py, where the rules and the places the sandbox differs from AWS are written down) on
``rt.edge_port`` of 127.0.0.1 with the sandbox: SandboxConfig.edge, printed as SANDBOX_URL.

It serves the enabled distribution whose Aliases, domain name or Comment match the Host header, else
the newest (none: HTTP 503 saying to run ``make deploy``): cache behaviours by path pattern, CloudFront's
403 for a method a behaviour does not allow, origin groups failing GET/HEAD/OPTIONS over on their
FailoverCriteria status codes and on connection failures and timeouts (never a write), custom origins
resolved through Route 53 answers cached for the record's TTL and then ``rt.resolve``, S3 origins from
moto's S3 backend with the bucket policy evaluated as S3 would for origin access control. Nothing is
cached (the project's dynamic behaviours use CachingDisabled) and everything is plain HTTP (viewer
protocol policies redirect-to-https / https-only are served over HTTP).

Control route: ``GET /_sandbox/edge``: the distribution served, its behaviours and origins, what each
Route 53 origin record resolves to now and in the edge's cache (with the TTL left), and counters.
"""

from __future__ import annotations

from typing import Any

from sandbox import runtime
from sandbox.edge import server as edge


def install(_app: Any) -> None:
    rt = runtime.get()
    server = edge.get()
    rt.call(server.start())

    def describe(_body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
        return 200, server.describe()

    def shutdown() -> None:
        try:
            rt.call(server.stop(), timeout=5)
        except Exception:  # the loop may already be stopping: nothing left to close then
            return

    rt.route("GET", "edge", describe)
    rt.on_reset(server.reset)
    rt.on_shutdown(shutdown)

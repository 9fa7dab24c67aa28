"""The sandbox server process: moto's multi-service WSGI app plus the project's extensions.

Runs in the foreground (`python -m sandbox serve`); `python -m sandbox up` starts it in the
background. Extensions are applied in-process before the first request, so they can patch
moto's backends directly or wrap the WSGI app to answer calls moto gets wrong.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from sandbox import config

WSGIApp = Callable[..., Any]
log = logging.getLogger("sandbox")


class SandboxApp:
    """The WSGI application the sandbox serves, with hooks for extensions."""

    def __init__(self, moto_app: WSGIApp) -> None:
        self._app = moto_app
        self.extensions: list[str] = []

    def wrap(self, middleware: Callable[[WSGIApp], WSGIApp]) -> None:
        """Put a WSGI middleware in front of everything installed so far."""
        self._app = middleware(self._app)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self._app(environ, start_response)


def build_app() -> SandboxApp:
    # Must be set before moto's IAM backend first loads: without the AWS-managed
    # policies, attaching e.g. AmazonECSTaskExecutionRolePolicy fails.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from sandbox.extensions import install_all

    app = SandboxApp(DomainDispatcherApplication(create_backend_app))
    install_all(app)
    return app


def serve(cfg: config.SandboxConfig) -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from sandbox import runtime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    port = cfg.port
    rt = runtime.init(cfg.state_dir, cfg.port, int(cfg.edge.rsplit(":", 1)[1]))
    app = build_app()
    # threaded=True: Ansible runs both regions at once and modules poll while others write.
    server = make_server(config.HOST, port, app, threaded=True, request_handler=MotoRequestHandler)

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: shutting down", signum)
        # shutdown() blocks until serve_forever returns, so it cannot run on the serving thread.
        import threading

        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("sandbox listening on http://%s:%d with extensions: %s", config.HOST, port, ", ".join(app.extensions))
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        # Databases, app processes and listeners the live extensions started go with the server.
        rt.shutdown()
    log.info("sandbox stopped")

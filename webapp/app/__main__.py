"""``python -m app`` serves the app with uvicorn; ``python -m app migrate`` runs ``alembic upgrade head``.

Options come from the environment (see app/core/config.py and docs/webapp.md): HOST, PORT,
WEB_CONCURRENCY, GRACEFUL_TIMEOUT, LOG_LEVEL.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError

from app.core.config import get_settings

HERE = Path(__file__).resolve().parent.parent


def _settings_or_exit():  # -> Settings
    try:
        return get_settings()
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()]
        sys.exit("webapp: invalid settings in the environment (see docs/webapp.md):\n" + "\n".join(lines))


def migrate() -> None:
    from alembic import command
    from alembic.config import Config

    _settings_or_exit()
    command.upgrade(Config(str(HERE / "alembic.ini")), "head")


def serve() -> None:
    settings = _settings_or_exit()
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before any worker imports prometheus_client.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="webapp-metrics-")
    import uvicorn

    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,  # our middleware writes one JSON line per request instead
        server_header=False,
        proxy_headers=True,
        timeout_graceful_shutdown=settings.graceful_timeout_s,
        timeout_keep_alive=75,  # longer than the ALB's 60 s idle timeout: the ALB closes first
    )


def main(argv: list[str]) -> None:
    if argv[1:] == ["migrate"]:
        migrate()
    elif argv[1:]:
        sys.exit(f"usage: python -m app [migrate]   (got {' '.join(argv[1:])!r})")
    else:
        serve()


if __name__ == "__main__":
    main(sys.argv)

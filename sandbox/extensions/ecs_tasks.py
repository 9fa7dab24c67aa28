"""Placeholder while issue 5 builds this extension; install() does nothing yet."""

from typing import Any


def install(_app: Any) -> None:
    return None

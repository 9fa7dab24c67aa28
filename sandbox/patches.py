"""The patch registry: every change the sandbox makes to moto's classes goes through here.

An extension never assigns to a moto class by hand. It calls ``patch(target, attribute, replacement,
owner=...)`` (or ``patch_item`` for an entry of a moto dict), which

- applies the change and records who made it, what was there before and what replaced it;
- **refuses a second owner**: one moto method has one owner. When two behaviours need the same
  method, one module owns the patch and composes both explicitly (the RDS global-cluster methods:
  sandbox/services/rds/patches.py owns them and calls the Aurora engine's listener, see
  sandbox/services/rds/patches.py), so behaviour never depends on install order;
- lists what is applied (``applied()``; ``GET /_sandbox/patches``) and undoes it (``undo()``, last
  applied first), which gives moto back exactly as it was.

The registry is process-wide (``REGISTRY``) because moto's classes are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Marks an attribute the target did not define itself (inherited, or absent): undo deletes it again.
_ABSENT = object()


class PatchConflict(RuntimeError):
    """A second patch of one moto attribute: name one owner and compose the behaviours there."""


@dataclass(frozen=True)
class Patch:
    owner: str
    target: Any  # a class, a module or a mapping
    attribute: str  # the attribute name, or the mapping key
    replacement: Any
    previous: Any  # the target's own value before (``_ABSENT`` when it had none of its own)
    item: bool = False  # True for a mapping entry
    where: str = ""  # a mapping's dotted name (a dict has none of its own)

    @property
    def name(self) -> str:
        if self.item:
            return f"{self.where}[{self.attribute!r}]"
        module = getattr(self.target, "__module__", None)
        where = getattr(self.target, "__qualname__", None) or getattr(self.target, "__name__", "?")
        return f"{module}.{where}.{self.attribute}" if module else f"{where}.{self.attribute}"

    def describe(self) -> dict[str, str]:
        return {"owner": self.owner, "patch": self.name}


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._applied: list[Patch] = []

    # -- apply ------------------------------------------------------------------------------------

    def patch(self, target: Any, attribute: str, replacement: Any, *, owner: str) -> Any:
        """Set ``target.attribute`` to ``replacement`` (moto may lack it: a new operation); returns what it replaces."""
        with self._lock:
            self._check_free(target, attribute, owner, item=False)
            current = getattr(target, attribute, None)
            previous = vars(target).get(attribute, _ABSENT) if hasattr(target, "__dict__") else current
            setattr(target, attribute, replacement)
            self._applied.append(Patch(owner, target, attribute, replacement, previous))
            return current

    def patch_item(self, mapping: MutableMapping[Any, Any], key: Any, value: Any, *, where: str, owner: str) -> Any:
        """Set ``mapping[key]`` in place (a moto dict other modules imported by reference); ``where`` names it."""
        with self._lock:
            self._check_free(mapping, key, owner, item=True)
            previous = mapping.get(key, _ABSENT)
            mapping[key] = value
            self._applied.append(Patch(owner, mapping, key, value, previous, item=True, where=where))
            return None if previous is _ABSENT else previous

    def wraps(self, target: Any, attribute: str, *, owner: str) -> Callable[[F], F]:
        """Decorator: ``fn(original, *args, **kwargs)`` replaces ``target.attribute``; original is what it replaced."""

        def decorate(fn: F) -> F:
            original = getattr(target, attribute)

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return fn(original, *args, **kwargs)

            wrapper.__name__ = getattr(original, "__name__", attribute)
            wrapper.__qualname__ = getattr(original, "__qualname__", attribute)
            wrapper.__doc__ = getattr(original, "__doc__", None)
            wrapper.__wrapped__ = original  # type: ignore[attr-defined]
            self.patch(target, attribute, wrapper, owner=owner)
            return fn

        return decorate

    def _check_free(self, target: Any, attribute: Any, owner: str, *, item: bool) -> None:
        for applied in self._applied:
            if applied.target is target and applied.attribute == attribute and applied.item == item:
                raise PatchConflict(
                    f"{applied.name} is already patched by {applied.owner}; {owner} may not patch it too."
                    " One owner per moto method: compose both behaviours in one patch (sandbox/patches.py)"
                )

    # -- list and undo ----------------------------------------------------------------------------

    def applied(self, owner: str | None = None) -> list[Patch]:
        with self._lock:
            return [p for p in self._applied if owner is None or p.owner == owner]

    def owner_of(self, target: Any, attribute: str) -> str | None:
        with self._lock:
            for applied in self._applied:
                if applied.target is target and applied.attribute == attribute and not applied.item:
                    return applied.owner
        return None

    def undo(self, owner: str | None = None) -> list[Patch]:
        """Take patches back (``owner``'s, or all), the last applied first; returns what was undone."""
        with self._lock:
            doomed = [p for p in self._applied if owner is None or p.owner == owner]
            for applied in reversed(doomed):
                if applied.item:
                    if applied.previous is _ABSENT:
                        applied.target.pop(applied.attribute, None)
                    else:
                        applied.target[applied.attribute] = applied.previous
                elif applied.previous is _ABSENT:
                    delattr(applied.target, applied.attribute)
                else:
                    setattr(applied.target, applied.attribute, applied.previous)
            self._applied = [p for p in self._applied if not (owner is None or p.owner == owner)]
            return doomed


REGISTRY = Registry()

patch = REGISTRY.patch
patch_item = REGISTRY.patch_item
wraps = REGISTRY.wraps
applied = REGISTRY.applied
undo = REGISTRY.undo

"""A small generic registry: each plug-in point (variants, model adapters, evaluators, forges) is an instance.

Targets may be registered lazily as ``"module:attr"`` strings so that heavy backends (triton, onnxruntime)
import only when a gate actually uses them. Third-party packages add names through an entry-point group.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from preprocgate.errors import RunError, UnknownNameError, UserError

T = TypeVar("T")


def import_target(ref: str) -> object:
    """Import ``"package.module:attr"`` (attr may be dotted)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"{ref!r} is not of the form 'module:attribute'")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise RunError(f"cannot import {module_name!r} (for {ref!r}): {exc}") from exc
    except Exception as exc:  # user code failing at import is the user's to fix, reported in one line
        raise RunError(f"importing {module_name!r} (for {ref!r}) raised {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise UserError(f"module {module_name!r} has no attribute {attr!r}") from exc
    return obj


class Registry(Generic[T]):
    """Names → objects, with lazy import targets and entry-point discovery."""

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._targets: dict[str, T | str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, target: T | str | None = None) -> Callable[[T], T] | None:
        """Register ``target`` under ``name``; without a target, return a decorator."""
        if target is not None:
            self._targets[name] = target
            return None

        def decorator(obj: T) -> T:
            self._targets[name] = obj
            return obj

        return decorator

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            self._targets.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._targets)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def target_of(self, name: str) -> str:
        """Where a name points, for listings: the lazy reference or the object's qualified name."""
        target = self._lookup(name)
        if isinstance(target, str):
            return target
        return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"

    def _lookup(self, name: str) -> T | str:
        self._load_entry_points()
        if name not in self._targets:
            raise UnknownNameError(self.kind, name, list(self._targets))
        return self._targets[name]

    def get(self, name: str) -> T:
        target = self._lookup(name)
        if isinstance(target, str):
            target = import_target(target)  # type: ignore[assignment]
            self._targets[name] = target
        return target  # type: ignore[return-value]

    def resolve(self, ref: str) -> T:
        """A registered name, or a ``module:attr`` reference to user code."""
        if ":" in ref:
            return import_target(ref)  # type: ignore[return-value]
        return self.get(ref)

    def is_resolvable(self, ref: str) -> str | None:
        """Check ``ref`` without importing heavy code; return a problem description or None."""
        if ":" in ref:
            module_name, _, attr = ref.partition(":")
            if not module_name or not attr:
                return f"{ref!r} is not of the form 'module:attribute'"
            try:
                found = importlib.util.find_spec(module_name)
            except (ImportError, ValueError):
                found = None
            return None if found else f"module {module_name!r} (of {ref!r}) cannot be found"
        try:
            self._lookup(ref)
        except UnknownNameError as exc:
            return str(exc)
        return None

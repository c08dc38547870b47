"""Method registry: methods register by name.

Names are case-insensitive with ``-`` and ``_`` interchangeable.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from msabench.errors import UnknownNameError

if TYPE_CHECKING:
    from msabench.models.base import MSAMethod

M = TypeVar("M", bound="type[MSAMethod]")
_REGISTRY: dict[str, type[MSAMethod]] = {}
_discovered = False


def canonical_name(name: str) -> str:
    """``IF-MMIN`` -> ``if_mmin``."""
    return name.strip().lower().replace("-", "_")


def register(name: str) -> Callable[[M], M]:
    """Class decorator that registers a method under ``name``."""

    def wrap(cls: M) -> M:
        key = canonical_name(name)
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise RuntimeError(f"method '{key}' is registered twice")
        _REGISTRY[key] = cls
        cls.method_name = key
        return cls

    return wrap


def _discover() -> None:
    """Import every method package (a folder of models/ with a module.py) so its decorator runs."""
    global _discovered
    if _discovered:
        return
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.ispkg and (Path(__file__).parent / info.name / "module.py").exists():
            importlib.import_module(f"msabench.models.{info.name}.module")
    _discovered = True


def names() -> list[str]:
    """Registered method names, sorted."""
    _discover()
    return sorted(_REGISTRY)


def get(name: str) -> type[MSAMethod]:
    """The method class registered under ``name``.

    Raises:
        UnknownNameError: no method of that name; the message lists the registered ones.
    """
    _discover()
    key = canonical_name(name)
    if key not in _REGISTRY:
        raise UnknownNameError("method", name, _REGISTRY)
    return _REGISTRY[key]

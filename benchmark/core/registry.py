"""One registry type for everything chosen by name: datasets, training policies, sweep executors.

A :class:`Registry` maps names to objects, each given as the object itself or as ``"module:attr"`` and
imported on first use, so reading the names (the CLI's list, a sweep's expansion) imports nothing heavy. A
registry with an entry-point group also holds what installed packages declare under that group (read once, on
the first lookup), so a user's own dataset plugs in as a user's own method does. An unknown name is one
:class:`~msabench.errors.UnknownNameError` that lists the valid names and suggests the closest.

>>> colours = Registry[int]("colour")
>>> colours.add("red", 1)
>>> colours.get("Red"), colours.names()
(1, ['red'])
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar, cast

from msabench.errors import PluginError, UnknownNameError

T = TypeVar("T")


def lower_name(name: str) -> str:
    """The default key of a name: stripped, lower case (``MOSEI`` -> ``mosei``)."""
    return name.strip().lower()


def load_target(target: str) -> object:
    """Import ``"module:attr"`` (``attr`` may be dotted) and return the attribute."""
    module, _, attr = target.partition(":")
    found: object = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        found = getattr(found, part)
    return found


class Registry(Generic[T]):
    """Names mapped to objects of one kind, imported lazily, with optional entry-point discovery.

    Args:
        kind: what the names name, for messages (``dataset``, ``policy``, ``executor``).
        entry_point_group: the entry-point group whose entries are added on the first lookup (each entry's
            value is ``module:attr``), or None.
        key: how a name is normalised before lookup (default: stripped, lower case).
    """

    def __init__(
        self, kind: str, *, entry_point_group: str | None = None, key: Callable[[str], str] = lower_name
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._key = key
        self._entries: dict[str, T | str] = {}
        self._installed: set[str] = set()  # names added from entry points
        self._discovered = entry_point_group is None

    def add(self, name: str, target: T | str) -> None:
        """Register ``target`` (the object, or ``"module:attr"`` to import on first use) under ``name``.

        Raises:
            ValueError: another target already holds the name.
        """
        key = self._key(name)
        held = self._entries.get(key)
        if held is not None and held != target and not self._same(held, target):
            raise ValueError(f"{self.kind} '{key}' is registered twice")
        self._entries[key] = target

    def get(self, name: str) -> T:
        """The object registered under ``name``, imported now if it was given by path.

        Raises:
            UnknownNameError: no such name; the message lists the registered ones.
        """
        self._discover()
        key = self._key(name)
        if key not in self._entries:
            raise UnknownNameError(self.kind, name, self._entries)
        target = self._entries[key]
        if not isinstance(target, str):
            return target
        try:
            loaded = cast("T", load_target(target))
        except Exception as err:  # noqa: BLE001 - an installed package's import fails in its own ways
            source = f"the {self.entry_point_group} entry point" if key in self._installed else "msabench"
            what = f"{self.kind} '{key}' ({target}, from {source})"
            raise PluginError(f"{what} failed to load: {type(err).__name__}: {err}") from None
        self._entries[key] = loaded
        return loaded

    def names(self, *, installed: bool = True) -> list[str]:
        """The registered names, in registration order (entry points after the others).

        Args:
            installed: include the names installed packages declare under the entry-point group.
        """
        if not installed:
            return [name for name in self._entries if name not in self._installed]
        self._discover()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return isinstance(name, str) and self._key(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def copy(self) -> Registry[T]:
        """An independent registry with the same entries (tests that register names of their own use one)."""
        twin: Registry[T] = Registry(self.kind, entry_point_group=self.entry_point_group, key=self._key)
        twin._entries = dict(self._entries)
        twin._installed = set(self._installed)
        twin._discovered = self._discovered
        return twin

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for entry in metadata.entry_points(group=cast("str", self.entry_point_group)):
            key = self._key(entry.name)
            if key in self._entries and key not in self._installed:
                continue  # an installed package cannot replace a name msabench registers itself
            self.add(entry.name, entry.value)
            self._installed.add(key)

    @staticmethod
    def _same(held: object, target: object) -> bool:
        """Whether a path and an object (either way round) name the same thing, so re-adding is harmless."""
        if isinstance(held, str) == isinstance(target, str):
            return False
        path, obj = (held, target) if isinstance(held, str) else (target, held)
        module, _, attr = cast("str", path).partition(":")
        return getattr(obj, "__module__", None) == module and getattr(obj, "__qualname__", None) == attr

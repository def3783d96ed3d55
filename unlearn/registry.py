"""A small name -> object registry: register at the definition, fail loudly on duplicates and typos."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; ``kind`` is used in error messages ("unknown method 'npoo'")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"duplicate {self.kind} name {name!r}: already registered")
        self._items[name] = obj

    def get(self, name: str) -> T:
        if name not in self._items:
            raise KeyError(self.unknown_message(name))
        return self._items[name]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=3)
        hint = f" did you mean {', '.join(map(repr, close))}?" if close else ""
        return f"unknown {self.kind} {name!r};{hint} valid {self.kind}s: {', '.join(self.names())}"

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def items(self):
        return self._items.items()


class PluginError(RuntimeError):
    """A plugin module that fails to import (the message names it); a broken plugin is not skipped."""


def load_entry_points(group: str, kind: str, error: type[PluginError] = PluginError) -> None:
    """Import every module named in the entry-point ``group`` (importing one registers what it defines); a module
    that fails to import raises ``error`` naming it and the group, never skipped silently."""
    from importlib import metadata

    for ep in metadata.entry_points(group=group):
        try:
            ep.load()
        except Exception as err:  # noqa: BLE001  (any failure of a third party's import is reported by name)
            raise error(f"{kind} plugin {ep.name!r} ({ep.value}, entry point group {group!r}) failed to load: "
                        f"{type(err).__name__}: {err}") from err

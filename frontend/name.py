"""Automatic naming of symbols, as MXNet's `mxnet.name`: per-hint counters and prefixes.

An unnamed node gets `hint + str(counter[hint])` (`fullyconnected0`); counters live in a
thread-local `NameManager`, never reset unless a new one is entered with `with`.
"""

from __future__ import annotations

import threading


class _CurrentManager(type):
    @property
    def current(cls) -> "NameManager":
        """The innermost active manager of this thread (a process-wide default at first)."""
        manager = getattr(NameManager._local, "current", None)
        if manager is None:
            manager = NameManager._local.current = NameManager()
        return manager


class NameManager(metaclass=_CurrentManager):
    """Gives unnamed symbols the name `<hint><n>`, one counter per hint. `NameManager.current` is the
    active one (a class property, as in MXNet 1.x)."""

    _local = threading.local()

    def __init__(self):
        self._counter: dict[str, int] = {}
        self._old_manager = None

    def get(self, name: str | None, hint: str) -> str:
        """`name` if given, else the next automatic name for `hint`."""
        if name:
            return name
        count = self._counter.get(hint, 0)
        self._counter[hint] = count + 1
        return f"{hint}{count}"

    def __enter__(self):
        self._old_manager = NameManager.current
        NameManager._local.current = self
        return self

    def __exit__(self, *exc):
        NameManager._local.current = self._old_manager


class Prefix(NameManager):
    """A NameManager that prepends `prefix` to every name, given or generated."""

    def __init__(self, prefix: str):
        super().__init__()
        self._prefix = prefix

    def get(self, name: str | None, hint: str) -> str:
        return self._prefix + super().get(name, hint)

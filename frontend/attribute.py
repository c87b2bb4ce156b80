"""`AttrScope`: attributes attached to every symbol created inside a `with` block (MXNet's)."""

from __future__ import annotations

import threading


class _CurrentScope(type):
    @property
    def current(cls) -> "AttrScope":
        """The innermost active scope of this thread (an empty one at first)."""
        scope = getattr(AttrScope._local, "current", None)
        if scope is None:
            scope = AttrScope._local.current = AttrScope()
        return scope


class AttrScope(metaclass=_CurrentScope):
    """`with mx.AttrScope(ctx_group='dev1'):` adds those string attributes to new symbols.
    `AttrScope.current` is the active one (a class property, as in MXNet 1.x)."""

    _local = threading.local()

    def __init__(self, **kwargs):
        for value in kwargs.values():
            if not isinstance(value, str):
                raise ValueError("Attributes need to be string")
        self._attr = kwargs
        self._old_scope = None

    def get(self, attr: dict | None) -> dict:
        """The scope's attributes merged under `attr` (explicit ones win)."""
        merged = dict(self._attr)
        merged.update(attr or {})
        return merged

    def __enter__(self):
        self._old_scope = AttrScope.current
        merged = dict(self._old_scope._attr)
        merged.update(self._attr)
        self._attr = merged
        AttrScope._local.current = self
        return self

    def __exit__(self, *exc):
        AttrScope._local.current = self._old_scope

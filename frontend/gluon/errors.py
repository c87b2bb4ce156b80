"""Gluon's error classes: MXNet 1.9.1 raises AssertionError, ValueError or RuntimeError for bad use of
Blocks and Parameters; Ember raises classes that are both those and `MXNetError`, so code written for
either catches them.
"""

from __future__ import annotations

from ember.runtime.errors import MXNetError


class DeferredInitializationError(MXNetError):
    """A Parameter's data was asked for before its deferred initialization ran (first forward)."""


class CheckFailed(MXNetError, AssertionError):
    """A check MXNet 1.9.1 makes with `assert` failed (MXNet raises AssertionError there)."""


class InvalidValue(MXNetError, ValueError):
    """A value MXNet 1.9.1 rejects with ValueError."""


def check(condition: bool, message: str) -> None:
    """Raise CheckFailed(`message`) unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)

"""The environment switches that choose how graphs run: interpreted, compiled, or tiered between both.

EMBER_EXECUTOR ('tiered' by default, 'compiled' or 'reference') and EMBER_COMPILE_AFTER (the runs after
which a graph is hot, default 20) are read here, in a module that imports nothing of Ember's but the
error classes, so every layer that decides when to compile (the executors' `tiering`, the imperative
engine's `ndarray/compiled_backward`) reads the same values without importing the others.
"""

from __future__ import annotations

import os

from ember.runtime.errors import MXNetError

EXECUTOR_ENV = "EMBER_EXECUTOR"
EXECUTORS = ("tiered", "compiled", "reference")
COMPILE_AFTER_ENV = "EMBER_COMPILE_AFTER"
DEFAULT_COMPILE_AFTER = 20


def executor_kind() -> str:
    """'tiered' (default), 'compiled' or 'reference', from EMBER_EXECUTOR; anything else is an error."""
    kind = os.environ.get(EXECUTOR_ENV, "tiered").strip().lower() or "tiered"
    if kind not in EXECUTORS:
        raise MXNetError(f"{EXECUTOR_ENV} must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    return kind


def compile_after() -> int:
    """EMBER_COMPILE_AFTER as a run count (default 20); MXNetError for anything but an integer >= 0."""
    text = os.environ.get(COMPILE_AFTER_ENV, "").strip()
    if not text:
        return DEFAULT_COMPILE_AFTER
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise MXNetError(f"{COMPILE_AFTER_ENV} must be a whole number of runs >= 0, got {text!r}")
    return count

"""Every test here is about compiled code: executors compile from their first run (EMBER_EXECUTOR=compiled),
not after the default 'tiered' executor's interpreted warm-up."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """Select the compiled executor unless a test sets EMBER_EXECUTOR itself (it may, after this)."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")

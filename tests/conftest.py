"""Shared test fixtures: where MXNet's own files are, and deterministic random numbers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMBER_SHARED", REPO.parent / "shared"))
TEST_FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip, with the reason printed, where no NVIDIA GPU can be used."""
    marked = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not marked:
        return
    from ember.runtime.cuda_driver import gpu_available

    usable, reason = gpu_available()
    if not usable:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=f"needs an NVIDIA GPU: {reason}"))


@pytest.fixture
def hot_steps(monkeypatch):
    """Compiled training steps (ember.ndarray.compiled_steps) hot after two eager runs, small ones
    compiled too, no timing trial, and no traces left over from other tests."""
    from ember.ndarray import compiled_steps, step_programs

    monkeypatch.setenv("EMBER_EXECUTOR", "tiered")
    monkeypatch.setenv("EMBER_COMPILE_AFTER", "2")
    monkeypatch.setattr(step_programs, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(compiled_steps, "TRIAL_RUNS", 1000)
    compiled_steps.forget_traces()
    compiled_steps.end_step()
    yield
    compiled_steps.end_step()
    compiled_steps.forget_traces()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def mxnet_fixture():
    """Path of a file written by MXNet 1.9.1: tests/fixtures first, then ../shared/fixtures/mxnet."""

    def find(name: str) -> Path:
        for folder in (TEST_FIXTURES, SHARED / "fixtures" / "mxnet"):
            if (folder / name).exists():
                return folder / name
        pytest.skip(f"MXNet fixture {name} not found in tests/fixtures or {SHARED}/fixtures/mxnet")

    return find

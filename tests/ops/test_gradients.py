"""Every differentiable op's gradient rule against central finite differences in float64."""

from __future__ import annotations

import pytest

from .grad_harness import check_gradient
from .harness import OpCase


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """The gradient checks run executors compiled from their first run (not 'tiered'), as before: the
    float64 programs stay covered, and Dropout's re-seeded mask never changes tier mid-check."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")


# Each entry: an OpCase and the inputs not to differentiate (indices, labels).
GRAD_CASES = [
    (OpCase("FullyConnected", [(3, 4), (5, 4), (5,)], {"num_hidden": 5}), ()),
    (OpCase("FullyConnected", [(2, 3, 2), (4, 6), (4,)], {"num_hidden": 4}), ()),
    (OpCase("FullyConnected", [(2, 3, 5), (7, 5)], {"num_hidden": 7, "no_bias": True, "flatten": False}), ()),
    *[
        (OpCase("Activation", [(3, 5)], {"act_type": act}), ())
        for act in ("relu", "sigmoid", "tanh", "softrelu", "softsign")
    ],
]


@pytest.mark.parametrize("case, skip", GRAD_CASES, ids=lambda c: c.id if isinstance(c, OpCase) else "")
def test_gradient_matches_finite_differences(case, skip):
    check_gradient(case, skip)

"""`mx.random`: the one random generator behind every draw Ember makes in Python, and its seed.

Ops that draw random numbers (Dropout in `mx.nd` and in the reference executor), the compiled
programs' per-run seeds, the initializers and the sampling functions all draw from `generator()`;
`seed(n)` replaces it, so a seeded program repeats its draws. This module imports nothing else of
Ember's, so every layer can draw from it. MXNet's sampling functions (`uniform`, `normal`,
`randint`) make NDArrays, so they live above the NDArray in `ember.ndarray.random` (`mx.nd.random`,
as in MXNet); the `ember` package makes them available here as well, as `mx.random.uniform`, ...
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["generator", "normal", "randint", "seed", "uniform"]  # the last three: see the docstring

_generator = np.random.default_rng()


def generator() -> np.random.Generator:
    """The generator all of Ember's random draws come from (replaced by `seed`)."""
    return _generator


def seed(seed_state: int, ctx="all") -> None:
    """Seed the random number generator: the same seed gives the same draws afterwards.

    MXNet keeps one generator per device and `ctx` picks which to seed; Ember has one generator
    for all devices, so every `ctx` seeds it.
    """
    global _generator
    if isinstance(seed_state, bool) or not isinstance(seed_state, numbers.Integral):
        # MXNet raises ValueError here, not TypeError
        raise ValueError(f"seed_state must be int, got {type(seed_state).__name__}")  # noqa: TRY004
    _generator = np.random.default_rng(int(seed_state))

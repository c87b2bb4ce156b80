"""`mx.random`: the one random generator behind every draw Ember makes in Python, and its seed.

Ops that draw random numbers (Dropout in `mx.nd` and in the reference executor), the compiled
programs' per-run seeds, the initializers and the sampling functions all draw from `generator()`;
`seed(n)` replaces it, so a seeded program repeats its draws. This module imports nothing else of
Ember's at load time, so every layer can draw from it. MXNet's sampling functions (`uniform`,
`normal`, `poisson`, ... see `SAMPLERS`) make NDArrays, so they live above the NDArray in
`ember.ndarray.random` (`mx.nd.random`, as in MXNet); the package attaches each to this module
(`mx.random.<name>` is the same function).
"""

from __future__ import annotations

import numbers

import numpy as np

# The names MXNet 1.9.1's mx.random re-exports from mx.nd.random (its `__all__`).
SAMPLERS = (
    "uniform",
    "normal",
    "randn",
    "poisson",
    "exponential",
    "gamma",
    "multinomial",
    "negative_binomial",
    "generalized_negative_binomial",
    "shuffle",
    "randint",
)

__all__ = ["generator", "seed", *SAMPLERS]

_generator = np.random.default_rng()


def generator() -> np.random.Generator:
    """The generator all of Ember's random draws come from (replaced by `seed`)."""
    return _generator


def seed(seed_state: int, ctx="all") -> None:
    """Seed the random number generator: the same seed gives the same draws afterwards.

    MXNet keeps one generator per device and `ctx` ('all', or a context) picks which to seed; Ember
    has one generator for all devices, so every `ctx` seeds it (a `ctx` that names no device is an
    MXNetError, as in MXNet).
    """
    global _generator
    if isinstance(seed_state, bool) or not isinstance(seed_state, numbers.Integral):
        # MXNet raises ValueError here, not TypeError
        raise ValueError(f"seed_state must be int, got {type(seed_state).__name__}")  # noqa: TRY004
    if not (isinstance(ctx, str) and ctx == "all"):
        from .context import Context

        Context(ctx)  # validates: mx.cpu(), mx.gpu(1) or a device type string, as MXNet's Context(ctx)
    _generator = np.random.default_rng(int(seed_state) % 2**64)


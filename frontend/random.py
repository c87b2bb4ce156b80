"""`mx.random`: the seed of every random draw Ember makes, and MXNet's sampling functions.

One NumPy generator serves ops that draw random numbers (Dropout, via `ember.ndarray.register.RNG`),
initializers and the functions here; `seed(n)` replaces it, so a seeded program repeats its draws.
`uniform`, `normal` and `randint` return new NDArrays or fill `out=`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .ndarray import register as _register
from .ndarray.creation import array as _array
from .ndarray.ndarray import NDArray

__all__ = ["generator", "normal", "randint", "seed", "uniform"]


def generator() -> np.random.Generator:
    """The generator all of Ember's random draws come from (replaced by `seed`)."""
    return _register.RNG


def seed(seed_state: int, ctx="all") -> None:
    """Seed the random number generator: the same seed gives the same draws afterwards.

    MXNet keeps one generator per device and `ctx` picks which to seed; Ember has one generator
    for all devices, so every `ctx` seeds it.
    """
    if isinstance(seed_state, bool) or not isinstance(seed_state, numbers.Integral):
        raise ValueError(f"seed_state must be int, got {type(seed_state).__name__}")  # noqa: TRY004 (as MXNet)
    _register.RNG = np.random.default_rng(int(seed_state))


def _emit(values: np.ndarray, dtype, ctx, out):
    """Write `values` into `out` (NDArray or NumPy array) or wrap them as a new NDArray."""
    if out is not None:
        if isinstance(out, NDArray):
            out[:] = values.astype(out.dtype, copy=False)
        else:
            out[...] = values
        return out
    return _array(values, ctx=ctx, dtype=dtype or "float32")


def _shape(shape, out) -> tuple[int, ...]:
    if out is not None:
        return tuple(out.shape)
    if shape is None:
        return (1,)
    return (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(d) for d in shape)


def uniform(low=0.0, high=1.0, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from U[low, high) with the given shape (default `(1,)`), or into `out`."""
    values = generator().uniform(low, high, size=_shape(shape, out))
    return _emit(values, dtype, ctx, out)


def normal(loc=0.0, scale=1.0, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from N(loc, scale**2) with the given shape (default `(1,)`), or into `out`."""
    values = generator().normal(loc, scale, size=_shape(shape, out))
    return _emit(values, dtype, ctx, out)


def randint(low, high, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Integers drawn uniformly from [low, high) (dtype int32 unless given), or into `out`."""
    values = generator().integers(low, high, size=_shape(shape, out))
    return _emit(values, dtype or "int32", ctx, out)

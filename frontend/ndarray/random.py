"""`mx.nd.random` (also `mx.random`'s sampling functions): `uniform`, `normal` and `randint`, which
return new NDArrays or fill `out=`, drawing from `ember.random.generator()`.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..random import generator, seed  # noqa: F401  (mx.nd.random.seed and .generator, as before)
from .creation import array
from .ndarray import NDArray

__all__ = ["generator", "normal", "randint", "seed", "uniform"]


def _emit(values: np.ndarray, dtype, ctx, out):
    """Write `values` into `out` (NDArray or NumPy array) or wrap them as a new NDArray."""
    if out is not None:
        if isinstance(out, NDArray):
            out[:] = values.astype(out.dtype, copy=False)
        else:
            out[...] = values
        return out
    return array(values, ctx=ctx, dtype=dtype or "float32")


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

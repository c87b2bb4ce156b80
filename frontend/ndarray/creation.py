"""Array creation (MXNET_COMPAT.md 3.1): `mx.nd.array`, `zeros`, `ones`, `full`, `empty`, `arange`,
`concatenate`. New arrays default to float32 and to the current context (`with mx.cpu(1): ...`).
`zeros_like`, `ones_like`, `concat` and `stack` are registry ops, generated in `register`.
"""

from __future__ import annotations

import numpy as np

from ..context import Context, current_context
from .ndarray import NDArray, np_dtype
from .register import op_function

DEFAULT_DTYPE = np.float32


def _dtype_or_default(dtype) -> np.dtype:
    return np_dtype(DEFAULT_DTYPE if dtype is None else dtype)


def _shape_tuple(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)


def _new(data: np.ndarray, ctx: Context | None) -> NDArray:
    return NDArray(data, ctx if ctx is not None else current_context())


def array(source_array, ctx: Context | None = None, dtype=None) -> NDArray:
    """A new array holding a copy of `source_array` (an NDArray, NumPy array, list or scalar).

    dtype defaults to float32 for every source but an NDArray, which keeps its own dtype.
    """
    if isinstance(source_array, NDArray):
        target = source_array._data.dtype if dtype is None else np_dtype(dtype)
        data = source_array._data.astype(target)
    else:
        target = np_dtype(DEFAULT_DTYPE if dtype is None else dtype)
        try:
            data = np.array(source_array, dtype=target)
        except (TypeError, ValueError) as err:
            raise TypeError(f"source_array must be array like object: {err}") from None
    return _new(data.reshape(1) if data.ndim == 0 else np.ascontiguousarray(data), ctx)


def empty(shape, ctx: Context | None = None, dtype=None) -> NDArray:
    """A new array of `shape` (its contents are zeros in Ember)."""
    return zeros(shape, ctx, dtype)


def zeros(shape, ctx: Context | None = None, dtype=None, **kwargs) -> NDArray:
    """A new array of `shape` filled with zeros."""
    return _new(np.zeros(_shape_tuple(shape), _dtype_or_default(dtype)), ctx)


def ones(shape, ctx: Context | None = None, dtype=None, **kwargs) -> NDArray:
    """A new array of `shape` filled with ones."""
    return _new(np.ones(_shape_tuple(shape), _dtype_or_default(dtype)), ctx)


def full(shape, val, ctx: Context | None = None, dtype=DEFAULT_DTYPE, out: NDArray | None = None) -> NDArray:
    """A new array of `shape` filled with `val` (or `out` filled with it)."""
    if out is not None:
        out[:] = val
        return out
    return _new(np.full(_shape_tuple(shape), val).astype(_dtype_or_default(dtype)), ctx)


def arange(start, stop=None, step=1.0, repeat=1, infer_range=None, ctx=None, dtype=DEFAULT_DTYPE) -> NDArray:
    """Evenly spaced values in [start, stop) (or [0, start) without stop), each repeated `repeat` times."""
    if stop is None:
        start, stop = 0, start
    values = np.repeat(np.arange(start, stop, step, dtype=np.float64), int(repeat))
    return _new(values.astype(_dtype_or_default(dtype)), ctx)


def concatenate(arrays, axis: int = 0, always_copy: bool = True) -> NDArray:
    """The arrays joined along `axis` (a list, unlike `concat(*arrays, dim=1)`)."""
    if not arrays:
        raise ValueError("concatenate needs at least one array")
    if len(arrays) == 1 and not always_copy:
        return arrays[0]
    return op_function("Concat")(*arrays, dim=axis)


def waitall() -> None:
    """Wait for all pending computation (Ember computes synchronously, so there is none)."""

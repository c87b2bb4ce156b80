"""NDArray indexing on the backing NumPy buffer, with MXNet 1.x's legacy results (MXNET_COMPAT.md 3.3).

Basic keys (ints, slices, `...`, `None`) return views when the selected elements form one contiguous
block of memory, as MXNet does, and copies otherwise; a key that picks a single element gives shape
(1,), never 0-d. Keys holding lists, NumPy arrays or NDArrays gather (always a copy).
"""

from __future__ import annotations

import numpy as np

from ember.runtime.errors import ShapeError

_BASIC = (int, np.integer, slice, type(Ellipsis), type(None))


def normalize_key(key, to_numpy):
    """The key with NDArrays and lists turned into integer NumPy arrays (`to_numpy` unwraps NDArrays)."""
    if isinstance(key, tuple):
        return tuple(_normalize_one(k, to_numpy) for k in key)
    return _normalize_one(key, to_numpy)


def _normalize_one(index, to_numpy):
    converted = to_numpy(index)
    if converted is not None:
        return converted.astype(np.int64)
    if isinstance(index, (list, np.ndarray)):
        return np.asarray(index).astype(np.int64)
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, _BASIC):
        raise IndexError(f"NDArray does not support indexing with {index!r} of type {type(index).__name__}")
    return index


def is_basic(key) -> bool:
    """Whether `key` (normalized) uses only ints, slices, `...` and `None`."""
    return all(isinstance(k, _BASIC) for k in _as_tuple(key))


def _as_tuple(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def getitem(data: np.ndarray, key) -> np.ndarray:
    """`data[key]` with MXNet's results: a view when contiguous, a copy otherwise, never 0-d."""
    if not is_basic(key):
        return np.ascontiguousarray(_at_least_1d(data[key]))
    result = data[key]
    if not isinstance(result, np.ndarray) or result.ndim == 0:
        result = data[_as_tuple(key) + (None,)]  # one element: a (1,) view instead of a scalar
    return result if result.flags.c_contiguous else result.copy()


def _at_least_1d(result) -> np.ndarray:
    result = np.asarray(result)
    return result.reshape(1) if result.ndim == 0 else result


def setitem(data: np.ndarray, key, value) -> None:
    """`data[key] = value`, `value` broadcast to the shape `getitem(data, key)` has (legacy shapes)."""
    target = data[key]
    target_shape = np.shape(target)
    legacy_shape = target_shape if target_shape else (1,)
    try:
        value = np.broadcast_to(value, legacy_shape).reshape(target_shape)
    except ValueError:
        raise ShapeError(
            f"cannot assign a value of shape {np.shape(value)} to an NDArray slice of shape {legacy_shape}"
        ) from None
    data[key] = value

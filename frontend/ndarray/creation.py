"""Array creation (MXNET_COMPAT.md 3.1): `mx.nd.array`, `zeros`, `ones`, `full`, `empty`, `arange`,
`linspace`, `eye`, `concatenate`. New arrays default to float32 and to the current context
(`with mx.cpu(1): ...`). `zeros_like`, `ones_like`, `concat` and `stack` are registry ops, generated in
`register`. Also MXNet's other Python-level functions of `mx.nd`: `moveaxis`, `split_v2`,
`onehot_encode`, `histogram`, `logical_and/or/xor`, and NumPy/DLPack exchange (`from_numpy`,
`from_dlpack`, `to_dlpack_for_read`, `to_dlpack_for_write`).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from ember.runtime.errors import MXNetError

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


def _check_dense(stype, function: str) -> None:
    if stype not in (None, "default"):
        raise MXNetError(
            f"{function}: storage type {stype!r} is not supported: sparse storage (csr, row_sparse) is not "
            "supported: Ember has dense NDArrays only"
        )


def empty(shape, ctx: Context | None = None, dtype=None, stype=None) -> NDArray:
    """A new array of `shape` (its contents are zeros in Ember); only dense storage (stype None or
    'default')."""
    _check_dense(stype, "empty")
    return zeros(shape, ctx, dtype)


def zeros(shape, ctx: Context | None = None, dtype=None, stype=None, **kwargs) -> NDArray:
    """A new array of `shape` filled with zeros; only dense storage (stype None or 'default')."""
    _check_dense(stype, "zeros")
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


def linspace(start, stop, num, endpoint=True, ctx=None, dtype=DEFAULT_DTYPE) -> NDArray:
    """`num` evenly spaced values from `start` to `stop` (included unless endpoint=False)."""
    values = np.linspace(start, stop, int(num), endpoint=bool(endpoint), dtype=np.float64)
    return _new(values.astype(_dtype_or_default(dtype)), ctx)


def eye(N, M=0, k=0, ctx=None, dtype=None, **kwargs) -> NDArray:
    """An N x M (M=0: N x N) array with ones on diagonal `k` (0: the main one) and zeros elsewhere."""
    return _new(np.eye(int(N), int(M) or None, int(k), dtype=_dtype_or_default(dtype)), ctx)


def _normalize_axes(axes, ndim: int, what: str) -> tuple[int, ...]:
    """`axes` (an int or a sequence) as non-negative axes of an ndim-d array; ValueError naming `what`."""
    axes = (axes,) if isinstance(axes, numbers.Integral) else tuple(axes)
    if any(not -ndim <= int(a) < ndim for a in axes):
        raise ValueError(f"{what} should verify 0 <= {what.lower()} < tensor.ndim ({ndim}); got {axes}")
    normalized = tuple(int(a) % ndim for a in axes)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{what} contains a repeated axis: {axes}")
    return normalized


def moveaxis(tensor: NDArray, source, destination) -> NDArray:
    """The array with axes `source` (int or sequence) moved to `destination`, the others kept in order."""
    source = _normalize_axes(source, tensor.ndim, "Source")
    destination = _normalize_axes(destination, tensor.ndim, "Destination")
    if len(source) != len(destination):
        raise ValueError("`source` and `destination` arguments must have the same number of elements")
    order = [n for n in range(tensor.ndim) if n not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return op_function("transpose")(tensor, axes=tuple(order))


def split_v2(ary: NDArray, indices_or_sections, axis=0, squeeze_axis=False):
    """NumPy-style split along `axis`: into `indices_or_sections` equal parts (an int), or at the given
    indices (a tuple). A list of arrays, or one array when there is one part; squeeze_axis=True drops
    `axis` from parts of size 1 there."""
    size = ary.shape[axis]
    if isinstance(indices_or_sections, int):
        if indices_or_sections <= 0 or size % indices_or_sections:
            raise ValueError("array split does not result in an equal division")
        step = size // indices_or_sections
        starts = [i * step for i in range(indices_or_sections)]
    elif isinstance(indices_or_sections, tuple):
        starts = [0, *indices_or_sections]
    else:
        raise ValueError("indices_or_sections must either int or tuple of ints")
    ends = starts[1:] + [size]
    parts = [_section(ary, axis, begin, end, squeeze_axis) for begin, end in zip(starts, ends)]
    return parts[0] if len(parts) == 1 else parts


def _section(ary: NDArray, axis: int, begin: int, end: int, squeeze_axis: bool) -> NDArray:
    if end <= begin:  # an empty section, as NumPy gives for repeated or decreasing indices
        shape = list(ary.shape)
        shape[axis] = 0
        return zeros(shape, ary.context, ary.dtype)
    part = op_function("slice_axis")(ary, axis=axis, begin=begin, end=end)
    if squeeze_axis and part.shape[axis] == 1:
        return op_function("squeeze")(part, axis=axis)
    return part


def onehot_encode(indices: NDArray, out: NDArray) -> NDArray:
    """Write into `out` (n x depth) the one-hot rows of the n class `indices`; returns `out`.
    (Deprecated in MXNet: use `one_hot`.)"""
    return op_function("one_hot")(indices, depth=out.shape[1], dtype=np.dtype(out.dtype).name, out=out)


def histogram(a: NDArray, bins=10, range=None):  # noqa: A002 - MXNet's parameter name
    """(counts, bin edges) of `a`'s values: `bins` equal bins over `range`, or the edges in NDArray
    `bins`. Without `range` both come from NumPy's choice of range, as float32, as in MXNet."""
    values = a.asnumpy().ravel()
    if isinstance(bins, NDArray):
        counts, _ = np.histogram(values, bins=bins.asnumpy())
        return NDArray(counts.astype(np.int64), a.context), bins
    if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool):
        raise ValueError("bins argument should be either an integer or an NDArray")
    if range is None:
        warnings.warn("range is not specified, using numpy's result to ensure consistency with numpy",
                      stacklevel=2)
        counts, edges = np.histogram(values, bins=int(bins))
        return array(counts, a.context), array(edges, a.context)
    counts, edges = np.histogram(values, bins=int(bins), range=tuple(range))
    return NDArray(counts.astype(np.int64), a.context), NDArray(edges.astype(np.float32), a.context)


def from_numpy(ndarray: np.ndarray, zero_copy=True, array_cls=NDArray) -> NDArray:
    """An NDArray of a NumPy array's values. With zero_copy (C-contiguous arrays only) it shares the
    NumPy array's memory, and that array is made read-only, as in MXNet; else the values are copied."""
    if not zero_copy:
        return array(ndarray, dtype=ndarray.dtype)
    if not ndarray.flags["C_CONTIGUOUS"]:
        raise ValueError("Only c-contiguous arrays are supported for zero-copy")
    np_dtype(ndarray.dtype)  # an MXNetError for dtypes Ember does not have
    shared = ndarray.view()
    ndarray.flags["WRITEABLE"] = False
    return array_cls(shared, current_context())


class _Capsule:
    """A DLPack capsule dressed as an object NumPy's `from_dlpack` takes (a CPU tensor)."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


def from_dlpack(dlpack) -> NDArray:
    """An NDArray sharing the memory of a DLPack tensor (a 'dltensor' capsule, consumed, or an object
    with `__dlpack__`) that lives in CPU memory."""
    source = dlpack if hasattr(dlpack, "__dlpack__") else _Capsule(dlpack)
    try:
        data = np.from_dlpack(source)
    except (TypeError, ValueError, RuntimeError, BufferError) as err:
        raise MXNetError(
            f"from_dlpack: invalid DLPack tensor ({err}); DLTensor capsules can be consumed only once"
        ) from None
    np_dtype(data.dtype)
    return NDArray(data if data.flags["C_CONTIGUOUS"] else np.ascontiguousarray(data), current_context())


def to_dlpack_for_read(data: NDArray):
    """A DLPack capsule ('dltensor') sharing the array's memory, for reading."""
    if not isinstance(data, NDArray):
        raise MXNetError(f"to_dlpack_for_read needs an NDArray, not {type(data).__name__}")
    data.wait_to_read()
    return data.host_buffer().__dlpack__()


def to_dlpack_for_write(data: NDArray):
    """A DLPack capsule ('dltensor') sharing the array's memory, for writing (Ember computes
    synchronously, so nothing is pending on it)."""
    if not isinstance(data, NDArray):
        raise MXNetError(f"to_dlpack_for_write needs an NDArray, not {type(data).__name__}")
    return data.host_buffer().__dlpack__()

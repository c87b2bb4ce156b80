"""Indexing and reshaping while autograd records: the view (or copy) NDArray indexing made, entered on
the tape as the registry ops that compute the same values, so gradients flow through it.

As in MXNet (`SliceWithRecord`, `ReshapeWithRecord`), a first-axis slice or a reshape of a recorded
array is still a view sharing memory; the tape gets a `slice` (+ `Reshape` where integers drop axes) or
`Reshape` node whose recorded value is that view. A gather along the first axis (`x[[2, 0]]`) becomes a
`take` node. Other advanced keys raise MXNetError naming the key. `record_assignment` records
`x[key] = y` for a recorded `y` (MXNet's `_slice_assign` under autograd).
"""

from __future__ import annotations

import numpy as np

from ember.runtime.errors import MXNetError

from . import dispatch, tape


def record_op(op: str, params: dict, inputs: list, values: list) -> tuple:
    """Enter `op(params)` applied to `inputs` ((entry, index) pairs, with NumPy data for checking) as
    having produced `values`; returns the (entry, 0) of its first output."""
    shapes = tuple(data.shape for _, data in inputs)
    dtypes = tuple(data.dtype for _, data in inputs)
    prepared = dispatch.prepared(op, params, None, shapes, dtypes)
    pairs = [pair if pair is not None else (tape.leaf_entry(data), 0) for pair, data in inputs]
    entry = tape.record_node(prepared.op, prepared.attrs, prepared.params, prepared.node_name, pairs, values)
    return entry, 0


def record_reshape(source: tuple, data: np.ndarray, result: np.ndarray) -> tuple:
    """The tape entry of `result`, a reshape of `data` (recorded as `source`)."""
    return record_op("Reshape", {"shape": result.shape}, [(source, data)], [result])


def record_getitem(source: tuple, data: np.ndarray, key, result: np.ndarray) -> tuple:
    """The tape entry of `result = data[key]` (legacy shapes), `data` recorded as `source`."""
    parts = key if isinstance(key, tuple) else (key,)
    if all(isinstance(k, (int, np.integer, slice)) for k in parts) and len(parts) <= data.ndim:
        return _record_basic(source, data, parts, result)
    if isinstance(key, np.ndarray) and key.ndim == 1:
        rows = np.where(key < 0, key + data.shape[0], key)  # NumPy's negative indices; take would clip
        indices = rows.astype(data.dtype if data.dtype.kind == "f" else np.float32)
        return record_op("take", {"axis": 0}, [(source, data), (None, indices)], [result])
    raise MXNetError(
        f"indexing with {key!r} is not differentiable in Ember: inside autograd.record() use ints, slices, "
        "or one list/array of indices along the first axis (or mx.nd.take / pick / gather ops)"
    )


def window_params(data: np.ndarray, parts: tuple) -> dict:
    """slice's begin/end/step for a basic key of ints and slices over `data`'s leading axes."""
    begin, end, step = [], [], []
    for axis, part in enumerate(parts):
        if isinstance(part, slice):
            start, stop, stride = part.indices(data.shape[axis])
            if stride < 0 and stop < 0:
                stop = None  # a negative stride running past the front
            begin.append(start)
            end.append(stop)
            step.append(stride)
        else:
            index = int(part) + (data.shape[axis] if part < 0 else 0)
            begin.append(index)
            end.append(index + 1)
            step.append(1)
    return {"begin": tuple(begin), "end": tuple(end), "step": tuple(step)}


def _window(params: dict) -> tuple:
    return tuple(slice(b, e, s) for b, e, s in zip(params["begin"], params["end"], params["step"]))


def _record_basic(source: tuple, data: np.ndarray, parts: tuple, result: np.ndarray) -> tuple:
    params = window_params(data, parts)
    sliced = data[_window(params)]
    if sliced.shape == result.shape:
        return record_op("slice", params, [(source, data)], [result])
    middle = record_op("slice", params, [(source, data)], [sliced])
    return record_reshape(middle, sliced, result)


def is_window_key(key, ndim: int) -> bool:
    """Whether `key` is ints and slices over at most `ndim` leading axes (a window slice can record)."""
    parts = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, np.integer, slice)) for k in parts) and len(parts) <= ndim


def record_assignment(data: np.ndarray, key, value: tuple, value_data: np.ndarray, old: np.ndarray) -> tuple:
    """The tape entry of `data` after `data[key] = value` (already done), `value` recorded as the
    (entry, index) pair of `value_data`, `old` a copy of `data` from before: the new array is
    `_backward_slice(value)` (the value in the window, zeros elsewhere) plus the old values outside the
    window (a constant), so the gradient reaching the value is the window of the array's gradient - what
    MXNet's `_slice_assign` gives."""
    parts = key if isinstance(key, tuple) else (key,)
    params = window_params(data, parts)
    window = _window(params)
    window_shape = data[window].shape
    target_shape = np.shape(data[key]) or (1,)  # what the value broadcasts to (legacy: never 0-d)
    pair, shaped = value, value_data
    if shaped.ndim < len(target_shape):  # leading axes of size 1, then broadcast
        padded = shaped.reshape((1,) * (len(target_shape) - shaped.ndim) + shaped.shape)
        pair, shaped = record_op("Reshape", {"shape": padded.shape}, [(pair, shaped)], [padded]), padded
    if shaped.shape != target_shape:
        spread = np.ascontiguousarray(np.broadcast_to(shaped, target_shape))
        pair, shaped = record_op("broadcast_to", {"shape": target_shape}, [(pair, shaped)], [spread]), spread
    if shaped.shape != window_shape:  # integer indices keep their axes (size 1) in the window
        windowed = shaped.reshape(window_shape)
        pair, shaped = record_op("Reshape", {"shape": window_shape}, [(pair, shaped)], [windowed]), windowed
    scattered = np.zeros(data.shape, data.dtype)
    scattered[window] = shaped
    inside = record_op("_backward_slice", {"shape": data.shape, **params}, [(pair, shaped)], [scattered])
    outside = old.copy()
    outside[window] = 0
    return record_op("elemwise_add", {}, [(inside, scattered), (None, outside)], [data])

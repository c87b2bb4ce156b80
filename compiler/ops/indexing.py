"""Indexing: take, pick, one_hot (Embedding lives in nn.py).

Indices may arrive in any dtype (MXNet's are usually float32) and are truncated to integers.
Out-of-range indices are clipped or wrapped per `mode`; one_hot leaves an out-of-range row all off.
"""

from __future__ import annotations

import numpy as np

from .params import Param, enum, optional, parse_bool, parse_float, parse_int
from .reduce import reduced_axis_shape
from .registry import FusionKind, define_op, grad_rule, no_gradient, reference, shape_rule, type_rule
from .rules import (
    Mismatch,
    RuleError,
    describe,
    first_input_type_rule,
    fixed_output_type,
    normalize_axis,
    size_of,
    unify,
)


def _bounded(indices: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Integer indices into an axis of `size`, out-of-range ones clipped, wrapped, or refused."""
    index = indices.astype(np.int64)
    if mode == "wrap":
        return np.mod(index, size)
    if mode == "raise" and (index.min(initial=0) < 0 or index.max(initial=0) >= size):
        raise IndexError(f"take operator contains indices out of bound [0, {size})")
    return np.clip(index, 0, size - 1)


# ---------------------------------------------------------------------------------------------
# take(a, indices): a.shape[:axis] + indices.shape + a.shape[axis+1:]

define_op(
    "take",
    inputs=("a", "indices"),
    params=(
        Param("axis", parse_int, 0, "the axis of `a` to index"),
        Param("mode", enum("clip", "wrap", "raise"), "clip", "how out-of-range indices behave"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Gathers slices of `a` along `axis` at `indices`.",
)


@shape_rule("take")
def take_shape(params, in_shapes, out_shapes):
    """Dim `axis` of a is replaced by all the dims of indices."""
    a, indices = in_shapes
    if a is None or indices is None:
        return in_shapes, out_shapes
    axis = normalize_axis(params["axis"], len(a))
    return in_shapes, [a[:axis] + tuple(indices) + a[axis + 1 :]]


type_rule("take")(first_input_type_rule)


@reference("take")
def take_reference(params, inputs, ctx):
    a, indices = inputs
    axis = normalize_axis(params["axis"], a.ndim)
    return [np.take(a, _bounded(indices, a.shape[axis], params["mode"]), axis=axis)]


def _scatter_mode(mode: str) -> str:
    """How the backward scatter reads indices: as the forward did ("raise" had none out of range)."""
    return "wrap" if mode == "wrap" else "clip"


@grad_rule("take")
def take_grad(g, node, out_grads):
    """dy viewed as (before, indices, after) and scatter-added along the middle axis; indices get none."""
    a, indices = node.inputs
    shape = g.shape(a)
    axis = normalize_axis(node.params["axis"], len(shape))
    before, count, after = size_of(shape[:axis]), size_of(g.shape(indices)), size_of(shape[axis + 1 :])
    grad = g.op("Reshape", out_grads[0], shape=(before, count, after))
    index = g.op("Reshape", indices, shape=(1, count, 1))
    mode = _scatter_mode(node.params["mode"])
    summed = g.op("_scatter_add_axis", grad, index, axis=1, size=shape[axis], mode=mode)
    return [g.op("Reshape", summed, shape=shape), None]


# ---------------------------------------------------------------------------------------------
# pick(data, index): one element along `axis` per position

define_op(
    "pick",
    aliases=("choose_element_0index",),
    inputs=("data", "index"),
    params=(
        Param("axis", optional(parse_int), -1, "the axis to pick along"),
        Param("keepdims", parse_bool, False, "whether the picked axis stays as a size-1 dim"),
        Param("mode", enum("wrap", "clip"), "clip", "how out-of-range indices behave"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Picks data[..., index[...], ...] along `axis`; index has the output's shape.",
)


@shape_rule("pick")
def pick_shape(params, in_shapes, out_shapes):
    """The output is data without `axis` (size 1 with keepdims); index has the output's shape."""
    data, index = in_shapes
    if params["axis"] is None:
        raise RuleError("pick needs an axis (axis=None is not supported)")
    out = out_shapes[0]
    forward = None if data is None else reduced_axis_shape(data, params["axis"], params["keepdims"])
    try:
        out = unify(unify(out, forward), index)
    except Mismatch:
        raise RuleError(
            f"index must have shape {describe(forward)} (data {describe(data)} without axis "
            f"{params['axis']}), got {describe(index)}"
        ) from None
    return [data, out], [out]


type_rule("pick")(first_input_type_rule)


@reference("pick")
def pick_reference(params, inputs, ctx):
    data, index = inputs
    axis = normalize_axis(params["axis"], data.ndim)
    kept = reduced_axis_shape(data.shape, axis, keepdims=True)
    positions = _bounded(index, data.shape[axis], params["mode"]).reshape(kept)
    picked = np.take_along_axis(data, positions, axis=axis)
    return [picked.reshape(reduced_axis_shape(data.shape, axis, params["keepdims"]))]


@grad_rule("pick")
def pick_grad(g, node, out_grads):
    """dy scatter-added into zeros of the data's shape at the picked positions; index gets none."""
    data, index = node.inputs
    shape = g.shape(data)
    axis = normalize_axis(node.params["axis"], len(shape))
    kept = reduced_axis_shape(shape, axis, keepdims=True)
    grad = out_grads[0]
    if g.shape(node.output(0)) != kept:  # index has the output's shape too
        grad, index = g.op("Reshape", grad, shape=kept), g.op("Reshape", index, shape=kept)
    mode = _scatter_mode(node.params["mode"])
    return [g.op("_scatter_add_axis", grad, index, axis=axis, size=shape[axis], mode=mode), None]


# ---------------------------------------------------------------------------------------------
# one_hot(indices): indices.shape + (depth,)

ONE_HOT_DTYPES = ("float32", "float64", "float16", "uint8", "int8", "int32", "int64")

define_op(
    "one_hot",
    inputs=("indices",),
    params=(
        Param("depth", parse_int, doc="the length of each one-hot vector"),
        Param("on_value", parse_float, 1.0, "the value at the index"),
        Param("off_value", parse_float, 0.0, "the value elsewhere"),
        Param("dtype", enum(*ONE_HOT_DTYPES), "float32", "the output dtype"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Expands each index into a vector of `depth` values: on_value at the index, off_value elsewhere.",
)


@shape_rule("one_hot")
def one_hot_shape(params, in_shapes, out_shapes):
    """The output is indices.shape + (depth,); the indices' shape is the output's without its last dim."""
    if params["depth"] < 1:
        raise RuleError(f"depth must be at least 1, got {params['depth']}")
    indices, out = in_shapes[0], out_shapes[0]
    forward = None if indices is None else tuple(indices) + (params["depth"],)
    backward = None if out is None else out[:-1]
    return [backward or indices], [forward or out]


type_rule("one_hot")(fixed_output_type(lambda params: params["dtype"]))


@reference("one_hot")
def one_hot_reference(params, inputs, ctx):
    index = inputs[0].astype(np.int64)
    depth = params["depth"]
    hot = (index[..., None] == np.arange(depth)) & (index[..., None] >= 0)
    return [np.where(hot, params["on_value"], params["off_value"]).astype(params["dtype"])]


no_gradient("one_hot")

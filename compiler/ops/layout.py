"""Layout: Pad (alias pad), reverse (alias flip), reshape_like, slice_like.

Each output element reads at most one input element (fusion kind INJECTIVE). reverse keeps the shape
and infers it both ways, as MXNet's ElemwiseShape does; the others infer forward, as in MXNet. Pad has
MXNet 1.9.1's limits: 4-D or 5-D input, no padding on the first two (batch and channel) axes.
"""

from __future__ import annotations

import numpy as np

from .params import Param, enum, optional, parse_float, parse_int, parse_tuple
from .registry import FusionKind, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import (
    RuleError,
    describe,
    first_input_type_rule,
    forward_rank_shape,
    normalize_axis,
    product_or_none,
    same_shape_rule,
    same_type_rule,
)
from .shape import reshape_grad

# ---------------------------------------------------------------------------------------------
# Pad(mode, pad_width, constant_value)

define_op(
    "Pad",
    aliases=("pad",),
    params=(
        Param("mode", enum("constant", "edge", "reflect"), "constant", "what the padding holds"),
        Param("pad_width", parse_tuple, doc="(before_1, after_1, ..., before_N, after_N), as numpy.pad's"),
        Param("constant_value", parse_float, 0.0, "the padding value in constant mode"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Pads the spatial axes of a 4-D or 5-D array with a constant, the edge values, or a reflection.",
)


def pad_pairs(params, data: tuple) -> list[tuple[int, int]]:
    """(before, after) per axis; RuleError where MXNet 1.9.1's Pad refuses the input or the widths."""
    ndim, widths = len(data), params["pad_width"]
    if ndim not in (4, 5):
        raise RuleError(f"Pad supports 4-D and 5-D input only, got {ndim}-D input {describe(data)}")
    if len(widths) != 2 * ndim:
        raise RuleError(f"pad_width {widths} must have 2 * ndim = {2 * ndim} entries for {ndim}-D input")
    if any(w < 0 for w in widths):
        raise RuleError(f"pad_width {widths} cannot be negative")
    if any(widths[:4]):
        raise RuleError(
            f"Pad cannot pad the first two axes (batch and channel): pad_width {widths} must start with 0, 0, 0, 0"
        )
    pairs = [(widths[2 * i], widths[2 * i + 1]) for i in range(ndim)]
    if params["mode"] == "reflect":
        for axis, ((before, after), size) in enumerate(zip(pairs, data)):
            if axis >= 2 and size is not None and max(before, after) >= size:
                raise RuleError(
                    f"reflect padding needs pad widths smaller than the axis: ({before}, {after}) on axis "
                    f"{axis} of size {size}"
                )
    return pairs


@shape_rule("Pad")
def pad_shape(params, in_shapes, out_shapes):
    """Each axis grows by its before and after widths."""
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    pairs = pad_pairs(params, data)
    return in_shapes, [tuple(None if d is None else d + b + a for d, (b, a) in zip(data, pairs))]


type_rule("Pad")(same_type_rule)


@reference("Pad")
def pad_reference(params, inputs, ctx):
    x = inputs[0]
    pairs = pad_pairs(params, x.shape)
    if params["mode"] == "constant":
        value = np.array(params["constant_value"]).astype(x.dtype)
        return [np.pad(x, pairs, mode="constant", constant_values=value)]
    return [np.pad(x, pairs, mode=params["mode"])]


@grad_rule("Pad")
def pad_grad(g, node, out_grads):
    """Constant padding: dy cropped back to the data. Edge and reflect: each copy's gradient summed in too."""
    p, dy = node.params, out_grads[0]
    if p["mode"] != "constant":
        return [g.op("_backward_pad", dy, mode=p["mode"], pad_width=p["pad_width"])]
    shape = g.shape(node.inputs[0])
    pairs = pad_pairs(p, shape)
    begin = tuple(before for before, _ in pairs)
    return [g.op("slice", dy, begin=begin, end=tuple(b + d for b, d in zip(begin, shape)))]


# ---------------------------------------------------------------------------------------------
# reverse(axis): flip the order along axes

define_op(
    "reverse",
    aliases=("flip",),
    params=(Param("axis", parse_tuple, doc="the axes to reverse, each in [0, ndim)"),),
    fusion=FusionKind.INJECTIVE,
    doc="Reverses the order of elements along the given axes; the shape is kept.",
)


def reverse_axes(params, ndim: int) -> tuple[int, ...]:
    """The axes to flip; MXNet 1.9.1's reverse reads no negative axes, so neither does Ember."""
    for axis in params["axis"]:
        if not 0 <= axis < ndim:
            raise RuleError(f"reverse axis {axis} must be in [0, {ndim}) for {ndim}-D input")
    return params["axis"]


@shape_rule("reverse")
def reverse_shape(params, in_shapes, out_shapes):
    """The output has the input's shape (either side gives the other); every axis must exist."""
    in_shapes, out_shapes = same_shape_rule(params, in_shapes, out_shapes)
    if out_shapes[0] is not None:
        reverse_axes(params, len(out_shapes[0]))
    return in_shapes, out_shapes


type_rule("reverse")(same_type_rule)


@reference("reverse")
def reverse_reference(params, inputs, ctx):
    # One flip per listed axis, as MXNet's kernel does: an axis listed twice is flipped back.
    out = inputs[0]
    for axis in reverse_axes(params, out.ndim):
        out = np.flip(out, axis)
    return [np.ascontiguousarray(out)]


@grad_rule("reverse")
def reverse_grad(g, node, out_grads):
    return [g.op("reverse", out_grads[0], axis=node.params["axis"])]


# ---------------------------------------------------------------------------------------------
# reshape_like(lhs, rhs): lhs dims [lhs_begin, lhs_end) become rhs dims [rhs_begin, rhs_end)

define_op(
    "reshape_like",
    inputs=("lhs", "rhs"),
    params=(
        Param("lhs_begin", optional(parse_int), None, "first lhs dim to replace (None: 0)"),
        Param("lhs_end", optional(parse_int), None, "one past the last lhs dim to replace (None: ndim)"),
        Param("rhs_begin", optional(parse_int), None, "first rhs dim to copy (None: 0)"),
        Param("rhs_end", optional(parse_int), None, "one past the last rhs dim to copy (None: ndim)"),
    ),
    fusion=FusionKind.INJECTIVE,
    reshapes_input=True,  # lhs only; rhs gives just a shape
    doc="Gives lhs the shape of rhs (or swaps a range of lhs dims for a range of rhs dims); sizes must match.",
)


def _dim_range(side: str, begin: int | None, end: int | None, ndim: int) -> tuple[int, int]:
    """MXNet's ReshapeLikeRangeCanonicalize: [begin, end) within [0, ndim], non-empty."""
    first = 0 if begin is None else begin + ndim if begin < 0 else begin
    last = ndim if end is None else end + ndim if end < 0 else end
    if not 0 <= first < last <= ndim:
        raise RuleError(
            f"{side}_begin={begin}, {side}_end={end} is not a non-empty range of the {side}'s {ndim} dims"
        )
    return first, last


def reshape_like_target(params, lhs: tuple, rhs: tuple) -> tuple:
    """lhs with dims [lhs_begin, lhs_end) replaced by rhs dims [rhs_begin, rhs_end); sizes must agree."""
    lb, le = _dim_range("lhs", params["lhs_begin"], params["lhs_end"], len(lhs))
    rb, re = _dim_range("rhs", params["rhs_begin"], params["rhs_end"], len(rhs))
    out = lhs[:lb] + rhs[rb:re] + lhs[le:]
    before, after = product_or_none(lhs), product_or_none(out)
    if None not in (before, after) and before != after:
        raise RuleError(
            f"cannot reshape lhs {describe(lhs)} ({before} elements) to {describe(out)} ({after} elements)"
        )
    return out


# The output is lhs's leading and trailing dims around rhs's selected dims.
shape_rule("reshape_like")(forward_rank_shape(reshape_like_target))


type_rule("reshape_like")(first_input_type_rule)


@reference("reshape_like")
def reshape_like_reference(params, inputs, ctx):
    lhs, rhs = inputs
    return [lhs.reshape(reshape_like_target(params, lhs.shape, rhs.shape))]


grad_rule("reshape_like")(reshape_grad)


# ---------------------------------------------------------------------------------------------
# slice_like(data, shape_like, axes): data[:d_0, :d_1, ...] on the chosen axes

define_op(
    "slice_like",
    inputs=("data", "shape_like"),
    params=(Param("axes", parse_tuple, (), "the axes to slice (negative allowed); () slices every axis"),),
    fusion=FusionKind.INJECTIVE,
    doc="Slices data from 0 to shape_like's size on the chosen axes (all axes by default).",
)


def _sliced_axes(params, data: tuple, like: tuple) -> tuple[int, ...]:
    if not params["axes"]:
        if len(data) != len(like):
            raise RuleError(
                f"slice_like with no axes slices every axis, so data {describe(data)} and shape_like "
                f"{describe(like)} need the same number of dims"
            )
        return tuple(range(len(data)))
    axes = tuple(normalize_axis(a, len(data), "slice_like axis") for a in params["axes"])
    for axis in axes:
        if axis >= len(like):
            raise RuleError(
                f"slice_like axis {axis} exceeds the {len(like)} dims of shape_like {describe(like)}"
            )
    return axes


def slice_like_shape_of(params, data: tuple, like: tuple) -> tuple:
    """data with each sliced axis cut to shape_like's size there, which cannot exceed data's."""
    out = list(data)
    for axis in _sliced_axes(params, data, like):
        if None not in (data[axis], like[axis]) and like[axis] > data[axis]:
            raise RuleError(
                f"slice_like axis {axis}: shape_like's size {like[axis]} exceeds data's size {data[axis]}"
            )
        out[axis] = like[axis]
    return tuple(out)


# The output is data's shape with the sliced axes taken from shape_like.
shape_rule("slice_like")(forward_rank_shape(slice_like_shape_of))


type_rule("slice_like")(first_input_type_rule)


@reference("slice_like")
def slice_like_reference(params, inputs, ctx):
    data, like = inputs
    out = slice_like_shape_of(params, data.shape, like.shape)
    return [data[tuple(slice(0, d) for d in out)].copy()]


@grad_rule("slice_like")
def slice_like_grad(g, node, out_grads):
    """dy written into zeros of the data's shape at the leading corner; shape_like only lends a shape."""
    out = g.shape(node.output(0))
    shape = g.shape(node.inputs[0])
    return [g.op("_backward_slice", out_grads[0], shape=shape, begin=(0,) * len(out), end=out), None]

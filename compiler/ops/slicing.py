"""Windows and repetitions: slice_axis, slice, tile, repeat (all INJECTIVE; shapes infer forward)."""

from __future__ import annotations

import numpy as np

from .params import (
    Param,
    optional,
    parse_int,
    parse_optional_int_tuple,
    parse_tuple,
)
from .registry import FusionKind, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import (
    RuleError,
    normalize_axis,
    product_or_none,
    same_type_rule,
    size_of,
    with_dim,
)

# ---------------------------------------------------------------------------------------------
# slice_axis(axis, begin, end)

define_op(
    "slice_axis",
    params=(
        Param("axis", parse_int, doc="the axis to slice"),
        Param("begin", parse_int, doc="the first index (negative counts from the end)"),
        Param("end", optional(parse_int), doc="one past the last index; None means the end"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Takes elements begin..end-1 along one axis.",
)


def slice_axis_bounds(params, size: int) -> tuple[int, int]:
    """begin and end as indices in [0, size]; RuleError when the range is empty or out of bounds."""
    begin = params["begin"] + size if params["begin"] < 0 else params["begin"]
    end = size if params["end"] is None else params["end"] + size if params["end"] < 0 else params["end"]
    if not 0 <= begin < end <= size:
        raise RuleError(
            f"slice_axis begin={params['begin']}, end={params['end']} is not a non-empty range of an axis of "
            f"size {size}"
        )
    return begin, end


@shape_rule("slice_axis")
def slice_axis_shape(params, in_shapes, out_shapes):
    """The input with dim `axis` replaced by end - begin."""
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    axis = normalize_axis(params["axis"], len(data))
    if data[axis] is None:
        return in_shapes, [with_dim(data, axis, None)]
    begin, end = slice_axis_bounds(params, data[axis])
    return in_shapes, [with_dim(data, axis, end - begin)]


type_rule("slice_axis")(same_type_rule)


@reference("slice_axis")
def slice_axis_reference(params, inputs, ctx):
    x = inputs[0]
    axis = normalize_axis(params["axis"], x.ndim)
    begin, end = slice_axis_bounds(params, x.shape[axis])
    return [np.take(x, np.arange(begin, end), axis=axis)]


@grad_rule("slice_axis")
def slice_axis_grad(g, node, out_grads):
    """dy written into zeros of the data's shape at begin..end-1 along `axis`."""
    shape = g.shape(node.inputs[0])
    axis = normalize_axis(node.params["axis"], len(shape))
    begin, end = slice_axis_bounds(node.params, shape[axis])
    lead = (None,) * axis
    return [g.op("_backward_slice", out_grads[0], shape=shape, begin=lead + (begin,), end=lead + (end,))]


# ---------------------------------------------------------------------------------------------
# slice(begin, end, step): a strided window on the leading axes

define_op(
    "slice",
    params=(
        Param("begin", parse_optional_int_tuple, doc="start index per axis (None: from the edge)"),
        Param("end", parse_optional_int_tuple, doc="stop index per axis, exclusive (None: to the edge)"),
        Param("step", parse_optional_int_tuple, (), "step per axis (None or missing: 1)"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Slices the leading len(begin) axes with begin:end:step, as Python slicing does.",
)


def _axis_window(begin, end, step, size: int) -> slice:
    """One axis of the window, clamped as MXNet's GetIndexRange clamps; RuleError when empty."""
    if step == 0:
        raise RuleError("slice step cannot be 0")
    window = slice(begin, end, step)
    start, stop, _ = window.indices(size)
    if len(range(start, stop, step)) == 0:
        raise RuleError(
            f"slice begin={begin}, end={end}, step={step} selects nothing from an axis of size {size}"
        )
    return slice(start, stop if stop >= 0 else None, step)


def _window_length(window: slice) -> int:
    return len(range(window.start, -1 if window.stop is None else window.stop, window.step))


def slice_windows(params, shape: tuple) -> list[slice | None]:
    """The window of each leading axis (None where the axis size is unknown)."""
    begin, end, step = params["begin"], params["end"], params["step"]
    if len(begin) != len(end) or len(step) not in (0, len(begin)):
        raise RuleError(f"begin {begin}, end {end} and step {step} must have one length")
    if len(begin) > len(shape):
        raise RuleError(f"slicing {len(begin)} axes exceeds the input's {len(shape)} dims")
    steps = step or (None,) * len(begin)
    return [
        None if size is None else _axis_window(b, e, 1 if s is None else s, size)
        for b, e, s, size in zip(begin, end, steps, shape)
    ]


@shape_rule("slice")
def slice_shape(params, in_shapes, out_shapes):
    """Each sliced axis keeps the elements begin:end:step selects; the other axes are kept."""
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    windows = slice_windows(params, data)
    sliced = tuple(None if w is None else _window_length(w) for w in windows)
    return in_shapes, [sliced + tuple(data[len(windows) :])]


type_rule("slice")(same_type_rule)


@reference("slice")
def slice_reference(params, inputs, ctx):
    x = inputs[0]
    return [x[tuple(slice_windows(params, x.shape))].copy()]


@grad_rule("slice")
def slice_grad(g, node, out_grads):
    """dy written into zeros of the data's shape through the same window."""
    p = node.params
    shape = g.shape(node.inputs[0])
    return [
        g.op("_backward_slice", out_grads[0], shape=shape, begin=p["begin"], end=p["end"], step=p["step"])
    ]


# ---------------------------------------------------------------------------------------------
# tile(reps) and repeat(repeats, axis)

define_op(
    "tile",
    params=(Param("reps", parse_tuple, doc="the repetitions per axis (aligned from the right)"),),
    fusion=FusionKind.INJECTIVE,
    doc="Repeats the whole array `reps` times per axis, as numpy.tile.",
)


@shape_rule("tile")
def tile_shape(params, in_shapes, out_shapes):
    """Shape and reps are right-aligned (padded with 1s); each output dim is dim * rep."""
    data, reps = in_shapes[0], params["reps"]
    if data is None:
        return in_shapes, out_shapes
    if any(r < 0 for r in reps):
        raise RuleError(f"reps {reps} cannot be negative")
    if not reps:
        return in_shapes, [data]
    ndim = max(len(data), len(reps))
    dims = (1,) * (ndim - len(data)) + tuple(data)
    reps = (1,) * (ndim - len(reps)) + tuple(reps)
    return in_shapes, [tuple(None if d is None else d * r for d, r in zip(dims, reps))]


type_rule("tile")(same_type_rule)


@reference("tile")
def tile_reference(params, inputs, ctx):
    return [np.tile(inputs[0], params["reps"])]


@grad_rule("tile")
def tile_grad(g, node, out_grads):
    """dy viewed as (rep_0, dim_0, rep_1, dim_1, ...) and summed over the reps."""
    shape = g.shape(node.inputs[0])
    reps = node.params["reps"]
    ndim = max(len(shape), len(reps))
    dims = (1,) * (ndim - len(shape)) + shape
    reps = (1,) * (ndim - len(reps)) + tuple(reps)
    split = tuple(n for pair in zip(reps, dims) for n in pair)
    summed = g.op("sum", g.op("Reshape", out_grads[0], shape=split), axis=tuple(range(0, 2 * ndim, 2)))
    return [g.op("Reshape", summed, shape=shape)]


define_op(
    "repeat",
    params=(
        Param("repeats", parse_int, doc="how many times each element is repeated"),
        Param("axis", optional(parse_int), None, "the axis to repeat along; None flattens first"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Repeats each element `repeats` times along `axis` (of the flattened input when axis is None).",
)


@shape_rule("repeat")
def repeat_shape(params, in_shapes, out_shapes):
    """Dim `axis` multiplied by repeats; the flattened size times repeats when axis is None."""
    data, repeats = in_shapes[0], params["repeats"]
    if repeats < 0:
        raise RuleError(f"repeats must be non-negative, got {repeats}")
    if data is None:
        return in_shapes, out_shapes
    if params["axis"] is None:
        total = product_or_none(data)
        return in_shapes, [(None if total is None else total * repeats,)]
    axis = normalize_axis(params["axis"], len(data))
    return in_shapes, [with_dim(data, axis, None if data[axis] is None else data[axis] * repeats)]


type_rule("repeat")(same_type_rule)


@reference("repeat")
def repeat_reference(params, inputs, ctx):
    return [np.repeat(inputs[0], params["repeats"], axis=params["axis"])]


@grad_rule("repeat")
def repeat_grad(g, node, out_grads):
    """dy with the repeated axis split into (dim, repeats), summed over the repeats."""
    shape = g.shape(node.inputs[0])
    repeats, axis = node.params["repeats"], node.params["axis"]
    if axis is None:
        dims, axis = (size_of(shape),), 0
    else:
        dims, axis = shape, normalize_axis(axis, len(shape))
    split = dims[:axis] + (dims[axis], repeats) + dims[axis + 1 :]
    summed = g.op("sum", g.op("Reshape", out_grads[0], shape=split), axis=axis + 1)
    return [g.op("Reshape", summed, shape=shape)]

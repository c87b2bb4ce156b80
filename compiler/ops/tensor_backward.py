"""Backward-only helper ops: the adjoints of gathers and windows that no forward op expresses cheaply.

Gradient rules (passes/autodiff.py) emit these; nothing in MXNet's API creates them.
`_backward_slice` writes a gradient into a zero array through slice's begin:end:step window (slice,
slice_axis, slice_like); `_backward_pad` sums Pad's edge and reflect copies back onto the elements
they copy; `_scatter_add_axis` adds gradient entries along one axis at given indices (take, pick,
sort, topk), the adjoint of a gather.
"""

from __future__ import annotations

import numpy as np

from .indexing import _bounded
from .layout import pad_pairs
from .params import Param, enum, parse_int, parse_optional_int_tuple, parse_tuple
from .registry import FusionKind, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import RuleError, describe, first_input_type_rule, normalize_axis, same_type_rule, with_dim
from .slicing import slice_windows

# ---------------------------------------------------------------------------------------------
# _backward_slice(grad; shape, begin, end, step): zeros of `shape`, grad in the window

define_op(
    "_backward_slice",
    inputs=("grad",),
    params=(
        Param("shape", parse_tuple, doc="the shape of the sliced data, which the output takes"),
        Param("begin", parse_optional_int_tuple, doc="start index per axis, as slice's"),
        Param("end", parse_optional_int_tuple, doc="stop index per axis, as slice's"),
        Param("step", parse_optional_int_tuple, (), "step per axis, as slice's"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Zeros of `shape` with `grad` written into the window slice(begin, end, step) reads.",
)


def _window_shape(params) -> tuple:
    """The shape slice(begin, end, step) takes out of `shape`: the shape grad must have."""
    shape = params["shape"]
    windows = slice_windows(params, shape)
    return tuple(len(range(size)[w]) for w, size in zip(windows, shape)) + tuple(shape[len(windows) :])


@shape_rule("_backward_slice")
def backward_slice_shape(params, in_shapes, out_shapes):
    """The output is `shape`; grad has the window's shape."""
    grad = in_shapes[0]
    window = _window_shape(params)
    if grad is not None and (
        len(grad) != len(window) or any(a not in (None, b) for a, b in zip(grad, window))
    ):
        raise RuleError(f"grad {describe(grad)} must have the window's shape {describe(window)}")
    return [window], [tuple(params["shape"])]


type_rule("_backward_slice")(same_type_rule)


@reference("_backward_slice")
def backward_slice_reference(params, inputs, ctx):
    grad = inputs[0]
    out = np.zeros(params["shape"], dtype=grad.dtype)
    out[tuple(slice_windows(params, out.shape))] = grad
    return [out]


@grad_rule("_backward_slice")
def backward_slice_grad(g, node, out_grads):
    """The adjoint of writing into a window is reading it."""
    p = node.params
    return [g.op("slice", out_grads[0], begin=p["begin"], end=p["end"], step=p["step"])]


# ---------------------------------------------------------------------------------------------
# _backward_pad(grad; mode, pad_width): Pad's adjoint

define_op(
    "_backward_pad",
    inputs=("grad",),
    params=(
        Param("mode", enum("constant", "edge", "reflect"), "constant", "the padding mode, as Pad's"),
        Param("pad_width", parse_tuple, doc="(before_1, after_1, ..., before_N, after_N), as Pad's"),
    ),
    fusion=FusionKind.OPAQUE,
    doc="Sums each element of a padded array's gradient into the input element Pad copied it from.",
)


def _unpadded(params, grad: tuple) -> tuple:
    widths = params["pad_width"]
    if len(widths) != 2 * len(grad):
        raise RuleError(
            f"pad_width {widths} must have 2 * ndim = {2 * len(grad)} entries for {describe(grad)}"
        )
    out = tuple(None if d is None else d - widths[2 * i] - widths[2 * i + 1] for i, d in enumerate(grad))
    if any(d is not None and d < 1 for d in out):
        raise RuleError(f"grad {describe(grad)} is not larger than pad_width {widths}")
    pad_pairs(params, out)  # Pad's own limits, on the shape it padded
    return out


@shape_rule("_backward_pad")
def backward_pad_shape(params, in_shapes, out_shapes):
    """Each axis shrinks by its before and after widths."""
    grad = in_shapes[0]
    if grad is None:
        return in_shapes, out_shapes
    return in_shapes, [_unpadded(params, grad)]


type_rule("_backward_pad")(same_type_rule)


def _source_positions(mode: str, size: int, before: int, after: int) -> np.ndarray:
    """For each position along a padded axis, the input position Pad copied (-1: a constant)."""
    if mode == "constant":
        return np.concatenate([np.full(before, -1), np.arange(size), np.full(after, -1)])
    return np.pad(np.arange(size), (before, after), mode=mode)


@reference("_backward_pad")
def backward_pad_reference(params, inputs, ctx):
    out = inputs[0]
    for axis, (before, after) in enumerate(pad_pairs(params, _unpadded(params, out.shape))):
        if before == after == 0:
            continue
        sources = _source_positions(params["mode"], out.shape[axis] - before - after, before, after)
        kept = np.flatnonzero(sources >= 0)
        summed = np.zeros(with_dim(out.shape, axis, out.shape[axis] - before - after), dtype=out.dtype)
        index = (slice(None),) * axis + (sources[kept],)
        np.add.at(summed, index, np.take(out, kept, axis=axis))
        out = summed
    return [out]


@grad_rule("_backward_pad")
def backward_pad_grad(g, node, out_grads):
    """The adjoint of Pad's adjoint is Pad (constant padding with zeros)."""
    p = node.params
    return [g.op("Pad", out_grads[0], mode=p["mode"], pad_width=p["pad_width"], constant_value=0.0)]


# ---------------------------------------------------------------------------------------------
# _scatter_add_axis(grad, index; axis, size, mode): the adjoint of a gather along one axis

define_op(
    "_scatter_add_axis",
    inputs=("grad", "index"),
    params=(
        Param("axis", parse_int, doc="the axis the gather indexed"),
        Param("size", parse_int, doc="the size of that axis in the gathered array"),
        Param("mode", enum("clip", "wrap"), "clip", "how out-of-range indices were read"),
    ),
    fusion=FusionKind.OPAQUE,
    doc=(
        "out[..., index[..., j, ...], ...] += grad[..., j, ...] along `axis` (index broadcast to grad), into "
        "zeros whose `axis` has `size` elements."
    ),
)


def _check_index(index: tuple, grad: tuple) -> None:
    if len(index) != len(grad) or any(None not in (i, d) and i not in (1, d) for i, d in zip(index, grad)):
        raise RuleError(f"index {describe(index)} must broadcast to grad {describe(grad)} with the same rank")


@shape_rule("_scatter_add_axis")
def scatter_add_axis_shape(params, in_shapes, out_shapes):
    """grad's shape with dim `axis` replaced by `size`; index broadcasts to grad."""
    grad, index = in_shapes
    if params["size"] < 1:
        raise RuleError(f"size must be at least 1, got {params['size']}")
    if grad is None:
        return in_shapes, out_shapes
    if index is not None:
        _check_index(index, grad)
    return in_shapes, [with_dim(tuple(grad), normalize_axis(params["axis"], len(grad)), params["size"])]


type_rule("_scatter_add_axis")(first_input_type_rule)


@reference("_scatter_add_axis")
def scatter_add_axis_reference(params, inputs, ctx):
    grad, index = inputs
    axis = normalize_axis(params["axis"], grad.ndim)
    positions = _bounded(np.broadcast_to(index, grad.shape), params["size"], params["mode"])
    out = np.zeros(with_dim(grad.shape, axis, params["size"]), dtype=grad.dtype)
    where = list(np.indices(grad.shape, sparse=True))
    where[axis] = positions
    np.add.at(out, tuple(where), grad)
    return [out]


@grad_rule("_scatter_add_axis")
def scatter_add_axis_grad(g, node, out_grads):
    """d grad[..., j, ...] = dy[..., index[..., j, ...], ...]: a gather, written as a one-hot contraction.

    Only second-order gradients reach this, so the one-hot's extra `size` factor is acceptable.
    """
    grad, index = node.inputs
    dy, p = out_grads[0], node.params
    ndim = len(g.shape(grad))
    axis = normalize_axis(p["axis"], ndim)
    whole = g.op("trunc", index)
    if p["mode"] == "wrap":
        whole = g.op("_mod_scalar", whole, scalar=float(p["size"]))
    else:
        whole = g.op("clip", whole, a_min=0.0, a_max=float(p["size"] - 1))
    hot = g.op("one_hot", whole, depth=p["size"], dtype=g.dtype(grad))  # index.shape + (size,)
    to_last = tuple(i for i in range(ndim) if i != axis) + (axis,)
    lined_up = g.op("expand_dims", g.op("transpose", dy, axes=to_last), axis=axis)  # 1 at axis, size last
    gathered = g.op("sum", g.op("broadcast_mul", lined_up, hot), axis=-1)
    shape = g.shape(grad)
    if g.shape(index)[axis] != shape[axis]:  # one index for the whole axis: every entry reads it
        gathered = g.op("broadcast_to", gathered, shape=shape)
    return [gathered, None]

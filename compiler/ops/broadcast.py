"""The broadcast_* family: binary ops with NumPy-style broadcasting, and broadcast_to/axis/like.

Each entry of elementwise.py's `BINARY` table gives a broadcast_<key> op: its formula and gradient
after right-aligned broadcasting (size-1 or missing leading dims stretch); the output keeps lhs's
dtype, comparisons give 0/1 in it. As in MXNet, shapes are inferred forward only: an output dim is
known once both operand dims are.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .elementwise import BINARY, binary_formula, binary_gradients, define_formula
from .params import Param, optional, parse_axes, parse_tuple
from .registry import FusionKind, define_op, grad_rule, no_gradient, reference, shape_rule, type_rule
from .rules import RuleError, describe, forward_rank_shape, normalize_axis, same_type_rule


def broadcast_dims(lhs: tuple, rhs: tuple) -> tuple:
    """Right-aligned broadcasting of two partial shapes of known rank; a dim is None until both are known."""
    ndim = max(len(lhs), len(rhs))
    a = (1,) * (ndim - len(lhs)) + tuple(lhs)
    b = (1,) * (ndim - len(rhs)) + tuple(rhs)
    out = []
    for x, y in zip(a, b):
        if x is not None and y is not None and x != y and 1 not in (x, y):
            raise RuleError(
                f"operands could not be broadcast together with shapes {describe(lhs)} {describe(rhs)}"
            )
        out.append(None if x is None or y is None else (y if x == 1 else x))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# broadcast_add, broadcast_sub, ...: lhs, rhs -> broadcast shape


def broadcast_binary_shape(params, in_shapes, out_shapes):
    """The output is lhs and rhs broadcast together (numpy rules)."""
    lhs, rhs = in_shapes
    if lhs is None or rhs is None:
        return in_shapes, out_shapes
    return in_shapes, [broadcast_dims(lhs, rhs)]


for _key, _op in BINARY.items():
    _name = f"broadcast_{_key}"
    define_op(
        _name,
        aliases=_op.broadcast_aliases,
        inputs=("lhs", "rhs"),
        fusion=FusionKind.BROADCAST,
        doc=f"Applies {_key} to lhs and rhs after NumPy-style broadcasting.",
    )
    shape_rule(_name)(broadcast_binary_shape)
    type_rule(_name)(same_type_rule)
    define_formula(_name, partial(binary_formula, _op), broadcast=True)


@grad_rule(*(f"broadcast_{key}" for key, op in BINARY.items() if op.grad))
def broadcast_binary_grad(g, node, out_grads):
    """The entry's gradients with broadcast_* ops, each summed back to its operand's shape."""
    grads = binary_gradients(g, node, out_grads, node.schema.name[len("broadcast_") :], broadcast=True)
    out = node.output(0)
    return [g.sum_to(grad, g.shape(value), g.shape(out)) for grad, value in zip(grads, node.inputs)]


no_gradient(*(f"broadcast_{key}" for key, op in BINARY.items() if not op.grad))


# ---------------------------------------------------------------------------------------------
# broadcast_to(shape): 0 in `shape` keeps the input dim

define_op(
    "broadcast_to",
    params=(Param("shape", parse_tuple, (), "the target shape; 0 keeps the input's dim"),),
    fusion=FusionKind.BROADCAST,
    doc="Broadcasts size-1 dims of the input to `shape` (same rank; 0 keeps a dim).",
)


@shape_rule("broadcast_to")
def broadcast_to_shape(params, in_shapes, out_shapes):
    """Same rank as `shape`; each input dim equals the target dim or is 1; 0 keeps the input dim."""
    data, target = in_shapes[0], params["shape"]
    if data is None:
        return in_shapes, out_shapes
    if len(data) != len(target):
        raise RuleError(
            f"operand of shape {describe(data)} cannot be broadcast to {describe(target)}: ranks differ"
        )
    for have, want in zip(data, target):
        if want != 0 and have not in (None, 1, want):
            raise RuleError(f"array cannot be broadcast from {describe(data)} to {describe(target)}")
    return in_shapes, [tuple(have if want == 0 else want for have, want in zip(data, target))]


type_rule("broadcast_to")(same_type_rule)


@reference("broadcast_to")
def broadcast_to_reference(params, inputs, ctx):
    x = inputs[0]
    shape = tuple(have if want == 0 else want for have, want in zip(x.shape, params["shape"]))
    return [np.broadcast_to(x, shape).copy()]


@grad_rule("broadcast_to")
def broadcast_to_grad(g, node, out_grads):
    """dy summed over the stretched axes; broadcast_like's rhs only lends its shape (no gradient)."""
    data = node.inputs[0]
    grad = g.sum_to(out_grads[0], g.shape(data), g.shape(node.output(0)))
    return [grad] + [None] * (len(node.inputs) - 1)


# ---------------------------------------------------------------------------------------------
# broadcast_axis(axis, size): size-1 axes stretched to `size`

define_op(
    "broadcast_axis",
    aliases=("broadcast_axes",),
    params=(
        Param("axis", parse_tuple, (), "the axes to broadcast (each of size 1)"),
        Param("size", parse_tuple, (), "the target size of each axis"),
    ),
    fusion=FusionKind.BROADCAST,
    doc="Broadcasts the given size-1 axes to the given sizes.",
)


def _axis_sizes(params, ndim: int) -> dict[int, int]:
    axes, sizes = params["axis"], params["size"]
    if len(axes) != len(sizes):
        raise RuleError(f"axis {axes} and size {sizes} must have the same length")
    return {normalize_axis(a, ndim): s for a, s in zip(axes, sizes)}


@shape_rule("broadcast_axis")
def broadcast_axis_shape(params, in_shapes, out_shapes):
    """Each listed axis must have size 1 and becomes `size`; the other dims are kept."""
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    sizes = _axis_sizes(params, len(data))
    for axis in sizes:
        if data[axis] not in (None, 1):
            raise RuleError(
                f"broadcasting axis {axis} must have size 1, got {data[axis]} in {describe(data)}"
            )
    return in_shapes, [tuple(sizes.get(i, d) for i, d in enumerate(data))]


type_rule("broadcast_axis")(same_type_rule)


@reference("broadcast_axis")
def broadcast_axis_reference(params, inputs, ctx):
    x = inputs[0]
    sizes = _axis_sizes(params, x.ndim)
    return [np.broadcast_to(x, tuple(sizes.get(i, d) for i, d in enumerate(x.shape))).copy()]


grad_rule("broadcast_axis")(broadcast_to_grad)


# ---------------------------------------------------------------------------------------------
# broadcast_like(lhs, rhs): lhs broadcast to rhs's shape (or to rhs's dims at rhs_axes)

define_op(
    "broadcast_like",
    inputs=("lhs", "rhs"),
    params=(
        Param("lhs_axes", optional(parse_axes), None, "axes of lhs to broadcast"),
        Param("rhs_axes", optional(parse_axes), None, "axes of rhs whose sizes lhs_axes take"),
    ),
    fusion=FusionKind.BROADCAST,
    doc="Broadcasts lhs to the shape of rhs (or only lhs_axes to the sizes of rhs_axes).",
)


def _like_shape(params, lhs: tuple, rhs: tuple) -> tuple:
    lhs_axes, rhs_axes = params["lhs_axes"], params["rhs_axes"]
    if lhs_axes is None or rhs_axes is None:
        if len(lhs) != len(rhs):
            raise RuleError(f"operand of shape {describe(lhs)} cannot be broadcast to {describe(rhs)}")
        pairs = dict(enumerate(rhs))
    else:
        if len(lhs_axes) != len(rhs_axes) or not lhs_axes:
            raise RuleError(
                f"lhs_axes {lhs_axes} and rhs_axes {rhs_axes} must be non-empty and of one length"
            )
        pairs = {
            normalize_axis(a, len(lhs), "lhs_axes entry"): rhs[normalize_axis(b, len(rhs), "rhs_axes entry")]
            for a, b in zip(lhs_axes, rhs_axes)
        }
    for axis, want in pairs.items():
        if None not in (lhs[axis], want) and lhs[axis] not in (1, want):
            raise RuleError(f"array cannot be broadcast from {describe(lhs)} to {describe(rhs)}")
    return tuple(_stretched(d, pairs[i]) if i in pairs else d for i, d in enumerate(lhs))


def _stretched(have, want):
    """The output dim where lhs has `have` and the target `want` (None while unknown)."""
    if want is not None:
        return want
    return None if have == 1 else have


# The output is lhs with its (selected) dims replaced by rhs's; those lhs dims must be 1 or equal.
shape_rule("broadcast_like")(forward_rank_shape(_like_shape))


type_rule("broadcast_like")(same_type_rule)


@reference("broadcast_like")
def broadcast_like_reference(params, inputs, ctx):
    lhs, rhs = inputs
    return [np.broadcast_to(lhs, _like_shape(params, lhs.shape, rhs.shape)).copy()]


grad_rule("broadcast_like")(broadcast_to_grad)

"""Joining and splitting along an axis: Concat, stack, SliceChannel (split).

All are INJECTIVE and two-way: a missing input dim can be inferred from the output and the other inputs.
"""

from __future__ import annotations

import numpy as np

from .params import (
    Param,
    parse_bool,
    parse_int,
)
from .registry import FusionKind, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import (
    Mismatch,
    RuleError,
    describe,
    normalize_axis,
    same_type_rule,
    unify,
    with_dim,
)

# ---------------------------------------------------------------------------------------------
# Concat(*data, dim): join along an existing axis (two-way)

define_op(
    "Concat",
    aliases=("concat",),
    variadic="num_args",
    params=(
        Param("num_args", parse_int, doc="the number of inputs"),
        Param("dim", parse_int, 1, "the axis to join along"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Joins the inputs along axis `dim`; every other dim must match.",
)


def _common_shape(shapes: list, axis: int, what: str) -> tuple | None:
    """The shape every entry shares once its dim `axis` is blanked out."""
    common = None
    for shape in shapes:
        if shape is None:
            continue
        try:
            common = unify(common, with_dim(shape, axis, None))
        except Mismatch:
            raise RuleError(f"{what}: {', '.join(describe(s) for s in shapes)}") from None
    return common


@shape_rule("Concat")
def concat_shape(params, in_shapes, out_shapes):
    """Inputs agree on every dim but `dim`; the output's `dim` is their sum (or gives the one unknown)."""
    known = [s for s in list(in_shapes) + list(out_shapes) if s is not None]
    if not known:
        return in_shapes, out_shapes
    ranks = {len(s) for s in known}
    if len(ranks) != 1:
        raise RuleError(f"inputs and output must have one rank: {', '.join(describe(s) for s in known)}")
    axis = normalize_axis(params["dim"], ranks.pop(), "dim")
    common = _common_shape(
        list(in_shapes) + list(out_shapes),
        axis,
        f"inputs must match on every dim except dim {axis}",
    )
    sizes = [None if s is None else s[axis] for s in in_shapes]
    total = out_shapes[0][axis] if out_shapes[0] is not None else None
    missing = [i for i, size in enumerate(sizes) if size is None]
    if not missing:
        total = sum(sizes)
    elif len(missing) == 1 and total is not None:
        rest = total - sum(s for s in sizes if s is not None)
        if rest < 1:
            raise RuleError(
                f"the output's dim {axis} ({total}) is not larger than the sum of the known inputs'"
            )
        sizes[missing[0]] = rest
    return [with_dim(common, axis, size) for size in sizes], [with_dim(common, axis, total)]


type_rule("Concat")(same_type_rule)


@reference("Concat")
def concat_reference(params, inputs, ctx):
    return [np.concatenate(inputs, axis=normalize_axis(params["dim"], inputs[0].ndim))]


@grad_rule("Concat")
def concat_grad(g, node, out_grads):
    """Each input gets its own window of dy along `dim`."""
    shapes = [g.shape(v) for v in node.inputs]
    axis = normalize_axis(node.params["dim"], len(shapes[0]))
    grads, begin = [], 0
    for shape in shapes:
        end = begin + shape[axis]
        grads.append(g.op("slice_axis", out_grads[0], axis=axis, begin=begin, end=end))
        begin = end
    return grads


# ---------------------------------------------------------------------------------------------
# stack(*data, axis): join along a new axis (two-way)

define_op(
    "stack",
    variadic="num_args",
    params=(
        Param("num_args", parse_int, doc="the number of inputs"),
        Param("axis", parse_int, 0, "where the new axis goes, in [-ndim-1, ndim]"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Stacks same-shaped inputs along a new axis.",
)


@shape_rule("stack")
def stack_shape(params, in_shapes, out_shapes):
    """All inputs share one shape; the output inserts num_args at `axis`."""
    out = out_shapes[0]
    ndim = next((len(s) for s in in_shapes if s is not None), None)
    ndim = ndim if ndim is not None else len(out) - 1 if out is not None else None
    if ndim is None:
        return in_shapes, out_shapes
    axis = normalize_axis(params["axis"], ndim + 1)
    from_out = None if out is None else out[:axis] + out[axis + 1 :]
    common = None
    for shape in list(in_shapes) + [from_out]:
        try:
            common = unify(common, shape)
        except Mismatch:
            raise RuleError(
                f"all inputs must have one shape: {', '.join(describe(s) for s in in_shapes)}"
            ) from None
    forward = None if common is None else common[:axis] + (len(in_shapes),) + common[axis:]
    return [common] * len(in_shapes), [forward or out]


type_rule("stack")(same_type_rule)


@reference("stack")
def stack_reference(params, inputs, ctx):
    return [np.stack(inputs, axis=normalize_axis(params["axis"], inputs[0].ndim + 1))]


@grad_rule("stack")
def stack_grad(g, node, out_grads):
    """dy split back along the stacking axis, which each part drops."""
    count = len(node.inputs)
    axis = normalize_axis(node.params["axis"], len(g.shape(node.inputs[0])) + 1)
    return g.outputs("SliceChannel", out_grads[0], num_outputs=count, axis=axis, squeeze_axis=True)


# ---------------------------------------------------------------------------------------------
# SliceChannel(num_outputs, axis, squeeze_axis): split into equal parts (two-way)

define_op(
    "SliceChannel",
    aliases=("split",),
    params=(
        Param("num_outputs", parse_int, doc="the number of equal parts"),
        Param("axis", parse_int, 1, "the axis to split"),
        Param(
            "squeeze_axis", parse_bool, False, "whether to drop the split axis (its parts must have size 1)"
        ),
    ),
    outputs=lambda params: params["num_outputs"],
    output_names=lambda params: tuple(f"output{i}" for i in range(params["num_outputs"])),
    fusion=FusionKind.INJECTIVE,
    doc="Splits the data into num_outputs equal parts along `axis`.",
)


def _split_part(params, data: tuple, axis: int) -> tuple:
    """The shape of one part of `data`."""
    count, whole = params["num_outputs"], data[axis]
    if whole is not None and whole % count:
        raise RuleError(f"num_outputs={count} does not evenly divide dim {axis} of size {whole}")
    if params["squeeze_axis"]:
        if whole not in (None, count):
            raise RuleError(f"with squeeze_axis, dim {axis} must equal num_outputs={count}, got {whole}")
        return data[:axis] + data[axis + 1 :]
    return with_dim(data, axis, None if whole is None else whole // count)


def _split_whole(params, part: tuple, axis: int) -> tuple:
    """The data shape from the shape of one part."""
    count = params["num_outputs"]
    if params["squeeze_axis"]:
        return part[:axis] + (count,) + part[axis:]
    return with_dim(part, axis, None if part[axis] is None else part[axis] * count)


@shape_rule("SliceChannel")
def slice_channel_shape(params, in_shapes, out_shapes):
    """Each output is the data with dim `axis` divided by num_outputs (or dropped); outputs give the data."""
    if params["num_outputs"] < 1:
        raise RuleError(f"num_outputs must be at least 1, got {params['num_outputs']}")
    data = in_shapes[0]
    part = None
    for shape in out_shapes:
        try:
            part = unify(part, shape)
        except Mismatch:
            raise RuleError("all outputs must have one shape") from None
    ndim = len(data) if data is not None else None
    if ndim is None and part is not None:
        ndim = len(part) + (1 if params["squeeze_axis"] else 0)
    if ndim is None:
        return in_shapes, out_shapes
    axis = normalize_axis(params["axis"], ndim)
    forward = None if data is None else _split_part(params, data, axis)
    backward = None if part is None else _split_whole(params, part, axis)
    return [backward or data], [forward or part] * len(out_shapes)


type_rule("SliceChannel")(same_type_rule)


@reference("SliceChannel")
def slice_channel_reference(params, inputs, ctx):
    x = inputs[0]
    axis = normalize_axis(params["axis"], x.ndim)
    parts = np.split(x, params["num_outputs"], axis=axis)
    return [np.squeeze(p, axis=axis) if params["squeeze_axis"] else p for p in parts]


@grad_rule("SliceChannel")
def slice_channel_grad(g, node, out_grads):
    """The parts' gradients joined back along `axis` (zeros for parts nothing depends on)."""
    count = len(out_grads)
    zeros = None
    if any(dy is None for dy in out_grads):
        zeros = g.op("_zeros", shape=g.shape(node.output(0)), dtype=g.dtype(node.inputs[0]))
    parts = [zeros if dy is None else dy for dy in out_grads]
    axis = normalize_axis(node.params["axis"], len(g.shape(node.inputs[0])))
    if node.params["squeeze_axis"]:
        return [g.op("stack", *parts, num_args=count, axis=axis)]
    return [g.op("Concat", *parts, num_args=count, dim=axis)]

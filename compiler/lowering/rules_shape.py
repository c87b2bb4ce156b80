"""Lowering rules of the shape, slicing, joining, layout, indexing and array-creation families
(ops/shape.py, slicing.py, join.py, layout.py, indexing.py, init_ops.py, tensor_backward.py).

Almost every op here is an index map: output element `dims` is one input element at positions
computed from `dims` (`remap`), so the result stays lazy and fuses into whatever reads it. Reshapes
of a buffer read it at the output's flat position (no division). Data-dependent positions (take,
pick, one_hot, _scatter_add_axis) read the index element, truncate it to int64 and clip or wrap it
as the references' `_bounded` does, so no load can leave its buffer. Array creation ops are formulas
of the output position alone. The two scatter-like adjoints (_backward_pad in edge/reflect mode and
_scatter_add_axis) zero their result and add every gradient element into place, so positions that
receive several elements accumulate them, as `np.add.at` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import accumulate

import numpy as np

from ..ops.init_ops import arange_bounds
from ..ops.layout import pad_pairs, reverse_axes
from ..ops.registry import lowering
from ..ops.rules import normalize_axis, with_dim
from ..ops.shape import swap_permutation, transpose_permutation
from ..ops.slicing import slice_axis_bounds, slice_windows
from ..program import Store
from . import expr as E
from .expr import Expr
from .tensor import Tensor, broadcast_to, from_buffer, ravel, remap, reshape

DimsMap = Callable[[tuple[Expr, ...]], Sequence[Expr]]


# -- helpers -----------------------------------------------------------------------------------------


def scalar(value, dtype: str) -> Expr:
    """`value` converted to `dtype` as NumPy's astype does (the references' static_cast)."""
    with np.errstate(invalid="ignore", over="ignore"):
        converted = np.array(value, dtype=np.float64).astype(dtype)
    return E.const(converted.item(), dtype)


def both(*conditions: Expr) -> Expr:
    """The logical and of bool expressions."""
    result = conditions[0]
    for condition in conditions[1:]:
        result = E.call("and", result, condition)
    return result


def with_position(dims: Sequence[Expr], axis: int, position: Expr) -> tuple[Expr, ...]:
    """`dims` with the entry at `axis` replaced by `position`."""
    return tuple(dims[:axis]) + (position,) + tuple(dims[axis + 1 :])


def inserted(dims: Sequence[Expr], axis: int, position: Expr) -> tuple[Expr, ...]:
    """`dims` with `position` inserted before entry `axis`."""
    return tuple(dims[:axis]) + (position,) + tuple(dims[axis:])


def floor_mod(i: Expr, n: int) -> Expr:
    """`i` modulo `n` in [0, n) for any int64 `i` (the machine remainder follows the dividend's sign)."""
    r = E.mod(i, E.index(n))
    return E.select(E.compare("lt", r, E.index(0)), E.add(r, E.index(n)), r)


def bounded_index(value: Expr, size: int, mode: str) -> Expr:
    """An index element read as ops/indexing.py's `_bounded` reads it: truncated to int64, then wrapped
    into [0, size) in "wrap" mode and clipped otherwise. "raise" clips too: compiled code cannot raise,
    and the reference leaves in-range indices unchanged."""
    position = E.cast(value, E.INDEX)
    return floor_mod(position, size) if mode == "wrap" else E.clamp_index(position, size)


def _unit_axes_map(source: tuple[int, ...], target: tuple[int, ...]) -> DimsMap | None:
    """When the shapes differ only in size-1 axes, target dims -> source dims; else None."""
    source_axes = [k for k, n in enumerate(source) if n != 1]
    target_axes = [k for k, n in enumerate(target) if n != 1]
    if [source[k] for k in source_axes] != [target[k] for k in target_axes]:
        return None

    def dims_of(dims):
        out = [E.index(0)] * len(source)
        for s, t in zip(source_axes, target_axes):
            out[s] = dims[t]
        return out

    return dims_of


def view_as(t: Tensor, shape: Sequence[int]) -> Tensor:
    """`t`'s elements in row-major order under `shape`. A buffer is read at the flat position; a lazy
    tensor that only gains or loses size-1 axes is read per dimension, which needs no division."""
    shape = tuple(shape)
    if t.buffer is None and t.shape != shape:
        dims_of = _unit_axes_map(t.shape, shape)
        if dims_of is not None:
            return remap(t, shape, dims_of)
    return reshape(t, shape)


def shifted(t: Tensor, shape: Sequence[int], axis: int, offset: int) -> Tensor:
    """The window of `t` starting `offset` elements into `axis`, of `shape`."""
    return remap(t, shape, lambda dims: with_position(dims, axis, E.add(dims[axis], E.index(offset))))


# Joins of more parts than this are written part by part: a select chain reads every part at every
# element (work and expression depth grow with the number of parts).
SELECT_JOIN_LIMIT = 8
# A join by copies stores this many like-shaped parts per loop nest: fewer loops (each its own function)
# cost less to compile, but LLVM's alias analysis grows with the square of the pointers one loop uses.
PARTS_PER_LOOP = 16


def joined(ctx, parts: Sequence[Tensor], shape: Sequence[int], axis: int) -> Tensor:
    """`parts` concatenated along `axis`: lazily, each element selecting its part by position, or, for
    many parts, each part copied into its slab of a materialized result."""
    if len(parts) > SELECT_JOIN_LIMIT:
        return _joined_by_copies(ctx, parts, shape, axis)
    return _joined_by_selects(parts, shape, axis)


def _joined_by_selects(parts: Sequence[Tensor], shape: Sequence[int], axis: int) -> Tensor:
    """Every part read at a clamped position (a select evaluates both sides); the select picks one."""
    ends = list(accumulate(p.shape[axis] for p in parts))
    starts = [0] + ends[:-1]

    def at(idx):
        dims = idx.dims
        position = dims[axis]

        def element(part, start):
            local = E.clamp_index(E.sub(position, E.index(start)), part.shape[axis])
            return part(*with_position(dims, axis, local))

        value = element(parts[-1], starts[-1])
        for part, start, end in reversed(list(zip(parts[:-1], starts[:-1], ends[:-1]))):
            value = E.select(E.compare("lt", position, E.index(end)), element(part, start), value)
        return value

    return Tensor(shape, parts[0].dtype, at)


def _joined_by_copies(ctx, parts: Sequence[Tensor], shape: Sequence[int], axis: int) -> Tensor:
    """Each part stored at its offset along `axis` of the result buffer, PARTS_PER_LOOP parts of one
    shape per loop nest."""
    dtype = parts[0].dtype
    target = ctx.result_buffer(shape, dtype)
    starts = [0, *accumulate(p.shape[axis] for p in parts)]
    by_shape: dict[tuple[int, ...], list[tuple[Tensor, int]]] = {}
    for part, start in zip(parts, starts):
        if math.prod(part.shape):
            by_shape.setdefault(tuple(part.shape), []).append((part, start))

    def stores(dims, items):
        def position(start):
            return ravel(with_position(dims, axis, E.add(dims[axis], E.index(start))), shape)

        return [Store(target, position(start), part(*dims)) for part, start in items]

    for part_shape, items in by_shape.items():
        for first in range(0, len(items), PARTS_PER_LOOP):
            chunk = items[first : first + PARTS_PER_LOOP]
            ctx.loop(part_shape, lambda dims, chunk=chunk: stores(dims, chunk))
    return from_buffer(target, shape, dtype)


def scatter_sum(
    ctx, values: Tensor, shape: Sequence[int], dims_of: DimsMap, target: str | None = None
) -> Tensor:
    """Zeros of `shape` (in `target`, else new scratch) plus each element of `values` added at
    `dims_of(its dims)`, in row-major order of `values`, as `np.add.at` adds: repeats accumulate."""
    dtype = values.dtype
    target = target or ctx.scratch_buffer(shape, dtype)
    ctx.fill(target, shape, 0, dtype)
    ctx.scatter(values.shape, target, lambda dims: ravel(dims_of(dims), shape), lambda dims: values(*dims))
    return from_buffer(target, shape, dtype)


def out_type(ctx) -> tuple[tuple[int, ...], str]:
    """The (shape, dtype) of the node's only output."""
    shape, dtype = ctx.out_types[0]
    return tuple(shape), dtype


# -- reshapes and permutations -----------------------------------------------------------------------


@lowering("Reshape", "Flatten", "expand_dims", "squeeze", "reshape_like")
def lower_reshape(ctx, node, inputs):
    shape, _ = out_type(ctx)
    return [view_as(inputs[0], shape)]


PERMUTATIONS = {"transpose": transpose_permutation, "SwapAxis": swap_permutation}


@lowering(*PERMUTATIONS)
def lower_permutation(ctx, node, inputs):
    """Output dim i is input dim perm[i]."""
    data = inputs[0]
    perm = PERMUTATIONS[node.schema.name](node.params, data.ndim)
    shape, _ = out_type(ctx)

    def dims_of(dims):
        source = [E.index(0)] * data.ndim
        for out_axis, in_axis in enumerate(perm):
            source[in_axis] = dims[out_axis]
        return source

    return [remap(data, shape, dims_of)]


# -- windows, flips and repetitions ------------------------------------------------------------------


@lowering("slice_axis")
def lower_slice_axis(ctx, node, inputs):
    data = inputs[0]
    axis = normalize_axis(node.params["axis"], data.ndim)
    begin, _ = slice_axis_bounds(node.params, data.shape[axis])
    return [shifted(data, out_type(ctx)[0], axis, begin)]


def window_ranges(params, shape: Sequence[int]) -> list[range]:
    """The input positions slice(begin, end, step) reads on each sliced (leading) axis."""
    return [range(n)[w] for w, n in zip(slice_windows(params, tuple(shape)), shape)]


@lowering("slice")
def lower_slice(ctx, node, inputs):
    data = inputs[0]
    ranges = window_ranges(node.params, data.shape)

    def dims_of(dims):
        sliced = [E.add(E.index(r.start), E.mul(d, E.index(r.step))) for d, r in zip(dims, ranges)]
        return sliced + list(dims[len(ranges) :])

    return [remap(data, out_type(ctx)[0], dims_of)]


@lowering("slice_like")
def lower_slice_like(ctx, node, inputs):
    """The leading corner of data: every position is read as is."""
    return [remap(inputs[0], out_type(ctx)[0], lambda dims: dims)]


@lowering("reverse")
def lower_reverse(ctx, node, inputs):
    """Each listed axis flips once per listing (an axis listed twice is flipped back)."""
    data = inputs[0]
    axes = reverse_axes(node.params, data.ndim)
    flipped = {axis for axis in axes if axes.count(axis) % 2}

    def dims_of(dims):
        return [
            E.sub(E.index(n - 1), d) if k in flipped else d for k, (d, n) in enumerate(zip(dims, data.shape))
        ]

    return [remap(data, data.shape, dims_of)]


@lowering("tile")
def lower_tile(ctx, node, inputs):
    """Shape and reps are right-aligned; each input axis is read at the output position modulo its size."""
    data = inputs[0]
    shape, _ = out_type(ctx)
    lead = len(shape) - data.ndim

    def dims_of(dims):
        return [E.mod(dims[lead + k], E.index(n)) for k, n in enumerate(data.shape)]

    return [remap(data, shape, dims_of)]


@lowering("repeat")
def lower_repeat(ctx, node, inputs):
    """Output position p along the repeated axis (of the flattened data when axis is None) reads p // repeats."""
    data = inputs[0]
    shape, _ = out_type(ctx)
    repeats = E.index(max(node.params["repeats"], 1))  # 0 repeats: an empty output reads nothing
    if node.params["axis"] is None:
        return [Tensor(shape, data.dtype, lambda idx: data.flat(E.div(idx.flat, repeats)))]
    axis = normalize_axis(node.params["axis"], data.ndim)
    return [remap(data, shape, lambda dims: with_position(dims, axis, E.div(dims[axis], repeats)))]


# -- joining and splitting ---------------------------------------------------------------------------


@lowering("Concat")
def lower_concat(ctx, node, inputs):
    shape, _ = out_type(ctx)
    return [joined(ctx, inputs, shape, normalize_axis(node.params["dim"], len(shape)))]


@lowering("stack")
def lower_stack(ctx, node, inputs):
    """Concat of the inputs, each viewed with a size-1 axis at the stacking axis."""
    shape, _ = out_type(ctx)
    axis = normalize_axis(node.params["axis"], len(shape))
    parts = [
        remap(t, shape[:axis] + (1,) + shape[axis + 1 :], lambda dims: dims[:axis] + dims[axis + 1 :])
        for t in inputs
    ]
    return [joined(ctx, parts, shape, axis)]


@lowering("SliceChannel")
def lower_slice_channel(ctx, node, inputs):
    """Part j is the j-th equal window along `axis` (that axis dropped with squeeze_axis)."""
    data = inputs[0]
    axis = normalize_axis(node.params["axis"], data.ndim)
    count = node.params["num_outputs"]
    part_size = data.shape[axis] // count
    shape, _ = out_type(ctx)
    if node.params["squeeze_axis"]:
        return [remap(data, shape, lambda dims, j=j: inserted(dims, axis, E.index(j))) for j in range(count)]
    return [shifted(data, shape, axis, j * part_size) for j in range(count)]


# -- padding -----------------------------------------------------------------------------------------


def _reflected(p: Expr, size: int) -> Expr:
    """numpy.pad's reflect (the edge not repeated), for pads narrower than the axis: one bounce."""
    a = E.call("abs", p)
    return E.select(E.compare("lt", a, E.index(size)), a, E.sub(E.index(2 * size - 2), a))


# mode -> (position relative to the data's start along an axis, axis size) -> the data position it copies
PAD_SOURCES = {
    "constant": E.clamp_index,  # positions outside the data hold the constant; the clamp keeps loads safe
    "edge": E.clamp_index,
    "reflect": _reflected,
}


def pad_sources(
    mode: str, pairs, shape: Sequence[int], dims: Sequence[Expr]
) -> tuple[list[Expr], list[Expr]]:
    """For padded positions `dims`: the data position each axis copies, and (for constant padding) the
    conditions that every padded axis lies within the data."""
    sources, inside = [], []
    for d, (before, after), n in zip(dims, pairs, shape):
        if before == after == 0:
            sources.append(d)
            continue
        p = E.sub(d, E.index(before))
        sources.append(PAD_SOURCES[mode](p, n))
        if mode == "constant":
            inside += [E.compare("ge", p, E.index(0)), E.compare("lt", p, E.index(n))]
    return sources, inside


@lowering("Pad")
def lower_pad(ctx, node, inputs):
    data = inputs[0]
    mode = node.params["mode"]
    pairs = pad_pairs(node.params, data.shape)
    shape, dtype = out_type(ctx)
    fill = scalar(node.params["constant_value"], dtype)

    def at(idx):
        sources, inside = pad_sources(mode, pairs, data.shape, idx.dims)
        value = data(*sources)
        return E.select(both(*inside), value, fill) if inside else value

    return [Tensor(shape, dtype, at)]


@lowering("_backward_pad")
def lower_backward_pad(ctx, node, inputs):
    """Constant padding: the window of grad over the data. Edge and reflect: as the reference, one
    padded axis at a time, each grad element added onto the position Pad copied it from (so sums run in
    the reference's order)."""
    grad = inputs[0]
    mode = node.params["mode"]
    shape, dtype = out_type(ctx)
    pairs = pad_pairs(node.params, shape)
    if mode == "constant":
        return [remap(grad, shape, lambda dims: [E.add(d, E.index(b)) for d, (b, _) in zip(dims, pairs)])]
    padded = [axis for axis, pair in enumerate(pairs) if pair != (0, 0)]
    for axis in padded:
        before, n = pairs[axis][0], shape[axis]
        summed_shape = with_dim(grad.shape, axis, n)
        target = ctx.result_buffer(shape, dtype) if axis == padded[-1] else None

        def source(dims, axis=axis, before=before, n=n):
            return with_position(dims, axis, PAD_SOURCES[mode](E.sub(dims[axis], E.index(before)), n))

        grad = scatter_sum(ctx, grad, summed_shape, source, target)
    return [grad]


# -- gathers by index and their adjoint ----------------------------------------------------------------


@lowering("take")
def lower_take(ctx, node, inputs):
    """Dim `axis` of a becomes the dims of indices; a is read at the bounded index element."""
    a, indices = inputs
    axis = normalize_axis(node.params["axis"], a.ndim)
    count = indices.ndim

    def dims_of(dims):
        position = bounded_index(indices(*dims[axis : axis + count]), a.shape[axis], node.params["mode"])
        return tuple(dims[:axis]) + (position,) + tuple(dims[axis + count :])

    return [remap(a, out_type(ctx)[0], dims_of)]


@lowering("pick")
def lower_pick(ctx, node, inputs):
    """data at the bounded index element along `axis`; index has the output's shape, which is data's
    without `axis` (size 1 there with keepdims or for 1-D data)."""
    data, index = inputs
    axis = normalize_axis(node.params["axis"], data.ndim)
    shape, _ = out_type(ctx)
    kept_axis = len(shape) == data.ndim

    def dims_of(dims):
        position = bounded_index(index(*dims), data.shape[axis], node.params["mode"])
        return with_position(dims, axis, position) if kept_axis else inserted(dims, axis, position)

    return [remap(data, shape, dims_of)]


@lowering("one_hot")
def lower_one_hot(ctx, node, inputs):
    """on_value where the index (truncated to int64) equals the position along the last axis."""
    indices = inputs[0]
    shape, dtype = out_type(ctx)
    on, off = scalar(node.params["on_value"], dtype), scalar(node.params["off_value"], dtype)

    def at(idx):
        hot = E.compare("eq", E.cast(indices(*idx.dims[:-1]), E.INDEX), idx.dims[-1])
        return E.select(hot, on, off)

    return [Tensor(shape, dtype, at)]


@lowering("_scatter_add_axis")
def lower_scatter_add_axis(ctx, node, inputs):
    """Zeros, then grad[..., j, ...] added at position index[..., j, ...] (bounded) along `axis`."""
    grad, index = inputs
    shape, dtype = out_type(ctx)
    axis = normalize_axis(node.params["axis"], grad.ndim)
    positions = broadcast_to(index, grad.shape)
    size, mode = node.params["size"], node.params["mode"]

    def position(dims):
        return with_position(dims, axis, bounded_index(positions(*dims), size, mode))

    return [scatter_sum(ctx, grad, shape, position, ctx.result_buffer(shape, dtype))]


@lowering("_backward_slice")
def lower_backward_slice(ctx, node, inputs):
    """Zeros with grad in slice's window, as a gather: position p of a sliced axis with window
    start + k * step (k < length) reads grad at k when p - start is a multiple of step in range."""
    grad = inputs[0]
    shape, dtype = out_type(ctx)
    ranges = window_ranges(node.params, shape)
    zero = E.const(0, dtype)

    def at(idx):
        dims, conditions = list(idx.dims), []
        for axis, r in enumerate(ranges):
            stride = abs(r.step)
            offset = (
                E.sub(dims[axis], E.index(r.start)) if r.step > 0 else E.sub(E.index(r.start), dims[axis])
            )
            safe = E.clamp_index(offset, stride * (len(r) - 1) + 1)
            conditions.append(E.compare("eq", offset, safe))
            if stride != 1:
                conditions.append(E.compare("eq", E.mod(safe, E.index(stride)), E.index(0)))
            dims[axis] = E.div(safe, E.index(stride))
        return E.select(both(*conditions), grad(*dims), zero)

    return [Tensor(shape, dtype, at)]


# -- array creation ----------------------------------------------------------------------------------

FILL_VALUES = {"_zeros": lambda params: 0, "_ones": lambda params: 1, "_full": lambda params: params["value"]}


@lowering(*FILL_VALUES)
def lower_fill(ctx, node, inputs):
    shape, dtype = out_type(ctx)
    value = scalar(FILL_VALUES[node.schema.name](node.params), dtype)
    return [Tensor(shape, dtype, lambda idx: value)]


@lowering("_arange")
def lower_arange(ctx, node, inputs):
    """start + (i // repeat) * step: in the float dtype itself, or in int64 from the truncated start and
    step and then wrapped into an integer dtype, as the reference computes it."""
    shape, dtype = out_type(ctx)
    params = node.params
    start, _ = arange_bounds(params)
    repeat = E.index(params["repeat"])
    if dtype in E.FLOATS:
        first, step = scalar(start, dtype), scalar(params["step"], dtype)

        def value(idx):
            return E.add(first, E.mul(E.cast(E.div(idx.flat, repeat), dtype), step))

    else:
        first, step = E.index(math.trunc(start)), E.index(math.trunc(params["step"]))

        def value(idx):
            return E.cast(E.add(first, E.mul(E.div(idx.flat, repeat), step)), dtype)

    return [Tensor(shape, dtype, value)]


@lowering("_eye")
def lower_eye(ctx, node, inputs):
    """1 where column - row == k."""
    shape, dtype = out_type(ctx)
    one, zero, k = E.const(1, dtype), E.const(0, dtype), E.index(node.params["k"])

    def at(idx):
        row, column = idx.dims
        return E.select(E.compare("eq", column, E.add(row, k)), one, zero)

    return [Tensor(shape, dtype, at)]


__all__ = ["bounded_index", "floor_mod", "joined", "view_as"]

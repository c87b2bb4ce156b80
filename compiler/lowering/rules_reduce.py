"""Lowering rules of the reduction and ordering families (ops/reduce.py, ops/sorting.py).

Reductions (sum, mean, prod, nansum, nanprod, max, min, norm, argmax, argmin) become one `Reduce`
expression per output element, computed where it is read: each run of adjacent reduced axes (size-1
dims aside) is one loop reading the input at a fixed stride, the runs nested outermost first. As the
references do, float16 data is reduced as float32, integer data in its own dtype (wrapping as NumPy's
wider sum cast back does) except for mean, which like bool data runs in float64, and norm sums
float64 magnitudes. Float32 sums accumulate in float64 (see `accumulator_dtype`).

Ordering (sort, argsort, topk) ranks every element of a row with a counting reduction (how many
elements of the row come before it) and scatters the element, or its index, to its rank: O(n^2)
per row. The order is the references' stable one: ties keep their input order, NaN counts as the
largest value (last ascending, first descending).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod

from ..ops.registry import lowering
from ..ops.rules import normalize_axis, reduce_axes
from ..ops.sorting import TOPK_VIEWS
from ..program import Store
from . import expr as E
from .expr import Expr
from .exprmath import compute_dtype
from .tensor import Tensor, from_buffer, ravel

# -- reductions over axes ---------------------------------------------------------------------------


def strides_of(shape: Sequence[int]) -> list[int]:
    """Row-major element strides of `shape`."""
    return [prod(shape[a + 1 :]) for a in range(len(shape))]


def reduced_loops(shape: Sequence[int], axes: Sequence[int]) -> list[tuple[int, int]]:
    """(extent, stride) of each run of adjacent reduced axes (size-1 dims skipped), outermost first."""
    loops: list[tuple[int, int]] = []
    adjacent = False
    for axis, stride in reversed(list(zip(range(len(shape)), strides_of(shape)))):
        extent = shape[axis]
        if extent == 1:
            continue
        if axis in axes and adjacent:
            inner_extent, inner_stride = loops.pop()
            loops.append((inner_extent * extent, inner_stride))
        elif axis in axes:
            loops.append((extent, stride))
        adjacent = axis in axes
    return loops[::-1] or [(1, 0)]


def reduction(
    ctx, x: Tensor, axes: Sequence[int], op: str, element: Callable[[Expr], Expr], dtype: str, out_shape
) -> Tensor:
    """`op` (an `E.REDUCE_OPS` name) of `element(x)` (an Expr of `dtype`) over `axes`, as a lazy tensor of
    `out_shape` (x's shape with the reduced axes as 1s, or without them, or (1,) when nothing is left).

    argmax/argmin give the (int64) position within the reduced axes, which must then form one run.
    """
    kept = [a for a in range(x.ndim) if a not in axes]
    strides = strides_of(x.shape)
    loops = reduced_loops(x.shape, axes)
    if op in ("argmax", "argmin") and len(loops) > 1:
        raise ValueError(f"{op} over non-adjacent axes {tuple(axes)} of {x.shape}")

    def at(idx) -> Expr:
        dims = [idx.dims[a] for a in kept] if len(out_shape) == x.ndim else idx.dims[: len(kept)]
        base = E.index(0)
        for dim, axis in zip(dims, kept):
            if x.shape[axis] != 1:
                base = E.add(base, E.mul(dim, E.index(strides[axis])))
        return nest(base, 0)

    def nest(offset: Expr, depth: int) -> Expr:
        if depth == len(loops):
            return element(x.flat(offset))
        extent, stride = loops[depth]
        return ctx.reduce(op, extent, lambda r: nest(E.add(offset, E.mul(r, E.index(stride))), depth + 1))

    return Tensor(out_shape, E.INDEX if op in ("argmax", "argmin") else dtype, at)


def reduced_count(shape: Sequence[int], axes: Sequence[int]) -> int:
    return prod(shape[a] for a in axes)


def work_dtype(name: str, dtype: str) -> str:
    """The dtype the reference reduces data of `dtype` in: integers in their own (exact, wrapping as
    NumPy's wider sums cast back do) except for mean; the rest as elementwise.as_float."""
    if (dtype in E.SIGNED or dtype == "uint8") and name != "mean":
        return dtype
    return compute_dtype(dtype)


def accumulator_dtype(op: str, work: str) -> str:
    """float32 sums accumulate in float64: NumPy's pairwise float32 sum is nearly exact, a running
    float32 total is not; rounding a float64 total once lands within NumPy's own rounding."""
    return "float64" if op == "sum" and work == "float32" else work


def _unless_nan(fill) -> Callable[[Expr], Expr]:
    """NumPy's nan* element: `fill` in place of NaN (integers have none)."""

    def element(v: Expr) -> Expr:
        if v.dtype not in E.FLOATS:
            return v
        return E.select(E.call("isnan", v), E.const(fill, v.dtype), v)

    return element


def _identity(v: Expr) -> Expr:
    return v


# op -> (the Reduce op, the element formula in the work dtype)
REDUCTIONS = {
    "sum": ("sum", _identity),
    "mean": ("sum", _identity),
    "prod": ("prod", _identity),
    "nansum": ("sum", _unless_nan(0)),
    "nanprod": ("prod", _unless_nan(1)),
    "max": ("max", _identity),
    "min": ("min", _identity),
}


@lowering(*REDUCTIONS)
def lower_reduce(ctx, node, inputs):
    name, x = node.schema.name, inputs[0]
    axes = reduce_axes(node.params["axis"], x.ndim, node.params["exclude"])
    op, element = REDUCTIONS[name]
    work = work_dtype(name, x.dtype)
    out_shape, out_dtype = ctx.out_types[0]
    acc = accumulator_dtype(op, work)
    total = reduction(ctx, x, axes, op, lambda v: E.cast(element(E.cast(v, work)), acc), acc, out_shape)
    count = E.const(reduced_count(x.shape, axes), work)

    def finish(idx) -> Expr:
        value = E.cast(total.at(idx), work)
        return E.cast(E.div(value, count) if name == "mean" else value, out_dtype)

    return [Tensor(out_shape, out_dtype, finish)]


# norm: (the float64 element summed, the finishing formula)
NORMS = {
    1: (lambda v: E.call("abs", v), _identity),
    2: (lambda v: E.mul(v, v), lambda total: E.call("sqrt", total)),
}


@lowering("norm")
def lower_norm(ctx, node, inputs):
    x = inputs[0]
    axes = reduce_axes(node.params["axis"], x.ndim)
    element, finish = NORMS[node.params["ord"]]
    out_shape, out_dtype = ctx.out_types[0]
    total = reduction(ctx, x, axes, "sum", lambda v: element(E.cast(v, "float64")), "float64", out_shape)
    return [Tensor(out_shape, out_dtype, lambda idx: E.cast(finish(total.at(idx)), out_dtype))]


# argmax/argmin compare float16 in float32 and bools as integers (exact either way)
SEARCH_DTYPES = {"float16": "float32", "bool": "int32"}


@lowering("argmax", "argmin")
def lower_search(ctx, node, inputs):
    x, axis = inputs[0], node.params["axis"]
    axes = tuple(range(x.ndim)) if axis is None else (normalize_axis(axis, x.ndim),)
    work = SEARCH_DTYPES.get(x.dtype, x.dtype)
    out_shape, out_dtype = ctx.out_types[0]
    found = reduction(ctx, x, axes, node.schema.name, lambda v: E.cast(v, work), work, out_shape)
    return [Tensor(out_shape, out_dtype, lambda idx: E.cast(found.at(idx), out_dtype))]


# -- ordering -------------------------------------------------------------------------------------------


def _lt_total(a: Expr, b: Expr) -> Expr:
    """a < b in NumPy's sort order (NaN above every number, NaNs equal)."""
    less = E.compare("lt", a, b)
    if a.dtype not in E.FLOATS:
        return less
    return E.call("or", less, E.call("and", E.call("isnan", b), E.call("not", E.call("isnan", a))))


def _le_total(a: Expr, b: Expr) -> Expr:
    """a <= b in NumPy's sort order."""
    at_most = E.compare("le", a, b)
    if a.dtype not in E.FLOATS:
        return at_most
    return E.call("or", at_most, E.call("isnan", b))


@dataclass(frozen=True)
class Rows:
    """A dense input as rows ordered along `axis` (all of it one row when axis is None): element
    (o, a, q) of its (outer, n, inner) view lies at flat position (o * n + a) * inner + q."""

    data: Tensor
    axis: int | None
    is_ascend: bool

    @property
    def view(self) -> tuple[int, int, int]:
        shape, axis = self.data.shape, self.axis
        if axis is None:
            return 1, self.data.size, 1
        return prod(shape[:axis]), shape[axis], prod(shape[axis + 1 :])

    def split(self, dims: Sequence[Expr], shape: Sequence[int]) -> tuple[Expr, Expr, Expr]:
        """(o, a, q) of element `dims` of a tensor of `shape`: the input's with another extent along
        the axis, or (k,) or the input's own shape when axis is None."""
        axis = self.axis
        if axis is None:
            return E.index(0), ravel(dims, shape), E.index(0)
        return ravel(dims[:axis], shape[:axis]), dims[axis], ravel(dims[axis + 1 :], shape[axis + 1 :])

    def position(self, o: Expr, a: Expr, q: Expr) -> Expr:
        """The flat position of element (o, a, q) in the input's layout."""
        outer, n, inner = self.view
        return ravel((o, a, q), (outer, n, inner))

    def comes_before(self, j: Expr, i: Expr, o: Expr, q: Expr) -> Expr:
        """Whether element j of row (o, q) is ordered before its element i (stable: ties by position)."""
        first, second = (self.data.flat(self.position(o, a, q)) for a in (j, i))
        if not self.is_ascend:  # descending: j comes first when i is below it
            first, second = second, first
        return E.select(E.compare("lt", j, i), _le_total(first, second), _lt_total(first, second))

    def rank(self, ctx, o: Expr, i: Expr, q: Expr) -> Expr:
        """The place element i of row (o, q) takes in its ordered row: how many elements come before it."""
        _, n, _ = self.view
        return ctx.reduce("sum", n, lambda j: E.cast(self.comes_before(j, i, o, q), E.INDEX))


# What each scattered field of an ordered row holds for input element (o, a, q).
FIELDS = {
    "values": lambda rows, o, a, q: rows.data.flat(rows.position(o, a, q)),
    "indices": lambda rows, o, a, q: a,
}
# topk's ret_typ -> its outputs, in order (sort is ret_typ value, argsort ret_typ indices)
RETURNS = {
    "value": ("values", "indices"),
    "both": ("values", "indices"),
    "indices": ("indices",),
    "mask": ("mask",),
}


def scatter_ordered(ctx, rows: Rows, fields, keep: int) -> list[Tensor]:
    """Each (field, shape, dtype) of the first `keep` elements of every ordered row, from one scatter loop
    that moves every element to its rank (into the outputs' own buffers when all are kept)."""
    _, n, _ = rows.view
    targets = [
        ctx.result_buffer(shape, dtype) if keep == n else ctx.scratch_buffer(rows.data.shape, dtype)
        for _, shape, dtype in fields
    ]

    def stores(dims):
        o, a, q = dims
        position = rows.position(o, rows.rank(ctx, o, a, q), q)
        return [
            Store(target, position, E.cast(FIELDS[field](rows, o, a, q), dtype))
            for target, (field, _, dtype) in zip(targets, fields)
        ]

    ctx.loop(rows.view, stores)
    return [
        ordered_view(rows, target, shape, dtype, keep) for target, (_, shape, dtype) in zip(targets, fields)
    ]


def ordered_view(rows: Rows, target: str, shape, dtype: str, keep: int) -> Tensor:
    """The first `keep` elements of each row of buffer `target` (in the input's layout) as `shape`."""
    if keep == rows.view[1]:
        return from_buffer(target, shape, dtype)
    return Tensor(
        shape, dtype, lambda idx: E.Load(target, rows.position(*rows.split(idx.dims, shape)), dtype)
    )


def order_mask(ctx, rows: Rows, keep: int, shape, dtype: str) -> Tensor:
    """1 where an element is among the first `keep` of its row, else 0 (lazy: one rank per element)."""

    def at(idx) -> Expr:
        within = E.compare("lt", rows.rank(ctx, *rows.split(idx.dims, shape)), E.index(keep))
        return E.cast(within, dtype)

    return Tensor(shape, dtype, at)


@lowering(*TOPK_VIEWS)
def lower_order(ctx, node, inputs):
    params = TOPK_VIEWS[node.schema.name](node.params)
    axis = params["axis"]
    x = ctx.dense(inputs[0])
    rows = Rows(x, None if axis is None else normalize_axis(axis, x.ndim), params["is_ascend"])
    keep = rows.view[1] if params["k"] <= 0 else params["k"]
    outputs = [
        (field, shape, dtype) for field, (shape, dtype) in zip(RETURNS[params["ret_typ"]], ctx.out_types)
    ]
    if outputs[0][0] == "mask":
        _, shape, dtype = outputs[0]
        return [order_mask(ctx, rows, keep, shape, dtype)]
    return scatter_ordered(ctx, rows, outputs, keep)

"""Building blocks for shape and type rules.

A shape is a tuple of ints; a partially known shape has `None` for unknown dims, and `None` stands
for a shape not known at all. Rules are two-way: they take what is known of every input and output
and return what they can infer of each. A rule states a violated relation by raising
`RuleError(text)`; the inference pass adds the node, op and shapes around it.
"""

from __future__ import annotations

from typing import Callable, Sequence

Shape = tuple


class RuleError(ValueError):
    """A shape or type relation an op requires does not hold (message says which)."""


class Mismatch(RuleError):
    """Two facts about the same slot disagree."""

    def __init__(self, provided, inferred):
        super().__init__(f"provided {provided}, inferred {inferred}")
        self.provided, self.inferred = provided, inferred


def is_known(shape) -> bool:
    """A shape with known rank and every dim known."""
    return shape is not None and all(d is not None for d in shape)


def unify(provided, inferred):
    """Merge two partial shapes (or two dtypes); raise Mismatch when they disagree."""
    if provided is None:
        return inferred
    if inferred is None:
        return provided
    if isinstance(provided, str) or isinstance(inferred, str):
        if provided != inferred:
            raise Mismatch(provided, inferred)
        return provided
    if len(provided) != len(inferred):
        raise Mismatch(provided, inferred)
    merged = []
    for a, b in zip(provided, inferred):
        if a is not None and b is not None and a != b:
            raise Mismatch(provided, inferred)
        merged.append(a if a is not None else b)
    return tuple(merged)


def size_of(shape: Shape) -> int:
    total = 1
    for d in shape:
        total *= d
    return total


def forward_shape(fn: Callable) -> Callable:
    """A shape rule from `fn(params, *input_shapes) -> output shape (or list of shapes)`.

    `fn` runs only once every input shape is fully known; inputs are never refined.
    """

    def rule(params, in_shapes, out_shapes):
        if not all(is_known(s) for s in in_shapes):
            return in_shapes, out_shapes
        result = fn(params, *in_shapes)
        outs = list(result) if isinstance(result, list) else [result]
        return in_shapes, outs

    rule.__name__ = fn.__name__
    rule.__doc__ = fn.__doc__
    return rule


def forward_rank_shape(fn: Callable) -> Callable:
    """A shape rule from `fn(params, *input_shapes) -> output shape`, run once every input's rank is
    known (dims may still be None); inputs are never refined."""

    def rule(params, in_shapes, out_shapes):
        if any(s is None for s in in_shapes):
            return in_shapes, out_shapes
        return in_shapes, [fn(params, *in_shapes)]

    rule.__name__ = fn.__name__
    rule.__doc__ = fn.__doc__
    return rule


def same_shape_rule(params, in_shapes, out_shapes):
    """Every input and output has one shape (MXNet's ElemwiseShape; no broadcasting)."""
    merged = None
    for shape in list(in_shapes) + list(out_shapes):
        try:
            merged = unify(merged, shape)
        except Mismatch:
            raise RuleError("all inputs and the output must have the same shape (no broadcasting)") from None
    return [merged] * len(in_shapes), [merged] * len(out_shapes)


def same_type_rule(params, in_types, out_types):
    """Every input and output has one dtype; float32 when nothing says otherwise is left to the pass."""
    merged = None
    for dtype in list(in_types) + list(out_types):
        try:
            merged = unify(merged, dtype)
        except Mismatch:
            raise RuleError("all inputs and outputs must have the same dtype") from None
    return [merged] * len(in_types), [merged] * len(out_types)


def first_input_type_rule(params, in_types, out_types):
    """Outputs take the dtype of the first input; other inputs (indices, labels) are free."""
    dtype = unify(in_types[0], out_types[0]) if out_types else in_types[0]
    return [dtype] + list(in_types[1:]), [dtype] * len(out_types)


def fixed_output_type(dtype_of: Callable[[dict], str]):
    """A type rule whose outputs all have `dtype_of(params)` and whose inputs are unconstrained."""

    def rule(params, in_types, out_types):
        return in_types, [dtype_of(params)] * len(out_types)

    return rule


def broadcast_shapes(lhs: Sequence[int], rhs: Sequence[int]) -> Shape:
    """NumPy's right-aligned broadcasting of two known shapes; RuleError when incompatible."""
    ndim = max(len(lhs), len(rhs))
    a = (1,) * (ndim - len(lhs)) + tuple(lhs)
    b = (1,) * (ndim - len(rhs)) + tuple(rhs)
    out = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            raise RuleError(f"shapes {tuple(lhs)} and {tuple(rhs)} do not broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


def normalize_axis(axis: int, ndim: int, what: str = "axis") -> int:
    """`axis` in [0, ndim) (negative counts from the end); RuleError when out of range."""
    if not -ndim <= axis < ndim:
        raise RuleError(f"{what} {axis} is out of range for {ndim} dimensions")
    return axis % ndim


def reduce_axes(axis, ndim: int, exclude: bool = False) -> tuple[int, ...]:
    """The axes a reduction with MXNet's `axis`/`exclude` covers (None or () means all, even with exclude)."""
    if axis is None or axis == ():
        return tuple(range(ndim))
    axes = tuple(sorted({normalize_axis(a, ndim) for a in axis}))
    if exclude:
        axes = tuple(a for a in range(ndim) if a not in axes)
    return axes


def describe(shape) -> str:
    """A partial shape as error messages print it: (2,?,4); '?' when unknown; a dtype name as itself."""
    if shape is None:
        return "?"
    if isinstance(shape, str):
        return shape
    dims = ",".join("?" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


def product_or_none(dims) -> int | None:
    """The product of partial dims; None when any is unknown."""
    return None if any(d is None for d in dims) else size_of(dims)


def with_dim(shape: tuple, axis: int, dim) -> tuple:
    return shape[:axis] + (dim,) + shape[axis + 1 :]


def merge(a, b, relation: str):
    """`unify(a, b)`, or a RuleError saying which `relation` the two facts break."""
    try:
        return unify(a, b)
    except Mismatch:
        raise RuleError(f"{relation}: {describe(a)} vs {describe(b)}") from None


def first_known(*dims):
    """The first dim that is not None (None when all are)."""
    return next((d for d in dims if d is not None), None)

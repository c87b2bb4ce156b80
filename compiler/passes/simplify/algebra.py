"""Algebraic simplification: identities such as x*1 -> x, applied bottom-up to a fixpoint.

`simplify_algebra(graph)` (a typed graph; or an untyped one with `shapes`, `dtypes` by value) walks
the nodes in topological order. Each node is rebuilt
over its inputs' simplified values, then the rules of its op (`algebra_rules[op]`) are tried in
order: a rule returns the value to read instead of the node's output 0, or None to decline, and the
replacement's own rules are tried in turn until all decline. Rules look only at a node and its
inputs, which are already in normal form, so one bottom-up walk reaches the fixpoint.

A rule: `rule(node: Node, facts: Facts) -> Value | None`, for single-output nodes. Its replacement
keeps the value's shape and dtype, and is an existing value or one new node named after `node`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node, Value
from ...ops.facts import reshapes_input
from ...ops.params import format_value
from ...ops.registry import SCHEMAS
from ...ops.rules import RuleError
from ...ops.shape import swap_permutation, transpose_permutation
from ..typed import TypeField
from .rewrite import Rebuilder, new_node


@dataclass(frozen=True)
class Facts:
    """What the rules may ask about a value: its shape and dtype, None where not (fully) known."""

    shapes: Mapping[Value, tuple | None]
    dtypes: Mapping[Value, str | None]

    def rank(self, value: Value) -> int | None:
        shape = self.shapes.get(value)
        return None if shape is None else len(shape)

    def shape(self, value: Value) -> tuple | None:
        shape = self.shapes.get(value)
        return None if shape is None or None in shape else tuple(shape)

    def dtype(self, value: Value) -> str | None:
        return self.dtypes.get(value)

    def same_shape(self, a: Value, b: Value) -> bool:
        """Both shapes known and equal. The ops whose rules ask this keep their data's dtype (their
        type rules say so), so a dtype is compared only where both are known."""
        known = self.shape(a)
        dtypes = self.dtype(a), self.dtype(b)
        return known is not None and known == self.shape(b) and (None in dtypes or dtypes[0] == dtypes[1])


Rule = Callable[[Node, Facts], "Value | None"]
algebra_rules: dict[str, list[Rule]] = {}


def algebra_rule(*ops: str):
    """Append the decorated function to the rules of `ops` (tried in registration order)."""

    def register(fn: Rule) -> Rule:
        for op in ops:
            algebra_rules.setdefault(op, []).append(fn)
        return fn

    return register


def simplify_algebra(
    graph: Graph,
    shapes: Mapping[Value, tuple | None] | None = None,
    dtypes: Mapping[Value, str | None] | None = None,
) -> Graph:
    """`graph` with every rule of `algebra_rules` applied until none applies.

    A typed graph (`graph.types` set, `shapes` not given) is its own source of facts, and the result
    is typed too. Otherwise `shapes` and `dtypes` describe `graph`'s values (as `infer_shapes`/
    `infer_types` give them; rules that need a missing fact decline) and the result is untyped.
    """
    if shapes is None and graph.types is not None:
        rebuilder = Rebuilder.of(graph)
        facts = Facts(TypeField(rebuilder.types, "shape"), TypeField(rebuilder.types, "dtype"))
    else:
        rebuilder = Rebuilder(shapes or {}, dtypes or {})
        facts = Facts(*rebuilder.facts)
    for old in graph.nodes:
        node = rebuilder.node(old)
        if node.num_outputs != 1:
            continue
        value = _normal_form(node.output(0), facts, rebuilder)
        if value != node.output(0):
            rebuilder.replace(old.output(0), value)
    return rebuilder.graph(graph)


def _normal_form(value: Value, facts: Facts, rebuilder: Rebuilder) -> Value:
    """`value` rewritten until no rule of its op applies. Terminates: every rule returns an input-side
    value or one new node over a strictly deeper value."""
    while True:
        for rule in algebra_rules.get(value.node.op, ()):
            replacement = rule(value.node, facts)
            if replacement is not None:
                break
        else:
            return value
        rebuilder.replace(value, replacement)  # a new node inherits the value's shape and dtype
        value = replacement


# ---------------------------------------------------------------------------------------------
# Scalar ops: identity scalars, and chains of one op folded into one scalar


def _keeps_dtype(node: Node, facts: Facts) -> bool:
    """Whether a scalar op's output has its data's dtype (integer data with `is_int=False` gives float64)."""
    x = node.inputs[0]
    return node.params["is_int"] or (
        facts.dtype(x) is not None and facts.dtype(x) == facts.dtype(node.output(0))
    )


def _scalar_is(node: Node, facts: Facts, identity: float) -> Value | None:
    return node.inputs[0] if node.params["scalar"] == identity and _keeps_dtype(node, facts) else None


@algebra_rule("_mul_scalar", "_div_scalar", "_power_scalar")
def scalar_one(node, facts):  # x*1 -> x, x/1 -> x, x**1 -> x
    return _scalar_is(node, facts, 1.0)


@algebra_rule("_plus_scalar", "_minus_scalar")
def scalar_zero(node, facts):  # x+0 -> x, x-0 -> x
    return _scalar_is(node, facts, 0.0)


@algebra_rule("_mul_scalar")
def mul_of_mul(node, facts):  # (x*a)*b -> x*(a*b)
    return _combine_scalars(node, facts, operator.mul)


@algebra_rule("_plus_scalar")
def plus_of_plus(node, facts):  # (x+a)+b -> x+(a+b)
    return _combine_scalars(node, facts, operator.add)


def _combine_scalars(node: Node, facts: Facts, combine) -> Value | None:
    """`op(op(x, a), b)` as `op(x, combine(a, b))`, where no step changes the dtype.

    Exact for integers (wrapping arithmetic is associative; the scalars must be integers the dtype
    holds). For floats this reassociates, as -ffast-math does: results may differ in rounding, and
    where an intermediate overflows or cancels the folded form is the more accurate one.
    """
    inner = node.inputs[0].node
    if inner.op != node.op:
        return None
    x = inner.inputs[0]
    dtype = facts.dtype(x)
    if dtype is None or {facts.dtype(inner.output(0)), facts.dtype(node.output(0))} != {dtype}:
        return None
    a, b = inner.params["scalar"], node.params["scalar"]
    combined = combine(a, b)
    if not _holds_exactly(dtype, (a, b, combined)):
        return None
    return new_node(node.op, (x,), node, {**node.attrs.as_dict(), "scalar": format_value(combined)})


def _holds_exactly(dtype: str, scalars: tuple[float, ...]) -> bool:
    """Whether each scalar, cast to `dtype` as the reference casts it, is the number it stands for:
    an in-range integer for integer dtypes; finite, and zero only when it is zero, for floats."""
    kind = np.dtype(dtype).kind
    if kind in "iu":
        info = np.iinfo(dtype)
        return all(float(s).is_integer() and info.min <= s <= info.max for s in scalars)
    if kind != "f":
        return False
    with np.errstate(all="ignore"):
        cast = [np.array(s).astype(dtype) for s in scalars]
    return all(np.isfinite(c) and (c == 0) == (s == 0) for s, c in zip(scalars, cast))


@algebra_rule("negative")
def negative_of_negative(node, facts):  # -(-x) -> x
    inner = node.inputs[0].node
    return inner.inputs[0] if inner.op == "negative" else None


# ---------------------------------------------------------------------------------------------
# Copies and casts


@algebra_rule("_copy")
def copy(node, facts):  # copy(x) -> x
    return node.inputs[0]


@algebra_rule("Cast")
def cast_to_own_dtype(node, facts):  # cast(x, dtype(x)) -> x
    x = node.inputs[0]
    return x if facts.dtype(x) == node.params["dtype"] else None


# ---------------------------------------------------------------------------------------------
# Layout: reshapes (every op that keeps the row-major order of the elements) and permutations

RESHAPES = tuple(op for op, schema in SCHEMAS.items() if schema.reshapes_input)  # as each op declares


@algebra_rule(*RESHAPES)
def reshape_to_own_shape(node, facts):  # reshape(x, shape(x)) -> x; squeeze(expand_dims(x, a), a) -> x
    x = node.inputs[0]
    return x if facts.same_shape(x, node.output(0)) else None


@algebra_rule(*RESHAPES)
def reshape_of_reshape(node, facts):  # reshape(reshape(x, s), t) -> reshape(x, t)
    inner, shape = node.inputs[0].node, facts.shape(node.output(0))
    if not reshapes_input(inner) or shape is None or 0 in shape:  # 0 in `shape` would mean "copy this dim"
        return None
    return new_node("Reshape", (inner.inputs[0],), node, {"shape": format_value(shape)})


PERMUTATIONS = {"transpose": transpose_permutation, "SwapAxis": swap_permutation}


def _permutation(node: Node, facts: Facts) -> tuple[int, ...] | None:
    """Output axis i is input axis perm[i]; None where the rank is unknown."""
    rank = facts.rank(node.inputs[0])
    if rank is None and node.op == "transpose" and node.params["axes"]:
        rank = len(node.params["axes"])
    try:
        return None if rank is None else PERMUTATIONS[node.op](node.params, rank)
    except RuleError:
        return None


@algebra_rule(*PERMUTATIONS)
def identity_permutation(node, facts):  # transpose(x, (0, 1, ..)) -> x
    perm = _permutation(node, facts)
    return node.inputs[0] if perm is not None and perm == tuple(range(len(perm))) else None


@algebra_rule(*PERMUTATIONS)
def permutation_of_permutation(node, facts):  # transpose(transpose(x, p), q) -> transpose(x, p[q])
    inner = node.inputs[0].node
    if inner.op not in PERMUTATIONS:
        return None
    p, q = _permutation(inner, facts), _permutation(node, facts)
    if p is None or q is None:
        return None
    composed = tuple(p[i] for i in q)
    return new_node("transpose", (inner.inputs[0],), node, {"axes": format_value(composed)})


# ---------------------------------------------------------------------------------------------
# Broadcasts and reductions that change nothing


@algebra_rule("broadcast_to", "broadcast_axis", "broadcast_like")
def broadcast_to_own_shape(node, facts):  # broadcast_to(x, shape(x)) -> x
    x = node.inputs[0]
    return x if facts.same_shape(x, node.output(0)) else None


@algebra_rule("sum", "mean", "max", "min", "prod")
def reduce_nothing(node, facts):  # sum(x, axes of size 1, keepdims) -> x
    # Equal shapes mean every reduced axis had size 1: a reduction that drops an axis of size > 1,
    # or keeps it as 1, changes the shape.
    x = node.inputs[0]
    return x if facts.same_shape(x, node.output(0)) else None


# ---------------------------------------------------------------------------------------------
# Neutral operands of same-shape binary ops

ZEROS = ("zeros_like", "_zeros")
ONES = ("ones_like", "_ones")


def _neutral_operand(
    node: Node, facts: Facts, neutral: tuple[str, ...], sides: tuple[int, ...]
) -> Value | None:
    """The other operand where operand `side` (one of `sides`) is made by an op of `neutral`."""
    for side in sides:
        other = node.inputs[1 - side]
        if node.inputs[side].node.op in neutral and facts.same_shape(other, node.output(0)):
            return other
    return None


@algebra_rule("elemwise_add")
def plus_zeros(node, facts):  # x + 0 -> x, 0 + x -> x
    return _neutral_operand(node, facts, ZEROS, (1, 0))


@algebra_rule("elemwise_sub")
def minus_zeros(node, facts):  # x - 0 -> x
    return _neutral_operand(node, facts, ZEROS, (1,))


@algebra_rule("elemwise_mul")
def times_ones(node, facts):  # x * 1 -> x, 1 * x -> x
    return _neutral_operand(node, facts, ONES, (1, 0))


@algebra_rule("elemwise_div")
def divided_by_ones(node, facts):  # x / 1 -> x
    return _neutral_operand(node, facts, ONES, (1,))

"""Lowering rules of the elementwise and broadcast families (ops/elementwise.py, ops/broadcast.py).

Each op's formula is the one its reference runs (`elementwise.POINTWISE`, written once over a math
namespace), evaluated here over `ExprMath` on its inputs' elements: the same dtype rules (float math
on integers in float64, on float16 in float32, results cast back) hold by construction.
"""

from __future__ import annotations

from functools import partial

from ..ops.elementwise import BINARY, POINTWISE, UNARY, Unary, apply_binary
from ..ops.registry import lowering
from .expr import Expr
from .exprmath import ExprMath, Sym
from .tensor import Tensor, broadcast_to, pointwise


def binary(key: str, a: Expr, b: Expr) -> Expr:
    """The binary op `key` (of elementwise.BINARY) on two elements, the result in a's dtype."""
    return apply_binary(ExprMath, BINARY[key], Sym(a), Sym(b)).e


def _bare_formula(op: Unary, x: Expr) -> Expr:
    return op.formula(ExprMath, Sym(x)).e


# name -> the unary formula on an element already in its compute dtype, for rules_nn.py's Activation.
UNARY_FORMULAS = {name: partial(_bare_formula, op) for name, op in UNARY.items()}


def _lower(node, inputs: list[Tensor], shape, dtype: str) -> Tensor:
    """The op's formula on its inputs, broadcast to `shape`, element by element."""
    formula, params = POINTWISE[node.schema.name], node.params
    operands = [broadcast_to(t, shape) for t in inputs]
    return pointwise(lambda *xs: formula(ExprMath, params, *map(Sym, xs)).e, *operands, dtype=dtype)


@lowering(*(name for name in POINTWISE if name != "where"))
def lower_pointwise(ctx, node, inputs):
    shape, dtype = ctx.out_types[0]
    return [_lower(node, inputs, shape, dtype)]


@lowering("where")
def lower_where(ctx, node, inputs):
    condition, x, y = inputs
    if condition.ndim != x.ndim:  # 1-D over x's rows
        rows = condition
        condition = Tensor(
            (x.shape[0],) + (1,) * (x.ndim - 1), rows.dtype, lambda idx: rows.flat(idx.dims[0])
        )
    return [_lower(node, [condition, x, y], x.shape, x.dtype)]


@lowering("broadcast_to", "broadcast_axis", "broadcast_like")
def lower_broadcast_to(ctx, node, inputs):
    shape, _ = ctx.out_types[0]
    return [broadcast_to(inputs[0], shape)]


__all__ = ["UNARY_FORMULAS", "binary"]

"""Lowering of `_optimizer_update` (ops/optimizer.py): the rule's formula evaluated over scalar
expressions instead of NumPy arrays, through `ExprMath` and the operator-overloading `Sym` wrapper
(lowering/exprmath.py). The new weight and every new state are computed in one loop, sharing their
common terms.
"""

from __future__ import annotations

from ..ops.optimizer import UPDATE_RULES
from ..ops.registry import lowering
from . import expr as E
from .exprmath import ExprMath, Sym
from .tensor import Tensor, broadcast_to


@lowering("_optimizer_update")
def lower_optimizer_update(ctx, node, inputs):
    rule = UPDATE_RULES[node.params["rule"]]
    weight, grad = inputs[:2]
    states = inputs[2 : 2 + rule.states]
    scalars = [broadcast_to(t, weight.shape) for t in inputs[2 + rule.states :]]
    shape = weight.shape

    dtype = weight.dtype

    def operand(t: Tensor, idx) -> Sym:
        """An input element in the weight's dtype (AdaGrad keeps float32 states for any weight; the
        reference computes in the promoted type and casts each result back, as here)."""
        return Sym(E.cast(t.at(idx), dtype))

    def results(idx):
        step = rule.step(
            ExprMath,
            operand(weight, idx),
            operand(grad, idx),
            [operand(s, idx) for s in states],
            {name: operand(t, idx) for name, t in zip(rule.scalars, scalars)},
        )
        new_w, new_states = step
        return [new_w.e, *(s.e for s in new_states)]

    def output(k: int, dtype: str) -> Tensor:
        return Tensor(shape, dtype, lambda idx: E.cast(results(idx)[k], dtype))

    return [output(k, dtype) for k, (_, dtype) in enumerate(ctx.out_types)]

"""Lowering of `_optimizer_update` (ops/optimizer.py): the rule's formula evaluated over scalar
expressions instead of NumPy arrays, through `ExprMath` and the operator-overloading `Sym` wrapper.
The new weight and every new state are computed in one loop, sharing their common terms.
"""

from __future__ import annotations

from ..ops.optimizer import UPDATE_RULES
from ..ops.registry import lowering
from . import expr as E
from .expr import Expr
from .tensor import Tensor, broadcast_to


class Sym:
    """An `Expr` with Python's arithmetic and comparison operators; numbers become constants of the
    expression's dtype (as the reference casts its hyper-parameters to the weight's dtype)."""

    __slots__ = ("e",)

    def __init__(self, e: Expr):
        self.e = e

    def _other(self, other) -> Expr:
        return other.e if isinstance(other, Sym) else E.const(other, self.e.dtype)

    def __add__(self, other):
        return Sym(E.call("add", self.e, self._other(other)))

    def __radd__(self, other):
        return Sym(E.call("add", self._other(other), self.e))

    def __sub__(self, other):
        return Sym(E.call("sub", self.e, self._other(other)))

    def __rsub__(self, other):
        return Sym(E.call("sub", self._other(other), self.e))

    def __mul__(self, other):
        return Sym(E.call("mul", self.e, self._other(other)))

    def __rmul__(self, other):
        return Sym(E.call("mul", self._other(other), self.e))

    def __truediv__(self, other):
        return Sym(E.call("div", self.e, self._other(other)))

    def __rtruediv__(self, other):
        return Sym(E.call("div", self._other(other), self.e))

    def __neg__(self):
        return Sym(E.call("neg", self.e))

    def __gt__(self, other):
        return Sym(E.compare("gt", self.e, self._other(other)))

    def __ge__(self, other):
        return Sym(E.compare("ge", self.e, self._other(other)))


class ExprMath:
    """The math namespace `UpdateRule.step` uses, over `Sym`s; hyper-parameters are data here."""

    data_dependent = True

    @staticmethod
    def sqrt(x: Sym) -> Sym:
        return Sym(E.call("sqrt", x.e))

    @staticmethod
    def abs(x: Sym) -> Sym:
        return Sym(E.call("abs", x.e))

    @staticmethod
    def sign(x: Sym) -> Sym:
        zero = E.const(0, x.e.dtype)
        one, minus = E.const(1, x.e.dtype), E.const(-1, x.e.dtype)
        positive, negative = E.compare("gt", x.e, zero), E.compare("lt", x.e, zero)
        return Sym(E.select(positive, one, E.select(negative, minus, E.mul(x.e, zero))))

    @staticmethod
    def maximum(a: Sym, b) -> Sym:
        return Sym(E.maximum(a.e, a._other(b)))

    @staticmethod
    def minimum(a: Sym, b) -> Sym:
        return Sym(E.minimum(a.e, a._other(b)))

    @staticmethod
    def where(cond: Sym, a, b) -> Sym:
        """`a` where `cond`, else `b`; at least one of them is a Sym, whose dtype numbers take."""
        dtype = (a if isinstance(a, Sym) else b).e.dtype
        pick = lambda v: v.e if isinstance(v, Sym) else E.const(v, dtype)
        return Sym(E.select(cond.e, pick(a), pick(b)))

    @staticmethod
    def indicator(cond: Sym, like: Sym) -> Sym:
        """1 where `cond` holds, else 0, in `like`'s dtype."""
        return Sym(E.cast(cond.e, like.e.dtype))


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

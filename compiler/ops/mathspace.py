"""Math namespaces: pointwise formulas (ops/elementwise.py) and optimizer updates (ops/optimizer.py) are
written once over a namespace `m` and Python operators, and run on whichever values `m` works on.

`NumpyMath` (here) runs them on NumPy arrays for the reference interpreter; `ExprMath`
(lowering/exprmath.py) on scalar expressions for compiled code; `GraphMath` (here) builds gradient
formulas as ordinary IR nodes through autodiff's GradBuilder. Each namespace offers:

- values with `+ - * / **`, unary `-`, comparisons (`< <= > >= == !=`, giving truth values) and
  `& | ^` on truth values (`Operators` spells them for values that are not arrays); a Python number
  mixed in takes the other operand's dtype (so with integer values it must be an integer);
- math: exp, log, log2, log10, log1p, expm1, sqrt, cbrt, abs, sign, floor, ceil, trunc, round (half
  away from zero), sin, cos, tan, arcsin, arccos, arctan, sinh, cosh, tanh, arcsinh, arccosh, arctanh,
  erf, maximum and minimum (NaN wins, as NumPy), hypot, where(cond, a, b), indicator(cond, like);
- integer-aware arithmetic: div (C division on integers, 0 for a zero divisor) and mod (MXNet's: the
  sign of the divisor, 0 for a zero divisor);
- dtypes: dtype(x), cast(x, dtype), widen(x) (float16 to float32, integers and bools to float64),
  integer(x) (an integer operand as exact integer math reads it), truth(x) (x != 0), constant(value,
  dtype) (a number cast to dtype as MXNet casts scalars) and full_like(x, value);
- `data_dependent`: whether numbers a formula receives may be data (optimizer hyper-parameters are
  plain numbers for NumPy and loaded values in compiled code).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def is_integer(dtype) -> bool:
    """Whether `dtype` (a NumPy dtype or a name) holds integers or bools."""
    return np.dtype(dtype).kind in "iub"


def as_float(x: np.ndarray) -> np.ndarray:
    """The array a float kernel reads: float16 widened to float32, integers and bools to float64."""
    if x.dtype == np.float16:
        return x.astype(np.float32)
    if x.dtype.kind in "iub":
        return x.astype(np.float64)
    return x


def _trunc_divide(a, b):
    """C++ division: integers truncate toward zero (a zero divisor gives 0), floats divide."""
    if not is_integer(a.dtype):
        return np.divide(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        quotient = np.abs(a) // np.where(b == 0, 1, np.abs(b))
    return np.where(b == 0, 0, np.sign(a) * np.sign(b) * quotient)


def _mod(a, b):
    """MXNet's mod: the sign follows the divisor (as Python's %); a zero divisor gives 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0, np.mod(a, np.where(b == 0, 1, b)))


def _round_half_away(x):
    """std::round: halves go away from zero (NumPy's round goes to even)."""
    whole = np.trunc(x)
    return np.where(np.abs(x - whole) >= 0.5, whole + np.sign(x), whole)


class NumpyMath:
    """The namespace on NumPy arrays (the reference); numbers stay plain numbers."""

    data_dependent = False
    exp, log, log2, log10, log1p, expm1 = np.exp, np.log, np.log2, np.log10, np.log1p, np.expm1
    sqrt, cbrt, abs, sign, floor, ceil, trunc = np.sqrt, np.cbrt, np.abs, np.sign, np.floor, np.ceil, np.trunc
    sin, cos, tan, arcsin, arccos, arctan = np.sin, np.cos, np.tan, np.arcsin, np.arccos, np.arctan
    sinh, cosh, tanh = np.sinh, np.cosh, np.tanh
    arcsinh, arccosh, arctanh = np.arcsinh, np.arccosh, np.arctanh
    maximum, minimum, hypot, full_like = np.maximum, np.minimum, np.hypot, np.full_like
    round, div, mod, widen = _round_half_away, _trunc_divide, _mod, as_float
    erf = np.vectorize(math.erf, otypes=[np.float64])

    @staticmethod
    def where(cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def indicator(cond, like):
        """1 where `cond` holds, else 0, in `like`'s dtype."""
        return np.asarray(cond).astype(np.result_type(like))

    @staticmethod
    def truth(x):
        return x != 0

    @staticmethod
    def dtype(x) -> np.dtype:
        return x.dtype

    @staticmethod
    def cast(x, dtype) -> np.ndarray:
        return np.asarray(x).astype(dtype, copy=False)

    @staticmethod
    def integer(x):
        return x

    @staticmethod
    def constant(value, dtype) -> np.ndarray:
        return np.array(value).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Operators for values that are not arrays (expressions, gradient terms)


def _operator(key: str, reflected: bool = False):
    def apply(self, other):
        return self._binary(key, other, reflected)

    return apply


class Operators:
    """Python's operators on a namespace's values, as binary formulas of elementwise.BINARY (add, sub,
    mul, div, power, the comparisons, logical_and/or/xor); a subclass implements `_binary(key, other,
    reflected)` (reflected: `other` is the left operand) and `__neg__`. NumPy arrays need none of this."""

    __slots__ = ()
    __hash__ = None  # `==` builds a comparison, as NumPy's does
    __add__, __radd__ = _operator("add"), _operator("add", reflected=True)
    __sub__, __rsub__ = _operator("sub"), _operator("sub", reflected=True)
    __mul__, __rmul__ = _operator("mul"), _operator("mul", reflected=True)
    __truediv__, __rtruediv__ = _operator("div"), _operator("div", reflected=True)
    __pow__, __rpow__ = _operator("power"), _operator("power", reflected=True)
    __gt__, __ge__ = _operator("greater"), _operator("greater_equal")
    __lt__, __le__ = _operator("lesser"), _operator("lesser_equal")
    __eq__, __ne__ = _operator("equal"), _operator("not_equal")
    __and__, __or__, __xor__ = _operator("logical_and"), _operator("logical_or"), _operator("logical_xor")

    def _binary(self, key: str, other, reflected: bool = False):
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Gradient formulas: terms that become IR nodes


class Term(Operators):
    """A value of a gradient formula: a graph value, or an op on terms and numbers that becomes a node
    only when `GraphMath.build` reaches it, so parts of a formula nobody uses (a scalar operand's
    gradient) never become nodes."""

    __slots__ = ("args", "m", "op", "params", "value")

    def __init__(self, m: GraphMath, op: str | None, args: tuple = (), params=None, value=None):
        self.m, self.op, self.args, self.params, self.value = m, op, args, params or {}, value

    def _binary(self, key: str, other, reflected: bool = False) -> Term:
        if isinstance(other, Term):
            a, b = (other, self) if reflected else (self, other)
            return Term(self.m, self.m.op_name(key, "broadcast" if self.m.broadcast else "same"), (a, b))
        if key == "mul" and other in (1, -1):  # x*1 -> x, x*-1 -> -x
            return self if other == 1 else -self
        form = "rscalar" if reflected else "scalar"
        return Term(self.m, self.m.op_name(key, form), (self,), {"scalar": float(other)})

    def __neg__(self):
        return Term(self.m, "negative", (self,))


class GraphMath:
    """The namespace of gradient formulas: terms over the values of a graph, built into ordinary IR
    nodes through the GradBuilder `g` (so fusion sees gradients like any op).

    `op_name(key, form)` names the op of binary formula `key` ("add", "greater", ...) in one of four
    forms: "same" (two same-shaped operands), "broadcast", "scalar" (term op number) and "rscalar"
    (number op term); `broadcast` picks the form for two terms. Math on terms is the op of that name
    (`m.exp(x)` is an `exp` node, `m.square(y)` a `square` node: any registered unary op may be used);
    math on numbers is NumpyMath's, in float64. Gradients are float math, so of the dtype helpers only
    `dtype` and `cast` are offered.
    """

    data_dependent = True

    def __init__(self, g, op_name: Callable[[str, str], str], broadcast: bool = False):
        self.g, self.op_name, self.broadcast = g, op_name, broadcast

    def leaf(self, value) -> Term:
        """The term of an existing graph value."""
        return Term(self, None, value=value)

    def build(self, term: Term):
        """The graph value of `term`, making nodes for it and the terms it uses (each once)."""
        if not isinstance(term, Term):
            raise TypeError(f"a gradient formula gave the number {term!r} where a graph value is needed")
        if term.value is None:
            inputs = [self.build(a) for a in term.args]
            term.value = self.g.op(term.op, *inputs, **term.params)
        return term.value

    def dtype(self, x: Term) -> str:
        return self.g.dtype(self.build(x))

    def cast(self, x: Term, dtype: str) -> Term:
        return Term(self, "Cast", (x,), {"dtype": dtype})

    def where(self, cond: Term, a: Term, b: Term) -> Term:
        return Term(self, "where", (cond, a, b))

    def maximum(self, a, b):
        return self._commutative("maximum", a, b)

    def minimum(self, a, b):
        return self._commutative("minimum", a, b)

    def hypot(self, a, b):
        return self._commutative("hypot", a, b)

    def div(self, a, b):
        return a / b

    def mod(self, a: Term, b) -> Term:
        return a._binary("mod", b)

    def _commutative(self, key: str, a, b):
        if not isinstance(a, Term):
            a, b = b, a
        if not isinstance(a, Term):
            return float(getattr(NumpyMath, key)(np.float64(a), np.float64(b)))
        return a._binary(key, b)

    def __getattr__(self, op: str):
        """`m.<op>(x)`: the unary op `op` on a term, or NumpyMath's `op` on a number."""
        if op.startswith("__"):
            raise AttributeError(op)

        def unary(x):
            if isinstance(x, Term):
                return Term(self, op, (x,))
            with np.errstate(all="ignore"):
                return float(getattr(NumpyMath, op)(np.float64(x)))

        return unary

"""The math namespace on scalar expressions (see ops/mathspace.py): the formulas written once for the
reference (pointwise ops, optimizer updates) run here on `Sym`s, operator-overloading wrappers of
`Expr`s, and give the expression of one element. The dtype rules are the reference's: integer math
is exact (C division, MXNet's mod), bools add as `or` and multiply as `and` (NumPy's), and float math
on integers or float16 runs in `compute_dtype`.
"""

from __future__ import annotations

from ..ops.mathspace import Operators
from . import expr as E
from .expr import Expr


def compute_dtype(dtype: str) -> str:
    """The dtype float math runs in for data of `dtype` (as mathspace.as_float)."""
    if dtype == "float16":
        return "float32"
    if dtype in E.FLOATS:
        return dtype
    return "float64"


def c(value, like: Expr) -> Expr:
    """A constant of `like`'s dtype."""
    return E.const(value, like.dtype)


# elementwise.BINARY keys -> expression functions of the operators
_CALLS = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "power": "pow"}
_CALLS |= {"logical_and": "and", "logical_or": "or", "logical_xor": "xor"}
_COMPARISONS = {"greater": "gt", "greater_equal": "ge", "lesser": "lt", "lesser_equal": "le"}
_COMPARISONS |= {"equal": "eq", "not_equal": "ne"}
_BOOL_ARITH = {"add": "or", "mul": "and", "sub": "xor"}  # NumPy's bool + bool is or, * is and


class Sym(Operators):
    """An `Expr` with Python's operators (mathspace.Operators); numbers become constants of the
    expression's dtype (as the reference casts scalars and hyper-parameters to the data's)."""

    __slots__ = ("e",)

    def __init__(self, e: Expr):
        self.e = e

    def _other(self, other) -> Expr:
        return other.e if isinstance(other, Sym) else E.const(other, self.e.dtype)

    def _binary(self, key: str, other, reflected: bool = False) -> Sym:
        a, b = (self._other(other), self.e) if reflected else (self.e, self._other(other))
        if key in _COMPARISONS:
            if a.dtype == "bool":
                a, b = E.cast(a, "int32"), E.cast(b, "int32")
            return Sym(E.compare(_COMPARISONS[key], a, b))
        fn = _BOOL_ARITH[key] if a.dtype == "bool" and key in _BOOL_ARITH else _CALLS[key]
        return Sym(E.call(fn, a, b))

    def __neg__(self):
        return Sym(E.call("neg", self.e))


def _intrinsic(fn: str):
    """The namespace function calling the expression function `fn` on one operand."""
    return staticmethod(lambda x: Sym(E.call(fn, x.e)))


def _safe_divisor(b: Expr) -> Expr:
    """`b` with 0 (and, for signed types, -1: INT_MIN / -1 traps on x86) replaced by 1; callers
    substitute the results for those divisors themselves."""
    risky = E.compare("eq", b, c(0, b))
    if b.dtype not in E.UNSIGNED:
        risky = E.call("or", risky, E.compare("eq", b, c(-1, b)))
    return E.select(risky, c(1, b), b)


def _mod_sign_fix(r: Expr, b: Expr) -> Expr:
    """A C remainder `r` moved to the divisor's sign (NumPy's and MXNet's mod)."""
    zero = c(0, r)
    fix = E.call(
        "and", E.compare("ne", r, zero), E.call("xor", E.compare("lt", r, zero), E.compare("lt", b, zero))
    )
    return E.select(fix, E.add(r, b), r)


class ExprMath:
    """The namespace over `Sym`s (compiled code); optimizer hyper-parameters are data here."""

    data_dependent = True
    exp, log, log2, log10, log1p, expm1 = map(_intrinsic, ("exp", "log", "log2", "log10", "log1p", "expm1"))
    sqrt, cbrt, abs, floor, ceil, trunc = map(_intrinsic, ("sqrt", "cbrt", "abs", "floor", "ceil", "trunc"))
    round, erf, sin, cos, tan = map(_intrinsic, ("round", "erf", "sin", "cos", "tan"))
    arcsin, arccos, arctan, sinh, cosh, tanh = map(
        _intrinsic, ("asin", "acos", "atan", "sinh", "cosh", "tanh")
    )
    arcsinh, arccosh, arctanh = map(_intrinsic, ("asinh", "acosh", "atanh"))

    @staticmethod
    def sign(x: Sym) -> Sym:
        """-1, 0 or 1; floats keep NaN and the sign of zero (x * 0), as NumPy."""
        zero = c(0, x.e)
        positive, negative = E.compare("gt", x.e, zero), E.compare("lt", x.e, zero)
        rest = E.mul(x.e, zero) if x.e.dtype in E.FLOATS else zero
        return Sym(E.select(positive, c(1, x.e), E.select(negative, c(-1, x.e), rest)))

    @staticmethod
    def maximum(a: Sym, b) -> Sym:
        return Sym(E.maximum(a.e, a._other(b)))

    @staticmethod
    def minimum(a: Sym, b) -> Sym:
        return Sym(E.minimum(a.e, a._other(b)))

    @staticmethod
    def hypot(a: Sym, b: Sym) -> Sym:
        return Sym(E.call("hypot", a.e, b.e))

    @staticmethod
    def div(a: Sym, b: Sym) -> Sym:
        """Division; integers truncate toward zero as C does, and a zero divisor gives 0."""
        a, b = a.e, b.e
        if a.dtype in E.FLOATS:
            return Sym(E.div(a, b))
        zero = c(0, a)
        quotient = E.call("div", a, _safe_divisor(b))
        if a.dtype not in E.UNSIGNED:
            quotient = E.select(E.compare("eq", b, c(-1, b)), E.call("neg", a), quotient)  # wraps at INT_MIN
        return Sym(E.select(E.compare("eq", b, zero), zero, quotient))

    @staticmethod
    def mod(a: Sym, b: Sym) -> Sym:
        """MXNet's mod: the sign of the divisor; 0 for a zero divisor."""
        a, b = a.e, b.e
        zero = c(0, a)
        if a.dtype in E.FLOATS:
            r = _mod_sign_fix(E.call("mod", a, E.select(E.compare("eq", b, zero), c(1, b), b)), b)
            return Sym(E.select(E.compare("eq", b, zero), zero, r))
        r = E.call("mod", a, _safe_divisor(b))  # x mod -1 is 0, as x mod 1
        return Sym(E.select(E.compare("eq", b, zero), zero, _mod_sign_fix(r, b)))

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

    @staticmethod
    def truth(x: Sym) -> Sym:
        return Sym(E.cast(x.e, "bool"))

    @staticmethod
    def dtype(x: Sym) -> str:
        return x.e.dtype

    @staticmethod
    def cast(x: Sym, dtype: str) -> Sym:
        return Sym(E.cast(x.e, dtype))

    @staticmethod
    def widen(x: Sym) -> Sym:
        return Sym(E.cast(x.e, compute_dtype(x.e.dtype)))

    @staticmethod
    def integer(x: Sym) -> Sym:
        """Bools as int32, so exact integer math (negative, abs, sign) has numbers to work on."""
        return Sym(E.cast(x.e, "int32")) if x.e.dtype == "bool" else x

    @staticmethod
    def constant(value, dtype: str) -> Sym:
        """`value` cast to `dtype` as MXNet casts a scalar parameter (from a double)."""
        return Sym(E.cast(E.const(value, "float64"), dtype))

    @staticmethod
    def full_like(x: Sym, value) -> Sym:
        return Sym(c(value, x.e))

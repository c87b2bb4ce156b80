"""Lowering rules of the elementwise and broadcast families (ops/elementwise.py, ops/broadcast.py).

Each op is a scalar formula over its inputs' elements, written once in the tables below and shared
by the same-shape, scalar and broadcast variants. As the references do, integer inputs to float math
are computed in float64 and float16 in float32, then cast back to the input's dtype.
"""

from __future__ import annotations

import math

from ..ops.elementwise import (
    BINARY_FUNCTIONS,
    ELEMWISE_BINARY,
    EXACT_ON_INTEGERS,
    SCALAR_OPS,
    UNARY_FUNCTIONS,
)
from ..ops.registry import lowering
from . import expr as E
from .expr import Expr
from .tensor import Tensor, broadcast_to, constant, pointwise


def compute_dtype(dtype: str) -> str:
    """The dtype float math runs in for data of `dtype` (as elementwise.as_float)."""
    if dtype == "float16":
        return "float32"
    if dtype in E.FLOATS:
        return dtype
    return "float64"


def c(value, like: Expr) -> Expr:
    """A constant of `like`'s dtype."""
    return E.const(value, like.dtype)


def _sign(x):
    zero = c(0, x)
    if x.dtype not in E.FLOATS:
        return E.select(E.compare("gt", x, zero), c(1, x), E.select(E.compare("lt", x, zero), c(-1, x), zero))
    return E.select(
        E.compare("gt", x, zero), c(1, x), E.select(E.compare("lt", x, zero), c(-1, x), E.mul(x, zero))
    )


def _rint(x):
    """MXNet's rint: floor at exact halves."""
    floor, ceil = E.call("floor", x), E.call("ceil", x)
    return E.select(E.compare("le", E.sub(x, floor), E.sub(ceil, x)), floor, ceil)


def _relu(x):
    return E.maximum(x, c(0, x))


def _boolean(x):
    return E.cast(x, "bool")


# name -> formula of one element x (already in compute_dtype, or the integer itself for exact ops)
UNARY_FORMULAS = {
    "exp": lambda x: E.call("exp", x),
    "log": lambda x: E.call("log", x),
    "log2": lambda x: E.call("log2", x),
    "log10": lambda x: E.call("log10", x),
    "log1p": lambda x: E.call("log1p", x),
    "expm1": lambda x: E.call("expm1", x),
    "sqrt": lambda x: E.call("sqrt", x),
    "rsqrt": lambda x: E.div(c(1, x), E.call("sqrt", x)),
    "cbrt": lambda x: E.call("cbrt", x),
    "rcbrt": lambda x: E.div(c(1, x), E.call("cbrt", x)),
    "square": lambda x: E.mul(x, x),
    "abs": lambda x: E.call("abs", x),
    "sign": _sign,
    "negative": lambda x: E.call("neg", x),
    "reciprocal": lambda x: E.div(c(1, x), x),
    "floor": lambda x: E.call("floor", x),
    "ceil": lambda x: E.call("ceil", x),
    "round": lambda x: E.call("round", x),
    "rint": _rint,
    "fix": lambda x: E.call("trunc", x),
    "trunc": lambda x: E.call("trunc", x),
    "sin": lambda x: E.call("sin", x),
    "cos": lambda x: E.call("cos", x),
    "tan": lambda x: E.call("tan", x),
    "arcsin": lambda x: E.call("asin", x),
    "arccos": lambda x: E.call("acos", x),
    "arctan": lambda x: E.call("atan", x),
    "sinh": lambda x: E.call("sinh", x),
    "cosh": lambda x: E.call("cosh", x),
    "tanh": lambda x: E.call("tanh", x),
    "arcsinh": lambda x: E.call("asinh", x),
    "arccosh": lambda x: E.call("acosh", x),
    "arctanh": lambda x: E.call("atanh", x),
    "degrees": lambda x: E.mul(x, c(180 / math.pi, x)),
    "radians": lambda x: E.mul(x, c(math.pi / 180, x)),
    "sigmoid": lambda x: E.div(c(1, x), E.add(c(1, x), E.call("exp", E.call("neg", x)))),
    "relu": _relu,
    "softsign": lambda x: E.div(x, E.add(c(1, x), E.call("abs", x))),
    "erf": lambda x: E.call("erf", x),
    "logical_not": lambda x: E.compare("eq", x, c(0, x)),
    "_copy": lambda x: x,
    "zeros_like": lambda x: c(0, x),
    "ones_like": lambda x: c(1, x),
}
assert set(UNARY_FORMULAS) == set(UNARY_FUNCTIONS), "every unary op needs a formula"


def unary(name: str, x: Expr) -> Expr:
    """The unary op `name` on one element of any dtype, the result in that dtype."""
    dtype = x.dtype
    exact = name in EXACT_ON_INTEGERS and dtype not in E.FLOATS
    if dtype == "bool" and exact:
        x = E.cast(x, "int32")
    inner = x if exact else E.cast(x, compute_dtype(dtype))
    return E.cast(UNARY_FORMULAS[name](inner), dtype)


def _float_mod(a, b):
    """NumPy's mod: the sign follows the divisor; 0 for a zero divisor (MXNet)."""
    zero = c(0, a)
    r = E.call("mod", a, E.select(E.compare("eq", b, zero), c(1, b), b))
    fix = E.call(
        "and", E.compare("ne", r, zero), E.call("xor", E.compare("lt", r, zero), E.compare("lt", b, zero))
    )
    r = E.select(fix, E.add(r, b), r)
    return E.select(E.compare("eq", b, zero), zero, r)


def _safe_divisor(b):
    """`b` with 0 (and, for signed types, -1: INT_MIN / -1 traps on x86) replaced by 1; callers
    substitute the results for those divisors themselves."""
    risky = E.compare("eq", b, c(0, b))
    if b.dtype not in E.UNSIGNED:
        risky = E.call("or", risky, E.compare("eq", b, c(-1, b)))
    return E.select(risky, c(1, b), b)


def _int_mod(a, b):
    zero = c(0, a)
    r = E.call("mod", a, _safe_divisor(b))  # x mod -1 is 0, as x mod 1
    fix = E.call(
        "and", E.compare("ne", r, zero), E.call("xor", E.compare("lt", r, zero), E.compare("lt", b, zero))
    )
    return E.select(E.compare("eq", b, zero), zero, E.select(fix, E.add(r, b), r))


def _div(a, b):
    if a.dtype in E.FLOATS:
        return E.div(a, b)
    zero = c(0, a)
    quotient = E.call("div", a, _safe_divisor(b))  # C division truncates toward zero
    if a.dtype not in E.UNSIGNED:
        quotient = E.select(E.compare("eq", b, c(-1, b)), E.call("neg", a), quotient)  # wraps at INT_MIN
    return E.select(E.compare("eq", b, zero), zero, quotient)


def _through_float(fn):
    """Float math on integer (or float16) operands: widen as elementwise.as_float, compute, cast back."""

    def formula(a, b):
        wide = compute_dtype(a.dtype)
        return E.cast(fn(E.cast(a, wide), E.cast(b, wide)), a.dtype)

    return formula


def _compare(fn):
    def formula(a, b):
        if a.dtype == "bool":
            a, b = E.cast(a, "int32"), E.cast(b, "int32")
        return E.compare(fn, a, b)

    return formula


def _logical(fn):
    return lambda a, b: E.call(fn, _boolean(a), _boolean(b))


def _arith(fn):
    def formula(a, b):
        if a.dtype == "bool":  # NumPy's bool + bool is or, * is and
            return E.call({"add": "or", "mul": "and", "sub": "xor"}[fn], a, b)
        return E.call(fn, a, b)

    return formula


# BINARY_FUNCTIONS key -> formula of two elements of the lhs's dtype; the result is cast to it.
BINARY_FORMULAS = {
    "add": _arith("add"),
    "sub": _arith("sub"),
    "mul": _arith("mul"),
    "div": _div,
    "mod": lambda a, b: _float_mod(a, b) if a.dtype in E.FLOATS else _int_mod(a, b),
    "power": _through_float(lambda a, b: E.call("pow", a, b)),
    "maximum": lambda a, b: E.maximum(a, b),
    "minimum": lambda a, b: E.minimum(a, b),
    "hypot": _through_float(lambda a, b: E.call("hypot", a, b)),
    "equal": _compare("eq"),
    "not_equal": _compare("ne"),
    "greater": _compare("gt"),
    "greater_equal": _compare("ge"),
    "lesser": _compare("lt"),
    "lesser_equal": _compare("le"),
    "logical_and": _logical("and"),
    "logical_or": _logical("or"),
    "logical_xor": _logical("xor"),
}
assert set(BINARY_FORMULAS) == set(BINARY_FUNCTIONS), "every binary op needs a formula"


def binary(key: str, a: Expr, b: Expr) -> Expr:
    """The binary op `key` on two elements of one dtype, the result in that dtype."""
    return E.cast(BINARY_FORMULAS[key](a, E.cast(b, a.dtype)), a.dtype)


# -- rules ------------------------------------------------------------------------------------------


@lowering(*UNARY_FUNCTIONS)
def lower_unary(ctx, node, inputs):
    name = node.schema.name
    return [pointwise(lambda x: unary(name, x), inputs[0])]


@lowering(*ELEMWISE_BINARY)
def lower_elemwise_binary(ctx, node, inputs):
    key = ELEMWISE_BINARY[node.schema.name][0]
    return [pointwise(lambda a, b: binary(key, a, b), *inputs)]


@lowering(*(f"broadcast_{key}" for key in BINARY_FUNCTIONS))
def lower_broadcast_binary(ctx, node, inputs):
    key = node.schema.name[len("broadcast_") :]
    shape, _ = ctx.out_types[0]
    lhs, rhs = (broadcast_to(t, shape) for t in inputs)
    return [pointwise(lambda a, b: binary(key, a, b), lhs, rhs)]


@lowering(*SCALAR_OPS)
def lower_scalar(ctx, node, inputs):
    key, scalar_on_left, _ = SCALAR_OPS[node.schema.name]
    _, out_dtype = ctx.out_types[0]

    def formula(x):
        x = E.cast(x, out_dtype)  # float64 for integer data with a non-integer scalar
        s = E.cast(E.const(node.params["scalar"], "float64"), out_dtype)
        return binary(key, s, x) if scalar_on_left else binary(key, x, s)

    return [pointwise(formula, inputs[0], dtype=out_dtype)]


@lowering("clip")
def lower_clip(ctx, node, inputs):
    def formula(x):
        low = E.cast(E.const(node.params["a_min"], "float64"), x.dtype)
        high = E.cast(E.const(node.params["a_max"], "float64"), x.dtype)
        gt, lt = _compare("gt"), _compare("lt")
        return E.select(gt(x, high), high, E.select(lt(x, low), low, x))

    return [pointwise(formula, inputs[0])]


@lowering("Cast")
def lower_cast(ctx, node, inputs):
    dtype = node.params["dtype"]
    return [pointwise(lambda x: E.cast(x, dtype), inputs[0], dtype=dtype)]


@lowering("where")
def lower_where(ctx, node, inputs):
    condition, x, y = inputs
    if condition.ndim != x.ndim:  # 1-D over x's rows
        rows = condition
        column = Tensor((x.shape[0],) + (1,) * (x.ndim - 1), rows.dtype, lambda idx: rows.flat(idx.dims[0]))
        condition = broadcast_to(column, x.shape)
    return [pointwise(lambda k, a, b: E.select(_boolean(k), a, b), condition, x, y, dtype=x.dtype)]


@lowering("add_n")
def lower_add_n(ctx, node, inputs):
    def formula(*items):
        total = items[0]
        for item in items[1:]:
            total = binary("add", total, item)
        return total

    return [pointwise(formula, *inputs)]


@lowering("broadcast_to", "broadcast_axis", "broadcast_like")
def lower_broadcast_to(ctx, node, inputs):
    shape, _ = ctx.out_types[0]
    return [broadcast_to(inputs[0], shape)]


__all__ = ["binary", "compute_dtype", "constant", "unary"]

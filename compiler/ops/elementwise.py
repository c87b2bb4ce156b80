"""Elementwise ops: unary math, same-shape binary ops, scalar ops, comparisons, where, clip, Cast.

Every pointwise op is written once, as an entry of `UNARY` or `BINARY`: its formula over a math
namespace `m` (ops/mathspace.py), its gradient over the same namespace, and its facts (aliases,
exactness on integers, doc). The formula runs on NumPy arrays for the reference and on scalar
expressions for compiled code (lowering/rules_elementwise.py); the gradient builds ordinary IR nodes.
A binary entry gives a same-shape op, scalar ops and (in broadcast.py) a broadcast_ op. Adding an op
is one entry here, plus its test cases.

Every op here keeps its input's shape; none broadcasts (that is broadcast.py). Results keep the
input dtype as MXNet's kernels do: integer inputs to float math are computed in floating point and
cast back (truncating), and a scalar operand is first cast to the input dtype. Comparisons and
logical ops return 0/1 in the input dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial, reduce

import numpy as np

from .mathspace import GraphMath, NumpyMath, is_integer
from .params import Param, parse_bool, parse_dtype, parse_float, parse_int
from .registry import FusionKind, define_op, grad_rule, no_gradient, reference, shape_rule, type_rule
from .rules import Mismatch, RuleError, fixed_output_type, same_shape_rule, same_type_rule, unify


@dataclass(frozen=True)
class Unary:
    """A unary op. `formula(m, x)` sees x widened to its float compute dtype (or, for `exact` ops,
    integer x as is) and its result is cast back to x's dtype. `grad(m, x, y)` is dy/dx (a term or a
    number) from the input x and output y, as MXNet's _backward_<op>; None means no gradient (MXNet's
    is zero or undefined)."""

    formula: Callable
    grad: Callable | None = None
    exact: bool = False  # exact on integers: integer inputs skip the float round trip
    aliases: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Binary:
    """A binary op. `formula(m, a, b)` sees two operands of a's dtype; its result is cast to that dtype
    (comparisons give 0/1). `grad(m, a, b, out, dy)` is (d a, d b) at the output's shape; either
    operand may be a number (scalar ops), and only the side that is used becomes nodes.
    `same_shape`, `scalar` (data op scalar) and `rscalar` (scalar op data, for ops that do not
    commute) each name an op, then its aliases."""

    formula: Callable
    grad: Callable | None = None
    same_shape: tuple[str, ...] = ()
    scalar: tuple[str, ...] = ()
    rscalar: tuple[str, ...] = ()
    broadcast_aliases: tuple[str, ...] = ()


def _rint(m, x):
    """MXNet's rint: the nearer of floor and ceil, floor at exact halves (rint(1.5) = 1, rint(-1.5) = -2)."""
    floor, ceil = m.floor(x), m.ceil(x)
    return m.where(x - floor <= ceil - x, floor, ceil)


def _pi(m, like):
    return m.constant(math.pi, m.dtype(like))


UNARY: dict[str, Unary] = {
    "exp": Unary(lambda m, x: m.exp(x), grad=lambda m, x, y: y),
    "log": Unary(lambda m, x: m.log(x), grad=lambda m, x, y: m.reciprocal(x)),
    "log2": Unary(lambda m, x: m.log2(x), grad=lambda m, x, y: m.reciprocal(x * math.log(2))),
    "log10": Unary(lambda m, x: m.log10(x), grad=lambda m, x, y: m.reciprocal(x * math.log(10))),
    "log1p": Unary(lambda m, x: m.log1p(x), grad=lambda m, x, y: m.reciprocal(x + 1)),
    "expm1": Unary(lambda m, x: m.expm1(x), grad=lambda m, x, y: m.exp(x)),
    "sqrt": Unary(lambda m, x: m.sqrt(x), grad=lambda m, x, y: 0.5 / y),
    "rsqrt": Unary(lambda m, x: 1 / m.sqrt(x), grad=lambda m, x, y: y**3 * -0.5),
    "cbrt": Unary(lambda m, x: m.cbrt(x), grad=lambda m, x, y: (1 / 3) / m.square(y)),
    "rcbrt": Unary(lambda m, x: 1 / m.cbrt(x), grad=lambda m, x, y: y / x * (-1 / 3)),
    "square": Unary(lambda m, x: x * x, exact=True, grad=lambda m, x, y: x * 2),
    "abs": Unary(lambda m, x: m.abs(x), exact=True, grad=lambda m, x, y: m.sign(x)),  # 0 at x = 0, as MXNet
    "sign": Unary(lambda m, x: m.sign(x), exact=True),
    "negative": Unary(lambda m, x: -x, exact=True, grad=lambda m, x, y: -1),
    "reciprocal": Unary(lambda m, x: 1 / x, grad=lambda m, x, y: -m.square(y)),
    "floor": Unary(lambda m, x: m.floor(x)),
    "ceil": Unary(lambda m, x: m.ceil(x)),
    "round": Unary(lambda m, x: m.round(x)),  # halves away from zero (std::round)
    "rint": Unary(_rint),
    "fix": Unary(lambda m, x: m.trunc(x)),
    "trunc": Unary(lambda m, x: m.trunc(x)),
    "sin": Unary(lambda m, x: m.sin(x), grad=lambda m, x, y: m.cos(x)),
    "cos": Unary(lambda m, x: m.cos(x), grad=lambda m, x, y: -m.sin(x)),
    "tan": Unary(lambda m, x: m.tan(x), grad=lambda m, x, y: m.square(y) + 1),
    "arcsin": Unary(lambda m, x: m.arcsin(x), grad=lambda m, x, y: m.rsqrt(1 - m.square(x))),
    "arccos": Unary(lambda m, x: m.arccos(x), grad=lambda m, x, y: -m.rsqrt(1 - m.square(x))),
    "arctan": Unary(lambda m, x: m.arctan(x), grad=lambda m, x, y: m.reciprocal(m.square(x) + 1)),
    "sinh": Unary(lambda m, x: m.sinh(x), grad=lambda m, x, y: m.cosh(x)),
    "cosh": Unary(lambda m, x: m.cosh(x), grad=lambda m, x, y: m.sinh(x)),
    "tanh": Unary(lambda m, x: m.tanh(x), grad=lambda m, x, y: 1 - m.square(y)),
    "arcsinh": Unary(lambda m, x: m.arcsinh(x), grad=lambda m, x, y: m.rsqrt(m.square(x) + 1)),
    "arccosh": Unary(lambda m, x: m.arccosh(x), grad=lambda m, x, y: m.rsqrt(m.square(x) - 1)),
    "arctanh": Unary(lambda m, x: m.arctanh(x), grad=lambda m, x, y: m.reciprocal(1 - m.square(x))),
    # MXNet's 180.0f / PI: the constant is divided in the data's float type
    "degrees": Unary(lambda m, x: 180 / _pi(m, x) * x, grad=lambda m, x, y: 180 / math.pi),
    "radians": Unary(lambda m, x: _pi(m, x) / 180 * x, grad=lambda m, x, y: math.pi / 180),
    "sigmoid": Unary(lambda m, x: 1 / (1 + m.exp(-x)), grad=lambda m, x, y: y * (1 - y)),
    # the gradient is 0 at x = 0, as MXNet's
    "relu": Unary(lambda m, x: m.maximum(x, 0), exact=True, grad=lambda m, x, y: y > 0),
    "softsign": Unary(
        lambda m, x: x / (1 + m.abs(x)), grad=lambda m, x, y: m.reciprocal(m.square(m.abs(x) + 1))
    ),
    # MXNet's log(1 / (1 + exp(-x))); its gradient 1 - exp(y) is 1 - sigmoid(x)
    "log_sigmoid": Unary(lambda m, x: m.log(1 / (1 + m.exp(-x))), grad=lambda m, x, y: 1 - m.exp(y)),
    "erf": Unary(  # d erf = 2/sqrt(pi) exp(-x^2)
        lambda m, x: m.erf(x), grad=lambda m, x, y: m.exp(-m.square(x)) * (2 / math.sqrt(math.pi))
    ),
    "logical_not": Unary(
        lambda m, x: x == 0, exact=True, doc="1 where the input is 0, else 0, in the input's dtype."
    ),
    "_copy": Unary(
        lambda m, x: x,
        exact=True,
        grad=lambda m, x, y: 1,
        aliases=("identity",),
        doc="Returns a copy of the input.",
    ),
    "zeros_like": Unary(
        lambda m, x: m.full_like(x, 0), exact=True, doc="Zeros with the input's shape and dtype."
    ),
    "ones_like": Unary(
        lambda m, x: m.full_like(x, 1), exact=True, doc="Ones with the input's shape and dtype."
    ),
}


def _div_grad(m, a, b, out, dy):
    by_b = dy / b
    if isinstance(a, (int, float)):  # scalar / x: MXNet's rdiv_grad, -scalar / x^2, rounds as it does
        return by_b, dy * (-a / m.square(b))
    return by_b, -(by_b * out)  # dy / b, -dy a / b^2


def _power_grad(m, a, b, out, dy):
    return dy * (b * a ** (b - 1)), dy * (out * m.log(a))  # b a^(b-1), a^b log a


# As MXNet's _backward_maximum (mshadow_op::ge / lt) and _backward_minimum (le / gt), a tie sends the
# whole gradient to the left operand (for scalar ops: to the data, x == scalar passing it).
BINARY: dict[str, Binary] = {
    "add": Binary(
        lambda m, a, b: a + b,
        grad=lambda m, a, b, out, dy: (dy, dy),
        same_shape=("elemwise_add", "_add", "_plus", "_Plus"),
        scalar=("_plus_scalar", "_PlusScalar"),
        broadcast_aliases=("broadcast_plus",),
    ),
    "sub": Binary(
        lambda m, a, b: a - b,
        grad=lambda m, a, b, out, dy: (dy, -dy),
        same_shape=("elemwise_sub", "_sub", "_minus", "_Minus"),
        scalar=("_minus_scalar", "_MinusScalar"),
        rscalar=("_rminus_scalar", "_RMinusScalar"),
        broadcast_aliases=("broadcast_minus",),
    ),
    "mul": Binary(
        lambda m, a, b: a * b,
        grad=lambda m, a, b, out, dy: (dy * b, dy * a),
        same_shape=("elemwise_mul", "_mul", "_Mul"),
        scalar=("_mul_scalar", "_MulScalar"),
    ),
    "div": Binary(
        lambda m, a, b: m.div(a, b),  # C division on integers; a zero divisor gives 0
        grad=_div_grad,
        same_shape=("elemwise_div", "_div", "_Div"),
        scalar=("_div_scalar", "_DivScalar"),
        rscalar=("_rdiv_scalar", "_RDivScalar"),
    ),
    "mod": Binary(
        lambda m, a, b: m.mod(a, b),  # the sign of the divisor; a zero divisor gives 0
        grad=lambda m, a, b, out, dy: (dy, -(dy * m.floor(a / b))),  # d(a mod b)/db = -floor(a / b)
        same_shape=("_mod", "_Mod"),
        scalar=("_mod_scalar", "_ModScalar"),
        rscalar=("_rmod_scalar", "_RModScalar"),
    ),
    "power": Binary(
        lambda m, a, b: m.widen(a) ** m.widen(b),
        grad=_power_grad,
        same_shape=("_power", "_Power"),
        scalar=("_power_scalar", "_PowerScalar"),
        rscalar=("_rpower_scalar", "_RPowerScalar"),
    ),
    "maximum": Binary(
        lambda m, a, b: m.maximum(a, b),
        grad=lambda m, a, b, out, dy: (dy * (a >= b), dy * (a < b)),
        same_shape=("_maximum", "_Maximum"),
        scalar=("_maximum_scalar", "_MaximumScalar"),
    ),
    "minimum": Binary(
        lambda m, a, b: m.minimum(a, b),
        grad=lambda m, a, b, out, dy: (dy * (a <= b), dy * (a > b)),
        same_shape=("_minimum", "_Minimum"),
        scalar=("_minimum_scalar", "_MinimumScalar"),
    ),
    "hypot": Binary(
        lambda m, a, b: m.hypot(m.widen(a), m.widen(b)),
        grad=lambda m, a, b, out, dy: (dy * (a / out), dy * (b / out)),
        same_shape=("_hypot",),
        scalar=("_hypot_scalar", "_HypotScalar"),
    ),
    "equal": Binary(lambda m, a, b: a == b, same_shape=("_equal",), scalar=("_equal_scalar", "_EqualScalar")),
    "not_equal": Binary(
        lambda m, a, b: a != b, same_shape=("_not_equal",), scalar=("_not_equal_scalar", "_NotEqualScalar")
    ),
    "greater": Binary(
        lambda m, a, b: a > b, same_shape=("_greater",), scalar=("_greater_scalar", "_GreaterScalar")
    ),
    "greater_equal": Binary(
        lambda m, a, b: a >= b,
        same_shape=("_greater_equal",),
        scalar=("_greater_equal_scalar", "_GreaterEqualScalar"),
    ),
    "lesser": Binary(
        lambda m, a, b: a < b, same_shape=("_lesser",), scalar=("_lesser_scalar", "_LesserScalar")
    ),
    "lesser_equal": Binary(
        lambda m, a, b: a <= b,
        same_shape=("_lesser_equal",),
        scalar=("_lesser_equal_scalar", "_LesserEqualScalar"),
    ),
    "logical_and": Binary(
        lambda m, a, b: m.truth(a) & m.truth(b), same_shape=("_logical_and",), scalar=("_logical_and_scalar",)
    ),
    "logical_or": Binary(
        lambda m, a, b: m.truth(a) | m.truth(b), same_shape=("_logical_or",), scalar=("_logical_or_scalar",)
    ),
    "logical_xor": Binary(
        lambda m, a, b: m.truth(a) ^ m.truth(b), same_shape=("_logical_xor",), scalar=("_logical_xor_scalar",)
    ),
}

# op name -> BINARY key, and scalar op name -> (BINARY key, whether the scalar is the left operand)
ELEMWISE_BINARY = {op.same_shape[0]: key for key, op in BINARY.items()}
SCALAR_OPS = {
    names[0]: (key, left)
    for key, op in BINARY.items()
    for names, left in ((op.scalar, False), (op.rscalar, True))
    if names
}


# ---------------------------------------------------------------------------------------------
# Applying a formula: the dtype rules, written once for every namespace


def apply_unary(m, op: Unary, x):
    """`op` on x: float math on integers (or float16) runs widened, and the result has x's dtype."""
    dtype = m.dtype(x)
    operand = m.integer(x) if op.exact and is_integer(dtype) else m.widen(x)
    return m.cast(op.formula(m, operand), dtype)


def apply_binary(m, op: Binary, lhs, rhs):
    """`op` on lhs and rhs (cast to lhs's dtype); the result has lhs's dtype."""
    dtype = m.dtype(lhs)
    return m.cast(op.formula(m, lhs, m.cast(rhs, dtype)), dtype)


def scalar_dtype(dtype, is_int: bool):
    """The dtype of data op scalar: the data's, or float64 for integer data with a non-integer scalar."""
    return "float64" if not is_int and is_integer(dtype) else dtype


def apply_scalar(m, op: Binary, x, scalar: float, scalar_on_left: bool, is_int: bool):
    """x op scalar (or scalar op x), the scalar cast to the result's dtype."""
    dtype = scalar_dtype(m.dtype(x), is_int)
    x, s = m.cast(x, dtype), m.constant(scalar, dtype)
    return apply_binary(m, op, s, x) if scalar_on_left else apply_binary(m, op, x, s)


# op name -> formula(m, params, *operands) of every op here and in broadcast.py: the reference runs it
# on NumPy arrays, the lowering (rules_elementwise.py) on expressions.
POINTWISE: dict[str, Callable] = {}


def define_formula(name: str, formula: Callable, broadcast: bool = False) -> None:
    """Register `formula` as op `name`'s (in POINTWISE) and its NumPy reference."""
    POINTWISE[name] = formula

    def pointwise_reference(params, inputs, ctx):
        if broadcast:
            shape = np.broadcast_shapes(*(x.shape for x in inputs))
            inputs = [np.broadcast_to(x, shape) for x in inputs]
        with np.errstate(all="ignore"):
            out = np.asarray(formula(NumpyMath, params, *inputs))
        # a formula may give back an operand itself (_copy, Cast to its own dtype, add_n of one input)
        return [out.copy() if any(np.may_share_memory(out, x) for x in inputs) else out]

    pointwise_reference.__name__ = f"{name}_reference"
    reference(name)(pointwise_reference)


def _unary_formula(op: Unary, m, params, x):
    return apply_unary(m, op, x)


def binary_formula(op: Binary, m, params, lhs, rhs):
    return apply_binary(m, op, lhs, rhs)


def _scalar_formula(op: Binary, scalar_on_left: bool, m, params, x):
    return apply_scalar(m, op, x, params["scalar"], scalar_on_left, params["is_int"])


# ---------------------------------------------------------------------------------------------
# Gradients: each entry's formula over GraphMath


def binary_op_name(key: str, form: str) -> str:
    """The op computing BINARY[key] in a GraphMath form: same, broadcast, scalar or rscalar."""
    op = BINARY[key]
    if form == "broadcast":
        return f"broadcast_{key}"
    if form == "same":
        return op.same_shape[0]
    return (op.rscalar if form == "rscalar" and op.rscalar else op.scalar)[0]  # s op x is x op s otherwise


def graph_math(g, broadcast: bool = False) -> GraphMath:
    """The namespace gradient formulas build nodes in, through the GradBuilder `g`."""
    return GraphMath(g, binary_op_name, broadcast)


def unary_derivative(op: Unary, g, x, y):
    """The node of `op`'s dy/dx at input x and output y (for ops whose derivative is not a constant)."""
    m = graph_math(g)
    return m.build(op.grad(m, m.leaf(x), m.leaf(y)))


def binary_gradients(g, node, out_grads, key: str, broadcast: bool = False) -> list:
    """BINARY[key]'s gradients of `node`'s two operands, each at the output's shape."""
    m = graph_math(g, broadcast)
    lhs, rhs, out, dy = (m.leaf(v) for v in (*node.inputs, node.output(0), out_grads[0]))
    return [m.build(grad) for grad in BINARY[key].grad(m, lhs, rhs, out, dy)]


# ---------------------------------------------------------------------------------------------
# Unary ops: data -> same shape, same dtype

for _name, _op in UNARY.items():
    define_op(
        _name,
        aliases=_op.aliases,
        fusion=FusionKind.ELEMENTWISE,
        doc=_op.doc or f"Applies {_name} element-wise; the output has the input's shape and dtype.",
    )
    shape_rule(_name)(same_shape_rule)
    type_rule(_name)(same_type_rule)
    define_formula(_name, partial(_unary_formula, _op))


@grad_rule(*(name for name, op in UNARY.items() if op.grad))
def unary_grad(g, node, out_grads):
    """dx = dy * f'(x, y), f' from the op's UNARY entry."""
    m = graph_math(g)
    x, y, dy = (m.leaf(v) for v in (node.inputs[0], node.output(0), out_grads[0]))
    return [m.build(dy * UNARY[node.schema.name].grad(m, x, y))]


no_gradient(*(name for name, op in UNARY.items() if not op.grad))

# The formulas of unary ops as NumPy functions and their derivatives as (g, x, y) -> node, for nn.py's
# Activation (relu, sigmoid, tanh and softsign are shared).
UNARY_FUNCTIONS = {name: partial(op.formula, NumpyMath) for name, op in UNARY.items()}
UNARY_DERIVATIVES = {name: partial(unary_derivative, op) for name, op in UNARY.items() if op.grad}


# ---------------------------------------------------------------------------------------------
# Binary ops on two same-shaped, same-dtype operands (Symbol `+ - * / % **` and comparisons)

for _key, _op in BINARY.items():
    _name, *_aliases = _op.same_shape
    define_op(
        _name,
        aliases=tuple(_aliases),
        inputs=("lhs", "rhs"),
        fusion=FusionKind.ELEMENTWISE,
        doc=f"Applies {_key} to two arrays of the same shape (no broadcasting).",
    )
    shape_rule(_name)(same_shape_rule)
    type_rule(_name)(same_type_rule)
    define_formula(_name, partial(binary_formula, _op))


@grad_rule(*(name for name, key in ELEMWISE_BINARY.items() if BINARY[key].grad))
def elemwise_binary_grad(g, node, out_grads):
    """The entry's gradients with elemwise_* ops (operands and output share one shape)."""
    return binary_gradients(g, node, out_grads, ELEMWISE_BINARY[node.schema.name])


no_gradient(*(name for name, key in ELEMWISE_BINARY.items() if not BINARY[key].grad))


# ---------------------------------------------------------------------------------------------
# Scalar ops: data op scalar (or scalar op data), attribute `scalar`

SCALAR_PARAMS = (
    Param("scalar", parse_float, 1.0, "the scalar operand"),
    Param(
        "is_int",
        parse_bool,
        True,
        "whether the scalar is an integer (False promotes integer data to float64)",
    ),
)


def scalar_type(params, in_types, out_types):
    """The data's dtype; integer data with a non-integer scalar (`is_int=False`) gives float64."""
    data = in_types[0]
    if data is not None and scalar_dtype(data, params["is_int"]) != data:
        return in_types, ["float64"]
    if data is None and not params["is_int"]:
        return in_types, out_types
    return same_type_rule(params, in_types, out_types)


for _name, (_key, _left) in SCALAR_OPS.items():
    _op = BINARY[_key]
    define_op(
        _name,
        aliases=(_op.rscalar if _left else _op.scalar)[1:],
        params=SCALAR_PARAMS,
        fusion=FusionKind.ELEMENTWISE,
        doc=f"Applies {_key} to the data and a scalar" + (" (scalar on the left)." if _left else "."),
    )
    shape_rule(_name)(same_shape_rule)
    type_rule(_name)(scalar_type)
    define_formula(_name, partial(_scalar_formula, _op, _left))


@grad_rule(*(name for name, (key, _) in SCALAR_OPS.items() if BINARY[key].grad))
def scalar_grad(g, node, out_grads):
    """The entry's gradient with the scalar as a number operand; only the data's side becomes nodes."""
    key, scalar_on_left = SCALAR_OPS[node.schema.name]
    m = graph_math(g)
    x, y, dy = (m.leaf(v) for v in (node.inputs[0], node.output(0), out_grads[0]))
    s = node.params["scalar"]
    grad = BINARY[key].grad
    return [m.build(grad(m, s, x, y, dy)[1] if scalar_on_left else grad(m, x, s, y, dy)[0])]


no_gradient(*(name for name, (key, _) in SCALAR_OPS.items() if not BINARY[key].grad))


# ---------------------------------------------------------------------------------------------
# clip

define_op(
    "clip",
    params=(
        Param("a_min", parse_float, doc="the lower bound"),
        Param("a_max", parse_float, doc="the upper bound"),
    ),
    fusion=FusionKind.ELEMENTWISE,
    doc="Clips every element into [a_min, a_max].",
)
shape_rule("clip")(same_shape_rule)
type_rule("clip")(same_type_rule)


def _clip(m, params, x):
    low, high = (m.constant(params[k], m.dtype(x)) for k in ("a_min", "a_max"))
    # MXNet tests the upper bound first, so with a_min > a_max values above a_max become a_max.
    return m.cast(m.where(x > high, high, m.where(x < low, low, x)), m.dtype(x))


define_formula("clip", _clip)


@grad_rule("clip")
def clip_grad(g, node, out_grads):
    """dy where a_min <= x <= a_max (bounds included, as MXNet's clip_grad), else 0."""
    x, dy = node.inputs[0], out_grads[0]
    above = g.op("_greater_scalar", x, scalar=node.params["a_max"])
    below = g.op("_lesser_scalar", x, scalar=node.params["a_min"])
    outside = g.op("_logical_or", above, below)
    return [g.op("where", outside, g.op("zeros_like", dy), dy)]


# ---------------------------------------------------------------------------------------------
# Cast

define_op(
    "Cast",
    aliases=("cast",),
    params=(Param("dtype", parse_dtype, doc="the output dtype"),),
    fusion=FusionKind.ELEMENTWISE,
    doc="Converts every element to `dtype` (floats to integers truncate toward zero).",
)
shape_rule("Cast")(same_shape_rule)
type_rule("Cast")(fixed_output_type(lambda params: params["dtype"]))
define_formula("Cast", lambda m, params, x: m.cast(x, params["dtype"]))


@grad_rule("Cast")
def cast_grad(g, node, out_grads):
    """The head gradient cast back to the input's dtype."""
    return [g.op("Cast", out_grads[0], dtype=g.dtype(node.inputs[0]))]


# ---------------------------------------------------------------------------------------------
# where(condition, x, y): x where condition is non-zero, else y

define_op(
    "where",
    inputs=("condition", "x", "y"),
    fusion=FusionKind.ELEMENTWISE,
    doc="Takes x where condition is non-zero, else y; condition has x's shape or is 1-D over x's rows.",
)


@shape_rule("where")
def where_shape(params, in_shapes, out_shapes):
    """x, y and the output share one shape; condition has that shape or is (x.shape[0],)."""
    condition, x, y = in_shapes
    (x, y), outs = same_shape_rule(params, [x, y], out_shapes)
    if condition is None or x is None:
        return [condition, x, y], outs
    if len(condition) == len(x):
        try:
            condition = unify(condition, x)
        except Mismatch:
            raise RuleError(f"condition {condition} must have the shape of x {x}") from None
    elif len(condition) != 1:
        raise RuleError(f"condition must have the shape of x {x} or be 1-D, got {condition}")
    elif None not in (condition[0], x[0]) and condition[0] != x[0]:
        raise RuleError(f"a 1-D condition must have length x.shape[0] = {x[0]}, got {condition[0]}")
    return [condition, x, y], outs


@type_rule("where")
def where_type(params, in_types, out_types):
    """x, y and the output share one dtype; the condition's dtype is free."""
    (x, y), outs = same_type_rule(params, in_types[1:], out_types)
    return [in_types[0], x, y], outs


# The formula of one element; a 1-D condition is first spread over x's rows (by the reference and the
# lowering alike).
POINTWISE["where"] = lambda m, params, condition, x, y: m.cast(m.where(m.truth(condition), x, y), m.dtype(x))


@reference("where")
def where_reference(params, inputs, ctx):
    condition, x, y = inputs
    if condition.ndim == 1 and x.ndim > 1:
        condition = condition.reshape((-1,) + (1,) * (x.ndim - 1))
    return [np.asarray(POINTWISE["where"](NumpyMath, params, condition, x, y))]


@grad_rule("where")
def where_grad(g, node, out_grads):
    """dy goes to x where the condition holds and to y elsewhere; the condition gets none."""
    condition, dy = node.inputs[0], out_grads[0]
    zeros = g.op("zeros_like", dy)
    return [None, g.op("where", condition, dy, zeros), g.op("where", condition, zeros, dy)]


# ---------------------------------------------------------------------------------------------
# add_n (alias ElementWiseSum): the sum of any number of same-shaped inputs

define_op(
    "add_n",
    aliases=("ElementWiseSum", "_sparse_ElementWiseSum"),
    params=(Param("num_args", parse_int, doc="number of inputs"),),
    variadic="num_args",
    fusion=FusionKind.ELEMENTWISE,
    doc="Adds all inputs element-wise; every input and the output share one shape.",
)
shape_rule("add_n")(same_shape_rule)
type_rule("add_n")(same_type_rule)


define_formula("add_n", lambda m, params, *items: reduce(partial(apply_binary, m, BINARY["add"]), items))


@grad_rule("add_n")
def add_n_grad(g, node, out_grads):
    return [out_grads[0]] * len(node.inputs)

"""Elementwise ops: unary math, same-shape binary ops, scalar ops, comparisons, where, clip, Cast.

Every op here keeps its input's shape; none broadcasts (that is broadcast.py). Results keep the
input dtype as MXNet's kernels do: integer inputs to float math are computed in floating point and
cast back (truncating), and a scalar operand is first cast to the input dtype. Comparisons and
logical ops return 0/1 in the input dtype. The tables `UNARY_FUNCTIONS` and `BINARY_FUNCTIONS` are
shared with broadcast.py.
"""

from __future__ import annotations

import math

import numpy as np

from .params import Param, parse_bool, parse_dtype, parse_float, parse_int
from .registry import FusionKind, define_op, grad_rule, no_gradient, reference, shape_rule, type_rule
from .rules import Mismatch, RuleError, fixed_output_type, same_shape_rule, same_type_rule, unify


def as_float(x: np.ndarray) -> np.ndarray:
    """The array a float kernel reads: float16 widened to float32, integers and bools to float64."""
    if x.dtype == np.float16:
        return x.astype(np.float32)
    if x.dtype.kind in "iub":
        return x.astype(np.float64)
    return x


def is_integer(dtype) -> bool:
    return np.dtype(dtype).kind in "iub"


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


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _round_half_down(x):
    """MXNet's rint: the nearer of floor and ceil, floor at exact halves (rint(1.5) = 1, rint(-1.5) = -2)."""
    floor, ceil = np.floor(x), np.ceil(x)
    return np.where(x - floor <= ceil - x, floor, ceil)


UNARY_FUNCTIONS = {
    "exp": np.exp,
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x),
    "cbrt": np.cbrt,
    "rcbrt": lambda x: 1 / np.cbrt(x),
    "square": np.square,
    "abs": np.abs,
    "sign": np.sign,
    "negative": np.negative,
    "reciprocal": lambda x: 1 / x,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": _round_half_away,
    "rint": _round_half_down,
    "fix": np.fix,
    "trunc": np.trunc,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "arcsinh": np.arcsinh,
    "arccosh": np.arccosh,
    "arctanh": np.arctanh,
    "degrees": np.degrees,
    "radians": np.radians,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "erf": _erf,
    "logical_not": lambda x: x == 0,
    "_copy": np.copy,
    "zeros_like": np.zeros_like,
    "ones_like": np.ones_like,
}

# Unary ops that are exact on integers, so integer inputs skip the float round trip.
EXACT_ON_INTEGERS = {
    "abs",
    "sign",
    "negative",
    "square",
    "relu",
    "logical_not",
    "_copy",
    "zeros_like",
    "ones_like",
}

UNARY_ALIASES = {"_copy": ("identity",)}

UNARY_DOCS = {
    "_copy": "Returns a copy of the input.",
    "zeros_like": "Zeros with the input's shape and dtype.",
    "ones_like": "Ones with the input's shape and dtype.",
    "logical_not": "1 where the input is 0, else 0, in the input's dtype.",
}

BINARY_FUNCTIONS = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": _trunc_divide,
    "mod": _mod,
    "power": lambda a, b: np.power(as_float(a), as_float(b)),
    "maximum": np.maximum,
    "minimum": np.minimum,
    "hypot": lambda a, b: np.hypot(as_float(a), as_float(b)),
    "equal": np.equal,
    "not_equal": np.not_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "lesser": np.less,
    "lesser_equal": np.less_equal,
    "logical_and": lambda a, b: np.logical_and(a != 0, b != 0),
    "logical_or": lambda a, b: np.logical_or(a != 0, b != 0),
    "logical_xor": lambda a, b: np.logical_xor(a != 0, b != 0),
}

# op name -> (BINARY_FUNCTIONS key, aliases)
ELEMWISE_BINARY = {
    "elemwise_add": ("add", ("_add", "_plus", "_Plus")),
    "elemwise_sub": ("sub", ("_sub", "_minus", "_Minus")),
    "elemwise_mul": ("mul", ("_mul", "_Mul")),
    "elemwise_div": ("div", ("_div", "_Div")),
    "_mod": ("mod", ("_Mod",)),
    "_power": ("power", ("_Power",)),
    "_maximum": ("maximum", ("_Maximum",)),
    "_minimum": ("minimum", ("_Minimum",)),
    "_hypot": ("hypot", ()),
    "_equal": ("equal", ()),
    "_not_equal": ("not_equal", ()),
    "_greater": ("greater", ()),
    "_greater_equal": ("greater_equal", ()),
    "_lesser": ("lesser", ()),
    "_lesser_equal": ("lesser_equal", ()),
    "_logical_and": ("logical_and", ()),
    "_logical_or": ("logical_or", ()),
    "_logical_xor": ("logical_xor", ()),
}

# op name -> (BINARY_FUNCTIONS key, whether the scalar is the left operand, aliases)
SCALAR_OPS = {
    "_plus_scalar": ("add", False, ("_PlusScalar",)),
    "_minus_scalar": ("sub", False, ("_MinusScalar",)),
    "_rminus_scalar": ("sub", True, ("_RMinusScalar",)),
    "_mul_scalar": ("mul", False, ("_MulScalar",)),
    "_div_scalar": ("div", False, ("_DivScalar",)),
    "_rdiv_scalar": ("div", True, ("_RDivScalar",)),
    "_power_scalar": ("power", False, ("_PowerScalar",)),
    "_rpower_scalar": ("power", True, ("_RPowerScalar",)),
    "_mod_scalar": ("mod", False, ("_ModScalar",)),
    "_rmod_scalar": ("mod", True, ("_RModScalar",)),
    "_maximum_scalar": ("maximum", False, ("_MaximumScalar",)),
    "_minimum_scalar": ("minimum", False, ("_MinimumScalar",)),
    "_hypot_scalar": ("hypot", False, ("_HypotScalar",)),
    "_equal_scalar": ("equal", False, ("_EqualScalar",)),
    "_not_equal_scalar": ("not_equal", False, ("_NotEqualScalar",)),
    "_greater_scalar": ("greater", False, ("_GreaterScalar",)),
    "_greater_equal_scalar": ("greater_equal", False, ("_GreaterEqualScalar",)),
    "_lesser_scalar": ("lesser", False, ("_LesserScalar",)),
    "_lesser_equal_scalar": ("lesser_equal", False, ("_LesserEqualScalar",)),
    "_logical_and_scalar": ("logical_and", False, ()),
    "_logical_or_scalar": ("logical_or", False, ()),
    "_logical_xor_scalar": ("logical_xor", False, ()),
}


def apply_binary(key: str, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """`BINARY_FUNCTIONS[key]` on two arrays of lhs's dtype, the result cast back to that dtype."""
    with np.errstate(all="ignore"):
        return np.asarray(BINARY_FUNCTIONS[key](lhs, rhs)).astype(lhs.dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Unary ops: data -> same shape, same dtype


def _unary_reference(name: str):
    function = UNARY_FUNCTIONS[name]

    def unary_reference(params, inputs, ctx):
        x = inputs[0]
        exact = name in EXACT_ON_INTEGERS and is_integer(x.dtype)
        with np.errstate(all="ignore"):
            return [np.asarray(function(x if exact else as_float(x))).astype(x.dtype, copy=False)]

    unary_reference.__name__ = f"{name}_reference"
    return unary_reference


for _name in UNARY_FUNCTIONS:
    define_op(
        _name,
        aliases=UNARY_ALIASES.get(_name, ()),
        fusion=FusionKind.ELEMENTWISE,
        doc=UNARY_DOCS.get(
            _name, f"Applies {_name} element-wise; the output has the input's shape and dtype."
        ),
    )
    shape_rule(_name)(same_shape_rule)
    type_rule(_name)(same_type_rule)
    reference(_name)(_unary_reference(_name))


# name -> d(name)/dx written with ops, from the builder g, input x and output y (MXNet's _backward_<name>)
UNARY_DERIVATIVES = {
    "exp": lambda g, x, y: y,
    "log": lambda g, x, y: g.op("reciprocal", x),
    "log2": lambda g, x, y: g.op("reciprocal", g.op("_mul_scalar", x, scalar=math.log(2))),
    "log10": lambda g, x, y: g.op("reciprocal", g.op("_mul_scalar", x, scalar=math.log(10))),
    "log1p": lambda g, x, y: g.op("reciprocal", g.op("_plus_scalar", x, scalar=1.0)),
    "expm1": lambda g, x, y: g.op("exp", x),
    "sqrt": lambda g, x, y: g.op("_rdiv_scalar", y, scalar=0.5),  # 0.5 / y
    "rsqrt": lambda g, x, y: g.op("_mul_scalar", g.op("_power_scalar", y, scalar=3.0), scalar=-0.5),  # -y^3/2
    "cbrt": lambda g, x, y: g.op("_rdiv_scalar", g.op("square", y), scalar=1 / 3),  # 1 / (3 y^2)
    "rcbrt": lambda g, x, y: g.op("_mul_scalar", g.op("elemwise_div", y, x), scalar=-1 / 3),  # -y / (3 x)
    "square": lambda g, x, y: g.op("_mul_scalar", x, scalar=2.0),
    "abs": lambda g, x, y: g.op("sign", x),  # 0 at x = 0, as MXNet
    "reciprocal": lambda g, x, y: g.op("negative", g.op("square", y)),  # -1 / x^2
    "sin": lambda g, x, y: g.op("cos", x),
    "cos": lambda g, x, y: g.op("negative", g.op("sin", x)),
    "tan": lambda g, x, y: g.op("_plus_scalar", g.op("square", y), scalar=1.0),  # 1 + y^2
    "arcsin": lambda g, x, y: g.op("rsqrt", g.op("_rminus_scalar", g.op("square", x), scalar=1.0)),
    "arccos": lambda g, x, y: g.op(
        "negative", g.op("rsqrt", g.op("_rminus_scalar", g.op("square", x), scalar=1.0))
    ),
    "arctan": lambda g, x, y: g.op("reciprocal", g.op("_plus_scalar", g.op("square", x), scalar=1.0)),
    "sinh": lambda g, x, y: g.op("cosh", x),
    "cosh": lambda g, x, y: g.op("sinh", x),
    "tanh": lambda g, x, y: g.op("_rminus_scalar", g.op("square", y), scalar=1.0),  # 1 - y^2
    "arcsinh": lambda g, x, y: g.op("rsqrt", g.op("_plus_scalar", g.op("square", x), scalar=1.0)),
    "arccosh": lambda g, x, y: g.op("rsqrt", g.op("_minus_scalar", g.op("square", x), scalar=1.0)),
    "arctanh": lambda g, x, y: g.op("reciprocal", g.op("_rminus_scalar", g.op("square", x), scalar=1.0)),
    "sigmoid": lambda g, x, y: g.op("elemwise_mul", y, g.op("_rminus_scalar", y, scalar=1.0)),  # y (1 - y)
    "relu": lambda g, x, y: g.op("_greater_scalar", y, scalar=0.0),  # 0 at x = 0, as MXNet
    "softsign": lambda g, x, y: g.op(
        "reciprocal", g.op("square", g.op("_plus_scalar", g.op("abs", x), scalar=1.0))
    ),
    "erf": lambda g, x, y: g.op(  # 2/sqrt(pi) exp(-x^2)
        "_mul_scalar", g.op("exp", g.op("negative", g.op("square", x))), scalar=2 / math.sqrt(math.pi)
    ),
}

# Linear unary ops: the gradient from the head gradient dy alone.
UNARY_LINEAR_GRADIENTS = {
    "negative": lambda g, dy: g.op("negative", dy),
    "_copy": lambda g, dy: dy,
    "degrees": lambda g, dy: g.op("_mul_scalar", dy, scalar=180 / math.pi),
    "radians": lambda g, dy: g.op("_mul_scalar", dy, scalar=math.pi / 180),
}


@grad_rule(*UNARY_DERIVATIVES)
def unary_grad(g, node, out_grads):
    """dx = dy * f'(x), f' from UNARY_DERIVATIVES."""
    derivative = UNARY_DERIVATIVES[node.schema.name](g, node.inputs[0], node.output(0))
    return [g.op("elemwise_mul", out_grads[0], derivative)]


@grad_rule(*UNARY_LINEAR_GRADIENTS)
def unary_linear_grad(g, node, out_grads):
    return [UNARY_LINEAR_GRADIENTS[node.schema.name](g, out_grads[0])]


# Piecewise constant (MXNet's gradient is zero) or not differentiable at all.
no_gradient(
    "sign", "floor", "ceil", "round", "rint", "fix", "trunc", "logical_not", "zeros_like", "ones_like"
)


# ---------------------------------------------------------------------------------------------
# Binary ops on two same-shaped, same-dtype operands (Symbol `+ - * / % **` and comparisons)


def _binary_reference(key: str):
    def binary_reference(params, inputs, ctx):
        return [apply_binary(key, inputs[0], inputs[1])]

    binary_reference.__name__ = f"{key}_reference"
    return binary_reference


for _name, (_key, _aliases) in ELEMWISE_BINARY.items():
    define_op(
        _name,
        aliases=_aliases,
        inputs=("lhs", "rhs"),
        fusion=FusionKind.ELEMENTWISE,
        doc=f"Applies {_key} to two arrays of the same shape (no broadcasting).",
    )
    shape_rule(_name)(same_shape_rule)
    type_rule(_name)(same_type_rule)
    reference(_name)(_binary_reference(_key))


def _div_gradients(g, binary, lhs, rhs, out, dy):
    by_rhs = binary("div", dy, rhs)  # dy / rhs
    return by_rhs, g.op("negative", binary("mul", by_rhs, out))  # -dy lhs / rhs^2


def _power_gradients(g, binary, lhs, rhs, out, dy):
    slope = binary("mul", rhs, binary("power", lhs, g.op("_minus_scalar", rhs, scalar=1.0)))  # b a^(b-1)
    return binary("mul", dy, slope), binary("mul", dy, binary("mul", out, g.op("log", lhs)))  # a^b log a


# BINARY_FUNCTIONS key -> (g, binary, lhs, rhs, out, dy) -> (d lhs, d rhs), shared with broadcast.py.
# `binary(key, a, b)` applies the op of that key (elemwise_* here, broadcast_* there); every result
# has the output's shape, and broadcast.py sums it back to each operand's shape. As MXNet's
# _backward_maximum (mshadow_op::ge / lt) and _backward_minimum (le / gt), a tie sends the whole
# gradient to lhs.
BINARY_GRADIENTS = {
    "add": lambda g, binary, lhs, rhs, out, dy: (dy, dy),
    "sub": lambda g, binary, lhs, rhs, out, dy: (dy, g.op("negative", dy)),
    "mul": lambda g, binary, lhs, rhs, out, dy: (binary("mul", dy, rhs), binary("mul", dy, lhs)),
    "div": _div_gradients,
    "mod": lambda g, binary, lhs, rhs, out, dy: (  # d(a mod b)/db = -floor(a / b)
        dy,
        g.op("negative", binary("mul", dy, g.op("floor", binary("div", lhs, rhs)))),
    ),
    "power": _power_gradients,
    "maximum": lambda g, binary, lhs, rhs, out, dy: (
        binary("mul", dy, binary("greater_equal", lhs, rhs)),
        binary("mul", dy, binary("lesser", lhs, rhs)),
    ),
    "minimum": lambda g, binary, lhs, rhs, out, dy: (
        binary("mul", dy, binary("lesser_equal", lhs, rhs)),
        binary("mul", dy, binary("greater", lhs, rhs)),
    ),
    "hypot": lambda g, binary, lhs, rhs, out, dy: (
        binary("mul", dy, binary("div", lhs, out)),
        binary("mul", dy, binary("div", rhs, out)),
    ),
}
ELEMWISE_NAMES = {key: name for name, (key, _) in ELEMWISE_BINARY.items()}  # "mul" -> "elemwise_mul"


@grad_rule(*(name for name, (key, _) in ELEMWISE_BINARY.items() if key in BINARY_GRADIENTS))
def elemwise_binary_grad(g, node, out_grads):
    """BINARY_GRADIENTS with elemwise_* ops (operands and output share one shape)."""
    lhs, rhs = node.inputs
    key = ELEMWISE_BINARY[node.schema.name][0]

    def binary(key: str, a, b):
        return g.op(ELEMWISE_NAMES[key], a, b)

    return list(BINARY_GRADIENTS[key](g, binary, lhs, rhs, node.output(0), out_grads[0]))


no_gradient(*(name for name, (key, _) in ELEMWISE_BINARY.items() if key not in BINARY_GRADIENTS))


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


def _promotes_to_float64(dtype, params) -> bool:
    return not params["is_int"] and is_integer(dtype)


def scalar_type(params, in_types, out_types):
    """The data's dtype; integer data with a non-integer scalar (`is_int=False`) gives float64."""
    data = in_types[0]
    if data is not None and _promotes_to_float64(data, params):
        return in_types, ["float64"]
    if data is None and not params["is_int"]:
        return in_types, out_types
    return same_type_rule(params, in_types, out_types)


def _scalar_reference(key: str, scalar_on_left: bool):
    def scalar_reference(params, inputs, ctx):
        x = inputs[0]
        if _promotes_to_float64(x.dtype, params):
            x = x.astype(np.float64)
        scalar = np.array(params["scalar"]).astype(x.dtype)
        lhs, rhs = (scalar, x) if scalar_on_left else (x, scalar)
        with np.errstate(all="ignore"):
            return [np.asarray(BINARY_FUNCTIONS[key](lhs, rhs)).astype(x.dtype, copy=False)]

    scalar_reference.__name__ = f"{key}_scalar_reference"
    return scalar_reference


for _name, (_key, _left, _aliases) in SCALAR_OPS.items():
    define_op(
        _name,
        aliases=_aliases,
        params=SCALAR_PARAMS,
        fusion=FusionKind.ELEMENTWISE,
        doc=f"Applies {_key} to the data and a scalar" + (" (scalar on the left)." if _left else "."),
    )
    shape_rule(_name)(same_shape_rule)
    type_rule(_name)(scalar_type)
    reference(_name)(_scalar_reference(_key, _left))


def _log(value: float) -> float:
    """C's log: -inf at 0 and nan below, where math.log raises."""
    return math.log(value) if value > 0 else -math.inf if value == 0 else math.nan


# op -> (g, x, y, dy, scalar) -> dx, as MXNet's _backward_<op>; a tie of _maximum_scalar or
# _minimum_scalar (x == scalar) passes the gradient (mshadow_op::ge / le).
SCALAR_GRADIENTS = {
    "_plus_scalar": lambda g, x, y, dy, s: dy,
    "_minus_scalar": lambda g, x, y, dy, s: dy,
    "_rminus_scalar": lambda g, x, y, dy, s: g.op("negative", dy),
    "_mul_scalar": lambda g, x, y, dy, s: g.op("_mul_scalar", dy, scalar=s),
    "_div_scalar": lambda g, x, y, dy, s: g.op("_div_scalar", dy, scalar=s),
    "_rdiv_scalar": lambda g, x, y, dy, s: g.op(  # d(s/x) = -s / x^2
        "elemwise_mul", dy, g.op("_rdiv_scalar", g.op("square", x), scalar=-s)
    ),
    "_power_scalar": lambda g, x, y, dy, s: g.op(  # s x^(s-1)
        "elemwise_mul", dy, g.op("_mul_scalar", g.op("_power_scalar", x, scalar=s - 1), scalar=s)
    ),
    "_rpower_scalar": lambda g, x, y, dy, s: g.op(  # d(s^x) = s^x log s
        "elemwise_mul", dy, g.op("_mul_scalar", y, scalar=_log(s))
    ),
    "_mod_scalar": lambda g, x, y, dy, s: dy,
    "_rmod_scalar": lambda g, x, y, dy, s: g.op(  # d(s mod x) = -floor(s / x)
        "elemwise_mul", dy, g.op("negative", g.op("floor", g.op("_rdiv_scalar", x, scalar=s)))
    ),
    "_maximum_scalar": lambda g, x, y, dy, s: g.op(
        "elemwise_mul", dy, g.op("_greater_equal_scalar", x, scalar=s)
    ),
    "_minimum_scalar": lambda g, x, y, dy, s: g.op(
        "elemwise_mul", dy, g.op("_lesser_equal_scalar", x, scalar=s)
    ),
    "_hypot_scalar": lambda g, x, y, dy, s: g.op("elemwise_mul", dy, g.op("elemwise_div", x, y)),  # x / y
}


@grad_rule(*SCALAR_GRADIENTS)
def scalar_grad(g, node, out_grads):
    x, scalar = node.inputs[0], node.params["scalar"]
    return [SCALAR_GRADIENTS[node.schema.name](g, x, node.output(0), out_grads[0], scalar)]


no_gradient(*(name for name in SCALAR_OPS if name not in SCALAR_GRADIENTS))


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


@reference("clip")
def clip_reference(params, inputs, ctx):
    x = inputs[0]
    low, high = (np.array(params[k]).astype(x.dtype) for k in ("a_min", "a_max"))
    # MXNet tests the upper bound first, so with a_min > a_max values above a_max become a_max.
    return [np.where(x > high, high, np.where(x < low, low, x)).astype(x.dtype, copy=False)]


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


@reference("Cast")
def cast_reference(params, inputs, ctx):
    with np.errstate(all="ignore"):
        return [inputs[0].astype(params["dtype"])]


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


@reference("where")
def where_reference(params, inputs, ctx):
    condition, x, y = inputs
    if condition.ndim == 1 and x.ndim > 1:
        condition = condition.reshape((-1,) + (1,) * (x.ndim - 1))
    return [np.where(condition != 0, x, y).astype(x.dtype, copy=False)]


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


@reference("add_n")
def add_n_reference(params, inputs, ctx):
    total = inputs[0].copy()
    for item in inputs[1:]:
        total += item
    return [total]


@grad_rule("add_n")
def add_n_grad(g, node, out_grads):
    return [out_grads[0]] * len(node.inputs)

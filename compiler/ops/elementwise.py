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
from .registry import FusionKind, define_op, reference, shape_rule, type_rule
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

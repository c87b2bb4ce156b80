"""Python operators on Symbols, as MXNet maps them (MXNET_COMPAT.md sections 1.2 and 1.5).

Between two Symbols: element-wise ops (no broadcasting). With a Python number: the `_*_scalar` ops
with attribute `scalar=str(number)`. Each row gives the op and its naming hint.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from ember.compiler import Attrs, Node, Value
from ember.compiler.json_graph import HIDDEN_KEYS
from ember.compiler.ops.registry import get_schema

from ..attribute import AttrScope
from ..name import NameManager
from .symbol import Symbol

# python method -> ((op, hint) with a Symbol, (op, hint) with a scalar on the right,
#                   (op, hint) with a scalar on the left, or None when Python reflects it itself)
BINARY = {
    "add": (("elemwise_add", "_plus"), ("_plus_scalar", "_plusscalar"), ("_plus_scalar", "_plusscalar")),
    "sub": (
        ("elemwise_sub", "_minus"),
        ("_minus_scalar", "_minusscalar"),
        ("_rminus_scalar", "_rminusscalar"),
    ),
    "mul": (("elemwise_mul", "_mul"), ("_mul_scalar", "_mulscalar"), ("_mul_scalar", "_mulscalar")),
    "truediv": (("elemwise_div", "_div"), ("_div_scalar", "_divscalar"), ("_rdiv_scalar", "_rdivscalar")),
    "mod": (("_mod", "_mod"), ("_mod_scalar", "_modscalar"), ("_rmod_scalar", "_rmodscalar")),
    "pow": (("_power", "_power"), ("_power_scalar", "_powerscalar"), ("_rpower_scalar", "_rpower_scalar")),
    "eq": (("_equal", "_equal"), ("_equal_scalar", "_equal_scalar"), None),
    "ne": (("_not_equal", "_not_equal"), ("_not_equal_scalar", "_not_equal_scalar"), None),
    "gt": (("_greater", "_greater"), ("_greater_scalar", "_greater_scalar"), None),
    "ge": (("_greater_equal", "_greater_equal"), ("_greater_equal_scalar", "_greater_equal_scalar"), None),
    "lt": (("_lesser", "_lesser"), ("_lesser_scalar", "_lesser_scalar"), None),
    "le": (("_lesser_equal", "_lesser_equal"), ("_lesser_equal_scalar", "_lesser_equal_scalar"), None),
}


def apply_op(op: str, hint: str, inputs: list[Symbol], attrs: dict[str, str] | None = None) -> Symbol:
    """A new node of `op` on single-output `inputs`, named by the current NameManager."""
    for symbol in inputs:
        if len(symbol) != 1:
            raise TypeError(f"operands of {op} must be single-output symbols, got a group of {len(symbol)}")
    name = NameManager.current.get(None, hint)
    scope = {(f"__{k}__" if k in HIDDEN_KEYS else k): v for k, v in AttrScope.current.get(None).items()}
    node = Node(
        get_schema(op).name, tuple(s._outputs[0] for s in inputs), Attrs({**scope, **(attrs or {})}), name
    )
    return Symbol([Value(node, 0)])


def _scalar(value) -> int | float | None:
    """A Python int or float for a real number operand (NumPy scalars included); None otherwise."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    return value if isinstance(value, int) else float(value)


def _binary(with_symbol, with_scalar):
    def method(self, other):
        if isinstance(other, Symbol):
            return apply_op(*with_symbol, [self, other])
        scalar = _scalar(other)
        if scalar is None:
            raise TypeError(f"type {type(other).__name__} not supported as an operand of a Symbol")
        return apply_op(*with_scalar, [self], {"scalar": str(scalar)})

    return method


def _reflected(scalar_left):
    def method(self, other):
        scalar = _scalar(other)
        if scalar is None:
            raise TypeError(f"type {type(other).__name__} not supported as an operand of a Symbol")
        return apply_op(*scalar_left, [self], {"scalar": str(scalar)})

    return method


def _negative(self):
    return apply_op("_mul_scalar", "_mulscalar", [self], {"scalar": "-1.0"})


# function -> ((op, hint) for two Symbols, (op, hint) for Symbol op scalar, (op, hint) for scalar op Symbol)
BINARY_FUNCTIONS = {
    "maximum": (("_maximum", "_maximum"), ("_maximum_scalar", "_maximumscalar"), ("_maximum_scalar", "_maximumscalar")),
    "minimum": (("_minimum", "_minimum"), ("_minimum_scalar", "_minimumscalar"), ("_minimum_scalar", "_minimumscalar")),
    "power": (("_power", "_power"), ("_power_scalar", "_powerscalar"), ("_rpower_scalar", "_rpowerscalar")),
    "hypot": (("_hypot", "_hypot"), ("_hypot_scalar", "_hypotscalar"), ("_hypot_scalar", "_hypotscalar")),
}
SCALAR_FALLBACK = {"maximum": max, "minimum": min, "power": pow, "hypot": lambda a, b: (a * a + b * b) ** 0.5}


def _binary_function(name: str):
    with_symbols, symbol_scalar, scalar_symbol = BINARY_FUNCTIONS[name]

    def function(left, right):
        if isinstance(left, Symbol) and isinstance(right, Symbol):
            return apply_op(*with_symbols, [left, right])
        if isinstance(left, Symbol):
            return apply_op(*symbol_scalar, [left], {"scalar": str(_checked_scalar(right))})
        if isinstance(right, Symbol):
            return apply_op(*scalar_symbol, [right], {"scalar": str(_checked_scalar(left))})
        return SCALAR_FALLBACK[name](_checked_scalar(left), _checked_scalar(right))

    function.__name__ = name
    function.__doc__ = f"Element-wise {name} of two Symbols, or of a Symbol and a number (MXNet's mx.sym.{name})."
    return function


def _checked_scalar(value):
    scalar = _scalar(value)
    if scalar is None:
        raise TypeError(f"type {type(value).__name__} not supported")
    return scalar


maximum = _binary_function("maximum")
minimum = _binary_function("minimum")
power = _binary_function("power")
pow = power  # noqa: A001  (MXNet's name)
hypot = _binary_function("hypot")


def install() -> None:
    """Attach the operator methods to `Symbol`."""
    for name, (with_symbol, with_scalar, scalar_left) in BINARY.items():
        setattr(Symbol, f"__{name}__", _binary(with_symbol, with_scalar))
        if scalar_left is not None:
            setattr(Symbol, f"__r{name}__", _reflected(scalar_left))
    Symbol.__neg__ = _negative
    Symbol.__abs__ = lambda self: apply_op("abs", "abs", [self])
    Symbol.__div__ = Symbol.__truediv__


install()

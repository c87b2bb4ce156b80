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

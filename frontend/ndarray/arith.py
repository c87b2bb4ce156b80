"""Binary arithmetic and comparisons between NDArrays, scalars and NumPy arrays (MXNET_COMPAT.md 3.2).

As in MXNet, two NDArrays combine through the `broadcast_*` op and an NDArray with a scalar through
the `_*_scalar` op (`_rminus_scalar` and friends when the scalar is on the left); the scalar takes
the array's dtype, so float32 stays float32. NumPy arrays are converted to NDArrays of the other
operand's dtype. `mx.nd.add`, `mx.nd.subtract`, ... are the functions below.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np
from ember.compiler.ops import SCHEMAS, canonical_name

from . import ndarray as _nd
from . import register

# kind -> (op for two arrays, op for array-scalar, op for scalar-array, Python operator for two scalars)
BINARY_OPS = {
    "add": ("broadcast_add", "_plus_scalar", "_plus_scalar", operator.add),
    "subtract": ("broadcast_sub", "_minus_scalar", "_rminus_scalar", operator.sub),
    "multiply": ("broadcast_mul", "_mul_scalar", "_mul_scalar", operator.mul),
    "divide": ("broadcast_div", "_div_scalar", "_rdiv_scalar", operator.truediv),
    "modulo": ("broadcast_mod", "_mod_scalar", "_rmod_scalar", operator.mod),
    "power": ("broadcast_power", "_power_scalar", "_rpower_scalar", operator.pow),
    "maximum": ("broadcast_maximum", "_maximum_scalar", "_maximum_scalar", max),
    "minimum": ("broadcast_minimum", "_minimum_scalar", "_minimum_scalar", min),
    "equal": ("broadcast_equal", "_equal_scalar", "_equal_scalar", operator.eq),
    "not_equal": ("broadcast_not_equal", "_not_equal_scalar", "_not_equal_scalar", operator.ne),
    "greater": ("broadcast_greater", "_greater_scalar", "_lesser_scalar", operator.gt),
    "greater_equal": (
        "broadcast_greater_equal",
        "_greater_equal_scalar",
        "_lesser_equal_scalar",
        operator.ge,
    ),
    "lesser": ("broadcast_lesser", "_lesser_scalar", "_greater_scalar", operator.lt),
    "lesser_equal": ("broadcast_lesser_equal", "_lesser_equal_scalar", "_greater_equal_scalar", operator.le),
}


def _is_scalar(value) -> bool:
    return isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, np.ndarray)


def binary(kind: str, lhs, rhs, out=None):
    """`lhs <kind> rhs` for any mix of NDArrays, scalars and NumPy arrays; NotImplemented for other types."""
    array_op, scalar_op, reflected_op, python_op = BINARY_OPS[kind]
    if not isinstance(lhs, _nd.NDArray) and not isinstance(rhs, _nd.NDArray):
        return python_op(lhs, rhs) if _is_scalar(lhs) and _is_scalar(rhs) else NotImplemented
    array = lhs if isinstance(lhs, _nd.NDArray) else rhs
    other = rhs if array is lhs else lhs
    if isinstance(other, (np.ndarray, list, tuple)):
        other = _nd.NDArray(np.array(other, dtype=array._data.dtype), array.context)
    if isinstance(other, _nd.NDArray):
        operands = [lhs if lhs is array else other, rhs if rhs is array else other]
        return register.invoke(array_op, operands, out=out)
    if not _is_scalar(other):
        return NotImplemented
    op = scalar_op if array is lhs else reflected_op
    if canonical_name(op) in SCHEMAS:
        return register.invoke(op, [array], {"scalar": float(other)}, out=out)
    # Without the scalar op, the scalar becomes a one-element array of the array's dtype.
    constant = _nd.NDArray(np.full((1,), other).astype(array._data.dtype), array.context)
    operands = [array, constant] if array is lhs else [constant, array]
    return register.invoke(array_op, operands, out=out)


def _public(kind: str):
    def function(lhs, rhs):
        result = binary(kind, lhs, rhs)
        if result is NotImplemented:
            raise TypeError(
                f"{kind}: unsupported operand types {type(lhs).__name__} and {type(rhs).__name__}"
            )
        return result

    function.__name__ = function.__qualname__ = kind
    function.__doc__ = f"Element-wise {kind} of two NDArrays (broadcasting) or of an NDArray and a scalar."
    return function


add = _public("add")
subtract = _public("subtract")
multiply = _public("multiply")
divide = _public("divide")
true_divide = divide
modulo = _public("modulo")
power = _public("power")
maximum = _public("maximum")
minimum = _public("minimum")
equal = _public("equal")
not_equal = _public("not_equal")
greater = _public("greater")
greater_equal = _public("greater_equal")
lesser = _public("lesser")
lesser_equal = _public("lesser_equal")

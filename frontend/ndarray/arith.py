"""`mx.nd.add`, `mx.nd.subtract`, ... (MXNET_COMPAT.md 3.2): the NDArray's binary arithmetic and
comparisons as functions, for any mix of NDArrays, scalars and NumPy arrays (`ndarray.binary`,
which the NDArray's operators use too, says how each mix runs).
"""

from __future__ import annotations

from .ndarray import binary


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
_power = _public("power")


def power(base, exp):
    """Element-wise `base ** exp` (broadcasting) for NDArrays and scalars, as `mx.nd.power`."""
    return _power(base, exp)


maximum = _public("maximum")
minimum = _public("minimum")
equal = _public("equal")
not_equal = _public("not_equal")
greater = _public("greater")
greater_equal = _public("greater_equal")
lesser = _public("lesser")
lesser_equal = _public("lesser_equal")
logical_and = _public("logical_and")
logical_or = _public("logical_or")
logical_xor = _public("logical_xor")

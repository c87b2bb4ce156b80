"""`mx.nd.<Op>` functions generated from the op registry (`ember.compiler.ops`), one per op and alias.

Each generated function is `ndarray.call` for its op, with the op's name and a docstring listing
its inputs and parameters; `op_function(name)` returns the function of one op. Calls run through
`ndarray.invoke` (re-exported here), the one path by which an NDArray operation runs.
"""

from __future__ import annotations

import functools

from ember.compiler.ops import ALIASES, SCHEMAS, get_schema
from ember.runtime.errors import GraphError, MXNetError

from .ndarray import call, invoke  # noqa: F401  (invoke: the path every generated function takes)


def make_function(op: str):
    """The `mx.nd.<op>` function: NDArray inputs positionally or by name, parameters as keywords,
    plus `out=` and `name=`."""
    schema = get_schema(op)

    def function(*args, **kwargs):
        return call(op, *args, **kwargs)

    function.__name__ = function.__qualname__ = op
    function.__doc__ = _docstring(schema)
    return function


def _docstring(schema) -> str:
    lines = [schema.doc or f"The {schema.name} operator.", ""]
    if not callable(schema.inputs):
        lines.append(f"Inputs: {', '.join(schema.inputs) or 'none'} (NDArrays)")
    for param in schema.params:
        default = "required" if repr(param.default) == "REQUIRED" else f"default {param.default!r}"
        lines.append(f"{param.name} ({default}): {param.doc}")
    lines.append("out: NDArray(s) to write the result into; name: ignored.")
    return "\n".join(lines)


def op_function(op: str):
    """The generated function of `op` (cached); MXNetError when no such op is registered."""
    try:
        return _cached_function(op)
    except GraphError:
        raise MXNetError(f"operator {op!r} is not registered in ember.compiler.ops") from None


@functools.cache
def _cached_function(op: str):
    return make_function(op)


def generated_functions() -> dict:
    """Name -> function for every registered op and alias."""
    return {name: op_function(name) for name in list(SCHEMAS) + list(ALIASES)}

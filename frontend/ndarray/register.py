"""`mx.nd.<Op>` functions generated from the op registry (`ember.compiler.ops`), one per op and alias.

`invoke` is the one path by which an NDArray operation runs: it checks the inputs against the op's
shape and type rules (a one-node graph through `infer_shapes`/`infer_types`, so bad shapes raise
`ShapeError` naming the op and the shapes), runs the op's NumPy reference rule, and wraps the
visible outputs as NDArrays. `op_function(name)` returns the generated function for one op.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ember.compiler import Graph, Node, RefContext, Value, variable
from ember.compiler.interpreter import call_reference
from ember.compiler.ops import ALIASES, SCHEMAS, get_schema, shape_rules, type_rules
from ember.compiler.ops.params import format_value
from ember.compiler.passes import infer_shapes, infer_types
from ember.runtime.errors import GraphError, MXNetError, ShapeError

from ..context import Context
from . import ndarray as _nd

# The generator behind ops that draw random numbers (Dropout); `mx.random.seed` may replace it.
RNG = np.random.default_rng()


def _is_training() -> bool:
    """Whether autograd records in training mode (False until `ember.autograd` is imported)."""
    autograd = sys.modules.get("ember.autograd")
    return bool(autograd is not None and hasattr(autograd, "is_training") and autograd.is_training())


def invoke(
    op: str,
    inputs: Sequence[_nd.NDArray],
    params: Mapping[str, Any] | None = None,
    *,
    out=None,
    name: str | None = None,
    ctx=None,
):
    """Run `op` on NDArray `inputs` (in the schema's input order) with Python-valued `params`.

    Returns one NDArray, or a list when the op has several visible outputs; with `out=` the
    results are written into the given NDArray(s), which are returned.
    """
    schema = get_schema(op)
    node_name = name or schema.name.lower()
    attrs = format_params(params or {})
    if schema.variadic and schema.variadic not in attrs:
        attrs[schema.variadic] = str(len(inputs))
    parsed = schema.parse_params(attrs, node_name)
    names = schema.input_names(parsed)
    if len(inputs) != len(names):
        raise MXNetError(
            f"operator {schema.name} takes {len(names)} inputs ({', '.join(names) or 'none'}), "
            f"got {len(inputs)}"
        )
    for index, item in enumerate(inputs):
        if not isinstance(item, _nd.NDArray):
            raise TypeError(
                f"operator {schema.name} expects NDArray inputs; "
                f"input {names[index]!r} is a {type(item).__name__}"
            )
    check_inputs(
        schema.name,
        tuple(sorted(attrs.items())),
        tuple(names),
        tuple(x.shape for x in inputs),
        tuple(x._data.dtype.name for x in inputs),
        node_name,
    )
    arrays = [x._data for x in inputs]
    results = call_reference(schema.name, node_name, parsed, arrays, RefContext(_is_training(), RNG))
    visible = [_fresh(r, arrays) for r in results[: schema.num_visible_outputs(parsed)]]
    if ctx is None:
        ctx = inputs[0].context if inputs else None
    if out is not None:
        return _write_out(schema.name, visible, out)
    wrapped = [_nd.NDArray(r, ctx) for r in visible]
    return wrapped[0] if len(wrapped) == 1 else wrapped


def format_params(params: Mapping[str, Any]) -> dict[str, str]:
    """MXNet's string attributes for Python-valued parameters; None means "use the default"."""
    return {key: format_value(_plain(value)) for key, value in params.items() if value is not None}


def _plain(value):
    """NumPy scalars as Python scalars, so `str` gives "3", not "np.int64(3)"."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


@functools.lru_cache(maxsize=4096)
def check_inputs(op: str, attrs: tuple, names: tuple, shapes: tuple, dtypes: tuple, node_name: str) -> tuple:
    """Output shapes of `op` applied to inputs of these shapes and dtypes; ShapeError/TypeInferenceError
    naming the op when its rules reject them."""
    variables = [variable(n) for n in names]
    node = Node(op, tuple(v.output() for v in variables), attrs, node_name)
    graph = Graph(tuple(Value(node, i) for i in range(node.num_outputs)))
    shapes_known = infer_shapes(graph, dict(zip(names, shapes))) if op in shape_rules else {}
    if op in type_rules:
        infer_types(graph, dict(zip(names, dtypes)))
    return tuple(shapes_known.get(v) for v in graph.outputs)


def _fresh(result, inputs: list[np.ndarray]) -> np.ndarray:
    """A C-contiguous array owning its memory (references may return views of their inputs)."""
    result = np.asarray(result)
    if result.ndim == 0 and not any(a.ndim == 0 for a in inputs):
        result = result.reshape(1)  # legacy NDArrays are never 0-d
    if any(np.may_share_memory(result, a) for a in inputs):
        return result.copy()
    return np.ascontiguousarray(result)


def _write_out(op: str, results: list[np.ndarray], out):
    targets = list(out) if isinstance(out, (list, tuple)) else [out]
    if len(targets) != len(results):
        raise MXNetError(f"operator {op} has {len(results)} outputs but out= holds {len(targets)} arrays")
    for target, result in zip(targets, results):
        if target.shape != result.shape:
            raise ShapeError(
                f"operator {op} produced shape {result.shape} but its out= array has shape {target.shape}"
            )
        target._data[...] = result
    return out


def _bind(schema, op: str, args: tuple, kwargs: dict) -> tuple[list, dict]:
    """Split a call's arguments into inputs (in schema order) and parameters, as MXNet's
    generated functions do: leading NDArrays are inputs, further positionals are parameters."""
    leading = 0
    while leading < len(args) and isinstance(args[leading], _nd.NDArray):
        leading += 1
    positional, rest = list(args[:leading]), args[leading:]
    if any(isinstance(a, _nd.NDArray) for a in rest):
        raise TypeError(f"{op}(): NDArray inputs must come before the parameters")
    param_names = [p.name for p in schema.params]
    if len(rest) > len(param_names):
        raise TypeError(
            f"{op}() takes at most {len(param_names)} parameters after its inputs, got {len(rest)}"
        )
    params = dict(zip(param_names, rest))
    named_inputs = {}
    for key, value in kwargs.items():
        if key in params:
            raise TypeError(f"{op}() got multiple values for parameter {key!r}")
        if isinstance(value, _nd.NDArray):
            named_inputs[key] = value
        elif key in param_names or value is not None:
            params[key] = value
    if not named_inputs:
        return positional, params
    return _place_named_inputs(schema, op, positional, named_inputs, params), params


def _place_named_inputs(schema, op: str, positional: list, named: dict, params: dict) -> list:
    attrs = format_params(params)
    names = schema.input_names(schema.parse_params(attrs, op.lower()))
    if len(positional) > len(names):
        raise MXNetError(
            f"operator {op} takes {len(names)} inputs ({', '.join(names)}), got {len(positional)}"
        )
    inputs = positional + [None] * (len(names) - len(positional))
    for key, value in named.items():
        if key not in names:
            raise MXNetError(f"operator {op} has no input named {key!r}; its inputs are {', '.join(names)}")
        if inputs[names.index(key)] is not None:
            raise TypeError(f"{op}() got multiple values for input {key!r}")
        inputs[names.index(key)] = value
    missing = [n for n, x in zip(names, inputs) if x is None]
    if missing:
        raise MXNetError(f"operator {op} is missing its input(s) {', '.join(missing)}")
    return inputs


def make_function(op: str):
    """The `mx.nd.<op>` function: NDArray inputs positionally or by name, parameters as keywords,
    plus `out=` and `name=`."""
    schema = get_schema(op)

    def function(*args, **kwargs):
        out = kwargs.pop("out", None)
        name = kwargs.pop("name", None)
        takes_ctx = any(p.name == "ctx" for p in schema.params)
        ctx = kwargs.get("ctx") if takes_ctx else kwargs.pop("ctx", None)
        ctx = ctx if isinstance(ctx, Context) else None
        inputs, params = _bind(schema, op, args, kwargs)
        return invoke(op, inputs, params, out=out, name=name, ctx=ctx)

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

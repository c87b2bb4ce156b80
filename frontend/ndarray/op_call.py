"""One call of a registry op on NumPy data, below the NDArray: how a call's arguments split into
inputs and parameters, how the inputs are checked against the op's shape and type rules, and how a
reference rule's results become fresh arrays (`fresh`).

`dispatch.py` uses this to prepare a call; nothing here knows the NDArray class, so the class can
use it without an import cycle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ember.compiler import Graph, Node, Value, variable
from ember.compiler.ops import shape_rules, type_rules
from ember.compiler.ops.params import format_value
from ember.compiler.passes import infer_shapes, infer_types
from ember.runtime.errors import MXNetError


def format_params(params: Mapping[str, Any], schema=None) -> dict[str, str]:
    """MXNet's string attributes for Python-valued parameters. None means "use the default", except
    for parameters of `schema` that take None as a value (`schema.keeps_none`: `pick(axis=None)`)."""
    return {
        key: format_value(_plain(value))
        for key, value in params.items()
        if value is not None or (schema is not None and schema.keeps_none(key))
    }


def _plain(value):
    """NumPy scalars as Python scalars, so `str` gives "3", not "np.int64(3)"."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


@functools.lru_cache(maxsize=4096)
def check_inputs(op: str, attrs: tuple, names: tuple, shapes: tuple, dtypes: tuple, node_name: str) -> tuple:
    """(output shapes, output dtype names) of `op` applied to inputs of these shapes and dtypes (None
    where a rule leaves one unknown); ShapeError/TypeInferenceError naming the op when its rules reject
    them."""
    variables = [variable(n) for n in names]
    node = Node(op, tuple(v.output() for v in variables), attrs, node_name)
    graph = Graph(tuple(Value(node, i) for i in range(node.num_outputs)))
    shapes_known = infer_shapes(graph, dict(zip(names, shapes))) if op in shape_rules else {}
    types_known = infer_types(graph, dict(zip(names, dtypes))) if op in type_rules else {}
    outputs = graph.outputs
    return tuple(shapes_known.get(v) for v in outputs), tuple(types_known.get(v) for v in outputs)


def fresh(result, inputs: list[np.ndarray]) -> np.ndarray:
    """A C-contiguous array owning its memory (references may return views of their inputs)."""
    if type(result) is np.ndarray and result.base is None and result.ndim and result.flags.c_contiguous:
        return result  # newly allocated: the common case, decided without comparing memory
    result = np.asarray(result)
    if result.ndim == 0 and not any(a.ndim == 0 for a in inputs):
        result = result.reshape(1)  # legacy NDArrays are never 0-d
    if any(np.may_share_memory(result, a) for a in inputs):
        return result.copy()
    return np.ascontiguousarray(result)


def bind_arguments(
    schema, op: str, args: Sequence, kwargs: Mapping, is_array: Callable[[Any], bool]
) -> tuple[list, dict]:
    """Split a call's arguments into inputs (in schema order) and parameters, as MXNet's generated
    functions do: leading arrays (`is_array`) are inputs - a None in an input's place is an absent
    optional input (`FullyConnected(x, w, None, no_bias=True)`) - further positionals are parameters,
    and keyword arrays are inputs by name."""
    slots = len(schema.declared_inputs())
    leading = 0
    while leading < len(args) and (is_array(args[leading]) or (args[leading] is None and leading < slots)):
        leading += 1
    positional, rest = list(args[:leading]), args[leading:]
    while positional and positional[-1] is None:
        positional.pop()
    missing = [i for i, a in enumerate(positional) if a is None]
    if missing:
        raise TypeError(f"{op}(): input {missing[0]} is None but a later input is given")
    if any(is_array(a) for a in rest):
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
        if is_array(value):
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

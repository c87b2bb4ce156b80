"""Constant folding: computations on constants alone, evaluated once at compile time.

A node is constant when it is not a variable, its result depends only on its inputs (no random
draws, no training mode: `reads_context`), and every input is constant; no-input ops (`_zeros`, `_ones`,
`_full`, `_arange`, `_eye`) are the leaves. Constants are evaluated with the reference interpreter.
A constant whose every element holds one value becomes a single `_zeros`, `_ones` or `_full` node.
Other constant results are left as they are: storing arbitrary constant arrays in a compiled program
arrives with the artifact format (its parameters section), and a compiled program has no other place
to keep one.
"""

from __future__ import annotations

import numpy as np

from ember.runtime.errors import MXNetError

from ...interpreter import RefContext, call_reference
from ...ir import Graph, Node, Value
from ...ops.facts import reads_context
from ...ops.params import format_value
from .rewrite import Rebuilder, new_node

FILL_OPS = ("_zeros", "_ones", "_full")


def fold_constants(graph: Graph) -> Graph:
    """`graph` with every uniform constant computed ahead of time as one fill node."""
    rebuilder = Rebuilder.of(graph)
    constants: dict[Value, np.ndarray] = {}
    ctx = RefContext(is_train=False)  # never read: context-dependent ops are not constant
    for old in graph.nodes:
        node = rebuilder.node(old)
        if node.is_variable or reads_context(node) or not all(v in constants for v in old.inputs):
            continue
        try:
            outputs = call_reference(node.op, node.name, node.params, [constants[v] for v in old.inputs], ctx)
        except MXNetError:  # say, a _zeros whose shape only a consumer knows: not evaluable alone
            continue
        for index, array in enumerate(outputs):
            constants[Value(old, index)] = np.asarray(array)
        fill = _uniform_fill(node, outputs)
        if fill is not None:
            rebuilder.replace(old.output(0), fill)
    return rebuilder.graph(graph)


def _uniform_fill(node: Node, outputs: list) -> Value | None:
    """One `_zeros`/`_ones`/`_full` node giving exactly `node`'s single output, or None where that is
    not possible: several outputs, a non-uniform or empty result, a dtype the fill ops lack."""
    if node.op in FILL_OPS or len(outputs) != 1:
        return None
    array = np.asarray(outputs[0])
    if array.ndim == 0 or array.size == 0:  # () and 0 dims mean "unknown" in a fill op's `shape`
        return None
    first = array.reshape(-1)[0]
    if np.full_like(array, first).tobytes() != array.tobytes():
        return None
    value = float(first)
    attrs = {"shape": format_value(array.shape), "dtype": array.dtype.name}
    if value == 0 and not np.signbit(value):
        fill = new_node("_zeros", (), node, attrs)
    elif value == 1:
        fill = new_node("_ones", (), node, attrs)
    else:
        fill = new_node("_full", (), node, {**attrs, "value": format_value(value)})
    return fill if _gives(fill.node, array) else None


def _gives(fill: Node, array: np.ndarray) -> bool:
    """Whether `fill` evaluates to exactly `array` (its value survives the trip through a float
    attribute; its dtype is one the fill op accepts)."""
    try:
        (result,) = call_reference(fill.op, fill.name, fill.params, [], RefContext())
    except MXNetError:
        return False
    return result.dtype == array.dtype and result.shape == array.shape and result.tobytes() == array.tobytes()

"""Auxiliary-state updates of imperative calls: BatchNorm's moving mean and variance in training mode.

A symbolic executor applies each op's `aux_update_rules` in the backward of a training step; an
imperative call recorded in training mode does the same when a backward pass goes through it
(`backprop._update_auxiliary_states`), writing the new values into the mutable input arrays in place.
That is when MXNet 1.9.1's CPU kernels update them (MXNET_COMPAT.md 2.5: a training forward alone
leaves them untouched). The rule builds IR nodes; its small graph is made once per call signature
(`updater_for`) and evaluated by the reference interpreter.
"""

from __future__ import annotations

from ember.compiler import Graph, Node, RefContext, Value, variable
from ember.compiler.interpreter import evaluate
from ember.compiler.ops import aux_update_rules
from ember.compiler.passes.autodiff import auxiliary_updates


def updater_for(op: str, attrs, params: dict, shapes: tuple, dtypes: tuple, out_shapes: tuple, schema):
    """None when `op` has no auxiliary state, else `update(arrays, outputs)` that writes the new
    auxiliary values into `arrays` (the call's input arrays, in place)."""
    if op not in aux_update_rules:
        return None
    names = schema.input_names(params)
    inputs = [variable(f"in{i}") for i in range(len(names))]
    node = Node(op, tuple(v.output() for v in inputs), attrs, op.lower())
    node.__dict__["params"] = params
    results = schema.num_outputs(params)
    value_shapes = {v.output(): s for v, s in zip(inputs, shapes)}
    value_shapes.update({Value(node, i): s for i, s in enumerate(out_shapes)})
    value_dtypes = {v.output(): d.name for v, d in zip(inputs, dtypes)}
    single = Graph(tuple(Value(node, i) for i in range(results)))
    found = auxiliary_updates(single, value_shapes, value_dtypes)
    updates = [(position, value) for _, position, value in found]
    graph = Graph(tuple(value for _, value in updates))

    def update(arrays: list, outputs: list) -> None:
        known = {Value(node, i): outputs[i] for i in range(min(results, len(outputs)))}
        feeds = {f"in{i}": a for i, a in enumerate(arrays)}
        values = evaluate(graph, feeds, RefContext(True), known)
        for index, value in updates:
            arrays[index][...] = values[value]

    return update

"""The IR: immutability, DFS order, the printer, the verifier, and the reference interpreter."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ember.base import GraphError
from ember.compiler import Attrs, Graph, Node, TensorType, Value, format_graph, run, topological_order, variable, verify
from ember.compiler.passes import infer_shapes, infer_types


def small_graph():
    data, weight, bias = variable("data"), variable("w"), variable("b")
    fc = Node("FullyConnected", (data.output(), weight.output(), bias.output()), {"num_hidden": "2"}, "fc")
    act = Node("Activation", (fc.output(),), {"act_type": "relu"}, "act")
    return Graph([act.output()]), (data, weight, bias, fc, act)


def test_nodes_and_attrs_are_immutable_and_hashable():
    graph, (data, *_rest, act) = small_graph()
    with pytest.raises(dataclasses.FrozenInstanceError):
        act.name = "other"
    assert hash(act.attrs) == hash(Attrs({"act_type": "relu"}))
    assert Attrs({"b": "1", "a": "2"}) == (("a", "2"), ("b", "1"))
    assert Value(act, 0) == Value(act, 0) and Value(act, 0) != Value(data, 0)


def test_topological_order_is_dfs_post_order_and_handles_deep_graphs():
    graph, nodes = small_graph()
    assert graph.nodes == list(nodes)
    value = variable("x").output()
    for i in range(5000):
        value = Node("Activation", (value,), {"act_type": "relu"}, f"a{i}").output()
    order = topological_order([value])
    assert len(order) == 5001 and order[0].name == "x" and order[-1].name == "a4999"


def test_printer_shows_one_line_per_node_with_types():
    graph, nodes = small_graph()
    shapes = infer_shapes(graph, {"data": (4, 3)})
    dtypes = infer_types(graph, {"data": "float32"})
    typed = graph.with_types({v: TensorType(shapes[v], dtypes[v]) for v in shapes})
    assert format_graph(typed).splitlines() == [
        "%0 = var 'data' : float32[4, 3]",
        "%1 = var 'w' : float32[2, 3]",
        "%2 = var 'b' : float32[2]",
        "%3 = FullyConnected(%0, %1, %2) {num_hidden=2} name='fc' : float32[4, 2]",
        "%4 = Activation(%3) {act_type=relu} name='act' : float32[4, 2]",
        "return %4.0",
    ]
    verify(typed)


def test_verifier_rejects_wrong_input_counts_and_missing_outputs():
    x = variable("x")
    bad = Node("Activation", (x.output(), x.output()), {"act_type": "relu"}, "act")
    with pytest.raises(GraphError, match="node 'act' \\(op Activation\\) has 2 inputs, expected 1: data"):
        verify(Graph([bad.output()]))
    with pytest.raises(GraphError, match="reads missing output 3 of 'x'"):
        verify(Graph([Value(x, 3)]))


def test_interpreter_runs_a_graph_and_names_missing_feeds():
    graph, _ = small_graph()
    x = np.array([[1.0, -2.0, 3.0]], np.float32)
    w = np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]], np.float32)
    b = np.array([0.5, 0.0], np.float32)
    (out,) = run(graph, {"data": x, "w": w, "b": b})
    np.testing.assert_array_equal(out, np.array([[2.5, 0.0]], np.float32))
    with pytest.raises(GraphError, match="no value given for variable 'b'"):
        run(graph, {"data": x, "w": w})

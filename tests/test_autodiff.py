"""The autodiff rewrite itself: accumulation over several uses, pruning, BlockGrad, loss heads, errors."""

from __future__ import annotations

import numpy as np
import pytest
from ember.base import GraphError
from ember.compiler import Graph, Node, Value, run, variable
from ember.compiler.passes import infer_shapes
from ember.compiler.passes.autodiff import gradients


def tanh_node(value, name):
    return Node("Activation", (value,), {"act_type": "tanh"}, name).output()


def grad_values(outputs, wrt, feeds, heads):
    graph = Graph(outputs)
    shapes = infer_shapes(graph, {k: v.shape for k, v in feeds.items()})
    head_vars = [variable(f"h{i}") for i in range(len(heads))]
    grads = gradients(graph, shapes, wrt, [h.output() for h in head_vars])
    feeds = {**feeds, **{f"h{i}": h for i, h in enumerate(heads)}}
    return grads, (run(Graph([g for g in grads if g is not None]), feeds) if any(g is not None for g in grads) else [])


def test_a_value_used_twice_gets_the_sum_of_both_gradients():
    x = variable("x")
    total = Node("elemwise_add", (tanh_node(x.output(), "a"), tanh_node(x.output(), "b")), {}, "sum").output()
    data = np.array([0.3, -1.2], np.float64)
    _, (dx,) = grad_values([total], [x.output()], {"x": data}, [np.ones(2)])
    np.testing.assert_allclose(dx, 2 * (1 - np.tanh(data) ** 2))


def test_head_gradients_weight_each_output():
    x = variable("x")
    a, b = tanh_node(x.output(), "a"), tanh_node(x.output(), "b")
    data = np.array([0.5], np.float64)
    _, (dx,) = grad_values([a, b], [x.output()], {"x": data}, [np.array([2.0]), np.array([3.0])])
    np.testing.assert_allclose(dx, 5 * (1 - np.tanh(data) ** 2))


def test_block_grad_stops_gradients_and_unreached_inputs_get_none():
    x, y = variable("x"), variable("y")
    blocked = Node("BlockGrad", (tanh_node(x.output(), "a"),), {}, "stop").output()
    out = Node("elemwise_add", (blocked, tanh_node(y.output(), "b")), {}, "sum").output()
    data = {"x": np.array([0.1]), "y": np.array([0.2])}
    grads, _ = grad_values([out], [x.output(), y.output()], data, [np.ones(1)])
    assert grads[0] is None and grads[1] is not None


def test_only_nodes_between_inputs_and_outputs_are_differentiated():
    x, y = variable("x"), variable("y")
    out = Node("elemwise_add", (tanh_node(x.output(), "a"), tanh_node(y.output(), "b")), {}, "sum").output()
    grads, _ = grad_values([out], [x.output()], {"x": np.ones(2), "y": np.ones(2)}, [np.ones(2)])
    names = {n.name for n in Graph([grads[0]]).nodes}
    assert any(name.startswith("a_backward") for name in names)
    assert not any(name.startswith("b_backward") for name in names)


def test_an_op_without_a_gradient_rule_is_named():
    from ember.compiler.ops import grad_rules

    x = variable("x")
    out = tanh_node(x.output(), "act")
    saved = grad_rules.pop("Activation")
    try:
        with pytest.raises(GraphError, match="operator Activation \\(node 'act'\\) has no gradient rule"):
            grad_values([out], [x.output()], {"x": np.ones(2)}, [np.ones(2)])
    finally:
        grad_rules["Activation"] = saved


def test_wrong_number_of_head_gradients():
    x = variable("x")
    graph = Graph([tanh_node(x.output(), "a")])
    with pytest.raises(GraphError, match="2 head gradients given for 1 outputs"):
        gradients(graph, {Value(x, 0): (2,)}, [x.output()], [None, None])


def test_the_gradient_of_a_gradient_graph_is_the_second_derivative():
    """d/dx of d/dx sum(tanh(x)) = -2 tanh(x) (1 - tanh(x)^2): differentiate the backward graph again."""
    x = variable("x")
    y = tanh_node(x.output(), "t")
    data = np.array([0.3, -0.8, 1.1])
    first_graph = Graph([y])
    shapes = infer_shapes(first_graph, {"x": data.shape})
    ones = variable("ones")
    (dx,) = gradients(first_graph, shapes, [x.output()], [ones.output()])
    second_graph = Graph([dx])
    shapes2 = infer_shapes(second_graph, {"x": data.shape, "ones": data.shape})
    head = variable("head")
    (ddx,) = gradients(second_graph, shapes2, [x.output()], [head.output()])
    (value,) = run(Graph([ddx]), {"x": data, "ones": np.ones(3), "head": np.ones(3)})
    t = np.tanh(data)
    np.testing.assert_allclose(value, -2 * t * (1 - t**2), rtol=1e-10)

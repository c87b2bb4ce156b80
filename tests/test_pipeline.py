"""The simplification pipeline: pass order, idempotence, debug verification and printing, random graphs
(property-based) and the seed MLP's backward graph, each checked against the reference interpreter."""

from __future__ import annotations

import ember as mx
import numpy as np
import pytest
from ember.base import GraphError
from ember.compiler import Graph, Node, Value, format_graph, run, variable
from ember.compiler.ops.reduce import reduced_shape
from ember.compiler.passes.autodiff import gradients
from ember.compiler.passes.pipeline import debug_level, run_passes, simplify
from ember.compiler.passes.simplify import dead_code_elimination, fold_constants
from hypothesis import given, settings
from hypothesis import strategies as st

from .test_simplify import X, assert_same_results, facts, feeds_for, op, ops


def simplify_over(graph: Graph, shapes: dict, debug=None) -> Graph:
    return simplify(graph, *facts(graph, shapes), debug=debug)


def mixed_graph() -> Graph:
    """One chance for every pass: a uniform constant, identities, a repeated subexpression."""
    x = variable("x").output()
    ten = op("_mul_scalar", op("_ones", shape=(2, 3)), scalar=10, name="ten")
    zeros = op("_mul_scalar", op("_ones", shape=(2, 3)), scalar=0, name="zeros")
    left = op("tanh", op("_mul_scalar", x, scalar=1), name="left")
    right = op("tanh", op("Reshape", x, shape=(2, 3)), name="right")
    total = op("elemwise_add", op("elemwise_add", left, zeros), right, name="total")
    return Graph([op("elemwise_mul", total, ten, name="out")])


def test_simplify_runs_fold_algebra_cse_and_dce_in_order():
    graph = mixed_graph()
    after = simplify_over(graph, X)
    assert [(n.op, n.name) for n in after.nodes] == [
        ("null", "x"),
        ("tanh", "left"),
        ("elemwise_add", "total"),
        ("_full", "ten"),
        ("elemwise_mul", "out"),
    ]
    total = after.nodes[2]
    assert total.inputs[0] == total.inputs[1]  # left and right merged once both read x
    assert_same_results(graph, after, feeds_for(X))


def test_simplify_is_idempotent():
    once = simplify_over(mixed_graph(), X)
    twice = simplify_over(once, X)
    assert format_graph(twice) == format_graph(once)
    assert all(a is b for a, b in zip(twice.nodes, once.nodes))


def test_debug_level_two_prints_the_graph_after_each_pass(capsys, monkeypatch):
    monkeypatch.delenv("EMBER_DEBUG", raising=False)
    simplify_over(mixed_graph(), X)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("EMBER_DEBUG", "2")
    after = simplify_over(mixed_graph(), X)
    err = capsys.readouterr().err
    headers = [line for line in err.splitlines() if line.startswith("# after")]
    assert headers == [
        "# after fold_constants",
        "# after simplify_algebra",
        "# after common_subexpression_elimination",
        "# after dead_code_elimination",
    ]
    assert err.endswith(format_graph(after) + "\n")
    after_folding = err.split("# after simplify_algebra")[0]
    assert "= _full() {dtype=float32, shape=(2, 3), value=10.0} name='ten'" in after_folding


def test_debug_levels_from_the_argument_and_the_environment(monkeypatch):
    monkeypatch.delenv("EMBER_DEBUG", raising=False)
    assert (debug_level(), debug_level(True), debug_level(False), debug_level(2)) == (0, 1, 0, 2)
    for text, level in (("", 0), ("0", 0), ("1", 1), ("3", 3), ("yes", 1)):
        monkeypatch.setenv("EMBER_DEBUG", text)
        assert debug_level() == level
    monkeypatch.setenv("EMBER_DEBUG", "2")
    assert (debug_level(True), debug_level(False)) == (2, 0)


def broken_pass(graph: Graph) -> Graph:
    """Drops the second input of every elemwise_add: a pass with a bug."""
    (out,) = graph.outputs
    return Graph([Node(out.node.op, out.node.inputs[:1], out.node.attrs, out.node.name).output()])


def test_debug_mode_verifies_the_graph_after_every_pass_and_names_the_pass(monkeypatch):
    monkeypatch.delenv("EMBER_DEBUG", raising=False)
    x = variable("x").output()
    graph = Graph([op("elemwise_add", x, x, name="add")])
    assert len(run_passes(graph, [broken_pass]).outputs[0].node.inputs) == 1  # unchecked when off
    with pytest.raises(
        GraphError, match=r"after pass broken_pass: node 'add' \(op elemwise_add\) has 1 inputs"
    ):
        run_passes(graph, [dead_code_elimination, broken_pass], debug=True)
    monkeypatch.setenv("EMBER_DEBUG", "1")
    with pytest.raises(GraphError, match="after pass broken_pass"):
        run_passes(graph, [broken_pass])
    with pytest.raises(GraphError, match="before the first pass"):
        run_passes(broken_pass(graph), [fold_constants])


def test_simplify_leaves_its_arguments_untouched():
    graph = mixed_graph()
    shapes, dtypes = facts(graph, X)
    text, shape_items, dtype_items = format_graph(graph), dict(shapes), dict(dtypes)
    simplify(graph, shapes, dtypes)
    assert (format_graph(graph), shapes, dtypes) == (text, shape_items, dtype_items)


# ---------------------------------------------------------------------------------------------
# Random graphs: simplification never changes results and never adds nodes


def _same_shape_partner(pool, shape, choice):
    partners = [v for v, s in pool if s == shape]
    return partners[choice % len(partners)]


# name -> (value, shape, choice, pool) -> (new value, new shape); `choice` picks parameters and partners
STEPS = {
    "tanh": lambda v, s, c, pool: (op("tanh", v), s),
    "negative": lambda v, s, c, pool: (op("negative", v), s),
    "relu": lambda v, s, c, pool: (op("relu", v), s),
    "copy": lambda v, s, c, pool: (op("_copy", v), s),
    "cast": lambda v, s, c, pool: (op("Cast", v, dtype="float32"), s),
    "mul_scalar": lambda v, s, c, pool: (op("_mul_scalar", v, scalar=(0, 1, 2, -1, 0.5, 3)[c % 6]), s),
    "plus_scalar": lambda v, s, c, pool: (op("_plus_scalar", v, scalar=(0, 1, -2, 0.25)[c % 4]), s),
    "minus_scalar": lambda v, s, c, pool: (op("_minus_scalar", v, scalar=(0, 1)[c % 2]), s),
    "div_scalar": lambda v, s, c, pool: (op("_div_scalar", v, scalar=(1, 2)[c % 2]), s),
    "add": lambda v, s, c, pool: (op("elemwise_add", v, _same_shape_partner(pool, s, c)), s),
    "mul": lambda v, s, c, pool: (op("elemwise_mul", v, _same_shape_partner(pool, s, c)), s),
    "add_zeros": lambda v, s, c, pool: (
        op("elemwise_add", v, op("zeros_like", _same_shape_partner(pool, s, c))),
        s,
    ),
    "mul_ones": lambda v, s, c, pool: (op("elemwise_mul", op("ones_like", v), v), s),
    "reshape": lambda v, s, c, pool: _reshape(v, s, c),
    "transpose": lambda v, s, c, pool: (op("transpose", v), s[::-1]),
    "sum": lambda v, s, c, pool: _sum(v, s, c),
}


def _reshape(value, shape, choice):
    size = int(np.prod(shape))
    target = (shape, shape[::-1], (size,), (1, size), (size, 1))[choice % 5]
    return op("Reshape", value, shape=target), target


def _sum(value, shape, choice):
    axis, keepdims = choice % len(shape), bool(choice // len(shape) % 2)
    return op("sum", value, axis=axis, keepdims=keepdims), reduced_shape(shape, (axis,), keepdims)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(sorted(STEPS)), st.integers(0, 1000), st.integers(0, 1000)),
        min_size=1,
        max_size=12,
    ),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    extra_output=st.integers(0, 1000),
    seed=st.integers(0, 2**16),
)
def test_random_graphs_simplify_to_no_more_nodes_and_the_same_results(steps, rows, cols, extra_output, seed):
    pool = [(variable("x").output(), (rows, cols)), (variable("y").output(), (rows, cols))]
    for step, operand, choice in steps:
        value, shape = pool[operand % len(pool)]
        pool.append(STEPS[step](value, shape, choice, pool))
    graph = Graph([pool[-1][0], pool[extra_output % len(pool)][0]])
    shapes = {"x": (rows, cols), "y": (rows, cols)}
    after = simplify_over(graph, shapes)
    assert len(after.nodes) <= len(graph.nodes)
    feeds = feeds_for(shapes, seed=seed)
    for old, new in zip(run(graph, feeds), run(after, feeds), strict=True):
        assert new.shape == old.shape and new.dtype == old.dtype
        np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-6)
    again = simplify_over(after, shapes)
    assert all(a is b for a, b in zip(again.nodes, after.nodes)) and len(again.nodes) == len(after.nodes)


# ---------------------------------------------------------------------------------------------
# The seed MLP's backward graph


def test_the_seed_mlps_backward_graph_loses_its_no_op_reshapes():
    """35 nodes before, 27 after: the 8 Reshapes FullyConnected's gradient rule wraps around its dots
    change nothing once shapes are known (batch 4, 784 -> 128 -> 64 -> 10)."""
    data = mx.sym.Variable("data")
    fc1 = mx.sym.FullyConnected(data, num_hidden=128, name="fc1")
    fc2 = mx.sym.FullyConnected(
        mx.sym.Activation(fc1, act_type="relu", name="relu1"), num_hidden=64, name="fc2"
    )
    fc3 = mx.sym.FullyConnected(
        mx.sym.Activation(fc2, act_type="relu", name="relu2"), num_hidden=10, name="fc3"
    )
    mlp = mx.sym.SoftmaxOutput(fc3, name="softmax")
    forward = Graph(mlp._outputs)
    shapes, dtypes = facts(forward, {"data": (4, 784), "softmax_label": (4,)})
    params = [Value(v) for v in forward.variables if v.name not in ("data", "softmax_label")]
    backward = Graph(gradients(forward, shapes, params, [None], dtypes))  # as the executor's BackwardPlan
    after = simplify(backward, shapes, dtypes, debug=True)
    assert (len(backward.nodes), len(after.nodes)) == (35, 27)
    assert ops(backward).count("Reshape") == 8 and "Reshape" not in ops(after)
    assert [v.node.name for v in after.outputs] == [v.node.name for v in backward.outputs]
    forward_nodes = {id(n) for n in forward.nodes}  # the forward values the executor already holds
    assert all(id(n) in forward_nodes for n in after.nodes if "_backward" not in n.name)
    rng = np.random.default_rng(0)
    feeds = {v.name: rng.normal(0, 0.1, shapes[Value(v)]).astype(np.float32) for v in forward.variables}
    feeds["softmax_label"] = rng.integers(0, 10, 4).astype(np.float32)
    assert_same_results(backward, after, feeds)

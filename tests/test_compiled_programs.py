"""The programs the compiler makes for the seed MLP: which kernels (fusion made visible), their
order, the memory they need, and that they compute what the reference interpreter computes."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember.compiler import Graph, evaluate
from ember.compiler.build import build_program
from ember.compiler.passes.autodiff import gradients

from .compiled.harness import compile_graph

BATCH = 100


def seed_mlp():
    data = mx.sym.var("data")
    fc1 = mx.sym.FullyConnected(data, name="fc1", num_hidden=128)
    act1 = mx.sym.Activation(fc1, name="relu1", act_type="relu")
    fc2 = mx.sym.FullyConnected(act1, name="fc2", num_hidden=64)
    act2 = mx.sym.Activation(fc2, name="relu2", act_type="relu")
    fc3 = mx.sym.FullyConnected(act2, name="fc3", num_hidden=10)
    return mx.sym.SoftmaxOutput(fc3, name="softmax")


def shapes_of(symbol):
    arg_shapes, _, _ = symbol.infer_shape(data=(BATCH, 784))
    return dict(zip(symbol.list_arguments(), arg_shapes))


def training_graph(symbol):
    """Forward outputs + the gradient of every parameter, as the executor's step program has them."""
    graph = symbol._graph
    shapes = shapes_of(symbol)
    from ember.compiler.passes import infer_shapes

    value_shapes = infer_shapes(graph, shapes)
    params = [v for v in graph.variables if v.name not in ("data", "softmax_label")]
    grads = gradients(graph, value_shapes, [p.output() for p in params], [None])
    return Graph(list(graph.outputs) + grads), shapes


def op_count(graph) -> int:
    return sum(not n.is_variable for n in graph.nodes)


def test_inference_program_has_one_kernel_per_fully_connected_layer():
    symbol = seed_mlp()
    built = build_program(symbol._graph, shapes_of(symbol))
    names = [k.name for k in built.program.kernels]
    assert names == ["fused_fc_bias_relu", "fused_fc_bias_relu_1", "fc_bias", "softmax_output"]
    assert [k.ops for k in built.program.kernels] == [
        ("FullyConnected", "Activation"),
        ("FullyConnected", "Activation"),
        ("FullyConnected",),
        ("SoftmaxOutput",),
    ]


def test_training_program_has_fewer_kernels_than_ops():
    graph, shapes = training_graph(seed_mlp())
    built = build_program(graph, shapes, is_train=True)
    names = [k.name for k in built.program.kernels]
    assert names == [
        "fused_fc_bias_relu_greater_scalar",
        "fused_fc_bias_relu_greater_scalar_1",
        "fc_bias",
        "softmax_output",
        "backward_softmax_output",
        "fused_dot_mul",
        "fused_dot_mul_1",
        "dot",
        "sum",
        "dot_1",
        "sum_1",
        "dot_2",
        "sum_2",
    ]
    assert len(names) == 13 < op_count(built.graph) == 19 < op_count(graph) == 27


def test_memory_plan_reuses_buffers_between_kernels():
    graph, shapes = training_graph(seed_mlp())
    built = build_program(graph, shapes, is_train=True)
    plan = built.plan
    assert plan.arena_bytes < plan.naive_bytes
    assert built.program.arena_bytes >= plan.arena_bytes
    # every buffer a kernel reads or writes lies inside the arena
    assert all(b.offset + b.nbytes <= built.program.arena_bytes for b in built.program.buffers.values())


@pytest.mark.parametrize("is_train", [False, True])
def test_compiled_seed_programs_match_the_reference(is_train):
    symbol = seed_mlp()
    graph, shapes = training_graph(symbol) if is_train else (symbol._graph, shapes_of(symbol))
    rng = np.random.default_rng(0)
    feeds = {name: rng.uniform(-0.1, 0.1, shape).astype(np.float32) for name, shape in shapes.items()}
    feeds["softmax_label"] = rng.integers(0, 10, BATCH).astype(np.float32)
    exe, _ = compile_graph(graph, shapes, optimize=True, is_train=is_train)
    got = exe(**{k: v for k, v in feeds.items() if k in exe.input_names})
    values = evaluate(graph, feeds)
    for position, value in enumerate(graph.outputs):
        np.testing.assert_allclose(got[position], values[value], rtol=1e-5, atol=1e-6, err_msg=str(position))

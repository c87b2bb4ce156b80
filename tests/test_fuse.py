"""Fusion: the seed MLP's kernels (inference and training), diamonds, shared expensive producers, reduce
prologues and epilogues, convolution epilogues, the size bound, opaque ops, cycles, `check_partition`
catching broken partitions, and random graphs.

The oracle beside `check_partition` is `run_groups`: it runs the groups in order, each seeing only the
values it declares as inputs and handing on only the values it declares as outputs, and compares the
graph's outputs with the reference interpreter's.
"""

from __future__ import annotations

import dataclasses

import ember as mx
import numpy as np
import pytest
from ember.base import CompileError
from ember.compiler import Graph, Node, RefContext, Value, evaluate, variable
from ember.compiler.interpreter import call_reference
from ember.compiler.kernels import FusedGraph, FusionGroup
from ember.compiler.ops.registry import FusionKind
from ember.compiler.passes import infer_shapes, infer_types, simplify
from ember.compiler.passes.autodiff import gradients
from ember.compiler.passes.fuse import MAX_GROUP_SIZE, GraphFacts, check_partition, fuse, make_group
from hypothesis import given, settings
from hypothesis import strategies as st

# ---------------------------------------------------------------------------------------------
# helpers


def op(op_name: str, *inputs: Value, name: str, **attrs) -> Value:
    return Node(op_name, inputs, {k: str(v) for k, v in attrs.items()}, name).output()


def fused(graph: Graph, given_shapes: dict, **options) -> tuple[FusedGraph, dict]:
    """`graph` fused, after `check_partition` with the rules (shapes given) has passed on it."""
    shapes = infer_shapes(graph, given_shapes)
    result = fuse(graph, shapes, **options)
    check_partition(graph, result.groups, shapes, options.get("max_group_size", MAX_GROUP_SIZE))
    return result, shapes


def layout(result: FusedGraph) -> list[tuple[str, list[str]]]:
    """Each kernel's name and the names of its nodes, in execution order."""
    return [(g.name, [n.name for n in g.nodes]) for g in result.groups]


def run_groups(result: FusedGraph, feeds: dict, ctx_args=()) -> None:
    """Run the groups in order, each reading only its declared inputs; the graph's outputs must be the
    reference interpreter's."""
    expected = evaluate(result.graph, feeds, RefContext(*ctx_args))
    store = {Value(v, 0): np.asarray(feeds[v.name]) for v in result.graph.variables}
    for group in result.groups:
        local = {v: store[v] for v in group.inputs}  # KeyError: read before an earlier group wrote it
        for node in group.nodes:
            args = [local[v] for v in node.inputs]  # KeyError: an input the group does not declare
            outs = call_reference(node.op, node.name, node.params, args, RefContext(*ctx_args))
            local.update((node.output(i), out) for i, out in enumerate(outs))
        store.update((v, local[v]) for v in group.outputs)
    for value in result.graph.outputs:
        np.testing.assert_array_equal(store[value], expected[value], err_msg=f"graph output {value}")


def random_feeds(graph: Graph, shapes, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {v.name: rng.uniform(-1, 1, shapes[Value(v, 0)]).astype(np.float32) for v in graph.variables}


def seed_mlp() -> Graph:
    """examples/mnist_mlp.py's network."""
    data = mx.symbol.Variable("data")
    fc1 = mx.symbol.FullyConnected(data, num_hidden=128)
    act1 = mx.symbol.Activation(fc1, act_type="relu")
    fc2 = mx.symbol.FullyConnected(act1, num_hidden=64)
    act2 = mx.symbol.Activation(fc2, act_type="relu")
    fc3 = mx.symbol.FullyConnected(act2, num_hidden=10)
    return mx.symbol.SoftmaxOutput(fc3, name="softmax")._graph


SEED_SHAPES = {"data": (100, 784), "softmax_label": (100,)}


def seed_training_graph() -> Graph:
    """The forward outputs and the gradients of every weight and bias in one graph, as the executor's
    `BackwardPlan` forms them (a Module binds data and label without gradients)."""
    with mx.name.NameManager():
        forward = seed_mlp()
    shapes = infer_shapes(forward, SEED_SHAPES)
    dtypes = infer_types(forward, {}, default="float32")
    params = [Value(v, 0) for v in forward.variables if v.name not in SEED_SHAPES]
    return Graph(list(forward.outputs) + gradients(forward, shapes, params, [None], dtypes))


def seed_feeds(graph: Graph, shapes) -> dict:
    feeds = random_feeds(graph, shapes)
    feeds["softmax_label"] = np.random.default_rng(1).integers(0, 10, 100).astype(np.float32)
    return feeds


# ---------------------------------------------------------------------------------------------
# the seed MLP


def test_seed_mlp_inference_has_one_kernel_per_fully_connected_layer():
    with mx.name.NameManager():
        graph = seed_mlp()
    result, shapes = fused(graph, SEED_SHAPES)
    # FullyConnected includes its bias; the relus are its epilogues; SoftmaxOutput is opaque.
    assert layout(result) == [
        ("fused_fc_bias_relu", ["fullyconnected0", "activation0"]),
        ("fused_fc_bias_relu_1", ["fullyconnected1", "activation1"]),
        ("fc_bias", ["fullyconnected2"]),
        ("softmax_output", ["softmax"]),
    ]
    first = result.groups[0]
    assert first.kind is FusionKind.MATMUL and first.anchor.name == "fullyconnected0"
    assert [v.node.name for v in first.inputs] == ["data", "fullyconnected0_weight", "fullyconnected0_bias"]
    assert [v.node.name for v in first.outputs] == ["activation0"]  # fc0's own result stays in the kernel
    run_groups(result, seed_feeds(graph, shapes))


def test_the_partition_prints_one_entry_per_kernel():
    with mx.name.NameManager():
        graph = seed_mlp()
    result, _ = fused(graph, SEED_SHAPES)
    assert str(result) == (
        "kernel 0: fused_fc_bias_relu (matmul around fullyconnected0): fullyconnected0 = FullyConnected, "
        "activation0 = Activation\n"
        "    reads  data, fullyconnected0_weight, fullyconnected0_bias\n"
        "    writes activation0_output\n"
        "kernel 1: fused_fc_bias_relu_1 (matmul around fullyconnected1): fullyconnected1 = FullyConnected, "
        "activation1 = Activation\n"
        "    reads  activation0_output, fullyconnected1_weight, fullyconnected1_bias\n"
        "    writes activation1_output\n"
        "kernel 2: fc_bias (matmul around fullyconnected2): fullyconnected2 = FullyConnected\n"
        "    reads  activation1_output, fullyconnected2_weight, fullyconnected2_bias\n"
        "    writes fullyconnected2_output\n"
        "kernel 3: softmax_output (opaque around softmax): softmax = SoftmaxOutput\n"
        "    reads  fullyconnected2_output, softmax_label\n"
        "    writes softmax_output\n"
        "4 kernels for 6 ops"
    )


SEED_TRAINING_KERNELS = [
    # forward kernels take the relu masks and the weight-gradient reshapes of their outputs as epilogues
    (
        "fused_fc_bias_relu_greater_scalar_reshape",
        [
            "fullyconnected0",
            "activation0",
            "activation0_backward_greater_scalar",
            "fullyconnected1_backward_reshape1",
        ],
    ),
    (
        "fused_fc_bias_relu_greater_scalar_reshape_1",
        [
            "fullyconnected1",
            "activation1",
            "activation1_backward_greater_scalar",
            "fullyconnected2_backward_reshape1",
        ],
    ),
    ("fc_bias", ["fullyconnected2"]),
    ("softmax_output", ["softmax"]),
    ("backward_softmax_output", ["softmax_backward_backward_softmaxoutput"]),
    # read by a dot, a dot and a sum, and made by an opaque op: a kernel of its own
    ("reshape", ["fullyconnected2_backward_reshape"]),
    # data gradients: the dot, then (relu gradient) * mask, reshapes around it, as its epilogue
    (
        "fused_dot_reshape_mul_reshape",
        [
            "fullyconnected2_backward_dot",
            "fullyconnected2_backward_reshape2",
            "activation1_backward_elemwise_mul",
            "fullyconnected1_backward_reshape",
        ],
    ),
    (
        "fused_dot_reshape_mul_reshape_1",
        [
            "fullyconnected1_backward_dot",
            "fullyconnected1_backward_reshape2",
            "activation0_backward_elemwise_mul",
            "fullyconnected0_backward_reshape",
        ],
    ),
    ("reshape_1", ["fullyconnected0_backward_reshape1"]),
    # weight and bias gradients: each dot and sum reads a value another kernel wrote
    ("dot", ["fullyconnected0_backward_dot1"]),
    ("sum", ["fullyconnected0_backward_sum"]),
    ("dot_1", ["fullyconnected1_backward_dot1"]),
    ("sum_1", ["fullyconnected1_backward_sum"]),
    ("dot_2", ["fullyconnected2_backward_dot1"]),
    ("sum_2", ["fullyconnected2_backward_sum"]),
]


def test_seed_mlp_training_has_fewer_kernels_than_ops():
    graph = seed_training_graph()
    result, shapes = fused(graph, SEED_SHAPES)
    ops = [n for n in graph.nodes if not n.is_variable]
    assert (len(result.groups), len(ops)) == (15, 27)
    assert layout(result) == SEED_TRAINING_KERNELS
    run_groups(result, seed_feeds(graph, shapes))


def test_seed_mlp_training_after_simplification():
    """Simplification drops the identity reshapes; what is left fuses into 13 kernels for 19 ops."""
    graph = seed_training_graph()
    shapes = infer_shapes(graph, SEED_SHAPES)
    simple = simplify(graph, shapes, infer_types(graph, {}, default="float32"))
    result, shapes = fused(simple, SEED_SHAPES)
    assert (len(result.groups), sum(not n.is_variable for n in simple.nodes)) == (13, 19)
    assert result.names == (
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
    )
    run_groups(result, seed_feeds(simple, shapes))


# ---------------------------------------------------------------------------------------------
# chains, anchors and what they absorb

X = {"x": (4, 6)}


def test_a_diamond_fuses_into_one_group():
    x = variable("x").output()
    out = op("elemwise_add", op("relu", x, name="left"), op("tanh", x, name="right"), name="out")
    result, shapes = fused(Graph([out]), X)
    assert layout(result) == [("fused_relu_tanh_add", ["left", "right", "out"])]
    (group,) = result.groups
    assert (group.kind, group.anchor, group.inputs, group.outputs) == (
        FusionKind.ELEMENTWISE,
        None,
        (x,),
        (out,),
    )
    run_groups(result, random_feeds(result.graph, shapes))


def test_chains_of_elementwise_broadcast_and_injective_ops_merge():
    x, column = variable("x").output(), variable("column").output()
    shifted = op("broadcast_add", op("exp", x, name="e"), column, name="shifted")
    out = op("relu", op("transpose", shifted, name="t"), name="out")
    result, shapes = fused(Graph([out]), {"x": (4, 6), "column": (4, 1)})
    assert layout(result) == [("fused_exp_broadcast_add_transpose_relu", ["e", "shifted", "t", "out"])]
    assert result.groups[0].kind is FusionKind.INJECTIVE
    run_groups(result, random_feeds(result.graph, shapes))


def test_an_expensive_producer_read_by_several_consumers_is_computed_once():
    a, w = variable("a").output(), variable("w").output()
    d = op("dot", a, w, name="d")
    relu, tanh = op("relu", d, name="r"), op("tanh", d, name="th")
    total = op("sum", d, name="total", axis=1)
    flipped = op("transpose", d, name="flipped")
    graph = Graph([relu, tanh, total, flipped])
    result, shapes = fused(graph, {"a": (4, 5), "w": (5, 6)})
    # relu and tanh are epilogues of the one dot; the reduce and the transpose read what it wrote.
    assert layout(result) == [
        ("fused_dot_relu_tanh", ["d", "r", "th"]),
        ("sum", ["total"]),
        ("transpose", ["flipped"]),
    ]
    assert result.groups[0].outputs == (d, relu, tanh)
    assert sum(n.name == "d" for g in result.groups for n in g.nodes) == 1
    run_groups(result, random_feeds(graph, shapes))


def test_a_matmul_epilogue_must_be_pointwise_over_its_output():
    a, w = variable("a").output(), variable("w").output()
    row, big = variable("row").output(), variable("big").output()
    d = op("dot", a, w, name="d")  # (4, 1)
    biased = op("broadcast_add", d, row, name="biased")  # (4, 6): d broadcast, not pointwise
    column = op("dot", a, w, name="d2")
    shifted = op("broadcast_add", big, column, name="shifted")  # (4, 6) again
    scaled = op("broadcast_mul", op("dot", a, variable("v").output(), name="d3"), row, name="scaled")
    graph = Graph([biased, shifted, scaled])
    shapes = {"a": (4, 5), "w": (5, 1), "v": (5, 6), "row": (1, 6), "big": (4, 6)}
    result, shapes = fused(graph, shapes)
    assert layout(result) == [
        ("dot", ["d"]),
        ("broadcast_add", ["biased"]),
        ("dot_1", ["d2"]),
        ("broadcast_add_1", ["shifted"]),
        ("fused_dot_broadcast_mul", ["d3", "scaled"]),  # (4, 6) * a (1, 6) row: pointwise over d3
    ]
    run_groups(result, random_feeds(graph, shapes))


def test_a_reduce_takes_an_elementwise_prologue_only_it_reads_and_a_pointwise_epilogue():
    x = variable("x").output()
    total = op("sum", op("exp", x, name="e"), name="total", axis=1)
    mean = op("_div_scalar", total, name="mean", scalar=6)
    result, shapes = fused(Graph([mean]), X)
    assert layout(result) == [("fused_exp_sum_div_scalar", ["e", "total", "mean"])]
    assert result.groups[0].anchor.name == "total" and result.groups[0].kind is FusionKind.REDUCE
    run_groups(result, random_feeds(result.graph, shapes))


def test_a_prologue_another_group_reads_is_not_taken_into_the_reduce():
    x = variable("x").output()
    e = op("exp", x, name="e")
    total = op("sum", e, name="total", axis=1)
    graph = Graph([total, op("relu", e, name="r")])
    result, shapes = fused(graph, X)
    assert layout(result) == [("fused_exp_relu", ["e", "r"]), ("sum", ["total"])]
    run_groups(result, random_feeds(graph, shapes))


def test_convolution_takes_its_activation_and_pooling_stands_alone():
    data = mx.symbol.Variable("data")
    conv = mx.symbol.Convolution(data, kernel=(3, 3), num_filter=4, name="conv")
    act = mx.symbol.Activation(conv, act_type="tanh", name="act")
    pool = mx.symbol.Pooling(act, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool")
    graph = mx.symbol.relu(pool, name="out")._graph
    result, shapes = fused(graph, {"data": (2, 3, 8, 8)})
    assert layout(result) == [
        ("fused_conv_bias_tanh", ["conv", "act"]),
        ("pooling", ["pool"]),
        ("relu", ["out"]),
    ]
    run_groups(result, random_feeds(graph, shapes))


def test_opaque_ops_stand_alone():
    x = variable("x").output()
    ordered = op("sort", op("relu", x, name="before"), name="ordered")
    out = op("tanh", op("_mul_scalar", ordered, name="scaled", scalar=2), name="out")
    result, shapes = fused(Graph([out]), X)
    assert layout(result) == [
        ("relu", ["before"]),
        ("sort", ["ordered"]),
        ("fused_mul_scalar_tanh", ["scaled", "out"]),
    ]
    assert result.groups[1].anchor.name == "ordered" and result.groups[1].kind is FusionKind.OPAQUE
    run_groups(result, random_feeds(result.graph, shapes))


def test_a_chain_writes_outputs_of_one_element_count():
    x, column = variable("x").output(), variable("column").output()
    small = op("relu", column, name="small")
    big = op("broadcast_add", small, x, name="big")
    result, shapes = fused(Graph([big, small]), {"x": (4, 6), "column": (4, 1)})
    assert layout(result) == [("relu", ["small"]), ("broadcast_add", ["big"])]
    together = regroup(result.graph, "together", "small", "big")
    check_partition(result.graph, (together,))
    with pytest.raises(
        CompileError, match=r"outputs differ in element count \(small_output 4, big_output 24\)"
    ):
        check_partition(result.graph, (together,), shapes)
    # when only the broadcast's result leaves the group, one loop computes it
    result, _ = fused(Graph([big]), {"x": (4, 6), "column": (4, 1)})
    assert layout(result) == [("fused_relu_broadcast_add", ["small", "big"])]


def test_a_merge_that_would_make_the_groups_cyclic_is_refused():
    # relu and add would make a fine chain, but sort runs between them.
    x = variable("x").output()
    r = op("relu", x, name="r")
    out = op("elemwise_add", r, op("sort", r, name="s"), name="out")
    result, shapes = fused(Graph([out]), X)
    assert layout(result) == [("relu", ["r"]), ("sort", ["s"]), ("add", ["out"])]
    run_groups(result, random_feeds(result.graph, shapes))


def test_the_size_bound_splits_a_long_chain():
    x = variable("x").output()
    value = x
    for i in range(10):
        value = op("relu", value, name=f"r{i}")
    result, shapes = fused(Graph([value]), X, max_group_size=4)
    assert layout(result) == [
        ("fused_relu_x4", ["r0", "r1", "r2", "r3"]),
        ("fused_relu_x4_1", ["r4", "r5", "r6", "r7"]),
        ("fused_relu_x2", ["r8", "r9"]),
    ]
    run_groups(result, random_feeds(result.graph, shapes))
    for i in range(10, 70):
        value = op("relu", value, name=f"r{i}")
    result, _ = fused(Graph([value]), X)
    assert [len(g.nodes) for g in result.groups] == [MAX_GROUP_SIZE, MAX_GROUP_SIZE, 70 - 2 * MAX_GROUP_SIZE]


def test_long_names_count_what_they_leave_out():
    value = variable("x").output()
    for i in range(10):
        value = op("relu" if i % 2 else "tanh", value, name=f"n{i}")
    result, _ = fused(Graph([value]), X)
    assert result.names == ("fused_tanh_relu_tanh_relu_tanh_relu_tanh_and_3_more",)


def test_fusion_needs_every_shape():
    x = variable("x").output()
    graph = Graph([op("relu", x, name="r")])
    with pytest.raises(CompileError, match=r"fusion needs the shape of r_output .* known only as None"):
        fuse(graph, {x: (2, 3)})


# ---------------------------------------------------------------------------------------------
# check_partition catches broken partitions


@pytest.fixture
def small():
    """relu -> dot -> (tanh, sort): fused as [relu], [dot tanh], [sort]."""
    x, w = variable("x").output(), variable("w").output()
    d = op("dot", op("relu", x, name="r"), w, name="d")
    graph = Graph([op("tanh", d, name="th"), op("sort", d, name="s")])
    result, shapes = fused(graph, {"x": (4, 6), "w": (6, 6)})
    assert layout(result) == [("relu", ["r"]), ("fused_dot_tanh", ["d", "th"]), ("sort", ["s"])]
    return graph, result.groups, shapes


def nodes_named(graph: Graph, *names: str) -> tuple[Node, ...]:
    by_name = {n.name: n for n in graph.nodes}
    return tuple(by_name[name] for name in names)


def regroup(graph: Graph, name: str, *node_names: str) -> FusionGroup:
    """A group of the named nodes, with exact inputs, outputs, anchor and kind."""
    return make_group(name, nodes_named(graph, *node_names), GraphFacts.of(graph, None))


def test_check_partition_catches_missing_and_repeated_ops(small):
    graph, groups, _ = small
    with pytest.raises(CompileError, match=r"no group holds the ops \['s'\]"):
        check_partition(graph, groups[:2])
    with pytest.raises(CompileError, match="'r' \\(relu\\) is in two groups: relu and again"):
        check_partition(graph, groups + (regroup(graph, "again", "r"),))
    bad = FusionGroup("bad", FusionKind.ELEMENTWISE, nodes_named(graph, "x"), (), (), None)
    with pytest.raises(CompileError, match="group bad holds the variable 'x'"):
        check_partition(graph, (bad,) + groups)
    stranger = Node("relu", (variable("y").output(),), {}, "stranger")
    with pytest.raises(CompileError, match="holds 'stranger' \\(relu\\), which is not in the graph"):
        check_partition(
            graph, groups[:2] + (dataclasses.replace(groups[2], nodes=groups[2].nodes + (stranger,)),)
        )
    with pytest.raises(CompileError, match=r"kernel names \['relu'\] are used by more than one group"):
        check_partition(graph, groups[:2] + (dataclasses.replace(groups[2], name="relu"),))


def test_check_partition_catches_wrong_inputs_outputs_anchor_and_kind(small):
    graph, groups, _ = small
    relu, dot_tanh, sort = groups
    no_dot_output = dataclasses.replace(dot_tanh, outputs=dot_tanh.outputs[1:])
    with pytest.raises(
        CompileError, match=r"lists outputs \['th_output'\]; they are \['d_output', 'th_output'\]"
    ):
        check_partition(graph, (relu, no_dot_output, sort))
    extra_input = dataclasses.replace(dot_tanh, inputs=dot_tanh.inputs + (Value(nodes_named(graph, "x")[0]),))
    with pytest.raises(
        CompileError, match=r"lists inputs \['r_output', 'w', 'x'\]; they are \['r_output', 'w'\]"
    ):
        check_partition(graph, (relu, extra_input, sort))
    with pytest.raises(
        CompileError, match="names anchor None; its matmul, reduce and opaque nodes are \\['d'\\]"
    ):
        check_partition(graph, (relu, dataclasses.replace(dot_tanh, anchor=None), sort))
    with pytest.raises(CompileError, match="is marked elementwise, not matmul"):
        check_partition(graph, (relu, dataclasses.replace(dot_tanh, kind=FusionKind.ELEMENTWISE), sort))
    backwards = dataclasses.replace(dot_tanh, nodes=dot_tanh.nodes[::-1])
    with pytest.raises(CompileError, match=r"lists 'th' before its inputs \['d'\]"):
        check_partition(graph, (relu, backwards, sort))


def test_check_partition_catches_cycles_and_bad_order(small):
    graph, groups, _ = small
    relu, dot_tanh, sort = groups
    with pytest.raises(
        CompileError, match=r"group fused_dot_tanh runs before \['relu'\], whose outputs it reads"
    ):
        check_partition(graph, (dot_tanh, relu, sort))
    # relu and tanh in one group, the dot in another: each reads the other
    chain = regroup(graph, "chain", "r", "th")
    dot = regroup(graph, "dot", "d")
    with pytest.raises(CompileError, match="the groups form a cycle: chain -> dot -> chain"):
        check_partition(graph, (chain, dot, sort))


def test_check_partition_enforces_the_bound_and_one_anchor_and_with_shapes_the_rules(small):
    graph, (_, _, sort), shapes = small
    everything = regroup(graph, "everything", "r", "d", "th", "s")
    with pytest.raises(CompileError, match="group everything has 4 ops, more than the bound of 3"):
        check_partition(graph, (everything,), max_group_size=3)
    with pytest.raises(CompileError, match=r"its matmul, reduce and opaque nodes are \['d', 's'\]"):
        check_partition(graph, (everything,))
    # relu as the dot's prologue: structurally sound, but a matmul takes no prologue
    prologue = regroup(graph, "prologue", "r", "d", "th")
    check_partition(graph, (prologue, sort))
    with pytest.raises(
        CompileError, match=r"prologue breaks the fusion rules: matmul anchor d reads r_output \(input 0\)"
    ):
        check_partition(graph, (prologue, sort), shapes)


# ---------------------------------------------------------------------------------------------
# random graphs


def _unary(draw, pool, value, shape, name):
    kind = draw(st.sampled_from(["relu", "tanh", "sigmoid", "negative", "_mul_scalar"]))
    attrs = {"scalar": "0.5"} if kind == "_mul_scalar" else {}
    return [(op(kind, value, name=name, **attrs), shape)]


def _binary(draw, pool, value, shape, name):
    other = draw(st.sampled_from([v for v, s in pool if s == shape]))
    kind = draw(st.sampled_from(["elemwise_add", "elemwise_mul", "_maximum"]))
    return [(op(kind, value, other, name=name), shape)]


def _broadcast(draw, pool, value, shape, name):
    columns = [v for v, s in pool if s == (shape[0], 1)] or [value]
    return [(op("broadcast_add", draw(st.sampled_from(columns)), value, name=name), shape)]


def _reduce(draw, pool, value, shape, name):
    kind = draw(st.sampled_from(["sum", "max", "softmax"]))
    if draw(st.booleans()):  # a prologue only the reduce reads
        value = op("exp", op("_mul_scalar", value, name=f"{name}_scaled", scalar=0.5), name=f"{name}_exp")
    if kind == "softmax":
        return [(op(kind, value, name=name, axis=1), shape)]
    return [(op(kind, value, name=name, axis=1, keepdims=True), (shape[0], 1))]


def _matmul(draw, pool, value, shape, name):
    weight, bias = variable(f"{name}_weight").output(), variable(f"{name}_bias").output()
    return [(op("FullyConnected", value, weight, bias, name=name, num_hidden=shape[1]), shape)]


def _reshape(draw, pool, value, shape, name):
    return [(op("Reshape", value, name=name, shape=f"(-1, {shape[1]})"), shape)]


def _transpose(draw, pool, value, shape, name):
    return [(op("transpose", value, name=name), shape[::-1])]


def _opaque(draw, pool, value, shape, name):
    return [(op("sort", value, name=name, axis=-1), shape)]


STEPS = (_unary, _unary, _binary, _binary, _broadcast, _reduce, _matmul, _reshape, _transpose, _opaque)


@st.composite
def random_graphs(draw):
    """A DAG over 1-2 inputs whose steps read mostly recent values, sometimes any earlier one; its
    outputs are the values nothing reads, plus a few drawn at random."""
    inputs = [variable(f"x{i}") for i in range(draw(st.integers(1, 2)))]
    given = {v.name: (draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 3]))) for v in inputs}
    pool = [(v.output(), given[v.name]) for v in inputs]
    for step in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(STEPS))
        back = draw(st.one_of(st.integers(0, 1), st.integers(0, len(pool) - 1)))
        value, shape = pool[max(len(pool) - 1 - back, 0)]
        pool += kind(draw, pool, value, shape, f"n{step}")
    read = {v for value, _ in pool for v in value.node.inputs}
    sinks = [value for value, _ in pool if value not in read and not value.node.is_variable]
    extra = [pool[i][0] for i in draw(st.lists(st.integers(0, len(pool) - 1), max_size=3))]
    return Graph(sinks + extra), given, draw(st.sampled_from([1, 2, 3, 5, MAX_GROUP_SIZE]))


@settings(max_examples=200, deadline=None)
@given(case=random_graphs())
def test_random_graphs_fuse_into_sound_partitions_that_compute_the_same(case):
    graph, given_shapes, bound = case
    shapes = infer_shapes(graph, given_shapes)
    weights = {Value(v, 0): shapes[Value(v, 0)] for v in graph.variables}
    result = fuse(graph, shapes, max_group_size=bound)
    check_partition(graph, result.groups, shapes, bound)
    assert len(result.groups) <= sum(not n.is_variable for n in graph.nodes)
    run_groups(result, random_feeds(graph, weights))


def test_a_merge_that_would_cycle_through_a_third_group_without_a_node_path_is_refused():
    """Found by the property test: groups A and B may not merge when A feeds a group C whose other
    nodes feed B, even though no single path of nodes runs from A to B through C."""
    x = variable("x0")
    n3 = op(
        "relu",
        op("relu", op("transpose", op("relu", x.output(), name="n0"), name="n1"), name="n2"),
        name="n3",
    )
    n8 = n3
    for name in ("n5", "n6", "n7", "n8"):
        n8 = op("relu", n8, name=name)
    n4 = op("broadcast_add", n3, n3, name="n4")
    n9 = op("elemwise_add", n8, n4, name="n9")
    n12 = op("relu", op("relu", op("elemwise_add", n8, n4, name="n10"), name="n11"), name="n12")
    result, _ = fused(Graph([n9, n12]), {"x0": (2, 1)}, max_group_size=3)
    assert [[n.name for n in g.nodes] for g in result.groups] == [
        ["n0", "n1", "n2"],
        ["n3", "n5", "n6"],
        ["n4"],
        ["n7", "n8", "n9"],
        ["n10", "n11", "n12"],
    ]

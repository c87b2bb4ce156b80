"""Memory planning: the seed MLP's plans, in-place chains, pinned buffers, alignment, empty tensors,
random DAGs, and `check_plan` catching broken plans.

The oracle beside `check_plan` is `run_in_arena`: it runs a graph with every value stored only at its
planned bytes of one arena and compares every value read there with the reference interpreter, so a
plan that lets one value clobber another still needed fails even if the checker were wrong.
"""

from __future__ import annotations

import dataclasses
import random

import ember as mx
import numpy as np
import pytest
from ember.base import CompileError
from ember.compiler import Graph, Node, RefContext, Value, evaluate, variable
from ember.compiler.buffers import BufferPlan, nbytes_of
from ember.compiler.interpreter import call_reference
from ember.compiler.passes import infer_shapes, infer_types
from ember.compiler.passes.autodiff import gradients
from ember.compiler.passes.plan_memory import check_plan, execution_order, plan_memory
from hypothesis import given, settings
from hypothesis import strategies as st

# ---------------------------------------------------------------------------------------------
# helpers


def op(op_name: str, *inputs: Value, name: str, **attrs) -> Node:
    return Node(op_name, inputs, {k: str(v) for k, v in attrs.items()}, name)


def typed(graph: Graph, given_shapes: dict, given_dtypes: dict | None = None):
    shapes = infer_shapes(graph, given_shapes)
    dtypes = infer_types(graph, given_dtypes or {}, default="float32")
    return shapes, dtypes


def run_in_arena(graph, plan, shapes, dtypes, feeds, order=None):
    """Run `graph` keeping each value only in its planned bytes; every value read must be the interpreter's."""
    expected = evaluate(graph, feeds, RefContext())
    arena = np.full(plan.arena_bytes, 0xAB, np.uint8)  # garbage, so an unwritten read shows

    def view(value):
        buffer, shape, dtype = plan.buffer_of(value), tuple(shapes[value]), dtypes[value]
        raw = arena[buffer.offset : buffer.offset + nbytes_of(shape, dtype)]
        return raw.view(dtype).reshape(shape)

    for var in graph.variables:
        view(Value(var, 0))[...] = feeds[var.name]
    for node in execution_order(graph, order):
        args = [view(v).copy() for v in node.inputs]
        for value, arg in zip(node.inputs, args):
            np.testing.assert_array_equal(
                arg, expected[value], err_msg=f"{value} was clobbered before {node.name}"
            )
        for index, out in enumerate(call_reference(node.op, node.name, node.params, args, RefContext())):
            view(Value(node, index))[...] = out
    for value in graph.outputs:
        np.testing.assert_array_equal(view(value), expected[value])


def seed_mlp():
    """examples/mnist_mlp.py's network, batch 100."""
    data = mx.symbol.Variable("data")
    fc1 = mx.symbol.FullyConnected(data, num_hidden=128)
    act1 = mx.symbol.Activation(fc1, act_type="relu")
    fc2 = mx.symbol.FullyConnected(act1, num_hidden=64)
    act2 = mx.symbol.Activation(fc2, act_type="relu")
    fc3 = mx.symbol.FullyConnected(act2, num_hidden=10)
    return mx.symbol.SoftmaxOutput(fc3, name="softmax")._graph


SEED_SHAPES = {"data": (100, 784), "softmax_label": (100,)}


def seed_pins(graph):
    return {Value(v, 0): "input" if v.name in SEED_SHAPES else "parameter" for v in graph.variables}


def seed_feeds(graph, shapes, rng):
    feeds = {v.name: rng.uniform(-1, 1, shapes[Value(v, 0)]).astype(np.float32) for v in graph.variables}
    feeds["softmax_label"] = rng.integers(0, 10, 100).astype(np.float32)
    return feeds


def by_name(graph, name: str) -> Value:
    (node,) = [n for n in graph.nodes if n.name == name]
    return node.output()


# ---------------------------------------------------------------------------------------------
# the seed MLP


def test_seed_mlp_forward_plan(rng):
    with mx.name.NameManager():
        graph = seed_mlp()
    shapes, dtypes = typed(graph, SEED_SHAPES)
    plan = plan_memory(graph, shapes, dtypes, seed_pins(graph))
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    # Pinned: data 313,600 + weights and biases 437,544 + label 400 + softmax 4,000, each rounded to 64.
    assert plan.pinned_bytes == 755_648
    # Temporaries: fc1 (51,200) and fc2 (25,600) live together at fc2; relus run in place; fc3 (4,000
    # -> 4,032) reuses fc1's bytes. Without reuse: 2 * 51,200 + 2 * 25,600 + 4,032.
    assert (plan.temporary_bytes, plan.naive_temporary_bytes) == (76_800, 157_632)
    assert (plan.arena_bytes, plan.naive_bytes) == (832_448, 913_280)
    assert plan.arena_bytes < plan.naive_bytes
    assert round(plan.reuse_ratio, 3) == 1.097 and round(plan.temporary_reuse_ratio, 3) == 2.053
    for fc, act in (("fullyconnected0", "activation0"), ("fullyconnected1", "activation1")):
        assert plan.index_of(by_name(graph, fc)) == plan.index_of(by_name(graph, act))
    run_in_arena(graph, plan, shapes, dtypes, seed_feeds(graph, shapes, rng))


def test_seed_mlp_training_plan(rng):
    """Forward values and the gradients of every weight and bias in one graph, as the executor builds it."""
    with mx.name.NameManager():
        forward = seed_mlp()
    shapes, dtypes = typed(forward, SEED_SHAPES)
    params = [Value(v, 0) for v in forward.variables if v.name not in SEED_SHAPES]
    grads = gradients(forward, shapes, params, [None], dtypes)
    graph = Graph(list(forward.outputs) + grads)
    shapes, dtypes = typed(graph, SEED_SHAPES)
    plan = plan_memory(graph, shapes, dtypes, seed_pins(graph))
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    # The gradients (437,544 bytes, 64-rounded) are outputs, pinned beside the parameters.
    assert plan.pinned_bytes == 1_193_216
    # Largest temporary: the backward's Reshape of `data` (313,600), a copy since `data` is pinned.
    assert (plan.temporary_bytes, plan.naive_temporary_bytes) == (471_232, 940_096)
    assert (plan.arena_bytes, plan.naive_bytes) == (1_664_448, 2_133_312)
    assert plan.arena_bytes < plan.naive_bytes
    # The backward's Reshapes and relu-gradient products run in place.
    chain = [
        "fullyconnected2_backward_dot",
        "fullyconnected2_backward_reshape2",
        "activation1_backward_elemwise_mul",
        "fullyconnected1_backward_reshape",
    ]
    assert len({plan.index_of(by_name(graph, name)) for name in chain}) == 1
    run_in_arena(graph, plan, shapes, dtypes, seed_feeds(graph, shapes, rng))


# ---------------------------------------------------------------------------------------------
# in place


def test_a_relu_tanh_chain_runs_in_one_buffer(rng):
    x = variable("x")
    scaled = op("_mul_scalar", x.output(), name="scaled", scalar=2.0)
    r1 = op("Activation", scaled.output(), name="r1", act_type="relu")
    t1 = op("tanh", r1.output(), name="t1")
    r2 = op("relu", t1.output(), name="r2")
    t2 = op("Activation", r2.output(), name="t2", act_type="tanh")
    out = op("negative", t2.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (3, 5)})
    plan = plan_memory(graph, shapes, dtypes)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    shared = plan.index_of(scaled.output())
    assert [plan.index_of(n.output()) for n in (r1, t1, r2, t2)] == [shared] * 4
    assert plan.values_in(shared) == tuple(n.output() for n in (scaled, r1, t1, r2, t2))
    # x is an input and out an output: neither is written over, so two pinned buffers and one temporary.
    assert [b.role for b in plan.buffers] == ["input", "output", "temporary"]
    assert plan.temporary_bytes == 64 and plan.naive_temporary_bytes == 5 * 64
    run_in_arena(graph, plan, shapes, dtypes, {"x": rng.uniform(-1, 1, (3, 5)).astype(np.float32)})


def test_an_input_read_later_is_not_written_over():
    x = variable("x")
    a = op("_mul_scalar", x.output(), name="a", scalar=2.0)
    r = op("relu", a.output(), name="r")
    total = op("elemwise_add", r.output(), a.output(), name="total")  # a is read after r
    out = op("negative", total.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (4,)})
    plan = plan_memory(graph, shapes, dtypes)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    assert plan.index_of(r.output()) != plan.index_of(a.output())
    assert plan.index_of(total.output()) in (plan.index_of(a.output()), plan.index_of(r.output()))


def test_in_place_needs_equal_shape_and_element_size():
    x, row = variable("x"), variable("row")
    wide = op("_mul_scalar", x.output(), name="wide", scalar=2.0)
    bias = op("_mul_scalar", row.output(), name="bias", scalar=2.0)
    summed = op("broadcast_add", bias.output(), wide.output(), name="summed")  # over wide only
    halved = op("Cast", summed.output(), name="halved", dtype="float16")  # 2-byte elements: a new buffer
    out = op("Cast", halved.output(), name="out", dtype="float32")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (3, 4), "row": (1, 4)})
    plan = plan_memory(graph, shapes, dtypes)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    assert plan.index_of(summed.output()) == plan.index_of(wide.output())
    assert plan.index_of(halved.output()) != plan.index_of(summed.output())


def test_where_never_writes_over_its_condition():
    x = variable("x")
    cond = op("_greater_scalar", x.output(), name="cond", scalar=0.0)
    neg = op("negative", x.output(), name="neg")
    picked = op("where", cond.output(), neg.output(), x.output(), name="picked")
    out = op("relu", picked.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (6,)})
    plan = plan_memory(graph, shapes, dtypes)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    assert plan.index_of(picked.output()) == plan.index_of(neg.output())


def test_a_reshape_of_a_dying_temporary_is_in_place_and_a_transpose_is_not():
    x = variable("x")
    a = op("tanh", x.output(), name="a")
    flat = op("Reshape", a.output(), name="flat", shape=(-1,))
    back = op("Reshape", flat.output(), name="back", shape=(4, 3))
    turned = op("transpose", back.output(), name="turned")
    out = op("relu", turned.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (4, 3)})
    plan = plan_memory(graph, shapes, dtypes)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    assert plan.index_of(flat.output()) == plan.index_of(a.output()) == plan.index_of(back.output())
    assert plan.index_of(turned.output()) != plan.index_of(back.output())


# ---------------------------------------------------------------------------------------------
# pinned buffers, hidden outputs, alignment, empty tensors


def test_pinned_values_are_never_reused():
    """A parameter read only by the first op, and a pinned intermediate, keep their bytes to the end."""
    x, w = variable("x"), variable("w")
    first = op("elemwise_mul", x.output(), w.output(), name="first")  # w's last use
    kept = op("tanh", first.output(), name="kept")  # pinned as state: not written over by `later`
    later = op("relu", kept.output(), name="later")
    last = op("sigmoid", later.output(), name="last")
    out = op("negative", last.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (8, 8), "w": (8, 8)})
    pins = {x.output(): "input", w.output(): "parameter", kept.output(): "state"}
    plan = plan_memory(graph, shapes, dtypes, pins)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    pinned = [i for i, b in enumerate(plan.buffers) if b.pinned]
    assert [plan.buffers[i].role for i in pinned] == ["input", "parameter", "state", "output"]
    assert all(len(plan.values_in(i)) == 1 for i in pinned)
    front = plan.pinned_bytes
    assert front == 4 * 256
    assert all(b.offset >= front for b in plan.buffers if not b.pinned)
    assert plan.index_of(later.output()) != plan.index_of(kept.output())
    assert plan.index_of(last.output()) == plan.index_of(later.output())  # temporaries still go in place


def test_hidden_outputs_nobody_reads_get_a_buffer_freed_at_once():
    x = variable("x")
    parts = op("SliceChannel", x.output(), name="parts", num_outputs=2, axis=1)  # part 1 is never read
    b = op("relu", parts.output(0), name="b")
    c = op("sigmoid", b.output(), name="c")
    out = op("elemwise_add", c.output(), b.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (2, 32)})
    plan = plan_memory(graph, shapes, dtypes)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    unread = plan.buffer_of(parts.output(1))
    assert unread.role == "temporary" and unread.nbytes == 2 * 16 * 4
    # Freed after `parts` runs, so a later value of its size takes its bytes.
    assert plan.buffer_of(c.output()).offset == unread.offset


@pytest.mark.parametrize("alignment", [1, 8, 64, 256, 4096])
def test_every_offset_is_a_multiple_of_the_alignment(alignment, rng):
    with mx.name.NameManager():
        graph = seed_mlp()
    shapes, dtypes = typed(graph, {"data": (3, 7), "softmax_label": (3,)})
    plan = plan_memory(graph, shapes, dtypes, seed_pins(graph), alignment=alignment)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    assert plan.alignment == alignment
    assert all(b.offset % alignment == 0 for b in plan.buffers)
    assert plan.arena_bytes % alignment == 0
    feeds = {v.name: rng.uniform(-1, 1, shapes[Value(v, 0)]).astype(np.float32) for v in graph.variables}
    run_in_arena(graph, plan, shapes, dtypes, feeds)


def test_empty_tensors_take_no_bytes(rng):
    x = variable("x")
    a = op("tanh", x.output(), name="a")
    b = op("relu", a.output(), name="b")
    total = op("sum", b.output(), name="total", axis=0)  # (0, 5) -> (5,): a non-empty result
    out = op("elemwise_add", total.output(), total.output(), name="out")
    graph = Graph([out.output(), b.output()])
    shapes, dtypes = typed(graph, {"x": (0, 5)})
    plan = plan_memory(graph, shapes, dtypes)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    assert plan.buffer_of(x.output()).nbytes == 0 and plan.buffer_of(a.output()).nbytes == 0
    assert plan.buffer_of(a.output()).offset == 0
    assert plan.buffer_of(out.output()).nbytes == 20
    run_in_arena(graph, plan, shapes, dtypes, {"x": np.zeros((0, 5), np.float32)})


def test_a_graph_of_variables_only():
    x = variable("x")
    graph = Graph([x.output()])
    shapes, dtypes = typed(graph, {"x": (2, 2)})
    plan = plan_memory(graph, shapes, dtypes)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    assert plan.arena_bytes == plan.naive_bytes == 64 and plan.buffers[0].role == "input"


def test_the_plan_prints_as_a_table():
    x = variable("x")
    a = op("tanh", x.output(), name="a")
    out = op("relu", a.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (2, 3)})
    text = str(plan_memory(graph, shapes, dtypes)).splitlines()
    assert text[0].split() == ["buffer", "role", "offset", "bytes", "dtype", "shape", "values"]
    assert text[1].split() == ["0", "input", "0", "24", "float32", "(2,", "3)", "x"]
    assert text[3].split() == ["2", "temporary", "128", "24", "float32", "(2,", "3)", "a_output"]
    assert text[-1].startswith("arena 192 bytes (pinned 128 + temporaries 64); naive 192 bytes")


# ---------------------------------------------------------------------------------------------
# execution orders and errors


def test_a_given_order_changes_lifetimes_but_stays_valid(rng):
    x = variable("x")
    left = op("tanh", x.output(), name="left")
    small_left = op("sum", left.output(), name="small_left", axis=1, keepdims=True)
    right = op("sigmoid", x.output(), name="right")
    small_right = op("sum", right.output(), name="small_right", axis=1, keepdims=True)
    out = op("elemwise_add", small_left.output(), small_right.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (16, 16)})
    branch_by_branch = [left, small_left, right, small_right, out]  # the graph's own order
    both_first = [left, right, small_left, small_right, out]
    one_big = plan_memory(graph, shapes, dtypes)
    two_big = plan_memory(graph, shapes, dtypes, order=both_first)
    check_plan(one_big, graph, branch_by_branch, shapes=shapes, dtypes=dtypes)
    check_plan(two_big, graph, both_first, shapes=shapes, dtypes=dtypes)
    assert one_big.temporary_bytes == 1024 + 2 * 64  # right takes left's bytes
    assert two_big.temporary_bytes == 2 * 1024 + 64
    with pytest.raises(CompileError, match=r"both live at step 1 \('right'\) and overlap"):
        check_plan(one_big, graph, both_first, shapes=shapes, dtypes=dtypes)
    feeds = {"x": rng.uniform(-1, 1, (16, 16)).astype(np.float32)}
    run_in_arena(graph, two_big, shapes, dtypes, feeds, both_first)


def test_bad_orders_missing_types_and_roles_are_named():
    x = variable("x")
    a = op("tanh", x.output(), name="a")
    out = op("relu", a.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (2,)})
    with pytest.raises(CompileError, match=r"runs 'out' \(op relu\) before its inputs \['a'\]"):
        plan_memory(graph, shapes, dtypes, order=[out, a])
    with pytest.raises(CompileError, match=r"leaves out nodes \['out'\]"):
        plan_memory(graph, shapes, dtypes, order=[a])
    with pytest.raises(CompileError, match=r"needs the shape of a_output \(node 'a', op tanh\)"):
        plan_memory(graph, {**shapes, a.output(): (None,)}, dtypes)
    with pytest.raises(CompileError, match="pinned roles must be one of"):
        plan_memory(graph, shapes, dtypes, {x.output(): "temporary"})


# ---------------------------------------------------------------------------------------------
# check_plan catches broken plans


@pytest.fixture
def chain_plan():
    """x -> a -> b (in place) ; c = b * a2 where a2 also lives: enough shapes for every breakage."""
    x = variable("x")
    a = op("tanh", x.output(), name="a")
    b = op("relu", a.output(), name="b")
    a2 = op("sigmoid", x.output(), name="a2")
    c = op("elemwise_mul", b.output(), a2.output(), name="c")
    out = op("negative", c.output(), name="out")
    graph = Graph([out.output()])
    shapes, dtypes = typed(graph, {"x": (4, 4)})
    plan = plan_memory(graph, shapes, dtypes)
    check_plan(plan, graph, shapes=shapes, dtypes=dtypes)
    return graph, shapes, dtypes, plan, {n.name: n.output() for n in graph.nodes}


def replace_buffer(plan: BufferPlan, index: int, **changes) -> BufferPlan:
    buffers = list(plan.buffers)
    buffers[index] = dataclasses.replace(buffers[index], **changes)
    return dataclasses.replace(plan, buffers=tuple(buffers))


def remap(plan: BufferPlan, value: Value, index: int) -> BufferPlan:
    """`value` moved into buffer `index`; a buffer left without values is dropped."""
    pairs = tuple((v, index if v == value else i) for v, i in plan.value_to_buffer)
    used = sorted({i for _, i in pairs})
    new_index = {old: new for new, old in enumerate(used)}
    return dataclasses.replace(
        plan,
        buffers=tuple(plan.buffers[i] for i in used),
        value_to_buffer=tuple((v, new_index[i]) for v, i in pairs),
    )


def test_check_plan_catches_live_buffers_that_overlap(chain_plan):
    graph, shapes, dtypes, plan, v = chain_plan
    a2 = plan.index_of(v["a2"])
    broken = replace_buffer(plan, a2, offset=plan.buffer_of(v["b"]).offset)
    with pytest.raises(CompileError, match=r"both live at step \d \('a2'\) and overlap"):
        check_plan(broken, graph, shapes=shapes, dtypes=dtypes)


def test_check_plan_catches_a_temporary_over_a_pinned_buffer(chain_plan):
    graph, shapes, dtypes, plan, v = chain_plan
    broken = replace_buffer(plan, plan.index_of(v["a2"]), offset=0)
    with pytest.raises(CompileError, match=r"\(input x, \[0, 64\)\).*overlap"):
        check_plan(broken, graph, shapes=shapes, dtypes=dtypes)


def test_check_plan_catches_a_shared_pinned_buffer(chain_plan):
    graph, shapes, dtypes, plan, v = chain_plan
    broken = remap(plan, v["a2"], plan.index_of(v["x"]))
    with pytest.raises(CompileError, match=r"pinned buffer 0 \(input x\) is shared by \['x', 'a2_output'\]"):
        check_plan(broken, graph, shapes=shapes, dtypes=dtypes)


def test_check_plan_catches_sharing_that_is_not_in_place(chain_plan):
    graph, shapes, dtypes, plan, v = chain_plan
    broken = remap(plan, v["a2"], plan.index_of(v["b"]))  # b is still live when a2 is written
    with pytest.raises(CompileError, match="share a buffer, but 'a2' .* in place"):
        check_plan(broken, graph, shapes=shapes, dtypes=dtypes)


def test_check_plan_catches_wrong_sizes_misalignment_and_missing_values(chain_plan):
    graph, shapes, dtypes, plan, v = chain_plan
    a2 = plan.index_of(v["a2"])
    with pytest.raises(CompileError, match=r"a2_output \(float32\[4, 4\]\) needs 64 bytes; its buffer \d+ "):
        check_plan(replace_buffer(plan, a2, nbytes=32), graph, shapes=shapes, dtypes=dtypes)
    with pytest.raises(CompileError, match="is not aligned to 64"):
        check_plan(
            replace_buffer(plan, a2, offset=plan.buffers[a2].offset + 4), graph, shapes=shapes, dtypes=dtypes
        )
    with pytest.raises(CompileError, match="outside the"):
        check_plan(dataclasses.replace(plan, arena_bytes=64), graph, shapes=shapes, dtypes=dtypes)
    dropped = dataclasses.replace(
        plan, value_to_buffer=tuple(p for p in plan.value_to_buffer if p[0] != v["a2"])
    )
    with pytest.raises(CompileError, match=r"none for \['a2_output'\]"):
        check_plan(dropped, graph, shapes=shapes, dtypes=dtypes)
    with pytest.raises(CompileError, match="hold no value"):
        check_plan(
            dataclasses.replace(dropped, value_to_buffer=dropped.value_to_buffer + ((v["a2"], 0),)),
            graph,
            shapes=shapes,
            dtypes=dtypes,
        )


def test_check_plan_catches_a_graph_output_in_a_temporary(chain_plan):
    graph, shapes, dtypes, plan, v = chain_plan
    broken = replace_buffer(plan, plan.index_of(v["out"]), role="temporary")
    with pytest.raises(
        CompileError, match="out_output is a variable or graph output but its buffer is temporary"
    ):
        check_plan(broken, graph, shapes=shapes, dtypes=dtypes)


# ---------------------------------------------------------------------------------------------
# random DAGs

FLOATS = ("float16", "float32", "float64")


def _unary(draw, pool, a, name):
    value, shape, dtype = pool[a]
    kind = draw(st.sampled_from(["relu", "tanh", "sigmoid", "negative", "_mul_scalar"]))
    attrs = {"scalar": "0.5"} if kind == "_mul_scalar" else {}
    return [(Node(kind, (value,), attrs, name).output(), shape, dtype)]


def _binary(draw, pool, a, name):
    value, shape, dtype = pool[a]
    peers = [p for p in pool if p[1] == shape and p[2] == dtype]
    other = draw(st.sampled_from(peers))[0]
    kind = draw(st.sampled_from(["elemwise_add", "elemwise_mul", "_maximum"]))
    return [(Node(kind, (value, other), {}, name).output(), shape, dtype)]


def _broadcast(draw, pool, a, name):
    value, shape, dtype = pool[a]
    columns = [p for p in pool if p[1] == (shape[0], 1) and p[2] == dtype] or [pool[a]]
    other = draw(st.sampled_from(columns))[0]
    return [(Node("broadcast_add", (other, value), {}, name).output(), shape, dtype)]


def _reduce(draw, pool, a, name):
    value, shape, dtype = pool[a]
    return [(Node("sum", (value,), {"axis": "1", "keepdims": "True"}, name).output(), (shape[0], 1), dtype)]


def _cast(draw, pool, a, name):
    value, shape, _ = pool[a]
    dtype = draw(st.sampled_from(FLOATS))
    return [(Node("Cast", (value,), {"dtype": dtype}, name).output(), shape, dtype)]


def _reshape(draw, pool, a, name):
    value, shape, dtype = pool[a]
    if shape[1] == 0:  # Reshape's code 0 means "copy a dim"
        return _unary(draw, pool, a, name)
    return [(Node("Reshape", (value,), {"shape": f"(-1, {shape[1]})"}, name).output(), shape, dtype)]


def _transpose(draw, pool, a, name):
    value, shape, dtype = pool[a]
    return [(Node("transpose", (value,), {}, name).output(), shape[::-1], dtype)]


def _split(draw, pool, a, name):
    value, shape, dtype = pool[a]
    if shape[1] % 2:
        return _unary(draw, pool, a, name)
    node = Node("SliceChannel", (value,), {"num_outputs": "2", "axis": "1"}, name)
    return [(node.output(i), (shape[0], shape[1] // 2), dtype) for i in range(2)]


STEPS = (_unary, _unary, _binary, _binary, _broadcast, _reduce, _cast, _reshape, _transpose, _split)


@st.composite
def random_dags(draw):
    """A DAG over 1-3 variables whose steps read mostly recent values, sometimes any earlier one (so
    fan-out is random); its outputs are the values nothing reads, plus a few drawn at random."""
    inputs = [variable(f"x{i}") for i in range(draw(st.integers(1, 3)))]
    given = {v.name: (draw(st.integers(0, 3)), draw(st.sampled_from([1, 2, 4, 6]))) for v in inputs}
    pool = [(v.output(), given[v.name], "float32") for v in inputs]
    for step in range(draw(st.integers(2, 16))):
        kind = draw(st.sampled_from(STEPS))
        back = draw(st.one_of(st.integers(0, 2), st.integers(0, len(pool) - 1)))
        pool += kind(draw, pool, max(len(pool) - 1 - back, 0), f"n{step}")
    read = {v for value, _, _ in pool for v in value.node.inputs}
    sinks = [
        value for value, _, _ in pool if value not in read and value.index == 0 and not value.node.is_variable
    ]
    extra = [pool[i][0] for i in draw(st.lists(st.integers(0, len(pool) - 1), max_size=3))]
    graph = Graph(sinks + extra)
    in_graph = {Value(n, i) for n in graph.nodes for i in range(n.num_outputs)}
    pins = {v.output(): draw(st.sampled_from(["input", "parameter", "state"])) for v in inputs}
    if draw(st.booleans()):
        pins[pool[draw(st.integers(0, len(pool) - 1))][0]] = "state"
    pins = {v: role for v, role in pins.items() if v in in_graph}
    return graph, given, pins, draw(st.integers(0, 2**16)), draw(st.sampled_from([1, 4, 64, 256]))


def random_topological_order(graph: Graph, seed: int) -> list[Node]:
    chooser, done, order = random.Random(seed), set(), []
    waiting = list(graph.nodes)
    while waiting:
        ready = [n for n in waiting if all(id(v.node) in done for v in n.inputs)]
        node = chooser.choice(ready)
        waiting.remove(node)
        done.add(id(node))
        order.append(node)
    return order


@settings(max_examples=150, deadline=None)
@given(case=random_dags())
def test_random_dags_get_valid_plans(case):
    graph, given_shapes, pins, seed, alignment = case
    shapes, dtypes = typed(graph, given_shapes)
    order = random_topological_order(graph, seed)
    plan = plan_memory(graph, shapes, dtypes, pins, order=order, alignment=alignment)
    check_plan(plan, graph, order, shapes=shapes, dtypes=dtypes)
    assert plan.arena_bytes <= plan.naive_bytes
    assert all(b.offset % alignment == 0 for b in plan.buffers)
    assert all(plan.buffer_of(v).role == role for v, role in pins.items())
    feeds = {
        name: np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)
        for name, shape in given_shapes.items()
    }
    run_in_arena(graph, plan, shapes, dtypes, feeds, order)


def test_the_arena_takes_the_smallest_hole_that_fits_and_merges_freed_ones():
    from ember.compiler.passes.plan_memory import _Arena

    arena = _Arena(base=64)
    a, b, c, d = (arena.allocate(size) for size in (256, 64, 128, 64))
    assert (a, b, c, d) == (64, 320, 384, 512)
    arena.release(a, 256)
    arena.release(c, 128)
    assert arena.allocate(64) == c  # the 128-byte hole, not the 256-byte one; the rest stays free
    assert arena.free == [(64, 256), (448, 64)]
    arena.release(b, 64)  # merges with the hole before it
    assert arena.free == [(64, 320), (448, 64)]
    arena.release(d, 64)  # at the top: the top comes down to the last live block
    assert (arena.top, arena.peak, arena.free) == (448, 576, [(64, 320)])


def test_plan_as_json_goes_into_an_artifact_manifest():
    import json

    from ember.compiler import Graph, Node, variable
    from ember.compiler.passes import infer_shapes, infer_types, plan_memory

    x = variable("x")
    graph = Graph([Node("Activation", (x.output(),), {"act_type": "relu"}, "act").output()])
    plan = plan_memory(graph, infer_shapes(graph, {"x": (2, 3)}), infer_types(graph, {"x": "float32"}))
    data = json.loads(json.dumps(plan.to_json()))
    assert data["arena_bytes"] == plan.arena_bytes and data["alignment"] == 64
    assert [(b["role"], b["shape"], b["dtype"], b["nbytes"]) for b in data["buffers"]] == [
        ("input", [2, 3], "float32", 24), ("output", [2, 3], "float32", 24),
    ]

"""Typed graphs (compiler/passes/typed.py): types are inferred once and then carried through the passes.

The oracle is inference itself: whatever the passes carry must equal what `infer_all_types` decides
afresh from the same variables.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember.compiler import Graph, TensorType
from ember.compiler.build import build_program
from ember.compiler.passes import fuse, simplify
from ember.compiler.passes.autodiff import gradients
from ember.compiler.passes.plan_memory import plan_kernel_memory
from ember.compiler.passes.typed import check_types, complete_types, infer_all_types, typed_graph
from ember.runtime.errors import CompileError

x, w = mx.sym.Variable("x"), mx.sym.Variable("w")

# Graphs each simplification rewrites: identities, reassociated scalars, folded constants, common
# subexpressions, reshape chains, casts, and a dtype change through the graph.
SIMPLIFIED = {
    "times one": (x * 1 + 0, {"x": (3, 4)}, {}),
    "scalar chain": ((x * 2) * 3 + 1 + 2, {"x": (5,)}, {}),
    "folded constant": (x + mx.sym.zeros((2, 3)) * 5, {"x": (2, 3)}, {}),
    "common subexpression": (mx.sym.exp(x) + mx.sym.exp(x), {"x": (4,)}, {}),
    "reshape of reshape": (mx.sym.reshape(mx.sym.reshape(x, shape=(6, 2)), shape=(3, 4)), {"x": (2, 6)}, {}),
    "cast to own dtype": (mx.sym.Cast(mx.sym.Cast(x, dtype="float64"), dtype="float64") * 1, {"x": (3,)}, {}),
    "integer data": (mx.sym.relu(x * 1) + x, {"x": (4,)}, {"x": "int32"}),
    "dense layer": (
        mx.sym.FullyConnected(x, w, num_hidden=3, no_bias=True) * 1, {"x": (2, 5), "w": (3, 5)}, {}
    ),
}


@pytest.mark.parametrize("name", list(SIMPLIFIED))
def test_simplify_carries_exactly_the_types_inference_gives(name):
    symbol, shapes, dtypes = SIMPLIFIED[name]
    graph = typed_graph(symbol._graph, shapes, dtypes)
    simple = simplify(graph)
    assert simple.types is not None
    fresh = infer_all_types(Graph(simple.outputs), shapes, dtypes)
    assert dict(simple.types) == fresh
    assert len(simple.nodes) <= len(graph.nodes)


def test_a_backward_graph_is_typed_from_the_forward_types_alone():
    """Gradient nodes are new; complete_types types them from their inputs, as inference would."""
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, w, num_hidden=3, no_bias=True), name="softmax")
    forward = typed_graph(net._graph, {"x": (4, 5), "w": (3, 5), "softmax_label": (4,)})
    wrt = [v.output() for v in forward.variables if v.name == "w"]
    shapes = {v: t.shape for v, t in forward.types.items()}
    grads = gradients(forward, shapes, wrt, [None])
    step = Graph((*forward.outputs, *grads))
    types = complete_types(step, forward.types)
    names = {v.name: v.output() for v in step.variables}
    fresh = infer_all_types(step, {n: types[v].shape for n, v in names.items()}, {})
    assert types == fresh
    assert types[grads[0]] == TensorType((3, 5), "float32")


def test_check_types_names_a_wrongly_carried_type():
    graph = typed_graph((mx.sym.exp(x) * 2)._graph, {"x": (3,)})
    exp = next(v for v in graph.types if v.node.op == "exp")
    wrong = graph.with_types({**graph.types, exp: TensorType((3,), "float64")})
    check_types(graph, "here")  # the right types pass
    with pytest.raises(CompileError, match=r"after a pass: .* carries the type .*float64.*inference gives"):
        check_types(wrong, "after a pass")


def test_build_program_in_debug_mode_checks_the_carried_types(monkeypatch):
    checked = []
    monkeypatch.setattr("ember.compiler.build.check_types", lambda graph, when: checked.append(when))
    build_program(SIMPLIFIED["scalar chain"][0]._graph, {"x": (5,)}, debug=1)
    build_program(SIMPLIFIED["scalar chain"][0]._graph, {"x": (5,)}, debug=0)
    assert checked == ["after simplification"]


def test_a_typed_graph_is_used_as_it_is():
    graph = typed_graph(mx.sym.exp(x)._graph, {"x": (2,)})
    assert typed_graph(graph, {"x": (7,)}) is graph  # complete types win over facts by name
    built = build_program(graph)
    assert [list(b.shape) for n, b in built.program.buffers.items() if b.role == "output"] == [[2]]


def test_passes_that_need_types_say_so_for_an_untyped_graph():
    graph = mx.sym.exp(x)._graph
    with pytest.raises(CompileError, match="fusion needs a typed graph"):
        fuse(graph)
    with pytest.raises(CompileError, match="memory planning needs a typed graph"):
        plan_kernel_memory(graph, [])


def test_compiled_results_do_not_depend_on_where_the_types_came_from():
    """A typed graph and the same graph with facts by name compile to the same program."""
    symbol, shapes, dtypes = SIMPLIFIED["dense layer"]
    by_name = build_program(symbol._graph, shapes, dtypes)
    typed = build_program(typed_graph(symbol._graph, shapes, dtypes))
    assert str(by_name.program) == str(typed.program)
    assert np.all([t.dtype == "float32" for t in typed.types.values()])

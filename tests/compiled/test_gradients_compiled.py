"""Gradients through compiled programs: for every differentiable op, the backward graph autodiff
builds (with given head gradients) compiles to native code that computes what the reference
interpreter computes from the same graph."""

from __future__ import annotations

import numpy as np
import pytest

from ember.compiler import Graph, RefContext, evaluate, variable
from ember.compiler.ops import grad_rules
from ember.compiler.passes import infer_shapes
from ember.compiler.passes.autodiff import gradients

from ..ops.harness import input_dtypes, input_shapes
from ..ops.test_op_registry import ALL_CASES
from .harness import assert_close, compile_graph
from .test_ops_compiled import _deterministic

CASES_PER_OP = 2


def _differentiable(case) -> bool:
    rule = grad_rules.get(case.op)
    return (
        rule is not None
        and rule.__name__ not in ("_no_gradient", "_non_differentiable")
        and _deterministic(case)
    )


def _float_inputs(case) -> bool:
    return all(not isinstance(i, np.ndarray) or i.dtype.kind == "f" for i in case.inputs)


def _cases():
    chosen, per_op = [], {}
    for case in ALL_CASES:
        if _differentiable(case) and per_op.get(case.op, 0) < CASES_PER_OP:
            per_op[case.op] = per_op.get(case.op, 0) + 1
            chosen.append(case)
    return chosen


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.id)
def test_compiled_gradients_match_the_reference(case):
    rng = np.random.default_rng(0)
    graph, node = case.graph()
    arrays = case.arrays(rng)
    shapes, dtypes = input_shapes(case), input_dtypes(case, arrays)
    value_shapes = infer_shapes(graph, shapes)
    heads = [variable(f"head{i}") for i in range(len(graph.outputs))]
    wrt = [v for v, a in zip(node.inputs, arrays) if a.dtype.kind == "f"]
    grads = [g for g in gradients(graph, value_shapes, wrt, [h.output() for h in heads]) if g is not None]
    if not grads:
        pytest.skip(f"{case.op}: no gradient reaches a float input in this case")
    step = Graph(list(graph.outputs) + grads)
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    for head, value in zip(heads, graph.outputs):
        out_dtype = evaluate(graph, feeds, RefContext(case.is_train))[value].dtype
        feeds[head.name] = rng.standard_normal(value_shapes[value]).astype(out_dtype)
        shapes[head.name], dtypes[head.name] = tuple(value_shapes[value]), out_dtype.name
    want = evaluate(step, feeds, RefContext(case.is_train))
    exe, _ = compile_graph(step, shapes, dtypes, is_train=case.is_train)
    got = exe(**{k: v for k, v in feeds.items() if k in exe.input_names})
    for position, value in enumerate(step.outputs):
        assert_close(got[position], want[value], what=f"{case.id} value {position}")

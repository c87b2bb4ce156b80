"""Every op is complete in the registry and its shape/type rules agree with its NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from ember.compiler import RefContext, evaluate
from ember.compiler.ops import SCHEMAS, missing_entries
from ember.compiler.passes import infer_shapes, infer_types

from .cases_more import CASES as MORE_CASES
from .cases_nn import CASES as NN_CASES
from .cases_nn_backward import CASES as NN_BACKWARD_CASES
from .cases_tensor import CASES as TENSOR_CASES
from .cases_tensor_backward import CASES as TENSOR_BACKWARD_CASES
from .harness import input_dtypes, input_shapes

ALL_CASES = NN_CASES + TENSOR_CASES + MORE_CASES + NN_BACKWARD_CASES + TENSOR_BACKWARD_CASES


def test_every_op_has_every_required_rule():
    assert missing_entries() == {}


def test_every_op_has_cases_with_size_one_and_odd_dims():
    covered: dict[str, set[str]] = {}
    for case in ALL_CASES:
        dims = [d for item in case.inputs for d in (item.shape if isinstance(item, np.ndarray) else tuple(item))]
        if not case.inputs:  # array creation: the dims come from attributes, so count the output's
            graph, _ = case.graph()
            dims = [d for shape in infer_shapes(graph, {}).values() for d in shape]
        info = covered.setdefault(case.op, set())
        if 1 in dims:
            info.add("one")
        if any(d > 1 and d % 2 for d in dims):
            info.add("odd")
    lacking = {op: sorted({"one", "odd"} - covered.get(op, set())) for op in SCHEMAS}
    assert {op: v for op, v in lacking.items() if v} == {}


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_inferred_shapes_and_types_match_reference(case):
    rng = np.random.default_rng(0)
    graph, node = case.graph()
    arrays = case.arrays(rng)
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    values = evaluate(graph, feeds, RefContext(case.is_train, rng))
    shapes = infer_shapes(graph, input_shapes(case))
    dtypes = infer_types(graph, input_dtypes(case, arrays))
    for value in graph.outputs:
        out = values[value]
        assert isinstance(out, np.ndarray), f"output {value.index} is {type(out)}"
        assert shapes[value] == out.shape, f"output {value.index}"
        assert dtypes[value] == out.dtype.name, f"output {value.index}"

"""Every op compiled to native code matches the reference interpreter on the registry's test cases
(shapes with size-1 and odd dims, broadcasting, every dtype the cases use), hidden outputs included."""

from __future__ import annotations

import numpy as np
import pytest

from ember.compiler import RefContext, evaluate

from ..ops.harness import input_dtypes, input_shapes
from ..ops.test_op_registry import ALL_CASES
from .harness import assert_close, compile_graph

# Ops whose outputs are random: compared by their own properties in test_random_ops.py.
RANDOM_IN_TRAINING = {"Dropout"}


def _deterministic(case) -> bool:
    return not (case.is_train and case.op in RANDOM_IN_TRAINING)


@pytest.mark.parametrize("case", [c for c in ALL_CASES if _deterministic(c)], ids=lambda c: c.id)
def test_compiled_op_matches_reference(case):
    rng = np.random.default_rng(0)
    graph, node = case.graph()
    arrays = case.arrays(rng)
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    want = evaluate(graph, feeds, RefContext(case.is_train, np.random.default_rng(0)))
    exe, _ = compile_graph(graph, input_shapes(case), input_dtypes(case, arrays), is_train=case.is_train)
    got = exe(**feeds)
    for position, value in enumerate(graph.outputs):
        assert_close(got[position], want[value], what=f"{case.id} output {position}")

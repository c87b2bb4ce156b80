"""Every op compiled to native code matches the reference interpreter on the registry's test cases
(shapes with size-1 and odd dims, broadcasting, every dtype the cases use), hidden outputs included."""

from __future__ import annotations

import numpy as np
import pytest

from ..ops.test_op_registry import ALL_CASES
from .harness import check_op_case, compile_graph

# Cases whose outputs are random (the compiled stream differs from NumPy's): test_random_ops.py checks
# them by their properties. Dropout draws in training, or always with mode="always"; rrelu in training.
RANDOM_CASES = {
    "Dropout": lambda case: case.is_train or case.attrs.get("mode") == "always",
    "LeakyReLU": lambda case: case.is_train and case.attrs.get("act_type") == "rrelu",
}


def _deterministic(case) -> bool:
    return not RANDOM_CASES.get(case.op, lambda case: False)(case)


@pytest.mark.parametrize("case", [c for c in ALL_CASES if _deterministic(c)], ids=lambda c: c.id)
def test_compiled_op_matches_reference(case):
    check_op_case(case)


@pytest.mark.parametrize("target", ["int8", "uint8", "int32", "int64", "bool"])
def test_float16_converts_to_integers_as_numpy_does(target):
    from ember.compiler import Graph, Node, variable

    x = np.array([0.0, -2.5, 3.75, 65504.0, -65504.0, np.inf, -np.inf, np.nan], np.float16)
    node = Node("Cast", (variable("data").output(),), {"dtype": target}, "cast")
    graph = Graph([node.output()])
    exe, _ = compile_graph(graph, {"data": x.shape}, {"data": "float16"})
    with np.errstate(invalid="ignore"):
        want = (
            x.astype(np.float32).astype(np.int64 if target == "int64" else target)
            if target != "bool"
            else x != 0
        )
    if target in ("int8", "uint8", "int32"):  # x86 converts through 32 bits: NaN and overflow give INT32_MIN
        want = np.where(
            np.isfinite(x) & (np.abs(x.astype(np.float64)) < 2**31), x.astype(np.float64), -(2**31)
        )
        want = want.astype(np.int64).astype(target)
    assert exe(data=x)[0].tolist() == want.tolist()


@pytest.mark.parametrize("op", ["broadcast_div", "broadcast_mod", "elemwise_div", "_mod"])
@pytest.mark.parametrize("dtype", ["int32", "int64", "int8"])
def test_integer_division_by_zero_and_minus_one_never_traps(op, dtype):
    from ember.compiler import Graph, Node, run, variable

    low = np.iinfo(dtype).min
    lhs = np.array([low, low, 7, -7, 5, 0], dtype)
    rhs = np.array([-1, 0, -1, 2, 0, -1], dtype)
    node = Node(op, (variable("lhs").output(), variable("rhs").output()), {}, "node")
    graph = Graph([node.output()])
    exe, _ = compile_graph(graph, {"lhs": (6,), "rhs": (6,)}, {"lhs": dtype, "rhs": dtype})
    assert exe(lhs=lhs, rhs=rhs)[0].tolist() == run(graph, {"lhs": lhs, "rhs": rhs})[0].tolist()

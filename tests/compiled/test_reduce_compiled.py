"""Compiled reductions and orderings match the reference interpreter beyond the registry's cases.

Sizes above and not multiples of 16 (37, 130), size-1 dims, every axis/keepdims/exclude form, every
data dtype the references accept, wrapping integer sums and products, NaNs, infinities, signed zeros
and ties (argmax/argmin take the first; sort, argsort and topk keep ties in input order and put NaN
last ascending, first descending), every ret_typ and index dtype of topk, training-sized shapes, and
reductions fused with elementwise ops before and after them.

Float32 sums with heavy cancellation are avoided on purpose where the reference's own rounding
(NumPy sums float32 pairwise along the last axis but row by row along others) exceeds the tolerance:
the compiled sum accumulates in float64, so it differs from NumPy by NumPy's own error.
"""

from __future__ import annotations

import numpy as np
import pytest

from ember.compiler import Graph, Node, RefContext, Value, evaluate, variable
from ember.compiler.ops.reduce import REDUCERS

from ..ops.harness import OpCase, input_dtypes, input_shapes
from .harness import assert_close, compile_graph

RNG = np.random.default_rng(7)


def normal(*shape, dtype="float32") -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def uniform(*shape, low=0.0, high=1.0, dtype="float32") -> np.ndarray:
    return RNG.uniform(low, high, shape).astype(dtype)


def integers(*shape, low=-5, high=6, dtype="int32") -> np.ndarray:
    return RNG.integers(low, high, shape).astype(dtype)


def with_specials(x: np.ndarray, every: int = 7) -> np.ndarray:
    """`x` with NaN, +-inf and +-0 sprinkled in (positions spread over every axis)."""
    x = x.copy()
    flat = x.reshape(-1)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, np.nan]
    for k, position in enumerate(range(3, flat.size, every)):
        flat[position] = specials[k % len(specials)]
    return x


def ties(*shape, dtype="float32") -> np.ndarray:
    """Few distinct values, so most elements tie with others."""
    return RNG.integers(-2, 3, shape).astype(dtype)


def check(op: str, data, attrs: dict | None = None) -> None:
    """The one-node graph of `op` on `data` (array or list of arrays) compiled vs the reference."""
    case = OpCase(op, data if isinstance(data, list) else [data], attrs or {})
    graph, node = case.graph()
    arrays = case.arrays(np.random.default_rng(0))
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    want = evaluate(graph, feeds, RefContext(False, np.random.default_rng(0)))
    exe, _ = compile_graph(graph, input_shapes(case), input_dtypes(case, arrays))
    got = exe(**feeds)
    for position, value in enumerate(graph.outputs):
        assert_close(got[position], want[value], what=f"{case.id} output {position}")


def _id(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)}"
    return str(value)


# -- sum, mean, prod, nansum, nanprod, max, min ---------------------------------------------------------

AXIS_FORMS = [
    {},
    {"keepdims": True},
    {"axis": 0},
    {"axis": -1, "keepdims": True},
    {"axis": 1},
    {"axis": (0, 2)},
    {"axis": (0, 2), "keepdims": True},
    {"axis": (1, 2)},
    {"axis": 1, "exclude": True},
    {"axis": (0, 1), "exclude": True, "keepdims": True},
    {"axis": ()},
]


@pytest.mark.parametrize("attrs", AXIS_FORMS, ids=_id)
@pytest.mark.parametrize("op", list(REDUCERS))
def test_reduce_axis_forms(op, attrs):
    data = uniform(3, 37, 5, low=0.5, high=1.5) if "prod" in op else normal(3, 37, 5)
    check(op, data, attrs)


@pytest.mark.parametrize("op", list(REDUCERS))
@pytest.mark.parametrize(
    "data",
    [uniform(130), uniform(1), uniform(1, 1, 1), uniform(2, 1, 130), uniform(130, 1, 3), uniform(17, 33)],
    ids=_id,
)
def test_reduce_sizes(op, data):
    for attrs in ({}, {"axis": -1}, {"axis": 0, "keepdims": True}):
        check(op, data + 0.5 if "prod" in op else data, attrs)


@pytest.mark.parametrize("op", list(REDUCERS))
@pytest.mark.parametrize(
    "data",
    [
        integers(4, 37),
        integers(4, 37, low=-100, high=100, dtype="int8"),  # sums and products wrap around
        integers(4, 37, low=0, high=255, dtype="uint8"),
        integers(4, 37, low=-(2**40), high=2**40, dtype="int64"),
        integers(4, 37, low=-(2**30), high=2**30, dtype="int32"),
        normal(4, 37, dtype="float64"),
        uniform(4, 37, dtype="float16"),
        integers(4, 37, low=0, high=2, dtype="bool"),
        np.ones((4, 37), dtype="bool"),
    ],
    ids=_id,
)
def test_reduce_dtypes(op, data):
    for attrs in ({}, {"axis": 0}, {"axis": 1, "keepdims": True}):
        check(op, data, attrs)


@pytest.mark.parametrize("op", list(REDUCERS))
def test_reduce_nan_and_inf(op):
    data = with_specials(uniform(5, 37, low=0.5, high=1.5))
    for attrs in ({}, {"axis": 0}, {"axis": 1}):
        check(op, data, attrs)
    check(op, np.full((3, 4), np.nan, dtype="float32"), {"axis": 1})


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "nansum"])
@pytest.mark.parametrize("attrs", [{}, {"axis": 0}, {"axis": 1}, {"axis": 1, "keepdims": True}], ids=_id)
def test_reduce_training_shapes(op, attrs):
    check(op, uniform(100, 784), attrs)
    check(op, normal(100, 10), attrs)


# -- norm -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ord_", [1, 2])
@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"keepdims": True},
        {"axis": 0},
        {"axis": -1, "keepdims": True},
        {"axis": (0, 2)},
        {"axis": (1, 2), "keepdims": True},
        {"axis": 1, "out_dtype": "float64"},
        {"axis": 2, "out_dtype": "float16"},
        {"axis": (0, 1), "out_dtype": "int32"},
        {"out_dtype": "int64"},
        {"axis": 1, "out_dtype": "int8"},
    ],
    ids=_id,
)
def test_norm(ord_, attrs):
    check("norm", normal(3, 37, 5) * 3, {"ord": ord_, **attrs})


@pytest.mark.parametrize(
    "data",
    [
        uniform(130),
        uniform(1),
        integers(4, 37),
        integers(4, 37, low=-100, high=100, dtype="int8"),
        normal(2, 1, 130, dtype="float64"),
        uniform(4, 37, low=-1, dtype="float16"),
        with_specials(normal(5, 37)),
        uniform(100, 784),
    ],
    ids=_id,
)
def test_norm_data(data):
    for attrs in ({}, {"axis": 0}, {"axis": -1}, {"ord": 1, "axis": -1, "keepdims": True}):
        check("norm", data, attrs)


# -- argmax, argmin --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize(
    "attrs",
    [
        {"keepdims": True},
        {"axis": 0},
        {"axis": 1},
        {"axis": -1, "keepdims": True},
    ],
    ids=_id,
)
@pytest.mark.parametrize(
    "data",
    [
        normal(3, 37, 5),
        ties(3, 37, 5),  # the first of equal extremes
        with_specials(normal(3, 37, 5), every=11),  # the first NaN wins
        np.full((3, 37, 5), -np.inf, dtype="float32"),
        integers(3, 37, 5, dtype="int8"),
        integers(3, 37, 5, low=0, high=3, dtype="uint8"),
        integers(3, 37, 5, low=-(2**40), high=2**40, dtype="int64"),
        ties(3, 37, 5, dtype="float64"),
        ties(3, 37, 5, dtype="float16"),
        integers(3, 37, 5, low=0, high=2, dtype="bool"),
    ],
    ids=_id,
)
def test_search(op, attrs, data):
    check(op, data, attrs)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize(
    "data",
    [
        uniform(130),
        uniform(1),
        uniform(1, 1, 1),
        integers(2, 130, dtype="int8"),
        uniform(100, 784),
        uniform(100, 10),
    ],
    ids=_id,
)
def test_search_sizes(op, data):
    for attrs in ({}, {"axis": 0}, {"axis": -1}, {"axis": -1, "keepdims": True}):
        check(op, data, attrs)  # int8 data: indices above 127 wrap as the reference's cast does


# -- sort, argsort, topk -----------------------------------------------------------------------------------

ORDER_DATA = {
    "normal": normal(3, 37, 5),
    "ties": ties(3, 37, 5),
    "specials": with_specials(ties(3, 37, 5), every=5),  # NaNs, infinities and signed zeros among ties
    "int8": integers(3, 37, 5, dtype="int8"),
    "uint8": integers(3, 37, 5, low=0, high=4, dtype="uint8"),
    "int64": integers(3, 37, 5, low=-(2**40), high=2**40, dtype="int64"),
    "float64_specials": with_specials(ties(3, 37, 5, dtype="float64"), every=3),
}
ORDER_AXES = [{}, {"axis": 0}, {"axis": 1}, {"axis": -1}, {"axis": None}]


@pytest.mark.parametrize("is_ascend", [True, False])
@pytest.mark.parametrize("axis", ORDER_AXES, ids=_id)
@pytest.mark.parametrize("data", list(ORDER_DATA))
def test_sort(data, axis, is_ascend):
    check("sort", ORDER_DATA[data], {**axis, "is_ascend": is_ascend})


@pytest.mark.parametrize("is_ascend", [True, False])
@pytest.mark.parametrize("axis", ORDER_AXES, ids=_id)
@pytest.mark.parametrize("data", list(ORDER_DATA))
def test_argsort(data, axis, is_ascend):
    check("argsort", ORDER_DATA[data], {**axis, "is_ascend": is_ascend, "dtype": "int32"})


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "float16", "float32", "float64"])
def test_argsort_index_dtypes(dtype):
    check("argsort", ties(3, 130), {"dtype": dtype})
    check("argsort", ties(3, 130), {"axis": 0, "is_ascend": False, "dtype": dtype})


@pytest.mark.parametrize("ret_typ", ["value", "indices", "both", "mask"])
@pytest.mark.parametrize("is_ascend", [True, False])
@pytest.mark.parametrize(
    "shape_attrs",
    [
        {"k": 1},
        {"k": 5},
        {"k": 37},
        {"k": -1},
        {"axis": 0, "k": 2},
        {"axis": 2, "k": 4},
        {"axis": None, "k": 9},
    ],
    ids=_id,
)
@pytest.mark.parametrize("data", ["specials", "int8"])
def test_topk(data, shape_attrs, is_ascend, ret_typ):
    attrs = {"axis": 1, **shape_attrs, "is_ascend": is_ascend, "ret_typ": ret_typ}
    check("topk", ORDER_DATA[data], attrs)


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "float16", "float32", "float64"])
def test_topk_index_dtypes(dtype):
    check("topk", ties(4, 37), {"k": 3, "ret_typ": "both", "dtype": dtype})
    check("topk", ties(4, 37), {"k": 2, "ret_typ": "indices", "axis": 0, "dtype": dtype})


@pytest.mark.parametrize(
    "data", [uniform(130), uniform(1), uniform(1, 1), normal(100, 10), uniform(32, 130)], ids=_id
)
def test_order_sizes(data):
    check("sort", data, {})
    check("argsort", data, {"axis": 0, "is_ascend": False})
    check("topk", data, {"k": 1, "ret_typ": "both"})
    check("topk", data, {"k": 1, "axis": 0, "ret_typ": "mask"})


# -- fused with elementwise ops ------------------------------------------------------------------------------


def _chain(data: np.ndarray, *ops: tuple[str, dict]) -> None:
    """`ops` applied one after another to `data`, compiled as one graph vs the reference."""
    value = variable("data").output()
    for k, (op, attrs) in enumerate(ops):
        node = Node(op, (value,), {key: str(v) for key, v in attrs.items()}, f"n{k}")
        value = Value(node, 0)
    graph = Graph([value])
    want = evaluate(graph, {"data": data}, RefContext(False, np.random.default_rng(0)))[value]
    exe, _ = compile_graph(graph, {"data": data.shape}, {"data": data.dtype.name})
    assert_close(exe(data=data)[0], want, what=str(ops))


def test_fused_prologue_and_epilogue():
    _chain(normal(100, 784), ("square", {}), ("mean", {"axis": 1}), ("sqrt", {}))
    _chain(normal(37, 5), ("exp", {}), ("sum", {"axis": 0, "keepdims": True}), ("log", {}))
    _chain(normal(3, 37, 5), ("abs", {}), ("max", {"axis": (0, 2)}), ("_mul_scalar", {"scalar": 2.0}))
    _chain(normal(3, 37, 5), ("negative", {}), ("argmax", {"axis": 1}))
    _chain(normal(3, 37, 5), ("relu", {}), ("norm", {"axis": -1}))

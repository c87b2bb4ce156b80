"""Compiled Pooling, BatchNorm and Embedding (and their backward ops) match the reference interpreter
beyond the registry's cases: sizes above and not multiples of 16, size 1, every parameter combination
the references implement (pool types, conventions, padding counts, layouts, training modes, axes,
index dtypes), edge cases (ties, windows wholly in padding, repeated and out-of-range indices),
training-sized shapes, and one training step through the executor (compiled vs reference)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import ember as mx
from ember.compiler import RefContext, evaluate
from ember.test_utils import _bind

from ..ops.harness import OpCase, input_dtypes, input_shapes
from .harness import assert_close, compile_graph


def reference_outputs(case: OpCase, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Every output of `case`'s one-node graph (hidden ones too) by the reference interpreter."""
    graph, node = case.graph()
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    want = evaluate(graph, feeds, RefContext(case.is_train, np.random.default_rng(0)))
    return [want[v] for v in graph.outputs]


def check(case: OpCase) -> None:
    """The compiled graph of `case` gives every output the reference gives."""
    graph, node = case.graph()
    arrays = case.arrays(np.random.default_rng(1))
    want = reference_outputs(case, arrays)
    exe, _ = compile_graph(graph, input_shapes(case), input_dtypes(case, arrays), is_train=case.is_train)
    got = exe(**{v.node.name: a for v, a in zip(node.inputs, arrays)})
    for position, expected in enumerate(want):
        assert_close(got[position], expected, what=f"{case.id} output {position}")


def normal(*shape, dtype=np.float32, seed: int = 0, offset: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) + offset).astype(dtype)


def with_zeros(a: np.ndarray, every: int = 5) -> np.ndarray:
    """`a` with every `every`-th element 0 (gradients that are exactly 0 take the reference's special path)."""
    a = a.copy()
    a.reshape(-1)[::every] = 0
    return a


# =================================================================================================
# Pooling

POOL_KINDS = [
    {"pool_type": "max"},
    {"pool_type": "sum"},
    {"pool_type": "avg"},
    {"pool_type": "avg", "count_include_pad": False},
    {"pool_type": "lp", "p_value": 1},
    {"pool_type": "lp", "p_value": 2},
    {"pool_type": "lp", "p_value": 3},
]
# spatial sizes (channel-first), kernel, stride, pad, channel-last layout
POOL_GEOMETRIES = [
    ((37,), (3,), (2,), (1,), "NWC"),
    ((37, 19), (3, 2), (2, 3), (1, 0), "NHWC"),
    ((9, 7, 6), (2, 3, 2), (2, 1, 3), (1, 1, 0), "NDHWC"),
    ((130,), (5,), (3,), (2,), None),
    ((17, 17), (4, 4), (4, 4), (2, 2), None),
]


def _pool_data_shape(spatial, layout, batch=2, channels=3) -> tuple:
    if layout is None:
        return (batch, channels, *spatial)
    return (batch, *spatial, channels)


def _pool_cases() -> list[OpCase]:
    cases = []
    for kind, (spatial, kernel, stride, pad, layout), convention, channel_last in itertools.product(
        POOL_KINDS, POOL_GEOMETRIES, ("valid", "full"), (False, True)
    ):
        if channel_last and layout is None:
            continue
        attrs = {**kind, "kernel": kernel, "stride": stride, "pad": pad, "pooling_convention": convention}
        if channel_last:
            attrs["layout"] = layout
        cases.append(OpCase("Pooling", [_pool_data_shape(spatial, layout if channel_last else None)], attrs))
    for kind in POOL_KINDS:
        cases += [
            OpCase(
                "Pooling",
                [(2, 3, 37)],
                {**kind, "kernel": (4,), "stride": (3,), "pooling_convention": "same"},
            ),
            OpCase("Pooling", [(2, 3, 13, 11)], {**kind, "global_pool": True}),
            OpCase("Pooling", [(1, 1, 1, 1)], {**kind, "kernel": (1, 1)}),
            OpCase("Pooling", [(1, 2, 1, 7, 5)], {**kind, "global_pool": True, "layout": "NDHWC"}),
        ]
    return cases


@pytest.mark.parametrize("case", _pool_cases(), ids=lambda c: c.id)
def test_pooling(case):
    check(case)


def test_pooling_float64_and_float16():
    for dtype in (np.float64, np.float16):
        for kind in POOL_KINDS:
            attrs = {**kind, "kernel": (3, 3), "stride": (2, 2), "pad": (1, 1)}
            check(OpCase("Pooling", [normal(2, 3, 19, 17, dtype=dtype)], attrs))


def test_pooling_windows_wholly_in_padding():
    """kernel <= pad: the first windows read only padding (-inf for max, 0/0 for avg without pad counts)."""
    for kind in POOL_KINDS:
        check(
            OpCase(
                "Pooling", [(1, 2, 7)], {**kind, "kernel": (2,), "pad": (2,), "pooling_convention": "full"}
            )
        )


def test_max_pooling_integer_data():
    """Integer data pools in float64 and casts back, so an all-padding window gives the int32 minimum."""
    data = np.random.default_rng(0).integers(-50, 50, (2, 3, 11)).astype(np.int32)
    check(OpCase("Pooling", [data], {"kernel": (2,), "pad": (2,)}))
    check(OpCase("Pooling", [data], {"kernel": (3,), "stride": (2,), "pool_type": "sum"}))


def test_pooling_nan_propagates():
    data = normal(1, 2, 9, 9)
    data[0, 1, 4, 4] = np.nan
    for kind in POOL_KINDS[:3]:
        check(OpCase("Pooling", [data], {**kind, "kernel": (3, 3), "stride": (2, 2)}))


def test_pooling_training_size():
    """A LeNet-sized max pooling and a ResNet-style global average pooling."""
    check(OpCase("Pooling", [(64, 20, 24, 24)], {"kernel": (2, 2), "stride": (2, 2)}))
    check(OpCase("Pooling", [(32, 64, 7, 7)], {"global_pool": True, "pool_type": "avg"}))


# -- _backward_Pooling ----------------------------------------------------------------------------


def _pool_backward_case(data: np.ndarray, attrs: dict, zeros: bool = True) -> OpCase:
    """_backward_Pooling fed as Pooling's gradient rule feeds it: out_grad, data and the forward output."""
    (output,) = reference_outputs(OpCase("Pooling", [data], attrs), [data])
    grad = normal(*output.shape, dtype=data.dtype, seed=3)
    return OpCase("_backward_Pooling", [with_zeros(grad) if zeros else grad, data, output], attrs)


def _pool_backward_cases() -> list[OpCase]:
    cases = []
    for case in _pool_cases():
        data = normal(*case.inputs[0], seed=len(cases))
        cases.append(_pool_backward_case(data, case.attrs))
    return cases


@pytest.mark.parametrize("case", _pool_backward_cases(), ids=lambda c: c.id)
def test_pooling_backward(case):
    check(case)


def test_max_pooling_backward_ties_go_to_the_first_maximum():
    data = np.random.default_rng(0).integers(-2, 3, (2, 3, 11, 10)).astype(np.float32)
    for attrs in (
        {"kernel": (3, 3), "stride": (1, 1)},
        {"kernel": (3, 2), "stride": (2, 2), "pad": (1, 1), "pooling_convention": "full"},
        {"kernel": (2, 2), "stride": (2, 2), "layout": "NHWC"},
    ):
        check(_pool_backward_case(data, attrs))


def test_pooling_backward_windows_wholly_in_padding():
    data = normal(1, 2, 7)
    for kind in POOL_KINDS:
        check(_pool_backward_case(data, {**kind, "kernel": (2,), "pad": (2,), "pooling_convention": "full"}))


def test_pooling_backward_float64_and_float16():
    for dtype in (np.float64, np.float16):
        for kind in POOL_KINDS:
            attrs = {**kind, "kernel": (3, 3), "stride": (2, 2), "pad": (1, 1)}
            check(_pool_backward_case(normal(2, 3, 19, 17, dtype=dtype), attrs))


def test_pooling_backward_training_size():
    check(_pool_backward_case(normal(64, 20, 24, 24), {"kernel": (2, 2), "stride": (2, 2)}, zeros=False))
    check(_pool_backward_case(normal(32, 64, 7, 7), {"global_pool": True, "pool_type": "avg"}, zeros=False))


# =================================================================================================
# BatchNorm

# data shape, channel axis
BATCHNORM_SHAPES = [
    ((37, 130), 1),
    ((37, 130), -1),
    ((37, 130), 0),
    ((1, 1), 1),
    ((6, 5, 13, 11), 1),
    ((6, 5, 13, 11), 3),
    ((2, 3, 4, 5, 17), 2),
]
BATCHNORM_MODES = [
    ({}, False),
    ({}, True),
    ({"fix_gamma": False}, False),
    ({"fix_gamma": False, "output_mean_var": True}, True),
    ({"use_global_stats": True}, True),
    ({"use_global_stats": True, "fix_gamma": False, "eps": 1e-5}, True),
]


def batchnorm_inputs(shape, axis, dtype=np.float32, offset: float = 0.5) -> list[np.ndarray]:
    """data plus gamma, beta, moving_mean and a positive moving_var (float32 for float16 data)."""
    channels = shape[axis]
    vector = np.float32 if dtype == np.float16 else dtype
    return [
        normal(*shape, dtype=dtype, offset=offset),
        normal(channels, dtype=vector, seed=1),
        normal(channels, dtype=vector, seed=2),
        normal(channels, dtype=vector, seed=3),
        np.abs(normal(channels, dtype=vector, seed=4)) + 0.5,
    ]


def _batchnorm_cases() -> list[OpCase]:
    return [
        OpCase("BatchNorm", batchnorm_inputs(shape, axis), {**attrs, "axis": axis}, is_train=train)
        for (shape, axis), (attrs, train) in itertools.product(BATCHNORM_SHAPES, BATCHNORM_MODES)
    ]


@pytest.mark.parametrize("case", _batchnorm_cases(), ids=lambda c: f"{c.id}-train={c.is_train}")
def test_batchnorm(case):
    check(case)


def test_batchnorm_float16_and_float64():
    for dtype, (attrs, train) in itertools.product((np.float16, np.float64), BATCHNORM_MODES):
        check(OpCase("BatchNorm", batchnorm_inputs((9, 7, 5), 1, dtype), attrs, is_train=train))


def test_batchnorm_statistics_of_data_far_from_zero():
    """The variance is computed about the mean (two passes), so a large offset costs no precision."""
    inputs = batchnorm_inputs((64, 33), 1, np.float32, offset=1000.0)
    check(OpCase("BatchNorm", inputs, {"fix_gamma": False}, is_train=True))


def test_batchnorm_training_size():
    check(OpCase("BatchNorm", batchnorm_inputs((100, 784), 1), {"fix_gamma": False}, is_train=True))
    check(OpCase("BatchNorm", batchnorm_inputs((32, 16, 28, 28), 1), {}, is_train=True))


# -- _backward_BatchNorm --------------------------------------------------------------------------


def batchnorm_backward_case(shape, axis, attrs: dict, train: bool, dtype=np.float32) -> OpCase:
    """_backward_BatchNorm fed as BatchNorm's gradient rule feeds it: dy, data, gamma and the forward's
    hidden mean and inverse std."""
    inputs = batchnorm_inputs(shape, axis, dtype)
    params = {**attrs, "axis": axis}
    _, mean, inverse_std = reference_outputs(OpCase("BatchNorm", inputs, params, is_train=train), inputs)
    grad = with_zeros(normal(*shape, dtype=dtype, seed=7))
    return OpCase(
        "_backward_BatchNorm", [grad, inputs[0], inputs[1], mean, inverse_std], params, is_train=train
    )


@pytest.mark.parametrize(
    "shape, axis, attrs, train",
    [(*shape, *mode) for shape, mode in itertools.product(BATCHNORM_SHAPES, BATCHNORM_MODES)],
)
def test_batchnorm_backward(shape, axis, attrs, train):
    check(batchnorm_backward_case(shape, axis, attrs, train))


def test_batchnorm_backward_float16_and_float64():
    for dtype, (attrs, train) in itertools.product((np.float16, np.float64), BATCHNORM_MODES):
        check(batchnorm_backward_case((9, 7, 5), 1, attrs, train, dtype))


def test_batchnorm_backward_training_size():
    check(batchnorm_backward_case((100, 784), 1, {"fix_gamma": False}, True))
    check(batchnorm_backward_case((32, 16, 28, 28), 1, {}, True))


# =================================================================================================
# Embedding


def indices(rows: int, *shape, dtype=np.float32, seed: int = 0) -> np.ndarray:
    """Indices in [-3, rows + 3): repeated ones and, clipped, out-of-range ones."""
    return np.random.default_rng(seed).integers(-3, rows + 3, shape).astype(dtype)


def fractional_indices(rows: int, *shape) -> np.ndarray:
    """Float indices with fractions (truncated toward zero), a NaN and huge values (clipped)."""
    values = np.random.default_rng(5).uniform(-2.5, rows + 2.5, shape)
    values.reshape(-1)[:3] = (np.nan, 1e30, -1e30)
    return values


EMBEDDING_INDEX_DTYPES = (np.float32, np.float64, np.int32, np.int64, np.uint8, np.float16)


@pytest.mark.parametrize("index_dtype", EMBEDDING_INDEX_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("weight_dtype", (np.float32, np.float64, np.float16), ids=lambda d: np.dtype(d).name)
def test_embedding(index_dtype, weight_dtype):
    data = indices(130, 17, 37, dtype=index_dtype)
    weight = normal(130, 37, dtype=weight_dtype)
    check(OpCase("Embedding", [data, weight], {"input_dim": 130, "output_dim": 37}))


def test_embedding_edge_indices_and_sizes():
    check(OpCase("Embedding", [fractional_indices(20, 9, 4), (20, 17)], {"input_dim": 20, "output_dim": 17}))
    check(OpCase("Embedding", [np.zeros((1,), np.float32), (1, 1)], {"input_dim": 1, "output_dim": 1}))
    check(OpCase("Embedding", [indices(1, 5), (1, 3)], {"input_dim": 1, "output_dim": 3}))


def test_embedding_training_size():
    check(
        OpCase("Embedding", [indices(10000, 100, 35), (10000, 200)], {"input_dim": 10000, "output_dim": 200})
    )


# -- _backward_Embedding --------------------------------------------------------------------------


@pytest.mark.parametrize("index_dtype", EMBEDDING_INDEX_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("grad_dtype", (np.float32, np.float64, np.float16), ids=lambda d: np.dtype(d).name)
def test_embedding_backward(index_dtype, grad_dtype):
    data = indices(130, 17, 37, dtype=index_dtype)
    grad = normal(17, 37, 37, dtype=grad_dtype)
    check(OpCase("_backward_Embedding", [grad, data], {"input_dim": 130, "output_dim": 37}))


def test_embedding_backward_repeated_indices_accumulate():
    """Every row read from one index: its gradient is the float64 sum of all of them, cast once."""
    data = np.full((1000,), 3, np.float32)
    check(OpCase("_backward_Embedding", [(1000, 19), data], {"input_dim": 7, "output_dim": 19}))
    check(
        OpCase(
            "_backward_Embedding", [normal(1000, 19, offset=3.0), data], {"input_dim": 7, "output_dim": 19}
        )
    )


def test_embedding_backward_edge_indices_and_sizes():
    attrs = {"input_dim": 20, "output_dim": 17}
    check(OpCase("_backward_Embedding", [(9, 4, 17), fractional_indices(20, 9, 4)], attrs))
    check(
        OpCase("_backward_Embedding", [(1, 1), np.zeros((1,), np.float32)], {"input_dim": 1, "output_dim": 1})
    )


def test_embedding_backward_training_size():
    attrs = {"input_dim": 10000, "output_dim": 200}
    check(OpCase("_backward_Embedding", [(100, 35, 200), indices(10000, 100, 35)], attrs))


# =================================================================================================
# A training step through the executor: forward, backward and BatchNorm's moving-statistics update


def _training_step(monkeypatch, executor: str) -> dict[str, np.ndarray]:
    """Outputs, gradients and aux states after one training step, then an inference forward."""
    monkeypatch.setenv("EMBER_EXECUTOR", executor)
    data, idx = mx.sym.Variable("data"), mx.sym.Variable("idx")
    pooled = mx.sym.Pooling(data, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max")
    normed = mx.sym.BatchNorm(pooled, fix_gamma=False, name="bn")
    averaged = mx.sym.Pooling(normed, kernel=(2, 2), pad=(1, 1), pool_type="avg", count_include_pad=False)
    sym = mx.sym.Group([averaged, mx.sym.Embedding(idx, input_dim=11, output_dim=5, name="emb")])
    rng = np.random.default_rng(0)
    location = {
        "data": normal(16, 8, 29, 29),
        "idx": rng.integers(0, 11, (6, 7)).astype(np.float32),
        "bn_gamma": normal(8, seed=1),
        "bn_beta": normal(8, seed=2),
        "emb_weight": normal(11, 5, seed=3),
    }
    aux = {"bn_moving_mean": np.zeros(8, np.float32), "bn_moving_var": np.ones(8, np.float32)}
    grad_req = {n: "null" if n == "idx" else "write" for n in sym.list_arguments()}
    executor = _bind(sym, location, aux, grad_req, np.float32, mx.cpu())
    outputs = [o.asnumpy() for o in executor.forward(is_train=True)]
    executor.backward([mx.nd.array(normal(*o.shape, seed=4)) for o in outputs])
    results = {f"output {i}": o for i, o in enumerate(outputs)}
    results.update({f"grad {n}": g.asnumpy() for n, g in executor.grad_dict.items() if g is not None})
    results.update({f"aux {n}": a.asnumpy() for n, a in executor.aux_dict.items()})
    results["inference"] = executor.forward(is_train=False)[0].asnumpy()
    return results


def test_training_step_matches_reference_executor(monkeypatch):
    want = _training_step(monkeypatch, "reference")
    got = _training_step(monkeypatch, "compiled")
    for name, expected in want.items():
        assert_close(got[name], expected, what=name)

"""The imperative engine's fast kernels (frontend/ndarray/fast_kernels.py) equal the registry's reference
rules bit for bit, special values (-0.0, NaN, infinities) included."""

from __future__ import annotations

import numpy as np
import pytest

from ember.compiler import RefContext
from ember.compiler.ops import get_schema
from ember.compiler.ops.params import format_value
from ember.compiler.ops.registry import reference_rules
from ember.ndarray.fast_kernels import SAME_DTYPE_UFUNCS, SCALAR_UFUNCS, UNARY_CALLS, fast_kernel

SPECIAL = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-38, -3.5, 2.0])


def _data(shape, dtype, seed=0):
    """Random values with the special ones planted at the front."""
    values = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = values.reshape(-1)
    flat[: min(flat.size, SPECIAL.size)] = SPECIAL[: flat.size]
    return values


def _compare(op: str, params: dict, arrays: list):
    schema = get_schema(op)
    parsed = schema.parse_params({k: format_value(v) for k, v in params.items()}, "x")
    kernel = fast_kernel(op, parsed, tuple(a.dtype for a in arrays), tuple(a.shape for a in arrays))
    assert kernel is not None, f"{op} has no fast kernel for these inputs"
    with np.errstate(all="ignore"):
        got = kernel([a.copy() for a in arrays])
        want = reference_rules[op](parsed, [a.copy() for a in arrays], RefContext())
    for g, w in zip(got, want[: len(got)]):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == np.asarray(w).tobytes(), f"{op}: {g} != {w}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", sorted(SAME_DTYPE_UFUNCS))
def test_binary_ufunc_kernels(op, dtype):
    shapes = ((3, 4), (1, 4)) if op.startswith("broadcast") else ((3, 4), (3, 4))
    _compare(op, {}, [_data(shapes[0], dtype), _data(shapes[1], dtype, seed=1)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scalar", [2.5, -0.0, 0.0, float("nan")])
@pytest.mark.parametrize("op", sorted(SCALAR_UFUNCS))
def test_scalar_ufunc_kernels(op, scalar, dtype):
    _compare(op, {"scalar": scalar}, [_data((3, 4), dtype)])


@pytest.mark.parametrize("op", sorted(UNARY_CALLS))
def test_unary_kernels(op):
    _compare(op, {}, [_data((5, 3), "float32")])


@pytest.mark.parametrize("params", [{}, {"axis": 0}, {"axis": 1, "keepdims": True}, {"axis": (0, 1)}])
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "prod"])
def test_reduction_kernels(op, params):
    _compare(op, params, [_data((4, 5), "float32")])


@pytest.mark.parametrize("keepdims", [False, True])
def test_pick_kernel_clips_out_of_range_indices(keepdims):
    index = np.array([0, 4, 7, -2], np.float32)  # 7 and -2 are out of range: clipped
    _compare("pick", {"axis": 1, "keepdims": keepdims}, [_data((4, 5), "float32"), index])


@pytest.mark.parametrize("no_bias", [False, True])
def test_fully_connected_kernel(no_bias):
    arrays = [_data((6, 7), "float32"), _data((3, 7), "float32", 1)] + (
        [] if no_bias else [_data((3,), "float32", 2)]
    )
    _compare("FullyConnected", {"num_hidden": 3, "no_bias": no_bias}, arrays)


@pytest.mark.parametrize(
    "transpose_a, transpose_b", [(False, False), (True, False), (False, True), (True, True)]
)
def test_dot_kernel(transpose_a, transpose_b):
    lhs = _data((5, 4) if transpose_a else (4, 5), "float32")
    rhs = _data((3, 5) if transpose_b else (5, 3), "float32", 1)
    _compare("dot", {"transpose_a": transpose_a, "transpose_b": transpose_b}, [lhs, rhs])


def test_broadcast_to_kernel():
    _compare("broadcast_to", {"shape": (3, 0, 4)}, [_data((1, 2, 4), "float32")])


def test_scatter_add_axis_kernel_gives_what_adding_into_zeros_gives():
    grad = _data((8, 1), "float32")  # -0.0 among them: 0 + -0.0 is +0.0
    index = np.array([[0], [5], [2], [9], [-1], [3], [1], [4]], np.float32)  # 9 and -1 clip
    _compare("_scatter_add_axis", {"axis": 1, "size": 6, "mode": "clip"}, [grad, index])


@pytest.mark.parametrize("params", [{}, {"axis": 0}, {"temperature": 2.5}, {"dtype": "float64"}])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_kernels(op, params):
    data = _data((4, 6), "float32")
    data[3] = [np.inf, 1.0, 2.0, 3.0, -np.inf, 0.5]  # a row whose maximum is infinite
    _compare(op, params, [data])

"""Compiled random ops (Dropout in training or mode='always', LeakyReLU's rrelu in training) have the
properties their references define, since the compiled random stream cannot match NumPy's: masks hold
only the values the reference draws, outputs agree with their masks exactly, kept fractions and slope
means are within binomial (or uniform) tolerances, and each run of a program draws afresh."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ember.compiler import Graph, Node, Value, variable

from ..ops.harness import OpCase, input_dtypes, input_shapes
from .harness import compile_graph

SIGMAS = 5  # tolerance of a statistical property, in standard deviations (false failures ~ 1 in 10^6)


def nonzero_data(shape, dtype=np.float32, seed=0) -> np.ndarray:
    """Normal data with no zeros, so a zero output means a dropped element."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(x == 0, 1.0, x).astype(dtype)


def compiled_op(op: str, data: np.ndarray, attrs: dict, is_train: bool = True):
    """The Executable of a one-node graph of `op` on `data` (its outputs: the visible and hidden ones)."""
    case = OpCase(op, [data], attrs, is_train=is_train)
    graph, _ = case.graph()
    exe, _ = compile_graph(graph, input_shapes(case), input_dtypes(case, [data]), is_train=is_train)
    return exe


def within_binomial(count: int, trials: int, probability: float) -> bool:
    return (
        abs(count - trials * probability) <= SIGMAS * math.sqrt(trials * probability * (1 - probability)) + 1
    )


# -- Dropout ------------------------------------------------------------------------------------------


def kept_values(x: np.ndarray, p: float) -> np.ndarray:
    """What the reference makes of a kept element: x * (1/(1-p)) in float64, cast back."""
    return (x.astype(np.float64) * (1 / (1 - p))).astype(x.dtype)


def assert_dropout_consistent(x, out, mask, p):
    """The mask holds only 0 and 1/(1-p) (in the data's dtype) and the output is exactly x scaled where
    the mask (broadcast along `axes`) keeps, and 0 where it drops."""
    scale = np.asarray(1 / (1 - p)).astype(x.dtype)
    assert mask.dtype == x.dtype and out.dtype == x.dtype
    assert np.all((mask == 0) | (mask == scale))
    kept = np.broadcast_to(mask != 0, x.shape)
    np.testing.assert_array_equal(out, np.where(kept, kept_values(x, p), np.zeros((), x.dtype)))


DROPOUT_SETTINGS = [
    ((100, 784), np.float32, 0.5, {}),
    ((100, 784), np.float32, 0.1, {}),
    ((37, 130, 17), np.float32, 0.8, {}),
    ((130, 37, 16), np.float64, 0.3, {}),
    ((100, 784), np.float16, 0.25, {}),
    ((300, 37, 11), np.float32, 0.5, {"axes": (1,)}),
    ((64, 3, 130), np.float32, 0.3, {"axes": (0, 2)}),
]


@pytest.mark.parametrize("shape, dtype, p, attrs", DROPOUT_SETTINGS)
@pytest.mark.parametrize("mode, is_train", [("training", True), ("always", False)])
def test_dropout_output_agrees_with_mask_and_keeps_one_minus_p(shape, dtype, p, attrs, mode, is_train):
    x = nonzero_data(shape, dtype)
    out, mask = compiled_op("Dropout", x, {"p": p, "mode": mode, **attrs}, is_train)(data=x)
    mask_shape = tuple(1 if a in attrs.get("axes", ()) else n for a, n in enumerate(shape))
    assert mask.shape == mask_shape and out.shape == shape
    assert_dropout_consistent(x, out, mask, p)
    assert within_binomial(int(np.count_nonzero(mask)), mask.size, 1 - p)


@pytest.mark.parametrize("is_train, mode", [(True, "training"), (False, "always")])
def test_dropout_draws_a_new_independent_mask_each_run(is_train, mode):
    """Two runs of one Executable differ, and agree on about p^2 + (1-p)^2 of the elements (independent
    draws); the rows of one mask are not copies of each other (each element draws its own number)."""
    p, x = 0.3, nonzero_data((100, 784))
    exe = compiled_op("Dropout", x, {"p": p, "mode": mode}, is_train)
    first, second = exe(data=x)[1], exe(data=x)[1]
    assert not np.array_equal(first, second)
    agree = int(np.count_nonzero((first != 0) == (second != 0)))
    assert within_binomial(agree, first.size, p * p + (1 - p) * (1 - p))
    rows_equal = int(np.count_nonzero((first[0] != 0) == (first[1] != 0)))
    assert within_binomial(rows_equal, first.shape[1], p * p + (1 - p) * (1 - p))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32])
@pytest.mark.parametrize("attrs", [{"p": 0.5}, {"p": 1.0}, {"p": 0.3, "axes": (0,)}])
def test_dropout_in_inference_is_the_identity(dtype, attrs):
    x = (nonzero_data((37, 130)) * 10).astype(dtype)
    out, mask = compiled_op("Dropout", x, attrs, is_train=False)(data=x)
    np.testing.assert_array_equal(out, x)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(mask, np.ones(mask.shape, dtype))


def test_dropout_with_p_zero_keeps_everything_and_p_one_drops_everything():
    x = nonzero_data((37, 130))
    out, mask = compiled_op("Dropout", x, {"p": 0.0})(data=x)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(mask, np.ones_like(x))
    out, mask = compiled_op("Dropout", x, {"p": 1.0})(data=x)
    np.testing.assert_array_equal(out, np.zeros_like(x))
    np.testing.assert_array_equal(mask, np.zeros_like(x))


def test_dropout_integer_data_truncates_the_scaled_value():
    """Integer data is scaled in float64 and truncated back, as the reference does."""
    p, x = 0.3, np.random.default_rng(1).integers(1, 100, (130, 37)).astype(np.int32)
    out, mask = compiled_op("Dropout", x, {"p": p})(data=x)
    assert np.all((mask == 0) | (mask == 1))  # 1/(1-p) = 1.43 truncated
    np.testing.assert_array_equal(out, np.where(mask != 0, kept_values(x, p), 0))
    assert within_binomial(int(np.count_nonzero(out)), out.size, 1 - p)


# -- rrelu --------------------------------------------------------------------------------------------

LOW, HIGH = 0.125, 0.334  # LeakyReLU's default bounds


def assert_rrelu_consistent(x, out, slopes, low, high):
    """Slopes in [low, high]; the output is x where x > 0, else x times the element's slope (to the
    rounding of the float32 slope the mask holds)."""
    assert slopes.shape == x.shape and slopes.dtype == x.dtype
    assert np.all((slopes >= np.float32(low)) & (slopes <= np.float32(high)))
    positive = x > 0
    np.testing.assert_array_equal(out[positive], x[positive])
    np.testing.assert_allclose(out[~positive], x[~positive] * slopes[~positive], rtol=2**-22, atol=0)


@pytest.mark.parametrize(
    "shape, low, high", [((100, 784), LOW, HIGH), ((37, 130, 3), 0.0, 1.0), ((1, 37), 0.3, 0.4)]
)
def test_rrelu_slopes_are_uniform_and_used_by_the_output(shape, low, high):
    x = nonzero_data(shape)
    out, slopes = compiled_op("LeakyReLU", x, {"act_type": "rrelu", "lower_bound": low, "upper_bound": high})(
        data=x
    )
    assert_rrelu_consistent(x, out, slopes, low, high)
    spread = (high - low) / math.sqrt(12 * slopes.size)  # the standard deviation of the mean of uniforms
    assert abs(slopes.astype(np.float64).mean() - (low + high) / 2) <= SIGMAS * spread
    below_middle = int(np.count_nonzero(slopes < (low + high) / 2))
    assert within_binomial(below_middle, slopes.size, 0.5)


def test_rrelu_draws_new_slopes_each_run_and_uses_the_mean_in_inference():
    x = nonzero_data((100, 784))
    exe = compiled_op("LeakyReLU", x, {"act_type": "rrelu"})
    first, second = exe(data=x)[1], exe(data=x)[1]
    assert np.count_nonzero(first == second) < first.size // 100
    out, slopes = compiled_op("LeakyReLU", x, {"act_type": "rrelu"}, is_train=False)(data=x)
    np.testing.assert_array_equal(slopes, np.full(x.shape, (LOW + HIGH) / 2, np.float32))
    np.testing.assert_array_equal(
        out, np.where(x > 0, x, (x.astype(np.float64) * ((LOW + HIGH) / 2)).astype(np.float32))
    )


# -- random ops fused with their readers ----------------------------------------------------------------


def _chain(data, *steps):
    """A graph applying (op, attrs) steps in turn to a variable `data`; its outputs: the last node's
    output, then every hidden output of the first node."""
    x = variable("data").output()
    first = None
    for number, (op, attrs) in enumerate(steps):
        node = Node(op, (x,), {k: str(v) for k, v in attrs.items()}, f"n{number}")
        first = first or node
        x = node.output(0)
    hidden = [Value(first, i) for i in range(1, first.num_outputs)]
    return Graph([x] + hidden)


def _softmax(x):
    e = np.exp(x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _compiled_chain(x, steps, optimize=True):
    exe, _ = compile_graph(
        _chain(x, *steps), {"data": x.shape}, {"data": "float32"}, is_train=True, optimize=optimize
    )
    return exe


RRELU = ("LeakyReLU", {"act_type": "rrelu"})


@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("reader", [("Activation", {"act_type": "tanh"}), ("softmax", {})])
def test_rrelu_fused_with_its_reader_reads_the_slopes_it_outputs(optimize, reader):
    """rrelu -> tanh (one kernel) or softmax: the reader sees the slopes of the hidden mask output."""
    x = nonzero_data((37, 130))
    out, slopes = _compiled_chain(x, [RRELU, reader], optimize)(data=x)
    assert np.all((slopes >= np.float32(LOW)) & (slopes <= np.float32(HIGH)))
    activated = np.where(x > 0, x, x * slopes)
    want = np.tanh(activated) if reader[0] == "Activation" else _softmax(activated)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("first", [RRELU, ("Dropout", {"p": 0.5})])
def test_a_random_op_draws_the_same_numbers_in_every_program_holding_it(first):
    """The stream depends on the random node, not on the kernel it is fused into: a program of the node
    alone and one fusing a reader with it draw the same mask on their first run."""
    x = nonzero_data((37, 130))
    alone = _compiled_chain(x, [first])(data=x)[1]
    fused = _compiled_chain(x, [first, ("Activation", {"act_type": "tanh"})])(data=x)[1]
    np.testing.assert_array_equal(alone, fused)


@pytest.mark.parametrize("optimize", [False, True])
def test_dropout_followed_by_an_activation_uses_its_mask(optimize):
    x = nonzero_data((37, 130))
    out, mask = _compiled_chain(x, [("Dropout", {"p": 0.4}), ("Activation", {"act_type": "relu"})], optimize)(
        data=x
    )
    assert np.all((mask == 0) | (mask == np.float32(1 / 0.6)))
    np.testing.assert_array_equal(out, np.maximum(np.where(mask != 0, kept_values(x, 0.4), 0), 0))
    assert within_binomial(int(np.count_nonzero(mask)), mask.size, 0.6)

"""Property-based: random symbol graphs survive JSON round trips, and inference agrees with evaluation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import ember as mx

# Each step takes the current symbol and its shape and returns (new symbol, new shape).
UNARY_STEPS = {
    "relu": lambda s, shape: (mx.sym.Activation(s, act_type="relu"), shape),
    "tanh": lambda s, shape: (mx.sym.tanh(s), shape),
    "sigmoid": lambda s, shape: (mx.sym.sigmoid(s), shape),
    "scale": lambda s, shape: (s * 0.5 + 1, shape),
    "negate": lambda s, shape: (-s, shape),
    "square": lambda s, shape: (mx.sym.square(s), shape),
    "softmax": lambda s, shape: (mx.sym.softmax(s, axis=-1), shape),
    "fc3": lambda s, shape: (mx.sym.FullyConnected(s, num_hidden=3), (shape[0], 3)),
    "transpose": lambda s, shape: (mx.sym.transpose(s), shape[::-1]),
    "sum1": lambda s, shape: (mx.sym.sum(s, axis=1, keepdims=True), (shape[0], 1)),
    "flatten_reshape": lambda s, shape: (mx.sym.Reshape(s, shape=(-1, 1)), (shape[0] * shape[1], 1)),
}


def build(steps: list[str], rows: int, cols: int):
    """A chain of `steps` over variable `data`, adding a same-shaped residual branch every third step."""
    data = mx.sym.Variable("data")
    current, shape = data, (rows, cols)
    for index, step in enumerate(steps):
        previous = current
        current, shape = UNARY_STEPS[step](current, shape)
        if index % 3 == 2 and step not in ("fc3", "transpose", "sum1", "flatten_reshape"):
            current = current + previous
    return current


def feeds_for(symbol, rows: int, cols: int, seed: int) -> dict:
    arg_shapes, _, _ = symbol.infer_shape(data=(rows, cols))
    rng = np.random.default_rng(seed)
    return {n: mx.nd.array(rng.uniform(-1, 1, s)) for n, s in zip(symbol.list_arguments(), arg_shapes)}


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.sampled_from(sorted(UNARY_STEPS)), min_size=1, max_size=8),
    rows=st.integers(1, 5),
    cols=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_json_round_trip_preserves_text_and_results(steps, rows, cols, seed):
    with mx.name.NameManager():
        symbol = build(steps, rows, cols)
    text = symbol.tojson()
    loaded = mx.sym.load_json(text)
    assert loaded.tojson() == text
    assert loaded.list_arguments() == symbol.list_arguments()
    feeds = feeds_for(symbol, rows, cols, seed)
    (expected,) = symbol.eval(**feeds)
    (actual,) = loaded.eval(**feeds)
    np.testing.assert_array_equal(actual.asnumpy(), expected.asnumpy())
    _, (out_shape,), _ = symbol.infer_shape(data=(rows, cols))
    assert expected.shape == out_shape

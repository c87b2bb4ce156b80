"""The tiered executor (EMBER_EXECUTOR=tiered, the default): interpreter first, compiled once hot.

Each test starts from a process that knows no hot graph (`tiering.reset`) and an empty compile cache
folder, with EMBER_COMPILE_AFTER=3 so the switch comes after three interpreted runs. Results across
the switch are checked against NumPy or a reference executor fed the same arrays.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import ember as mx
from ember import engine_switches, tiering
from ember import executor as executor_module
from ember.base import MXNetError
from ember.compiled_runner import CompiledRunner
from ember.runtime.errors import CompileError

AFTER = 3


@pytest.fixture(autouse=True)
def tiered(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBER_EXECUTOR", "tiered")
    monkeypatch.setenv("EMBER_COMPILE_AFTER", str(AFTER))
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EMBER_CACHE", raising=False)
    tiering.reset()
    with mx.name.NameManager():
        yield
    tiering.reset()


@pytest.fixture
def interpreted(monkeypatch):
    """A list that gets one entry per interpreter pass the executor makes (a spy on `evaluate`)."""
    calls = []
    real = executor_module.evaluate

    def spy(graph, *args, **kwargs):
        calls.append(graph)
        return real(graph, *args, **kwargs)

    monkeypatch.setattr(executor_module, "evaluate", spy)
    return calls


def product_step(ex, lhs, rhs):
    ex.forward(is_train=True, lhs=lhs, rhs=rhs)
    ex.backward(mx.nd.ones(lhs.shape))
    return ex.tier


def product(shape=(3, 4)):
    """An executor of lhs * rhs: the same symbol (node names included) every call, as a re-binding loop
    has; a symbol built anew gets new automatic names and counts as another graph."""
    return PRODUCT.simple_bind(mx.cpu(), lhs=shape, rhs=shape)


with mx.name.NameManager():
    PRODUCT = mx.sym.var("lhs") * mx.sym.var("rhs")


def test_first_runs_interpret_and_the_switch_comes_at_the_threshold(rng, interpreted):
    ex = product()
    lhs, rhs = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    tiers = []
    for _ in range(AFTER + 2):
        tiers.append(product_step(ex, lhs, rhs))
        np.testing.assert_allclose(ex.outputs[0].asnumpy(), lhs * rhs, rtol=1e-6)
        np.testing.assert_allclose(ex.grad_dict["lhs"].asnumpy(), rhs, rtol=1e-6)
        np.testing.assert_allclose(ex.grad_dict["rhs"].asnumpy(), lhs, rtol=1e-6)
    assert tiers == ["reference"] * AFTER + ["compiled"] * 2
    assert len(interpreted) == 2 * AFTER  # a forward and a backward pass per interpreted run
    assert set(ex.runner.programs) == {("forward", True), ("step", True)}


def test_mlp_outputs_and_gradients_agree_across_the_switch(rng):
    data = mx.sym.var("data")
    hidden = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=5, name="fc1"), act_type="tanh")
    sym = mx.sym.FullyConnected(hidden, num_hidden=3, name="fc2")
    ex = sym.simple_bind(mx.cpu(), data=(4, 6))
    for array in ex.arg_arrays:
        array[:] = rng.uniform(-1, 1, array.shape)
    head = mx.nd.array(rng.standard_normal((4, 3)))
    results = []
    for _ in range(AFTER + 1):
        out = ex.forward(is_train=True)[0].asnumpy()
        ex.backward(head)
        results.append((ex.tier, out, {n: g.asnumpy() for n, g in ex.grad_dict.items()}))
    (first_tier, first_out, first_grads), (last_tier, last_out, last_grads) = results[0], results[-1]
    assert (first_tier, last_tier) == ("reference", "compiled")
    np.testing.assert_allclose(last_out, first_out, rtol=1e-5, atol=1e-6)
    for name, grad in first_grads.items():
        np.testing.assert_allclose(last_grads[name], grad, rtol=1e-5, atol=1e-6, err_msg=name)
    args = {n: a.asnumpy().astype(np.float64) for n, a in ex.arg_dict.items()}  # the NumPy oracle
    h = np.tanh(args["data"] @ args["fc1_weight"].T + args["fc1_bias"])
    np.testing.assert_allclose(last_out, h @ args["fc2_weight"].T + args["fc2_bias"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(last_grads["fc2_weight"], head.asnumpy().T @ h, rtol=1e-5, atol=1e-6)


def test_grad_req_add_accumulates_over_both_tiers(rng):
    sym = mx.sym.var("lhs") * mx.sym.var("rhs")
    ex = sym.simple_bind(mx.cpu(), grad_req="add", lhs=(2, 3), rhs=(2, 3))
    lhs, rhs = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    tiers = [product_step(ex, lhs, rhs) for _ in range(AFTER + 2)]
    assert tiers.count("reference") == AFTER and tiers.count("compiled") == 2
    np.testing.assert_allclose(ex.grad_dict["lhs"].asnumpy(), (AFTER + 2) * rhs, rtol=1e-5)
    np.testing.assert_allclose(ex.grad_dict["rhs"].asnumpy(), (AFTER + 2) * lhs, rtol=1e-5)


def test_batchnorm_moving_statistics_update_alike_on_both_tiers(rng):
    """MXNet's update, momentum 0.9: moving = 0.9 * moving + 0.1 * batch statistic, every training step."""
    sym = mx.sym.MakeLoss(mx.sym.sum(mx.sym.BatchNorm(mx.sym.var("data"), name="bn")))
    ex = sym.simple_bind(mx.cpu(), data=(8, 3))
    ex.arg_dict["bn_gamma"][:] = 1.0
    ex.aux_dict["bn_moving_var"][:] = 1.0
    mean, var = np.zeros(3), np.ones(3)
    tiers = []
    for step in range(AFTER + 2):
        batch = rng.standard_normal((8, 3)) * (step + 1) + step
        ex.forward(is_train=True, data=batch)
        ex.backward()
        tiers.append(ex.tier)
        mean = 0.9 * mean + 0.1 * batch.mean(0)
        var = 0.9 * var + 0.1 * batch.var(0)
        aux = {name: array.asnumpy() for name, array in ex.aux_dict.items()}
        np.testing.assert_allclose(aux["bn_moving_mean"], mean, rtol=1e-4, err_msg=f"step {step}")
        np.testing.assert_allclose(aux["bn_moving_var"], var, rtol=1e-4, err_msg=f"step {step}")
    assert tiers == ["reference"] * AFTER + ["compiled"] * 2


def test_dropout_masks_agree_between_forward_and_backward_on_each_tier(rng):
    """Each tier draws its own random stream, but a backward always uses its forward's mask."""
    sym = mx.sym.Dropout(mx.sym.var("data"), p=0.5)
    ex = sym.simple_bind(mx.cpu(), data=(50, 40))
    data = rng.uniform(1, 2, (50, 40))
    tiers = []
    for _ in range(AFTER + 1):
        out = ex.forward(is_train=True, data=data)[0].asnumpy()
        ex.backward(mx.nd.ones((50, 40)))
        tiers.append(ex.tier)
        kept = out != 0
        assert 0.3 < kept.mean() < 0.7
        np.testing.assert_allclose(out[kept], 2 * data[kept], rtol=1e-6)  # kept values scaled by 1/(1-p)
        np.testing.assert_array_equal(ex.grad_dict["data"].asnumpy(), 2.0 * kept)
    assert tiers == ["reference"] * AFTER + ["compiled"]


def test_rebinding_the_same_graph_and_shapes_heats_it_across_executors(rng):
    lhs, rhs = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    tiers = [product_step(product(), lhs, rhs) for _ in range(AFTER + 2)]
    assert tiers == ["reference"] * AFTER + ["compiled"] * 2
    other = rng.standard_normal((5, 4))
    assert product_step(product((5, 4)), other, other) == "reference"  # another shape is another graph


def test_a_graph_marked_hot_in_the_compile_cache_starts_compiled(rng):
    lhs, rhs = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ex = product()
    for _ in range(AFTER + 1):
        product_step(ex, lhs, rhs)
    assert ex.tier == "compiled"
    tiering.reset()  # what a new process knows: only the compile cache
    fresh = product()
    assert product_step(fresh, lhs, rhs) == "compiled"
    np.testing.assert_allclose(fresh.outputs[0].asnumpy(), lhs * rhs, rtol=1e-6)


def test_without_the_compile_cache_a_new_process_starts_interpreting(rng, monkeypatch):
    monkeypatch.setenv("EMBER_CACHE", "0")
    lhs, rhs = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ex = product()
    for _ in range(AFTER + 1):
        product_step(ex, lhs, rhs)
    tiering.reset()
    assert product_step(product(), lhs, rhs) == "reference"


def test_interpreter_time_past_the_compile_estimate_makes_a_graph_hot(rng, monkeypatch):
    monkeypatch.setenv("EMBER_COMPILE_AFTER", "1000")
    monkeypatch.setattr(tiering, "compile_seconds", lambda graph: 1e-9)
    ex = product()
    lhs, rhs = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert [product_step(ex, lhs, rhs) for _ in range(2)] == ["reference", "compiled"]


def test_interpreter_seconds_counts_convolution_multiply_adds(monkeypatch):
    conv = mx.sym.Convolution(mx.sym.var("data"), kernel=(3, 3), num_filter=4, pad=(1, 1), name="c")
    ex = mx.sym.relu(conv).simple_bind(mx.cpu(), data=(2, 3, 8, 8))
    macs = 2 * 4 * 8 * 8 * (3 * 3 * 3)  # output elements * (channels * kernel)
    seconds = tiering.interpreter_seconds(ex.graph, ex.value_types)
    assert seconds == pytest.approx(3 * macs / tiering.INTERPRETER_MACS_PER_SECOND)


def test_a_graph_estimated_dearer_to_interpret_than_to_compile_compiles_at_once(rng, monkeypatch):
    monkeypatch.setenv("EMBER_COMPILE_AFTER", "1000")
    monkeypatch.setattr(tiering, "INTERPRETER_MACS_PER_SECOND", 1.0)  # a "big" convolution
    conv = mx.sym.Convolution(mx.sym.var("data"), kernel=(3, 3), num_filter=4, pad=(1, 1), name="c")
    ex = mx.sym.relu(conv).simple_bind(mx.cpu(), data=(2, 3, 8, 8))
    for array in ex.arg_arrays:
        array[:] = rng.uniform(-1, 1, array.shape)
    ex.forward(is_train=False)
    assert ex.tier == "compiled"
    monkeypatch.setenv("EMBER_EXECUTOR", "reference")
    want = mx.sym.relu(conv).simple_bind(mx.cpu(), data=(2, 3, 8, 8))
    want.copy_params_from(ex.arg_dict)
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), want.forward()[0].asnumpy(), rtol=1e-4, atol=1e-5)


def test_a_compile_error_keeps_the_executor_on_the_interpreter(rng, monkeypatch, caplog):
    def fail(self, kind, is_train):
        raise CompileError("no kernel for this op")

    monkeypatch.setattr(CompiledRunner, "_compile_program", fail)
    ex = product()
    lhs, rhs = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    with caplog.at_level(logging.WARNING):
        tiers = [product_step(ex, lhs, rhs) for _ in range(AFTER + 2)]
    assert tiers == ["reference"] * (AFTER + 2)
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), lhs * rhs, rtol=1e-6)
    assert "stays on the reference interpreter (training): compiling failed: no kernel" in caplog.text


def test_executor_switches_select_the_engine(rng, monkeypatch):
    lhs, rhs = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")
    assert product_step(product(), lhs, rhs) == "compiled"
    monkeypatch.setenv("EMBER_EXECUTOR", "reference")
    ex = product()
    assert ex.runner is None
    assert {product_step(ex, lhs, rhs) for _ in range(AFTER + 2)} == {"reference"}
    monkeypatch.setenv("EMBER_EXECUTOR", "tiered")
    monkeypatch.setenv("EMBER_COMPILE_AFTER", "0")
    assert product_step(product((2, 2)), lhs[:2, :2], rhs[:2, :2]) == "compiled"
    monkeypatch.delenv("EMBER_EXECUTOR")
    monkeypatch.delenv("EMBER_COMPILE_AFTER")
    assert product((7, 7)).tier is None
    assert engine_switches.compile_after() == engine_switches.DEFAULT_COMPILE_AFTER
    assert product_step(product((7, 7)), np.ones((7, 7)), np.ones((7, 7))) == "reference"


RUNS = "EMBER_COMPILE_AFTER must be a whole number of runs >= 0, got"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("EMBER_EXECUTOR", "jit", "EMBER_EXECUTOR must be one of tiered, compiled, reference, got 'jit'"),
        ("EMBER_COMPILE_AFTER", "soon", f"{RUNS} 'soon'"),
        ("EMBER_COMPILE_AFTER", "-1", f"{RUNS} '-1'"),
    ],
)
def test_bad_switch_values_raise_at_bind(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(MXNetError) as info:
        product()
    assert str(info.value) == message

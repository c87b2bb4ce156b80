"""The compiled tier of imperative backward passes (frontend/ndarray/compiled_backward.py): when a
recorded structure turns hot its gradient graph runs as one compiled program, with the same gradients
as the interpreted plan."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import ember as mx
from ember import autograd
from ember.ndarray import backprop, compiled_backward, compiled_steps, step_programs


def _mlp_grads(params, data, label):
    with autograd.record():
        h = mx.nd.relu(mx.nd.FullyConnected(data, params[0], params[1], num_hidden=64))
        out = mx.nd.FullyConnected(h, params[2], params[3], num_hidden=10)
        loss = -mx.nd.pick(mx.nd.log_softmax(out), label).mean()
    loss.backward()
    return [p.grad.asnumpy() for p in params]


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    shapes = [(64, 300), (64,), (10, 64), (10,)]
    params = [mx.nd.array(rng.standard_normal(s).astype(np.float32) * 0.1) for s in shapes]
    for p in params:
        p.attach_grad()
    data = mx.nd.array(rng.standard_normal((32, 300)).astype(np.float32))
    label = mx.nd.array(rng.integers(0, 10, 32).astype(np.float32))
    return params, data, label


def _plan_for(params, data, label):
    """The plan the last backward of this problem used (the newest in the cache)."""
    return list(backprop._PLANS.values())[-1]


@pytest.fixture(autouse=True)
def _fresh_plans(monkeypatch):
    """Fresh plans, and no compiled steps: these loops would otherwise run as one compiled forward and
    backward program (compiled_steps.py, tested in test_compiled_steps.py) once hot."""
    monkeypatch.setattr(step_programs, "MIN_ELEMENTS", 1 << 60)
    compiled_steps.forget_traces()
    backprop._PLANS.clear()
    yield
    backprop._PLANS.clear()
    compiled_steps.forget_traces()


def test_interpreted_until_hot_then_compiled_with_equal_gradients(monkeypatch):
    monkeypatch.setenv("EMBER_EXECUTOR", "tiered")
    monkeypatch.setenv("EMBER_COMPILE_AFTER", "3")
    params, data, label = _problem()
    interpreted = [_mlp_grads(params, data, label) for _ in range(3)]
    plan = _plan_for(params, data, label)
    assert plan.runs == 3 and plan.program  # compiled after its third interpreted run
    compiled = _mlp_grads(params, data, label)
    assert plan.runs == 3  # the compiled run is not counted as an interpreted one
    for got, want in zip(compiled, interpreted[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_compiled_executor_kind_compiles_after_the_first_run(monkeypatch):
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")
    params, data, label = _problem(1)
    _mlp_grads(params, data, label)
    assert _plan_for(params, data, label).program


def test_reference_executor_kind_never_compiles(monkeypatch):
    monkeypatch.setenv("EMBER_EXECUTOR", "reference")
    monkeypatch.setenv("EMBER_COMPILE_AFTER", "0")
    params, data, label = _problem(2)
    for _ in range(3):
        _mlp_grads(params, data, label)
    assert _plan_for(params, data, label).program is None


def test_small_gradient_graphs_stay_interpreted(monkeypatch, caplog):
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")
    x = mx.nd.array([1.0, 2.0, 3.0])
    x.attach_grad()
    with caplog.at_level(logging.INFO, logger=compiled_backward.__name__):
        with autograd.record():
            y = (x * x).sum()
        y.backward()
    plan = list(backprop._PLANS.values())[-1]
    assert plan.program is compiled_backward.NOT_COMPILABLE
    assert "too few to gain from compiling" in caplog.text
    np.testing.assert_array_equal(x.grad.asnumpy(), [2.0, 4.0, 6.0])


def test_grad_req_add_accumulates_on_the_compiled_tier(monkeypatch):
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")
    params, data, label = _problem(3)
    once = _mlp_grads(params, data, label)
    for p in params:
        p.attach_grad(grad_req="add")
    _mlp_grads(params, data, label)
    twice = _mlp_grads(params, data, label)
    for got, want in zip(twice, once):
        np.testing.assert_allclose(got, 2 * want, rtol=1e-5, atol=1e-6)

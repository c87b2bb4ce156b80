"""Step macros (ndarray/step_macros.py): once a training step runs compiled, a hybridized block, or one
of Ember's own layers and losses, appends its captured calls to the deferred step without running its
Python; user code (a non-hybridized block of the user's, a HybridLambda's function, a forward hook)
still runs every step. Results are compared with the same loop run eagerly (EMBER_EXECUTOR=reference)."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember import autograd, gluon
from ember.ndarray import compiled_steps, step_programs

STEPS = 8
RTOL, ATOL = 2e-5, 1e-6


@pytest.fixture(autouse=True)
def _hot_quickly(monkeypatch):
    monkeypatch.setenv("EMBER_EXECUTOR", "tiered")
    monkeypatch.setenv("EMBER_COMPILE_AFTER", "2")
    monkeypatch.setattr(step_programs, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(compiled_steps, "TRIAL_RUNS", 1000)
    compiled_steps.forget_traces()
    compiled_steps.end_step()
    yield
    compiled_steps.end_step()
    compiled_steps.forget_traces()


class CountingDense(gluon.HybridBlock):
    """A user's block: counts the runs of its hybrid_forward."""

    def __init__(self, units, in_units, **kwargs):
        super().__init__(**kwargs)
        self.runs, self.units = 0, units
        with self.name_scope():
            self.weight = self.params.get("weight", shape=(units, in_units))

    def hybrid_forward(self, F, x, weight):
        self.runs += 1
        return F.relu(F.FullyConnected(x, weight, no_bias=True, num_hidden=self.units))


def _loop(make_net, hybridize: bool, steps: int = STEPS):
    """Train `make_net()` for `steps` SGD steps on fixed data; (losses, final weights, the net)."""
    rng = np.random.default_rng(3)
    net = make_net()
    net.initialize(mx.init.Xavier())
    for param in net.collect_params().values():
        param.set_data(mx.nd.array(rng.standard_normal(param.shape).astype(np.float32) * 0.3))
    if hybridize:
        net.hybridize()
    data = mx.nd.array(rng.standard_normal((8, 12)).astype(np.float32))
    label = mx.nd.array(rng.integers(0, 5, 8).astype(np.float32))
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses = []
    for _ in range(steps):
        with autograd.record():
            loss = loss_fn(net(data), label)
        loss.backward()
        trainer.step(8)
        losses.append(loss.asnumpy())
    weights = [p.data().asnumpy() for p in net.collect_params().values()]
    return losses, weights, net, loss_fn


def _eager(monkeypatch, *args):
    with monkeypatch.context() as m:
        m.setenv("EMBER_EXECUTOR", "reference")
        compiled_steps.forget_traces()
        result = _loop(*args)
        compiled_steps.end_step()
    compiled_steps.forget_traces()
    return result


def _assert_same(got, want):
    for part in (0, 1):
        for g, w in zip(got[part], want[part]):
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


def _counting_net():
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(CountingDense(16, 12), gluon.nn.Dense(5, in_units=16))
    return net


def test_a_hybridized_block_replays_its_calls_without_its_python(monkeypatch):
    got = _loop(_counting_net, hybridize=True)
    # traced twice (deferred shape inference, then the graph) and run in the two eager steps (the first
    # captures the macro); every compiled step replays the macro
    assert got[2][0].runs == 4
    assert any(macro for macro, _ in got[2]._step_macros.values())
    want = _eager(monkeypatch, _counting_net, True)
    _assert_same(got, want)


def test_a_users_block_that_is_not_hybridized_runs_every_step(monkeypatch):
    got = _loop(_counting_net, hybridize=False)
    assert got[2][0].runs == STEPS
    assert not got[2]._step_macros  # the Sequential holds a user's block: no macro
    assert any(macro for macro, _ in got[2][1]._step_macros.values())  # Ember's Dense has one
    assert any(macro for macro, _ in got[3]._step_macros.values())  # so has the loss (label reshaped)
    _assert_same(got, _eager(monkeypatch, _counting_net, False))


def test_forward_hooks_and_lambdas_inside_ember_blocks_still_run(monkeypatch):
    calls = {"hook": 0, "lambda": 0}

    def scaled(F, x):
        calls["lambda"] += 1
        return x * 0.5

    def make():
        net = gluon.nn.HybridSequential()
        with net.name_scope():
            net.add(gluon.nn.Dense(16, activation="relu", in_units=12), gluon.nn.HybridLambda(scaled),
                    gluon.nn.Dense(5, in_units=16))  # fmt: skip
        net[2].register_forward_hook(lambda block, args, out: calls.__setitem__("hook", calls["hook"] + 1))
        return net

    got = _loop(make, hybridize=False)
    assert calls == {"hook": STEPS, "lambda": STEPS}
    want = _eager(monkeypatch, make, False)
    _assert_same(got, want)

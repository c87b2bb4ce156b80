"""Step macros (ndarray/step_macros.py): once a training step runs compiled, a hybridized block, or one
of Ember's own layers and losses, appends its captured calls to the deferred step without running its
Python; user code (a non-hybridized block of the user's, a HybridLambda's function, a forward hook)
still runs every step. Results are compared with the same loop run eagerly (EMBER_EXECUTOR=reference)."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember import autograd, gluon
from ember.ndarray import compiled_steps

STEPS = 8
RTOL, ATOL = 2e-5, 1e-6


pytestmark = pytest.mark.usefixtures("hot_steps")  # tests/conftest.py


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
    assert any(macro for macro, *_ in got[2]._step_macros.values())
    want = _eager(monkeypatch, _counting_net, True)
    _assert_same(got, want)


def test_a_users_block_that_is_not_hybridized_runs_every_step(monkeypatch):
    got = _loop(_counting_net, hybridize=False)
    assert got[2][0].runs == STEPS
    assert not got[2]._step_macros  # the Sequential holds a user's block: no macro
    assert any(macro for macro, *_ in got[2][1]._step_macros.values())  # Ember's Dense has one
    assert any(macro for macro, *_ in got[3]._step_macros.values())  # so has the loss (label reshaped)
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


def _both(monkeypatch, fn):
    """fn() compiled (tiered) and eagerly (EMBER_EXECUTOR=reference)."""
    got = fn()
    compiled_steps.end_step()
    compiled_steps.forget_traces()
    with monkeypatch.context() as m:
        m.setenv("EMBER_EXECUTOR", "reference")
        want = fn()
        compiled_steps.end_step()
    compiled_steps.forget_traces()
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
    return got


class TwoInputs(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.weight = self.params.get("weight", shape=(4, 6))

    def hybrid_forward(self, F, a, b, weight):
        return F.FullyConnected(a, weight, no_bias=True, num_hidden=4) * F.FullyConnected(
            b, weight, no_bias=True, num_hidden=4)  # fmt: skip


def test_a_macro_captured_with_one_array_twice_is_not_replayed_for_two(monkeypatch):
    def run():
        rng = np.random.default_rng(0)
        block = TwoInputs()
        block.initialize()
        block.weight.set_data(mx.nd.array(rng.standard_normal((4, 6)).astype(np.float32)))
        block.hybridize()
        x, y = (mx.nd.array(rng.standard_normal((3, 6)).astype(np.float32)) for _ in range(2))
        trainer = gluon.Trainer(block.collect_params(), "sgd", {"learning_rate": 0.01})
        losses = []
        for step in range(STEPS):
            with autograd.record():
                loss = block(x, x if step < 4 else y).sum()
            loss.backward()
            trainer.step(1)
            losses.append(loss.asnumpy())
        return losses + [block.weight.data().asnumpy()]

    _both(monkeypatch, run)


class SharedGradient(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.w1 = self.params.get("w1", shape=(1, 6))
            self.w2 = self.params.get("w2", shape=(1, 6))

    def hybrid_forward(self, F, x, w1, w2):
        return F.broadcast_mul(x, w1 + w2)  # w1 and w2 get the same gradient value


def test_weights_with_one_gradient_value_keep_their_own_gradient_arrays(monkeypatch):
    def run():
        rng = np.random.default_rng(1)
        block = SharedGradient()
        block.initialize()
        for param in (block.w1, block.w2):
            param.set_data(mx.nd.array(rng.standard_normal((1, 6)).astype(np.float32)))
        x = mx.nd.array(rng.standard_normal((3, 6)).astype(np.float32))
        trainer = gluon.Trainer(block.collect_params(), "sgd", {"learning_rate": 0.01})
        grads = []
        for step in range(STEPS + 2):
            with autograd.record():
                out = block(x)
                loss = (out * out).sum() if step < STEPS else (out * block.w1.data()).sum()
            loss.backward()
            trainer.step(1)
            assert not np.shares_memory(block.w1.grad().host_buffer(), block.w2.grad().host_buffer())
            grads += [block.w1.grad().asnumpy(), block.w2.grad().asnumpy()]
        return grads

    _both(monkeypatch, run)


def test_a_child_added_inside_an_ember_block_is_seen(monkeypatch):
    def run():
        rng = np.random.default_rng(2)
        net = gluon.nn.HybridSequential()
        net.add(gluon.nn.Dense(8, in_units=6), gluon.nn.Dense(4, in_units=8))
        net.initialize()
        for param in net.collect_params().values():
            param.set_data(mx.nd.array(rng.standard_normal(param.shape).astype(np.float32) * 0.3))
        x = mx.nd.array(rng.standard_normal((3, 6)).astype(np.float32))
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01})
        losses = []
        for step in range(STEPS):
            if step == 5:
                net.add(gluon.nn.Activation("tanh"))  # no parameters: the Trainer's stay the same
            with autograd.record():
                loss = net(x).sum()
            loss.backward()
            trainer.step(1)
            losses.append(loss.asnumpy())
        return losses

    _both(monkeypatch, run)

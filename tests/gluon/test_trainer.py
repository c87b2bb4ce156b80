"""gluon.Trainer against MXNet 1.9.1: the weights after three steps of SGD (momentum, wd) and Adam on a
fixed Dense layer were recorded with the real mxnet==1.9.1 wheel; stale-gradient errors, learning
rates and state files."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember import autograd, gluon

RECORDED = {  # optimizer -> (weight row, bias value) after 3 steps; every row of the weight is equal
    "sgd": ([0.13699597120285034, 0.12259931117296219, 0.10820266604423523, 0.09380602836608887],
            -0.24340592324733734),
    "adam": ([0.06389638781547546, 0.06695948541164398, 0.06916813552379608, 0.07081955671310425],
             -0.2183215469121933),
}  # fmt: skip
SETTINGS = {"sgd": {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01}, "adam": {"learning_rate": 0.05}}


def _dense():
    with mx.name.NameManager():
        dense = gluon.nn.Dense(3, in_units=4, weight_initializer=mx.init.Constant(0.2),
                               bias_initializer=mx.init.Constant(-0.1))  # fmt: skip
    dense.initialize()
    return dense


def _steps(dense, trainer, count=3):
    x = mx.nd.array(np.arange(8, dtype=np.float32).reshape(2, 4) / 10)
    for _ in range(count):
        with autograd.record():
            loss = (dense(x) ** 2).sum()
        loss.backward()
        trainer.step(2)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_three_steps_match_mxnet(name):
    dense = _dense()
    _steps(dense, gluon.Trainer(dense.collect_params(), name, SETTINGS[name]))
    row, bias = RECORDED[name]
    np.testing.assert_allclose(dense.weight.data().asnumpy(), np.tile(row, (3, 1)), rtol=1e-5)
    np.testing.assert_allclose(dense.bias.data().asnumpy(), [bias] * 3, rtol=1e-5)


def test_stale_gradients_raise_unless_ignored():
    dense = _dense()
    trainer = gluon.Trainer(dense.collect_params(), "sgd")
    _steps(dense, trainer, 1)
    with pytest.raises(UserWarning, match="Gradient of Parameter `dense0_bias` on context cpu\\(0\\) has not "
                       "been updated by backward since last `step`"):  # fmt: skip
        trainer.step(1)
    before = dense.weight.data().asnumpy()
    trainer.step(1, ignore_stale_grad=True)  # nothing fresh: nothing updated
    np.testing.assert_array_equal(dense.weight.data().asnumpy(), before)


def test_learning_rate_and_bad_arguments():
    dense = _dense()
    trainer = gluon.Trainer(dense.collect_params(), "sgd", {"learning_rate": 0.3})
    assert trainer.learning_rate == 0.3
    trainer.set_learning_rate(0.05)
    assert trainer.learning_rate == 0.05
    with pytest.raises(ValueError, match="First argument must be a list or dict of Parameters"):
        gluon.Trainer("not params", "sgd")
    with pytest.raises(AssertionError, match="optimizer_params must be None"):
        gluon.Trainer(dense.collect_params(), mx.optimizer.SGD(), {"learning_rate": 0.1})


def test_save_and_load_states_resume_adam_exactly(tmp_path):
    straight = _dense()
    _steps(straight, gluon.Trainer(straight.collect_params(), "adam", SETTINGS["adam"]), 3)
    resumed = _dense()
    first = gluon.Trainer(resumed.collect_params(), "adam", SETTINGS["adam"])
    _steps(resumed, first, 2)
    path = str(tmp_path / "adam.states")
    first.save_states(path)
    second = gluon.Trainer(resumed.collect_params(), "adam", SETTINGS["adam"])
    second.load_states(path)
    _steps(resumed, second, 1)
    np.testing.assert_allclose(resumed.weight.data().asnumpy(), straight.weight.data().asnumpy(), rtol=1e-6)


def test_several_contexts_keep_one_optimizer_state_each():
    """MXNet 1.9.1 (recorded): Dense(2, in_units=3) on cpu(0) and cpu(1), weights one, SGD momentum 0.9,
    three steps of a batch on each context: both copies -0.446, num_update 3."""
    with mx.name.NameManager():
        net = gluon.nn.Dense(2, in_units=3)
    net.initialize(mx.init.One(), ctx=[mx.cpu(0), mx.cpu(1)])
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    for _ in range(3):
        for ctx in (mx.cpu(0), mx.cpu(1)):
            with autograd.record():
                loss = (net(mx.nd.ones((1, 3), ctx=ctx)) ** 2).sum()
            loss.backward()
        trainer.step(2)
    for ctx in (mx.cpu(0), mx.cpu(1)):
        np.testing.assert_allclose(net.weight.data(ctx).asnumpy(), np.full((2, 3), -0.44599998), rtol=1e-6)
    assert trainer.optimizer.num_update == 3

"""Files MXNet 1.9.1's Gluon wrote (../shared/fixtures/mxnet/gluon, see its README): the convnet rebuilt
in Ember's Gluon loads `save_parameters`' file and predicts what MXNet predicted; its Trainer states
load; the autograd gradient is reproduced."""

from __future__ import annotations

import numpy as np

import ember as mx
from ember import autograd, gluon
from ember.gluon import nn


def _convnet():
    """The fixture's net, as make.py builds it (prefix convnet_)."""
    net = nn.HybridSequential(prefix="convnet_")
    with net.name_scope():
        net.add(nn.Conv2D(8, 3, padding=1, activation="relu"), nn.BatchNorm(), nn.MaxPool2D(2),
                nn.Conv2D(16, 3, strides=2), nn.LeakyReLU(0.1), nn.GlobalAvgPool2D(), nn.Flatten(),
                nn.Dropout(0.5), nn.Dense(10))  # fmt: skip
    return net


def test_saved_parameters_and_adam_states_load_and_predict_as_mxnet(mxnet_fixture, tmp_path):
    folder = mxnet_fixture("gluon/convnet.params").parent
    x = mx.nd.array(np.load(folder / "convnet-x.npy"))
    want = np.load(folder / "convnet-y.npy")
    for hybridize in (False, True):
        net = _convnet()
        net.load_parameters(str(folder / "convnet.params"))
        assert sorted(net.collect_params()) == sorted(__import__("json").loads(
            (folder / "manifest.json").read_text())["convnet"]["params"])  # fmt: skip
        if hybridize:
            net.hybridize()
        np.testing.assert_allclose(net(x).asnumpy(), want, rtol=1e-5, atol=1e-6)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.01})
    trainer.load_states(str(folder / "convnet-adam.states"))
    assert trainer.optimizer.num_update == 2  # two Adam steps were taken before saving
    states = trainer._updaters[0].states
    params = [net.collect_params()[k] for k in sorted(net.collect_params())]
    for index, param in enumerate(params):
        if param.grad_req != "null":  # Adam's (mean, var) per trained parameter, of its shape
            assert [s.shape for s in states[index]] == [param.shape, param.shape]
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), mx.nd.array([1, 2, 3, 4]))
    loss.backward()
    trainer.step(4)  # a third step continues from MXNet's states


def test_autograd_gradient_as_mxnet(mxnet_fixture):
    folder = mxnet_fixture("gluon/autograd-a.npy").parent
    a = mx.nd.array(np.load(folder / "autograd-a.npy"))
    a.attach_grad()
    with autograd.record():
        c = (mx.nd.tanh(a) * mx.nd.sigmoid(2 * a) + mx.nd.relu(a) ** 2).sum()
    c.backward()
    np.testing.assert_allclose(a.grad.asnumpy(), np.load(folder / "autograd-grad.npy"), rtol=1e-6)

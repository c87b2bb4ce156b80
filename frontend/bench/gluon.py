"""The Gluon workload of `ember bench`: the seed MLP (784-128-64-10) trained as Gluon code is written -
a `HybridSequential` of Dense layers, `autograd.record()`, `SoftmaxCrossEntropyLoss`, `backward()`,
`Trainer.step` (SGD) - imperatively and hybridized, against the same step hand-written in NumPy and
PyTorch eager's. One step is first checked against the float64 NumPy step; Ember is then timed in the
loop's steady state (after the warm-up in which the step compiles: `imperative.warm_up_training`).
"""

from __future__ import annotations

import numpy as np

import ember as mx

from .imperative import warm_up_training
from .workloads import (
    LR,
    MLP_SHAPES,
    Case,
    Context,
    Workload,
    centred_pixels,
    float64_step,
    numpy_mlp_step,
    peer_steps,
    step_checks,
    torch_mlp_forward,
    uniform_params,
)

LAYERS = (("fc1", 128, 784, "relu"), ("fc2", 64, 128, "relu"), ("fc3", 10, 64, None))


def gluon_mlp(start: dict):
    """The seed MLP as a HybridSequential, its parameters set to `start` (MLP_SHAPES names)."""
    from ember.gluon import nn

    net = nn.HybridSequential()
    with net.name_scope():
        for _, units, inputs, act in LAYERS:
            net.add(nn.Dense(units, activation=act, in_units=inputs))
    net.initialize()
    for layer, (name, *_rest) in zip(net, LAYERS):
        layer.weight.set_data(mx.nd.array(start[f"{name}_weight"]))
        layer.bias.set_data(mx.nd.array(start[f"{name}_bias"]))
    return net


def gluon_params(net) -> dict:
    """The net's parameters under MLP_SHAPES names, as NumPy arrays."""
    found = {}
    for layer, (name, *_rest) in zip(net, LAYERS):
        found[f"{name}_weight"] = layer.weight.data().asnumpy()
        found[f"{name}_bias"] = layer.bias.data().asnumpy()
    return found


def gluon_train_case(param: tuple, ctx: Context) -> Case:
    """One Gluon training step at `batch`, hybridized or not, checked against the float64 NumPy step."""
    from ember import autograd, gluon

    batch, hybridize = param
    rng = np.random.default_rng(400 + batch)
    x = centred_pixels(rng, (batch, 784))
    y = rng.integers(0, 10, batch)
    start = uniform_params(rng, MLP_SHAPES)
    net = gluon_mlp(start)
    if hybridize:
        net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    data, label = mx.nd.array(x), mx.nd.array(y.astype(np.float32))

    def step():
        with autograd.record():
            loss = loss_fn(net(data), label)
        loss.backward()
        trainer.step(batch)

    oracle = float64_step(numpy_mlp_step, start, x, y)
    step()
    what = "Ember (Gluon, hybridized)" if hybridize else "Ember (Gluon)"
    checks = step_checks(what, start, gluon_params(net), oracle)
    peer_checks, numpy_call, torch_call = peer_steps(
        numpy_mlp_step, torch_mlp_forward, start, x, y, oracle, ctx
    )
    warm_up_training(step)
    return Case(ember=step, numpy=numpy_call, torch=torch_call, against="the float64 NumPy step (parameter "
                "updates)", checks=checks + peer_checks)  # fmt: skip


GLUON_WORKLOADS = (
    Workload("gluon_mlp_train", "seed MLP as Gluon code: record, SoftmaxCELoss, backward, Trainer.step",
             gluon_train_case,
             full=(("batch 100", (100, False)), ("batch 100 hybridized", (100, True)),
                   ("batch 1000 hybridized", (1000, True))),
             quick=(("batch 100 hybridized", (100, True)),)),
)  # fmt: skip

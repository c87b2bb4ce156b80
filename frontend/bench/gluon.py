"""The Gluon workload of `ember bench`: the seed MLP (784-128-64-10) and LeNet trained as Gluon code is
written - a `HybridSequential`, `autograd.record()`, `SoftmaxCrossEntropyLoss`, `backward()`,
`Trainer.step` (SGD) - imperatively and hybridized, against the same step hand-written in NumPy and
PyTorch eager's. One step is first checked against the float64 NumPy step; Ember is then timed in the
loop's steady state (after the warm-up in which the step compiles: `imperative.warm_up_training`).
"""

from __future__ import annotations

import numpy as np

import ember as mx

from .imperative import warm_up_training
from .workloads import (
    LENET_SHAPES,
    LR,
    MLP_SHAPES,
    Case,
    Context,
    Workload,
    centred_pixels,
    float64_step,
    lenet,
    measure,
    numpy_lenet_step,
    numpy_mlp_step,
    peer_steps,
    seed_mlp,
    step_checks,
    torch_lenet_forward,
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


def gluon_lenet(start: dict):
    """LeNet (the `lenet_train` workload's) as a HybridSequential, parameters set to `start`."""
    from ember.gluon import nn

    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Conv2D(20, 5, in_channels=1), nn.MaxPool2D(2, 2), nn.Conv2D(50, 5, in_channels=20),
                nn.MaxPool2D(2, 2), nn.Flatten(), nn.Dense(500, activation="relu", in_units=800),
                nn.Dense(10, in_units=500))  # fmt: skip
    net.initialize()
    for layer, name in zip((net[0], net[2], net[5], net[6]), ("conv1", "conv2", "fc1", "fc2")):
        layer.weight.set_data(mx.nd.array(start[f"{name}_weight"]))
        layer.bias.set_data(mx.nd.array(start[f"{name}_bias"]))
    return net


def lenet_params(net) -> dict:
    """The LeNet's parameters under LENET_SHAPES names, as NumPy arrays."""
    layers = zip((net[0], net[2], net[5], net[6]), ("conv1", "conv2", "fc1", "fc2"))
    return {f"{name}_{part}": getattr(layer, part).data().asnumpy() for layer, name in layers
            for part in ("weight", "bias")}  # fmt: skip


MODELS = {  # name -> (parameter shapes, input shape, build, read back, NumPy step, PyTorch forward, symbol)
    "mlp": (MLP_SHAPES, (784,), gluon_mlp, gluon_params, numpy_mlp_step, torch_mlp_forward, seed_mlp),
    "lenet": (LENET_SHAPES, (1, 28, 28), gluon_lenet, lenet_params, numpy_lenet_step, torch_lenet_forward,
              lenet),
}  # fmt: skip
FIT_BATCHES = 10  # batches of the Module.fit epoch timed next to the Gluon loop


def module_fit_per_batch(symbol, x: np.ndarray, y: np.ndarray, ctx: Context) -> float:
    """Seconds per batch of `Module.fit` (SGD, the same learning rate) on the same model and batch: an
    epoch of FIT_BATCHES copies of the batch, after a first epoch that compiles the fused step."""
    batches = mx.io.NDArrayIter(np.concatenate([x] * FIT_BATCHES), np.concatenate([y] * FIT_BATCHES),
                                batch_size=len(x))  # fmt: skip
    module = mx.mod.Module(symbol)

    def epoch():
        batches.reset()
        module.fit(batches, optimizer="sgd", optimizer_params={"learning_rate": LR}, num_epoch=1)

    epoch()
    return measure(epoch, ctx.seconds / 2, ctx.max_repeats)["median_s"] / FIT_BATCHES


def gluon_train_case(param: tuple, ctx: Context) -> Case:
    """One Gluon training step of `model` at `batch`, hybridized or not, checked against the float64
    NumPy step."""
    from ember import autograd, gluon

    model, batch, hybridize = param
    shapes, sample, build, read_back, numpy_step, torch_forward, symbol = MODELS[model]
    rng = np.random.default_rng(400 + batch)
    x = centred_pixels(rng, (batch, *sample))
    y = rng.integers(0, 10, batch)
    start = uniform_params(rng, shapes)
    net = build(start)
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

    oracle = float64_step(numpy_step, start, x, y)
    step()
    what = "Ember (Gluon, hybridized)" if hybridize else "Ember (Gluon)"
    checks = step_checks(what, start, read_back(net), oracle)
    peer_checks, numpy_call, torch_call = peer_steps(numpy_step, torch_forward, start, x, y, oracle, ctx)
    fit = module_fit_per_batch(symbol(), x, y.astype(np.float32), ctx)
    warm_up_training(step)
    return Case(ember=step, numpy=numpy_call, torch=torch_call, against="the float64 NumPy step (parameter "
                "updates)", checks=checks + peer_checks, extras={"module_fit_batch_s": fit})  # fmt: skip


GLUON_MODELS = (("MLP", "mlp", 100), ("MLP", "mlp", 1000), ("LeNet", "lenet", 64))  # (label, model, batch)

GLUON_WORKLOADS = (
    Workload("gluon_train", "seed MLP and LeNet as Gluon code: record, SoftmaxCELoss, backward, Trainer.step",
             gluon_train_case,
             full=tuple((f"{name} batch {batch}{' hybridized' if hybrid else ''}", (model, batch, hybrid))
                        for name, model, batch in GLUON_MODELS
                        for hybrid in (False, True)),
             quick=(("MLP batch 100 hybridized", ("mlp", 100, True)),)),
)  # fmt: skip

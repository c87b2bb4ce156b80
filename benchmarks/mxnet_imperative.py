"""MXNet 1.9.1's own imperative figures on this machine, for comparison with `ember bench --only
nd_small_op nd_mlp_train`: one small op (`a + b` on shape (10,), enqueued, and waited for) and the seed
MLP trained with `mxnet.autograd` exactly as `ember/bench/imperative.py` trains it with Ember.

Needs the real MXNet, which Ember never imports; install it in a separate environment:

    python3 -m venv /tmp/mxnet && /tmp/mxnet/bin/pip install mxnet==1.9.1 'numpy<1.24'
    /tmp/mxnet/bin/python benchmarks/mxnet_imperative.py
"""

from __future__ import annotations

import platform
import statistics
import sys
import time

import numpy as np

try:
    import mxnet as mx
    from mxnet import autograd
except ImportError:
    sys.exit("mxnet is not installed in this environment (see this script's docstring)")

LR = 0.1
SHAPES = {
    "fc1_weight": (128, 784), "fc1_bias": (128,), "fc2_weight": (64, 128), "fc2_bias": (64,),
    "fc3_weight": (10, 64), "fc3_bias": (10,),
}  # fmt: skip


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def mlp_step(params, data, label):
    with autograd.record():
        h = mx.nd.relu(mx.nd.FullyConnected(data, params["fc1_weight"], params["fc1_bias"], num_hidden=128))
        h = mx.nd.relu(mx.nd.FullyConnected(h, params["fc2_weight"], params["fc2_bias"], num_hidden=64))
        out = mx.nd.FullyConnected(h, params["fc3_weight"], params["fc3_bias"], num_hidden=10)
        loss = -mx.nd.pick(mx.nd.log_softmax(out), label).mean()
    loss.backward()
    for weight in params.values():
        weight -= LR * weight.grad
    mx.nd.waitall()  # MXNet is asynchronous: the step is done when its writes are


def main() -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "")
    print(f"MXNet {mx.__version__}, {cpu or platform.processor()}")
    a, b = mx.nd.ones((10,)), mx.nd.ones((10,))
    print(f"a + b (10,), enqueued:         {median_seconds(lambda: a + b, 20000) * 1e6:8.2f} us")
    waited = median_seconds(lambda: (a + b).wait_to_read(), 20000)
    print(f"a + b (10,), + wait_to_read:   {waited * 1e6:8.2f} us")
    rng = np.random.default_rng(400)
    params = {k: mx.nd.array(rng.uniform(-0.07, 0.07, s).astype(np.float32)) for k, s in SHAPES.items()}
    for weight in params.values():
        weight.attach_grad()
    data = mx.nd.array(rng.uniform(-1, 1, (100, 784)).astype(np.float32))
    label = mx.nd.array(rng.integers(0, 10, 100).astype(np.float32))
    for _ in range(20):
        mlp_step(params, data, label)
    seconds = median_seconds(lambda: mlp_step(params, data, label), 300)
    print(f"imperative MLP step, batch 100: {seconds * 1e6:8.0f} us")


if __name__ == "__main__":
    main()

"""Speed as users meet it, next to the native call: the seed MLP (784-128-64-10) as a `CompiledModel`
called at batch 1 (and its program's bare `run()`), and `Module.fit` with SGD at batch 100, per
batch (60 batches an epoch, 3 epochs after a warm-up epoch that compiles the step).

Usage: python benchmarks/user_calls.py
"""

import statistics
import time

import numpy as np

import ember as mx


def seed_mlp():
    data = mx.sym.Variable("data")
    net = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=128, name="fc1"), act_type="relu")
    net = mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=64, name="fc2"), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=10, name="fc3"), name="softmax")


def per_call(fn, calls: int = 1000, repeats: int = 20) -> float:
    """Median seconds per call of `fn` over `repeats` runs of `calls` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    shapes = {"fc1_weight": (128, 784), "fc1_bias": (128,), "fc2_weight": (64, 128), "fc2_bias": (64,),
              "fc3_weight": (10, 64), "fc3_bias": (10,)}  # fmt: skip
    params = {k: (0.1 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}
    model = mx.compile(seed_mlp(), {"data": (1, 784)}, params)
    x = rng.standard_normal((1, 784)).astype(np.float32)
    per_call(lambda: model(data=x), repeats=2)  # warm-up
    call = per_call(lambda: model(data=x))
    program = model._exe  # the loaded program behind the model, inputs already in place
    native = per_call(program.run)

    images = rng.random((6000, 784), dtype=np.float32)
    labels = rng.integers(0, 10, 6000).astype(np.float32)
    batches = mx.io.NDArrayIter(images, labels, batch_size=100)
    module = mx.mod.Module(seed_mlp())
    module.fit(batches, optimizer="sgd", optimizer_params={"learning_rate": 0.1}, num_epoch=1)
    epochs = []
    for _ in range(3):
        batches.reset()
        start = time.perf_counter()
        module.fit(batches, optimizer="sgd", optimizer_params={"learning_rate": 0.1}, num_epoch=1)
        epochs.append((time.perf_counter() - start) / 60)
    print(f"CompiledModel call, batch 1: {call * 1e6:.1f} us (native run {native * 1e6:.1f} us); "
          f"Module.fit per batch of 100: {statistics.median(epochs) * 1e6:.0f} us")  # fmt: skip


if __name__ == "__main__":
    main()

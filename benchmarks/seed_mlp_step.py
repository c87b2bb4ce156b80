"""Training-step speed of the seed MLP (784-128-64-10, batch 100): Ember's Module.fit against a
hand-written NumPy SGD step of the same model, in the same run, reported as a ratio.

Usage: python benchmarks/seed_mlp_step.py [batches]
Ember runs compiled code (one native call per batch: forward, backward and the SGD update), timed
after a one-batch warm-up fit that compiles it; with EMBER_EXECUTOR=reference it runs the NumPy
reference interpreter instead. The Ember time includes Module.fit's Python loop (iterator, metric).
"""

import logging
import os
import sys
import time

import numpy as np

import ember as mx


def numpy_epoch(x, y, batches: int) -> float:
    rng = np.random.default_rng(0)
    w1, w2, w3 = (rng.uniform(-0.01, 0.01, s).astype(np.float32) for s in ((128, 784), (64, 128), (10, 64)))
    b1, b2, b3 = np.zeros(128, np.float32), np.zeros(64, np.float32), np.zeros(10, np.float32)
    start = time.perf_counter()
    for i in range(batches):
        xb, yb = x[i * 100 : (i + 1) * 100], y[i * 100 : (i + 1) * 100].astype(np.int64)
        h1 = np.maximum(xb @ w1.T + b1, 0)
        h2 = np.maximum(h1 @ w2.T + b2, 0)
        z = h2 @ w3.T + b3
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(100), yb] -= 1
        d3 = p * 0.01
        d2 = (d3 @ w3) * (h2 > 0)
        d1 = (d2 @ w2) * (h1 > 0)
        for param, grad in (
            (w3, d3.T @ h2),
            (b3, d3.sum(0)),
            (w2, d2.T @ h1),
            (b2, d2.sum(0)),
            (w1, d1.T @ xb),
            (b1, d1.sum(0)),
        ):
            param -= 0.1 * grad
    return time.perf_counter() - start


def ember_epoch(x, y) -> float:
    data = mx.sym.Variable("data")
    net = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=128), act_type="relu")
    net = mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=64), act_type="relu")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=10), name="softmax")
    module = mx.mod.Module(net)
    train = mx.io.NDArrayIter(x, y, batch_size=100)
    warm = mx.io.NDArrayIter(x[:100], y[:100], batch_size=100)
    module.fit(warm, optimizer="sgd", optimizer_params={"learning_rate": 0.1}, num_epoch=1)  # compiles
    start = time.perf_counter()
    module.fit(train, optimizer="sgd", optimizer_params={"learning_rate": 0.1}, num_epoch=1, force_init=True)
    return time.perf_counter() - start


def blas_kernel() -> str:
    """Which BLAS kernel NumPy runs (threadpoolctl when installed), and OPENBLAS_CORETYPE if set."""
    forced = os.environ.get("OPENBLAS_CORETYPE")
    try:
        from threadpoolctl import threadpool_info

        found = [
            f"{i.get('internal_api')} {i.get('architecture')}"
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
    except ImportError:
        found = ["threadpoolctl not installed"]
    return ", ".join(found) + (
        f"; OPENBLAS_CORETYPE={forced} (unset it for a fair comparison)" if forced else ""
    )


def main(batches: int = 600) -> None:
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(1)
    x = rng.random((batches * 100, 784), dtype=np.float32)
    y = rng.integers(0, 10, batches * 100).astype(np.float32)
    numpy_seconds = numpy_epoch(x, y, batches)
    ember_seconds = ember_epoch(x, y)
    print(f"NumPy's BLAS: {blas_kernel()}")
    print(f"numpy  {batches} steps: {numpy_seconds:.3f} s ({1e3 * numpy_seconds / batches:.3f} ms/step)")
    print(f"ember  {batches} steps: {ember_seconds:.3f} s ({1e3 * ember_seconds / batches:.3f} ms/step)")
    print(f"ember / numpy time ratio: {ember_seconds / numpy_seconds:.2f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))

"""Throughput of a `CompiledModel` called from several threads: the seed MLP (784-128-64-10) at batch 1
(the Python side of a call dominates) and batch 64 (the native run dominates), with 1, 2 and 8 threads
calling one shared model (calls take turns for its one arena) and 1, 2 and 8 threads each calling a
model of its own (the native runs overlap, since they release the GIL). Every thread's outputs are
first checked against the single-thread result, which is checked against the reference interpreter.
Each configuration is measured in ROUNDS short runs, taken in turns with the others so that all see
the same machine load; the table gives the median and the best run.

Usage: python benchmarks/concurrent_calls.py [seconds per run, default 0.3]
"""

import os
import statistics
import sys
import threading
import time

import numpy as np
from user_calls import seed_mlp

import ember as mx
from ember.compiler import run

THREAD_COUNTS = (1, 2, 8)
BATCHES = (1, 64)
ROUNDS = 5
SHAPES = {"fc1_weight": (128, 784), "fc1_bias": (128,), "fc2_weight": (64, 128), "fc2_bias": (64,),
          "fc3_weight": (10, 64), "fc3_bias": (10,)}  # fmt: skip


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ('unknown CPU' where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def calls_per_second(models, feeds, threads: int, seconds: float) -> float:
    """Calls per second of `threads` threads, thread i calling models[i % len(models)] on feeds[i]."""
    counts = [0] * threads
    start, stop = threading.Barrier(threads + 1), threading.Event()

    def loop(i):
        model, feed = models[i % len(models)], feeds[i % len(feeds)]
        start.wait()
        while not stop.is_set():
            model(data=feed)
            counts[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - began)


def check_threads(models, feeds, expected, threads: int, calls: int = 200) -> int:
    """How many of `threads` x `calls` concurrent calls returned anything but the expected outputs."""
    wrong = [0] * threads

    def loop(i):
        model, feed, want = models[i % len(models)], feeds[i], expected[i]
        wrong[i] = sum(not np.array_equal(model(data=feed)[0], want) for _ in range(calls))

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(wrong)


def workload(batch: int, seconds: float) -> list[tuple]:
    """Rows (batch, models, threads, median calls/s, best calls/s, wrong calls) for one batch size."""
    rng = np.random.default_rng(0)
    params = {k: (0.1 * rng.standard_normal(s)).astype(np.float32) for k, s in SHAPES.items()}
    copies = [mx.compile(seed_mlp(), {"data": (batch, 784)}, params) for _ in range(max(THREAD_COUNTS))]
    feeds = [rng.standard_normal((batch, 784)).astype(np.float32) for _ in range(max(THREAD_COUNTS))]
    expected = [copies[0](data=x)[0] for x in feeds]
    labels = np.zeros(batch, np.float32)
    reference = run(seed_mlp()._graph, {"data": feeds[0], "softmax_label": labels, **params})[0]
    np.testing.assert_allclose(expected[0], reference, rtol=1e-5, atol=1e-6)
    cells = [(shared, threads) for shared in (True, False) for threads in THREAD_COUNTS]
    models = {cell: copies[:1] if cell[0] else copies[: cell[1]] for cell in cells}
    wrong = {cell: check_threads(models[cell], feeds, expected, cell[1]) for cell in cells}
    rates: dict = {cell: [] for cell in cells}
    for _ in range(ROUNDS):
        for cell in cells:
            rates[cell].append(calls_per_second(models[cell], feeds, cell[1], seconds))
    return [
        (batch, "one shared" if shared else "one per thread", threads,
         statistics.median(rates[(shared, threads)]), max(rates[(shared, threads)]), wrong[(shared, threads)])
        for shared, threads in cells
    ]  # fmt: skip


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.3
    pool = os.environ.get("EMBER_NUM_THREADS") or f"{os.cpu_count()} (every CPU)"
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; native thread pool per model: {pool}")
    print(f"calls/s over {ROUNDS} runs of {seconds:g} s; 'x 1' compares medians with one thread on one model")
    print(f"{'batch':>5}  {'model':<15} {'threads':>7} {'median':>9} {'best':>9} {'x 1':>6} {'wrong':>6}")
    for batch in BATCHES:
        rows = workload(batch, seconds)
        single = rows[0][3]
        for size, models, threads, median, best, wrong in rows:
            print(
                f"{size:>5}  {models:<15} {threads:>7} {median:>9.0f} {best:>9.0f} "
                f"{median / single:>6.2f} {wrong:>6}"
            )


if __name__ == "__main__":
    main()

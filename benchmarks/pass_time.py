"""Time the compiler's passes alone (no LLVM): the compile driver's `build` (its target-independent
half) on the seed MLP's fused training step (batch 100, SGD), from its graph and its variables'
shapes and dtypes by name, as a cold compile starts. Prints the median of 40 builds.

Usage: python benchmarks/pass_time.py
"""

import statistics
import time

import numpy as np

from ember.bench.workloads import fused_step, rebuild_options, seed_mlp
from ember.codegen.driver import build
from ember.compiler import Graph

REPEATS = 40


def main() -> None:
    x = np.zeros((100, 784), np.float32)
    _, fused = fused_step(seed_mlp(), x, np.zeros(100, np.float32))
    options = rebuild_options(fused.built, is_train=True)
    shapes, dtypes = options.pop("shapes"), options.pop("dtypes")
    graph = Graph(fused.built.graph.outputs)  # untyped: build infers types, as a cold compile does
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        build(graph, shapes=shapes, dtypes=dtypes, **options)
        times.append(time.perf_counter() - start)
    ops = sum(not n.is_variable for n in graph.nodes)
    print(f"build, seed MLP training step ({ops} ops): median {statistics.median(times) * 1e3:.1f} ms "
          f"of {REPEATS}")  # fmt: skip


if __name__ == "__main__":
    main()

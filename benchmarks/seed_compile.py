"""Compile figures of the seed MLP (784-128-64-10, batch 100): the inference program and the whole
training step (forward, loss, backward and the SGD-with-momentum update), each cold (empty compile
cache) and cached, with its kernel count and arena size.

Usage: python benchmarks/seed_compile.py
"""

import os
import tempfile
import time

import numpy as np

import ember as mx
from ember.bench.workloads import rebuild_options
from ember.codegen.driver import compile_graph
from ember.compiler import Graph


def seed_mlp():
    data = mx.sym.Variable("data")
    net = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=128, name="fc1"), act_type="relu")
    net = mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=64, name="fc2"), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=10, name="fc3"), name="softmax")


def training_module():
    """A bound Module whose fit step is fused, and the fused step's graph inputs (for rebuilding)."""
    x = np.zeros((100, 784), np.float32)
    it = mx.io.NDArrayIter(x, np.zeros(100, np.float32), batch_size=100)
    mod = mx.mod.Module(seed_mlp())
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params()
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    return mod


def timed(build):
    start = time.perf_counter()
    result = build()
    return result, time.perf_counter() - start


def report(name: str, compile_once) -> None:
    os.environ["EMBER_CACHE_DIR"] = tempfile.mkdtemp(prefix="ember-bench-cache-")  # cold: an empty cache
    compiled, cold = timed(compile_once)
    _, cached = timed(compile_once)
    built, library, program = compiled.built, compiled.code, compiled.program
    ops = sum(not n.is_variable for n in built.graph.nodes)
    print(
        f"{name}: {len(program.kernels)} kernels for {ops} ops, arena {program.arena_bytes:,} bytes "
        f"(memory plan {program.plan_bytes:,}, naive {built.plan.naive_bytes:,}); compile cold {cold:.2f} s, "
        f"cached {cached:.3f} s; library {len(library):,} bytes"
    )
    print("  kernels:", ", ".join(k.name for k in program.kernels))


def main() -> None:
    symbol = seed_mlp()
    arg_shapes, _, _ = symbol.infer_shape(data=(100, 784))
    shapes = dict(zip(symbol.list_arguments(), arg_shapes))
    report("inference", lambda: compile_graph(symbol._graph, "llvm", shapes=shapes, name="seed_infer"))
    mod = training_module()
    fused = mod._fused_step()
    options = rebuild_options(fused.built, is_train=True)
    report(
        "training step (forward + backward + SGD momentum update)",
        lambda: compile_graph(Graph(fused.built.graph.outputs), "llvm", **options),
    )


if __name__ == "__main__":
    main()

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
from ember.codegen.package import library_for
from ember.compiler.build import build_program


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


def report(name: str, make_built) -> None:
    os.environ["EMBER_CACHE_DIR"] = tempfile.mkdtemp(prefix="ember-bench-cache-")  # cold: an empty cache
    def compile_once():
        built = make_built()
        return built, library_for(built)

    (built, library), cold = timed(compile_once)
    _, cached = timed(compile_once)
    program = built.program
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
    report("inference", lambda: build_program(symbol._graph, shapes, name="seed_infer"))
    mod = training_module()
    fused = mod._fused_step()
    step = fused.built
    report(
        "training step (forward + backward + SGD momentum update)",
        lambda: build_program(
            step.graph, _var_shapes(step), _var_dtypes(step), name="train_step", roles=_roles(step), is_train=True,
            updates=_updates(step),
        ),
    )  # fmt: skip


def _var_shapes(built):
    return {v.name: built.types[v.output()].shape for v in built.graph.variables}


def _var_dtypes(built):
    return {v.name: built.types[v.output()].dtype for v in built.graph.variables}


def _roles(built):
    program = built.program
    return {**dict.fromkeys(program.parameters, "parameter"), **dict.fromkeys(program.states, "state")}


def _updates(built):
    program = built.program
    names = {buffer: name for name, buffer in {**program.parameters, **program.states}.items()}
    outputs = [buffer for _, buffer in program.outputs]
    return {names[state]: outputs.index(new) for state, new in program.updates if new in outputs}


if __name__ == "__main__":
    main()

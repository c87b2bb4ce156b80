"""Every kind of generated kernel, at every thread count from 1 to 4, against the reference interpreter.

Each entry of VARIANTS is a small graph chosen to exercise one code path of codegen, with odd sizes
(row and column tails); `features` reads the lowered program and proves the path is really taken
(a packed GEMM, a batched one, the dot-product form, a stage split across threads, a serial scatter,
...). Each variant is compiled once; each thread count then loads its own copy of the library (its
own thread pool, sized by EMBER_NUM_THREADS when it starts). The results must match the reference
and be byte-identical to the single-thread run: every element is computed by one thread with the
same code, whatever the thread count.

GEMM inputs are multiples of 1/16 (every sum of products is exact, so any summation order matches
NumPy's exactly); other inputs are ordinary floats.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import ember as mx
from ember.codegen.driver import compile_graph
from ember.codegen.gemm import block_columns, packs_b
from ember.codegen.parallel import stage_split
from ember.compiler import Graph, evaluate
from ember.compiler.passes import infer_shapes
from ember.compiler.passes.autodiff import gradients
from ember.compiler.program import GemmStage, LoopStage
from ember.runtime.executable import Executable

from .harness import assert_close
from .test_matmul_compiled import exact

THREADS = [1, 2, 3, 4]


@dataclass(frozen=True)
class Variant:
    """`build()` gives (graph, feeds, is_train); `shows` are the `features` its program must have."""

    name: str
    build: Callable
    shows: frozenset
    rtol: float = 1e-5
    atol: float = 1e-6


def features(program) -> set[str]:
    """The code paths a program's stages take (names used by VARIANTS' `shows`)."""
    found = set()
    for kernel in program.kernels:
        for stage in kernel.stages:
            split = stage_split(stage)
            if isinstance(stage, GemmStage):
                found |= _gemm_features(stage)
                found.add("gemm on threads" if split.parallel else "gemm on one thread")
                continue
            found.add("loop on threads" if split.parallel else "loop on one thread")
            if any(store.mode != "store" for store in stage.stores):
                found.add("scatter")
            if _dot_form(stage):
                found.add("dot form")
    return found


def _gemm_features(g: GemmStage) -> set[str]:
    cols = block_columns(g.dtype)
    found = {f"gemm {g.dtype}", "gemm packed" if packs_b(g, cols) else "gemm unpacked"}
    if g.batch > 1:
        found.add("gemm batched")
    if g.m % 4:
        found.add("gemm row tail")
    if g.n % cols:
        found.add("gemm column tail")
    if g.a.strides[2] != 1:
        found.add("gemm strided A")
    return found


def _dot_form(stage: LoopStage) -> bool:
    """A (batch, m, n) loop whose stores are one sum of products each: the lowering's dot-product form."""
    text = str(stage)
    return len(stage.domain) == 3 and "= sum(" in text and ": mul(" in text


# -- the graphs ---------------------------------------------------------------------------------------


def _forward(symbol, arrays, is_train=False):
    return symbol._graph, arrays, is_train


def _with_gradients(symbol, arrays, wrt, heads=None):
    """Outputs of `symbol` and the gradients of its outputs with respect to `wrt` (head gradients by
    name in `arrays`, or a loss head)."""
    graph = symbol._graph
    shapes = infer_shapes(graph, {name: a.shape for name, a in arrays.items()})
    values = [v.output() for v in graph.variables if v.name in wrt]
    head_values = [None] if heads is None else [mx.sym.var(h)._graph.outputs[0] for h in heads]
    grads = gradients(graph, shapes, values, head_values)
    return Graph(list(graph.outputs) + grads), arrays, True


def _rng():
    return np.random.default_rng(7)


def gemm_packed():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    return _forward(mx.sym.relu(mx.sym.dot(a, b)), {"a": exact(203, 97), "b": exact(97, 301)})


def gemm_batched():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    return _forward(mx.sym.batch_dot(a, b), {"a": exact(3, 37, 53), "b": exact(3, 53, 71)})


def gemm_transposed():
    a, b, c = mx.sym.var("a"), mx.sym.var("b"), mx.sym.var("c")
    at_b = mx.sym.dot(a, b, transpose_a=True)  # A read column-strided
    a_bt = mx.sym.dot(c, b, transpose_b=True)  # B stored transposed first
    arrays = {"a": exact(97, 203), "b": exact(97, 301), "c": exact(45, 301)}
    return _forward(mx.sym.Group([at_b, a_bt]), arrays)


def gemm_float64():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    return _forward(
        mx.sym.dot(a, b), {"a": exact(67, 130, dtype=np.float64), "b": exact(130, 90, dtype=np.float64)}
    )


def gemm_int32():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    rng = _rng()
    arrays = {
        name: rng.integers(-50, 50, shape).astype(np.int32)
        for name, shape in (("a", (67, 45)), ("b", (45, 90)))
    }
    return _forward(mx.sym.dot(a, b), arrays)


def fully_connected_dot_form():
    data = mx.sym.var("data")
    fc = mx.sym.FullyConnected(data, num_hidden=77, name="fc")
    arrays = {"data": exact(3, 130), "fc_weight": exact(77, 130), "fc_bias": exact(77)}
    return _forward(mx.sym.Activation(fc, act_type="tanh"), arrays)


def mlp_training_step():
    """The seed MLP's forward and backward at batch 100: GEMMs in every transpose, fused bias+relu
    epilogues, bias gradients as column sums, softmax and its loss gradient."""
    net = mx.sym.var("data")
    for i, hidden in enumerate((128, 64, 10)):
        net = mx.sym.FullyConnected(net, num_hidden=hidden, name=f"fc{i}")
        net = mx.sym.Activation(net, act_type="relu") if hidden != 10 else net
    symbol = mx.sym.SoftmaxOutput(net, name="softmax")
    rng = _rng()
    arrays = {"data": exact(100, 784), "softmax_label": rng.integers(0, 10, 100).astype(np.float32)}
    for i, (fan_in, hidden) in enumerate(((784, 128), (128, 64), (64, 10))):
        arrays[f"fc{i}_weight"] = exact(hidden, fan_in) / 8
        arrays[f"fc{i}_bias"] = exact(hidden) / 8
    params = [name for name in arrays if name.startswith("fc")]
    return _with_gradients(symbol, arrays, params)


def convolution_step():
    """A small LeNet: im2col GEMMs forward, data and weight gradients, max pooling and its scatter. The
    head gradient is exact too (multiples of 1/16), so every sum of the backward pass is exact."""
    data = mx.sym.var("data")
    conv = mx.sym.Convolution(data, kernel=(5, 5), num_filter=6, name="conv")
    pool = mx.sym.Pooling(mx.sym.relu(conv), kernel=(2, 2), stride=(2, 2), pool_type="max")
    fc = mx.sym.FullyConnected(mx.sym.Flatten(pool), num_hidden=10, name="fc")
    arrays = {
        "data": exact(33, 1, 28, 28),
        "conv_weight": exact(6, 1, 5, 5),
        "conv_bias": exact(6),
        "fc_weight": exact(10, 6 * 12 * 12) / 4,
        "fc_bias": exact(10),
        "head": exact(33, 10),
    }
    wrt = ["data", "conv_weight", "conv_bias", "fc_weight", "fc_bias"]
    return _with_gradients(fc, arrays, wrt, heads=["head"])


def elementwise_chain():
    x = mx.sym.var("x")
    chain = mx.sym.relu(1.5 * x + 0.25) * mx.sym.sigmoid(x) + mx.sym.tanh(x)
    return _forward(chain, {"x": _rng().uniform(-6, 6, (1 << 17) + 3).astype(np.float32)})


def transcendentals():
    """Every vectorized math function on an odd-sized array, the large stages split across threads."""
    x = mx.sym.var("x")
    functions = [mx.sym.exp, mx.sym.expm1, mx.sym.log, mx.sym.log1p, mx.sym.log2, mx.sym.log10]
    outputs = [f(x) for f in functions] + [mx.sym.tanh(x - 3), mx.sym.sigmoid(x - 3)]
    return _forward(mx.sym.Group(outputs), {"x": _rng().uniform(1e-3, 8, 100_003).astype(np.float32)})


def reductions():
    """Row and column reductions with vector accumulators, a whole-array reduction, NaN in a max. The
    values are multiples of 1/16, so the sums are exact (NumPy's float32 column sums are not)."""
    x = mx.sym.var("x")
    values = (np.round(_rng().standard_normal((513, 257)) * 16) / 16).astype(np.float32)
    values[5, 100] = np.nan
    outputs = [
        mx.sym.softmax(x, axis=-1),
        mx.sym.sum(x, axis=0),
        mx.sym.max(x, axis=1),
        mx.sym.min(x, axis=0),
        mx.sym.mean(x),
        mx.sym.norm(x, axis=1),
    ]
    return _forward(mx.sym.Group(outputs), {"x": values})


def fewer_items_than_threads():
    """Three long rows: a parallel stage with fewer items than threads leaves some threads idle."""
    x = mx.sym.var("x")
    values = (np.round(_rng().standard_normal((3, 40_001)) * 16) / 16).astype(np.float32)
    return _forward(mx.sym.Group([mx.sym.softmax(x, axis=1), mx.sym.sum(x, axis=1)]), {"x": values})


def scatter():
    """take's gradient adds rows at repeated indices: a scatter stage, never split across threads."""
    weight, indices = mx.sym.var("weight"), mx.sym.var("indices")
    rng = _rng()
    arrays = {
        "weight": rng.standard_normal((37, 129)).astype(np.float32),
        "indices": rng.integers(0, 37, 301).astype(np.float32),
        "head": rng.standard_normal((301, 129)).astype(np.float32),
    }
    return _with_gradients(mx.sym.take(weight, indices), arrays, ["weight"], heads=["head"])


VARIANTS = [
    Variant("gemm_packed", gemm_packed, frozenset(
        {"gemm packed", "gemm row tail", "gemm column tail", "gemm on threads"})),
    Variant("gemm_batched", gemm_batched, frozenset(
        {"gemm unpacked", "gemm batched", "gemm row tail", "gemm column tail", "gemm on threads"})),
    Variant("gemm_transposed", gemm_transposed, frozenset({"gemm strided A", "gemm on threads"})),
    Variant("gemm_float64", gemm_float64, frozenset({"gemm float64", "gemm packed", "gemm row tail"})),
    Variant("gemm_int32", gemm_int32, frozenset({"gemm int32", "gemm column tail"})),
    Variant("fully_connected_dot_form", fully_connected_dot_form, frozenset({"dot form"})),
    Variant("mlp_training_step", mlp_training_step, frozenset(
        {"gemm strided A", "gemm on threads", "gemm on one thread", "loop on one thread"})),
    Variant("convolution_step", convolution_step, frozenset(
        {"gemm on threads", "gemm batched", "scatter", "loop on threads"})),
    Variant("elementwise_chain", elementwise_chain, frozenset({"loop on threads"})),
    Variant("transcendentals", transcendentals, frozenset({"loop on threads"})),
    Variant("reductions", reductions, frozenset({"loop on threads", "loop on one thread"})),
    Variant("fewer_items_than_threads", fewer_items_than_threads, frozenset({"loop on threads"})),
    Variant("scatter", scatter, frozenset({"scatter", "loop on one thread"})),
]  # fmt: skip


@functools.cache
def compiled(name: str):
    """(library bytes, layout, program, feeds, reference outputs) of variant `name`, built once."""
    variant = next(v for v in VARIANTS if v.name == name)
    graph, arrays, is_train = variant.build()
    shapes = {k: a.shape for k, a in arrays.items()}
    dtypes = {k: a.dtype.name for k, a in arrays.items()}
    compiled = compile_graph(
        graph, "llvm", shapes=shapes, dtypes=dtypes, optimize=True, is_train=is_train, cache=False
    )
    library, layout, built = compiled.code, compiled.layout, compiled.built
    want = [evaluate(graph, arrays)[value] for value in graph.outputs]
    return library, layout, built.program, arrays, want


def run_on(name: str, threads: int, monkeypatch) -> list[np.ndarray]:
    """Variant `name`'s outputs from a fresh copy of its library whose pool has `threads` threads."""
    library, layout, _, arrays, _ = compiled(name)
    monkeypatch.setenv("EMBER_NUM_THREADS", str(threads))
    exe = Executable(library, layout)
    outputs = exe(**{k: v for k, v in arrays.items() if k in exe.input_names})
    assert exe._library.ember_pool_threads() == threads
    return outputs


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_the_variant_takes_its_code_path(variant):
    _, _, program, _, _ = compiled(variant.name)
    missing = variant.shows - features(program)
    assert not missing, f"{variant.name} does not show {sorted(missing)}:\n{program}"


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_every_thread_count_matches_the_reference_and_one_thread(variant, threads, monkeypatch):
    *_, want = compiled(variant.name)
    got = run_on(variant.name, threads, monkeypatch)
    for position, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, rtol=variant.rtol, atol=variant.atol, what=f"{variant.name} output {position}")
    if threads > 1:
        single = run_on(variant.name, 1, monkeypatch)
        for position, (g, s) in enumerate(zip(got, single)):
            assert g.tobytes() == s.tobytes(), f"{variant.name} output {position}: {threads} threads != 1"

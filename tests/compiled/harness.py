"""Compile a graph to native code and run it: the shared helper of the compiled-vs-reference tests."""

from __future__ import annotations

import numpy as np

from ember.codegen import driver
from ember.codegen.targets import CudaTarget


def compile_graph(graph, shapes, dtypes=None, *, optimize=False, is_train=False, roles=None):
    """(Executable, Built) for `graph` with the variables' shapes (and dtypes) by name."""
    compiled = driver.compile_graph(
        graph, "llvm", shapes=shapes, dtypes=dtypes, optimize=optimize, is_train=is_train, roles=roles,
        cache=False,  # thousands of one-off programs: compiled fresh, as before, not stored in the user's cache
    )  # fmt: skip
    return compiled.load(), compiled.built


def check_op_case(case, load=compile_graph, where: str = "") -> None:
    """One registry case (tests/ops) compiled by `load(graph, shapes, dtypes, is_train=...)` and run:
    every output matches the reference interpreter's."""
    from ember.compiler import RefContext, evaluate

    from ..ops.harness import input_dtypes, input_shapes

    rng = np.random.default_rng(0)
    graph, node = case.graph()
    arrays = case.arrays(rng)
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    want = evaluate(graph, feeds, RefContext(case.is_train, np.random.default_rng(0)))
    exe, _ = load(graph, input_shapes(case), input_dtypes(case, arrays), is_train=case.is_train)
    got = exe(**feeds)
    for position, value in enumerate(graph.outputs):
        assert_close(got[position], want[value], what=f"{case.id} output {position}{where}")


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-5, atol: float = 1e-6, what: str = ""):
    """Same shape and dtype, and equal within rtol/atol (NaNs in the same places; exact for integers)."""
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if want.dtype.kind in "iub":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        if want.dtype == np.float16:
            rtol, atol = max(rtol, 1e-3), max(atol, 1e-3)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def cuda_program(graph, shapes, dtypes=None, *, arch="sm_80", optimize=False, is_train=False, roles=None):
    """(CudaCode, Built) for `graph`: its PTX for `arch` and kernel launches."""
    compiled = _cuda_compiled(graph, shapes, dtypes, arch, optimize=optimize, is_train=is_train, roles=roles)
    return compiled.code, compiled.built


def _cuda_compiled(graph, shapes, dtypes, arch, **options):
    return driver.compile_graph(graph, CudaTarget(arch), shapes=shapes, dtypes=dtypes, cache=False, **options)


def load_on_gpu(graph, shapes, dtypes=None, **options):
    """(CudaExecutable on GPU 0, Built) for `graph`, compiled for that GPU's architecture."""
    from ember.runtime.cuda_driver import cuda_device

    compiled = _cuda_compiled(graph, shapes, dtypes, cuda_device(0).arch(), **options)
    return compiled.load(), compiled.built

"""Code generation: loops are vectorized for this CPU (elementwise chains, float sums, GEMM blocks),
and a missing linker is one clear error."""

from __future__ import annotations

import re

import numpy as np
import pytest

import ember as mx
from ember.codegen.cpu import build_library, find_linker, llvm_ir
from ember.compiler.build import build_program
from ember.runtime.errors import CompileError


def _optimized_ir(symbol, shapes) -> str:
    return llvm_ir(build_program(symbol._graph, shapes).program, optimized=True)


def _vector_ops(text: str, op: str) -> list[str]:
    """The vector widths of `op` instructions on float vectors in LLVM IR text."""
    return re.findall(rf"= {op}(?: [a-z]+)* <(\d+) x float>", text)


def test_an_elementwise_chain_becomes_vector_code():
    x = mx.sym.var("x")
    text = _optimized_ir(mx.sym.relu(x * 1.5 + 0.25) * x, {"x": (1001,)})
    assert _vector_ops(text, "fmul"), "no vector multiply in the optimized elementwise kernel"


def test_a_float_sum_becomes_vector_code():
    x = mx.sym.var("x")
    text = _optimized_ir(mx.sym.sum(x * x, axis=1), {"x": (4, 999)})
    assert _vector_ops(text, "fadd") or "llvm.vector.reduce.fadd" in text


def test_gemm_blocks_are_explicit_vector_code():
    data = mx.sym.var("data")
    text = _optimized_ir(mx.sym.FullyConnected(data, num_hidden=130, no_bias=True), {"data": (9, 37)})
    widths = {int(w) for w in _vector_ops(text, "fmul") + re.findall(r"fma\.v(\d+)f32", text)}
    assert widths, "no vector arithmetic in the GEMM kernel"


def test_no_c_compiler_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("EMBER_CC", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(CompileError) as caught:
        find_linker()
    assert str(caught.value) == (
        "no C compiler to link the compiled program into a shared library: install gcc or clang "
        "(or set EMBER_CC to one)"
    )
    x = mx.sym.var("x")
    with pytest.raises(CompileError, match="no C compiler"):
        build_library(build_program(mx.sym.exp(x)._graph, {"x": (3,)}).program)


@pytest.mark.parametrize("m,k,n", [(64, 1024, 200), (19, 64, 130), (256, 300, 64)])
def test_packed_gemm_is_within_the_float32_error_bound(m, k, n):
    """Large GEMMs pack B's panels first (codegen/gemm.py packs_b); every element stays within the
    standard bound k * eps * (|A| @ |B|) of the exact product."""
    from ember.codegen.gemm import block_columns, packs_b
    from ember.compiler.program import GemmStage, Operand

    assert packs_b(GemmStage(Operand("a", (0, k, 1)), Operand("b", (0, n, 1)), Operand("c", (0, n, 1)), 1, m, n, k,
                             "float32"), block_columns("float32"))  # fmt: skip
    rng = np.random.default_rng(m)
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    x, w = mx.sym.var("x"), mx.sym.var("w")
    (got,) = mx.compile(mx.sym.dot(x, w), {"x": (m, k)}, {"w": b})(x=a)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = k * np.finfo(np.float32).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert np.all(np.abs(got - exact) <= bound)

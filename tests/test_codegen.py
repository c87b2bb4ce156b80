"""Code generation: loops are vectorized for this CPU (elementwise chains, float sums, GEMM blocks),
and a missing linker is one clear error."""

from __future__ import annotations

import re

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

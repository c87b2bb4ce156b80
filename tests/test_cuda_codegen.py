"""CUDA code generation on any machine (no GPU needed): every op of the registry's cases, the fused
groups, GEMMs, reductions and the seed MLP's training program compile to PTX that NVIDIA's `ptxas`
assembles for sm_80 and sm_90 (skipped, with the reason printed, where ptxas is not installed), and
the launches fit CUDA's limits."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import ember as mx
from ember.codegen.gpu_kernels import BLOCK, TILE
from ember.codegen.nvptx import cuda_code, find_libdevice
from ember.compiler.build import build_program
from ember.runtime.errors import CompileError

from .compiled.harness import cuda_program
from .compiled.test_ops_compiled import _deterministic
from .ops.harness import input_dtypes, input_shapes
from .ops.test_op_registry import ALL_CASES

ARCHS = ("sm_80", "sm_90")
PTXAS = shutil.which("ptxas")
needs_ptxas = pytest.mark.skipif(PTXAS is None, reason="ptxas (NVIDIA's PTX assembler) is not on PATH")
needs_libdevice = pytest.mark.skipif(find_libdevice() is None, reason="NVIDIA's libdevice is not installed")


def assemble(ptx: str, tmp_path, name: str = "program") -> None:
    """ptxas accepts the PTX for every architecture of ARCHS (its messages in the failure)."""
    path = tmp_path / f"{name}.ptx"
    path.write_text(ptx)
    for arch in ARCHS:
        result = subprocess.run(
            [PTXAS, f"-arch={arch}", str(path), "-o", str(tmp_path / f"{name}.{arch}.cubin")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"ptxas -arch={arch} rejected {name}:\n{result.stderr[:4000]}"


def check_launches(code) -> None:
    for launch in code.launches:
        assert all(1 <= g <= 65535 for g in launch.grid), launch
        assert 1 <= np.prod(launch.block) <= 1024, launch
        assert f".entry {launch.symbol}(" in code.ptx, f"{launch.symbol} is not a kernel of the PTX"


def _case_graph(case):
    rng = np.random.default_rng(0)
    graph, _ = case.graph()
    arrays = case.arrays(rng)
    return graph, input_shapes(case), input_dtypes(case, arrays)


@needs_ptxas
@needs_libdevice
@pytest.mark.parametrize("case", [c for c in ALL_CASES if _deterministic(c)], ids=lambda c: c.id)
def test_every_op_assembles_for_sm80_and_sm90(case, tmp_path):
    graph, shapes, dtypes = _case_graph(case)
    code, _ = cuda_program(graph, shapes, dtypes, is_train=case.is_train)
    check_launches(code)
    assemble(code.ptx, tmp_path, case.op)


def _mlp_training_graph(batch=100):
    from ember.compiler import Graph
    from ember.compiler.passes import infer_shapes
    from ember.compiler.passes.autodiff import gradients

    net = mx.sym.var("data")
    for i, hidden in enumerate((128, 64, 10)):
        net = mx.sym.FullyConnected(net, num_hidden=hidden, name=f"fc{i}")
        net = mx.sym.Activation(net, act_type="relu") if hidden != 10 else net
    symbol = mx.sym.SoftmaxOutput(net, name="softmax")
    arg_shapes, _, _ = symbol.infer_shape(data=(batch, 784))
    shapes = dict(zip(symbol.list_arguments(), arg_shapes))
    forward = symbol._graph
    params = [v.output() for v in forward.variables if v.name.startswith("fc")]
    graph = Graph(list(forward.outputs) + gradients(forward, infer_shapes(forward, shapes), params, [None]))
    return graph, shapes


@needs_ptxas
def test_the_seed_mlp_training_program_assembles(tmp_path):
    graph, shapes = _mlp_training_graph()
    code, built = cuda_program(graph, shapes, optimize=True, is_train=True)
    stages = sum(len(k.stages) for k in built.program.kernels)
    assert len(code.launches) == stages  # one GPU kernel per stage
    check_launches(code)
    assemble(code.ptx, tmp_path, "mlp_step")


GEMMS = {
    "batch_dot": (lambda a, b: mx.sym.batch_dot(a, b), {"a": (3, 37, 53), "b": (3, 53, 71)}),
    "transpose_a": (lambda a, b: mx.sym.dot(a, b, transpose_a=True), {"a": (53, 37), "b": (53, 71)}),
    "transpose_b_epilogue": (
        lambda a, b: mx.sym.relu(mx.sym.batch_dot(a, b, transpose_b=True)) * 2,
        {"a": (3, 37, 53), "b": (3, 71, 53)},
    ),
}


@needs_ptxas
@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "int8"])
def test_gemm_kernels_assemble_for_every_dtype(gemm, dtype, tmp_path):
    build, shapes = GEMMS[gemm]
    symbol = build(mx.sym.var("a"), mx.sym.var("b"))
    built = build_program(symbol._graph, shapes, {"a": dtype, "b": dtype})
    code = cuda_code(built.program, "sm_80")
    assert any(launch.block == (TILE, TILE, 1) for launch in code.launches), "no tiled GEMM kernel"
    check_launches(code)
    assemble(code.ptx, tmp_path, f"gemm_{dtype}")


def test_large_gathers_use_a_grid_stride_loop():
    x = mx.sym.var("x")
    built = build_program(mx.sym.tanh(x * 2 + 1)._graph, {"x": (1 << 25,)})
    code = cuda_code(built.program)
    (launch,) = code.launches
    assert launch.block == (BLOCK, 1, 1) and launch.grid == (65535, 1, 1)  # 2^25 / 256 blocks, capped
    assert "nctaid.x" in code.ptx  # the stride: every thread loops over its share


def test_an_unknown_architecture_is_a_clear_error():
    x = mx.sym.var("x")
    built = build_program(mx.sym.relu(x)._graph, {"x": (4,)})
    with pytest.raises(CompileError, match="unknown CUDA architecture 'compute_80'"):
        cuda_code(built.program, "compute_80")


def test_a_missing_libdevice_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBER_LIBDEVICE", str(tmp_path / "missing.bc"))
    x = mx.sym.var("x")
    built = build_program(mx.sym.sin(x)._graph, {"x": (4,)})
    with pytest.raises(CompileError, match="needs NVIDIA's libdevice for __nv_sinf"):
        cuda_code(built.program)


@needs_ptxas
def test_gemms_with_more_row_tiles_than_a_grid_axis_holds_loop_over_them(tmp_path):
    a, b = mx.sym.var("a"), mx.sym.var("b")
    built = build_program(mx.sym.dot(a, b)._graph, {"a": (1_100_000, 2), "b": (2, 3)})
    code = cuda_code(built.program)
    (launch,) = code.launches
    assert launch.grid == (1, 65535, 1)  # 68,750 row tiles: the y axis is capped, blocks loop
    assert "nctaid.y" in code.ptx
    assemble(code.ptx, tmp_path, "tall_gemm")


def test_empty_gemms_launch_a_grid_that_writes_nothing():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    built = build_program(mx.sym.dot(a, b)._graph, {"a": (0, 2), "b": (2, 3)})
    code = cuda_code(built.program)
    check_launches(code)

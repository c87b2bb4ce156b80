"""The compile driver (codegen/driver.py) is the one path from a graph to code, for the CPU and CUDA.

Every caller - `ember.compile`, executors, Module's fused step, the CLI, the benchmarks - reaches
compiled code through `driver.compile_graph` (or `driver.build`, for inspection only): a spy on that
function sees each of them, with the target it chose, and a scan of the frontend's imports finds no
other way in. CUDA goes through the same function up to PTX on a machine without a GPU.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import ember as mx
from ember.codegen import driver
from ember.codegen.targets import CpuTarget, CudaTarget, target_for
from ember.compiler.cache import CompileCache
from ember.runtime.errors import DeviceError, MXNetError


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """These tests are about compiled programs: executors compile from their first run, not 'tiered'."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")


REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def calls(monkeypatch):
    """Every `driver.compile_graph` call from now on, as (target name, program name)."""
    seen: list[tuple[str, str]] = []
    real = driver.compile_graph

    def spy(graph, target=None, **options):
        compiled = real(graph, target, **options)
        seen.append((compiled.target.name, compiled.program.name))
        return compiled

    monkeypatch.setattr(driver, "compile_graph", spy)
    return seen


def mlp():
    data = mx.sym.Variable("data")
    hidden = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=8, name="fc1"), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(hidden, num_hidden=3, name="fc2"), name="softmax")


def mlp_params(rng):
    return {
        "fc1_weight": rng.standard_normal((8, 5)).astype(np.float32),
        "fc1_bias": np.zeros(8, np.float32),
        "fc2_weight": rng.standard_normal((3, 8)).astype(np.float32),
        "fc2_bias": np.zeros(3, np.float32),
    }


def test_ember_compile_for_cpu_and_cuda_goes_through_compile_graph(calls, rng):
    params = mlp_params(rng)
    cpu = mx.compile(mlp(), {"data": (2, 5)}, params, name="m")
    gpu = mx.compile(mlp(), {"data": (2, 5)}, params, target="cuda", arch="sm_80", name="m")
    assert calls == [("llvm", "m"), ("cuda", "m")]
    assert cpu.manifest["target"] != "nvptx64-nvidia-cuda"
    assert gpu.manifest["target"] == "nvptx64-nvidia-cuda" and gpu.manifest["gpu_arch"] == "sm_80"
    ptx = gpu.artifact.binaries["ptx"].decode()
    assert ".target sm_80" in ptx and ".entry" in ptx
    # The layout the runtime runs by is the one the manifest embeds, with each target's own fields.
    assert cpu.manifest["layout"]["entry"].startswith("ember_run_")
    assert [x["symbol"] for x in gpu.manifest["layout"]["launches"]] == [
        line.split()[-1].rstrip("(") for line in ptx.splitlines() if line.startswith(".visible .entry")
    ]


def test_executors_and_the_fused_step_go_through_compile_graph(calls, rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 1], np.float32)
    module = mx.mod.Module(mlp())
    module.fit(mx.io.NDArrayIter(x, y, batch_size=4), optimizer="sgd", num_epoch=1)
    module.predict(mx.io.NDArrayIter(x, y, batch_size=4))
    assert ("llvm", "train_step") in calls and ("llvm", "forward_infer") in calls
    assert {target for target, _ in calls} == {"llvm"}


def test_an_executor_on_a_gpu_compiles_for_cuda_through_compile_graph(calls, monkeypatch):
    """Without a GPU the program is still built and compiled to PTX by the same function; only
    loading it fails, with DeviceError."""
    monkeypatch.setattr("ember.codegen.targets.gpu_arch", lambda device_id: None)
    executor = mlp().simple_bind(mx.cpu(), data=(2, 5), grad_req="null")
    monkeypatch.setattr(executor, "_ctx", mx.gpu(0))  # arrays cannot be placed on a GPU that is absent
    try:
        executor.forward()
    except DeviceError:
        pass  # no GPU here: the PTX was made, loading it is what failed
    assert calls == [("cuda", "forward_infer")]


def test_the_cli_rebuild_uses_the_drivers_build(monkeypatch, tmp_path, rng, capsys):
    from ember import cli

    mx.compile(mlp(), {"data": (2, 5)}, mlp_params(rng), name="inspected").save(tmp_path / "m.ember")
    seen = []
    real = driver.build
    def spy(graph, **options):
        seen.append(options["name"])
        return real(graph, **options)

    monkeypatch.setattr(driver, "build", spy)
    assert cli.main(["inspect", str(tmp_path / "m.ember"), "--ir"]) == 0
    assert seen == ["inspected"]
    assert "# rebuilt from the artifact's graph" in capsys.readouterr().out


def test_generated_code_is_returned_as_made_and_decoded_only_from_the_cache(tmp_path, monkeypatch):
    """A CUDA compile hands back the `CudaCode` object it generated (no JSON round trip); the cache's
    bytes are decoded only on a hit, to an equal object."""
    x = mx.sym.Variable("x")
    target = CudaTarget("sm_80")
    built = driver.build(mx.sym.tanh(x * 2)._graph, shapes={"x": (16,)})
    made = []
    real_generate = target.generate
    monkeypatch.setattr(target, "generate", lambda program: made.append(real_generate(program)) or made[-1])
    monkeypatch.setattr(target, "decode", lambda data: pytest.fail("decoded a freshly generated program"))
    cache = CompileCache(tmp_path)
    first = driver.compiled_from(built, target, cache)
    assert first.code is made[0]
    monkeypatch.undo()
    second = driver.compiled_from(built, target, cache)
    assert len(made) == 1 and second.code == first.code and second.layout == first.layout


def test_target_for_picks_by_name_and_context():
    assert isinstance(target_for(), CpuTarget) and isinstance(target_for("cpu"), CpuTarget)
    assert isinstance(target_for(ctx=mx.cpu(0)), CpuTarget)
    gpu = target_for(ctx=mx.gpu(1), arch="sm_90")
    assert isinstance(gpu, CudaTarget) and (gpu.arch, gpu.device_id) == ("sm_90", 1)
    with pytest.raises(MXNetError, match="unknown compile target 'tpu'; this build supports llvm, cpu, cuda"):
        target_for("tpu")


# Modules that turn a program into code or load code: only the driver and the targets may import them.
CODE_MODULES = {
    "ember.compiler.build", "ember.codegen.cpu", "ember.codegen.nvptx", "ember.codegen.kernels",
    "ember.codegen.gpu_kernels", "ember.runtime.executable", "ember.runtime.cuda_executable",
}  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_frontend_module_reaches_code_except_through_the_driver():
    sources = [*(REPO / "frontend").rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")]
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_modules(path) & CODE_MODULES)
        for path in sources
        if imported_modules(path) & CODE_MODULES
    }
    assert offenders == {}


def test_compiling_without_a_cache_neither_reads_nor_writes_one(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))
    x = mx.sym.Variable("x")
    first = driver.compile_graph((x * 3)._graph, "llvm", shapes={"x": (4,)}, cache=False)
    assert not (tmp_path / "cache").exists()
    driver.compile_graph((x * 3)._graph, "llvm", shapes={"x": (4,)})  # the user's cache: now stored
    assert len(list((tmp_path / "cache").glob("*.bin"))) == 1
    np.testing.assert_array_equal(first.load()(x=np.arange(4, dtype=np.float32))[0], [0, 3, 6, 9])

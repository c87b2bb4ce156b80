"""The `ember` console script: --version, compile -> run -> inspect round trips, and one-line errors.

Commands run in a subprocess (`python -m ember.cli`) inside a temporary folder, with the compile cache
in a temporary folder too; the exact error messages are checked by calling `ember.cli.main` in this
process (what the console script calls), a few of them in a subprocess as well. The models are small elementwise/broadcast graphs written here; the
last group compiles the MXNet-written MLP fixture (FullyConnected), which needs its lowering rule.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ember
import ember as mx
from ember.cli import main
from ember.compiler import run as reference_run

from .conftest import SHARED, TEST_FIXTURES


def ember_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`ember ARGS...` run in `cwd` (a fresh Python process); its exit status, stdout and stderr."""
    environ = {k: v for k, v in os.environ.items() if k != "EMBER_DEBUG"}
    environ.setdefault("EMBER_CACHE_DIR", str(cwd / ".ember-cache"))
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "ember.cli", *args],
        cwd=cwd,
        env=environ,
        check=False,
        capture_output=True,
        text=True,
    )


def error_line(out: subprocess.CompletedProcess) -> str:
    """The one line a failing command prints; asserts it failed with status 1 and no traceback."""
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


# -- --version ------------------------------------------------------------------------------------------


def test_version_flag_prints_the_package_version():
    out = subprocess.run(
        [sys.executable, "-m", "ember.cli", "--version"], check=False, capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"ember {ember.__version__}"


def test_console_script_is_installed_with_the_package():
    script = Path(sys.executable).parent / "ember"
    assert script.exists(), f"pip did not install the `ember` console script next to {sys.executable}"
    out = subprocess.run([str(script), "--version"], check=False, capture_output=True, text=True)
    assert out.stdout.strip() == f"ember {ember.__version__}"


# -- a small model compiled once: relu(data + bias) -------------------------------------------------------

BIAS = np.array([[-1.0, 0.5, 2.0]], dtype=np.float32)


def tiny_symbol():
    data, bias = mx.sym.Variable("data"), mx.sym.Variable("bias")
    return mx.sym.relu(mx.sym.broadcast_add(data, bias, name="broadcast_add0"), name="relu0")


@pytest.fixture(scope="module")
def tiny_compile(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A folder holding tiny-symbol.json, tiny-0001.params, x.npy, x34.npy and tiny.ember, compiled by
    the CLI; and the compile command's result."""
    folder = tmp_path_factory.mktemp("cli")
    tiny_symbol().save(str(folder / "tiny-symbol.json"))
    mx.nd.save(str(folder / "tiny-0001.params"), {"arg:bias": mx.nd.array(BIAS)})
    np.save(folder / "x.npy", np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    np.save(folder / "x34.npy", np.zeros((3, 4), dtype=np.float32))
    out = ember_cli(
        "compile", "tiny-symbol.json", "--params", "tiny-0001.params", "--shape", "data=2,3", cwd=folder
    )
    return folder, out


@pytest.fixture(scope="module")
def tiny(tiny_compile) -> Path:
    """The folder of `tiny_compile`."""
    return tiny_compile[0]


def test_compile_writes_the_artifact_and_one_summary_line(tiny_compile):
    tiny, out = tiny_compile
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    [line] = out.stderr.splitlines()
    assert line.startswith(
        "ember: compiled tiny-symbol.json -> tiny.ember: inputs data (2, 3); 1 kernel, arena "
    )
    assert line.endswith(" s")
    model = ember.runtime.load(tiny / "tiny.ember")  # default output: the symbol's name less -symbol.json
    assert model.manifest["name"] == "tiny"
    assert model.input_names == ("data",)
    assert f"arena {model.arena_bytes} bytes" in line


def test_run_saves_the_output_the_reference_interpreter_computes(tiny):
    out = ember_cli("run", "tiny.ember", "--input", "data=x.npy", "--output", "out.npy", cwd=tiny)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "ember: wrote out.npy (relu0_output: float32 (2, 3))\n"
    x = np.load(tiny / "x.npy")
    got = np.load(tiny / "out.npy")
    [expected] = reference_run(tiny_symbol()._graph, {"data": x, "bias": BIAS})
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, np.maximum(x + BIAS, 0))


def test_run_takes_a_bare_path_for_the_only_input_and_prints_without_output(tiny):
    out = ember_cli("run", "tiny.ember", "--input", "x.npy", cwd=tiny)
    assert out.returncode == 0, out.stderr
    expected = np.maximum(np.load(tiny / "x.npy") + BIAS, 0)
    assert out.stdout.startswith("relu0_output: float32 (2, 3)\n")
    assert np.array2string(expected, threshold=200) in out.stdout


def test_run_imports_neither_the_code_generator_nor_llvmlite(tiny):
    code = (
        "import sys; sys.modules['llvmlite'] = None\n"
        "from ember.cli import main\n"
        "rc = main(['run', 'tiny.ember', '--input', 'data=x.npy', '--output', 'plain.npy'])\n"
        "names = ('llvmlite', 'ember.codegen', 'ember.compiler.build')\n"
        "print(sorted(m for m in sys.modules if m.startswith(names) and sys.modules[m]))\n"
        "sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tiny, check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    np.testing.assert_array_equal(np.load(tiny / "plain.npy"), np.maximum(np.load(tiny / "x.npy") + BIAS, 0))


def test_inspect_prints_the_manifest_graph_and_kernels(tiny):
    out = ember_cli("inspect", "tiny.ember", cwd=tiny)
    assert out.returncode == 0, out.stderr
    model = ember.runtime.load(tiny / "tiny.ember")
    text = out.stdout
    for line in [
        "artifact tiny.ember: model 'tiny'",
        f"  format version 1, built by ember {ember.__version__}",
        "  runs on this machine: yes",
        "inputs:\n  data: float32 (2, 3)\noutputs:\n  relu0_output: float32 (2, 3)",
        "parameters: 1 (12 bytes)\n  bias: float32 (1, 3)",
        f"memory: arena {model.arena_bytes} bytes",
        f"content hash: {model.manifest['content_hash']}",
        "  %2 = broadcast_add(%0, %1) name='broadcast_add0'",
        "  %3 = relu(%2) name='relu0'",
        f"kernels: {', '.join(model.kernels)}",
        model.manifest["kernels"],
    ]:
        assert line in text
    assert f"{len(model.manifest['cpu_features'])} CPU features\n" in text
    assert "# after" not in text and "define" not in text  # no rebuild without --ir / --llvm


def test_inspect_ir_and_llvm_rebuild_the_program_and_print_every_pass(tiny):
    out = ember_cli("inspect", "tiny.ember", "--ir", "--llvm", cwd=tiny)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for name in (
        "fold_constants",
        "simplify_algebra",
        "common_subexpression_elimination",
        "dead_code_elimination",
    ):
        assert f"# after {name}\n" in text
    assert "# memory plan" in text
    assert "rebuilt program differs" not in text
    assert "# LLVM IR\n" in text and 'define i32 @"ember_run_tiny"' in text


def test_ember_debug_2_prints_the_passes_while_compiling(tiny):
    out = ember_cli(
        "compile", "tiny-symbol.json", "--params", "tiny-0001.params", "--shape", "data=2,3",
        "-o", "debug.ember", cwd=tiny, EMBER_DEBUG="2",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "# after fold_constants\n" in out.stderr
    assert "# memory plan" in out.stderr
    assert out.stderr.splitlines()[-1].startswith("ember: compiled tiny-symbol.json -> debug.ember: ")


# -- several outputs, input dtypes --------------------------------------------------------------------------


def test_several_outputs_go_to_numbered_files_or_to_one_path_each(tmp_path):
    data, bias = mx.sym.Variable("data"), mx.sym.Variable("bias")
    two = mx.sym.Group([mx.sym.relu(mx.sym.broadcast_add(data, bias)), mx.sym.broadcast_mul(data, bias)])
    two.save(str(tmp_path / "two-symbol.json"))
    mx.nd.save(str(tmp_path / "two.params"), {"bias": mx.nd.array(BIAS)})
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    np.save(tmp_path / "x.npy", x)
    compiled = ember_cli(
        "compile",
        "two-symbol.json",
        "--params",
        "two.params",
        "--shape",
        "data=(2, 3)",
        "-o",
        "m.ember",
        cwd=tmp_path,
    )
    assert compiled.returncode == 0, compiled.stderr
    expected = reference_run(two._graph, {"data": x, "bias": BIAS})

    numbered = ember_cli("run", "m.ember", "--input", "data=x.npy", "--output", "out.npy", cwd=tmp_path)
    assert numbered.returncode == 0, numbered.stderr
    assert [line.split()[2] for line in numbered.stderr.splitlines()] == ["out_0.npy", "out_1.npy"]
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(np.load(tmp_path / f"out_{i}.npy"), want)

    each = ember_cli(
        "run", "m.ember", "--input", "data=x.npy", "--output", "a.npy", "--output", "b.npy", cwd=tmp_path
    )
    assert each.returncode == 0, each.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), expected[0])
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), expected[1])


def test_dtype_option_sets_the_input_dtype(tmp_path):
    mx.sym.relu(mx.sym.Variable("data")).save(str(tmp_path / "r-symbol.json"))
    out = ember_cli("compile", "r-symbol.json", "--shape", "data=4", "--dtype", "data=float64", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    model = ember.runtime.load(tmp_path / "r.ember")
    assert model.manifest["inputs"] == [{"name": "data", "shape": [4], "dtype": "float64"}]
    np.testing.assert_array_equal(model(data=np.array([-1.0, 2, -3, 4]))[0], [0.0, 2, 0, 4])


# -- errors: one line, status 1 ------------------------------------------------------------------------------

ERRORS = [
    (
        ["compile", "tiny-symbol.json", "--params", "tiny-0001.params", "--shape", "data=2,x"],
        "bad --shape 'data=2,x': expected NAME=D1,D2,... with non-negative integer sizes, e.g. data=1,784",
    ),
    (
        ["compile", "tiny-symbol.json", "--params", "tiny-0001.params", "--shape", "label=2"],
        "--shape 'label': tiny-symbol.json has no variable of that name; its variables are data, bias",
    ),
    (
        ["compile", "tiny-symbol.json", "--params", "tiny-0001.params"],
        (
            "no --shape for input 'data': it is not a parameter in tiny-0001.params, and its shape does not "
            "follow from the other shapes; add --shape data=D1,D2,..."
        ),
    ),
    (
        ["compile", "tiny-symbol.json", "--shape", "data=2,3", "--dtype", "data=float8"],
        (
            "bad --dtype 'data=float8': 'float8' is not one of float32, float64, float16, uint8, int32, "
            "int8, int64, bool, int16, uint16, uint32, uint64"
        ),
    ),
    (
        ["compile", "missing-symbol.json", "--shape", "data=2,3"],
        "cannot read symbol file missing-symbol.json: No such file or directory",
    ),
    (["run", "missing.ember", "--input", "data=x.npy"], "cannot read 'missing.ember': no such file"),
    (["run", "tiny.ember", "--input", "label=x.npy"], "tiny.ember has no input 'label'; its inputs are data"),
    (["run", "tiny.ember"], "no --input for 'data'; tiny.ember takes data"),
    (
        ["run", "tiny.ember", "--input", "data=x34.npy"],
        "input 'data' of tiny.ember has shape (2, 3), but 'x34.npy' holds an array of shape (3, 4)",
    ),
    (
        ["run", "tiny.ember", "--input", "data=nope.npy"],
        "cannot read input 'data' from 'nope.npy': no such file",
    ),
    (
        ["run", "tiny.ember", "--input", "data=tiny-symbol.json"],
        "cannot read input 'data' from 'tiny-symbol.json': it is not a .npy file, or it holds Python objects",
    ),
    (
        ["inspect", "tiny-symbol.json"],
        "'tiny-symbol.json' is not an Ember artifact: it starts with b'{\\n  \"nod' instead of b'EMBERART'",
    ),
]


@pytest.mark.parametrize("args, message", ERRORS, ids=[" ".join(a[:3]) for a, _ in ERRORS])
def test_errors_print_one_line_and_return_status_1(tiny, args, message, monkeypatch, capsys):
    """The messages, checked in this process (`main` is what the console script calls) to keep the
    suite fast; the subprocess test below checks the exit status and stderr of a process."""
    monkeypatch.chdir(tiny)
    monkeypatch.delenv("EMBER_DEBUG", raising=False)
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"ember: error: {message}\n"


@pytest.mark.parametrize("case", [0, 8], ids=lambda i: " ".join(ERRORS[i][0][:3]))
def test_a_failing_process_exits_with_status_1_and_prints_one_line(tiny, case):
    args, message = ERRORS[case]
    assert error_line(ember_cli(*args, cwd=tiny)) == f"ember: error: {message}"


def test_a_corrupt_artifact_is_one_error_line(tiny, monkeypatch, capsys):
    data = bytearray((tiny / "tiny.ember").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tiny / "broken.ember").write_bytes(bytes(data))
    monkeypatch.chdir(tiny)
    for command in (["run", "broken.ember", "--input", "data=x.npy"], ["inspect", "broken.ember"]):
        assert main(command) == 1
        assert capsys.readouterr().err == (
            "ember: error: 'broken.ember' is corrupt: its SHA-256 checksum does not match its contents\n"
        )


def test_usage_errors_exit_with_status_2(tmp_path):
    out = ember_cli("run", cwd=tmp_path)
    assert out.returncode == 2
    assert "the following arguments are required: artifact" in out.stderr
    assert "Traceback" not in out.stderr


# -- the MLP MXNet 1.9.1 wrote (FullyConnected, Activation, SoftmaxOutput) ------------------------------


def mxnet_file(name: str) -> Path:
    """A file MXNet 1.9.1 wrote: in tests/fixtures, else in the shared folder; skips when absent."""
    for folder in (TEST_FIXTURES, SHARED / "fixtures" / "mxnet"):
        if (folder / name).exists():
            return folder / name
    pytest.skip(f"MXNet fixture {name} not found in tests/fixtures or {SHARED}/fixtures/mxnet")


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """ck-symbol.json and ck-0001.params compiled by the CLI with only the data shape given (the
    SoftmaxOutput label's shape is inferred, as MXNet's binding infers it)."""
    symbol_path, params_path = mxnet_file("ck-symbol.json"), mxnet_file("ck-0001.params")
    folder = tmp_path_factory.mktemp("mlp")
    out = ember_cli("compile", str(symbol_path), "--params", str(params_path), "--shape", "data=2,784",
                    "-o", "mlp.ember", cwd=folder)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return folder, mx.sym.load(str(symbol_path)), mx.nd.load(str(params_path))


def test_mlp_fixture_runs_as_the_reference_interpreter_computes(mlp):
    folder, symbol, params = mlp
    x = np.random.default_rng(1).random((2, 784), dtype=np.float32)
    np.save(folder / "x.npy", x)
    model = ember.runtime.load(folder / "mlp.ember")
    assert model.input_names == ("data", "softmax_label")
    out = ember_cli("run", "mlp.ember", "--input", "x.npy", "--output", "probs.npy", cwd=folder)  # no label
    assert out.returncode == 0, out.stderr
    feeds = {k.split(":", 1)[1]: v.asnumpy() for k, v in params.items()}
    feeds.update(data=x, softmax_label=np.zeros(2, dtype=np.float32))
    [expected] = reference_run(symbol._graph, feeds)
    got = np.load(folder / "probs.npy")
    assert got.shape == (2, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_mlp_fixture_inspect_lists_its_inputs_parameters_and_kernels(mlp):
    folder, _, _ = mlp
    out = ember_cli("inspect", "mlp.ember", cwd=folder)
    assert out.returncode == 0, out.stderr
    model = ember.runtime.load(folder / "mlp.ember")
    assert "inputs:\n  data: float32 (2, 784)\n" in out.stdout
    assert "  fullyconnected0_weight: float32 (128, 784)\n" in out.stdout
    assert "= FullyConnected(%0, %1, %2) name='fullyconnected0'" in out.stdout
    assert f"kernels: {', '.join(model.kernels)}\n" in out.stdout

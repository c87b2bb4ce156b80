"""`ember bench` (ember.bench): the quick suite runs every workload, checks each result before timing it and
reports the machine; a wrong Ember result fails the workload with a clear message; a missing PyTorch is
reported as absent; OPENBLAS_CORETYPE is unset for the run (in a child process)."""

from __future__ import annotations

import contextlib
import io
import json
import sys

import numpy as np
import pytest

from ember.bench import WORKLOAD_NAMES, BenchError, format_table, run_suite
from ember.bench.workloads import BenchCheckError, check_close
from ember.cli import main
from ember.runtime.executable import Executable

MACHINE_FIELDS = (
    "cpu_model", "cpu_count", "simd_features", "llvm_cpu", "ember_threads", "ember_threads_note",
    "numpy_version", "numpy_threads_limit", "numpy_blas", "openblas_coretype", "torch",
)  # fmt: skip


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`ember ARGV` in this process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def quick_suite(tmp_path_factory):
    """`ember bench --quick --json PATH`, run once: (status, stdout, the JSON document)."""
    folder = tmp_path_factory.mktemp("bench")
    path = folder / "bench.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBER_CACHE_DIR", str(folder / "cache"))
        status, out, _ = run_cli(["bench", "--quick", "--json", str(path)])
    return status, out, json.loads(path.read_text())


def test_the_quick_suite_runs_checks_and_times_every_workload(quick_suite):
    status, out, result = quick_suite
    assert status == 0 and result["quick"] is True and result["failures"] == []
    assert [w["name"] for w in result["workloads"]] == list(WORKLOAD_NAMES)
    for workload in result["workloads"]:
        assert workload["check_passed"] and workload["cases"], workload["name"]
        for case in workload["cases"]:
            where = f"{workload['name']} {case['case']}"
            assert case["check"]["passed"] and case["check"]["compared"], where
            assert all(c["passed"] for c in case["check"]["compared"]), where
            assert case["ember"]["median_s"] > 0 and case["ember"]["repeats"] >= 1, where
            if workload["name"] != "compile":
                assert case["numpy"]["median_s"] > 0 and case["numpy_over_ember"] > 0, where
            assert workload["name"] in out and case["case"] in out
    gemm = next(w for w in result["workloads"] if w["name"] == "sgemm")["cases"][0]
    assert gemm["rate_unit"] == "GFLOP/s" and gemm["ember"]["rate"] > 0
    infer = next(w for w in result["workloads"] if w["name"] == "mlp_infer")["cases"][0]
    assert infer["case"] == "batch 1" and infer["extras"]["python_call_us"] > 0


def test_the_report_describes_the_machine(quick_suite):
    _, out, result = quick_suite
    machine = result["machine"]
    assert all(field in machine for field in MACHINE_FIELDS)
    assert machine["cpu_model"] and machine["cpu_count"] >= 1 and isinstance(machine["simd_features"], list)
    assert machine["ember_threads"] >= 1 and "EMBER_NUM_THREADS" in machine["ember_threads_note"]
    assert machine["numpy_blas"] and set(machine["openblas_coretype"]) == {
        "set_in_environment",
        "value",
        "unset_for_run",
    }
    assert (
        "machine:" in out and "threads: Ember" in out and "OPENBLAS_CORETYPE" in out and "numpy/ember" in out
    )


@pytest.mark.parametrize("workload", ["elementwise", "mlp_train"])
def test_a_wrong_ember_result_fails_the_workload(monkeypatch, tmp_path, workload):
    real_run = Executable.run

    def wrong_run(self):
        real_run(self)
        for output in self.outputs_view():
            output += 1
        for buffer in self.layout.get("parameters", {}).values():  # a training step's updated weights
            self.view(buffer)[...] += 1

    monkeypatch.setattr(Executable, "run", wrong_run)
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)  # in this process, where the patch applies
    path = tmp_path / "bench.json"
    status, out, err = run_cli(["bench", "--quick", "--only", workload, "--json", str(path)])
    assert status == 1
    assert f"ember: error: correctness check failed: {workload} (" in err
    assert "Ember's" in err and "values are wrong" in err and "expected" in err
    (record,) = json.loads(path.read_text())["workloads"]
    assert not record["check_passed"] and all(not c["check"]["passed"] for c in record["cases"])
    assert "ember" not in record["cases"][0]  # a case that fails its check is not timed
    assert "FAILED" in out


def test_a_missing_torch_is_reported_as_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result = run_suite(quick=True, only=["sgemm"], numpy_threads=0, isolate=False)
    torch = result["machine"]["torch"]
    assert torch["available"] is False and "import of torch halted" in torch["reason"]
    assert result["machine"]["numpy_threads_limit"] is None  # 0: NumPy's own default
    for case in result["workloads"][0]["cases"]:
        assert case["torch"] is None and case["torch_over_ember"] is None
    table = format_table(result)
    assert "PyTorch absent (ModuleNotFoundError: import of torch halted" in table and " absent " in table


def test_openblas_coretype_is_unset_for_the_run(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    result = run_suite(quick=True, only=["sgemm"])  # runs in a child process without it
    assert result["machine"]["openblas_coretype"] == {
        "set_in_environment": True,
        "value": "Haswell",
        "unset_for_run": True,
    }
    assert [w["name"] for w in result["workloads"]] == ["sgemm"] and not result["failures"]
    assert "OPENBLAS_CORETYPE=Haswell was set in the environment, unset for the run" in format_table(result)


def test_an_unknown_workload_is_named():
    status, _, err = run_cli(["bench", "--only", "nope"])
    assert status == 1 and "no benchmark workload 'nope'; the workloads are mlp_train" in err
    with pytest.raises(BenchError, match="no benchmark workload"):
        run_suite(only=["sgemm", "nope"])
    with pytest.raises(BenchError, match="numpy_threads must be 0"):
        run_suite(only=["sgemm"], numpy_threads=-1)


def test_check_close_reports_the_worst_element_and_rejects_nan():
    want = np.array([1.0, 2.0, 3.0])
    assert check_close("x", want * (1 + 1e-6), want, rtol=1e-4, atol_frac=0)["passed"]
    with pytest.raises(
        BenchCheckError, match=r"x: 1 of 3 values are wrong; worst at index \(2,\): got 4, expected 3"
    ):
        check_close("x", [1.0, 2.0, 4.0], want, rtol=1e-4, atol_frac=0)
    with pytest.raises(BenchCheckError, match="got nan"):
        check_close("x", [1.0, np.nan, 3.0], want, rtol=1e-4, atol_frac=1.0)
    with pytest.raises(BenchCheckError, match="got shape"):
        check_close("x", [1.0], want, rtol=1e-4, atol_frac=0)

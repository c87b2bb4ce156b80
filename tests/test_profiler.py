"""mx.profiler: the Chrome trace of compiled runs and user spans, pause/resume, states, aggregate tables."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import ember as mx
from ember import profiler
from ember.runtime import observers


@pytest.fixture(autouse=True)
def fresh_profiler():
    profiler._reset()
    yield
    profiler._reset()


def _fc_executor(monkeypatch, ctx=None):
    """A bound FullyConnected (2x4 data, 3 outputs) on the compiled executor, every input set to 1."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")
    fc = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=3, name="fc")
    ex = fc.simple_bind(ctx or mx.cpu(), data=(2, 4))
    for array in ex.arg_dict.values():
        array[:] = 1
    return ex


def _trace(path) -> dict:
    return json.loads(path.read_text())


def _spans(trace: dict, category: str) -> list[dict]:
    return [e for e in trace["traceEvents"] if e.get("ph") == "X" and e["cat"] == category]


def test_a_compiled_forward_is_a_complete_event_naming_its_kernels(tmp_path, monkeypatch):
    ex = _fc_executor(monkeypatch)
    ex.forward()  # compile outside the profiled window
    profiler.set_config(profile_symbolic=True, filename=str(tmp_path / "trace.json"))
    profiler.set_state("run")
    before = time.perf_counter_ns()
    ex.forward()
    after = time.perf_counter_ns()
    profiler.set_state("stop")
    profiler.dump()

    trace = _trace(tmp_path / "trace.json")
    assert trace["displayTimeUnit"] == "ms"
    (run,) = _spans(trace, "program")
    assert run["name"] == "the forward program of fc"
    assert run["args"]["kernels"] == ["fc_bias"]  # FullyConnected's one fused kernel: dot + bias
    assert before / 1000 <= run["ts"] and run["ts"] + run["dur"] <= after / 1000
    assert 0 < run["dur"] <= (after - before) / 1000
    assert isinstance(run["pid"], int) and isinstance(run["tid"], int)
    names = [e for e in trace["traceEvents"] if e["ph"] == "M"]
    assert {"name": "process_name", "ph": "M", "pid": run["pid"], "args": {"name": "program"}} in names
    np.testing.assert_array_equal(ex.outputs[0].asnumpy(), np.full((2, 3), 5.0))  # 4 ones . 1 + bias 1


def test_without_a_running_profiler_the_runtime_hook_is_off(tmp_path, monkeypatch):
    assert observers.RUN_OBSERVER is None and profiler.RUNNING is False
    profiler.set_config(filename=str(tmp_path / "t.json"))
    profiler.set_state("run")
    assert observers.RUN_OBSERVER is not None and profiler.RUNNING is True
    profiler.set_state("stop")
    assert observers.RUN_OBSERVER is None and profiler.RUNNING is False


def test_profile_symbolic_off_records_no_program_runs(tmp_path, monkeypatch):
    ex = _fc_executor(monkeypatch)
    ex.forward()
    profiler.set_config(profile_symbolic=False, filename=str(tmp_path / "t.json"))
    profiler.set_state("run")
    ex.forward()
    profiler.record_event("dot", "operator", 10_000, 12_000)
    profiler.dump()
    trace = _trace(tmp_path / "t.json")
    assert _spans(trace, "program") == []
    assert [(e["name"], e["ts"], e["dur"]) for e in _spans(trace, "operator")] == [("dot", 10.0, 2.0)]


def test_pause_and_resume_leave_out_what_ran_in_between(tmp_path):
    profiler.set_config(filename=str(tmp_path / "t.json"))
    profiler.set_state("run")
    profiler.record_event("before", "operator", 1_000, 2_000)
    profiler.pause()
    assert profiler.RUNNING is False and observers.RUN_OBSERVER is None
    profiler.record_event("paused", "operator", 3_000, 4_000)
    profiler.resume()
    profiler.record_event("after", "operator", 5_000, 7_000, {"shape": [2, 3]})
    profiler.dump()
    events = _spans(_trace(tmp_path / "t.json"), "operator")
    assert [(e["name"], e["ts"], e["dur"]) for e in events] == [("before", 1.0, 1.0), ("after", 5.0, 2.0)]
    assert events[1]["args"] == {"shape": [2, 3]}


def test_set_state_rejects_other_states_with_a_key_error_as_mxnet():
    with pytest.raises(KeyError, match="state must be 'run' or 'stop', not 'running'"):
        profiler.set_state("running")
    with pytest.raises(mx.MXNetError, match="profile_process must be 'worker' or 'server', not 'serve'"):
        profiler.set_state("run", profile_process="serve")
    with pytest.raises(mx.MXNetError, match="distributed kvstore"):
        profiler.set_state("run", profile_process="server")
    assert profiler.RUNNING is False


def test_set_config_refuses_unknown_arguments_and_bad_values():
    with pytest.raises(mx.MXNetError, match="unknown argument 'profile_everything'"):
        profiler.set_config(profile_everything=True)
    with pytest.raises(mx.MXNetError, match="aggregate_stats must be a boolean, not 'maybe'"):
        profiler.set_config(aggregate_stats="maybe")


def test_dump_before_the_profiler_ran_and_after_a_finished_dump_is_an_error(tmp_path):
    with pytest.raises(mx.MXNetError, match="has not run"):
        profiler.dump()
    profiler.set_config(filename=str(tmp_path / "t.json"))
    profiler.set_state("run")
    profiler.record_event("x", "operator", 0, 1_000)
    profiler.dump(finished=False)
    profiler.record_event("y", "operator", 2_000, 3_000)
    profiler.dump(finished=True)
    assert [e["name"] for e in _spans(_trace(tmp_path / "t.json"), "operator")] == ["x", "y"]
    with pytest.raises(mx.MXNetError, match="has not run"):
        profiler.dump()
    profiler.set_state("run")  # running again enables dumping, of what was recorded since
    profiler.dump()
    assert _spans(_trace(tmp_path / "t.json"), "operator") == []


def test_dumps_tabulates_counts_and_times_per_name(tmp_path):
    profiler.set_config(aggregate_stats=True, filename=str(tmp_path / "t.json"))
    profiler.set_state("run")
    for start, end in ((0, 1_000_000), (2_000_000, 5_000_000)):  # 1 ms and 3 ms
        profiler.record_event("FullyConnected", "operator", start, end)
    profiler.record_event("relu", "operator", 0, 500_000)
    profiler.set_state("stop")
    lines = profiler.dumps().splitlines()
    assert lines[1:3] == ["Profile Statistics:", "\tNote the difference in units for different entries."]
    assert lines[3:5] == ["operator", "================="]
    assert lines[5] == "Name".ljust(25) + " ".join(
        title.rjust(16)
        for title in ("Total Count", "Time (ms)", "Min Time (ms)", "Max Time (ms)", "Avg Time (ms)")
    )
    assert lines[7].split() == ["FullyConnected", "2", "4.0000", "1.0000", "3.0000", "2.0000"]
    assert lines[8].split() == ["relu", "1", "0.5000", "0.5000", "0.5000", "0.5000"]
    ascending = profiler.dumps(sort_by="count", ascending=True).splitlines()
    assert [line.split()[0] for line in ascending[7:9]] == ["relu", "FullyConnected"]
    stats = json.loads(profiler.dumps(format="json", reset=True))
    assert stats["Time"]["operator"]["FullyConnected"] == {"Count": 2, "Total": 4.0, "Min": 1.0, "Max": 3.0,
                                                           "Avg": 2.0}  # fmt: skip
    assert stats["Unit"] == {"Time": "ms", "Memory": "kb"}
    assert "operator" not in profiler.dumps()  # reset=True cleared them
    # while dumping is possible, dumps() rewrites the trace file first, as MXNet does
    assert [e["name"] for e in _spans(_trace(tmp_path / "t.json"), "operator")] == ["FullyConnected"] * 2 + [
        "relu"
    ]


def test_dumps_is_empty_without_aggregate_stats_and_checks_its_choices():
    profiler.set_config(aggregate_stats=False)
    assert profiler.dumps() == ""
    with pytest.raises(KeyError, match="format must be 'table' or 'json', not 'csv'"):
        profiler.dumps(format="csv")
    with pytest.raises(KeyError, match="sort_by must be one of 'avg', 'min', 'max', 'count', not 'total'"):
        profiler.dumps(sort_by="total")


def test_set_config_starts_again_from_the_defaults():
    profiler.set_config(aggregate_stats=True)
    profiler.set_config(filename="other.json")  # nothing is written: the profiler never ran
    assert profiler._config["aggregate_stats"] is False and profiler._config["filename"] == "other.json"


def test_tasks_frames_events_counters_and_markers_are_in_the_trace(tmp_path):
    profiler.set_config(filename=str(tmp_path / "t.json"), aggregate_stats=True)
    domain = profiler.Domain("training")
    task, frame, event = domain.new_task("load"), domain.new_frame("step"), profiler.Event("sync")
    counter, marker = domain.new_counter("batches", 5), domain.new_marker("epoch end")
    profiler.set_state("run")
    for span in (task, frame, event):
        span.start()
        span.stop()
    counter += 2
    counter.decrement()
    marker.mark("global")
    profiler.dump()
    events = _trace(tmp_path / "t.json")["traceEvents"]
    spans = {(e["name"], e["cat"]) for e in events if e["ph"] == "X"}
    assert spans == {("load", "training"), ("step", "training"), ("sync", "event")}
    assert [e["args"] for e in events if e["ph"] == "C"] == [{"batches": 7}, {"batches": 6}]
    (instant,) = [e for e in events if e["ph"] == "i"]
    assert (instant["name"], instant["s"], instant["cat"]) == ("epoch end", "g", "training")
    assert "load" in profiler.dumps() and str(domain) == "training"


def test_stopping_a_span_that_never_started_and_a_bad_marker_scope_are_errors():
    with pytest.raises(mx.MXNetError, match="Task 'load': stop\\(\\) called before start\\(\\)"):
        profiler.Domain("d").new_task("load").stop()
    with pytest.raises(mx.MXNetError, match="scope must be one of 'global', 'process'"):
        profiler.Domain("d").new_marker("m").mark("universe")


def test_legacy_functions_warn_and_act(tmp_path):
    with pytest.warns(UserWarning, match="profiler_set_config\\(\\) is deprecated"):
        profiler.profiler_set_config(mode="all", filename=str(tmp_path / "legacy.json"))
    assert profiler._config["profile_all"] is True
    with pytest.warns(UserWarning, match="profiler_set_state\\(\\) is deprecated"):
        profiler.profiler_set_state("run")
    profiler.record_event("x", "operator", 0, 1_000)
    with pytest.warns(UserWarning, match="dump_profile\\(\\) is deprecated"):
        profiler.dump_profile()
    assert [e["name"] for e in _spans(_trace(tmp_path / "legacy.json"), "operator")] == ["x"]


class _FakeKernel:
    """A kernel of `_FakeGpu`: each launch sleeps 2 ms (the time the profiler must see)."""

    def __init__(self, name: str):
        self.name = name

    def launch(self, grid, block, args):
        time.sleep(0.002)


class _FakeGpu:
    """Stands in for cuda_driver's device, so the CUDA executable's profiler hook runs without a GPU."""

    def alloc(self, nbytes):
        return type("Buffer", (), {"address": 0, "nbytes": nbytes})()

    def memset(self, address, nbytes, byte=0):
        pass

    def load_ptx(self, ptx, what):
        return self

    def function(self, symbol):
        return _FakeKernel(symbol)

    def synchronize(self):
        pass


def test_a_cuda_program_reports_one_span_per_kernel(tmp_path, monkeypatch):
    from ember.runtime import cuda_executable

    monkeypatch.setattr(cuda_executable, "cuda_device", lambda ordinal: _FakeGpu())
    launch = {"grid": [1, 1, 1], "block": [32, 1, 1], "what": "x"}
    layout = {
        "buffers": {}, "inputs": {}, "outputs": [], "arena_bytes": 64, "kernels": ["fused_fc_bias", "relu"],
        "launches": [{"symbol": "fused_fc_bias", **launch}, {"symbol": "relu", **launch}],
    }  # fmt: skip
    program = cuda_executable.CudaExecutable("fake ptx", layout, what="the fake GPU program")
    profiler.set_config(filename=str(tmp_path / "t.json"))
    profiler.set_state("run")
    program.run()
    profiler.dump()
    trace = _trace(tmp_path / "t.json")
    (run,) = _spans(trace, "program")
    assert (run["name"], run["args"]) == ("the fake GPU program", {"kernels": ["fused_fc_bias", "relu"]})
    kernels = _spans(trace, "kernel")
    assert [k["name"] for k in kernels] == ["fused_fc_bias", "relu"]
    assert all(k["args"] == {"program": "the fake GPU program"} and k["dur"] >= 2000 for k in kernels)
    assert run["ts"] <= kernels[0]["ts"] and kernels[0]["ts"] + kernels[0]["dur"] <= kernels[1]["ts"]
    assert kernels[1]["ts"] + kernels[1]["dur"] <= run["ts"] + run["dur"]


@pytest.mark.gpu
def test_a_gpu_forward_records_one_span_per_kernel(tmp_path, monkeypatch):
    ex = _fc_executor(monkeypatch, mx.gpu(0))
    ex.forward()
    profiler.set_config(filename=str(tmp_path / "gpu.json"))
    profiler.set_state("run")
    ex.forward()
    profiler.dump()
    trace = _trace(tmp_path / "gpu.json")
    (run,) = _spans(trace, "program")
    kernels = _spans(trace, "kernel")
    print("GPU kernels:", [(k["name"], k["dur"]) for k in kernels])
    assert kernels and all(k["args"] == {"program": run["name"]} for k in kernels)
    assert all(run["ts"] <= k["ts"] and k["ts"] + k["dur"] <= run["ts"] + run["dur"] + 1e-3 for k in kernels)
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), np.full((2, 3), 5.0))

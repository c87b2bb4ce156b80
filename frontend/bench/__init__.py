"""`ember.bench`: Ember's benchmark suite, behind `ember bench [--quick] [--json PATH] [--only NAME...]`.

Nine workloads (workloads.py `WORKLOADS`): the seed MLP training step, MLP inference, two elementwise
chains, SGEMM, a LeNet training step, the compile time of the seed MLP's training step, the imperative
ones (imperative.py: one small `mx.nd` op, the seed MLP trained with `mx.autograd`) and the seed MLP
trained as Gluon code (gluon.py). Each checks
Ember's result (and NumPy's, and PyTorch's when `import torch` works) before timing, then times Ember
and a hand-written NumPy implementation of the same computation in the same run, and reports the ratio
NumPy time / Ember time (> 1: Ember is faster).

Threads: Ember's compiled code is single-threaded today; the report gives EMBER_NUM_THREADS if set,
else 1. NumPy's BLAS is limited (threadpoolctl) to that same count by default, so the ratios compare
like with like; `numpy_threads=0` leaves NumPy its default.

OPENBLAS_CORETYPE: OpenBLAS reads it once, when NumPy is imported, and it forces a BLAS kernel that
may not be the machine's best. When it is set, `run_suite` runs the workloads in a child process (the
same Python, `-c`) whose environment lacks it, and the report says so; the parent reads the child's
result from a temporary JSON file. `isolate=False` runs them in this process regardless (and reports
that NumPy ran with it).

    from ember.bench import run_suite, format_table
    result = run_suite(quick=True, only=["sgemm"])
    print(format_table(result))
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import nullcontext

from .gluon import GLUON_WORKLOADS
from .gpu_workloads import GPU_WORKLOADS
from .imperative import IMPERATIVE_WORKLOADS
from .report import format_table, machine_info, write_json
from .workloads import WORKLOADS as COMPILED_WORKLOADS
from .workloads import BenchCheckError, BenchError, Context, run_workload

WORKLOADS = COMPILED_WORKLOADS + IMPERATIVE_WORKLOADS + GLUON_WORKLOADS  # the CPU suite, in the table's order
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)

GPU_WORKLOAD_NAMES = tuple(w.name for w in GPU_WORKLOADS)
ALL_WORKLOADS = WORKLOADS + GPU_WORKLOADS

__all__ = [
    "WORKLOADS",
    "WORKLOAD_NAMES",
    "BenchCheckError",
    "BenchError",
    "format_table",
    "run_and_report",
    "run_suite",
]

CORETYPE = "OPENBLAS_CORETYPE"
FULL = {"seconds": 1.0, "max_repeats": 500}
QUICK = {"seconds": 0.1, "max_repeats": 20}
CHILD = "import sys; from ember.bench import child_main; sys.exit(child_main(sys.argv[1:]))"


def select(only: Sequence[str] | None) -> list[str]:
    """The workload names to run, in the table's order (by default the CPU workloads; the GPU ones
    run when named); BenchError naming the known ones for a typo."""
    if not only:
        return list(WORKLOAD_NAMES)
    known = WORKLOAD_NAMES + GPU_WORKLOAD_NAMES
    unknown = [n for n in only if n not in known]
    if unknown:
        raise BenchError(f"no benchmark workload {unknown[0]!r}; the workloads are {', '.join(known)}")
    return [n for n in known if n in only]


def load_torch() -> tuple[object | None, dict]:
    """PyTorch if `import torch` works, and what the report says about it (version, or why absent)."""
    try:
        import torch
    except Exception as err:  # noqa: BLE001  (ImportError, or a broken install: either way, absent)
        return None, {"available": False, "reason": f"{type(err).__name__}: {err}"}
    return torch, {"available": True, "version": str(torch.__version__)}


def blas_limit(threads: int | None):
    """A context limiting NumPy's BLAS to `threads` (no limit for None, or without threadpoolctl)."""
    if not threads:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def numpy_thread_limit(numpy_threads: int | None) -> int | None:
    """NumPy's BLAS thread limit: Ember's thread count by default (None), no limit for 0."""
    from .report import ember_threads

    if numpy_threads is None:
        return ember_threads()
    return numpy_threads or None


def run_here(
    quick: bool, names: list[str], numpy_threads: int | None, openblas: dict, progress: bool
) -> dict:
    """The suite run in this process: the machine section and every selected workload's record."""
    import ember

    limit = numpy_thread_limit(numpy_threads)
    torch, torch_info = load_torch()
    say = (lambda text: print(f"ember bench: {text}", file=sys.stderr, flush=True)) if progress else None
    ctx = Context(
        quick=quick, torch=torch, threads=limit or os.cpu_count() or 1, **(QUICK if quick else FULL)
    )
    with blas_limit(limit):
        machine = machine_info(limit, openblas, torch_info)
        if torch is not None:
            torch.set_num_threads(ctx.threads)
        records = [run_workload(w, ctx, say) for w in ALL_WORKLOADS if w.name in names]
    return {
        "ember_version": ember.__version__,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine,
        "workloads": records,
        "failures": [message for r in records for message in r.get("errors", [])],
    }


def run_in_child(options: dict) -> dict:
    """The suite run by a child Python whose environment lacks OPENBLAS_CORETYPE; its result."""
    env = {k: v for k, v in os.environ.items() if k != CORETYPE}
    with tempfile.TemporaryDirectory(prefix="ember-bench-") as folder:
        path = os.path.join(folder, "result.json")
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(options), path], env=env, check=False)
        if done.returncode != 0:
            raise BenchError(
                f"the benchmark process (run without {CORETYPE}) failed with status {done.returncode}; "
                "its error is above"
            )
        with open(path) as f:
            return json.load(f)


def child_main(argv: list[str]) -> int:
    """The child process's entry: argv = [options JSON, result path]."""
    options, path = json.loads(argv[0]), argv[1]
    write_json(run_here(**options), path)
    return 0


def run_suite(
    quick: bool = False,
    only: Sequence[str] | None = None,
    numpy_threads: int | None = None,
    isolate: bool | None = None,
    progress: bool = False,
) -> dict:
    """Run the suite and return its result (the JSON document): `machine`, `workloads` (each with its
    cases, their checks and timings) and `failures` (the messages of failed checks; those cases are not
    timed). `isolate` (default: when OPENBLAS_CORETYPE is set) runs it in a child process without it."""
    names = select(only)
    if numpy_threads is not None and numpy_threads < 0:
        raise BenchError(
            f"numpy_threads must be 0 (NumPy's default) or a positive count, not {numpy_threads}"
        )
    coretype = os.environ.get(CORETYPE)
    isolate = coretype is not None if isolate is None else isolate
    openblas = {"set_in_environment": coretype is not None, "value": coretype, "unset_for_run": isolate}
    options = {
        "quick": quick,
        "names": names,
        "numpy_threads": numpy_threads,
        "openblas": openblas,
        "progress": progress,
    }
    return run_in_child(options) if isolate else run_here(**options)


def run_and_report(
    quick: bool = False,
    json_path: str | None = None,
    only: Sequence[str] | None = None,
    numpy_threads: int | None = None,
) -> dict:
    """`ember bench`: run the suite (with progress on stderr), print the table, write the JSON file; then
    BenchError listing the failed checks, if any."""
    result = run_suite(quick=quick, only=only, numpy_threads=numpy_threads, progress=True)
    print(format_table(result), flush=True)
    if json_path:
        write_json(result, json_path)
    if result["failures"]:
        raise BenchError("correctness check failed: " + " | ".join(result["failures"]))
    return result

"""What `ember bench` reports: the machine it ran on, a fixed-width table of the results, and the JSON file.

The machine section holds the CPU model (/proc/cpuinfo), the CPU features that matter to SIMD code, the
CPU LLVM compiles for, the threads Ember and NumPy used, NumPy's BLAS as threadpoolctl sees it (in the
process that ran the workloads), whether OPENBLAS_CORETYPE was set and whether it was unset for the run,
and whether PyTorch could be imported.
"""

from __future__ import annotations

import json
import os
import platform
import sys

from ember.runtime.errors import MXNetError
from ember.runtime.files import write_atomic

# CPU flags (Linux /proc/cpuinfo names) that decide which SIMD code runs fast
SIMD_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "asimd", "sve", "sve2",
)  # fmt: skip


def cpu_info(path: str = "/proc/cpuinfo") -> tuple[str, list[str]]:
    """The CPU model and its SIMD-relevant features, from /proc/cpuinfo where there is one."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "CPU part") and model in ("", platform.machine()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model or "unknown", [f for f in SIMD_FLAGS if f in flags]


def llvm_cpu() -> str:
    """The CPU LLVM generates code for (the host's), or 'unknown'."""
    try:
        import llvmlite.binding as llvm

        return llvm.get_host_cpu_name()
    except Exception:  # noqa: BLE001  (a report never fails on this)
        return "unknown"


def ember_threads() -> int:
    """The threads compiled code runs on: EMBER_NUM_THREADS when set to a positive integer, else every
    online CPU (codegen/native/threadpool.c reads the same)."""
    text = os.environ.get("EMBER_NUM_THREADS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else (os.cpu_count() or 1)


def numpy_blas() -> list[dict]:
    """NumPy's BLAS libraries as threadpoolctl sees them in this process (kernel, threads, version)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed"}]
    keys = ("internal_api", "architecture", "num_threads", "version", "threading_layer")
    return [{k: info.get(k) for k in keys} for info in threadpool_info() if info.get("user_api") == "blas"]


def machine_info(numpy_threads: int | None, openblas: dict, torch_info: dict) -> dict:
    """The machine section of the report, collected in the process that runs the workloads."""
    import numpy as np

    model, features = cpu_info()
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "simd_features": features,
        "llvm_cpu": llvm_cpu(),
        "ember_threads": ember_threads(),
        "ember_threads_note": THREADS_NOTE,
        "numpy_version": np.__version__,
        "numpy_threads_limit": numpy_threads,
        "numpy_blas": numpy_blas(),
        "openblas_coretype": openblas,
        "torch": torch_info,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


THREADS_NOTE = "EMBER_NUM_THREADS if set, else every CPU; large loop nests and GEMMs are split across threads"


# -- the table ------------------------------------------------------------------------------------------


def seconds_text(seconds: float | None) -> str:
    """A duration with a unit that keeps three or four significant digits: 12.3 us, 4.56 ms, 1.23 s."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale or unit == "us":
            return (
                f"{seconds / scale:.3g} {unit}" if seconds / scale < 100 else f"{seconds / scale:.0f} {unit}"
            )
    return "-"


def blas_text(blas: dict) -> str:
    """One BLAS library as the header shows it: 'openblas 0.3.27 kernel Haswell, 1 threads'."""
    if "error" in blas:
        return blas["error"]
    return (
        f"{blas.get('internal_api')} {blas.get('version')} kernel {blas.get('architecture')}, "
        f"{blas.get('num_threads')} threads"
    )


def machine_lines(result: dict) -> list[str]:
    """The report's header: suite, machine, threads, BLAS, OPENBLAS_CORETYPE, PyTorch."""
    m = result["machine"]
    blas = "; ".join(blas_text(b) for b in m["numpy_blas"]) or "none found"
    core = m["openblas_coretype"]
    if core["set_in_environment"]:
        how = "unset for the run" if core["unset_for_run"] else "NOT unset: NumPy ran with it"
        coretype = f"OPENBLAS_CORETYPE={core['value']} was set in the environment, {how}"
    else:
        coretype = "OPENBLAS_CORETYPE not set"
    torch = m["torch"]
    torch_text = (
        f"PyTorch {torch['version']}" if torch["available"] else f"PyTorch absent ({torch['reason']})"
    )
    limit = m["numpy_threads_limit"]
    suite = "quick" if result["quick"] else "full"
    simd = " ".join(m["simd_features"]) or "none found"
    return [
        f"Ember {result['ember_version']} benchmark suite ({suite}), {result['created']}",
        f"machine: {m['cpu_model']}, {m['cpu_count']} CPUs, LLVM CPU {m['llvm_cpu']}; SIMD: {simd}",
        f"threads: Ember {m['ember_threads']} ({m['ember_threads_note']}); "
        + f"NumPy BLAS limited to {limit if limit else 'its default'}",
        f"NumPy {m['numpy_version']}, BLAS: {blas}; {coretype}",
        torch_text,
    ]


def case_notes(case: dict) -> str:
    """The notes column: rates (GFLOP/s, GB/s) and extras of one case."""
    notes = []
    unit = case.get("rate_unit")
    if unit:
        rates = [f"{who} {case[who]['rate']:.1f}" for who in ("ember", "numpy", "torch") if case.get(who)]
        notes.append(f"{unit}: " + ", ".join(rates))
    extras = case.get("extras") or {}
    if "python_call_us" in extras:
        notes.append(f"model(data=x) call {extras['python_call_us']:.1f} us")
    if "ember_step_with_batch_copy_s" in extras:
        notes.append(f"fused.run(batch) {seconds_text(extras['ember_step_with_batch_copy_s'])}")
    if "module_fit_batch_s" in extras:
        ratio = case["ember"]["median_s"] / extras["module_fit_batch_s"] if case.get("ember") else float("nan")
        notes.append(f"Module.fit {seconds_text(extras['module_fit_batch_s'])} a batch (this / it: {ratio:.2f})")
    if "eager_step_s" in extras:
        notes.append(f"eager (EMBER_EXECUTOR=reference) {seconds_text(extras['eager_step_s'])}")
    if "device" in extras:
        notes.append(f"on {extras['device']} (NumPy on the CPU)")
    return "; ".join(notes)


def case_row(workload: dict, case: dict, torch_available: bool) -> list[str]:
    """One table row: workload, case, times, ratios, check, notes."""
    if not case["check"]["passed"]:
        return [workload["name"], case["case"], "-", "-", "-", "-", "-", "FAILED", case["check"]["message"]]
    absent = "absent" if not torch_available and case.get("numpy") else "-"  # '-': nothing to compare
    torch = seconds_text(case["torch"]["median_s"]) if case.get("torch") else absent

    def ratio(key: str) -> str:
        return f"{case[key]:.2f}x" if case.get(key) is not None else "-"

    numpy = seconds_text(case["numpy"]["median_s"]) if case.get("numpy") else "-"
    return [
        workload["name"],
        case["case"],
        seconds_text(case["ember"]["median_s"]),
        numpy,
        torch,
        ratio("numpy_over_ember"),
        ratio("torch_over_ember"),
        "ok",
        case_notes(case),
    ]


def format_table(result: dict) -> str:
    """The whole report: the machine lines, then one fixed-width row per case."""
    header = ["workload", "case", "ember", "numpy", "torch", "numpy/ember", "torch/ember", "check", "notes"]
    torch_available = result["machine"]["torch"]["available"]
    rows = [case_row(w, c, torch_available) for w in result["workloads"] for c in w["cases"]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    right = {2, 3, 4, 5, 6}

    def line(row: list[str]) -> str:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells + [row[-1]]).rstrip()

    lines = machine_lines(result) + ["", line(header), line(["-" * w for w in widths] + ["-----"])]
    lines += [line(r) for r in rows]
    lines.append("")
    lines.append(
        "times: median of repeated calls after a warm-up; Ember: one native call (exe.run()) writing into "
        "its own buffers; ratio = NumPy (or PyTorch) time / Ember time, > 1: Ember faster"
    )
    return "\n".join(lines)


def write_json(result: dict, path: str) -> None:
    """The result as indented JSON at `path`, written atomically (a failed write keeps the old file)."""
    text = json.dumps(result, indent=2) + "\n"
    write_atomic(path, [text.encode("utf-8")], MXNetError)

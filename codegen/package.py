"""From a built program to runnable bytes and artifacts: the compile cache, the CPU features the code
needs, and the `Artifact` (manifest + graph JSON + parameters + shared library, or PTX for a GPU) the
runtime loads.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import llvmlite.binding as llvm
import numpy as np

from ember.compiler.build import Built, program_layout
from ember.compiler.cache import CompileCache, cache_enabled, cache_key
from ember.runtime.artifact import Artifact
from ember.runtime.host import host_cpu_features
from ember.runtime.manifest import ember_version

from .cpu import build_library, entry_symbol, host_machine
from .nvptx import TRIPLE as CUDA_TRIPLE
from .nvptx import CudaCode, cuda_code

log = logging.getLogger(__name__)


@functools.cache
def codegen_fingerprint() -> str:
    """SHA-256 of this package's sources (Python and the C thread pool): any change to code generation
    invalidates cached code."""
    digest = hashlib.sha256()
    folder = Path(__file__).parent
    for path in sorted([*folder.glob("*.py"), *folder.glob("native/*.c")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


LIBRARY = "library"  # the artifact binary holding the shared library
PTX = "ptx"  # the artifact binary holding a CUDA program's PTX text


def required_cpu_features() -> list[str]:
    """The CPU features the generated code may use that this runtime can check on another machine:
    LLVM's enabled host features that /proc/cpuinfo also names (others are implied by these)."""
    enabled = [f[1:] for f in llvm.get_host_cpu_features().flatten().split(",") if f.startswith("+")]
    checkable = host_cpu_features()
    if checkable is None:
        return sorted(enabled)
    return sorted(f for f in enabled if f in checkable)


def library_for(built: Built, cache: CompileCache | None = None) -> bytes:
    """The program's shared library: from the compile cache when an identical program was compiled for
    this CPU by this Ember before (unless EMBER_CACHE=0), else compiled now and cached."""
    program = built.program
    machine = host_machine()
    key = cache_key(
        program_text=str(program),
        target=machine.triple,
        cpu_features=llvm.get_host_cpu_features().flatten().split(","),
        ember_version=ember_version(),
        extra={"codegen": codegen_fingerprint(), "cpu": llvm.get_host_cpu_name()},
    )

    def compile_now() -> bytes:
        start = time.perf_counter()
        data = build_library(program)
        log.info(
            "compiled %s: %d kernels in %.2f s",
            program.name,
            len(program.kernels),
            time.perf_counter() - start,
        )
        return data

    if not cache_enabled():
        return compile_now()
    return (cache or CompileCache()).get_or_build(key, compile_now)


def cuda_code_for(built: Built, arch: str, cache: CompileCache | None = None) -> CudaCode:
    """The program's PTX for GPU architecture `arch` and its launches, through the compile cache."""
    program = built.program
    key = cache_key(
        program_text=str(program),
        target=CUDA_TRIPLE,
        cpu_features=[arch],
        ember_version=ember_version(),
        extra={"codegen": codegen_fingerprint()},
    )

    def compile_now() -> bytes:
        start = time.perf_counter()
        code = cuda_code(program, arch)
        log.info("compiled %s for %s: %d kernels in %.2f s", program.name, arch, len(code.launches),
                 time.perf_counter() - start)  # fmt: skip
        return json.dumps({"ptx": code.ptx, "launches": [launch_record(x) for x in code.launches]}).encode()

    data = compile_now() if not cache_enabled() else (cache or CompileCache()).get_or_build(key, compile_now)
    record = json.loads(data)
    return CudaCode(record["ptx"], arch, tuple(_launch(x) for x in record["launches"]))


def launch_record(launch) -> dict:
    """A launch as the plain data layouts and manifests hold."""
    return {
        "symbol": launch.symbol,
        "grid": list(launch.grid),
        "block": list(launch.block),
        "what": launch.what,
    }


def _launch(record: dict):
    from .gpu_kernels import Launch

    return Launch(record["symbol"], tuple(record["grid"]), tuple(record["block"]), record["what"])


def layout_of(built: Built, code: CudaCode | None = None) -> dict:
    """The runtime's view of the program (buffers, inputs, outputs, parameters, state, entry; for a
    GPU program, its architecture and kernel launches)."""
    layout = program_layout(built.program, entry_symbol(built.program))
    if code is not None:
        layout["arch"] = code.arch
        layout["launches"] = [launch_record(launch) for launch in code.launches]
    return layout


def make_artifact(
    built: Built,
    code: bytes | CudaCode,
    graph_json: str,
    params: Mapping[str, np.ndarray],
    name: str = "model",
    optional_inputs: list[str] = (),
) -> Artifact:
    """An artifact holding everything needed to run `built` without the compiler: `code` is the CPU
    shared library's bytes or a GPU program's `CudaCode`. `optional_inputs` may be left out of a
    call (they are zeros then: loss labels, which no output depends on)."""
    gpu = isinstance(code, CudaCode)
    program = built.program
    layout = {**layout_of(built, code if gpu else None), "optional_inputs": list(optional_inputs)}

    def specs(pairs):
        return [
            {"name": user, "shape": list(program.buffers[b].shape), "dtype": program.buffers[b].dtype}
            for user, b in pairs
        ]

    machine = (
        {"target": CUDA_TRIPLE, "gpu_arch": code.arch, "cpu_features": []}
        if gpu
        else {
            "target": host_machine().triple,
            "cpu": llvm.get_host_cpu_name(),
            "cpu_features": required_cpu_features(),
        }
    )
    manifest = {
        "name": name,
        "ember_version": ember_version(),
        **machine,
        "inputs": specs(program.inputs.items()),
        "outputs": specs(program.outputs),
        "buffer_plan": {
            "arena_bytes": program.arena_bytes,
            "alignment": built.plan.alignment,
            "buffers": [
                {
                    "name": n,
                    "offset": b.offset,
                    "nbytes": b.nbytes,
                    "shape": list(b.shape),
                    "dtype": b.dtype,
                    "role": b.role,
                }
                for n, b in program.buffers.items()
            ],
        },
        "layout": layout,
        "kernels": str(program),
    }
    binaries = {PTX: code.ptx.encode()} if gpu else {LIBRARY: code}
    return Artifact(manifest, graph_json, dict(params), binaries)

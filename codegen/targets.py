"""The compile targets: what differs between the host CPU and an NVIDIA GPU, behind one interface.

A `Target` turns a lowered `Program` into its code object (a shared library's bytes; PTX with its
launches), names that code in the compile cache, stores it there as bytes, adds what the runtime
needs besides the common layout (the CPU's entry symbol; the GPU's architecture and launch list),
describes the machine the code runs on for an artifact's manifest, and loads the code into a
runnable program. `target_for` picks one from a name or a context; `ember.codegen.driver` does all the
compiling through it (the CLI also asks one for IR text). A new backend is one more `Target` plus
its stage emitters.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import llvmlite.binding as llvm
import numpy as np

from ember.compiler.cache import cache_key
from ember.compiler.program import Program
from ember.runtime.host import host_cpu_features
from ember.runtime.manifest import ember_version
from ember.runtime.model import LIBRARY, PTX  # the artifact binaries' names

from .cpu import build_library, host_machine, llvm_ir
from .kernels import entry_symbol
from .nvptx import DEFAULT_ARCH, CudaCode, cuda_code, gpu_module
from .nvptx import TRIPLE as CUDA_TRIPLE

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


def required_cpu_features() -> list[str]:
    """The CPU features the generated code may use that this runtime can check on another machine:
    LLVM's enabled host features that /proc/cpuinfo also names (others are implied by these)."""
    enabled = [f[1:] for f in llvm.get_host_cpu_features().flatten().split(",") if f.startswith("+")]
    checkable = host_cpu_features()
    if checkable is None:
        return sorted(enabled)
    return sorted(f for f in enabled if f in checkable)


class Target(abc.ABC):
    """One kind of machine code Ember generates. Subclasses implement every method below."""

    name: str  # "llvm" (the host CPU) or "cuda"
    device_id: int = 0  # which device of its kind a loaded program runs on

    @abc.abstractmethod
    def cache_key(self, program: Program) -> str:
        """The compile-cache key of `program`'s code for this target."""

    @abc.abstractmethod
    def generate(self, program: Program):
        """`program`'s code for this target (compiling it now)."""

    @abc.abstractmethod
    def encode(self, code) -> bytes:
        """`code` as the bytes the compile cache stores."""

    @abc.abstractmethod
    def decode(self, data: bytes):
        """The code `encode` stored as `data`."""

    @abc.abstractmethod
    def layout_fields(self, program: Program, code) -> dict:
        """What the runtime needs of this target besides the common layout (plain JSON data)."""

    @abc.abstractmethod
    def machine_fields(self, code) -> dict:
        """The manifest's description of the machine the code runs on ("target", "cpu_features", ...)."""

    @abc.abstractmethod
    def binaries(self, code) -> dict[str, bytes]:
        """The artifact binaries holding `code`."""

    @abc.abstractmethod
    def load(self, code, layout: Mapping, params: Mapping[str, np.ndarray] | None, what: str):
        """`code` loaded as a runnable program (a `runtime.executable.BoundProgram`)."""

    @abc.abstractmethod
    def ir_text(self, program: Program) -> str:
        """`program` as this target's LLVM IR, before optimization (`ember inspect --llvm`)."""


class CpuTarget(Target):
    """The host CPU: LLVM IR -> object code for this CPU and its features -> a shared library."""

    name = "llvm"

    def cache_key(self, program: Program) -> str:
        return cache_key(
            program_text=str(program),
            target=host_machine().triple,
            cpu_features=llvm.get_host_cpu_features().flatten().split(","),
            ember_version=ember_version(),
            extra={"codegen": codegen_fingerprint(), "cpu": llvm.get_host_cpu_name()},
        )

    def generate(self, program: Program) -> bytes:
        start = time.perf_counter()
        library = build_library(program)
        seconds = time.perf_counter() - start
        log.info("compiled %s: %d kernels in %.2f s", program.name, len(program.kernels), seconds)
        return library

    def ir_text(self, program: Program) -> str:
        return llvm_ir(program)

    def encode(self, code: bytes) -> bytes:
        return code

    def decode(self, data: bytes) -> bytes:
        return data

    def layout_fields(self, program: Program, code: bytes) -> dict:
        return {"entry": entry_symbol(program)}

    def machine_fields(self, code: bytes) -> dict:
        return {
            "target": host_machine().triple,
            "cpu": llvm.get_host_cpu_name(),
            "cpu_features": required_cpu_features(),
        }

    def binaries(self, code: bytes) -> dict[str, bytes]:
        return {LIBRARY: code}

    def load(self, code: bytes, layout: Mapping, params, what: str):
        from ember.runtime.executable import Executable

        return Executable(code, layout, params, what=what)


class CudaTarget(Target):
    """An NVIDIA GPU: LLVM's NVPTX backend -> PTX for `arch`, loaded onto GPU `device_id`."""

    name = "cuda"

    def __init__(self, arch: str | None = None, device_id: int = 0):
        self.device_id = device_id
        self.arch = arch or gpu_arch(device_id) or DEFAULT_ARCH

    def cache_key(self, program: Program) -> str:
        return cache_key(
            program_text=str(program),
            target=CUDA_TRIPLE,
            cpu_features=[self.arch],
            ember_version=ember_version(),
            extra={"codegen": codegen_fingerprint()},
        )

    def generate(self, program: Program) -> CudaCode:
        start = time.perf_counter()
        code = cuda_code(program, self.arch)
        log.info("compiled %s for %s: %d kernels in %.2f s", program.name, self.arch, len(code.launches),
                 time.perf_counter() - start)  # fmt: skip
        return code

    def ir_text(self, program: Program) -> str:
        return str(gpu_module(program)[0])

    def encode(self, code: CudaCode) -> bytes:
        return json.dumps({"ptx": code.ptx, "launches": [launch_record(x) for x in code.launches]}).encode()

    def decode(self, data: bytes) -> CudaCode:
        from .gpu_kernels import Launch

        record = json.loads(data)
        launches = tuple(
            Launch(x["symbol"], tuple(x["grid"]), tuple(x["block"]), x["what"]) for x in record["launches"]
        )
        return CudaCode(record["ptx"], self.arch, launches)

    def layout_fields(self, program: Program, code: CudaCode) -> dict:
        return {
            "entry": entry_symbol(program),
            "arch": code.arch,
            "launches": [launch_record(launch) for launch in code.launches],
        }

    def machine_fields(self, code: CudaCode) -> dict:
        return {"target": CUDA_TRIPLE, "gpu_arch": code.arch, "cpu_features": []}

    def binaries(self, code: CudaCode) -> dict[str, bytes]:
        return {PTX: code.ptx.encode()}

    def load(self, code: CudaCode, layout: Mapping, params, what: str):
        from ember.runtime.cuda_executable import CudaExecutable

        return CudaExecutable(code.ptx, layout, params, what=what, ordinal=self.device_id)


def launch_record(launch) -> dict:
    """A launch as the plain data layouts and manifests hold."""
    return {
        "symbol": launch.symbol, "grid": list(launch.grid), "block": list(launch.block), "what": launch.what,
    }  # fmt: skip


def gpu_arch(device_id: int) -> str | None:
    """GPU `device_id`'s architecture ("sm_90"), or None where there is no usable GPU."""
    from ember.runtime.cuda_driver import cuda_device
    from ember.runtime.errors import DeviceError

    try:
        return cuda_device(device_id).arch()
    except DeviceError:
        return None


TARGET_NAMES = ("llvm", "cpu", "cuda")


def target_of_manifest(manifest: dict) -> Target:
    """The target an artifact's manifest was compiled for (its GPU architecture for CUDA)."""
    if str(manifest.get("target", "")) == CUDA_TRIPLE:
        return CudaTarget(manifest.get("gpu_arch") or DEFAULT_ARCH)
    return CpuTarget()


def target_for(target: str | Target | None = None, ctx=None, arch: str | None = None) -> Target:
    """The one place that picks a target: a `Target` as given; else by name ('llvm' or 'cpu': the host
    CPU; 'cuda'); else from a context (`mx.gpu(i)`: CUDA on GPU i; anything else: the CPU). A CUDA
    target's `arch` defaults to its GPU's architecture when there is one, else sm_80."""
    from ember.runtime.errors import MXNetError

    if isinstance(target, Target):
        return target
    device_id = getattr(ctx, "device_id", 0)
    if target is None:
        target = "cuda" if getattr(ctx, "device_type", "cpu") == "gpu" else "llvm"
    if target not in TARGET_NAMES:
        raise MXNetError(f"unknown compile target {target!r}; this build supports {', '.join(TARGET_NAMES)}")
    return CudaTarget(arch, device_id) if target == "cuda" else CpuTarget()


__all__ = [
    "TARGET_NAMES", "CpuTarget", "CudaTarget", "Target", "codegen_fingerprint", "gpu_arch",
    "launch_record", "required_cpu_features", "target_for", "target_of_manifest",
]  # fmt: skip

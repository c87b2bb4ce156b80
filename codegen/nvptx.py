"""CUDA code generation: a `Program` -> NVVM-flavoured LLVM IR -> PTX text through LLVM's NVPTX target.

`cuda_code(program, arch)` is the whole path. Kernels come from gpu_kernels.py; math functions with
no PTX instruction call NVIDIA's libdevice (`__nv_sinf`, ...), a bitcode library shipped with the
CUDA toolkit, which is linked into the module and pruned to what is used before optimization (LLVM's
NVVMReflect pass resolves its `__nvvm_reflect` queries). exp, log, tanh, sigmoid and their relatives
use mathlib.py's polynomials, as on the CPU. The PTX runs on the named architecture and, through the
driver's JIT, on every later one.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import llvmlite.binding as llvm
from llvmlite import ir

from ember.compiler.passes.pipeline import debug_level
from ember.compiler.program import Program
from ember.runtime.errors import CompileError

from .cpu import parse_verified, run_o3
from .gpu_kernels import Launch, emit_gpu_program
from .llvm_types import F32
from .scalar import INTRINSICS, LIBM, declare_function

TRIPLE = "nvptx64-nvidia-cuda"
DEFAULT_ARCH = "sm_80"  # Ampere: the PTX also runs, JIT-compiled by the driver, on Hopper and later
# Intrinsics the NVPTX backend turns into single PTX instructions; every other function is libdevice's.
NATIVE = {"sqrt", "abs", "floor", "ceil", "trunc"}
LIBDEVICE_NAMES = {**{fn: fn for fn in INTRINSICS}, **LIBM, "abs": "fabs", "mod": "fmod"}


@dataclass(frozen=True)
class CudaCode:
    """A program compiled for a GPU: PTX text for `arch`, and its kernels' launches in order."""

    ptx: str
    arch: str
    launches: tuple[Launch, ...]


@functools.cache
def _initialize() -> None:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


@functools.cache
def ptx_machine(arch: str) -> llvm.TargetMachine:
    """LLVM's NVPTX target machine for `arch` (e.g. "sm_90")."""
    _initialize()
    if not arch.startswith("sm_") or not arch[3:].rstrip("af").isdigit():
        raise CompileError(f"unknown CUDA architecture {arch!r}: expected a name such as 'sm_80' or 'sm_90'")
    target = llvm.Target.from_triple(TRIPLE)
    return target.create_target_machine(cpu=arch, opt=3)


def libdevice_call(b: ir.IRBuilder, fn: str, args: list) -> ir.Value:
    """`fn`(args) on a GPU: a PTX instruction where there is one, else libdevice's `__nv_` function."""
    kind = args[0].type
    if fn in NATIVE:
        return b.call(b.module.declare_intrinsic(INTRINSICS[fn], [kind]), args)
    if fn not in LIBDEVICE_NAMES:
        raise CompileError(f"codegen has no GPU function {fn!r}")
    name = "__nv_" + LIBDEVICE_NAMES[fn] + ("f" if kind == F32 else "")
    return b.call(declare_function(b.module, name, kind, len(args)), args)


def gpu_module(program: Program) -> tuple[ir.Module, list[Launch]]:
    """The program's kernels as an llvmlite module for NVPTX, and their launches."""
    module = ir.Module(name=program.name)
    module.triple = TRIPLE
    module.data_layout = str(ptx_machine(DEFAULT_ARCH).target_data)
    launches = emit_gpu_program(program, module, libdevice_call)
    return module, launches


def cuda_code(program: Program, arch: str = DEFAULT_ARCH) -> CudaCode:
    """The program as PTX for `arch` (EMBER_DEBUG=3 prints the LLVM IR and the PTX to stderr)."""
    module, launches = gpu_module(program)
    text = str(module)
    machine = ptx_machine(arch)
    module = _link_libdevice(parse_verified(text, "NVPTX LLVM IR"), {launch.symbol for launch in launches})
    optimized = run_o3(module, machine, vectorize=False)
    ptx = machine.emit_assembly(optimized)
    if debug_level() >= 3:
        print(f"# NVPTX LLVM IR of {program.name}\n{text}\n# PTX ({arch})\n{ptx}", file=sys.stderr)
    return CudaCode(ptx, arch, tuple(launches))


def _link_libdevice(module: llvm.ModuleRef, kernels: set[str]) -> llvm.ModuleRef:
    """Link libdevice in when a kernel calls it, then make every function but the kernels internal,
    so optimization drops the unused ones."""
    wanted = sorted(f.name for f in module.functions if f.is_declaration and f.name.startswith("__nv_"))
    if not wanted:
        return module
    path = find_libdevice()
    if path is None:
        raise CompileError(
            f"the program needs NVIDIA's libdevice for {', '.join(wanted)}, and none was found: install "
            "the CUDA toolkit, or set EMBER_LIBDEVICE to the path of libdevice.10.bc"
        )
    try:
        library = llvm.parse_bitcode(path.read_bytes())
    except (OSError, RuntimeError) as err:
        raise CompileError(f"cannot read libdevice at {path}: {err}") from None
    library.triple = module.triple
    library.data_layout = module.data_layout
    module.link_in(library)
    for function in module.functions:
        if not function.is_declaration and function.name not in kernels:
            function.linkage = "internal"
    return module


def find_libdevice() -> Path | None:
    """libdevice.10.bc: EMBER_LIBDEVICE, else under CUDA_HOME / CUDA_PATH, the directory of `nvcc`,
    /usr/local/cuda, or NVIDIA's pip wheels (nvidia-cuda-nvcc)."""
    explicit = os.environ.get("EMBER_LIBDEVICE")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(str(Path(nvcc).resolve().parent.parent))
    roots.append("/usr/local/cuda")
    roots += [str(Path(p) / "nvidia" / "cuda_nvcc") for p in sys.path if p]
    roots += [str(Path(p) / "nvidia" / "cu13") for p in sys.path if p]
    for root in filter(None, roots):
        candidate = Path(root) / "nvvm" / "libdevice" / "libdevice.10.bc"
        if candidate.is_file():
            return candidate
    return None


__all__ = ["DEFAULT_ARCH", "CudaCode", "cuda_code", "find_libdevice", "gpu_module", "ptx_machine"]

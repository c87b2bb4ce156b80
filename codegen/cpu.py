"""CPU code generation: a `Program` -> LLVM IR -> optimized object code for this host -> a shared
library (linked by the system C compiler) whose one exported function runs the whole program.

`build_library` is the whole path; `llvm_ir` gives the textual IR (`ember inspect --llvm`).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import llvmlite.binding as llvm
from llvmlite import ir

from ember.compiler.passes.pipeline import debug_level
from ember.compiler.program import Program
from ember.runtime.errors import CompileError

from .gemm import vector_bytes
from .kernels import emit_program, entry_symbol

LINKERS = ("cc", "gcc", "clang")


@functools.cache
def _initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@functools.cache
def host_machine() -> llvm.TargetMachine:
    """A target machine for this CPU: its triple, model and every feature it has."""
    _initialize()
    triple = llvm.get_process_triple()
    target = llvm.Target.from_triple(triple)
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=3,
        reloc="pic",
        codemodel="default",
    )


def llvm_module(program: Program) -> ir.Module:
    """The program as an llvmlite IR module for the host."""
    module = ir.Module(name=program.name)
    machine = host_machine()
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    emit_program(program, module)
    return module


def module_text(program: Program) -> str:
    """The program's LLVM IR as text, every function asking for the host's full vector width (LLVM
    otherwise prefers 256-bit vectors on AVX-512 CPUs)."""
    text = str(llvm_module(program))
    width = vector_bytes() * 8
    text = re.sub(r"^(define [^\n]*\))([^\n]*)$", r"\1\2 #0", text, flags=re.MULTILINE)
    return (
        text + f'\nattributes #0 = {{ "prefer-vector-width"="{width}" "min-legal-vector-width"="{width}" }}\n'
    )


def llvm_ir(program: Program, optimized: bool = False) -> str:
    """The program's LLVM IR as text, before or after optimization."""
    text = module_text(program)
    return str(optimize(text, unroll=unrolls(program))) if optimized else text


# Programs of more loop stages than this are optimized without LLVM's loop unroller. Unrolling fully
# unrolls every small constant-trip loop, and in a program of hundreds of small kernels (a 1,000-way
# Concat or add_n, a 1,000-op chain) it made optimization and instruction selection several times
# slower (and the code several times larger) for no measurable speed; vectorized loops still interleave.
UNROLL_STAGE_LIMIT = 64


def unrolls(program: Program) -> bool:
    """Whether LLVM's loop unroller runs on `program` (small programs only: UNROLL_STAGE_LIMIT)."""
    return sum(len(kernel.stages) for kernel in program.kernels) <= UNROLL_STAGE_LIMIT


def optimize(text: str, unroll: bool = True) -> llvm.ModuleRef:
    """Parse and verify IR text, then run LLVM's -O3 pipeline (loop and SLP vectorization on, loop
    unrolling as `unroll` says)."""
    _initialize()
    return run_o3(parse_verified(text, "LLVM IR"), host_machine(), vectorize=True, unroll=unroll)


def parse_verified(text: str, what: str) -> llvm.ModuleRef:
    """IR text parsed and verified; CompileError naming `what` when it is invalid."""
    try:
        module = llvm.parse_assembly(text)
        module.verify()
    except RuntimeError as err:
        raise CompileError(f"codegen produced invalid {what}: {err}") from None
    return module


def run_o3(
    module: llvm.ModuleRef, machine: llvm.TargetMachine, vectorize: bool, unroll: bool = True
) -> llvm.ModuleRef:
    """LLVM's -O3 pipeline for `machine` on `module` (in place), with loop and SLP vectorization and
    (when `unroll`) loop unrolling when `vectorize`."""
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    if vectorize:
        tuning.loop_vectorization = True
        tuning.slp_vectorization = True
        tuning.loop_unrolling = unroll
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)
    return module


def object_code(program: Program) -> bytes:
    """Optimized host object code for the program (EMBER_DEBUG=3 prints the LLVM IR before and after
    optimization to stderr)."""
    text = module_text(program)
    module = optimize(text, unroll=unrolls(program))
    if debug_level() >= 3:
        print(f"# LLVM IR of {program.name}\n{text}\n# optimized\n{module}", file=sys.stderr)
    return host_machine().emit_object(module)


def build_library(program: Program) -> bytes:
    """The program as the bytes of a shared library exporting `entry_symbol(program)`."""
    return link_shared(object_code(program))


def find_linker() -> str:
    """The system C compiler used to link; CompileError naming what to install when there is none."""
    chosen = os.environ.get("EMBER_CC")
    for name in ([chosen] if chosen else []) + list(LINKERS):
        path = shutil.which(name)
        if path:
            return path
    raise CompileError(
        "no C compiler to link the compiled program into a shared library: install gcc or clang "
        "(or set EMBER_CC to one)"
    )


THREAD_POOL_SOURCE = Path(__file__).parent / "native" / "threadpool.c"


@functools.cache
def thread_pool_object() -> bytes:
    """The thread pool (native/threadpool.c) compiled once per process with the system C compiler."""
    compiler = find_linker()
    with tempfile.TemporaryDirectory(prefix="ember-pool-") as folder:
        target = os.path.join(folder, "threadpool.o")
        command = [compiler, "-O2", "-fPIC", "-pthread", "-c", str(THREAD_POOL_SOURCE), "-o", target]
        _run(command, "compiling the thread pool")
        with open(target, "rb") as f:
            return f.read()


def link_shared(obj: bytes) -> bytes:
    """Link the program's object file and the thread pool into a shared library (with the C math
    library and pthreads) and return its bytes."""
    linker = find_linker()
    pool = thread_pool_object()
    with tempfile.TemporaryDirectory(prefix="ember-link-") as folder:
        paths = {name: os.path.join(folder, name) for name in ("program.o", "threadpool.o", "program.so")}
        for name, data in (("program.o", obj), ("threadpool.o", pool)):
            with open(paths[name], "wb") as f:
                f.write(data)
        command = [
            linker,
            "-shared",
            "-o",
            paths["program.so"],
            paths["program.o"],
            paths["threadpool.o"],
            "-lm",
            "-pthread",
        ]
        _run(command, "linking the compiled program")
        with open(paths["program.so"], "rb") as f:
            return f.read()


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CompileError(f"{what} with {command[0]} failed: {done.stderr.strip()}")


__all__ = ["build_library", "entry_symbol", "host_machine", "llvm_ir", "object_code"]

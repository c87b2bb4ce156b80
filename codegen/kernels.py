"""A `Program`'s kernels as LLVM functions, and the one entry point that runs them in order.

Each kernel becomes an internal function taking one `noalias` pointer per buffer it touches (two
names never share memory while a kernel runs; an in-place output is the same name as its input), so
LLVM may vectorize its loops. Loop stages become counted loop nests whose innermost body computes
every store's value before storing any, which keeps in-place updates correct. GEMM stages become
register-blocked vector code (gemm.py). Each stage is its own function over a range of one axis, so
parallel.py can hand the range out to threads.

The entry, `int32_t <symbol>(uint8_t *arena)`, finds each buffer at its planned offset.
"""

from __future__ import annotations

from llvmlite import ir

from ember.compiler.lowering import expr as E
from ember.compiler.lowering.expr import Load
from ember.compiler.program import GemmStage, Kernel, LoopStage, Program

from .gemm import emit_blocked_gemm
from .llvm_types import I8, I32, I64, memory_type
from .loops import counted_loop
from .parallel import Split, call_stage, stage_split
from .scalar import ExprEmitter

ARENA = ir.PointerType(I8)


def entry_symbol(program: Program) -> str:
    """The C symbol of the program's entry point."""
    return "ember_run_" + "".join(c if c.isalnum() else "_" for c in program.name)


def emit_program(program: Program, module: ir.Module) -> None:
    """Add the program's kernels and its entry to `module`."""
    functions = []
    for number, kernel in enumerate(program.kernels):
        names = kernel_buffers(kernel)
        functions.append((emit_kernel(module, f"k{number}_{_symbol(kernel.name)}", kernel, names), names))
    entry = ir.Function(module, ir.FunctionType(I32, [ARENA]), entry_symbol(program))
    entry.args[0].add_attribute("noalias")
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    for fn, names in functions:
        pointers = [
            b.gep(entry.args[0], [ir.Constant(I64, program.buffers[n].offset)], inbounds=True) for n in names
        ]
        b.call(fn, pointers)
    b.ret(ir.Constant(I32, 0))


def kernel_buffers(kernel: Kernel) -> list[str]:
    """Every buffer name the kernel's stages read or write, in first-use order."""
    names: dict[str, None] = {}
    for stage in kernel.stages:
        names.update(dict.fromkeys(stage_buffers(stage)))
    return list(names)


def stage_buffers(stage) -> list[str]:
    """The buffer names one stage reads or writes, in first-use order (its function's parameters)."""
    if isinstance(stage, GemmStage):
        return list(dict.fromkeys(operand.buffer for operand in (stage.a, stage.b, stage.c)))
    names: dict[str, None] = {}
    for store in stage.stores:
        for e in E.walk((store.index, store.value)):
            if isinstance(e, Load):
                names[e.buffer] = None
        names[store.target] = None
    return list(names)


def emit_kernel(module: ir.Module, symbol: str, kernel: Kernel, names: list[str]) -> ir.Function:
    """The kernel as a function of its buffers' pointers: each stage is a function of the pointers and
    a range of its parallel axis, called directly or through `ember_parallel_for` (parallel.py)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ARENA] * len(names)), symbol)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    # Kept out of the entry: inlined, every kernel of a program would become one function, whose
    # optimization time grows faster than its size (an N-op chain took O(N^1.5) in LLVM's -O3).
    fn.attributes.add("noinline")
    for arg in fn.args:
        arg.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    argument = dict(zip(names, fn.args))
    for number, stage in enumerate(kernel.stages):
        split = stage_split(stage)
        used = stage_buffers(stage)  # only these: a kernel of many stages would otherwise pass them all
        body = _stage_function(module, f"{symbol}_s{number}", stage, used, split)
        call_stage(b, body, [argument[name] for name in used], split)
    b.ret_void()
    return fn


def _stage_function(module, symbol: str, stage, names: list[str], split: Split) -> ir.Function:
    """`void f(buffers..., i64 start, i64 end)`: the stage over items [start, end) of its split axis."""
    kind = ir.FunctionType(ir.VoidType(), [ARENA] * len(names) + [I64, I64])
    fn = ir.Function(module, kind, symbol)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")  # as kernels: optimized alone, it sees only the pointers it uses
    for arg in fn.args[: len(names)]:
        arg.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    pointer = typed_pointers(fn, b, dict(zip(names, fn.args)).__getitem__)
    start, end = fn.args[len(names) :]
    if isinstance(stage, GemmStage):
        emit_gemm(b, stage, pointer, (start, end))
    else:
        emit_loop_stage(b, stage, pointer, (start, end))
    b.ret_void()
    return fn


def typed_pointers(fn: ir.Function, b: ir.IRBuilder, raw_pointer, addrspace: int = 0):
    """`pointer(buffer, dtype)`: the buffer's pointer (`raw_pointer(buffer)`, an i8 pointer emitted in
    the entry block) cast to the element type, made once per function."""
    typed: dict[tuple[str, str], ir.Value] = {}

    def pointer(buffer: str, dtype: str) -> ir.Value:
        key = (buffer, dtype)
        if key not in typed:
            with b.goto_block(fn.entry_basic_block):
                b.position_at_start(fn.entry_basic_block)
                kind = ir.PointerType(memory_type(dtype), addrspace=addrspace)
                typed[key] = b.bitcast(raw_pointer(buffer), kind)
        return typed[key]

    return pointer


def emit_loop_stage(b: ir.IRBuilder, stage: LoopStage, pointer, bounds, library_call=None) -> None:
    """The loop nest, its outermost loop over [start, end) of `bounds`."""
    vars: dict = {}
    emitter = ExprEmitter(b, pointer, vars, library_call)
    loops = [(v.name, (0, n, 1)) for v, n in zip(stage.vars, stage.domain)]
    if loops:
        loops[0] = (loops[0][0], (bounds[0], bounds[1], 1))
    counted_loops(b, loops, vars, emitter, lambda: emit_stores(emitter, stage))


def emit_stores(emitter: ExprEmitter, stage: LoopStage) -> None:
    """One point of a loop stage (its variables bound in `emitter.vars`): every store's value is
    computed before any is stored."""
    emitter.push()
    values = [emitter.emit(s.value) for s in stage.stores]
    positions = [emitter.emit(s.index) for s in stage.stores]
    for s, value, position in zip(stage.stores, values, positions):
        emitter.store(s.target, position, value, s.value.dtype, s.mode)
    emitter.pop()


def counted_loops(b: ir.IRBuilder, loops: list, vars: dict, emitter, body) -> None:
    """Nested `for name in range(start, stop, step)` loops around `body()`; each opens a cache scope."""
    if not loops:
        body()
        return
    (name, bounds), rest = loops[0], loops[1:]

    def level(i, _):
        vars[name] = i
        emitter.push()
        counted_loops(b, rest, vars, emitter, body)
        emitter.pop()

    counted_loop(b, bounds, level, name=name)


def emit_gemm(b: ir.IRBuilder, g: GemmStage, pointer, bounds) -> None:
    """The GEMM stage as register-blocked explicit vector code (gemm.py) over its row blocks in `bounds`."""
    emit_blocked_gemm(b, g, pointer, bounds)


def _symbol(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


__all__ = ["emit_program", "entry_symbol"]

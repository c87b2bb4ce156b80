"""Which stages run on several threads, and how a stage is called.

Every stage is emitted as `void f(buffers..., i64 start, i64 end)` over a range of one axis: the
outermost loop of a loop stage, the (batch, row block) pairs of a GEMM. `stage_split` decides the
axis's extent and whether the stage may run in parallel: only when each item writes its own
elements (a gather: every store writes the loop point's own flat position, and no store's target is
read at another position) and the work is large enough to pay for waking threads. `call_stage`
then calls f directly over the whole axis, or hands `ember_parallel_for` (native/threadpool.c) a
trampoline and the buffer pointers, which splits the axis into static contiguous chunks. Each
element is computed by one thread with the same code, so results never depend on the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from llvmlite import ir

from ember.compiler.lowering import expr as E
from ember.compiler.lowering.tensor import ravel
from ember.compiler.program import GemmStage, LoopStage

from .gemm import ROWS
from .llvm_types import I8, I64

ARENA = ir.PointerType(I8)
# Work (roughly: element operations) below which a stage stays on one thread, and the least work a
# thread is given.
MIN_PARALLEL_WORK = 1 << 16
MIN_CHUNK_WORK = 1 << 14


@dataclass(frozen=True)
class Split:
    """The axis a stage is split along: `extent` items; `grain` items at least per thread when the
    stage runs in parallel."""

    extent: int
    parallel: bool
    grain: int = 1


def stage_split(stage) -> Split:
    if isinstance(stage, GemmStage):
        items = stage.batch * -(-stage.m // ROWS)
        per_item = ROWS * stage.n * max(stage.k, 1)
        return _split(items, per_item)
    if not stage.domain:
        return Split(1, False)
    per_item = prod(stage.domain[1:]) * _expression_work(stage)
    return _split(stage.domain[0], per_item) if is_gather(stage) else Split(stage.domain[0], False)


def _split(items: int, per_item: int) -> Split:
    if items < 2 or items * per_item < MIN_PARALLEL_WORK:
        return Split(items, False)
    return Split(items, True, max(1, -(-MIN_CHUNK_WORK // max(per_item, 1))))


def is_gather(stage: LoopStage) -> bool:
    """Every store writes the point's own row-major position, and no target is read elsewhere."""
    own = ravel(stage.vars, stage.domain)
    targets = {s.target for s in stage.stores}
    if any(s.mode != "store" or s.index != own for s in stage.stores):
        return False
    return all(load.index == own for s in stage.stores for load in _loads(s.value) if load.buffer in targets)


def _loads(e: E.Expr) -> list[E.Load]:
    return [node for node in E.walk((e,)) if isinstance(node, E.Load)]


def _expression_work(stage: LoopStage) -> int:
    """A rough cost of one loop point: 1 plus the trip counts of the reductions its values run
    (a reduction costs its extent times one plus the work of its body)."""
    work: dict[int, int] = {}
    for node in E.post_order(s.value for s in stage.stores):
        inner = sum(work[id(c)] for c in E.children(node))
        work[id(node)] = node.extent * (1 + inner) if isinstance(node, E.Reduce) else inner
    return 1 + sum(work[id(s.value)] for s in stage.stores)


def call_stage(b: ir.IRBuilder, stage_fn: ir.Function, pointers: list, split: Split) -> None:
    """Run the stage function over its whole axis, on the calling thread or on all threads."""
    if not split.parallel:
        b.call(stage_fn, [*pointers, ir.Constant(I64, 0), ir.Constant(I64, split.extent)])
        return
    module = b.module
    context = b.alloca(ir.ArrayType(ARENA, len(pointers)))
    for index, pointer in enumerate(pointers):
        b.store(pointer, b.gep(context, [ir.Constant(I64, 0), ir.Constant(I64, index)]))
    trampoline = _trampoline(module, stage_fn, len(pointers))
    b.call(
        _parallel_for(module),
        [
            trampoline,
            b.bitcast(context, ARENA),
            ir.Constant(I64, split.extent),
            ir.Constant(I64, split.grain),
        ],
    )


BODY = ir.FunctionType(ir.VoidType(), [ARENA, I64, I64])


def _trampoline(module: ir.Module, stage_fn: ir.Function, count: int) -> ir.Function:
    """`void t(i8* context, i64 start, i64 end)`: loads the buffer pointers and calls the stage."""
    fn = ir.Function(module, BODY, f"{stage_fn.name}_thread")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    table = b.bitcast(fn.args[0], ir.PointerType(ARENA))
    pointers = [b.load(b.gep(table, [ir.Constant(I64, i)])) for i in range(count)]
    b.call(stage_fn, [*pointers, fn.args[1], fn.args[2]])
    b.ret_void()
    return fn


def _parallel_for(module: ir.Module) -> ir.Function:
    existing = module.globals.get("ember_parallel_for")
    if existing is not None:
        return existing
    kind = ir.FunctionType(ir.VoidType(), [ir.PointerType(BODY), ARENA, I64, I64])
    return ir.Function(module, kind, "ember_parallel_for")

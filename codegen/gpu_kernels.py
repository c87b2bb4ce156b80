"""A `Program`'s stages as CUDA kernels in NVVM-flavoured LLVM IR, and how each one is launched.

Every stage of every kernel becomes one GPU kernel `void k(i8 addrspace(1)* arena)` (a stage must
finish everywhere before the next starts, and a kernel launch boundary is the GPU's grid-wide
barrier). Each kernel finds its buffers at their planned arena offsets, as the CPU entry does.
There are three shapes of kernel:

- a **gather** stage (every point writes its own position and reads no other point's output, as
  parallel.py decides for threads) runs one point per GPU thread, in a grid-stride loop over the
  flattened domain, so any size fits any grid;
- any other loop stage (a scatter, a running accumulation) runs its whole nest on one thread, in the
  order the CPU runs it: correct for every stage, slow only for the few stages that are not gathers;
- a **GEMM** stage runs as a tiled kernel: a 16 x 16 block of threads computes a 16 x 16 tile of C,
  staging 16 x 16 tiles of A and B through shared memory; row tiles run along the grid's y axis and
  batches along z, each in a block-stride loop, so any size fits the grid.

Expressions are emitted by the CPU's `ExprEmitter` with the GPU's math library (`library_call`).
`emit_gpu_program` returns the launches in order: kernel symbol, grid and block sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from llvmlite import ir

from ember.compiler.program import GemmStage, LoopStage, Program

from .gemm import Arithmetic
from .kernels import emit_loop_stage, emit_stores, typed_pointers
from .llvm_types import I32, I64, memory_type
from .loops import counted_loop
from .parallel import is_gather
from .scalar import ExprEmitter

GLOBAL, SHARED = 1, 3  # NVPTX address spaces
ARENA = ir.PointerType(ir.IntType(8), addrspace=GLOBAL)
BLOCK = 256  # threads per block of a gather kernel
MAX_BLOCKS = 65535  # beyond this many blocks' worth of points, threads loop (grid stride)
TILE = 16  # GEMM tile edge: blocks of TILE x TILE threads


@dataclass(frozen=True)
class Launch:
    """One kernel launch: `symbol` in the PTX, its grid and block sizes, and what it computes."""

    symbol: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    what: str


def emit_gpu_program(program: Program, module: ir.Module, library_call) -> list[Launch]:
    """Add one GPU kernel per stage of `program` to `module`; the launches, in order."""
    launches = []
    for number, kernel in enumerate(program.kernels):
        for position, stage in enumerate(kernel.stages):
            symbol = f"k{number}_{_symbol(kernel.name)}_s{position}"
            fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ARENA]), symbol)
            fn.calling_convention = "ptx_kernel"
            fn.args[0].add_attribute("noalias")
            b = ir.IRBuilder(fn.append_basic_block("entry"))
            pointer = _buffer_pointers(fn, b, program)
            grid, block = _emit_stage(b, stage, pointer, library_call, symbol)
            b.ret_void()
            launches.append(Launch(symbol, grid, block, f"{kernel.name} stage {position}"))
    return launches


def _emit_stage(b, stage, pointer, library_call, symbol):
    if isinstance(stage, GemmStage):
        return emit_tiled_gemm(b, stage, pointer, symbol)
    if stage.domain and is_gather(stage):
        return _emit_gather(b, stage, pointer, library_call)
    bounds = (0, stage.domain[0] if stage.domain else 1)
    emit_loop_stage(b, stage, pointer, bounds, library_call)
    return (1, 1, 1), (1, 1, 1)


def _buffer_pointers(fn: ir.Function, b: ir.IRBuilder, program: Program):
    """`pointer(buffer, dtype)`: a global-memory pointer to the buffer at its arena offset."""

    def raw(buffer: str) -> ir.Value:
        return b.gep(fn.args[0], [ir.Constant(I64, program.buffers[buffer].offset)], inbounds=True)

    return typed_pointers(fn, b, raw, addrspace=GLOBAL)


# -- thread indices ------------------------------------------------------------------------------------


def special_register(b: ir.IRBuilder, name: str) -> ir.Value:
    """A PTX special register (`tid.x`, `ntid.y`, `ctaid.z`, `nctaid.x`, ...) as an i64."""
    symbol = f"llvm.nvvm.read.ptx.sreg.{name}"
    fn = b.module.globals.get(symbol) or ir.Function(b.module, ir.FunctionType(I32, []), symbol)
    return b.zext(b.call(fn, []), I64)


def _barrier(b: ir.IRBuilder) -> None:
    """Every thread of the block waits here (`bar.sync 0`)."""
    fn = b.module.globals.get("llvm.nvvm.barrier0")
    if fn is None:
        fn = ir.Function(b.module, ir.FunctionType(ir.VoidType(), []), "llvm.nvvm.barrier0")
    b.call(fn, [])


def _grid_stride(b: ir.IRBuilder, axis: str, extent: int, body) -> None:
    """`for t in range(first, extent, stride)`: this thread's items of a grid-stride loop along `axis`."""
    block, index = special_register(b, f"ntid.{axis}"), special_register(b, f"tid.{axis}")
    first = b.add(b.mul(special_register(b, f"ctaid.{axis}"), block), index)
    stride = b.mul(special_register(b, f"nctaid.{axis}"), block)
    counted_loop(b, (first, ir.Constant(I64, extent), stride), lambda t, _: body(t), name=f"grid{axis}")


# -- gather stages -------------------------------------------------------------------------------------


def _emit_gather(b: ir.IRBuilder, stage: LoopStage, pointer, library_call):
    """One domain point per thread: the flat position splits into the loop variables (row-major)."""
    total = prod(stage.domain)
    vars: dict = {}
    emitter = ExprEmitter(b, pointer, vars, library_call)

    def point(flat):
        for var, extent in reversed(list(zip(stage.vars, stage.domain))):
            size = ir.Constant(I64, extent)
            vars[var.name] = b.urem(flat, size) if extent > 1 else ir.Constant(I64, 0)
            flat = b.udiv(flat, size) if extent > 1 else flat
        emit_stores(emitter, stage)

    _grid_stride(b, "x", total, point)
    blocks = max(1, min(-(-total // BLOCK), MAX_BLOCKS))
    return (blocks, 1, 1), (BLOCK, 1, 1)


# -- GEMM stages ---------------------------------------------------------------------------------------


def emit_tiled_gemm(b: ir.IRBuilder, g: GemmStage, pointer, symbol: str):
    """C[z, i, j] = sum_p A[z, i, p] * B[z, p, j]: thread (tx, ty) of block (bx, by) computes
    C[z, r*16+ty, bx*16+tx] for each batch z and row tile r of its grid-stride loops over the z and y
    axes (so any batch and any number of rows fit the grid). Each step of p loads one element of A
    and one of B per thread into shared tiles (zero outside the matrices), waits for the block, and
    accumulates the tile's 16 products. The loops' trip counts are the same for the whole block, so
    every thread reaches every barrier."""
    element = memory_type(g.dtype)
    tiles = [_shared_tile(b.module, f"{symbol}_{name}", element) for name in ("a", "b")]
    tx, ty = special_register(b, "tid.x"), special_register(b, "tid.y")
    tile = ir.Constant(I64, TILE)
    j = b.add(b.mul(special_register(b, "ctaid.x"), tile), tx)
    math = Arithmetic(b, g.dtype)
    steps, row_tiles = -(-g.k // TILE), -(-g.m // TILE)

    def one_tile(z, row_tile):
        i = b.add(b.mul(row_tile, tile), ty)

        def step(s, acc):
            p0 = b.mul(s, tile)
            a_value = _masked_load(
                b, pointer(g.a.buffer, g.dtype), g.a, (z, i, b.add(p0, tx)), (g.m, g.k), math.zero
            )
            b_value = _masked_load(
                b, pointer(g.b.buffer, g.dtype), g.b, (z, b.add(p0, ty), j), (g.k, g.n), math.zero
            )
            b.store(a_value, _tile_at(b, tiles[0], ty, tx))
            b.store(b_value, _tile_at(b, tiles[1], ty, tx))
            _barrier(b)
            total = acc[0]
            for q in range(TILE):
                q = ir.Constant(I64, q)
                total = math.add(
                    total,
                    math.mul(b.load(_tile_at(b, tiles[0], ty, q)), b.load(_tile_at(b, tiles[1], q, tx))),
                )
            _barrier(b)
            return [total]

        (result,) = counted_loop(b, (0, steps, 1), step, [math.zero], name="ktile")
        inside = b.and_(
            b.icmp_unsigned("<", i, ir.Constant(I64, g.m)), b.icmp_unsigned("<", j, ir.Constant(I64, g.n))
        )
        with b.if_then(inside):
            b.store(
                result, b.gep(pointer(g.c.buffer, g.dtype), [_position(b, g.c, (z, i, j))], inbounds=True)
            )

    _block_stride(b, "z", g.batch, lambda z: _block_stride(b, "y", row_tiles, lambda r: one_tile(z, r)))
    grid = (max(1, -(-g.n // TILE)), _blocks(row_tiles), _blocks(g.batch))
    return grid, (TILE, TILE, 1)


def _blocks(items: int) -> int:
    """Blocks along a grid axis for `items` block-sized items: at least 1, at most MAX_BLOCKS (the
    kernel loops over the rest)."""
    return max(1, min(items, MAX_BLOCKS))


def _block_stride(b: ir.IRBuilder, axis: str, extent: int, body) -> None:
    """Items ctaid, ctaid + nctaid, ... below `extent` along `axis`: the same for every thread of a
    block, so barriers inside are safe."""
    first, stride = special_register(b, f"ctaid.{axis}"), special_register(b, f"nctaid.{axis}")
    counted_loop(b, (first, ir.Constant(I64, extent), stride), lambda t, _: body(t), name=f"block{axis}")


def _shared_tile(module: ir.Module, name: str, element: ir.Type) -> ir.GlobalVariable:
    kind = ir.ArrayType(element, TILE * TILE)
    tile = ir.GlobalVariable(module, kind, name, addrspace=SHARED)
    tile.linkage = "internal"
    tile.initializer = ir.Constant(kind, ir.Undefined)
    tile.align = 16
    return tile


def _tile_at(b: ir.IRBuilder, tile: ir.GlobalVariable, row, col) -> ir.Value:
    flat = b.add(b.mul(row, ir.Constant(I64, TILE)), col)
    return b.gep(tile, [ir.Constant(I64, 0), flat], inbounds=True)


def _position(b: ir.IRBuilder, operand, dims) -> ir.Value:
    position = ir.Constant(I64, operand.offset)
    for d, stride in zip(dims, operand.strides):
        if stride:
            position = b.add(position, b.mul(d, ir.Constant(I64, stride)))
    return position


def _masked_load(b: ir.IRBuilder, base, operand, dims, limits, zero: ir.Constant) -> ir.Value:
    """operand[dims] when the row and column (dims[1:]) are inside `limits`, else zero; an outside
    position reads element 0 instead, so no load ever leaves the buffer."""
    row, col = dims[1], dims[2]
    inside = b.and_(
        b.icmp_unsigned("<", row, ir.Constant(I64, limits[0])),
        b.icmp_unsigned("<", col, ir.Constant(I64, limits[1])),
    )
    position = b.select(inside, _position(b, operand, dims), ir.Constant(I64, operand.offset))
    value = b.load(b.gep(base, [position], inbounds=True))
    return b.select(inside, value, zero)


def _symbol(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


__all__ = ["Launch", "emit_gpu_program", "special_register"]

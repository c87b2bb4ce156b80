"""GEMM stages as register-blocked vector code: C[b, i, j] = sum_p A[b, i, p] * B[b, p, j].

C is cut into blocks of `ROWS` rows by `cols` columns (`cols` = four of the host's vectors). A block's
accumulators are LLVM vector values carried around the p loop in registers (phi nodes), so each step
of p loads one row slice of B once, broadcasts one element of A per row, and multiplies-adds into
every accumulator; C is read (when accumulating) and written once per block. Column tails use a
narrower vector of the exact remaining width and row tails a one-row block, so any size is exact.
B's rows must be contiguous (unit column stride), as `KernelContext.gemm` guarantees; A may have
any strides. This is the simple blocked kernel of the CPU compiler issue; packing, cache blocking and
threads belong to the fast-GEMM work.
"""

from __future__ import annotations

import functools

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from ember.compiler.program import GemmStage, Operand

from .llvm_types import I32, I64, is_float, memory_type
from .loops import counted_loop

ROWS = 4  # rows of C per block


@functools.cache
def vector_bytes() -> int:
    """The widest SIMD register of this CPU, in bytes (64 with AVX-512, else 32)."""
    features = llvm.get_host_cpu_features()
    return 64 if features.get("avx512f") else 32


def block_columns(dtype: str) -> int:
    """Columns of C per block: four vectors' worth of elements."""
    return 4 * vector_bytes() // np.dtype(dtype).itemsize


def tail_blocks(start: int, stop: int) -> list[tuple[int, int]]:
    """Columns [start, stop) as blocks of power-of-two widths, widest first (vectors of other widths
    split badly)."""
    blocks, width = [], 1 << max(stop - start, 1).bit_length()
    while start < stop:
        while width > stop - start:
            width //= 2
        blocks.append((start, width))
        start += width
    return blocks


def emit_blocked_gemm(b: ir.IRBuilder, g: GemmStage, pointer, bounds) -> None:
    """The GEMM's items [start, end) of `bounds`: item t is row block t % blocks of batch t // blocks,
    rows [ROWS * block, ROWS * block + ROWS) cut at m (the last block of a batch may be short)."""
    element = memory_type(g.dtype)
    cols = block_columns(g.dtype)
    base = {name: pointer(name, g.dtype) for name in (g.a.buffer, g.b.buffer, g.c.buffer)}
    kernel = _Gemm(b, g, base, element)
    blocks, full = -(-g.m // ROWS), g.m // ROWS

    def item(t):
        batch = b.udiv(t, ir.Constant(I64, blocks))
        block = b.urem(t, ir.Constant(I64, blocks))
        first = b.mul(block, ir.Constant(I64, ROWS))
        if full == blocks:  # every block is whole
            kernel.row_blocks(batch, first, ROWS, cols)
            return
        with b.if_else(b.icmp_unsigned("<", block, ir.Constant(I64, full))) as (whole, short):
            with whole:
                kernel.row_blocks(batch, first, ROWS, cols)
            with short:  # the last m % ROWS rows, one at a time
                _loop(b, (0, g.m % ROWS, 1), lambda r: kernel.row_blocks(batch, b.add(first, r), 1, cols))

    if packs_b(g, cols):
        _emit_packed(b, g, kernel, bounds, cols)
        return
    _loop(b, (bounds[0], bounds[1], 1), item)


# B panels up to this size are packed (per thread, on its stack) before the row blocks sweep them.
MAX_PANEL_BYTES = 1 << 20


def packs_b(g: GemmStage, cols: int) -> bool:
    """Whether to copy each k x cols panel of B contiguously first: worth it for many rows of A, and
    needed when B's rows lie a multiple of 4 KiB apart (every row of a panel then maps to the same
    L1 cache sets). One batch only (B's panels would differ per batch)."""
    itemsize = np.dtype(g.dtype).itemsize
    return (
        g.batch == 1 and g.m >= 4 * ROWS and g.n >= cols and g.k >= 64
        and g.k * cols * itemsize <= MAX_PANEL_BYTES
    )  # fmt: skip


def _emit_packed(b: ir.IRBuilder, g: GemmStage, kernel: _Gemm, bounds, cols: int) -> None:
    """For each full column panel: pack B[:, j:j+cols] into a contiguous stack buffer, then run this
    thread's row blocks against it; the column tail (narrow) reads B directly."""
    element = kernel.element
    with b.goto_entry_block():
        panel = b.alloca(ir.ArrayType(element, g.k * cols))
        panel.align = 64
    base = b.bitcast(panel, ir.PointerType(element))
    blocks, full = -(-g.m // ROWS), g.m // ROWS
    zero = ir.Constant(I64, 0)
    full_cols = g.n - g.n % cols

    def rows_of(block_of):
        def item(t):
            first = b.mul(t, ir.Constant(I64, ROWS))
            if full == blocks:
                block_of(first, ROWS)
                return
            with b.if_else(b.icmp_unsigned("<", t, ir.Constant(I64, full))) as (whole, short):
                with whole:
                    block_of(first, ROWS)
                with short:
                    _loop(b, (0, g.m % ROWS, 1), lambda r: block_of(b.add(first, r), 1))

        _loop(b, (bounds[0], bounds[1], 1), item)

    def panel_row(p):
        return b.gep(base, [b.mul(p, ir.Constant(I64, cols))], inbounds=True)

    def pack_and_sweep(j):
        vector = ir.PointerType(ir.VectorType(element, cols))

        def pack(p):
            source = b.bitcast(kernel.at(g.b, zero, p, j), vector)
            b.store(
                b.load(source, align=kernel.element_bytes),
                b.bitcast(panel_row(p), vector),
                align=kernel.element_bytes,
            )

        _loop(b, (0, g.k, 1), pack)
        rows_of(lambda i, rows: kernel.block(zero, i, j, rows, cols, panel_row))

    _loop(b, (0, full_cols, cols), pack_and_sweep)
    for start, width in tail_blocks(full_cols, g.n):
        j = ir.Constant(I64, start)
        rows_of(lambda i, rows, j=j, width=width: kernel.block(zero, i, j, rows, width))


def _loop(b: ir.IRBuilder, bounds: tuple[int, int, int], body) -> None:
    counted_loop(b, bounds, lambda i, _: body(i), name="g")


class _Gemm:
    """Emits the blocks of one GEMM stage."""

    def __init__(self, b: ir.IRBuilder, g: GemmStage, base: dict, element: ir.Type):
        self.b, self.g, self.base, self.element = b, g, base, element
        self.float = is_float(g.dtype)
        self.math = Arithmetic(b, g.dtype)

    def at(self, operand: Operand, d0, d1, d2) -> ir.Value:
        """Pointer to element (d0, d1, d2) of a strided operand (d* are i64 values or ints)."""
        b = self.b
        position = ir.Constant(I64, operand.offset)
        for d, stride in zip((d0, d1, d2), operand.strides):
            if stride == 0:
                continue
            d = ir.Constant(I64, d) if isinstance(d, int) else d
            position = b.add(position, b.mul(d, ir.Constant(I64, stride)))
        return b.gep(self.base[operand.buffer], [position], inbounds=True)

    def row_blocks(self, batch, i, rows: int, cols: int) -> None:
        """Every column block of `rows` rows starting at row i: full blocks, then the column tail."""
        n = self.g.n
        full = n - n % cols
        _loop(self.b, (0, full, cols), lambda j: self.block(batch, i, j, rows, cols))
        for start, width in tail_blocks(full, n):
            self.block(batch, i, ir.Constant(I64, start), rows, width)

    def block(self, batch, i, j, rows: int, width: int, b_row_at=None) -> None:
        """C[batch, i:i+rows, j:j+width] = A[batch, i:i+rows, :] @ B[batch, :, j:j+width];
        `b_row_at(p)` points at B[batch, p, j] (a packed panel's row, when given)."""
        b, g = self.b, self.g
        b_row_at = b_row_at or (lambda p: self.at(g.b, batch, p, j))
        vector = ir.VectorType(self.element, width)
        zero = ir.Constant(vector, [ir.Constant(self.element, 0.0 if self.float else 0)] * width)
        row_index = [b.add(i, ir.Constant(I64, r)) for r in range(rows)]

        def step(p, accumulators):
            b_row = b.load(b.bitcast(b_row_at(p), ir.PointerType(vector)), align=self.element_bytes)
            products = [
                self.math.mul(self.splat(b.load(self.at(g.a, batch, row, p)), width), b_row)
                for row in row_index
            ]
            return [self.math.add(acc, product) for acc, product in zip(accumulators, products)]

        accumulators = counted_loop(b, (0, g.k, 1), step, [zero] * rows, name="gp")
        for row, acc in zip(row_index, accumulators):
            target = b.bitcast(self.at(g.c, batch, row, j), ir.PointerType(vector))
            b.store(acc, target, align=self.element_bytes)

    @property
    def element_bytes(self) -> int:
        return np.dtype(self.g.dtype).itemsize

    def splat(self, value: ir.Value, width: int) -> ir.Value:
        b = self.b
        vector = ir.VectorType(self.element, width)
        one = b.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(I32, 0))
        return b.shuffle_vector(
            one, ir.Constant(vector, ir.Undefined), ir.Constant(ir.VectorType(I32, width), [0] * width)
        )


class Arithmetic:
    """Multiply and add in a GEMM's dtype (scalars or vectors): floats may contract to FMA, integers
    wrap. Shared by the CPU's blocked GEMM and the GPU's tiled one."""

    def __init__(self, b: ir.IRBuilder, dtype: str):
        self.b, self.float = b, is_float(dtype)
        self.zero = ir.Constant(memory_type(dtype), 0.0 if self.float else 0)

    def mul(self, x, y):
        if not self.float:
            return self.b.mul(x, y)
        result = self.b.fmul(x, y)
        result.flags.append("contract")
        return result

    def add(self, x, y):
        if not self.float:
            return self.b.add(x, y)
        result = self.b.fadd(x, y)
        result.flags.append("contract")
        return result

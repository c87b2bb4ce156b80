"""GEMM stages as register-blocked vector code: C[b, i, j] (+)= sum_p A[b, i, p] * B[b, p, j].

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

    _loop(b, (bounds[0], bounds[1], 1), item)


def _loop(b: ir.IRBuilder, bounds: tuple[int, int, int], body) -> None:
    counted_loop(b, bounds, lambda i, _: body(i), name="g")


class _Gemm:
    """Emits the blocks of one GEMM stage."""

    def __init__(self, b: ir.IRBuilder, g: GemmStage, base: dict, element: ir.Type):
        self.b, self.g, self.base, self.element = b, g, base, element
        self.float = is_float(g.dtype)

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

    def block(self, batch, i, j, rows: int, width: int) -> None:
        """C[batch, i:i+rows, j:j+width] (+)= A[batch, i:i+rows, :] @ B[batch, :, j:j+width]."""
        b, g = self.b, self.g
        vector = ir.VectorType(self.element, width)
        zero = ir.Constant(vector, [ir.Constant(self.element, 0.0 if self.float else 0)] * width)
        row_index = [b.add(i, ir.Constant(I64, r)) for r in range(rows)]

        def step(p, accumulators):
            b_row = b.load(
                b.bitcast(self.at(g.b, batch, p, j), ir.PointerType(vector)), align=self.element_bytes
            )
            products = [
                self.mul(self.splat(b.load(self.at(g.a, batch, row, p)), width), b_row) for row in row_index
            ]
            return [self.add(acc, product) for acc, product in zip(accumulators, products)]

        accumulators = counted_loop(b, (0, g.k, 1), step, [zero] * rows, name="gp")
        for row, acc in zip(row_index, accumulators):
            target = b.bitcast(self.at(g.c, batch, row, j), ir.PointerType(vector))
            result = self.add(b.load(target, align=self.element_bytes), acc) if g.accumulate else acc
            b.store(result, target, align=self.element_bytes)

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

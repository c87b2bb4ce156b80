"""What a lowering rule can ask of the kernel being built: scratch buffers, loops, GEMMs, fresh
loop variables, the training mode and the random stream.

A rule is `rule(ctx, node, inputs) -> outputs`: it receives its input `Tensor`s and returns one
`Tensor` per output of the node (hidden outputs too). Pure index maps and formulas are returned
lazily; work that must happen before the result can be read (a row maximum, a GEMM, a scatter) is
added to the kernel as stages through the methods below, in order.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from math import prod

import numpy as np

from ..buffers import BufferSpec
from ..program import GemmStage, LoopStage, Operand, Store
from . import expr as E
from .expr import Expr, Var
from .tensor import Index, Tensor, from_buffer

SCRATCH_ALIGNMENT = 64
# Fewer rows of A than this multiply a column-strided B as dot products rather than packing B.
DOT_FORM_ROWS = 8


class KernelContext:
    """Builds one kernel's stages and scratch; `node` is the node being lowered."""

    def __init__(self, name: str, *, is_train: bool, rng_buffer: str | None, scratch_base: int):
        self.name = name
        self.is_train = is_train
        self.stages: list = []
        self.scratch: dict[str, BufferSpec] = {}
        self.node = None
        self.out_types: list = []  # (shape, dtype) of each output of `node`
        self.destination: str | None = None  # a buffer the node's single result may be written into
        self._rng_buffer = rng_buffer
        self.uses_random = False
        self._scratch_top = scratch_base
        self._vars = 0

    # -- names and buffers ------------------------------------------------------------------

    def var(self, prefix: str = "i") -> Var:
        """A loop variable no other loop of this kernel uses."""
        self._vars += 1
        return Var(f"{prefix}{self._vars}")

    def scratch_buffer(self, shape: Sequence[int], dtype: str) -> str:
        """A new buffer for this kernel only, placed after the memory plan's arena."""
        name = f"{self.name}.s{len(self.scratch)}"
        nbytes = int(prod(shape)) * np.dtype(dtype).itemsize
        self.scratch[name] = BufferSpec(name, self._scratch_top, nbytes, tuple(shape), dtype, "temporary")
        self._scratch_top += -(-max(nbytes, 1) // SCRATCH_ALIGNMENT) * SCRATCH_ALIGNMENT
        return name

    def result_buffer(self, shape: Sequence[int], dtype: str) -> str:
        """Where a rule should write a result it must materialize: the group's output buffer when the
        driver offered one of this shape and dtype, else scratch."""
        if self.destination is not None and self.out_types == [(tuple(shape), dtype)]:
            return self.destination
        return self.scratch_buffer(shape, dtype)

    @property
    def scratch_end(self) -> int:
        return self._scratch_top

    # -- stages -------------------------------------------------------------------------------

    def loop(self, shape: Sequence[int], body: Callable[[tuple[Expr, ...]], Sequence[Store]]) -> None:
        """A loop nest over `shape`; `body(dims)` gives the stores made at each point."""
        vars_ = tuple(self.var() for _ in shape)
        self.stages.append(LoopStage(vars_, tuple(int(n) for n in shape), tuple(body(vars_))))

    def store(self, t: Tensor, target: str | None = None, mode: str = "store") -> Tensor:
        """Write every element of `t` into `target` (new scratch by default); the buffer as a tensor."""
        target = target or self.scratch_buffer(t.shape, t.dtype)
        if t.buffer == target and mode == "store":
            return from_buffer(target, t.shape, t.dtype)
        self.store_many([(t, target)], mode)
        return from_buffer(target, t.shape, t.dtype)

    def store_many(self, pairs: Sequence[tuple[Tensor, str]], mode: str = "store") -> None:
        """Write several tensors of one shape in a single loop nest (shared work computed once)."""
        shape = pairs[0][0].shape
        if all(t.buffer is not None for t, _ in pairs) and len(shape) > 1:  # copies: one flat loop
            domain: tuple[int, ...] = (prod(shape),)
        else:
            domain = shape

        def body(dims):
            idx = Index(shape, flat=dims[0]) if domain != shape else Index(shape, dims=dims)
            return [Store(target, idx.flat, t.at(idx), mode) for t, target in pairs]

        self.loop(domain, body)

    def fill(self, target: str, shape: Sequence[int], value, dtype: str) -> None:
        """Set every element of buffer `target` to `value`."""
        c = E.const(value, dtype)
        self.loop((prod(shape),), lambda dims: [Store(target, dims[0], c)])

    def scatter(
        self,
        domain: Sequence[int],
        target: str,
        index_of: Callable[[tuple[Expr, ...]], Expr],
        value_of: Callable[[tuple[Expr, ...]], Expr],
        mode: str = "add",
    ) -> None:
        """For each point of `domain`, `target[index_of(dims)] (mode)= value_of(dims)`."""
        self.loop(domain, lambda dims: [Store(target, index_of(dims), value_of(dims), mode)])

    def reduce(self, op: str, extent: int, body: Callable[[Var], Expr]) -> Expr:
        """`op` of `body(r)` for r in range(extent), as one expression."""
        r = self.var("r")
        return E.Reduce(op, r, int(extent), body(r))

    def dense(self, t: Tensor) -> Tensor:
        """`t` itself when it is a dense buffer, else a scratch copy of it."""
        return t if t.buffer is not None else self.store(t)

    def gemm(
        self,
        a: Tensor,
        b: Tensor,
        *,
        batch: int,
        m: int,
        n: int,
        k: int,
        a_strides: tuple[int, int, int],
        b_strides: tuple[int, int, int],
        out: str | None = None,
    ) -> Tensor:
        """`out[b, i, j] = sum_p a[b, i, p] * b[b, p, j]`, with `a` and `b` dense buffers read through
        the given (batch, row, col) element strides; the result is dense (batch, m, n)."""
        a, b = self.dense(a), self.dense(b)
        if (
            b_strides[2] != 1
            and n > 1
            and batch * m < DOT_FORM_ROWS
            and b_strides[1] == 1
            and a_strides[2] == 1
        ):
            return self._dot_form(a, b, batch, m, n, k, a_strides, b_strides, out)
        if b_strides[2] != 1 and n > 1:  # the inner loop runs along j: give it unit stride
            b = self.store(
                Tensor(
                    (batch, k, n),
                    b.dtype,
                    lambda idx: E.Load(b.buffer, _strided(idx.dims, b_strides), b.dtype),
                )
            )
            b_strides = (k * n, n, 1)
        dtype = a.dtype
        out = out or self.scratch_buffer((batch, m, n), dtype)
        self.stages.append(
            GemmStage(
                Operand(a.buffer, a_strides),
                Operand(b.buffer, b_strides),
                Operand(out, (m * n, n, 1)),
                batch, m, n, k, dtype,
            )
        )  # fmt: skip
        return from_buffer(out, (batch, m, n), dtype)

    def _dot_form(self, a, b, batch, m, n, k, a_strides, b_strides, out) -> Tensor:
        """A few rows against a B whose columns are contiguous (x @ W.T): one dot product per output
        element, both operands read along p, instead of packing all of B for a few rows."""
        dtype = a.dtype
        out = out or self.scratch_buffer((batch, m, n), dtype)

        def value(dims):
            bi, i, j = dims
            return self.reduce(
                "sum",
                k,
                lambda p: E.mul(
                    E.Load(a.buffer, _strided((bi, i, p), a_strides), dtype),
                    E.Load(b.buffer, _strided((bi, p, j), b_strides), dtype),
                ),
            )

        self.loop((batch, m, n), lambda dims: [Store(out, _strided(dims, (m * n, n, 1)), value(dims))])
        return from_buffer(out, (batch, m, n), dtype)

    # -- randomness -----------------------------------------------------------------------------

    def random_stream(self):
        """`draw(counter) -> Expr`: a uniform float32 in [0, 1) for element `counter`, fresh on every run
        of the program. The stream belongs to the node being lowered now (bound here, since a lazy
        tensor may be read later, while another node is current) and depends on the node's name only,
        so every program holding the node (a forward pass, a forward+backward step) draws the same
        numbers from the same seed."""
        if self._rng_buffer is None:
            raise ValueError("this program was built without a random stream")
        self.uses_random = True
        seed = E.Load(self._rng_buffer, E.index(0), "int64")
        owner = self.node.name if self.node is not None else self.name
        salt = E.index(zlib.crc32(owner.encode()) & 0xFFFFFFF)

        def draw(counter: Expr) -> Expr:
            return E.Random(seed, E.add(counter, E.mul(salt, E.index(1 << 32))))

        return draw


def _strided(dims: Sequence[Expr], strides: Sequence[int]) -> Expr:
    flat = E.index(0)
    for d, s in zip(dims, strides):
        flat = E.add(flat, E.mul(d, E.index(s)))
    return flat

"""The kernel program: what lowering hands to codegen, independent of any target.

A `Program` is a list of `Kernel`s run in order over one arena of bytes. Every tensor lives in a
`BufferSpec` at a fixed arena offset (the memory plan's buffers, then each kernel's scratch).
A kernel is a list of stages:

- `LoopStage`: a loop nest over `domain`; at each point every `Store` writes (or accumulates) its
  scalar `value` at flat `index` of its target buffer. Values are `lowering.expr` trees.
- `GemmStage`: `C[b, i, j] = sum_p A[b, i, p] * B[b, p, j]` over strided views of buffers, the
  contraction every matmul-like op lowers to (codegen picks the loop order and blocking).

Codegen turns each kernel into one function and the program into one entry that calls them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .buffers import BufferSpec
from .lowering.expr import Expr, Var, format_expr

STORE_MODES = ("store", "add", "max")


@dataclass(frozen=True)
class Store:
    """`target[index] = value` (mode 'store') or `target[index] += value` ('add') or max-accumulate."""

    target: str
    index: Expr
    value: Expr
    mode: str = "store"

    def __str__(self) -> str:
        op = {"store": "=", "add": "+=", "max": "max="}[self.mode]
        return f"{self.target}[{format_expr(self.index)}] {op} {format_expr(self.value)}"


@dataclass(frozen=True)
class LoopStage:
    """A loop nest: `vars[d]` runs over range(domain[d]), outermost first; `stores` run at each point."""

    vars: tuple[Var, ...]
    domain: tuple[int, ...]
    stores: tuple[Store, ...]

    def __str__(self) -> str:
        loops = " ".join(f"for {v.name} < {n}:" for v, n in zip(self.vars, self.domain)) or "once:"
        return loops + "".join(f"\n      {s}" for s in self.stores)


@dataclass(frozen=True)
class Operand:
    """A strided 3-D view (batch, rows, cols) of a buffer, starting `offset` elements in."""

    buffer: str
    strides: tuple[int, int, int]
    offset: int = 0


@dataclass(frozen=True)
class GemmStage:
    """`c[b, i, j] = sum_p a[b, i, p] * b[b, p, j]` for b < batch, i < m, j < n, p < k."""

    a: Operand
    b: Operand
    c: Operand
    batch: int
    m: int
    n: int
    k: int
    dtype: str

    def __str__(self) -> str:
        return (
            f"gemm {_operand(self.c)}[{self.batch}x{self.m}x{self.n}] = {_operand(self.a)} @ {_operand(self.b)} "
            f"over k={self.k} ({self.dtype})"
        )


def _operand(o: Operand) -> str:
    return f"{o.buffer}{'+' + str(o.offset) if o.offset else ''}{list(o.strides)}"


Stage = LoopStage | GemmStage


@dataclass(frozen=True)
class Kernel:
    """One fusion group's code: `stages` in order; `ops` says what it computes (for listings)."""

    name: str
    stages: tuple[Stage, ...]
    ops: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [f"kernel {self.name} ({', '.join(self.ops)}):"]
        lines += [f"  stage {i}: {stage}" for i, stage in enumerate(self.stages)]
        return "\n".join(lines)


@dataclass(frozen=True)
class Program:
    """Kernels in launch order over one arena; `buffers` maps each buffer name used by a stage to its
    place. `inputs`, `outputs`, `parameters`, `states` name buffers by their user-facing names."""

    name: str
    kernels: tuple[Kernel, ...]
    buffers: dict[str, BufferSpec]
    arena_bytes: int
    inputs: dict[str, str] = field(default_factory=dict)  # user name -> buffer name
    outputs: tuple[tuple[str, str], ...] = ()  # (user name, buffer name), in output order
    parameters: dict[str, str] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    updates: tuple[tuple[str, str], ...] = ()  # (state buffer, buffer holding its new value): copied back
    plan_bytes: int = 0  # the memory plan's arena, before kernel scratch

    def __str__(self) -> str:
        """The whole program as text: buffers (place, type, role), then kernels. Everything that changes
        the generated code appears here, so the compile cache keys on it."""
        lines = [f"program {self.name}: {len(self.kernels)} kernels, arena {self.arena_bytes:,} bytes"]
        lines += [
            f"  buffer {name}: {b.dtype}{list(b.shape)} at {b.offset} ({b.nbytes} bytes, {b.role})"
            for name, b in self.buffers.items()
        ]
        lines += [str(k) for k in self.kernels]
        return "\n".join(lines)

"""A program's buffer plan as plain data: the buffer every value lives in, at a fixed arena offset.

`passes/plan_memory.py` makes a `BufferPlan` (and `check_plan` proves it safe); lowering copies it
into the `Program`, and the runtime allocates one arena of `arena_bytes` and finds each buffer at its
offset. Pinned buffers (inputs, parameters, state, outputs) hold one value for the whole program;
temporary buffers hold one value at a time, reused after it dies or taken over in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .ir import Value

PINNED_ROLES = ("input", "parameter", "state", "output")
ROLES = PINNED_ROLES + ("temporary",)


def value_name(value: Value) -> str:
    """The name a user would know a value by: a variable's name, else `<node>_<output>` as in MXNet."""
    node = value.node
    if node.is_variable:
        return node.name
    return f"{node.name}_{node.schema.all_output_names(node.params)[value.index]}"


def nbytes_of(shape: tuple[int, ...], dtype: str) -> int:
    """Bytes of a dense tensor; 0 when any dim is 0 (exact: Python integers never wrap)."""
    return math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize


@dataclass(frozen=True)
class BufferSpec:
    """One region of the arena: `nbytes` at `offset`, typed as the first value it holds."""

    name: str
    offset: int
    nbytes: int
    shape: tuple[int, ...]
    dtype: str
    role: str  # one of ROLES

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"buffer {self.name!r}: role {self.role!r} is not one of {', '.join(ROLES)}")
        if self.offset < 0 or self.nbytes < 0:
            raise ValueError(
                f"buffer {self.name!r}: offset {self.offset} and size {self.nbytes} must be >= 0"
            )

    @property
    def end(self) -> int:
        return self.offset + self.nbytes

    @property
    def pinned(self) -> bool:
        return self.role in PINNED_ROLES


@dataclass(frozen=True)
class BufferPlan:
    """Every buffer of a program and the buffer (an index into `buffers`) of every value.

    `naive_bytes` is the arena every value would need with a buffer of its own (no reuse, no in-place);
    pinned buffers come first in the arena, so both sizes include them.
    """

    buffers: tuple[BufferSpec, ...]
    value_to_buffer: tuple[tuple[Value, int], ...]
    arena_bytes: int
    naive_bytes: int
    alignment: int = 64

    @cached_property
    def _index(self) -> dict[Value, int]:
        return dict(self.value_to_buffer)

    def to_json(self) -> dict:
        """The plan as plain JSON data, as an artifact's manifest carries it (the runtime reads no IR)."""
        return {
            "arena_bytes": self.arena_bytes,
            "naive_bytes": self.naive_bytes,
            "alignment": self.alignment,
            "buffers": [
                {
                    "name": b.name,
                    "offset": b.offset,
                    "nbytes": b.nbytes,
                    "shape": list(b.shape),
                    "dtype": b.dtype,
                    "role": b.role,
                }
                for b in self.buffers
            ],
        }

    def buffer_of(self, value: Value) -> BufferSpec:
        return self.buffers[self._index[value]]

    def index_of(self, value: Value) -> int:
        return self._index[value]

    @cached_property
    def _groups(self) -> dict[int, tuple[Value, ...]]:
        groups: dict[int, list[Value]] = {}
        for value, index in self.value_to_buffer:
            groups.setdefault(index, []).append(value)
        return {index: tuple(values) for index, values in groups.items()}

    def values_in(self, index: int) -> tuple[Value, ...]:
        """The values sharing buffer `index`, in the order they were planned (in-place chains)."""
        return self._groups.get(index, ())

    @property
    def pinned_bytes(self) -> int:
        """The front of the arena that pinned buffers occupy."""
        return max((_round_up(b.end, self.alignment) for b in self.buffers if b.pinned), default=0)

    @property
    def temporary_bytes(self) -> int:
        """The peak bytes of temporaries (the arena after the pinned front)."""
        return self.arena_bytes - self.pinned_bytes

    @property
    def naive_temporary_bytes(self) -> int:
        return self.naive_bytes - self.pinned_bytes

    @property
    def reuse_ratio(self) -> float:
        """naive_bytes / arena_bytes: how many times smaller reuse and in-place make the arena."""
        return self.naive_bytes / self.arena_bytes if self.arena_bytes else 1.0

    @property
    def temporary_reuse_ratio(self) -> float:
        """The same ratio over temporaries only, the part the planner can shrink."""
        return self.naive_temporary_bytes / self.temporary_bytes if self.temporary_bytes else 1.0

    def __str__(self) -> str:
        header = ("buffer", "role", "offset", "bytes", "dtype", "shape", "values")
        rows = [
            (
                str(i),
                b.role,
                f"{b.offset:,}",
                f"{b.nbytes:,}",
                b.dtype,
                str(b.shape),
                ", ".join(value_name(v) for v in self.values_in(i)),
            )
            for i, b in enumerate(self.buffers)
        ]
        widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header) - 1)]
        right = {0, 2, 3}
        lines = [
            "  ".join(
                cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(r, widths))
            )
            + "  "
            + r[-1]
            for r in [header, *rows]
        ]
        lines.append(
            f"arena {self.arena_bytes:,} bytes (pinned {self.pinned_bytes:,} + temporaries "
            f"{self.temporary_bytes:,}); naive {self.naive_bytes:,} bytes (temporaries "
            f"{self.naive_temporary_bytes:,}); reuse ratio {self.reuse_ratio:.2f}x "
            f"(temporaries {self.temporary_reuse_ratio:.2f}x); alignment {self.alignment}"
        )
        return "\n".join(lines)


def _round_up(nbytes: int, alignment: int) -> int:
    return -(-nbytes // alignment) * alignment

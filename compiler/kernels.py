"""A graph's fusion partition as plain data: the groups of ops that each become one kernel.

`passes/fuse.py` makes a `FusedGraph` (and `check_partition` proves it sound); lowering turns each
`FusionGroup` into one kernel, in the order the groups are listed. A group reads its `inputs` (values
made by variables or by earlier groups) and writes its `outputs` (values later groups or the graph's
outputs read); every other value of its nodes lives only inside the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .buffers import value_name
from .ir import Graph, Node, Value
from .ops.registry import FusionKind


@dataclass(frozen=True)
class FusionGroup:
    """Ops that run as one kernel: `nodes` in topological order, built around `anchor` (the one
    matmul, reduce or opaque node, or None for a chain of elementwise, broadcast and injective ops)."""

    name: str
    kind: FusionKind  # the anchor's kind; for a chain the widest of elementwise < broadcast < injective
    nodes: tuple[Node, ...]
    inputs: tuple[Value, ...]  # values read from outside the group, in order of first use
    outputs: tuple[Value, ...]  # values read outside the group or returned by the graph, in node order
    anchor: Node | None = None

    def __str__(self) -> str:
        around = f" around {self.anchor.name}" if self.anchor is not None else ""
        ops = ", ".join(f"{n.name} = {n.op}" for n in self.nodes)
        return (
            f"{self.name} ({self.kind.value}{around}): {ops}\n"
            f"    reads  {', '.join(value_name(v) for v in self.inputs) or '-'}\n"
            f"    writes {', '.join(value_name(v) for v in self.outputs) or '-'}"
        )


@dataclass(frozen=True)
class FusedGraph:
    """`graph` partitioned into `groups`, listed in the order their kernels run."""

    graph: Graph
    groups: tuple[FusionGroup, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The kernel names, in execution order."""
        return tuple(g.name for g in self.groups)

    @cached_property
    def _group_of(self) -> dict[Node, FusionGroup]:
        return {node: group for group in self.groups for node in group.nodes}

    def group_of(self, node: Node) -> FusionGroup:
        """The group `node` runs in (KeyError for a variable)."""
        return self._group_of[node]

    def __str__(self) -> str:
        ops = sum(len(g.nodes) for g in self.groups)
        lines = [f"kernel {i}: {group}" for i, group in enumerate(self.groups)]
        lines.append(f"{len(self.groups)} kernels for {ops} ops")
        return "\n".join(lines)

"""The compiler pipeline from a typed graph to a kernel program, in order:

    type the graph (once) -> simplify (fold, algebra, CSE, DCE; types carried) -> fuse
    -> plan memory per kernel -> lower to a `Program`

`build_program` runs it all. The graph comes typed (`graph.types`, e.g. as an executor inferred it at
bind) or is typed here from its variables' shapes and dtypes by name; after that types only flow
down. Turning the program into code and loading it is `ember.codegen.driver`'s job, the one path
every caller takes. `EMBER_DEBUG=2` prints the graph after each pass, the kernels and the memory plan.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

from ember.runtime.errors import CompileError

from .buffers import BufferPlan, value_name
from .ir import Graph, TensorType, Value
from .kernels import FusedGraph
from .lowering.lower import lower_program
from .passes.fuse import fuse
from .passes.pipeline import debug_level, simplify
from .passes.plan_memory import KernelStep, plan_kernel_memory
from .passes.typed import check_types, typed_graph
from .program import Program


@dataclass(frozen=True)
class Built:
    """A program and what made it (for `ember inspect`, tests and the closing figures)."""

    program: Program
    graph: Graph  # the graph after simplification
    fused: FusedGraph
    plan: BufferPlan
    types: Mapping[Value, TensorType]


def build_program(
    graph: Graph,
    shapes: Mapping[str, tuple] | None = None,
    dtypes: Mapping[str, str] | None = None,
    *,
    name: str = "main",
    roles: Mapping[str, str] | None = None,
    is_train: bool = False,
    updates: Mapping[str, int] | None = None,
    optimize: bool = True,
    debug: int | None = None,
) -> Built:
    """Compile `graph` to a `Program`.

    A typed `graph` (`graph.types` complete) is used as it is; otherwise `shapes`/`dtypes` give the
    variables' facts by name (dtypes default to float32). `roles` marks variables as 'parameter' or
    'state' (others are inputs). `updates` maps a state variable's name to the position of the graph
    output holding its next value; the program writes it back after each run.
    """
    level = debug_level(debug)
    graph = typed_graph(graph, shapes or {}, dtypes or {})
    if optimize:
        graph = simplify(graph, debug=debug)
        if level >= 1:
            check_types(graph, "after simplification")
    fused = fuse(graph)  # the passes read the typed graph's types: no per-pass shape or dtype maps
    steps = [
        KernelStep(g.inputs, g.outputs, pointwise=g.kind.value == "elementwise" and g.anchor is None)
        for g in fused.groups
    ]
    plan = plan_kernel_memory(graph, steps, pinned=_pinned_roles(graph, roles or {}))
    updates = _update_pairs(graph, updates or {})
    program = lower_program(name, fused, plan, graph.types, is_train=is_train, updates=updates)
    if level >= 2:
        print(f"# fused\n{fused}\n# memory plan\n{plan}\n# {program}", file=sys.stderr)
    return Built(program, graph, fused, plan, graph.types)


def _pinned_roles(graph: Graph, roles: Mapping[str, str]) -> dict[Value, str]:
    """Every variable's role (input unless `roles` says otherwise), and 'output' for computed outputs."""
    pinned = {var.output(): roles.get(var.name, "input") for var in graph.variables}
    for value in graph.outputs:
        if not value.node.is_variable:
            pinned.setdefault(value, "output")
    return pinned


def _update_pairs(graph: Graph, updates: Mapping[str, int]) -> tuple[tuple[Value, Value], ...]:
    """(state variable, the output holding its next value) for each of `updates`."""
    by_name = {v.name: v.output() for v in graph.variables}
    pairs = []
    for state, position in updates.items():
        if state not in by_name:
            raise CompileError(f"update of {state!r}: the graph has no variable of that name")
        pairs.append((by_name[state], graph.outputs[position]))
    return tuple(pairs)


__all__ = ["Built", "build_program", "value_name"]

"""The compiler pipeline from graph to kernel program, in order:

    infer shapes and dtypes -> simplify (fold, algebra, CSE, DCE) -> infer again -> fuse
    -> plan memory per kernel -> lower to a `Program`

`build_program` runs it all; `program_layout` turns a `Program` into the plain JSON data the runtime
reads (no compiler types cross into the runtime). `EMBER_DEBUG=2` prints the graph after each pass,
the kernels and the memory plan.
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
from .passes.infer_shapes import infer_shapes, unknown_shapes
from .passes.infer_types import infer_types
from .passes.pipeline import debug_level, simplify
from .passes.plan_memory import KernelStep, plan_kernel_memory
from .program import Program


@dataclass(frozen=True)
class Built:
    """A program and what made it (for `ember inspect`, tests and the closing figures)."""

    program: Program
    graph: Graph  # the graph after simplification
    fused: FusedGraph
    plan: BufferPlan
    types: Mapping[Value, TensorType]


def typed(graph: Graph, shapes: Mapping[str, tuple], dtypes: Mapping[str, str]) -> dict[Value, TensorType]:
    """Every value's complete type; CompileError naming the values whose shape stays unknown."""
    known_shapes = infer_shapes(graph, shapes)
    missing = unknown_shapes(graph, known_shapes)
    if missing:
        raise CompileError(
            f"cannot compile: the shapes of {', '.join(missing[:5])} are not known; give input shapes"
        )
    known_types = infer_types(graph, dtypes, default="float32")
    untyped = [value_name(v) for v in known_shapes if v not in known_types]
    if untyped:
        raise CompileError(
            f"cannot compile: the dtypes of {', '.join(untyped[:5])} are not known; give input dtypes"
        )
    return {v: TensorType(tuple(int(d) for d in known_shapes[v]), known_types[v]) for v in known_shapes}


def build_program(
    graph: Graph,
    shapes: Mapping[str, tuple],
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

    `shapes`/`dtypes` give the variables' facts by name; `roles` marks variables as 'parameter' or
    'state' (others are inputs). `updates` maps a state variable's name to the position of the graph
    output holding its next value; the program writes it back after each run.
    """
    dtypes = dict(dtypes or {})
    level = debug_level(debug)
    types = typed(graph, shapes, dtypes)
    if optimize:
        graph = simplify(
            graph, {v: t.shape for v, t in types.items()}, {v: t.dtype for v, t in types.items()}, debug
        )
        types = typed(graph, shapes, dtypes)
    fused = fuse(graph, {v: t.shape for v, t in types.items()})
    pinned = {}
    for var in graph.variables:
        role = (roles or {}).get(var.name, "input")
        pinned[var.output()] = role
    for value in graph.outputs:
        if not value.node.is_variable:
            pinned.setdefault(value, "output")
    steps = [
        KernelStep(g.inputs, g.outputs, pointwise=g.kind.value == "elementwise" and g.anchor is None)
        for g in fused.groups
    ]
    plan = plan_kernel_memory(
        graph, steps, {v: t.shape for v, t in types.items()}, {v: t.dtype for v, t in types.items()}, pinned
    )
    by_name = {v.name: v.output() for v in graph.variables}
    pairs = []
    for state, position in (updates or {}).items():
        if state not in by_name:
            raise CompileError(f"update of {state!r}: the graph has no variable of that name")
        pairs.append((by_name[state], graph.outputs[position]))
    program = lower_program(name, fused, plan, types, is_train=is_train, updates=tuple(pairs))
    if level >= 2:
        print(f"# fused\n{fused}\n# memory plan\n{plan}\n# {program}", file=sys.stderr)
    return Built(program, graph, fused, plan, types)


def program_layout(program: Program, entry: str) -> dict:
    """The plain data the runtime needs to run `program` through its entry symbol `entry`."""
    return {
        "entry": entry,
        "arena_bytes": program.arena_bytes,
        "plan_bytes": program.plan_bytes,
        "buffers": {
            name: {
                "offset": b.offset,
                "nbytes": b.nbytes,
                "shape": list(b.shape),
                "dtype": b.dtype,
                "role": b.role,
            }
            for name, b in program.buffers.items()
        },
        "inputs": dict(program.inputs),
        "outputs": [list(pair) for pair in program.outputs],
        "parameters": dict(program.parameters),
        "states": dict(program.states),
        "kernels": [k.name for k in program.kernels],
    }


__all__ = ["Built", "build_program", "program_layout", "typed", "value_name"]

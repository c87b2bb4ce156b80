"""Memory planning: every value of a graph gets a buffer at a fixed offset in one arena.

Input: a graph, the shape and dtype of every value, the roles of pinned values (inputs, parameters,
state, outputs) and an execution order (topological by default). Output: a `BufferPlan`
(`compiler/buffers.py`). Pinned buffers fill the front of the arena and are never shared; temporaries
are placed best-fit into bytes whose values are dead, and an op may write its output over an input
that dies at it (in place, per the rule tables below). `check_plan` proves a plan safe on its own.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from types import MappingProxyType

from ember.runtime.errors import CompileError, ShapeError

from ..buffers import PINNED_ROLES, BufferPlan, BufferSpec, nbytes_of, value_name
from ..ir import Graph, Node, TensorType, Value
from ..ops.facts import reshapes_input
from ..ops.registry import FusionKind, fusion_kinds
from .typed import types_of

# ---------------------------------------------------------------------------------------------
# In-place rules: (node, output index, types) -> positions of the inputs the output may overwrite.
# The planner uses one only when that input is a temporary that dies at the node.

InPlaceRule = Callable[[Node, int, Mapping[Value, TensorType]], tuple[int, ...]]


# The most bytes one buffer, or the whole arena, may take: more than any 64-bit machine maps, and the
# bound an artifact's manifest is checked against when loaded (runtime/manifest.py's MAX_BYTES, which
# the layering keeps out of reach here; tests/test_plan_memory.py holds the two equal).
MAX_BYTES = 2**48


def _itemsize(dtype: str) -> int:
    return nbytes_of((1,), dtype)


def _nbytes(ttype: TensorType) -> int:
    return nbytes_of(ttype.shape, ttype.dtype)


def check_sizes(types: Mapping[Value, TensorType]) -> None:
    """ShapeError naming the first value whose buffer would exceed MAX_BYTES."""
    for value, ttype in types.items():
        size = _nbytes(ttype)
        if size > MAX_BYTES:
            raise ShapeError(
                f"{value_name(value)} of shape {tuple(ttype.shape)} ({ttype.dtype}) needs {size} bytes, "
                f"more than the {MAX_BYTES} a buffer may have"
            )


def same_shape_inputs(node: Node, out: int, types, among: Sequence[int] | None = None) -> tuple[int, ...]:
    """Inputs read at the output's own index: same shape and element size (out[i] = f(in[i]))."""
    target = types[node.output(out)]
    positions = range(len(node.inputs)) if among is None else among
    return tuple(
        p
        for p in positions
        if types[node.inputs[p]].shape == target.shape
        and _itemsize(types[node.inputs[p]].dtype) == _itemsize(target.dtype)
    )


def same_bytes_inputs(node: Node, out: int, types, among: Sequence[int] = (0,)) -> tuple[int, ...]:
    """Inputs whose bytes the output copies unchanged in row-major order (a reshape of them)."""
    target = _nbytes(types[node.output(out)])
    return tuple(p for p in among if _nbytes(types[node.inputs[p]]) == target)


INPLACE_BY_KIND: dict[FusionKind, InPlaceRule] = {
    FusionKind.ELEMENTWISE: same_shape_inputs,
    FusionKind.BROADCAST: same_shape_inputs,  # only operands of the output's shape are read at out's index
}

# where(condition, x, y) writes over x or y, never the condition (a mask; MXNet's FInplaceOption agrees).
_where_data = partial(same_shape_inputs, among=(1, 2))

# Per-op exceptions to INPLACE_BY_KIND; None would mean "never in place".
INPLACE_OVERRIDES: dict[str, InPlaceRule | None] = {"where": _where_data}


def inplace_inputs(node: Node, out: int, types: Mapping[Value, TensorType]) -> tuple[int, ...]:
    """Positions of the inputs of `node` whose buffer output `out` may be written over. A reshape of
    input 0 (the schema's `reshapes_input`) writes over it: row-major order is unchanged, so the output
    is the input's bytes."""
    op = node.schema.name
    if reshapes_input(node):
        rule = same_bytes_inputs
    else:
        rule = INPLACE_OVERRIDES[op] if op in INPLACE_OVERRIDES else INPLACE_BY_KIND.get(fusion_kinds[op])
    return rule(node, out, types) if rule is not None else ()


# ---------------------------------------------------------------------------------------------
# The graph as the planner sees it: steps in order, every value's type, the roles of pinned values


def execution_order(graph: Graph, order: Iterable[Node] | None = None) -> list[Node]:
    """The op nodes of `graph` in the order they run: `order` (variables in it are skipped), checked to
    be a topological order of exactly the graph's nodes, or the graph's own topological order."""
    nodes = [n for n in graph.nodes if not n.is_variable]
    if order is None:
        return nodes
    steps = [n for n in order if not n.is_variable]
    known, seen = {id(n) for n in nodes}, set()
    for node in steps:
        if id(node) not in known or id(node) in seen:
            why = "twice" if id(node) in seen else "but it is not in the graph"
            raise CompileError(f"execution order lists node {node.name!r} (op {node.op}) {why}")
        early = [v.node.name for v in node.inputs if not v.node.is_variable and id(v.node) not in seen]
        if early:
            raise CompileError(f"execution order runs {node.name!r} (op {node.op}) before its inputs {early}")
        seen.add(id(node))
    missing = [n.name for n in nodes if id(n) not in seen]
    if missing:
        raise CompileError(f"execution order leaves out nodes {missing}")
    return steps


def graph_values(graph: Graph) -> list[Value]:
    """Every value of every node, hidden outputs included, in node order."""
    return [Value(n, i) for n in graph.nodes for i in range(n.num_outputs)]


def value_types(
    graph: Graph, shapes: Mapping[Value, tuple], dtypes: Mapping[Value, str]
) -> dict[Value, TensorType]:
    """The complete type of every value; CompileError naming the first value that lacks one."""
    types = {}
    for value in graph_values(graph):
        shape = shapes.get(value)
        if shape is None or any(d is None or d < 0 for d in shape):
            raise CompileError(
                f"memory planning needs the shape of {value_name(value)} (node {value.node.name!r}, op "
                f"{value.node.op}), known only as {shape}; run shape inference first"
            )
        if value not in dtypes:
            raise CompileError(
                f"memory planning needs the dtype of {value_name(value)}; run type inference first"
            )
        types[value] = TensorType(tuple(int(d) for d in shape), dtypes[value])
    return types


def pinned_roles(graph: Graph, pinned: Mapping[Value, str]) -> dict[Value, str]:
    """Role of every pinned value, in node order: as given; else 'input' for a variable and 'output' for
    a graph output."""
    values = graph_values(graph)
    known = set(values)
    strays = [v for v in pinned if v not in known]
    if strays:
        raise CompileError(f"pinned values {strays} are not values of the graph")
    bad = {value_name(v): r for v, r in pinned.items() if r not in PINNED_ROLES}
    if bad:
        raise CompileError(f"pinned roles must be one of {', '.join(PINNED_ROLES)}; got {bad}")
    outputs = set(graph.outputs)
    defaults = {
        v: "input" if v.node.is_variable else "output" for v in values if v.node.is_variable or v in outputs
    }
    merged = {**defaults, **pinned}
    return {v: merged[v] for v in values if v in merged}


def last_uses(steps: Sequence[Node]) -> dict[Value, int]:
    """The last step that reads each value (values nobody reads are absent)."""
    last = {}
    for step, node in enumerate(steps):
        for value in node.inputs:
            last[value] = step
    return last


# ---------------------------------------------------------------------------------------------
# The arena: best-fit placement in blocks of whole alignment units


class _Arena:
    """A growing arena above `base`: allocation takes the smallest free block that fits (lowest offset
    on ties), else grows the top; freed blocks are merged, and a free block at the top lowers it."""

    def __init__(self, base: int):
        self.free: list[tuple[int, int]] = []  # (offset, size), sorted, merged, all below `top`
        self.top = self.peak = base

    def allocate(self, size: int) -> int:
        fits = [(s, o) for o, s in self.free if s >= size]
        if not fits:
            offset, self.top = self.top, self.top + size
            self.peak = max(self.peak, self.top)
            return offset
        block_size, offset = min(fits)
        self.free.remove((offset, block_size))
        if block_size > size:
            insort(self.free, (offset + size, block_size - size))
        return offset

    def release(self, offset: int, size: int) -> None:
        insort(self.free, (offset, size))
        merged: list[tuple[int, int]] = []
        for o, s in self.free:
            if merged and merged[-1][0] + merged[-1][1] == o:
                merged[-1] = (merged[-1][0], merged[-1][1] + s)
            else:
                merged.append((o, s))
        if merged and merged[-1][0] + merged[-1][1] == self.top:
            self.top = merged.pop()[0]
        self.free = merged


# ---------------------------------------------------------------------------------------------
# The planner


@dataclass
class _Slot:
    """A buffer while planning: its first value, where it is, its size in whole alignment units."""

    value: Value
    role: str
    offset: int = 0
    reserved: int = 0


class _Planner:
    """Walks the steps once: pinned slots first, then each step's outputs placed (or taken over in
    place) before the inputs dying there and the outputs nobody reads are freed."""

    def __init__(
        self, types: Mapping[Value, TensorType], alignment: int, inplace: InPlaceRule = inplace_inputs
    ):
        self.types, self.alignment, self.inplace = types, alignment, inplace
        self.slots: list[_Slot] = []
        self.slot_of: dict[Value, int] = {}

    def nbytes(self, value: Value) -> int:
        return _nbytes(self.types[value])

    def reserved(self, value: Value) -> int:
        return -(-self.nbytes(value) // self.alignment) * self.alignment

    def add_slot(self, value: Value, role: str, offset: int) -> None:
        self.slot_of[value] = len(self.slots)
        self.slots.append(_Slot(value, role, offset if self.nbytes(value) else 0, self.reserved(value)))

    def pin(self, roles: Mapping[Value, str]) -> int:
        """Lay pinned buffers out one after another from offset 0; returns where the front ends."""
        cursor = 0
        for value, role in roles.items():
            self.add_slot(value, role, cursor)
            cursor += self.reserved(value)
        return cursor

    def run(self, steps: Sequence[Node], roles: Mapping[Value, str], arena: _Arena) -> None:
        last = last_uses(steps)
        for step, node in enumerate(steps):
            dying = [v for v in dict.fromkeys(node.inputs) if v not in roles and last[v] == step]
            outputs = [node.output(i) for i in range(node.num_outputs)]
            for index, value in enumerate(outputs):
                if value in roles:
                    continue
                donor = self.donor(node, index, dying)
                if donor is not None:
                    dying.remove(donor)
                    self.slot_of[value] = self.slot_of[donor]
                else:
                    self.add_slot(value, "temporary", self.place(value, arena))
            unread = [v for v in outputs if v not in roles and v not in last]
            for value in dying + unread:
                self.free(self.slot_of[value], arena)

    def donor(self, node: Node, out: int, dying: list[Value]) -> Value | None:
        """A dying temporary input of `node` whose buffer output `out` may take over, if any."""
        value = node.output(out)
        for position in self.inplace(node, out, self.types):
            candidate = node.inputs[position]
            if candidate in dying and self.nbytes(candidate) == self.nbytes(value):
                return candidate
        return None

    def place(self, value: Value, arena: _Arena) -> int:
        return arena.allocate(self.reserved(value)) if self.nbytes(value) else 0

    def free(self, slot_index: int, arena: _Arena) -> None:
        slot = self.slots[slot_index]
        if slot.reserved:
            arena.release(slot.offset, slot.reserved)

    def buffers(self) -> tuple[BufferSpec, ...]:
        return tuple(
            BufferSpec(
                value_name(s.value),
                s.offset,
                self.nbytes(s.value),
                self.types[s.value].shape,
                self.types[s.value].dtype,
                s.role,
            )
            for s in self.slots
        )


_NOTHING_PINNED: Mapping[Value, str] = MappingProxyType({})


def plan_memory(
    graph: Graph,
    shapes: Mapping[Value, tuple],
    dtypes: Mapping[Value, str],
    pinned: Mapping[Value, str] = _NOTHING_PINNED,
    order: Iterable[Node] | None = None,
    alignment: int = 64,
) -> BufferPlan:
    """A buffer for every value of `graph`, at offsets that are multiples of `alignment` in one arena.

    `pinned` gives the role (input, parameter, state, output) of values the caller owns; variables
    not in it are inputs and graph outputs not in it are outputs. Pinned values get buffers of their
    own for the whole program; every other value (hidden outputs too) is a temporary, freed after the
    last step of `order` that reads it.
    """
    if alignment < 1:
        raise CompileError(f"alignment must be a positive number of bytes, got {alignment}")
    steps = execution_order(graph, order)
    types = value_types(graph, shapes, dtypes)
    roles = pinned_roles(graph, pinned)
    return _planned(_Planner(types, alignment), steps, roles)


# ---------------------------------------------------------------------------------------------
# Planning at kernel granularity


@dataclass(frozen=True)
class KernelStep:
    """A fusion group seen as one step of the plan: it reads `inputs` and writes `outputs`."""

    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]
    pointwise: bool  # every read of every input is at the output element's own flat position

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def output(self, index: int) -> Value:
        return self.outputs[index]


def kernel_inplace_inputs(step: KernelStep, out: int, types: Mapping[Value, TensorType]) -> tuple[int, ...]:
    """A kernel may write an output over an input only when it reads everything pointwise."""
    if not step.pointwise:
        return ()
    target = types[step.outputs[out]]
    return tuple(
        p
        for p, v in enumerate(step.inputs)
        if types[v].shape == target.shape and _itemsize(types[v].dtype) == _itemsize(target.dtype)
    )


def plan_kernel_memory(
    graph: Graph,
    steps: Sequence[KernelStep],
    shapes: Mapping[Value, tuple] | None = None,
    dtypes: Mapping[Value, str] | None = None,
    pinned: Mapping[Value, str] = _NOTHING_PINNED,
    alignment: int = 64,
) -> BufferPlan:
    """Like `plan_memory`, but with fused kernels as the steps: only the values kernels exchange
    (and pinned values) get buffers; values living inside one kernel need none. A typed graph needs
    no `shapes` and `dtypes`: its types are used as they are."""
    types = types_of(graph, "memory planning") if shapes is None else value_types(graph, shapes, dtypes or {})
    roles = pinned_roles(graph, pinned)
    exchanged = {v for step in steps for v in (*step.inputs, *step.outputs)} | set(roles)
    planner = _Planner({v: t for v, t in types.items() if v in exchanged}, alignment, kernel_inplace_inputs)
    return _planned(planner, steps, roles)


def _planned(planner: _Planner, steps, roles: Mapping[Value, str]) -> BufferPlan:
    """Run `planner` over `steps` after pinning `roles`; naive size: every value in a buffer of its own.
    ShapeError for a value, CompileError for the arena, larger than MAX_BYTES."""
    check_sizes(planner.types)
    arena = _Arena(planner.pin(roles))
    planner.run(steps, roles, arena)
    if arena.peak > MAX_BYTES:
        raise CompileError(f"the planned arena needs {arena.peak} bytes, more than the {MAX_BYTES} allowed")
    return BufferPlan(
        buffers=planner.buffers(),
        value_to_buffer=tuple(planner.slot_of.items()),
        arena_bytes=arena.peak,
        naive_bytes=sum(planner.reserved(v) for v in planner.types),
        alignment=planner.alignment,
    )


# ---------------------------------------------------------------------------------------------
# The checker: proves a plan safe from the graph alone, whatever planner made it


def check_plan(
    plan: BufferPlan,
    graph: Graph,
    order: Iterable[Node] | None = None,
    *,
    shapes: Mapping[Value, tuple] | None = None,
    dtypes: Mapping[Value, str] | None = None,
) -> None:
    """Raise CompileError unless `plan` is safe for `graph` run in `order` (types: `shapes` and `dtypes`,
    else `graph.types`):

    - every value has one buffer, of exactly its size, at an aligned offset inside the arena;
    - variables and graph outputs are pinned, and a pinned buffer holds one value;
    - values sharing a temporary buffer hand it over in place: the later value's op reads the earlier
      one at its last use, through an input the in-place rules allow;
    - no two buffers live at the same step overlap in the arena (pinned ones are live at every step).
    """
    steps = execution_order(graph, order)
    types = value_types(graph, *_given_types(graph, shapes, dtypes))
    _check_buffers(plan, graph, types)
    _check_pinned(plan, graph)
    _check_disjoint(plan, steps, _live_ranges(plan, steps, types))


def _given_types(graph: Graph, shapes, dtypes) -> tuple[Mapping, Mapping]:
    if shapes is not None and dtypes is not None:
        return shapes, dtypes
    if graph.types is None:
        raise CompileError("check_plan needs shapes and dtypes, or a graph with types")
    return (
        shapes if shapes is not None else {v: t.shape for v, t in graph.types.items()},
        dtypes if dtypes is not None else {v: t.dtype for v, t in graph.types.items()},
    )


def _check_buffers(plan: BufferPlan, graph: Graph, types: Mapping[Value, TensorType]) -> None:
    index = dict(plan.value_to_buffer)
    if len(index) != len(plan.value_to_buffer):
        raise CompileError("the plan maps some value to more than one buffer")
    strays = [v for v in index if v not in types]
    missing = [value_name(v) for v in types if v not in index]
    if strays or missing:
        raise CompileError(
            f"the plan has buffers for values not in the graph {strays} and none for {missing}"
        )
    for value, i in index.items():
        if not 0 <= i < len(plan.buffers):
            raise CompileError(f"{value_name(value)} maps to buffer {i}; the plan has {len(plan.buffers)}")
        need, buffer = _nbytes(types[value]), plan.buffers[i]
        if buffer.nbytes != need:
            raise CompileError(
                f"{value_name(value)} ({types[value]}) needs {need} bytes; its buffer {i} "
                f"({buffer.name}) has {buffer.nbytes}"
            )
    for i, buffer in enumerate(plan.buffers):
        if buffer.offset % plan.alignment or buffer.end > plan.arena_bytes:
            raise CompileError(
                f"buffer {i} ({buffer.name}) at [{buffer.offset}, {buffer.end}) is not aligned to "
                f"{plan.alignment} or lies outside the {plan.arena_bytes}-byte arena"
            )
    unused = sorted(set(range(len(plan.buffers))) - set(index.values()))
    if unused:
        raise CompileError(f"buffers {unused} hold no value")


def _check_pinned(plan: BufferPlan, graph: Graph) -> None:
    owned = set(graph.outputs) | {Value(v, 0) for v in graph.variables}
    for value in owned:
        if not plan.buffer_of(value).pinned:
            raise CompileError(
                f"{value_name(value)} is a variable or graph output but its buffer is temporary"
            )
    for i, buffer in enumerate(plan.buffers):
        sharing = plan.values_in(i)
        if buffer.pinned and len(sharing) > 1:
            names = [value_name(v) for v in sharing]
            raise CompileError(f"pinned buffer {i} ({buffer.role} {buffer.name}) is shared by {names}")


def _live_ranges(plan: BufferPlan, steps: Sequence[Node], types) -> dict[int, tuple[int, int]]:
    """Buffer index -> (first step, last step) it holds a live value; pinned buffers live throughout.
    Checks that values sharing a temporary buffer hand it over in place."""
    step_of = {id(node): t for t, node in enumerate(steps)}
    last = last_uses(steps)
    ranges = {}
    for i, buffer in enumerate(plan.buffers):
        if buffer.pinned:
            ranges[i] = (0, max(len(steps) - 1, 0))
            continue
        sharing = sorted(plan.values_in(i), key=lambda v: step_of[id(v.node)])
        for before, after in pairwise(sharing):
            _check_handoff(before, after, step_of, last, types)
        first, final = sharing[0], sharing[-1]
        ranges[i] = (step_of[id(first.node)], last.get(final, step_of[id(final.node)]))
    return ranges


def _check_handoff(before: Value, after: Value, step_of, last, types) -> None:
    """`after` may take `before`'s buffer only by overwriting it in place at `before`'s last use."""
    node = after.node
    reads = {p for p, v in enumerate(node.inputs) if v == before}
    allowed = reads & set(inplace_inputs(node, after.index, types))
    if not allowed or last.get(before) != step_of[id(node)]:
        raise CompileError(
            f"{value_name(before)} and {value_name(after)} share a buffer, but {node.name!r} (op {node.op}) "
            f"does not write {value_name(after)} over {value_name(before)} in place where it dies"
        )


def _check_disjoint(plan: BufferPlan, steps: Sequence[Node], ranges: Mapping[int, tuple[int, int]]) -> None:
    """At every step, the live non-empty buffers sorted by offset must each start after all before end."""
    starting: dict[int, list[int]] = {}
    for i, (first, _) in ranges.items():
        if plan.buffers[i].nbytes:
            starting.setdefault(first, []).append(i)
    live: set[int] = set()
    for step in range(max(len(steps), 1)):
        live.update(starting.get(step, ()))
        ordered = sorted(live, key=lambda i: plan.buffers[i].offset)
        reach = None  # the buffer reaching furthest so far
        for i in ordered:
            if reach is not None and plan.buffers[i].offset < plan.buffers[reach].end:
                _overlap(plan, reach, i, steps, step)
            if reach is None or plan.buffers[i].end > plan.buffers[reach].end:
                reach = i
        live = {i for i in live if ranges[i][1] > step}


def _overlap(plan: BufferPlan, a: int, b: int, steps: Sequence[Node], step: int):
    where = f"step {step} ({steps[step].name!r})" if steps else "the start"
    first, second = plan.buffers[a], plan.buffers[b]
    raise CompileError(
        f"buffers {a} ({first.role} {first.name}, [{first.offset}, {first.end})) and {b} ({second.role} "
        f"{second.name}, [{second.offset}, {second.end})) are both live at {where} and overlap in the arena"
    )

"""Fusion: partition a graph's ops into groups, each of which becomes one kernel.

Input: a graph and the shape of every value (`infer_shapes`). Output: a `FusedGraph`
(`compiler/kernels.py`): the groups in execution order, each with its nodes, the values it reads and
writes, its anchor and a name that says what it computes (`fused_fc_bias_relu`). The rules are the
tables below, keyed by `FusionKind`; `check_partition` proves any partition sound on its own.

How groups form: op nodes are visited in topological order and each one is merged with the groups of
its producers, those built around an anchor first (an epilogue saves writing and re-reading the
anchor's result), whenever the merged group still obeys the rules, stays within `MAX_GROUP_SIZE` ops
and leaves the groups acyclic. No node is ever copied into two groups: a value several groups read is
written once by the group that makes it, so expensive work is never repeated and recomputation stays
inside one kernel (a cheap node inlined at each of its uses there).
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from math import prod

from ember.runtime.errors import CompileError

from ..buffers import value_name
from ..ir import Graph, Node, Value
from ..kernels import FusedGraph, FusionGroup
from ..ops.facts import reshapes_input
from ..ops.registry import FusionKind, fusion_kinds
from .typed import TypeField, types_of

ELEMENTWISE, BROADCAST, INJECTIVE = FusionKind.ELEMENTWISE, FusionKind.BROADCAST, FusionKind.INJECTIVE

# A group holds at most this many ops. It bounds what one kernel's code generation, register pressure
# and the recomputation of inlined nodes can grow to; a longer chain is split into several kernels.
MAX_GROUP_SIZE = 32

# ---------------------------------------------------------------------------------------------
# Rule tables

# Ops of these kinds merge freely with one another into a chain: one loop over the outputs, every
# other value computed where it is read.
CHAIN_KINDS = frozenset({ELEMENTWISE, BROADCAST, INJECTIVE})
# A chain group's kind is the widest of its members'.
CHAIN_WIDTH = {ELEMENTWISE: 0, BROADCAST: 1, INJECTIVE: 2}


@dataclass(frozen=True)
class AnchorRule:
    """What an op of an anchor kind absorbs: prologue ops before it (read only inside the group,
    pointwise into its inputs at `prologue_inputs`) and epilogue ops after it (pointwise over its output)."""

    prologue: frozenset[FusionKind] = frozenset()
    prologue_inputs: tuple[int, ...] = ()
    epilogue: frozenset[FusionKind] = frozenset()


# Every kind that is not a chain kind anchors a group of its own; a group has at most one anchor.
# Prologue and epilogue ops must also read their in-group inputs pointwise (below): an injective
# epilogue is thus a reshape, and a broadcast one broadcasts only what it reads from outside (a bias).
ANCHOR_RULES: dict[FusionKind, AnchorRule] = {
    FusionKind.MATMUL: AnchorRule(epilogue=CHAIN_KINDS),  # fc + bias + relu, conv + bias + relu
    FusionKind.REDUCE: AnchorRule(
        prologue=frozenset({ELEMENTWISE}), prologue_inputs=(0,), epilogue=CHAIN_KINDS
    ),  # sum(exp(x)) / n
    FusionKind.OPAQUE: AnchorRule(),  # alone
}

# Pointwise reads: `rule(node, position, shapes)` is True when output element k of `node` reads input
# `position` at flat index k only, so the node can run inside another kernel's loop over k. Injective
# ops that reorder elements (transpose, slice, ...) have no rule and are never pointwise.
Pointwise = Callable[[Node, int, Mapping[Value, tuple]], bool]


def same_shape(node: Node, position: int, shapes) -> bool:
    """The input has the output's shape (a broadcast operand does not)."""
    return tuple(shapes[node.inputs[position]]) == tuple(shapes[node.output(0)])


def same_elements(node: Node, position: int, shapes, among: tuple[int, ...] = (0,)) -> bool:
    """The output is the input's elements in row-major order (a reshape of it)."""
    return position in among and _count(shapes[node.inputs[position]]) == _count(shapes[node.output(0)])


POINTWISE_BY_KIND: dict[FusionKind, Pointwise] = {ELEMENTWISE: same_shape, BROADCAST: same_shape}


def reads_pointwise(node: Node, position: int, shapes: Mapping[Value, tuple]) -> bool:
    """Whether output element k of `node` reads input `position` at flat index k only: by its kind, or as a
    reshape of input 0 (the schema's `reshapes_input`)."""
    rule = same_elements if reshapes_input(node) else POINTWISE_BY_KIND.get(kind_of(node))
    return node.num_outputs == 1 and rule is not None and rule(node, position, shapes)


def kind_of(node: Node) -> FusionKind:
    return fusion_kinds[node.schema.name]


def _count(shape: tuple) -> int:
    return prod(int(d) for d in shape)


# ---------------------------------------------------------------------------------------------
# What a node set must satisfy to be one group


@dataclass(frozen=True)
class GraphFacts:
    """What the rules ask of the graph: shapes, who reads each node, the graph's outputs, node order."""

    shapes: Mapping[Value, tuple]
    readers: Mapping[Value, tuple[Node, ...]]
    graph_outputs: frozenset[Value]
    position: Mapping[Node, int]

    @classmethod
    def of(cls, graph: Graph, shapes: Mapping[Value, tuple] | None) -> GraphFacts:
        """The facts of `graph`; `shapes`, where given, must be complete for every value."""
        readers: dict[Value, list[Node]] = {}
        for node in graph.nodes:
            for value in dict.fromkeys(node.inputs):
                readers.setdefault(value, []).append(node)
        for value in _values(graph) if shapes is not None else ():
            shape = shapes.get(value)
            if shape is None or any(d is None or d < 0 for d in shape):
                raise CompileError(
                    f"fusion needs the shape of {value_name(value)} (node {value.node.name!r}, op "
                    f"{value.node.op}), known only as {shape}; run shape inference first"
                )
        return cls(
            shapes or {},
            {v: tuple(nodes) for v, nodes in readers.items()},
            frozenset(graph.outputs),
            {node: i for i, node in enumerate(graph.nodes)},
        )

    def node_readers(self, node: Node) -> tuple[Node, ...]:
        """The nodes that read any output of `node`."""
        return self._node_readers.get(node, ())

    def node_producers(self, node: Node) -> tuple[Node, ...]:
        """The op nodes whose outputs `node` reads."""
        return tuple(dict.fromkeys(v.node for v in node.inputs if not v.node.is_variable))

    @cached_property
    def _node_readers(self) -> dict[Node, tuple[Node, ...]]:
        readers: dict[Node, dict[Node, None]] = {}
        for value, nodes in self.readers.items():
            readers.setdefault(value.node, {}).update(dict.fromkeys(nodes))
        return {node: tuple(nodes) for node, nodes in readers.items()}


def _values(graph: Graph) -> list[Value]:
    return [Value(n, i) for n in graph.nodes for i in range(n.num_outputs)]


def group_inputs(nodes: Sequence[Node]) -> tuple[Value, ...]:
    """Values `nodes` read from outside themselves, in order of first use."""
    members = set(nodes)
    return tuple(dict.fromkeys(v for n in nodes for v in n.inputs if v.node not in members))


def group_outputs(nodes: Sequence[Node], facts: GraphFacts) -> tuple[Value, ...]:
    """Values of `nodes` read outside them or returned by the graph, in node order."""
    members = set(nodes)
    return tuple(
        v
        for n in nodes
        for v in (n.output(i) for i in range(n.num_outputs))
        if v in facts.graph_outputs or any(r not in members for r in facts.readers.get(v, ()))
    )


def group_violation(nodes: Sequence[Node], facts: GraphFacts, max_size: int = MAX_GROUP_SIZE) -> str | None:
    """Why `nodes` (in topological order) may not be one group, or None when they may."""
    if len(nodes) > max_size:
        return f"it has {len(nodes)} ops, more than the bound of {max_size}"
    anchors = [n for n in nodes if kind_of(n) not in CHAIN_KINDS]
    if len(anchors) > 1:
        return f"it has {len(anchors)} anchors ({', '.join(n.name for n in anchors)}); a kernel has one"
    if anchors:
        return _anchored_violation(anchors[0], nodes, facts)
    counts = {v: _count(facts.shapes[v]) for v in group_outputs(nodes, facts)}
    if len(set(counts.values())) > 1:
        sizes = ", ".join(f"{value_name(v)} {c}" for v, c in counts.items())
        return f"its outputs differ in element count ({sizes}), so they share no loop"
    return None


def _anchored_violation(anchor: Node, nodes: Sequence[Node], facts: GraphFacts) -> str | None:
    rule, kind = ANCHOR_RULES[kind_of(anchor)], kind_of(anchor).value
    members = set(nodes)
    before, after = _ancestors(anchor, members), _descendants(anchor, members, facts)
    for position, value in enumerate(anchor.inputs):
        if value.node in members and position not in rule.prologue_inputs:
            return f"{kind} anchor {anchor.name} reads {value_name(value)} (input {position}) from the group"
    for node in nodes:
        if node is anchor:
            continue
        if node not in before and node not in after:
            return f"{node.name} ({node.op}) is neither before nor after the {kind} anchor {anchor.name}"
        role, allowed = ("prologue", rule.prologue) if node in before else ("epilogue", rule.epilogue)
        if kind_of(node) not in allowed:
            return f"a {kind} anchor takes no {kind_of(node).value} {role} ({node.name}, {node.op})"
        for position, value in enumerate(node.inputs):
            if value.node not in members:
                continue
            if role == "epilogue" and value.node in before:
                return f"epilogue {node.name} reads the prologue value {value_name(value)}"
            if not reads_pointwise(node, position, facts.shapes):
                return f"{role} {node.name} ({node.op}) does not read {value_name(value)} pointwise"
        if role == "prologue" and any(r not in members for r in facts.node_readers(node)):
            return f"prologue {node.name} ({node.op}) is read outside the group"
        if role == "prologue" and any(node.output(i) in facts.graph_outputs for i in range(node.num_outputs)):
            return f"prologue {node.name} ({node.op}) is a graph output"
    return None


def _ancestors(node: Node, members: set[Node]) -> set[Node]:
    """Members from which `node` is reachable through members."""
    found, stack = set(), [v.node for v in node.inputs]
    while stack:
        n = stack.pop()
        if n in members and n not in found:
            found.add(n)
            stack.extend(v.node for v in n.inputs)
    return found


def _descendants(node: Node, members: set[Node], facts: GraphFacts) -> set[Node]:
    """Members reachable from `node` through members."""
    found, stack = set(), list(facts.node_readers(node))
    while stack:
        n = stack.pop()
        if n in members and n not in found:
            found.add(n)
            stack.extend(facts.node_readers(n))
    return found


# ---------------------------------------------------------------------------------------------
# The pass


def fuse(
    graph: Graph, shapes: Mapping[Value, tuple] | None = None, max_group_size: int = MAX_GROUP_SIZE
) -> FusedGraph:
    """`graph`'s op nodes partitioned into kernels that obey the rule tables, in execution order.

    `shapes` must give every value's complete shape (as `infer_shapes` does), or be left out for a
    typed graph, whose types give them; CompileError otherwise.
    """
    if max_group_size < 1:
        raise CompileError(f"max_group_size must be at least 1, got {max_group_size}")
    if shapes is None:
        shapes = TypeField(types_of(graph, "fusion"), "shape")
    facts = GraphFacts.of(graph, shapes)
    partition = _Partition(facts, max_group_size)
    for node in graph.nodes:
        if not node.is_variable:
            partition.place(node)
    groups = partition.in_execution_order()
    names = unique_names([kernel_name(nodes) for nodes in groups])
    return FusedGraph(graph, tuple(make_group(name, nodes, facts) for name, nodes in zip(names, groups)))


# The group-graph searches below (cycle refusal, execution order) are hand-written, not networkx's:
# importing networkx takes about 0.1 s, several times what all the passes take on a model like LeNet.
class _Partition:
    """Groups while fusing: node -> group id, group id -> members in topological order."""

    def __init__(self, facts: GraphFacts, max_size: int):
        self.facts, self.max_size = facts, max_size
        self.group_of: dict[Node, int] = {}
        self.members: dict[int, list[Node]] = {}
        self.new_ids = itertools.count()

    def place(self, node: Node) -> None:
        """Put `node` in a group of its own, then merge in its producers' groups where the rules allow."""
        home = next(self.new_ids)
        self.group_of[node], self.members[home] = home, [node]
        producers = dict.fromkeys(self.group_of[v.node] for v in node.inputs if not v.node.is_variable)
        for gid in sorted(producers, key=lambda g: not self._anchored(g)):  # epilogues first
            if self._can_merge(gid, home):
                home = self._merge(gid, home)

    def _anchored(self, gid: int) -> bool:
        return any(kind_of(n) not in CHAIN_KINDS for n in self.members[gid])

    def _can_merge(self, a: int, b: int) -> bool:
        nodes = sorted(self.members[a] + self.members[b], key=self.facts.position.__getitem__)
        if group_violation(nodes, self.facts, self.max_size) is not None:
            return False
        return not (self._detour(a, b) or self._detour(b, a))

    def _detour(self, source: int, target: int) -> bool:
        """Whether group `source` reaches group `target` through a third group (merging them would then
        make the groups cyclic). The search is over groups, not nodes: a group reached from `source` and
        reaching `target` closes a cycle even when no single path of nodes runs through it. Edges go
        forward in topological order, so a group starting at or after `target`'s last node is skipped."""
        position = self.facts.position
        last = max(position[n] for n in self.members[target])
        stack = [g for g in self._successors(source) if g != target]
        seen: set[int] = set()
        while stack:
            gid = stack.pop()
            if gid in seen or min(position[n] for n in self.members[gid]) >= last:
                continue
            seen.add(gid)
            successors = self._successors(gid)
            if target in successors:
                return True
            stack.extend(successors)
        return False

    def _successors(self, gid: int) -> set[int]:
        """Placed groups reading a value that group `gid` writes (nodes not yet placed form no group)."""
        readers = (r for n in self.members[gid] for r in self.facts.node_readers(n))
        return {self.group_of[r] for r in readers if r in self.group_of} - {gid}

    def _merge(self, a: int, b: int) -> int:
        for node in self.members[b]:
            self.group_of[node] = a
        merged = self.members[a] + self.members.pop(b)
        self.members[a] = sorted(merged, key=self.facts.position.__getitem__)
        return a

    def in_execution_order(self) -> list[list[Node]]:
        """The groups in a topological order of the group graph, earliest first node first."""
        after: dict[int, set[int]] = {g: set() for g in self.members}
        waiting = dict.fromkeys(self.members, 0)
        for gid, nodes in self.members.items():
            for value in group_inputs(nodes):
                if not value.node.is_variable and gid not in after[self.group_of[value.node]]:
                    after[self.group_of[value.node]].add(gid)
                    waiting[gid] += 1
        first = {gid: self.facts.position[nodes[0]] for gid, nodes in self.members.items()}
        ready = [(first[g], g) for g, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, gid = heapq.heappop(ready)
            order.append(self.members[gid])
            for later in after[gid]:
                waiting[later] -= 1
                if waiting[later] == 0:
                    heapq.heappush(ready, (first[later], later))
        if len(order) != len(self.members):
            raise CompileError("fusion made the kernels depend on each other in a cycle (a bug in fuse)")
        return order


def make_group(name: str, nodes: Sequence[Node], facts: GraphFacts) -> FusionGroup:
    """The `FusionGroup` of `nodes` (in topological order): its inputs, outputs, anchor and kind."""
    anchors = [n for n in nodes if kind_of(n) not in CHAIN_KINDS]
    anchor = anchors[0] if anchors else None
    return FusionGroup(
        name=name,
        kind=group_kind(nodes),
        nodes=tuple(nodes),
        inputs=group_inputs(nodes),
        outputs=group_outputs(nodes, facts),
        anchor=anchor,
    )


def group_kind(nodes: Sequence[Node]) -> FusionKind:
    """The anchor's kind, else the widest chain kind among `nodes`."""
    kinds = [kind_of(n) for n in nodes]
    anchored = [k for k in kinds if k not in CHAIN_KINDS]
    return anchored[0] if anchored else max(kinds, key=CHAIN_WIDTH.__getitem__)


# ---------------------------------------------------------------------------------------------
# Kernel names: what the group computes, one part per op in node order

NamePart = Callable[[Node], str]
NAME_PARTS: dict[str, NamePart] = {
    "FullyConnected": lambda n: "fc" if n.params["no_bias"] else "fc_bias",
    "Convolution": lambda n: "conv" if n.params["no_bias"] else "conv_bias",
    "Activation": lambda n: n.params["act_type"],
    "LeakyReLU": lambda n: n.params["act_type"],
    "elemwise_add": lambda n: "add",
    "elemwise_sub": lambda n: "sub",
    "elemwise_mul": lambda n: "mul",
    "elemwise_div": lambda n: "div",
}
MAX_NAME_PARTS = 8  # longer names keep the first parts and count the rest


def name_part(node: Node) -> str:
    """`node`'s part of a kernel name: from NAME_PARTS, else its op in snake case (SoftmaxOutput ->
    softmax_output, _greater_scalar -> greater_scalar)."""
    rule = NAME_PARTS.get(node.schema.name)
    if rule is not None:
        return rule(node)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", node.schema.name).strip("_").lower()


def kernel_name(nodes: Sequence[Node]) -> str:
    """`fused_` and the parts of `nodes` (runs of one part as `relu_x3`), or the one op's part alone."""
    runs: list[list] = []
    for part in map(name_part, nodes):
        if runs and runs[-1][0] == part:
            runs[-1][1] += 1
        else:
            runs.append([part, 1])
    parts = [part if count == 1 else f"{part}_x{count}" for part, count in runs]
    if len(parts) > MAX_NAME_PARTS:
        parts = parts[: MAX_NAME_PARTS - 1] + [f"and_{len(parts) - MAX_NAME_PARTS + 1}_more"]
    return "_".join(parts) if len(nodes) == 1 else "fused_" + "_".join(parts)


def unique_names(names: Sequence[str]) -> list[str]:
    """`names` with a repeat made unique by a counter: fc_bias, fc_bias_1, fc_bias_2."""
    taken: set[str] = set()
    unique = []
    for name in names:
        candidate, count = name, 0
        while candidate in taken:
            count += 1
            candidate = f"{name}_{count}"
        taken.add(candidate)
        unique.append(candidate)
    return unique


# ---------------------------------------------------------------------------------------------
# The checker: proves a partition sound from the graph alone, whatever made it


def check_partition(
    graph: Graph,
    groups: Sequence[FusionGroup],
    shapes: Mapping[Value, tuple] | None = None,
    max_group_size: int = MAX_GROUP_SIZE,
) -> None:
    """Raise CompileError unless `groups` is a sound partition of `graph` in execution order:

    - every op node is in exactly one group, no variable in any, names are unique;
    - each group lists its nodes in topological order, has at most `max_group_size` of them, and its
      anchor and kind are its one matmul/reduce/opaque node's (None and the widest chain kind if none);
    - each group's inputs and outputs are exactly what its nodes read from outside and what is read
      outside it or returned by the graph;
    - contracting the groups gives a DAG, and every group reads only variables and earlier groups;
    - with `shapes`, each group also obeys the fusion rules (`group_violation`).
    """
    facts = GraphFacts.of(graph, shapes)
    _check_cover(graph, groups)
    for group in groups:
        _check_group(group, facts, max_group_size)
        if shapes is not None:
            reason = group_violation(group.nodes, facts, max_group_size)
            if reason is not None:
                raise CompileError(f"group {group.name} breaks the fusion rules: {reason}")
    _check_order(groups)


def _check_cover(graph: Graph, groups: Sequence[FusionGroup]) -> None:
    ops = [n for n in graph.nodes if not n.is_variable]
    known, seen = set(ops), {}
    for group in groups:
        for node in group.nodes:
            if node.is_variable:
                raise CompileError(f"group {group.name} holds the variable {node.name!r}")
            if node not in known:
                raise CompileError(
                    f"group {group.name} holds {node.name!r} ({node.op}), which is not in the graph"
                )
            if node in seen:
                raise CompileError(
                    f"{node.name!r} ({node.op}) is in two groups: {seen[node]} and {group.name}"
                )
            seen[node] = group.name
    missing = [n.name for n in ops if n not in seen]
    if missing:
        raise CompileError(f"no group holds the ops {missing}")
    names = [g.name for g in groups]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CompileError(f"kernel names {repeated} are used by more than one group")


def _check_group(group: FusionGroup, facts: GraphFacts, max_size: int) -> None:
    if not group.nodes:
        raise CompileError(f"group {group.name} is empty")
    if len(group.nodes) > max_size:
        raise CompileError(
            f"group {group.name} has {len(group.nodes)} ops, more than the bound of {max_size}"
        )
    done: set[Node] = set()
    members = set(group.nodes)
    for node in group.nodes:
        early = [v.node.name for v in node.inputs if v.node in members and v.node not in done]
        if early:
            raise CompileError(f"group {group.name} lists {node.name!r} before its inputs {early}")
        done.add(node)
    anchors = [n for n in group.nodes if kind_of(n) not in CHAIN_KINDS]
    if len(anchors) > 1 or group.anchor is not (anchors[0] if anchors else None):
        raise CompileError(
            f"group {group.name} names anchor {getattr(group.anchor, 'name', None)!r}; its matmul, reduce "
            f"and opaque nodes are {[n.name for n in anchors]}, and a group has at most one"
        )
    if group.kind != group_kind(group.nodes):
        raise CompileError(
            f"group {group.name} is marked {group.kind.value}, not {group_kind(group.nodes).value}"
        )
    for field, expected in (
        ("inputs", group_inputs(group.nodes)),
        ("outputs", group_outputs(group.nodes, facts)),
    ):
        given = getattr(group, field)
        if tuple(given) != expected:
            raise CompileError(
                f"group {group.name} lists {field} {_names(given)}; they are {_names(expected)}"
            )


def _names(values: Sequence[Value]) -> list[str]:
    return [value_name(v) for v in values]


def _check_order(groups: Sequence[FusionGroup]) -> None:
    """Contracting the groups must give a DAG, and the list must be a topological order of it."""
    index = {node: i for i, g in enumerate(groups) for node in g.nodes}
    reads = {i: {index[v.node] for v in g.inputs if not v.node.is_variable} for i, g in enumerate(groups)}
    cycle = _find_cycle(reads)
    if cycle:
        raise CompileError("the groups form a cycle: " + " -> ".join(groups[i].name for i in cycle))
    for i, producers in reads.items():
        late = [groups[p].name for p in producers if p > i]
        if late:
            raise CompileError(f"group {groups[i].name} runs before {late}, whose outputs it reads")


def _find_cycle(reads: Mapping[int, set[int]]) -> list[int]:
    """A cycle in the graph `reads` (group -> the groups it reads), as a list of groups, or []."""
    state: dict[int, int] = {}  # 1 on the current path, 2 finished
    for root in reads:
        if root in state:
            continue
        path, stack = [], [(root, iter(sorted(reads[root])))]
        state[root] = 1
        path.append(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                return list(reversed(path[path.index(child) :] + [child]))
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(reads[child]))))
    return []

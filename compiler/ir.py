"""Ember's IR: an immutable DAG of `Node`s whose outputs are `Value`s, wrapped in a `Graph`.

A node is an operator application (`op`, `inputs`, string `attrs`, `name`); a variable is a node
whose op is `VARIABLE` ("null", as in MXNet's JSON). Attributes are kept as MXNet keeps them, as
strings, so a graph round-trips through JSON losslessly; the op registry parses them into typed
parameters (`node.params`). Passes never mutate: they build new nodes and new graphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Mapping

from ember.runtime.errors import GraphError

VARIABLE = "null"

# A shape whose rank or some dims are not yet known: None for an unknown shape, None for a dim.
Shape = tuple  # tuple[int | None, ...]


@dataclass(frozen=True)
class TensorType:
    """The static type of a value: its shape and canonical dtype name."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def __str__(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


class Attrs(tuple):
    """An immutable, hashable, key-sorted mapping of string attributes."""

    def __new__(cls, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()):
        pairs = items.items() if isinstance(items, Mapping) else items
        return super().__new__(cls, sorted((str(k), str(v)) for k, v in pairs))

    def get(self, key: str, default=None):
        for k, v in self:
            if k == key:
                return v
        return default

    def __contains__(self, key) -> bool:
        return any(k == key for k, _ in self)

    def as_dict(self) -> dict[str, str]:
        return dict(self)


@dataclass(frozen=True, eq=False)
class Node:
    """One operator application (or a variable when `op == VARIABLE`). Compared by identity."""

    op: str
    inputs: tuple["Value", ...]
    attrs: Attrs = field(default_factory=Attrs)
    name: str = ""

    def __post_init__(self):
        if not isinstance(self.attrs, Attrs):
            object.__setattr__(self, "attrs", Attrs(self.attrs))
        object.__setattr__(self, "inputs", tuple(self.inputs))

    @property
    def is_variable(self) -> bool:
        return self.op == VARIABLE

    @cached_property
    def schema(self):
        """The registry's schema for this op (None for variables)."""
        from .ops.registry import get_schema

        return None if self.is_variable else get_schema(self.op)

    @cached_property
    def params(self):
        """Typed parameters parsed from `attrs` by the op's schema, defaults filled in."""
        return {} if self.is_variable else self.schema.parse_params(self.attrs, self.name)

    @property
    def num_outputs(self) -> int:
        """All outputs, hidden ones included (BatchNorm's mean and var)."""
        return 1 if self.is_variable else self.schema.num_outputs(self.params)

    @property
    def num_visible_outputs(self) -> int:
        return 1 if self.is_variable else self.schema.num_visible_outputs(self.params)

    def output(self, index: int = 0) -> "Value":
        return Value(self, index)

    def __repr__(self) -> str:
        return f"Node({self.op}, {self.name!r})"


@dataclass(frozen=True)
class Value:
    """Output `index` of `node`."""

    node: Node
    index: int = 0

    def __repr__(self) -> str:
        return f"{self.node.name}:{self.index}"


def variable(name: str, attrs: Mapping[str, str] | None = None) -> Node:
    """A new variable node."""
    return Node(VARIABLE, (), Attrs(attrs or {}), name)


def topological_order(outputs: Iterable[Value]) -> list[Node]:
    """Nodes reachable from `outputs` in DFS post-order, inputs visited left to right.

    This is nnvm's order, so argument lists, JSON node lists and internals match MXNet's.
    Iterative, so deep graphs do not hit Python's recursion limit.
    """
    order: list[Node] = []
    visited: set[int] = set()
    for head in outputs:
        stack = [(head.node, 0)]
        while stack:
            node, next_input = stack.pop()
            if next_input == 0 and id(node) in visited:
                continue
            if next_input == 0:
                visited.add(id(node))
            if next_input < len(node.inputs):
                stack.append((node, next_input + 1))
                child = node.inputs[next_input].node
                if id(child) not in visited:
                    stack.append((child, 0))
            else:
                order.append(node)
    return order


@dataclass(frozen=True, eq=False)
class Graph:
    """A DAG given by its output values; `types` maps values to `TensorType` once inferred."""

    outputs: tuple[Value, ...]
    types: Mapping[Value, TensorType] | None = None

    def __post_init__(self):
        object.__setattr__(self, "outputs", tuple(self.outputs))

    @cached_property
    def nodes(self) -> list[Node]:
        """Every node in topological (DFS post-order) order."""
        return topological_order(self.outputs)

    @cached_property
    def variables(self) -> list[Node]:
        return [n for n in self.nodes if n.is_variable]

    def with_types(self, types: Mapping[Value, TensorType]) -> "Graph":
        return Graph(self.outputs, dict(types))

    def __str__(self) -> str:
        return format_graph(self)


def format_graph(graph: Graph) -> str:
    """A readable listing: one line per node, `%id = op(inputs) {attrs} : types`."""
    ids = {id(n): i for i, n in enumerate(graph.nodes)}
    types = graph.types or {}
    lines = []
    for node in graph.nodes:
        outs = [types.get(Value(node, i)) for i in range(node.num_outputs)]
        type_text = ", ".join(str(t) if t else "?" for t in outs)
        if node.is_variable:
            lines.append(f"%{ids[id(node)]} = var {node.name!r} : {type_text}")
            continue
        args = ", ".join(
            f"%{ids[id(v.node)]}" + (f".{v.index}" if v.node.num_outputs > 1 else "") for v in node.inputs
        )
        attrs = " {" + ", ".join(f"{k}={v}" for k, v in node.attrs) + "}" if node.attrs else ""
        lines.append(f"%{ids[id(node)]} = {node.op}({args}){attrs} name={node.name!r} : {type_text}")
    heads = ", ".join(f"%{ids[id(v.node)]}.{v.index}" for v in graph.outputs)
    lines.append(f"return {heads}")
    return "\n".join(lines)


def verify(graph: Graph) -> None:
    """Check the invariants every pass must keep; raise `GraphError` naming the broken node."""
    from .ops.registry import get_schema

    for node in graph.nodes:
        if node.is_variable:
            if node.inputs:
                raise GraphError(f"variable {node.name!r} has inputs")
            continue
        schema = get_schema(node.op)
        expected = schema.input_names(node.params)
        if not schema.variadic and len(node.inputs) != len(expected):
            raise GraphError(
                f"node {node.name!r} (op {node.op}) has {len(node.inputs)} inputs, expected "
                f"{len(expected)}: {', '.join(expected)}"
            )
        for value in node.inputs:
            if not 0 <= value.index < value.node.num_outputs:
                raise GraphError(
                    f"node {node.name!r} (op {node.op}) reads output {value.index} of "
                    f"{value.node.name!r}, which has {value.node.num_outputs} outputs"
                )
    for value in graph.outputs:
        if not 0 <= value.index < value.node.num_outputs:
            raise GraphError(f"graph output reads missing output {value.index} of {value.node.name!r}")
    if graph.types is not None:
        for value, ttype in graph.types.items():
            if not isinstance(ttype, TensorType) or any(d is None or d < 0 for d in ttype.shape):
                raise GraphError(f"value {value!r} has an incomplete type {ttype}")

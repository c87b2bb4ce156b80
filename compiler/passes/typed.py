"""Typed graphs: every value's `TensorType`, inferred once and then carried along.

`typed_graph` infers the types of a graph from its variables' facts (two-way inference, as `bind`
does) and returns the graph with `types` set. Passes that rewrite a typed graph carry the types of
the values they keep or replace (`simplify/rewrite.py`), and `complete_types` types what is left:
the values of new nodes, by running each such node's shape and dtype rules forward over its inputs'
known types. Nothing downstream re-derives types from variable names.
"""

from __future__ import annotations

from collections.abc import Mapping

from ember.runtime.errors import CompileError, ShapeError, TypeInferenceError

from ..buffers import value_name
from ..ir import Graph, Node, TensorType, Value
from ..ops.registry import shape_rules, type_rules
from ..ops.rules import describe, is_known
from .fixpoint import apply_rule
from .infer_shapes import infer_shapes, unknown_shapes
from .infer_types import infer_types

Types = Mapping[Value, TensorType]


class TypeField(Mapping):
    """One field (`"shape"` or `"dtype"`) of a value -> `TensorType` mapping, read as a mapping of its
    own: passes that ask only shapes (fusion) or shapes and dtypes apart (algebra) read a typed
    graph's types without copying them into separate maps. It follows later changes to `types`."""

    def __init__(self, types: Types, field: str):
        self.types, self.field = types, field

    def __getitem__(self, value: Value):
        return getattr(self.types[value], self.field)

    def __iter__(self):
        return iter(self.types)

    def __len__(self) -> int:
        return len(self.types)


def infer_all_types(
    graph: Graph, shapes: Mapping[str, tuple], dtypes: Mapping[str, str]
) -> dict[Value, TensorType]:
    """Every value's complete type from the variables' `shapes` and `dtypes` by name (float32 where
    no dtype is given or declared); CompileError naming the values whose shape or dtype stays unknown."""
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


def typed_graph(graph: Graph, shapes: Mapping[str, tuple] = {}, dtypes: Mapping[str, str] = {}) -> Graph:
    """`graph` with every value typed: as it is when its types are already complete, else with the
    types inferred from the variables' facts by name."""
    if graph.types is not None and is_fully_typed(graph):
        return graph
    return graph.with_types(infer_all_types(graph, shapes, dtypes))


def is_fully_typed(graph: Graph) -> bool:
    """Whether `graph.types` gives every value of the graph a complete type."""
    types = graph.types or {}
    return all(Value(n, i) in types for n in graph.nodes for i in range(n.num_outputs))


def check_types(graph: Graph, when: str) -> None:
    """Prove a typed graph's carried types right: they must equal what inference decides afresh from
    its variables' types (EMBER_DEBUG >= 1 runs this after the passes); CompileError naming the
    first value whose carried type is wrong."""
    fresh = _infer_from_variables(graph, types_of(graph, "check_types"))
    for value, want in fresh.items():
        got = graph.types.get(value)
        if got != want:
            raise CompileError(
                f"{when}: {value_name(value)} (node {value.node.name!r}, op {value.node.op}) carries the "
                f"type {got}, but inference gives {want}"
            )


def types_of(graph: Graph, needed_by: str) -> Types:
    """A typed graph's types; CompileError saying that `needed_by` (a pass) needs them otherwise."""
    if graph.types is None:
        raise CompileError(
            f"{needed_by} needs a typed graph (or the values' facts); type it first (typed_graph)"
        )
    return graph.types


def complete_types(graph: Graph, known: Types) -> dict[Value, TensorType]:
    """The types of every value of `graph`: those `known` (restricted to the graph), and for the rest,
    each node's rules run forward over its inputs' types, in topological order. Where that cannot
    decide a value (a variable without a type, a rule that needs its outputs), inference runs over
    the whole graph from the variables' known types."""
    types: dict[Value, TensorType] = {}
    for node in graph.nodes:
        outputs = [Value(node, i) for i in range(node.num_outputs)]
        if all(v in known for v in outputs):
            types.update((v, known[v]) for v in outputs)
            continue
        inferred = None if node.is_variable else _forward(node, types)
        if inferred is None:
            return _infer_from_variables(graph, {**types, **known})
        types.update(zip(outputs, inferred))
    return types


def _forward(node: Node, types: Mapping[Value, TensorType]) -> list[TensorType] | None:
    """`node`'s output types from its inputs' types through its rules, or None where they do not decide."""
    if any(v not in types for v in node.inputs):
        return None
    shapes = {v: types[v].shape for v in node.inputs}
    dtypes = {v: types[v].dtype for v in node.inputs}
    apply_rule(node, shapes, shape_rules, describe, ShapeError, "shape")
    apply_rule(node, dtypes, type_rules, describe, TypeInferenceError, "type")
    outputs = [Value(node, i) for i in range(node.num_outputs)]
    if not all(is_known(shapes.get(v)) and dtypes.get(v) is not None for v in outputs):
        return None
    return [TensorType(tuple(int(d) for d in shapes[v]), dtypes[v]) for v in outputs]


def _infer_from_variables(graph: Graph, known: Types) -> dict[Value, TensorType]:
    facts = [(v.name, known.get(v.output())) for v in graph.variables]
    shapes = {name: t.shape for name, t in facts if t is not None}
    dtypes = {name: t.dtype for name, t in facts if t is not None}
    return infer_all_types(graph, shapes, dtypes)


__all__ = [
    "TypeField", "check_types", "complete_types", "infer_all_types", "is_fully_typed", "typed_graph",
    "types_of",
]  # fmt: skip

"""Rebuilding a graph with some values replaced: the one way every simplification pass edits a graph.

Nodes are immutable, so a pass walks the old graph in topological order and asks a `Rebuilder` for
each node's copy: the same node when none of its inputs changed, else a new node with the same op,
attributes and name over the new inputs. Facts about values (shapes, dtypes) follow each value to its
copy, so a rule can ask about a node the pass has just rebuilt. A typed graph's `types` are facts
too: `Rebuilder.of(graph)` carries them, and the rebuilt graph comes out typed (values of new nodes
typed by `complete_types`).
"""

from __future__ import annotations

from collections.abc import Mapping

from ember.runtime.errors import GraphError

from ...ir import Attrs, Graph, Node, TensorType, Value
from ..typed import complete_types


class Rebuilder:
    """Old value -> new value, filled while a pass walks a graph bottom-up."""

    def __init__(self, *facts: Mapping[Value, object], types: Mapping[Value, TensorType] | None = None):
        self.replaced: dict[Value, Value] = {}
        # Private copies: a pass never mutates the mappings it was given.
        self.facts: tuple[dict[Value, object], ...] = tuple(dict(f) for f in facts)
        self.types: dict[Value, TensorType] | None = None if types is None else dict(types)

    @classmethod
    def of(cls, graph: Graph, *facts: Mapping[Value, object]) -> "Rebuilder":
        """A rebuilder for `graph`, carrying its types (if it is typed) besides `facts`."""
        return cls(*facts, types=graph.types)

    def value(self, old: Value) -> Value:
        """What `old` has become (itself when nothing replaced it)."""
        return self.replaced.get(old, old)

    def node(self, old: Node) -> Node:
        """`old` over its inputs' new values: `old` itself when none changed."""
        inputs = tuple(self.value(v) for v in old.inputs)
        if inputs == old.inputs:
            return old
        new = Node(old.op, inputs, old.attrs, old.name)
        for index in range(old.num_outputs):
            self.replace(Value(old, index), Value(new, index))
        return new

    def replace(self, old: Value, new: Value) -> None:
        """Readers of `old` read `new` from now on; `new` inherits `old`'s facts where it has none.

        A replacement must have the replaced value's shape and dtype; where both are known and
        differ, the rule that proposed it is wrong, and the error names both values.
        """
        for facts in self.facts if self.types is None else (*self.facts, self.types):
            before, after = facts.get(old), facts.get(new)
            if after is None:
                if before is not None:
                    facts[new] = before
            elif _known(before) and _known(after) and before != after:
                raise GraphError(
                    f"simplification replaced {old!r} ({old.node.op}, {before}) with {new!r} "
                    f"({new.node.op}, {after}): a replacement must keep the shape and dtype"
                )
        self.replaced[old] = new

    def graph(self, old: Graph) -> Graph:
        """The graph whose outputs are `old`'s outputs' new values: typed when this rebuilder carries
        types (`of` a typed graph), else untyped (re-infer where needed)."""
        new = Graph(tuple(self.value(v) for v in old.outputs))
        return new if self.types is None else new.with_types(complete_types(new, self.types))


def _known(fact) -> bool:
    """A fact with nothing left to infer: a dtype, or a shape without unknown dims."""
    return fact is not None and not (isinstance(fact, tuple) and None in fact)


def new_node(op: str, inputs: tuple[Value, ...], like: Node, attrs: Mapping[str, str]) -> Value:
    """Output 0 of a new node `op(*inputs)` that takes the place of `like`: it gets `like`'s name
    and hidden attributes (`__key__`, set by the user's AttrScope) besides `attrs`."""
    hidden = {k: v for k, v in like.attrs if k.startswith("__") and k.endswith("__")}
    return Node(op, inputs, Attrs({**hidden, **attrs}), like.name).output(0)

"""Common subexpression elimination: one node per (op, attributes, inputs).

Walking bottom-up, a node whose op, parameters, hidden attributes and (already deduplicated) inputs
equal an earlier node's is replaced by it, every output at once; the first node in topological order
keeps its name. Variables are never merged (each is its own input), nor are random ops (two Dropouts
of one input draw two masks; the schema's `draws_random`).
"""

from __future__ import annotations

from ...ir import Graph, Node, Value
from ...ops.facts import draws_random
from ...ops.registry import canonical_name
from .rewrite import Rebuilder


def common_subexpression_elimination(graph: Graph) -> Graph:
    """`graph` with every repeated computation done once."""
    rebuilder = Rebuilder.of(graph)
    first_of: dict[tuple, Node] = {}
    for old in graph.nodes:
        node = rebuilder.node(old)
        if node.is_variable or draws_random(node):
            continue
        first = first_of.setdefault(_key(node), node)
        if first is not node:
            for index in range(old.num_outputs):
                rebuilder.replace(Value(old, index), Value(first, index))
    return rebuilder.graph(graph)


def _key(node: Node) -> tuple:
    """What makes two nodes compute the same thing: parsed parameters, so "1" and "1.0" agree."""
    hidden = tuple((k, v) for k, v in node.attrs if k.startswith("__") and k.endswith("__"))
    params = tuple(sorted(node.params.items()))
    try:
        hash(params)
    except TypeError:  # a parameter parsed into something unhashable: compare the strings instead
        params = tuple(node.attrs)
    return (canonical_name(node.op), params, hidden, node.inputs)

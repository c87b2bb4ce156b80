"""A graph for viewing: an Ember `Graph` as a networkx DiGraph, written as GraphML (yEd, Gephi, Cytoscape).

Input: a `Graph` (`ir.py`), typed or not. Output: a DiGraph whose vertices are the graph's nodes, keyed
by their position in `graph.nodes` (as `format_graph` numbers them), and whose edges run from producer to
reader. `ember inspect --graphml PATH` writes an artifact's graph this way. networkx is an optional
dependency (`pip install 'ember[graph]'`) imported here only, on demand: compiling never needs it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ember.runtime.errors import MXNetError

from .ir import Graph, Value

if TYPE_CHECKING:
    import networkx


def to_networkx(graph: Graph) -> networkx.DiGraph:
    """`graph` as a DiGraph. Vertex attributes: `op` ("null" for a variable), `name`, and where
    `graph.types` gives every output's type, `shapes` and `dtypes` ("(100, 784)"; one per output, joined
    by "; "). Edge attributes: `inputs`, the reader's input positions fed by the producer, and `outputs`,
    the producer's output index at each ("0,1" and "0,0" when a node reads one value twice). The graph
    attribute `outputs` lists the graph's outputs as `position:index`."""
    nx = _networkx()
    position = {node: i for i, node in enumerate(graph.nodes)}
    types = graph.types or {}
    digraph = nx.DiGraph(outputs=", ".join(f"{position[v.node]}:{v.index}" for v in graph.outputs))
    for node, i in position.items():
        digraph.add_node(i, op=node.op, name=node.name)
        out_types = [types.get(Value(node, k)) for k in range(node.num_outputs)]
        if all(out_types):
            digraph.nodes[i]["shapes"] = "; ".join(str(tuple(t.shape)) for t in out_types)
            digraph.nodes[i]["dtypes"] = "; ".join(t.dtype for t in out_types)
    reads: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for node, i in position.items():
        for slot, value in enumerate(node.inputs):
            reads.setdefault((position[value.node], i), []).append((slot, value.index))
    for (producer, reader), pairs in reads.items():
        digraph.add_edge(
            producer,
            reader,
            inputs=",".join(str(slot) for slot, _ in pairs),
            outputs=",".join(str(index) for _, index in pairs),
        )
    return digraph


def write_graphml(graph: Graph, path: str | os.PathLike) -> networkx.DiGraph:
    """Write `to_networkx(graph)` to `path` as GraphML and return it."""
    digraph = to_networkx(graph)
    _networkx().write_graphml(digraph, path)
    return digraph


def _networkx():
    try:
        import networkx
    except ImportError:
        raise MXNetError("the graph export needs networkx: pip install 'ember[graph]'") from None
    return networkx

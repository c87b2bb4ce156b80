"""Dead code elimination: the graph without what no output reads.

A `Graph` is given by its outputs, so a node nothing reads is already absent from `graph.nodes`
once a rewrite stops pointing at it; this pass makes that explicit in the pipeline and drops the rest
of the dead state: `types` entries of values no longer in the graph.
"""

from __future__ import annotations

from ...ir import Graph, Value


def dead_code_elimination(graph: Graph) -> Graph:
    """`graph` reduced to the nodes its outputs read, with `types` (if any) for their values only.

    Nodes are kept whole: a multi-output node some of whose outputs nobody reads (BatchNorm's
    hidden mean and var, Dropout's mask) stays as it is, since one kernel computes all its outputs;
    whether an unread output needs a buffer is memory planning's question.
    """
    if graph.types is None:
        return Graph(graph.outputs)
    live = {Value(node, i) for node in graph.nodes for i in range(node.num_outputs)}
    return Graph(graph.outputs, {v: t for v, t in graph.types.items() if v in live})

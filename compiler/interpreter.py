"""The reference interpreter: runs any graph with NumPy, op by op, through `reference_rules`.

It defines what every op means and is the oracle of every differential test. Variables are fed
by name; the result holds every output of the graph (hidden outputs are available through
`evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from ember.runtime.errors import GraphError, MXNetError

from .ir import Graph, Value
from .ops.registry import reference_rules


@dataclass
class RefContext:
    """What a reference implementation may depend on besides its inputs."""

    is_train: bool = False
    rng: np.random.Generator = field(default_factory=np.random.default_rng)


def call_reference(op: str, node_name: str, params: dict, args: list, ctx: RefContext) -> list:
    """Run `op`'s reference on NumPy `args`; a failure becomes an MXNetError naming the node and shapes."""
    try:
        return reference_rules[op](params, args, ctx)
    except MXNetError:
        raise
    except Exception as err:
        shapes = ", ".join(str(a.shape) for a in args)
        raise MXNetError(f"Error in operator {node_name} ({op}) with input shapes {shapes}: {err}") from err


def evaluate(
    graph: Graph,
    feeds: Mapping[str, np.ndarray],
    ctx: RefContext | None = None,
    known: Mapping[Value, np.ndarray] | None = None,
) -> dict:
    """Every value of `graph` computed from `feeds` (variable name -> array), keyed by `Value`.

    Values in `known` (say, a forward pass's results reused by its backward graph) are not recomputed.
    """
    ctx = ctx or RefContext()
    values: dict[Value, np.ndarray] = dict(known or {})
    for node in graph.nodes:
        if Value(node, 0) in values:
            continue
        if node.is_variable:
            if node.name not in feeds:
                raise GraphError(f"no value given for variable {node.name!r}")
            values[Value(node, 0)] = np.asarray(feeds[node.name])
            continue
        outputs = call_reference(node.op, node.name, node.params, [values[v] for v in node.inputs], ctx)
        for index, out in enumerate(outputs):
            values[Value(node, index)] = out
    return values


def run(graph: Graph, feeds: Mapping[str, np.ndarray], is_train: bool = False, seed: int | None = None):
    """The graph's outputs, as a list of NumPy arrays, computed from `feeds`."""
    values = evaluate(graph, feeds, RefContext(is_train, np.random.default_rng(seed)))
    return [values[v] for v in graph.outputs]

"""Gradient checks for one-op graphs: the autodiff rewrite vs central finite differences in float64.

`check_gradient(case)` wraps the case's one-node graph in a Symbol and runs MXNet's
`check_numeric_gradient` on it in float64: the executor's backward (the autodiff rewrite) against
central differences of a random projection of the outputs. Inputs listed in `skip` (indices,
labels) are not differentiated. `symbolic_gradients` gives the rewrite's gradients directly.
"""

from __future__ import annotations

import numpy as np
from ember.compiler import Graph, RefContext, Value, evaluate, variable
from ember.compiler.passes import infer_shapes
from ember.compiler.passes.autodiff import gradients
from ember.symbol import Symbol
from ember.test_utils import check_numeric_gradient

from .harness import OpCase


def float64_arrays(case: OpCase, rng: np.random.Generator) -> list[np.ndarray]:
    """The case's inputs, floating ones in float64 (integer inputs such as indices unchanged)."""
    arrays = case.arrays(rng)
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]


def symbolic_gradients(
    case: OpCase, arrays: list[np.ndarray], heads: list[np.ndarray], wrt: list[int], seed: int
):
    graph, node = case.graph()
    names = [v.node.name for v in node.inputs]
    feeds = dict(zip(names, arrays))
    shapes = infer_shapes(graph, {n: a.shape for n, a in feeds.items()})
    head_vars = [variable(f"head_grad{i}") for i in range(len(heads))]
    visible = Graph([Value(node, i) for i in range(len(heads))])
    grads = gradients(visible, shapes, [node.inputs[i] for i in wrt], [h.output() for h in head_vars])
    feeds.update({f"head_grad{i}": h for i, h in enumerate(heads)})
    present = [g for g in grads if g is not None]
    values = evaluate(Graph(present), feeds, RefContext(case.is_train, np.random.default_rng(seed)))
    return [None if g is None else values[g] for g in grads]


def check_gradient(
    case: OpCase, skip: tuple[int, ...] = (), rtol: float = 1e-4, atol: float = 1e-6, seed: int = 0
):
    """Assert autodiff's gradients of `case` match central differences for every input not in `skip`,
    through `mx.test_utils.check_numeric_gradient` in float64 (an executor over the one-op symbol)."""
    rng = np.random.default_rng(seed)
    arrays = float64_arrays(case, rng)
    graph, node = case.graph()
    symbol = Symbol([Value(node, i) for i in range(node.num_visible_outputs)])
    names = [v.node.name for v in node.inputs]
    aux_names = set(symbol.list_auxiliary_states())
    location = {n: a for n, a in zip(names, arrays) if n not in aux_names}
    aux_states = {n: a for n, a in zip(names, arrays) if n in aux_names} or None
    grad_nodes = [n for i, n in enumerate(names) if i not in skip and n not in aux_names]
    check_numeric_gradient(
        symbol,
        location,
        aux_states=aux_states,
        numeric_eps=1e-6,
        rtol=rtol,
        atol=atol,
        grad_nodes=grad_nodes,
        use_forward_train=case.is_train,
        dtype=np.float64,
    )

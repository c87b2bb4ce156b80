"""Gradient checks for one-op graphs: the autodiff rewrite vs central finite differences in float64.

`check_gradient(case)` builds the case's one-node graph, differentiates the weighted sum of its
visible outputs (random head gradients) with `ember.compiler.passes.autodiff.gradients`, runs the
gradient graph with the reference interpreter, and compares it with central differences of the same
scalar, input by input. Inputs listed in `skip` (indices, labels) are not differentiated.
"""

from __future__ import annotations

import numpy as np
from ember.compiler import Graph, RefContext, Value, evaluate, variable
from ember.compiler.passes import infer_shapes
from ember.compiler.passes.autodiff import gradients

from .harness import OpCase


def float64_arrays(case: OpCase, rng: np.random.Generator) -> list[np.ndarray]:
    """The case's inputs, floating ones in float64 (integer inputs such as indices unchanged)."""
    arrays = case.arrays(rng)
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]


def _weighted_sum(graph: Graph, node, feeds: dict, heads: list[np.ndarray], case: OpCase, seed: int) -> float:
    values = evaluate(graph, feeds, RefContext(case.is_train, np.random.default_rng(seed)))
    return float(sum(np.sum(values[Value(node, i)] * h) for i, h in enumerate(heads)))


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


def numeric_gradient(case: OpCase, arrays, heads, index: int, seed: int, eps: float = 1e-6) -> np.ndarray:
    graph, node = case.graph()
    names = [v.node.name for v in node.inputs]
    base = [a.copy() for a in arrays]
    grad = np.zeros_like(base[index], dtype=np.float64)
    flat = base[index].reshape(-1)
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + eps
        plus = _weighted_sum(graph, node, dict(zip(names, base)), heads, case, seed)
        flat[k] = original - eps
        minus = _weighted_sum(graph, node, dict(zip(names, base)), heads, case, seed)
        flat[k] = original
        grad.reshape(-1)[k] = (plus - minus) / (2 * eps)
    return grad


def check_gradient(
    case: OpCase, skip: tuple[int, ...] = (), rtol: float = 1e-4, atol: float = 1e-6, seed: int = 0
):
    """Assert autodiff's gradients of `case` match central differences for every input not in `skip`."""
    rng = np.random.default_rng(seed)
    arrays = float64_arrays(case, rng)
    graph, node = case.graph()
    visible = node.num_visible_outputs
    values = evaluate(
        graph,
        dict(zip([v.node.name for v in node.inputs], arrays)),
        RefContext(case.is_train, np.random.default_rng(seed)),
    )
    heads = [rng.standard_normal(values[Value(node, i)].shape) for i in range(visible)]
    wrt = [i for i in range(len(arrays)) if i not in skip]
    symbolic = symbolic_gradients(case, arrays, heads, wrt, seed)
    for i, grad in zip(wrt, symbolic):
        expected = numeric_gradient(case, arrays, heads, i, seed)
        actual = np.zeros_like(expected) if grad is None else grad
        assert actual.shape == expected.shape, (
            f"input {i}: gradient shape {actual.shape}, expected {expected.shape}"
        )
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=f"{case.id}: input {i}")

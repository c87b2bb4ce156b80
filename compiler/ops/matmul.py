"""Contractions: dot and batch_dot.

dot contracts the last axis of lhs with the first axis of rhs ((2,3,4).(4,5) -> (2,3,5)); with
transpose_a lhs is read as (K, rest) and contracted on its first axis, with transpose_b rhs as
(rest, K) and contracted on its last. Two vectors give shape (1,). batch_dot multiplies matching
batches of matrices: (B,M,K).(B,K,N) -> (B,M,N). Shapes are inferred forward, as in MXNet.
"""

from __future__ import annotations

import numpy as np

from .params import Param, enum, optional, parse_bool
from .registry import FusionKind, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import Mismatch, RuleError, describe, same_type_rule, size_of, unify

MATMUL_PARAMS = (
    Param("transpose_a", parse_bool, False, "whether to transpose lhs first"),
    Param("transpose_b", parse_bool, False, "whether to transpose rhs first"),
    Param("forward_stype", optional(enum("default", "row_sparse", "csr")), None, "the output storage type"),
)


def _check_inner(lhs_k, rhs_k, lhs: tuple, rhs: tuple, op: str) -> None:
    if None not in (lhs_k, rhs_k) and lhs_k != rhs_k:
        raise RuleError(
            f"{op} shape error: {describe(lhs)} X {describe(rhs)}: lhs's contracted dim {lhs_k} "
            f"differs from rhs's {rhs_k}"
        )


def _forward(result):
    def rule(params, in_shapes, out_shapes):
        lhs, rhs = in_shapes
        if lhs is None or rhs is None:
            return in_shapes, out_shapes
        return in_shapes, [result(params, tuple(lhs), tuple(rhs))]

    rule.__doc__ = result.__doc__
    return rule


# ---------------------------------------------------------------------------------------------
# dot

define_op(
    "dot",
    inputs=("lhs", "rhs"),
    params=MATMUL_PARAMS,
    fusion=FusionKind.MATMUL,
    doc="Contracts the last axis of lhs with the first axis of rhs (after the optional transposes).",
)


def dot_result(params, lhs: tuple, rhs: tuple) -> tuple:
    """lhs's free dims followed by rhs's free dims; two vectors give (1,)."""
    ta, tb = params["transpose_a"], params["transpose_b"]
    if len(lhs) == 1 and len(rhs) == 1:
        if ta or tb:
            raise RuleError("dot cannot transpose vectors")
        _check_inner(lhs[0], rhs[0], lhs, rhs, "dot")
        return (1,)
    lhs_k, lhs_free = (lhs[0], lhs[1:]) if ta else (lhs[-1], lhs[:-1])
    rhs_k, rhs_free = (rhs[-1], rhs[:-1]) if tb else (rhs[0], rhs[1:])
    _check_inner(lhs_k, rhs_k, lhs, rhs, "dot")
    return tuple(lhs_free) + tuple(rhs_free)


shape_rule("dot")(_forward(dot_result))
type_rule("dot")(same_type_rule)


@reference("dot")
def dot_reference(params, inputs, ctx):
    lhs, rhs = inputs
    out = dot_result(params, lhs.shape, rhs.shape)
    a = lhs.reshape(lhs.shape[0], -1).T if params["transpose_a"] else lhs.reshape(-1, lhs.shape[-1])
    b = rhs.reshape(-1, rhs.shape[-1]).T if params["transpose_b"] else rhs.reshape(rhs.shape[0], -1)
    return [(a @ b).reshape(out).astype(lhs.dtype, copy=False)]


# (transpose_a, transpose_b) -> the products giving (d lhs, d rhs) of out = op(A) op(B), each as
# (first operand, second operand, transpose_a, transpose_b): for out = A B, dA = dy B^T and dB = A^T dy;
# a transposed operand's gradient is the transpose of that, which swaps the product's operands.
PRODUCT_GRADIENTS = {
    (False, False): (("dy", "rhs", False, True), ("lhs", "dy", True, False)),
    (True, False): (("rhs", "dy", False, True), ("lhs", "dy", False, False)),
    (False, True): (("dy", "rhs", False, False), ("dy", "lhs", True, False)),
    (True, True): (("rhs", "dy", True, True), ("dy", "lhs", True, True)),
}


def product_gradients(g, op: str, params, lhs, rhs, dy) -> list:
    """PRODUCT_GRADIENTS for `op` (dot on matrices, or batch_dot) on the given operands."""
    operands = {"lhs": lhs, "rhs": rhs, "dy": dy}
    return [
        g.op(op, operands[a], operands[b], transpose_a=ta, transpose_b=tb)
        for a, b, ta, tb in PRODUCT_GRADIENTS[(params["transpose_a"], params["transpose_b"])]
    ]


def _matrix_view(shape: tuple, contract_first: bool) -> tuple[int, int]:
    """`shape` as dot reads it: (first dim, the rest) or (all but the last, last dim)."""
    if contract_first:
        return shape[0], size_of(shape[1:])
    return size_of(shape[:-1]), shape[-1]


@grad_rule("dot")
def dot_grad(g, node, out_grads):
    """PRODUCT_GRADIENTS on the operands viewed as matrices, as dot_reference views them."""
    lhs, rhs = node.inputs
    ta, tb = node.params["transpose_a"], node.params["transpose_b"]
    shapes = {v: g.shape(v) for v in (lhs, rhs, node.output(0))}
    lhs_view = _matrix_view(shapes[lhs], contract_first=ta)
    rhs_view = _matrix_view(shapes[rhs], contract_first=not tb)
    dy_view = (lhs_view[1] if ta else lhs_view[0], rhs_view[0] if tb else rhs_view[1])

    def view(value, from_shape, to_shape):
        return value if tuple(from_shape) == tuple(to_shape) else g.op("Reshape", value, shape=to_shape)

    matrices = (
        view(lhs, shapes[lhs], lhs_view),
        view(rhs, shapes[rhs], rhs_view),
        view(out_grads[0], shapes[node.output(0)], dy_view),
    )
    grads = product_gradients(g, "dot", node.params, *matrices)
    return [view(grad, matrix, shapes[v]) for grad, matrix, v in zip(grads, (lhs_view, rhs_view), (lhs, rhs))]


# ---------------------------------------------------------------------------------------------
# batch_dot

define_op(
    "batch_dot",
    inputs=("lhs", "rhs"),
    params=MATMUL_PARAMS,
    fusion=FusionKind.MATMUL,
    doc="Multiplies matching matrices of two batches: (B,M,K).(B,K,N) -> (B,M,N).",
)


def batch_dot_result(params, lhs: tuple, rhs: tuple) -> tuple:
    """The shared batch dims followed by (M, N)."""
    if len(lhs) < 3 or len(lhs) != len(rhs):
        raise RuleError(f"batch_dot needs two inputs of one rank >= 3, got {describe(lhs)} X {describe(rhs)}")
    try:
        batch = unify(lhs[:-2], rhs[:-2])
    except Mismatch:
        raise RuleError(
            f"batch_dot shape error: {describe(lhs)} X {describe(rhs)}: batch dims differ"
        ) from None
    m, lhs_k = (lhs[-1], lhs[-2]) if params["transpose_a"] else (lhs[-2], lhs[-1])
    rhs_k, n = (rhs[-1], rhs[-2]) if params["transpose_b"] else (rhs[-2], rhs[-1])
    _check_inner(lhs_k, rhs_k, lhs, rhs, "batch_dot")
    return tuple(batch) + (m, n)


shape_rule("batch_dot")(_forward(batch_dot_result))
type_rule("batch_dot")(same_type_rule)


@reference("batch_dot")
def batch_dot_reference(params, inputs, ctx):
    lhs, rhs = inputs
    a = np.swapaxes(lhs, -1, -2) if params["transpose_a"] else lhs
    b = np.swapaxes(rhs, -1, -2) if params["transpose_b"] else rhs
    return [np.matmul(a, b).astype(lhs.dtype, copy=False)]


@grad_rule("batch_dot")
def batch_dot_grad(g, node, out_grads):
    """PRODUCT_GRADIENTS batch by batch."""
    lhs, rhs = node.inputs
    return product_gradients(g, "batch_dot", node.params, lhs, rhs, out_grads[0])

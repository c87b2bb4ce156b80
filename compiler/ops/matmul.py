"""Contractions: dot and batch_dot.

dot contracts the last axis of lhs with the first axis of rhs ((2,3,4).(4,5) -> (2,3,5)); with
transpose_a lhs is read as (K, rest) and contracted on its first axis, with transpose_b rhs as
(rest, K) and contracted on its last. Two vectors give shape (1,). batch_dot multiplies matching
batches of matrices: (B,M,K).(B,K,N) -> (B,M,N). Shapes are inferred forward, as in MXNet.
"""

from __future__ import annotations

import numpy as np

from .params import Param, enum, optional, parse_bool
from .registry import FusionKind, define_op, reference, shape_rule, type_rule
from .rules import Mismatch, RuleError, describe, same_type_rule, unify

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

"""Ordering: sort, argsort, topk along one axis (or over the flattened input when axis is None).

Shapes follow MXNet's ParseTopKParam: the sorted axis keeps k elements (all of them for sort and
argsort), and a flattened input gives shape (k,). `sort` and `topk(ret_typ='value')` also produce the
hidden int32 indices MXNet keeps for the gradient. Indices from argsort and topk are in `dtype`
(float32 by default). Ties keep their input order. MXNet 1.9.1's kernels have no float16 or bool
version, so those inputs are refused. Shapes infer forward; fusion kind OPAQUE.
"""

from __future__ import annotations

import numpy as np

from .params import Param, enum, optional, parse_bool, parse_int
from .registry import FusionKind, define_op, grad_rule, no_gradient, reference, shape_rule, type_rule
from .rules import RuleError, describe, merge, normalize_axis, product_or_none, size_of, with_dim

INDEX_DTYPES = ("uint8", "int32", "int64", "float16", "float32", "float64")
HIDDEN_INDEX_DTYPE = "int32"  # MXNet's index_t in builds without large-tensor support
UNSUPPORTED_DATA_DTYPES = ("float16", "bool")
# The largest element count whose indices each index dtype holds exactly (MXNet's MaxIntegerValue).
EXACT_INDEX_LIMIT = {
    "uint8": 2**8 - 1,
    "int32": 2**31 - 1,
    "int64": 2**63 - 1,
    "float16": 2**11,
    "float32": 2**24,
    "float64": 2**53,
}

AXIS = Param("axis", optional(parse_int), -1, "the axis to order along; None orders the flattened input")
INDEX_DTYPE = Param("dtype", enum(*INDEX_DTYPES), "float32", "the dtype of the returned indices")

define_op(
    "sort",
    params=(AXIS, Param("is_ascend", parse_bool, True, "whether to sort in ascending order")),
    outputs=2,
    visible_outputs=1,
    fusion=FusionKind.OPAQUE,
    doc="Sorts along `axis` (the flattened input when axis is None); the indices are a hidden output.",
)
define_op(
    "argsort",
    params=(AXIS, Param("is_ascend", parse_bool, True, "whether to sort in ascending order"), INDEX_DTYPE),
    fusion=FusionKind.OPAQUE,
    doc="The indices that sort the input along `axis` (the flattened input when axis is None).",
)


def _topk_outputs(params) -> int:
    return 1 if params["ret_typ"] in ("indices", "mask") else 2


define_op(
    "topk",
    params=(
        AXIS,
        Param("k", parse_int, 1, "how many elements to keep; k < 1 keeps them all"),
        Param("ret_typ", enum("value", "indices", "mask", "both"), "indices", "what to return"),
        Param("is_ascend", parse_bool, False, "whether to keep the k smallest instead of the k largest"),
        INDEX_DTYPE,
    ),
    outputs=_topk_outputs,
    visible_outputs=lambda params: 2 if params["ret_typ"] == "both" else 1,
    fusion=FusionKind.OPAQUE,
    doc="The k largest (or smallest) elements along `axis`: their values, indices, both, or a 0/1 mask.",
)


# ---------------------------------------------------------------------------------------------
# shapes


def _sort_view(params) -> dict:
    """sort as MXNet runs it: topk keeping every value."""
    return {**params, "k": 0, "ret_typ": "value", "dtype": HIDDEN_INDEX_DTYPE}


def _argsort_view(params) -> dict:
    """argsort as MXNet runs it: topk keeping every index."""
    return {**params, "k": 0, "ret_typ": "indices"}


TOPK_VIEWS = {"sort": _sort_view, "argsort": _argsort_view, "topk": dict}


def ordered_shape(params, data: tuple) -> tuple:
    """MXNet's ParseTopKParam on a partial shape of known rank: the shape of values/indices/mask.

    `params` are topk's (see TOPK_VIEWS for sort and argsort).
    """
    axis, k = params["axis"], params["k"]
    if axis is None:
        where, count = "the flattened input", product_or_none(data)
    else:
        axis = normalize_axis(axis, len(data))
        where, count = f"axis {axis}", data[axis]
    keep = count if k <= 0 else k
    if keep is not None and count is not None and not 1 <= keep <= count:
        raise RuleError(f"k={keep} must be between 1 and the {count} elements of {where} of {describe(data)}")
    _check_index_dtype(params, count)
    if params["ret_typ"] == "mask":
        return data
    return (keep,) if axis is None else with_dim(data, axis, keep)


def _check_index_dtype(params, count: int | None) -> None:
    returns_indices = params["ret_typ"] in ("indices", "both")
    if returns_indices and count is not None and count > EXACT_INDEX_LIMIT[params["dtype"]]:
        raise RuleError(
            f"index dtype {params['dtype']} cannot represent the indices of {count} elements exactly"
        )


def _ordered_shape_rule(view):
    def rule(params, in_shapes, out_shapes):
        data = in_shapes[0]
        if data is None:
            return in_shapes, out_shapes
        shape = ordered_shape(view(params), data)
        return in_shapes, [
            merge(out, shape, "the output shape must follow from the input") for out in out_shapes
        ]

    rule.__doc__ = (
        "Every output has the ordered shape (k along the axis; (k,) flattened; the input's for a mask)."
    )
    return rule


for _op, _view in TOPK_VIEWS.items():
    shape_rule(_op)(_ordered_shape_rule(_view))


# ---------------------------------------------------------------------------------------------
# dtypes


def _check_data_dtype(op: str, dtype: str | None) -> None:
    if dtype in UNSUPPORTED_DATA_DTYPES:
        raise RuleError(f"{op} does not support {dtype} input (MXNet 1.9.1 has no {dtype} kernel for it)")


def _values_type(op: str, in_types, out_types):
    """The values output and the input share one dtype (either side gives the other)."""
    dtype = merge(in_types[0], out_types[0], "the values must have the input's dtype")
    _check_data_dtype(op, dtype)
    return dtype


@type_rule("sort")
def sort_type(params, in_types, out_types):
    """Values in the input dtype; the hidden indices in int32."""
    dtype = _values_type("sort", in_types, out_types)
    return [dtype], [dtype, HIDDEN_INDEX_DTYPE]


@type_rule("argsort")
def argsort_type(params, in_types, out_types):
    """Indices in `dtype`, whatever the input dtype."""
    _check_data_dtype("argsort", in_types[0])
    return in_types, [params["dtype"]]


@type_rule("topk")
def topk_type(params, in_types, out_types):
    """Indices in `dtype` (hidden ones in int32); values and the mask in the input dtype."""
    ret_typ = params["ret_typ"]
    if ret_typ == "indices":
        _check_data_dtype("topk", in_types[0])
        return in_types, [params["dtype"]]
    dtype = _values_type("topk", in_types, out_types)
    hidden = {"value": [HIDDEN_INDEX_DTYPE], "both": [params["dtype"]], "mask": []}[ret_typ]
    return [dtype], [dtype] + hidden


# ---------------------------------------------------------------------------------------------
# references


def _order(x: np.ndarray, axis: int, is_ascend: bool) -> np.ndarray:
    """Indices that order `x` along `axis`, ties in input order (descending: a stable sort of the reverse)."""
    if is_ascend:
        return np.argsort(x, axis=axis, kind="stable")
    size = x.shape[axis]
    backwards = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return size - 1 - np.flip(backwards, axis)


def select(params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(the input as ordered, the k kept indices, their values, the ordering axis) per topk's params."""
    ordered_shape(params, x.shape)
    work = x.reshape(-1) if params["axis"] is None else x
    axis = 0 if params["axis"] is None else normalize_axis(params["axis"], x.ndim)
    keep = work.shape[axis] if params["k"] <= 0 else params["k"]
    indices = np.take(_order(work, axis, params["is_ascend"]), np.arange(keep), axis=axis)
    return work, indices, np.take_along_axis(work, indices, axis=axis), axis


@reference("sort")
def sort_reference(params, inputs, ctx):
    _, indices, values, _ = select(_sort_view(params), inputs[0])
    return [values, indices.astype(HIDDEN_INDEX_DTYPE)]


def scatter_values_grad(g, node, out_grads):
    """The values' gradient scatter-added back to where each value came from (output 1, the indices)."""
    shape = g.shape(node.inputs[0])
    axis = node.params["axis"]
    if axis is None:  # the flattened input was ordered
        summed = g.op("_scatter_add_axis", out_grads[0], node.output(1), axis=0, size=size_of(shape))
        return [g.op("Reshape", summed, shape=shape)]
    axis = normalize_axis(axis, len(shape))
    return [g.op("_scatter_add_axis", out_grads[0], node.output(1), axis=axis, size=shape[axis])]


grad_rule("sort")(scatter_values_grad)


@reference("argsort")
def argsort_reference(params, inputs, ctx):
    _, indices, _, _ = select(_argsort_view(params), inputs[0])
    return [indices.astype(params["dtype"])]


no_gradient("argsort")


@reference("topk")
def topk_reference(params, inputs, ctx):
    x = inputs[0]
    work, indices, values, axis = select(params, x)
    ret_typ = params["ret_typ"]
    if ret_typ == "mask":
        mask = np.zeros_like(work)
        np.put_along_axis(mask, indices, 1, axis=axis)
        return [mask.reshape(x.shape)]
    if ret_typ == "indices":
        return [indices.astype(params["dtype"])]
    index_dtype = HIDDEN_INDEX_DTYPE if ret_typ == "value" else params["dtype"]
    return [values, indices.astype(index_dtype)]


@grad_rule("topk")
def topk_grad(g, node, out_grads):
    """Values (ret_typ value or both) scatter their gradient back; indices and masks have none (zero in MXNet)."""
    if node.params["ret_typ"] not in ("value", "both") or out_grads[0] is None:
        return [None]
    return scatter_values_grad(g, node, out_grads)

"""Array creation: _zeros, _ones, _full, _arange, _eye - ops with no tensor inputs.

The output shape comes from attributes (`shape`; start/stop/step/repeat; N/M) and the dtype from
`dtype` (float32 by default). `shape` follows MXNet's legacy semantics: () or a 0 dim is unknown, and a
known output shape (inferred backward from a consumer) then stands. Every output element is a function
of its index alone, so the fusion kind is INJECTIVE. The `ctx` attribute MXNet writes is accepted and
ignored: Ember places arrays itself.
"""

from __future__ import annotations

import math

import numpy as np

from .params import Param, enum, optional, parse_bool, parse_float, parse_int, parse_str, parse_tuple
from .registry import FusionKind, define_op, no_gradient, reference, shape_rule, type_rule
from .rules import RuleError, describe, fixed_output_type, is_known, merge

# MXNet's dtype enums for these ops, less bfloat16 (Ember has no bfloat16).
ALL_TYPES = ("float32", "float64", "float16", "uint8", "int8", "int32", "int64")
ALL_TYPES_WITH_BOOL = ALL_TYPES + ("bool",)

CTX = Param("ctx", parse_str, "", "the device MXNet creates the array on (ignored)")


def _dtype_param(choices: tuple[str, ...]) -> Param:
    return Param("dtype", enum(*choices), "float32", "the output dtype")


def _output_dtype(params) -> str:
    return params["dtype"]


def _as_dtype(value: float, dtype: str):
    """`static_cast<DType>(value)` as the C++ kernels do it (integers truncate toward zero)."""
    return np.array(value, dtype=np.float64).astype(dtype)


# ---------------------------------------------------------------------------------------------
# _zeros, _ones, _full: a constant array of a given shape

FILL_SHAPE = Param("shape", parse_tuple, (), "the output shape; () or a 0 dim means unknown")

define_op(
    "_zeros",
    inputs=(),
    params=(FILL_SHAPE, CTX, _dtype_param(ALL_TYPES_WITH_BOOL)),
    fusion=FusionKind.INJECTIVE,
    doc="An array of zeros of the given shape and dtype.",
)
define_op(
    "_ones",
    inputs=(),
    params=(FILL_SHAPE, CTX, _dtype_param(ALL_TYPES_WITH_BOOL)),
    fusion=FusionKind.INJECTIVE,
    doc="An array of ones of the given shape and dtype.",
)
define_op(
    "_full",
    inputs=(),
    params=(
        FILL_SHAPE,
        CTX,
        _dtype_param(ALL_TYPES),
        Param("value", parse_float, doc="the value every element takes (cast to dtype)"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="An array of the given shape and dtype filled with `value`.",
)


def declared_shape(params) -> tuple | None:
    """`shape` as a partial shape: None when it is (), None for each 0 dim (MXNet's legacy semantics)."""
    shape = params["shape"]
    if any(d < 0 for d in shape):
        raise RuleError(f"shape {shape} cannot have negative dims")
    if not shape:
        return None
    return tuple(None if d == 0 else d for d in shape)


@shape_rule("_zeros", "_ones", "_full")
def fill_shape(params, in_shapes, out_shapes):
    """The output is `shape`; a known output shape stands where `shape` is not fully known."""
    declared, out = declared_shape(params), out_shapes[0]
    if is_known(out) and not is_known(declared):
        return in_shapes, [out]
    return in_shapes, [merge(out, declared, "the output shape must equal the `shape` attribute")]


type_rule("_zeros", "_ones", "_full")(fixed_output_type(_output_dtype))


def _known_fill_shape(params) -> tuple:
    declared = declared_shape(params)
    if not is_known(declared):
        raise RuleError(
            f"the reference needs a fully known `shape`, got {describe(declared)} (() and 0 dims are unknown)"
        )
    return declared


@reference("_zeros")
def zeros_reference(params, inputs, ctx):
    return [np.zeros(_known_fill_shape(params), dtype=params["dtype"])]


@reference("_ones")
def ones_reference(params, inputs, ctx):
    return [np.ones(_known_fill_shape(params), dtype=params["dtype"])]


@reference("_full")
def full_reference(params, inputs, ctx):
    dtype = params["dtype"]
    return [np.full(_known_fill_shape(params), _as_dtype(params["value"], dtype), dtype=dtype)]


no_gradient("_zeros", "_ones", "_full")  # no inputs


# ---------------------------------------------------------------------------------------------
# _arange(start, stop, step, repeat): evenly spaced values, each repeated `repeat` times

define_op(
    "_arange",
    inputs=(),
    params=(
        Param("start", parse_float, doc="the first value (the stop, counting from 0, when stop is None)"),
        Param("stop", optional(parse_float), None, "the end of the interval, excluded"),
        Param("step", parse_float, 1.0, "the spacing between values"),
        Param("repeat", parse_int, 1, "how many times each value is repeated"),
        Param("infer_range", parse_bool, False, "whether a missing stop is inferred from the output size"),
        CTX,
        _dtype_param(ALL_TYPES),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Values start, start+step, ... below stop, each repeated `repeat` times (as numpy.arange).",
)


def arange_bounds(params) -> tuple[float, float | None]:
    """start and stop as MXNet's RangeParamParser reads them: a lone start is the stop (from 0)."""
    if params["stop"] is None and not params["infer_range"]:
        return 0.0, params["start"]
    return params["start"], params["stop"]


def arange_length(params) -> int | None:
    """ceil((stop - start) / step) * repeat; None when infer_range leaves stop to the graph."""
    step, repeat = params["step"], params["repeat"]
    if step == 0:
        raise RuleError("_arange step cannot be 0")
    if repeat <= 0:
        raise RuleError(f"_arange repeat must be positive, got {repeat}")
    start, stop = arange_bounds(params)
    if stop is None:
        return None
    if not (start < stop if step > 0 else start > stop):
        raise RuleError(f"_arange range (start, stop, step) = ({start:g}, {stop:g}, {step:g}) is empty")
    return int(math.ceil((stop - start) / step) * repeat)


@shape_rule("_arange")
def arange_shape(params, in_shapes, out_shapes):
    """(length,); with infer_range and no stop the output shape is left to the graph."""
    length = arange_length(params)
    if length is None:
        return in_shapes, out_shapes
    return in_shapes, [merge(out_shapes[0], (length,), "the output shape must equal the range's length")]


type_rule("_arange")(fixed_output_type(_output_dtype))


@reference("_arange")
def arange_reference(params, inputs, ctx):
    """start + (i // repeat) * step, computed in the output dtype as MXNet's kernel does."""
    length = arange_length(params)
    if length is None:
        raise RuleError("the reference needs `stop`: with infer_range the length comes from the graph")
    start, _ = arange_bounds(params)
    dtype = np.dtype(params["dtype"])
    index = np.arange(length, dtype=np.int64) // params["repeat"]
    if dtype.kind == "f":
        return [_as_dtype(start, dtype) + index.astype(dtype) * _as_dtype(params["step"], dtype)]
    # Integer kernels truncate start and step, then wrap the sum into the dtype.
    return [(math.trunc(start) + index * math.trunc(params["step"])).astype(dtype)]


no_gradient("_arange")  # no inputs


# ---------------------------------------------------------------------------------------------
# _eye(N, M, k): ones on the k-th diagonal

define_op(
    "_eye",
    inputs=(),
    params=(
        Param("N", parse_int, doc="the number of rows"),
        Param("M", parse_int, 0, "the number of columns; 0 means N"),
        Param("k", parse_int, 0, "the diagonal: 0 the main one, positive above it, negative below"),
        CTX,
        _dtype_param(ALL_TYPES),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="A 2-D array with ones on the k-th diagonal and zeros elsewhere.",
)


def eye_shape_of(params) -> tuple[int, int]:
    rows, cols = params["N"], params["M"]
    if rows < 0 or cols < 0:
        raise RuleError(f"_eye N and M must be non-negative, got N={rows}, M={cols}")
    return rows, cols if cols > 0 else rows


@shape_rule("_eye")
def eye_shape(params, in_shapes, out_shapes):
    """(N, M), or (N, N) when M is 0."""
    return in_shapes, [merge(out_shapes[0], eye_shape_of(params), "the output shape must be (N, M)")]


type_rule("_eye")(fixed_output_type(_output_dtype))


@reference("_eye")
def eye_reference(params, inputs, ctx):
    rows, cols = eye_shape_of(params)
    return [np.eye(rows, cols, params["k"], dtype=params["dtype"])]


no_gradient("_eye")  # no inputs

"""The softmax family: softmax, log_softmax, SoftmaxActivation.

Each normalises exp(x) along one axis (REDUCE fusion). `softmax_along` computes it in float64 and is
shared with the SoftmaxOutput loss head (loss.py).
"""

from __future__ import annotations

import numpy as np

from .params import Param, enum, optional, parse_bool, parse_float, parse_int
from .registry import FusionKind, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import RuleError, merge, normalize_axis, same_shape_rule, same_type_rule


def softmax_along(x: np.ndarray, axis: int, temperature=None, length=None, log=False) -> np.ndarray:
    """softmax (or log_softmax) of x / temperature along `axis`, in float64.

    With `length` (x's shape without `axis`), only the first length[i] positions of each row take
    part; the others are 0 (as MXNet's masked softmax).
    """
    x = x.astype(np.float64) / (1.0 if temperature is None else temperature)
    valid = None if length is None else _valid_positions(x.shape, axis, length)
    if valid is not None:
        x = np.where(valid, x, -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        peak = np.max(x, axis=axis, keepdims=True)
        shifted = x - np.where(np.isfinite(peak), peak, 0)
        total = np.sum(np.exp(shifted), axis=axis, keepdims=True)
        out = shifted - np.log(total) if log else np.exp(shifted) / total
    return out if valid is None else np.where(valid, out, 0.0)


def _valid_positions(shape, axis: int, length: np.ndarray) -> np.ndarray:
    axis = axis % len(shape)
    positions = np.arange(shape[axis]).reshape([-1 if a == axis else 1 for a in range(len(shape))])
    limits = length.astype(np.int64).reshape(shape[:axis] + shape[axis + 1 :])
    return positions < np.expand_dims(limits, axis)


# ---------------------------------------------------------------------------------------------
# softmax and log_softmax

SOFTMAX_PARAMS = (
    Param("axis", parse_int, -1, "the axis to normalise along"),
    Param("temperature", optional(parse_float), None, "divides the input before exp; None means 1"),
    Param("dtype", optional(enum("float16", "float32", "float64")), None, "output dtype; None: the data's"),
    Param("use_length", optional(parse_bool), False, "whether a `length` input limits each row"),
)


def _softmax_inputs(params):
    return ("data", "length") if params["use_length"] else ("data",)


define_op(
    "softmax",
    inputs=_softmax_inputs,
    params=SOFTMAX_PARAMS,
    fusion=FusionKind.REDUCE,
    doc="exp(x/t) / sum(exp(x/t)) along `axis`; with use_length only the first length[i] entries count.",
)

define_op(
    "log_softmax",
    params=SOFTMAX_PARAMS,
    fusion=FusionKind.REDUCE,
    doc="log(softmax(x / t)) along `axis`, computed stably; use_length is not supported (as MXNet).",
)


def _length_shape(data, axis: int) -> tuple:
    """The data's shape without `axis`; (1,) for 1-D data."""
    axis = normalize_axis(axis, len(data))
    return tuple(data[:axis] + data[axis + 1 :]) or (1,)


@shape_rule("softmax")
def softmax_shape(params, in_shapes, out_shapes):
    """The output has the data's shape; `length` has it without `axis`."""
    data = merge(in_shapes[0], out_shapes[0], "the output must have the data's shape")
    if data is not None:
        normalize_axis(params["axis"], len(data))
    lengths = in_shapes[1:]
    if lengths and data is not None:
        lengths = [_length_shape(data, params["axis"])]
    return [data] + list(lengths), [data]


@shape_rule("log_softmax")
def log_softmax_shape(params, in_shapes, out_shapes):
    """The output has the data's shape."""
    if params["use_length"]:
        raise RuleError("log_softmax takes no length input; use_length must be False")
    if in_shapes[0] is not None:
        normalize_axis(params["axis"], len(in_shapes[0]))
    return same_shape_rule(params, in_shapes, out_shapes)


@type_rule("softmax", "log_softmax")
def softmax_type(params, in_types, out_types):
    """The output is `dtype` when given, else the data's dtype; `length` is free (integers)."""
    if params["dtype"] is not None:
        return [in_types[0] or params["dtype"]] + list(in_types[1:]), [params["dtype"]]
    data, outs = same_type_rule(params, in_types[:1], out_types)
    return data + list(in_types[1:]), outs


def _output_dtype(params, data: np.ndarray):
    return params["dtype"] or data.dtype


@reference("softmax")
def softmax_reference(params, inputs, ctx):
    length = inputs[1] if params["use_length"] else None
    out = softmax_along(inputs[0], params["axis"], params["temperature"], length)
    return [out.astype(_output_dtype(params, inputs[0]))]


@reference("log_softmax")
def log_softmax_reference(params, inputs, ctx):
    out = softmax_along(inputs[0], params["axis"], params["temperature"], log=True)
    return [out.astype(_output_dtype(params, inputs[0]))]


def _softmax_backward(g, y, dy, axis: int, temperature, log: bool):
    """d/dx of y = softmax(x / t) along `axis`: y (dy - sum(dy y)) / t; of log_softmax: (dy - e^y sum(dy)) / t.

    Masked positions (use_length) have y = 0, so they get no gradient."""
    if log:
        total = g.op("sum", dy, axis=axis, keepdims=True)
        dx = g.op("elemwise_sub", dy, g.op("broadcast_mul", g.op("exp", y), total))
    else:
        weighted = g.op("elemwise_mul", dy, y)
        total = g.op("sum", weighted, axis=axis, keepdims=True)
        dx = g.op("elemwise_sub", weighted, g.op("broadcast_mul", y, total))
    return dx if temperature in (None, 1.0) else g.op("_div_scalar", dx, scalar=temperature)


@grad_rule("softmax", "log_softmax")
def softmax_grad(g, node, out_grads):
    """The softmax backward, cast back to the data's dtype when `dtype` changed it; no gradient to `length`."""
    params, data = node.params, node.inputs[0]
    dx = _softmax_backward(
        g, node.output(0), out_grads[0], params["axis"], params["temperature"], node.op == "log_softmax"
    )
    if params["dtype"] is not None and params["dtype"] != g.dtype(data):
        dx = g.op("Cast", dx, dtype=g.dtype(data))
    return [dx] + [None] * (len(node.inputs) - 1)


# ---------------------------------------------------------------------------------------------
# SoftmaxActivation: softmax over the last axis (instance) or over axis 1 (channel)

SOFTMAX_ACTIVATION_AXIS = {"instance": -1, "channel": 1}

define_op(
    "SoftmaxActivation",
    params=(
        Param("mode", enum(*SOFTMAX_ACTIVATION_AXIS), "instance", "instance: last axis; channel: axis 1"),
    ),
    fusion=FusionKind.REDUCE,
    doc="Softmax over the last axis (mode='instance') or over axis 1 at every position (mode='channel').",
)


@shape_rule("SoftmaxActivation")
def softmax_activation_shape(params, in_shapes, out_shapes):
    """The output has the data's shape; channel mode needs an axis 1."""
    data = in_shapes[0]
    if data is not None and params["mode"] == "channel" and len(data) < 2:
        raise RuleError(f"channel mode needs data with an axis 1, got {len(data)}-D data")
    return same_shape_rule(params, in_shapes, out_shapes)


type_rule("SoftmaxActivation")(same_type_rule)


@reference("SoftmaxActivation")
def softmax_activation_reference(params, inputs, ctx):
    out = softmax_along(inputs[0], SOFTMAX_ACTIVATION_AXIS[params["mode"]])
    return [out.astype(inputs[0].dtype)]


@grad_rule("SoftmaxActivation")
def softmax_activation_grad(g, node, out_grads):
    axis = SOFTMAX_ACTIVATION_AXIS[node.params["mode"]]
    return [_softmax_backward(g, node.output(0), out_grads[0], axis, None, log=False)]

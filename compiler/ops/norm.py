"""Normalisation and regularisation: BatchNorm (with auxiliary moving statistics) and Dropout.

BatchNorm's gradient is the `_backward_BatchNorm` op (nn_backward.py); its aux-update rule gives the new
moving statistics after a training step.

References compute in float64 and cast back to the input's dtype.
"""

from __future__ import annotations

import numpy as np

from .params import Param, enum, optional, parse_bool, parse_float, parse_int, parse_tuple
from .registry import FusionKind, aux_update_rule, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import (
    RuleError,
    first_known,
    merge,
    normalize_axis,
    same_type_rule,
)

# ---------------------------------------------------------------------------------------------
# BatchNorm: normalise each channel by batch statistics (training) or moving statistics

define_op(
    "BatchNorm",
    inputs=("data", "gamma", "beta", "moving_mean", "moving_var"),
    params=(
        Param("eps", parse_float, 1e-3, "added to the variance before the square root"),
        Param("momentum", parse_float, 0.9, "weight of the old value in the moving-statistics update"),
        Param("fix_gamma", parse_bool, True, "treat gamma as 1"),
        Param("use_global_stats", parse_bool, False, "normalise by the moving statistics in training too"),
        Param("output_mean_var", parse_bool, False, "make the mean and var outputs visible"),
        Param("axis", parse_int, 1, "the channel axis"),
        Param("cudnn_off", parse_bool, False, "cuDNN only"),
        Param("min_calib_range", optional(parse_float), None, "quantization only"),
        Param("max_calib_range", optional(parse_float), None, "quantization only"),
    ),
    outputs=3,
    visible_outputs=lambda params: 3 if params["output_mean_var"] else 1,
    output_names=("output", "mean", "var"),
    mutable_inputs=("moving_mean", "moving_var"),
    input_inits={"moving_mean": '["zero", {}]', "moving_var": '["one", {}]'},
    fusion=FusionKind.OPAQUE,
    reads_context=True,  # batch statistics in training
    doc=(
        "y = gamma (x - mean) / sqrt(var + eps) + beta per channel. Training (and not use_global_stats) "
        "uses the batch mean and biased variance over every axis but `axis`, else the moving statistics; "
        "the hidden outputs are the mean used and, as in MXNet's CPU kernel, 1/sqrt(var + eps) (named var). "
        "The moving statistics are updated by the executor, not here."
    ),
)


@shape_rule("BatchNorm")
def batchnorm_shape(params, in_shapes, out_shapes):
    """The output has the data's shape; gamma, beta, moving_mean, moving_var, mean and var are (C,)."""
    data = merge(in_shapes[0], out_shapes[0], "the output must have the data's shape")
    if data is None:
        return in_shapes, out_shapes
    axis = normalize_axis(params["axis"], len(data))
    vectors = [v for v in in_shapes[1:] + out_shapes[1:] if v is not None and len(v) == 1]
    channels = first_known(data[axis], *(v[0] for v in vectors))
    data = data[:axis] + (channels,) + data[axis + 1 :]
    vector = (channels,)
    return [data] + [vector] * 4, [data, vector, vector]


def _batchnorm_param_dtype(dtype: str) -> str:
    """gamma, beta and the statistics are float32 for float16 data, else the data's dtype (as MXNet)."""
    return "float32" if dtype == "float16" else dtype


@type_rule("BatchNorm")
def batchnorm_type(params, in_types, out_types):
    """The output has the data's dtype; the other inputs and outputs have the parameter dtype."""
    data = merge(in_types[0], out_types[0], "the output must have the data's dtype")
    if data is None:
        return in_types, out_types
    vector = _batchnorm_param_dtype(data)
    return [data] + [vector] * 4, [data, vector, vector]


@reference("BatchNorm")
def batchnorm_reference(params, inputs, ctx):
    data, gamma, beta, moving_mean, moving_var = (a.astype(np.float64) for a in inputs)
    axis = normalize_axis(params["axis"], data.ndim)
    if ctx.is_train and not params["use_global_stats"]:
        others = tuple(a for a in range(data.ndim) if a != axis)
        mean, var = data.mean(axis=others), data.var(axis=others)
    else:
        mean, var = moving_mean, moving_var
    scale = np.ones_like(gamma) if params["fix_gamma"] else gamma
    channel = [-1 if a == axis else 1 for a in range(data.ndim)]
    normalised = (data - mean.reshape(channel)) / np.sqrt(var.reshape(channel) + params["eps"])
    out = normalised * scale.reshape(channel) + beta.reshape(channel)
    vector = _batchnorm_param_dtype(inputs[0].dtype.name)
    inverse_std = 1 / np.sqrt(var + params["eps"])  # MXNet's CPU kernel stores this as the `var` output
    return [out.astype(inputs[0].dtype), mean.astype(vector), inverse_std.astype(vector)]


@grad_rule("BatchNorm")
def batchnorm_grad(g, node, out_grads):
    """By `_backward_BatchNorm` (nn_backward.py) from the hidden mean and inverse std; the hidden outputs take
    no gradient and the moving statistics get none (as MXNet)."""
    if out_grads[0] is None:
        return [None] * len(node.inputs)
    data, gamma = node.inputs[:2]
    stats = node.output(1), node.output(2)
    dx, dgamma, dbeta = g.outputs("_backward_BatchNorm", out_grads[0], data, gamma, *stats, **node.params)
    return [dx, dgamma, dbeta, None, None]


@aux_update_rule("BatchNorm")
def batchnorm_aux_update(g, node):
    """moving = moving * momentum + batch statistic * (1 - momentum) after a training step (none with
    use_global_stats). The batch variance is recovered from the hidden inverse std as 1/invstd^2 - eps,
    as MXNet's CPU kernel does. With fix_gamma, the stored gamma becomes 1, as MXNet overwrites it."""
    fixed_gamma = {"gamma": g.op("ones_like", node.inputs[1])} if node.params["fix_gamma"] else {}
    if node.params["use_global_stats"]:
        return fixed_gamma
    momentum = node.params["momentum"]
    inverse_std = node.output(2)
    variance = g.op(
        "_minus_scalar", g.op("reciprocal", g.op("square", inverse_std)), scalar=node.params["eps"]
    )

    def blend(moving, batch):
        old = g.op("_mul_scalar", moving, scalar=momentum)
        return g.op("elemwise_add", old, g.op("_mul_scalar", batch, scalar=1 - momentum))

    return {
        "moving_mean": blend(node.inputs[3], node.output(1)),
        "moving_var": blend(node.inputs[4], variance),
        **fixed_gamma,
    }


# ---------------------------------------------------------------------------------------------
# Dropout: zero with probability p and scale survivors by 1/(1-p), in training or mode='always'

define_op(
    "Dropout",
    params=(
        Param("p", parse_float, 0.5, "the probability of zeroing an element"),
        Param("mode", enum("training", "always"), "training", "drop in training only, or always"),
        Param("axes", parse_tuple, (), "axes along which one mask value is shared (variational dropout)"),
        Param("cudnn_off", optional(parse_bool), False, "cuDNN only"),
    ),
    outputs=2,
    visible_outputs=1,
    output_names=("output", "mask"),
    fusion=FusionKind.OPAQUE,
    draws_random=True,  # the mask
    reads_context=True,
    doc=(
        "In training (or mode='always') multiplies the data by a mask holding 1/(1-p) with probability "
        "1-p and 0 otherwise, one value shared along `axes`; else the identity with a mask of ones. "
        "The hidden output `mask` is that factor."
    ),
)


def _dropout_mask_shape(params, shape) -> tuple:
    mask = list(shape)
    for axis in params["axes"]:
        mask[normalize_axis(axis, len(shape), "axes entry")] = 1
    return tuple(mask)


def _check_probability(p: float) -> None:
    if not 0 <= p <= 1:
        raise RuleError(f"p must be in [0, 1], got {p}")


@shape_rule("Dropout")
def dropout_shape(params, in_shapes, out_shapes):
    """The output has the data's shape; the mask has it too, with each of `axes` set to 1."""
    _check_probability(params["p"])
    data = merge(in_shapes[0], out_shapes[0], "the output must have the data's shape")
    mask = None if data is None else _dropout_mask_shape(params, data)
    return [data], [data, mask]


type_rule("Dropout")(same_type_rule)


def _dropout_mask(p: float, shape, rng: np.random.Generator) -> np.ndarray:
    """1/(1-p) where an element survives (probability 1-p), else 0."""
    if p >= 1:
        return np.zeros(shape)
    return (rng.random(shape) >= p) / (1 - p)


@reference("Dropout")
def dropout_reference(params, inputs, ctx):
    _check_probability(params["p"])
    x = inputs[0]
    shape = _dropout_mask_shape(params, x.shape)
    active = ctx.is_train or params["mode"] == "always"
    mask = _dropout_mask(params["p"], shape, ctx.rng) if active else np.ones(shape)
    return [(x.astype(np.float64) * mask).astype(x.dtype), mask.astype(x.dtype)]


@grad_rule("Dropout")
def dropout_grad(g, node, out_grads):
    """dx = dy * mask: the hidden mask holds 1/(1-p) where kept and 0 where dropped (ones when inactive)."""
    if out_grads[0] is None:
        return [None]
    mask = node.output(1)
    same = g.shape(mask) == g.shape(node.inputs[0])
    return [g.op("elemwise_mul" if same else "broadcast_mul", out_grads[0], mask)]

"""Normalisation and regularisation: BatchNorm (with auxiliary moving statistics), Dropout, and the
per-sample normalisations LayerNorm, InstanceNorm and GroupNorm.

BatchNorm's gradient is the `_backward_BatchNorm` op (nn_backward.py); its aux-update rule gives the new
moving statistics after a training step. The per-sample normalisations share one `NormView` of their data
and compose their gradients from ordinary reduce and broadcast ops.

References compute in float64 and cast back to the input's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Callable

import numpy as np

from .params import Param, enum, optional, parse_bool, parse_float, parse_int, parse_tuple
from .registry import FusionKind, aux_update_rule, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import (
    RuleError,
    describe,
    first_known,
    merge,
    normalize_axis,
    same_type_rule,
    with_dim,
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


# ---------------------------------------------------------------------------------------------
# LayerNorm, InstanceNorm, GroupNorm: normalise slices of each sample by their own mean and variance
#
# Each sees its data twice: as `rows` (outer, length, inner), whose middle axis is normalised, one mean
# and variance per (outer, inner); and as `channels` (outer, count, inner), whose middle axis gamma and
# beta run along. The hidden (or, with output_mean_var, visible) outputs are the mean and the std
# sqrt(var + eps) (InstanceNorm: the variance itself), shaped `stats_shape`.


@dataclass(frozen=True)
class NormView:
    """Where a per-sample normalisation's statistics and parameters lie in data of `shape`."""

    shape: tuple[int, ...]
    rows: tuple[int, int, int]
    channels: tuple[int, int, int]
    stats_shape: tuple[int, ...]

    @property
    def stats_rows(self) -> tuple[int, int, int]:
        """The statistics broadcastable against the rows view: (outer, 1, inner)."""
        return (self.rows[0], 1, self.rows[2])


def _layer_norm_view(params, shape) -> NormView:
    axis = normalize_axis(params["axis"], len(shape))
    rows = (prod(shape[:axis]), shape[axis], prod(shape[axis + 1 :]))
    return NormView(tuple(shape), rows, rows, with_dim(tuple(shape), axis, 1))


def _instance_norm_view(params, shape) -> NormView:
    batch, channels, spatial = shape[0], shape[1], prod(shape[2:])
    return NormView(
        tuple(shape), (batch * channels, spatial, 1), (batch, channels, spatial), (batch, channels)
    )


def _group_norm_view(params, shape) -> NormView:
    batch, groups = shape[0], params["num_groups"]
    per_group = prod(shape[1:]) // groups
    return NormView(tuple(shape), (batch * groups, per_group, 1), (batch, groups, per_group), (batch, groups))


@dataclass(frozen=True)
class PerSampleNorm:
    """One per-sample normalisation: its view of the data and what its third output holds."""

    view: Callable[[dict, tuple], NormView]
    third_is_std: bool  # sqrt(var + eps); else the variance (InstanceNorm)


PER_SAMPLE_NORMS = {
    "LayerNorm": PerSampleNorm(_layer_norm_view, third_is_std=True),
    "InstanceNorm": PerSampleNorm(_instance_norm_view, third_is_std=False),
    "GroupNorm": PerSampleNorm(_group_norm_view, third_is_std=True),
}


def _show_mean_and_std(params) -> int:
    return 3 if params["output_mean_var"] else 1


define_op(
    "LayerNorm",
    inputs=("data", "gamma", "beta"),
    params=(
        Param("axis", parse_int, -1, "the axis normalised (negative counts from the end)"),
        Param("eps", parse_float, 1e-5, "added to the variance before the square root"),
        Param("output_mean_var", parse_bool, False, "make the mean and std outputs visible"),
    ),
    outputs=3,
    visible_outputs=_show_mean_and_std,
    output_names=("output", "mean", "std"),
    fusion=FusionKind.OPAQUE,
    doc=(
        "out = (x - mean) / sqrt(var + eps) * gamma + beta, the mean and biased variance taken along `axis` "
        "for each position of the other axes; gamma and beta have one entry per element of `axis`. The "
        "mean and std outputs have the data's shape with 1 on `axis` and take no gradient."
    ),
)

define_op(
    "InstanceNorm",
    inputs=("data", "gamma", "beta"),
    params=(Param("eps", parse_float, 1e-3, "added to the variance before the square root"),),
    outputs=3,
    visible_outputs=1,
    output_names=("output", "mean", "var"),
    fusion=FusionKind.OPAQUE,
    doc=(
        "out = (x - mean) / sqrt(var + eps) * gamma + beta for each sample and channel (axis 1), the mean "
        "and biased variance taken over the spatial axes (data of rank 3 or more); gamma and beta have one "
        "entry per channel. The hidden outputs are the mean and variance, (batch, channels)."
    ),
)

define_op(
    "GroupNorm",
    inputs=("data", "gamma", "beta"),
    params=(
        Param("num_groups", parse_int, 1, "how many groups the channels (axis 1) are split into"),
        Param("eps", parse_float, 1e-5, "added to the variance before the square root"),
        Param("output_mean_var", parse_bool, False, "make the mean and std outputs visible"),
    ),
    outputs=3,
    visible_outputs=_show_mean_and_std,
    output_names=("output", "mean", "std"),
    fusion=FusionKind.OPAQUE,
    doc=(
        "Splits each sample's channels (axis 1) into num_groups consecutive groups and normalises each group "
        "over its channels and spatial positions: (x - mean) / sqrt(var + eps) * gamma + beta, where, as in "
        "MXNet 1.x, gamma and beta have one entry per group. The mean and std outputs are "
        "(batch, num_groups) and take no gradient."
    ),
)


def _agree(a, b, relation: str):
    """Two partial dims as one; RuleError naming `relation` when both are known and differ."""
    if a is not None and b is not None and a != b:
        raise RuleError(f"{relation}: {a} vs {b}")
    return first_known(a, b)


def _parameter_vector(gamma, beta, length=None) -> tuple:
    """gamma's and beta's one shape, (length,) with `length` possibly None."""
    vector = merge(gamma, beta, "gamma and beta must have one shape")
    if vector is not None and len(vector) != 1:
        raise RuleError(f"gamma and beta must be vectors, got {describe(vector)}")
    return (_agree(vector[0] if vector else None, length, "gamma and beta have the wrong length"),)


def _check_sample_rank(op: str, data: tuple) -> None:
    if len(data) < 3:
        raise RuleError(
            f"{op} needs data of rank 3 or more (batch, channel, spatial...), got {describe(data)}"
        )


def _statistics(out_shapes, rank: int, names: str) -> tuple | None:
    """The hidden outputs' one shape, of `rank` dims."""
    stats = merge(out_shapes[1], out_shapes[2], f"{names} must have one shape")
    return merge(stats, (None,) * rank, f"{names} must have {rank} dimensions") if rank else stats


@shape_rule("LayerNorm")
def layer_norm_shape(params, in_shapes, out_shapes):
    """The output has the data's shape; gamma and beta are (data[axis],); mean and std have the data's shape
    with 1 on `axis` (so they give the data's other dims)."""
    data = merge(in_shapes[0], out_shapes[0], "the output must have the data's shape")
    stats = _statistics(out_shapes, 0, "mean and std")
    if stats is not None:
        axis = normalize_axis(params["axis"], len(stats))
        data = merge(data, with_dim(stats, axis, None), "mean and std must have the data's shape but on axis")
    vector = _parameter_vector(*in_shapes[1:])
    if data is None:
        return [None, vector, vector], [None, stats, stats]
    axis = normalize_axis(params["axis"], len(data))
    channels = _agree(data[axis], vector[0], "gamma and beta need one entry per element of the data's axis")
    data = with_dim(data, axis, channels)
    stats = merge(stats, with_dim(data, axis, 1), "mean and std must have size 1 on axis")
    return [data, (channels,), (channels,)], [data, stats, stats]


@shape_rule("InstanceNorm")
def instance_norm_shape(params, in_shapes, out_shapes):
    """The output has the data's shape (rank 3 or more); gamma and beta are (channels,); mean and var are
    (batch, channels)."""
    data = merge(in_shapes[0], out_shapes[0], "the output must have the data's shape")
    stats = _statistics(out_shapes, 2, "mean and var")
    vector = _parameter_vector(*in_shapes[1:], stats[1] if stats else None)
    if data is None:
        return [None, vector, vector], [None, stats, stats]
    _check_sample_rank("InstanceNorm", data)
    batch = _agree(data[0], stats[0] if stats else None, "mean and var need one row per sample")
    channels = _agree(data[1], vector[0], "gamma and beta need one entry per channel (axis 1)")
    data = (batch, channels) + data[2:]
    return [data, (channels,), (channels,)], [data, (batch, channels), (batch, channels)]


@shape_rule("GroupNorm")
def group_norm_shape(params, in_shapes, out_shapes):
    """The output has the data's shape (rank 3 or more, channels divisible by num_groups); gamma and beta
    are (num_groups,); mean and std are (batch, num_groups)."""
    groups = params["num_groups"]
    if groups < 1:
        raise RuleError(f"num_groups must be at least 1, got {groups}")
    data = merge(in_shapes[0], out_shapes[0], "the output must have the data's shape")
    stats = merge(
        _statistics(out_shapes, 2, "mean and std"), (None, groups), "mean and std need num_groups columns"
    )
    vector = _parameter_vector(*in_shapes[1:], groups)
    if data is None:
        return [None, vector, vector], [None, stats, stats]
    _check_sample_rank("GroupNorm", data)
    if data[1] is not None and data[1] % groups:
        raise RuleError(f"the {data[1]} channels (axis 1) cannot be split into num_groups={groups} groups")
    batch = _agree(data[0], stats[0], "mean and std need one row per sample")
    data = (batch,) + data[1:]
    return [data, vector, vector], [data, (batch, groups), (batch, groups)]


def _per_sample_norm_reference(op: str):
    """The NumPy reference of `op`, in float64, cast back to the data's dtype."""
    norm = PER_SAMPLE_NORMS[op]

    def rule(params, inputs, ctx):
        data, gamma, beta = (a.astype(np.float64) for a in inputs)
        view = norm.view(params, data.shape)
        rows = data.reshape(view.rows)
        mean = rows.mean(axis=1, keepdims=True)
        var = np.square(rows - mean).mean(axis=1, keepdims=True)
        std = np.sqrt(var + params["eps"])
        normalised = ((rows - mean) / std).reshape(view.channels)
        out = normalised * gamma.reshape(1, -1, 1) + beta.reshape(1, -1, 1)
        third = std if norm.third_is_std else var
        dtype = inputs[0].dtype
        stats = (a.reshape(view.stats_shape).astype(dtype) for a in (mean, third))
        return [out.reshape(data.shape).astype(dtype), *stats]

    rule.__name__ = f"{op.lower()}_reference"
    return rule


def per_sample_norm_grad(g, node, out_grads):
    """Composed from reduce and broadcast ops over the forward's hidden mean and std (no gradient flows
    through those, as MXNet). With x^ = (x - mean) / std and w = dy * gamma, per row:
    dx = (w - mean(w) - x^ mean(w x^)) / std; dgamma = sum(dy x^), dbeta = sum(dy) per parameter entry."""
    if out_grads[0] is None:
        return [None] * len(node.inputs)
    norm, params = PER_SAMPLE_NORMS[node.op], node.params
    data, gamma = node.inputs[:2]
    view = norm.view(params, g.shape(data))

    def rows(value):
        return g.op("Reshape", value, shape=view.rows)

    def channels(value):
        return g.op("Reshape", value, shape=view.channels)

    def row_mean(value):
        return g.op("mean", value, axis=(1,), keepdims=True)

    def per_entry_sum(value):
        return g.op("sum", channels(value), axis=(0, 2))

    mean = g.op("Reshape", node.output(1), shape=view.stats_rows)
    std = g.op("Reshape", node.output(2), shape=view.stats_rows)
    if not norm.third_is_std:
        std = g.op("sqrt", g.op("_plus_scalar", std, scalar=params["eps"]))
    dy = rows(out_grads[0])
    normalised = g.op("broadcast_div", g.op("broadcast_sub", rows(data), mean), std)
    scaled = rows(g.op("broadcast_mul", channels(dy), g.op("Reshape", gamma, shape=(1, -1, 1))))
    centred = g.op("broadcast_sub", scaled, row_mean(scaled))
    along = g.op("broadcast_mul", normalised, row_mean(g.op("elemwise_mul", scaled, normalised)))
    dx = g.op("broadcast_div", g.op("elemwise_sub", centred, along), std)
    dgamma = per_entry_sum(g.op("elemwise_mul", dy, normalised))
    return [g.op("Reshape", dx, shape=view.shape), dgamma, per_entry_sum(dy)]


for _op in PER_SAMPLE_NORMS:
    type_rule(_op)(same_type_rule)
    reference(_op)(_per_sample_norm_reference(_op))
    grad_rule(_op)(per_sample_norm_grad)

"""Sliding-window layers: Convolution, Deconvolution, Pooling (1-D, 2-D, 3-D; channel-first or -last).

Their gradient rules emit the backward ops of nn_backward.py, which share this file's window geometry.

References compute in float64 and cast back to the input's dtype, so they are accurate oracles for
float16, float32 and float64 alike.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .params import Param, enum, optional, parse_bool, parse_int, parse_tuple
from .registry import FusionKind, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import (
    RuleError,
    describe,
    first_known,
    same_type_rule,
)

# ---------------------------------------------------------------------------------------------
# Layouts and sliding windows, shared by Convolution and Pooling


def _default_layout(spatial_dims: int) -> str:
    return ("NCW", "NCHW", "NCDHW")[spatial_dims - 1]


def _channel_first_order(layout: str) -> tuple[int, ...]:
    """The axis permutation taking `layout` to (N, C, spatial...): "NHWC" -> (0, 3, 1, 2)."""
    spatial = [i for i, axis in enumerate(layout) if axis not in "NC"]
    return (layout.index("N"), layout.index("C"), *spatial)


def _to_channel_first(shape, layout: str) -> tuple:
    return tuple(shape[i] for i in _channel_first_order(layout))


def _from_channel_first(shape, layout: str) -> tuple:
    result = [None] * len(layout)
    for position, axis in enumerate(_channel_first_order(layout)):
        result[axis] = shape[position]
    return tuple(result)


def _with_rank(shape, layout: str, what: str) -> tuple:
    """`shape` (all dims unknown when None), checked to have one dim per axis of `layout`."""
    if shape is None:
        return (None,) * len(layout)
    if len(shape) != len(layout):
        raise RuleError(f"{what} must have {len(layout)} dims ({layout}), got {describe(shape)}")
    return tuple(shape)


@dataclass(frozen=True)
class Window:
    """Where an N-D sliding window goes: kernel, stride, dilation and padding (both sides) per axis."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilate: tuple[int, ...]
    pad: tuple[int, ...]

    @property
    def extent(self) -> tuple[int, ...]:
        """How many input cells the (dilated) kernel spans on each axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilate))


def _per_axis(params, key: str, fill: int, kernel: tuple[int, ...], minimum: int) -> tuple[int, ...]:
    """A tuple parameter with one entry per kernel axis; `()` means `fill` on every axis."""
    value = params[key] or (fill,) * len(kernel)
    if len(value) != len(kernel):
        raise RuleError(f"{key} {value} must have one entry per kernel axis, as kernel {kernel} has")
    if min(value) < minimum:
        raise RuleError(f"every entry of {key} must be at least {minimum}, got {value}")
    return tuple(value)


def _check_kernel(kernel: tuple[int, ...]) -> None:
    if not 1 <= len(kernel) <= 3 or min(kernel) < 1:
        raise RuleError(f"kernel must have 1 to 3 positive entries, got {kernel}")


def _check_fits(window: Window, spatial) -> None:
    """RuleError when the (dilated) kernel spans more cells than the padded input has."""
    padded = tuple(None if n is None else n + 2 * p for n, p in zip(spatial, window.pad))
    if all(p is None or e <= p for e, p in zip(window.extent, padded)):
        return
    spans = (
        "" if window.extent == window.kernel else f" dilated by {window.dilate} spans {window.extent}, which"
    )
    raise RuleError(f"kernel size {window.kernel}{spans} exceeds the padded input {describe(padded)}")


def windows(x: np.ndarray, window: Window, out_sizes, fill: float) -> np.ndarray:
    """Every window of `x` (N, C, *spatial) as a view (N, C, *out_sizes, *kernel); padding reads `fill`."""
    widths = [(0, 0), (0, 0)] + [
        (p, max(0, (o - 1) * s + e - n - p))
        for n, o, s, e, p in zip(x.shape[2:], out_sizes, window.stride, window.extent, window.pad)
    ]
    padded = np.pad(x, widths, constant_values=fill)
    views = sliding_window_view(padded, window.extent, axis=tuple(range(2, x.ndim)))
    starts = tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out_sizes, window.stride))
    taps = tuple(slice(None, None, d) for d in window.dilate)
    return views[(slice(None), slice(None)) + starts + taps]


# ---------------------------------------------------------------------------------------------
# Convolution: cross-correlation of data (N, C, *spatial) with weight (F, C/num_group, *kernel)

CONV_LAYOUTS = ("NCW", "NCHW", "NCDHW", "NHWC", "NDHWC")


def _conv_inputs(params):
    return ("data", "weight") if params["no_bias"] else ("data", "weight", "bias")


# The last parameters of Convolution and Deconvolution (MXNet's positional order)
CUDNN_AND_LAYOUT = (
    Param("cudnn_tune", optional(enum("off", "limited_workspace", "fastest")), None, "cuDNN only"),
    Param("cudnn_off", parse_bool, False, "cuDNN only"),
    Param("layout", optional(enum(*CONV_LAYOUTS)), None, "data layout; None means NCW, NCHW or NCDHW"),
)

define_op(
    "Convolution",
    inputs=_conv_inputs,
    params=(
        Param("kernel", parse_tuple, doc="kernel size: (w,), (h, w) or (d, h, w)"),
        Param("stride", parse_tuple, (), "stride per spatial axis; () means 1s"),
        Param("dilate", parse_tuple, (), "dilation per spatial axis; () means 1s"),
        Param("pad", parse_tuple, (), "zero padding on both sides of each spatial axis; () means 0s"),
        Param("num_filter", parse_int, doc="number of output channels"),
        Param("num_group", parse_int, 1, "number of groups the input and output channels are split into"),
        Param("workspace", parse_int, 1024, "MXNet's scratch-space limit in MB (no effect in Ember)"),
        Param("no_bias", parse_bool, False, "whether to leave out the bias"),
        *CUDNN_AND_LAYOUT,
    ),
    fusion=FusionKind.MATMUL,
    doc="Cross-correlates the data with num_filter kernels (no kernel flip) and adds a bias.",
)


def _conv_window(params) -> Window:
    kernel = params["kernel"]
    _check_kernel(kernel)
    return Window(
        kernel,
        _per_axis(params, "stride", 1, kernel, 1),
        _per_axis(params, "dilate", 1, kernel, 1),
        _per_axis(params, "pad", 0, kernel, 0),
    )


def _conv_layout(params, spatial_dims: int) -> str:
    layout = params["layout"] or _default_layout(spatial_dims)
    if len(layout) != spatial_dims + 2:
        raise RuleError(f"layout {layout} does not fit a {spatial_dims}-D kernel")
    return layout


def _conv_groups(params) -> tuple[int, int]:
    filters, groups = params["num_filter"], params["num_group"]
    if filters < 1 or groups < 1 or filters % groups:
        raise RuleError(f"num_filter={filters} must be a positive multiple of num_group={groups}")
    return filters, groups


def _conv_channels(from_data, per_group_from_weight, groups: int):
    channels = first_known(
        from_data, None if per_group_from_weight is None else per_group_from_weight * groups
    )
    if channels is not None and channels % groups:
        raise RuleError(f"the {channels} input channels do not split into num_group={groups} groups")
    return channels


def conv_output_size(size: int, extent: int, stride: int, pad: int) -> int:
    """floor((in + 2 pad - dilated kernel) / stride) + 1."""
    return (size + 2 * pad - extent) // stride + 1


def _conv_spatial(window: Window, data_sizes, out_sizes) -> tuple[list, list]:
    """Output sizes from input sizes; input sizes from output sizes where the stride is 1 (as MXNet)."""
    _check_fits(window, data_sizes)
    ins, outs = list(data_sizes), list(out_sizes)
    for i, (e, s, p) in enumerate(zip(window.extent, window.stride, window.pad)):
        if ins[i] is not None:
            outs[i] = conv_output_size(ins[i], e, s, p)
        elif outs[i] is not None and s == 1:
            ins[i] = outs[i] + e - 1 - 2 * p
            if ins[i] < 1:
                raise RuleError(
                    f"no input size gives output size {outs[i]} with kernel extent {e} and pad {p}"
                )
    return ins, outs


@shape_rule("Convolution")
def conv_shape(params, in_shapes, out_shapes):
    """data (N, C, *in) -> (N, F, *out); weight (F, C/num_group, *kernel), bias (F,); any layout."""
    window = _conv_window(params)
    layout = _conv_layout(params, len(window.kernel))
    filters, groups = _conv_groups(params)
    data, weight, out = (
        _to_channel_first(_with_rank(shape, layout, what), layout)
        for shape, what in ((in_shapes[0], "data"), (in_shapes[1], "weight"), (out_shapes[0], "the output"))
    )
    channels = _conv_channels(data[1], weight[1], groups)
    batch = first_known(data[0], out[0])
    spatial_in, spatial_out = _conv_spatial(window, data[2:], out[2:])
    per_group = None if channels is None else channels // groups
    inferred = [
        _from_channel_first((batch, channels, *spatial_in), layout),
        _from_channel_first((filters, per_group, *window.kernel), layout),
    ]
    bias = [] if params["no_bias"] else [(filters,)]
    return inferred + bias, [_from_channel_first((batch, filters, *spatial_out), layout)]


type_rule("Convolution")(same_type_rule)


@grad_rule("Convolution")
def conv_grad(g, node, out_grads):
    """data and weight gradients by the backward ops of nn_backward.py; bias: dy summed over all but channels."""
    dy, (data, weight) = out_grads[0], node.inputs[:2]
    params = node.params
    dx = g.op("_backward_Convolution_data", dy, weight, **params, data_shape=g.shape(data))
    dw = g.op("_backward_Convolution_weight", dy, data, **params)
    if params["no_bias"]:
        return [dx, dw]
    channel_axis = _conv_layout(params, len(params["kernel"])).index("C")
    return [dx, dw, g.op("sum", dy, axis=channel_axis, exclude=True)]


@reference("Convolution")
def conv_reference(params, inputs, ctx):
    window = _conv_window(params)
    layout = _conv_layout(params, len(window.kernel))
    filters, groups = _conv_groups(params)
    order = _channel_first_order(layout)
    x = inputs[0].transpose(order).astype(np.float64)
    w = inputs[1].transpose(order).astype(np.float64)
    sizes = [conv_output_size(n, *g) for n, *g in zip(x.shape[2:], window.extent, window.stride, window.pad)]
    batch, channels = x.shape[:2]
    patches = windows(x, window, sizes, 0.0).reshape(batch, groups, channels // groups, *sizes, -1)
    kernels = w.reshape(groups, filters // groups, channels // groups, -1)
    out = np.einsum("ngc...k,gfck->ngf...", patches, kernels, optimize=True).reshape(batch, filters, *sizes)
    if not params["no_bias"]:
        out = out + inputs[2].astype(np.float64).reshape((filters,) + (1,) * len(sizes))
    return [out.transpose(np.argsort(order)).astype(inputs[0].dtype)]


# ---------------------------------------------------------------------------------------------
# Deconvolution: the transpose of Convolution. Data (N, C, *in) and weight (C, F/num_group, *kernel)
# give (N, F, *out), out = (in - 1) stride - 2 pad + dilated kernel + adj per axis; it equals the data
# gradient of a Convolution from (N, F, *out) to (N, C, *in) with the same weight, kernel, stride,
# dilation and pad, which the gradient rule and the lowering use.

define_op(
    "Deconvolution",
    inputs=_conv_inputs,
    params=(
        Param("kernel", parse_tuple, doc="kernel size: (w,), (h, w) or (d, h, w)"),
        Param("stride", parse_tuple, (), "stride of the matching convolution; () means 1s"),
        Param("dilate", parse_tuple, (), "dilation per spatial axis; () means 1s"),
        Param("pad", parse_tuple, (), "convolution padding; () means 0s; ignored with target_shape"),
        Param("adj", parse_tuple, (), "cells added at each output axis end; ignored with target_shape"),
        Param("target_shape", parse_tuple, (), "output spatial sizes, from which pad and adj are derived"),
        Param("num_filter", parse_int, doc="number of output channels"),
        Param("num_group", parse_int, 1, "number of groups the input and output channels are split into"),
        Param("workspace", parse_int, 512, "MXNet's scratch-space limit in MB (no effect in Ember)"),
        Param("no_bias", parse_bool, True, "whether to leave out the bias (MXNet's default: True)"),
        *CUDNN_AND_LAYOUT,
    ),
    fusion=FusionKind.MATMUL,
    doc="Transposed convolution: each input cell adds its value times a kernel onto a window of the output.",
)


def _deconv_window(params) -> Window:
    """Kernel, stride and dilation; the pad is left at 0 (deconv_padding gives the one MXNet uses)."""
    return _conv_window(dict(params, pad=()))


def _uses_target_shape(params, kernel: tuple[int, ...]) -> bool:
    """Whether target_shape is set (MXNet: any non-zero entry); then every entry must be positive."""
    target = params["target_shape"]
    if not any(target):
        return False
    if len(target) != len(kernel) or min(target) < 1:
        raise RuleError(
            f"target_shape {target} must have one positive entry per kernel axis, as kernel {kernel} has"
        )
    return True


def _target_padding(size, stride: int, extent: int, target: int) -> tuple:
    """MXNet's pad and adj giving output size `target` from input size `size` (None: unknown)."""
    if size is None:
        return None, None
    total = stride * (size - 1) + extent - target
    if total < 0:
        raise RuleError(
            f"target_shape entry {target} is too big: input size {size} gives at most {target + total}"
        )
    return (total + 1) // 2, total % 2


def deconv_padding(params, spatial_in) -> tuple[tuple, tuple]:
    """(pad, adj) per spatial axis: the parameters, or derived from target_shape and the input sizes
    (None where an input size is unknown). adj must be smaller than the stride, as in MXNet."""
    window = _deconv_window(params)
    if _uses_target_shape(params, window.kernel):
        pads, adjs = zip(
            *map(_target_padding, spatial_in, window.stride, window.extent, params["target_shape"])
        )
    else:
        pads = _per_axis(params, "pad", 0, window.kernel, 0)
        adjs = _per_axis(params, "adj", 0, window.kernel, 0)
    for a, s in zip(adjs, window.stride):
        if a is not None and a >= s:
            raise RuleError(f"adj {tuple(adjs)} must be smaller than stride {window.stride} on every axis")
    return pads, adjs


def deconv_output_size(size, stride: int, extent: int, pad, adj):
    """(in - 1) stride - 2 pad + dilated kernel + adj; None when the input size or pad is unknown."""
    if size is None or pad is None:
        return None
    out = (size - 1) * stride - 2 * pad + extent + adj
    if out < 1:
        raise RuleError(
            f"input size {size} gives output size {out} "
            f"with stride {stride}, pad {pad} and kernel extent {extent}"
        )
    return out


def deconv_as_conv(params, data_shape) -> dict:
    """The parameters of the Convolution whose data gradient this Deconvolution is (data of known shape):
    num_filter is the deconvolution's input channels, pad the pad MXNet uses, no bias."""
    kernel = params["kernel"]
    layout = _conv_layout(params, len(kernel))
    channels_in = _to_channel_first(data_shape, layout)
    pads, _ = deconv_padding(params, channels_in[2:])
    conv_names = ("kernel", "stride", "dilate", "num_group", "workspace", "cudnn_tune", "cudnn_off", "layout")
    conv = {name: params[name] for name in conv_names}
    return dict(conv, pad=tuple(pads), num_filter=channels_in[1], no_bias=True)


@shape_rule("Deconvolution")
def deconv_shape(params, in_shapes, out_shapes):
    """data (N, C, *in) -> (N, F, *out); weight (C, F/num_group, *kernel), bias (F,); any layout."""
    window = _deconv_window(params)
    layout = _conv_layout(params, len(window.kernel))
    filters, groups = _conv_groups(params)
    data, weight, out = (
        _to_channel_first(_with_rank(shape, layout, what), layout)
        for shape, what in ((in_shapes[0], "data"), (in_shapes[1], "weight"), (out_shapes[0], "the output"))
    )
    channels = first_known(data[1], weight[0])
    if None not in (data[1], weight[0]) and data[1] != weight[0]:
        raise RuleError(f"the weight's first dim {weight[0]} must be the data's channel count {data[1]}")
    if channels is not None and channels % groups:
        raise RuleError(f"the {channels} input channels do not split into num_group={groups} groups")
    pads, adjs = deconv_padding(params, data[2:])
    spatial_out = tuple(
        first_known(deconv_output_size(*size), known)
        for size, known in zip(zip(data[2:], window.stride, window.extent, pads, adjs), out[2:])
    )
    batch = first_known(data[0], out[0])
    inferred = [
        _from_channel_first((batch, channels, *data[2:]), layout),
        _from_channel_first((channels, filters // groups, *window.kernel), layout),
    ]
    bias = [] if params["no_bias"] else [(filters,)]
    return inferred + bias, [_from_channel_first((batch, filters, *spatial_out), layout)]


type_rule("Deconvolution")(same_type_rule)


@grad_rule("Deconvolution")
def deconv_grad(g, node, out_grads):
    """As the transpose of a Convolution: the data gradient is that Convolution of dy, the weight
    gradient its weight gradient with data and output swapped; bias: dy summed over all but channels."""
    dy, (data, weight) = out_grads[0], node.inputs[:2]
    conv = deconv_as_conv(node.params, g.shape(data))
    dx = g.op("Convolution", dy, weight, **conv)
    dw = g.op("_backward_Convolution_weight", data, dy, **conv)
    if node.params["no_bias"]:
        return [dx, dw]
    channel_axis = _conv_layout(conv, len(conv["kernel"])).index("C")
    return [dx, dw, g.op("sum", dy, axis=channel_axis, exclude=True)]


def _spread(x: np.ndarray, stride, low, high) -> np.ndarray:
    """`x` (N, C, *spatial) with stride - 1 zeros between neighbours, padded (or cropped where negative)
    by `low` and `high` cells on each spatial axis."""
    spread = np.zeros(x.shape[:2] + tuple((n - 1) * s + 1 for n, s in zip(x.shape[2:], stride)))
    spread[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = x
    widths = [(0, 0)] * 2 + [(max(lo, 0), max(hi, 0)) for lo, hi in zip(low, high)]
    padded = np.pad(spread, widths)
    crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for lo, hi, n in zip(low, high, padded.shape[2:]))
    return padded[(slice(None), slice(None)) + crop]


@reference("Deconvolution")
def deconv_reference(params, inputs, ctx):
    """Independently of the Convolution data gradient: a stride-1 correlation of the stride-spread,
    padded input with the flipped kernel (in and out channels swapped per group)."""
    window = _deconv_window(params)
    layout = _conv_layout(params, len(window.kernel))
    filters, groups = _conv_groups(params)
    order = _channel_first_order(layout)
    x = inputs[0].transpose(order).astype(np.float64)
    w = inputs[1].transpose(order).astype(np.float64)
    pads, adjs = deconv_padding(params, x.shape[2:])
    low = [e - 1 - p for e, p in zip(window.extent, pads)]
    spread = _spread(x, window.stride, low, [lo + a for lo, a in zip(low, adjs)])
    sizes = [
        deconv_output_size(n, *geometry)
        for n, *geometry in zip(x.shape[2:], window.stride, window.extent, pads, adjs)
    ]
    ones = (1,) * len(sizes)
    unit = Window(window.kernel, ones, window.dilate, (0,) * len(sizes))
    batch, channels = x.shape[:2]
    patches = windows(spread, unit, sizes, 0.0).reshape(batch, groups, channels // groups, *sizes, -1)
    flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * len(sizes)]
    kernels = flipped.reshape(groups, channels // groups, filters // groups, -1)
    out = np.einsum("ngc...k,gcfk->ngf...", patches, kernels, optimize=True).reshape(batch, filters, *sizes)
    if not params["no_bias"]:
        out = out + inputs[2].astype(np.float64).reshape((filters,) + ones)
    return [out.transpose(np.argsort(order)).astype(inputs[0].dtype)]


# ---------------------------------------------------------------------------------------------
# Pooling: max, avg, sum or lp over sliding windows of each channel

POOL_LAYOUTS = ("NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC")


def _pool_file_outputs(params) -> int:
    """MXNet 1.9.1's (oneDNN) build gives max pooling over a 1-3-D kernel in a channel-first layout a
    hidden `workspace` output, which its JSON counts. Ember's Pooling has no workspace; only the JSON
    writer counts it, so MXNet-written files round-trip byte for byte."""
    channel_first = params["layout"] in (None, "NCW", "NCHW", "NCDHW")
    return 2 if params["pool_type"] == "max" and 1 <= len(params["kernel"]) <= 3 and channel_first else 1


define_op(
    "Pooling",
    params=(
        Param("kernel", parse_tuple, (), "window size; may be left out with global_pool"),
        Param("pool_type", enum("max", "avg", "sum", "lp"), "max", "how a window is reduced"),
        Param("global_pool", parse_bool, False, "pool the whole spatial extent; kernel, stride, pad ignored"),
        Param("cudnn_off", parse_bool, False, "cuDNN only"),
        Param("pooling_convention", enum("valid", "full", "same"), "valid", "how the output size rounds"),
        Param("stride", parse_tuple, (), "stride per spatial axis; () means 1s (not the kernel)"),
        Param("pad", parse_tuple, (), "padding on both sides of each spatial axis; () means 0s"),
        Param("p_value", optional(parse_int), None, "p of lp pooling: 1, 2 or 3"),
        Param("count_include_pad", optional(parse_bool), None, "avg counts padded cells; None means True"),
        Param("layout", optional(enum(*POOL_LAYOUTS)), None, "data layout; None means NCW, NCHW or NCDHW"),
    ),
    file_outputs=_pool_file_outputs,
    fusion=FusionKind.OPAQUE,
    doc="Reduces each window of each channel by max, average, sum or Lp norm.",
)

# pooling_convention -> output size from (input, kernel, stride, pad)
POOL_OUTPUT_SIZE = {
    "valid": lambda n, k, s, p: (n + 2 * p - k) // s + 1,
    "full": lambda n, k, s, p: -(-(n + 2 * p - k) // s) + 1,
    "same": lambda n, k, s, p: -(-(n + 2 * p) // s),
}

LP_ROOTS = {1: lambda a: a, 2: np.sqrt, 3: np.cbrt}


def _pool_layout(params, rank: int) -> str:
    if not 3 <= rank <= 5:
        raise RuleError(f"Pooling needs 3-D, 4-D or 5-D data (batch, channel, spatial...), got {rank} dims")
    layout = params["layout"] or _default_layout(rank - 2)
    if len(layout) != rank:
        raise RuleError(f"layout {layout} does not fit {rank}-D data")
    return layout


def _check_pool_options(params, rank: int) -> None:
    if params["pool_type"] == "lp" and params["p_value"] not in LP_ROOTS:
        raise RuleError(f"lp pooling needs p_value 1, 2 or 3, got {params['p_value']}")
    if params["pooling_convention"] == "same" and (rank != 3 or any(params["pad"])):
        raise RuleError("pooling_convention 'same' supports only 1-D pooling (3-D data) without pad")


def _pool_window(params, spatial) -> Window:
    """The window sliding over spatial sizes `spatial`; the whole extent under global_pool."""
    ones = (1,) * len(spatial)
    if params["global_pool"]:
        return Window(tuple(spatial), ones, ones, (0,) * len(spatial))
    kernel = params["kernel"]
    if not kernel:
        raise RuleError("kernel is required unless global_pool is set")
    _check_kernel(kernel)
    if len(kernel) != len(spatial):
        raise RuleError(
            f"a {len(kernel)}-D kernel {kernel} needs {len(kernel) + 2}-D data, got {len(spatial) + 2}-D"
        )
    stride, pad = _per_axis(params, "stride", 1, kernel, 1), _per_axis(params, "pad", 0, kernel, 0)
    return Window(kernel, stride, ones, pad)


def _pool_out_sizes(params, spatial) -> tuple:
    if params["global_pool"]:
        return (1,) * len(spatial)
    window = _pool_window(params, spatial)
    _check_fits(window, spatial)
    size = POOL_OUTPUT_SIZE[params["pooling_convention"]]
    return tuple(
        None if n is None else size(n, k, s, p)
        for n, k, s, p in zip(spatial, window.kernel, window.stride, window.pad)
    )


@shape_rule("Pooling")
def pool_shape(params, in_shapes, out_shapes):
    """data (N, C, *in) -> (N, C, *out); out per pooling_convention, or 1s under global_pool."""
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    layout = _pool_layout(params, len(data))
    _check_pool_options(params, len(data))
    data = _to_channel_first(data, layout)
    out = _to_channel_first(_with_rank(out_shapes[0], layout, "the output"), layout)
    batch, channels = first_known(data[0], out[0]), first_known(data[1], out[1])
    spatial_out = _pool_out_sizes(params, data[2:])
    inferred_data = _from_channel_first((batch, channels, *data[2:]), layout)
    return [inferred_data], [_from_channel_first((batch, channels, *spatial_out), layout)]


type_rule("Pooling")(same_type_rule)


@grad_rule("Pooling")
def pool_grad(g, node, out_grads):
    """By `_backward_Pooling` (nn_backward.py), which reads the data and the output (max and lp need them)."""
    return [g.op("_backward_Pooling", out_grads[0], node.inputs[0], node.output(0), **node.params)]


def _avg_divisor(window: Window, sizes, out_sizes, include_pad: bool) -> np.ndarray:
    """Cells each window divides by: those inside the padded input, or inside the input alone."""
    counts = []
    for n, o, k, s, p in zip(sizes, out_sizes, window.kernel, window.stride, window.pad):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        counts.append(end - start if include_pad else np.minimum(end, n) - np.maximum(start, 0))
    return functools.reduce(np.multiply.outer, counts)


# pool_type -> (padding value, reduce(cells, window axes, avg divisor, p_value))
POOL_REDUCERS = {
    "max": (-np.inf, lambda cells, axes, divisor, p: cells.max(axis=axes)),
    "sum": (0.0, lambda cells, axes, divisor, p: cells.sum(axis=axes)),
    "avg": (0.0, lambda cells, axes, divisor, p: cells.sum(axis=axes) / divisor),
    "lp": (0.0, lambda cells, axes, divisor, p: LP_ROOTS[p](np.sum(cells**p, axis=axes))),
}


@reference("Pooling")
def pool_reference(params, inputs, ctx):
    data = inputs[0]
    layout = _pool_layout(params, data.ndim)
    _check_pool_options(params, data.ndim)
    order = _channel_first_order(layout)
    x = data.transpose(order).astype(np.float64)
    window = _pool_window(params, x.shape[2:])
    sizes = _pool_out_sizes(params, x.shape[2:])
    fill, reduce = POOL_REDUCERS[params["pool_type"]]
    include_pad = params["count_include_pad"] is not False
    divisor = _avg_divisor(window, x.shape[2:], sizes, include_pad)
    cells = windows(x, window, sizes, fill)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = reduce(cells, tuple(range(-len(sizes), 0)), divisor, params["p_value"])
    return [out.astype(data.dtype).transpose(np.argsort(order))]

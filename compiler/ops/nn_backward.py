"""Backward ops: the gradients that composing forward ops cannot express well.

The gradient rules of Convolution, Pooling, BatchNorm, SoftmaxOutput and Embedding (conv.py,
norm.py, loss.py, nn.py) emit these ops. Each takes the forward op's own parameters (plus
`data_shape` for the convolution data gradient) and is an ordinary op: schema, shape and type
rules, and a NumPy reference computed in float64. None has a gradient of its own.
"""

from __future__ import annotations

import numpy as np

from .conv import (
    POOL_REDUCERS,
    Window,
    _avg_divisor,
    _channel_first_order,
    _check_pool_options,
    _conv_groups,
    _conv_layout,
    _conv_window,
    _pool_layout,
    _pool_out_sizes,
    _pool_window,
    _to_channel_first,
    conv_shape,
    pool_shape,
    windows,
)
from .loss import softmax_output_shape
from .norm import _batchnorm_param_dtype
from .params import Param, parse_tuple
from .registry import (
    FusionKind,
    define_op,
    get_schema,
    non_differentiable,
    reference,
    shape_rule,
    type_rule,
)
from .rules import merge, normalize_axis, same_type_rule


def _add_windows(cells: np.ndarray, window: Window, sizes) -> np.ndarray:
    """The adjoint of `conv.windows`: each window cell's value in `cells` (N, C, *out, *kernel) added
    back onto the input cell it was read from; cells read from padding are dropped. -> (N, C, *sizes)."""
    out_sizes = cells.shape[2 : 2 + len(sizes)]
    padded = [
        max(n + 2 * p, (o - 1) * s + e)
        for n, o, s, e, p in zip(sizes, out_sizes, window.stride, window.extent, window.pad)
    ]
    total = np.zeros(cells.shape[:2] + tuple(padded))
    for tap in np.ndindex(*window.kernel):
        reads = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, window.dilate, out_sizes, window.stride)
        )
        total[(slice(None), slice(None)) + reads] += cells[(Ellipsis,) + tap]
    inside = tuple(slice(p, p + n) for p, n in zip(window.pad, sizes))
    return total[(slice(None), slice(None)) + inside]


# ---------------------------------------------------------------------------------------------
# Convolution: the data gradient (a transposed convolution) and the weight gradient

CONV_PARAMS = get_schema("Convolution").params

define_op(
    "_backward_Convolution_data",
    inputs=("out_grad", "weight"),
    params=CONV_PARAMS + (Param("data_shape", parse_tuple, doc="the shape of the forward data"),),
    fusion=FusionKind.MATMUL,
    doc="Convolution's data gradient: out_grad (N, F, *out) correlated back through weight onto data_shape.",
)

define_op(
    "_backward_Convolution_weight",
    inputs=("out_grad", "data"),
    params=CONV_PARAMS,
    fusion=FusionKind.MATMUL,
    doc="Convolution's weight gradient: the windows of data weighted by out_grad, summed over batch and positions.",
)


def _without_bias(params) -> dict:
    return dict(params, no_bias=True)


@shape_rule("_backward_Convolution_data")
def conv_data_grad_shape(params, in_shapes, out_shapes):
    """out_grad and weight as Convolution's output and weight for data of shape data_shape; -> data_shape."""
    data = merge(out_shapes[0], tuple(params["data_shape"]), "the result must have shape data_shape")
    (data, weight), (grad,) = conv_shape(_without_bias(params), [data, in_shapes[1]], [in_shapes[0]])
    return [grad, weight], [data]


@shape_rule("_backward_Convolution_weight")
def conv_weight_grad_shape(params, in_shapes, out_shapes):
    """out_grad and data as Convolution's output and data; -> weight's shape (F, C/num_group, *kernel)."""
    (data, weight), (grad,) = conv_shape(_without_bias(params), [in_shapes[1], out_shapes[0]], [in_shapes[0]])
    return [grad, data], [weight]


type_rule("_backward_Convolution_data", "_backward_Convolution_weight")(same_type_rule)


def _conv_geometry(params) -> tuple[Window, str, int]:
    window = _conv_window(params)
    return window, _conv_layout(params, len(window.kernel)), _conv_groups(params)[1]


@reference("_backward_Convolution_data")
def conv_data_grad_reference(params, inputs, ctx):
    grad, weight = inputs
    window, layout, groups = _conv_geometry(params)
    order = _channel_first_order(layout)
    dy = grad.transpose(order).astype(np.float64)
    w = weight.transpose(order).astype(np.float64)
    batch, channels, *sizes = _to_channel_first(params["data_shape"], layout)
    filters, out_sizes = dy.shape[1], dy.shape[2:]
    kernels = w.reshape(groups, filters // groups, channels // groups, -1)
    grads = dy.reshape(batch, groups, filters // groups, *out_sizes)
    cells = np.einsum("ngf...,gfck->ngc...k", grads, kernels, optimize=True)
    cells = cells.reshape(batch, channels, *out_sizes, *window.kernel)
    return [_add_windows(cells, window, sizes).transpose(np.argsort(order)).astype(grad.dtype)]


@reference("_backward_Convolution_weight")
def conv_weight_grad_reference(params, inputs, ctx):
    grad, data = inputs
    window, layout, groups = _conv_geometry(params)
    order = _channel_first_order(layout)
    dy = grad.transpose(order).astype(np.float64)
    x = data.transpose(order).astype(np.float64)
    (batch, channels), (filters, *out_sizes) = x.shape[:2], dy.shape[1:]
    patches = windows(x, window, out_sizes, 0.0).reshape(batch, groups, channels // groups, *out_sizes, -1)
    grads = dy.reshape(batch, groups, filters // groups, *out_sizes)
    dw = np.einsum("ngc...k,ngf...->gfck", patches, grads, optimize=True)
    dw = dw.reshape(filters, channels // groups, *window.kernel)
    return [dw.transpose(np.argsort(order)).astype(grad.dtype)]


# ---------------------------------------------------------------------------------------------
# Pooling: each output's gradient spread over the cells of its window

define_op(
    "_backward_Pooling",
    inputs=("out_grad", "data", "output"),
    params=get_schema("Pooling").params,
    fusion=FusionKind.OPAQUE,
    doc=(
        "Pooling's data gradient: max sends each window's gradient to its first maximal cell, sum to every "
        "cell, avg divides it by the forward's divisor, lp weights it by (x / output)^(p-1)."
    ),
)


@shape_rule("_backward_Pooling")
def pool_grad_shape(params, in_shapes, out_shapes):
    """out_grad and output have Pooling's output shape for `data`; the result has the data's shape."""
    grad, data, output = in_shapes
    data = merge(data, out_shapes[0], "the result must have the data's shape")
    grad = merge(grad, output, "out_grad must have the forward output's shape")
    (data,), (grad,) = pool_shape(params, [data], [grad])
    return [grad, data, grad], [data]


type_rule("_backward_Pooling")(same_type_rule)


def _lp_weights(cells, output, p: int):
    """d output / d cell for output = (sum cells^p)^(1/p): (cell / output)^(p-1)."""
    if p == 1:
        return np.ones_like(cells)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (cells / output[..., None]) ** (p - 1)


# pool_type -> (cells (N, C, *out, K), output (N, C, *out), avg divisor (*out), p) -> d output / d cell
POOL_GRADIENT_WEIGHTS = {
    "max": lambda cells, output, divisor, p: np.eye(cells.shape[-1])[np.argmax(cells, axis=-1)],
    "sum": lambda cells, output, divisor, p: np.ones_like(cells),
    "avg": lambda cells, output, divisor, p: np.broadcast_to(1.0 / divisor[..., None], cells.shape),
    "lp": lambda cells, output, divisor, p: _lp_weights(cells, output, p),
}


@reference("_backward_Pooling")
def pool_grad_reference(params, inputs, ctx):
    grad, data, output = inputs
    layout = _pool_layout(params, data.ndim)
    _check_pool_options(params, data.ndim)
    order = _channel_first_order(layout)
    dy, x, y = (a.transpose(order).astype(np.float64) for a in (grad, data, output))
    window = _pool_window(params, x.shape[2:])
    sizes = _pool_out_sizes(params, x.shape[2:])
    fill = POOL_REDUCERS[params["pool_type"]][0]
    cells = windows(x, window, sizes, fill).reshape(*x.shape[:2], *sizes, -1)
    divisor = _avg_divisor(window, x.shape[2:], sizes, params["count_include_pad"] is not False)
    weights = POOL_GRADIENT_WEIGHTS[params["pool_type"]](cells, y, divisor, params["p_value"])
    # MXNet's lp gradient is 0 where the incoming gradient is, even where x / output is not a number
    spread = np.where(dy[..., None] == 0, 0.0, weights * dy[..., None])
    dx = _add_windows(spread.reshape(*x.shape[:2], *sizes, *window.kernel), window, x.shape[2:])
    return [dx.transpose(np.argsort(order)).astype(grad.dtype)]


# ---------------------------------------------------------------------------------------------
# BatchNorm: data, gamma and beta gradients through the statistics the forward used

define_op(
    "_backward_BatchNorm",
    inputs=("out_grad", "data", "gamma", "mean", "invstd"),
    params=get_schema("BatchNorm").params,
    outputs=3,
    output_names=("data_grad", "gamma_grad", "beta_grad"),
    fusion=FusionKind.OPAQUE,
    reads_context=True,  # through the batch statistics in training
    doc=(
        "BatchNorm's gradients from the forward's hidden outputs mean and invstd = 1/sqrt(var + eps). In "
        "training (and not use_global_stats) the data gradient flows through the batch statistics too; "
        "otherwise it is out_grad * gamma * invstd. gamma_grad is 0 with fix_gamma."
    ),
)


@shape_rule("_backward_BatchNorm")
def batchnorm_grad_shape(params, in_shapes, out_shapes):
    """out_grad, data and data_grad share one shape; gamma, mean, invstd and the other results are (C,)."""
    data = vector = None
    for shape in (in_shapes[0], in_shapes[1], out_shapes[0]):
        data = merge(data, shape, "out_grad, data and data_grad must have one shape")
    for shape in list(in_shapes[2:]) + list(out_shapes[1:]):
        vector = merge(vector, shape, "gamma, mean, invstd, gamma_grad and beta_grad must have one shape")
    if data is not None:
        axis = normalize_axis(params["axis"], len(data))
        vector = merge(vector, (data[axis],), "gamma must have one entry per channel of the data")
        data = data[:axis] + vector + data[axis + 1 :]
    return [data, data, vector, vector, vector], [data, vector, vector]


@type_rule("_backward_BatchNorm")
def batchnorm_grad_type(params, in_types, out_types):
    """data_grad has the data's dtype; gamma_grad and beta_grad the parameters' (float32 for float16 data)."""
    data = None
    for dtype in (in_types[0], in_types[1], out_types[0]):
        data = merge(data, dtype, "out_grad, data and data_grad must have one dtype")
    if data is None:
        return in_types, out_types
    vector = _batchnorm_param_dtype(data)
    return [data, data, vector, vector, vector], [data, vector, vector]


@reference("_backward_BatchNorm")
def batchnorm_grad_reference(params, inputs, ctx):
    dy, x, gamma, mean, invstd = (a.astype(np.float64) for a in inputs)
    axis = normalize_axis(params["axis"], x.ndim)
    others = tuple(a for a in range(x.ndim) if a != axis)
    channel = [-1 if a == axis else 1 for a in range(x.ndim)]
    normalised = (x - mean.reshape(channel)) * invstd.reshape(channel)
    sum_dy, sum_dy_normalised = dy.sum(axis=others), (dy * normalised).sum(axis=others)
    scale = ((np.ones_like(gamma) if params["fix_gamma"] else gamma) * invstd).reshape(channel)
    if ctx.is_train and not params["use_global_stats"]:
        # through the batch statistics: gamma invstd (dy - mean(dy) - normalised mean(dy normalised))
        count = x.size // x.shape[axis]
        mean_dy = (sum_dy / count).reshape(channel)
        mean_dy_normalised = (sum_dy_normalised / count).reshape(channel)
        dx = (dy - mean_dy - normalised * mean_dy_normalised) * scale
    else:
        dx = dy * scale
    dgamma = np.zeros_like(gamma) if params["fix_gamma"] else sum_dy_normalised
    vector = inputs[2].dtype
    return [dx.astype(inputs[1].dtype), dgamma.astype(vector), sum_dy.astype(vector)]


# ---------------------------------------------------------------------------------------------
# SoftmaxOutput: MXNet's fixed loss gradient from the forward output and the label


def _softmax_output_grad_inputs(params):
    return ("output", "label", "head_grad") if params["out_grad"] else ("output", "label")


define_op(
    "_backward_SoftmaxOutput",
    inputs=_softmax_output_grad_inputs,
    params=get_schema("SoftmaxOutput").params,
    fusion=FusionKind.OPAQUE,
    doc=(
        "SoftmaxOutput's data gradient: (output - target) * grad_scale / norm per SoftmaxOutput's options "
        "(times head_grad with out_grad); a label of the output's shape is itself the target."
    ),
)


@shape_rule("_backward_SoftmaxOutput")
def softmax_output_grad_shape(params, in_shapes, out_shapes):
    """output, head_grad and the result have one shape; the label is SoftmaxOutput's label for it."""
    output = in_shapes[0]
    for shape in list(in_shapes[2:]) + list(out_shapes):
        output = merge(output, shape, "output, head_grad and the result must have one shape")
    (output, label), _ = softmax_output_shape(params, [output, in_shapes[1]], [output])
    return [output, label] + [output] * len(in_shapes[2:]), [output]


@type_rule("_backward_SoftmaxOutput")
def softmax_output_grad_type(params, in_types, out_types):
    """output, head_grad and the result share one dtype; the label's is free."""
    (output, *heads), outs = same_type_rule(params, [in_types[0]] + list(in_types[2:]), out_types)
    return [output, in_types[1]] + heads, outs


def _class_rows(params, output: np.ndarray, label: np.ndarray):
    """The output as rows (M, K) of class probabilities, the integer label of each row (M,), and the
    label count MXNet's normalizations use; multi_output moves axis 1 last first."""
    if params["multi_output"]:
        batch, classes = output.shape[:2]
        rows = np.moveaxis(output.reshape(batch, classes, -1), 1, 2).reshape(-1, classes)
        return rows, label.reshape(-1), label.size
    width = output.shape[-1] if params["preserve_shape"] else output.size // output.shape[0]
    rows = output.reshape(-1, width)
    # MXNet reads one label per row from the flat label, however many the label holds
    return rows, label.reshape(-1)[: rows.shape[0]], label.size


def _row_gradients(params, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """MXNet's (Smooth)SoftmaxGrad: p minus the (smoothed) one-hot target, labels truncated to ints; an
    out-of-range label has no 1 in its target; with use_ignore, rows labelled ignore_label are 0."""
    classes = rows.shape[1]
    alpha = params["smooth_alpha"]
    labels = np.trunc(labels.astype(np.float64)).astype(np.int64)
    hit = np.arange(classes) == labels[:, None]
    off = alpha / (classes - 1) if alpha else 0.0
    grads = rows - np.where(hit, 1.0 - alpha, off)
    if params["use_ignore"]:
        grads[labels == int(params["ignore_label"])] = 0.0
    return grads


def _normalizer(params, label: np.ndarray, count: int, positions: int) -> float:
    """What the gradient is divided by: 1, the batch or the valid-label count (at least 1); multi_output's
    'null' and 'batch' also divide by the number of positions."""
    mode = params["normalization"]
    if mode == "valid":
        ignored = np.count_nonzero(np.trunc(label.astype(np.float64)) == int(params["ignore_label"]))
        return max(count - ignored, 1)
    batch = (label.shape[0] if params["multi_output"] else count) if mode == "batch" else 1
    return batch * (positions if params["multi_output"] else 1)


@reference("_backward_SoftmaxOutput")
def softmax_output_grad_reference(params, inputs, ctx):
    output, label = inputs[0].astype(np.float64), inputs[1]
    if label.shape == output.shape:
        grad = (output - label.astype(np.float64)) * params["grad_scale"]
    else:
        rows, labels, count = _class_rows(params, output, label)
        grads = _row_gradients(params, rows, labels)
        positions = output.size // (output.shape[0] * output.shape[1]) if params["multi_output"] else 1
        grads = grads * (params["grad_scale"] / _normalizer(params, label, count, positions))
        if params["multi_output"]:
            batch, classes = output.shape[:2]
            grads = np.moveaxis(grads.reshape(batch, -1, classes), 2, 1)
        grad = grads.reshape(output.shape)
    if params["out_grad"]:
        grad = grad * inputs[2].astype(np.float64)
    return [grad.astype(inputs[0].dtype)]


# ---------------------------------------------------------------------------------------------
# Embedding: the weight gradient, each row of out_grad added to the row of weight it was read from

define_op(
    "_backward_Embedding",
    inputs=("out_grad", "data"),
    params=get_schema("Embedding").params,
    fusion=FusionKind.OPAQUE,
    doc="Embedding's weight gradient (input_dim, output_dim): out_grad[i..., :] added to row clip(int(data[i...])).",
)


@shape_rule("_backward_Embedding")
def embedding_grad_shape(params, in_shapes, out_shapes):
    """out_grad is the data's shape plus (output_dim,); the result is (input_dim, output_dim)."""
    grad, data = in_shapes
    dim = params["output_dim"]
    if grad is not None:
        data = merge(data, tuple(grad[:-1]), "out_grad must be the data's shape plus (output_dim,)")
    if data is not None:
        grad = merge(grad, tuple(data) + (dim,), "out_grad must be the data's shape plus (output_dim,)")
    weight = merge(out_shapes[0], (params["input_dim"], dim), "the result must be (input_dim, output_dim)")
    return [grad, data], [weight]


@type_rule("_backward_Embedding")
def embedding_grad_type(params, in_types, out_types):
    """The result has out_grad's dtype; the indices' dtype is free."""
    dtype = merge(in_types[0], out_types[0], "the result must have out_grad's dtype")
    return [dtype, in_types[1]], [dtype]


@reference("_backward_Embedding")
def embedding_grad_reference(params, inputs, ctx):
    grad, data = inputs
    rows = np.clip(data.astype(np.int64), 0, params["input_dim"] - 1).reshape(-1)
    weight = np.zeros((params["input_dim"], params["output_dim"]))
    np.add.at(weight, rows, grad.reshape(-1, params["output_dim"]).astype(np.float64))
    return [weight.astype(grad.dtype)]


non_differentiable(
    "_backward_Convolution_data",
    "_backward_Convolution_weight",
    "_backward_Pooling",
    "_backward_BatchNorm",
    "_backward_SoftmaxOutput",
    "_backward_Embedding",
)

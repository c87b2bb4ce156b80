"""Loss heads (SoftmaxOutput, the regression outputs, MakeLoss, make_loss) and BlockGrad.

A loss head takes (data, label) and returns a prediction in forward; its backward ignores the
incoming head gradient and emits a fixed gradient, described in each op's doc; the label gets none.
SoftmaxOutput's gradient is the `_backward_SoftmaxOutput` op (nn_backward.py); the others are composed
of element-wise ops. The label's shape is inferred from the data's.
"""

from __future__ import annotations

import numpy as np

from .params import Param, enum, parse_bool, parse_float
from .registry import FusionKind, define_op, grad_rule, no_gradient, reference, shape_rule, type_rule
from .rules import RuleError, describe, is_known, merge, same_shape_rule, same_type_rule, size_of
from .softmax import softmax_along

NORMALIZATIONS = ("null", "batch", "valid")

# ---------------------------------------------------------------------------------------------
# SoftmaxOutput (alias Softmax)

define_op(
    "SoftmaxOutput",
    aliases=("Softmax",),
    inputs=("data", "label"),
    params=(
        Param("grad_scale", parse_float, 1.0, "scales the gradient"),
        Param("ignore_label", parse_float, -1.0, "the label use_ignore skips (and 'valid' does not count)"),
        Param("multi_output", parse_bool, False, "softmax over axis 1 of (N, C, rest...) at every position"),
        Param("use_ignore", parse_bool, False, "give rows labelled ignore_label a zero gradient"),
        Param("preserve_shape", parse_bool, False, "softmax over the last axis"),
        Param(
            "normalization", enum(*NORMALIZATIONS), "null", "divide the gradient by 1, N or the valid count"
        ),
        Param("out_grad", parse_bool, False, "multiply the gradient by the incoming head gradient"),
        Param("smooth_alpha", parse_float, 0.0, "label smoothing: 1-alpha on the true class"),
    ),
    fusion=FusionKind.OPAQUE,
    loss_head=True,
    doc=(
        "Forward: softmax of each row of data viewed as (N, size/N); over the last axis with "
        "preserve_shape; over axis 1 with multi_output. Backward: grad_data = (p - onehot(label)) * "
        "grad_scale / norm, ignoring the head gradient (unless out_grad); a label of the data's shape is "
        "a probability target, grad (p - label) * grad_scale. No gradient to the label."
    ),
)


def _softmax_output_mode(params) -> str:
    if params["multi_output"]:
        return "multi_output"
    return "preserve_shape" if params["preserve_shape"] else "default"


# mode -> label shapes accepted for data shape d (the first is the one inferred)
SOFTMAX_OUTPUT_LABELS = {
    "default": lambda d: [d[:-1]],
    "preserve_shape": lambda d: [d[:-1]],
    "multi_output": lambda d: [(d[0], size_of(d[2:])), (d[0], *d[2:]), (d[0], 1, *d[2:])],
}

# mode -> the 2-D or 3-D view of data shape d whose axis 1 the softmax runs along
SOFTMAX_OUTPUT_VIEWS = {
    "default": lambda d: (d[0], -1),
    "preserve_shape": lambda d: (-1, d[-1]),
    "multi_output": lambda d: (d[0], d[1], -1),
}


def _softmax_output_label(label, data, accepted):
    if not is_known(label):
        target = data if label is not None and len(label) == len(data) else accepted[0]
        return merge(label, target, "the label must have the data's shape without its last dim")
    if label == data or label in accepted:
        return label
    shapes = " or ".join(describe(s) for s in accepted)
    raise RuleError(
        f"label shape {describe(label)} must be {shapes} for data {describe(data)} "
        "(or the data's shape, for probability targets)"
    )


@shape_rule("SoftmaxOutput")
def softmax_output_shape(params, in_shapes, out_shapes):
    """The output has the data's shape; the label is the data's shape without its last dim
    ((N, prod(rest)) with multi_output), or the data's shape (probabilities)."""
    data = merge(in_shapes[0], out_shapes[0], "the output must have the data's shape")
    mode = _softmax_output_mode(params)
    if data is not None and mode == "multi_output" and len(data) < 2:
        raise RuleError(f"multi_output needs data (N, C, ...), got {describe(data)}")
    label = in_shapes[1]
    if is_known(data) and len(data) >= 2:
        label = _softmax_output_label(label, tuple(data), SOFTMAX_OUTPUT_LABELS[mode](tuple(data)))
    return [data, label], [data]


type_rule("SoftmaxOutput")(same_type_rule)


@reference("SoftmaxOutput")
def softmax_output_reference(params, inputs, ctx):
    data = inputs[0]
    view = data.reshape(SOFTMAX_OUTPUT_VIEWS[_softmax_output_mode(params)](data.shape))
    return [softmax_along(view, 1).reshape(data.shape).astype(data.dtype)]


@grad_rule("SoftmaxOutput")
def softmax_output_grad(g, node, out_grads):
    """By `_backward_SoftmaxOutput` from the forward output and the label; the head gradient is used only
    with out_grad (ones when none is given)."""
    out = node.output(0)
    head = []
    if node.params["out_grad"]:
        head = [out_grads[0] if out_grads[0] is not None else g.op("ones_like", out)]
    return [g.op("_backward_SoftmaxOutput", out, node.inputs[1], *head, **node.params), None]


# ---------------------------------------------------------------------------------------------
# Regression outputs: forward identity or sigmoid, gradient (out - label) or its sign


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# op -> (forward on float64, the gradient it will have)
REGRESSION_OUTPUTS = {
    "LinearRegressionOutput": (lambda x: x, "grad_scale / num_output * (out - label)"),
    "LogisticRegressionOutput": (_sigmoid, "grad_scale / num_output * (sigmoid(data) - label)"),
    "MAERegressionOutput": (lambda x: x, "grad_scale / num_output * sign(out - label)"),
}

for _name, (_, _gradient) in REGRESSION_OUTPUTS.items():
    define_op(
        _name,
        inputs=("data", "label"),
        params=(Param("grad_scale", parse_float, 1.0, "scales the gradient"),),
        fusion=FusionKind.ELEMENTWISE,
        loss_head=True,
        doc=(
            f"Forward: {'sigmoid(data)' if _name.startswith('Logistic') else 'data'}. Backward: "
            f"grad_data = {_gradient}, num_output = label.size / label.shape[0], ignoring the head "
            "gradient; no gradient to the label."
        ),
    )


def _regression_label(data: tuple, label):
    """(N,) for data (N, 1), else the data's shape; a given label needs the data's first dim and size."""
    default = (data[0],) if len(data) == 2 and data[1] == 1 else data
    if label is None or not is_known(label) and len(label) == len(default):
        return merge(label, default, "the label must have the data's shape")
    if is_known(label) and (label[0] != data[0] or size_of(label) != size_of(data)):
        raise RuleError(
            f"label shape {describe(label)} must have the data's first dim {data[0]} and size "
            f"{size_of(data)} (data {describe(data)})"
        )
    return label


@shape_rule(*REGRESSION_OUTPUTS)
def regression_shape(params, in_shapes, out_shapes):
    """The output has the data's shape; the label is (N,) for data (N, 1), else the data's shape."""
    data = merge(in_shapes[0], out_shapes[0], "the output must have the data's shape")
    label = _regression_label(tuple(data), in_shapes[1]) if is_known(data) else in_shapes[1]
    return [data, label], [data]


type_rule(*REGRESSION_OUTPUTS)(same_type_rule)


def _regression_reference(forward):
    def regression_reference(params, inputs, ctx):
        with np.errstate(over="ignore"):
            return [forward(inputs[0].astype(np.float64)).astype(inputs[0].dtype)]

    return regression_reference


for _name, (_forward, _) in REGRESSION_OUTPUTS.items():
    reference(_name)(_regression_reference(_forward))


# op -> its gradient before scaling, from the builder g and diff = out - label
REGRESSION_GRADIENTS = {
    "LinearRegressionOutput": lambda g, diff: diff,
    "LogisticRegressionOutput": lambda g, diff: diff,
    # MXNet's minus_sign: 1 where out > label, else -1 (also where they are equal)
    "MAERegressionOutput": lambda g, diff: g.op(
        "_minus_scalar",
        g.op("_mul_scalar", g.op("_greater_scalar", diff, scalar=0.0), scalar=2.0),
        scalar=1.0,
    ),
}


@grad_rule(*REGRESSION_OUTPUTS)
def regression_grad(g, node, out_grads):
    """grad_scale / num_output * f(out - label), num_output = label.size / label.shape[0]; the label is
    viewed in the output's shape and gets no gradient."""
    out, label = node.output(0), node.inputs[1]
    out_shape, label_shape = g.shape(out), g.shape(label)
    if label_shape != out_shape:
        label = g.op("Reshape", label, shape=out_shape)
    diff = REGRESSION_GRADIENTS[node.op](g, g.op("elemwise_sub", out, label))
    num_output = size_of(label_shape) // label_shape[0]
    return [g.op("_mul_scalar", diff, scalar=node.params["grad_scale"] / num_output), None]


# ---------------------------------------------------------------------------------------------
# MakeLoss, make_loss and BlockGrad: identity in forward

define_op(
    "MakeLoss",
    params=(
        Param("grad_scale", parse_float, 1.0, "the gradient sent to every element"),
        Param("valid_thresh", parse_float, 0.0, "'valid' counts elements above this"),
        Param("normalization", enum(*NORMALIZATIONS), "null", "divide by 1, N or the valid count"),
    ),
    fusion=FusionKind.ELEMENTWISE,
    loss_head=True,
    doc=(
        "Forward: identity (the data is the loss). Backward: grad_data = grad_scale, divided by N for "
        "'batch' or by the number of elements > valid_thresh for 'valid', ignoring the head gradient."
    ),
)

define_op(
    "make_loss",
    fusion=FusionKind.ELEMENTWISE,
    loss_head=True,
    doc="Forward: identity. Backward: grad_data = 1 everywhere, ignoring the head gradient.",
)

define_op(
    "BlockGrad",
    aliases=("stop_gradient",),
    fusion=FusionKind.ELEMENTWISE,
    doc="Forward: identity. Backward: grad_data = 0 (no gradient flows through).",
)

for _name in ("MakeLoss", "make_loss", "BlockGrad"):
    shape_rule(_name)(same_shape_rule)
    type_rule(_name)(same_type_rule)


@reference("MakeLoss", "make_loss", "BlockGrad")
def identity_reference(params, inputs, ctx):
    return [inputs[0].copy()]


@grad_rule("MakeLoss")
def make_loss_grad(g, node, out_grads):
    """grad_scale everywhere, divided for 'batch' by the rows of the data viewed as 2-D (every axis but the
    last: MXNet's FlatTo2D) and for 'valid' by the count of elements > valid_thresh (at least 1)."""
    data, params = node.inputs[0], node.params
    scale = params["grad_scale"]
    if params["normalization"] == "batch":
        scale /= size_of(g.shape(data)[:-1])
    grad = g.op("_mul_scalar", g.op("ones_like", data), scalar=scale)
    if params["normalization"] != "valid":
        return [grad]
    above = g.op("sum", g.op("_greater_scalar", data, scalar=params["valid_thresh"]))
    return [g.op("broadcast_div", grad, g.op("_maximum_scalar", above, scalar=1.0))]


@grad_rule("make_loss")
def make_loss_ones_grad(g, node, out_grads):
    """Ones everywhere (MXNet's ones_like), whatever the head gradient."""
    return [g.op("ones_like", node.inputs[0])]


no_gradient("BlockGrad")

"""Neural-network layers: FullyConnected, Activation (and, below, the other layers).

Each op: its schema, then its shape rule, type rule and NumPy reference, each registered right
under its function.
"""

from __future__ import annotations

import numpy as np

from .params import Param, enum, parse_bool, parse_int
from .registry import FusionKind, define_op, reference, shape_rule, type_rule
from .rules import RuleError, is_known, same_shape_rule, same_type_rule, size_of

# ---------------------------------------------------------------------------------------------
# FullyConnected: y = x . W^T + b


def _fc_inputs(params):
    return ("data", "weight") if params["no_bias"] else ("data", "weight", "bias")


define_op(
    "FullyConnected",
    inputs=_fc_inputs,
    params=(
        Param("num_hidden", parse_int, doc="number of output units"),
        Param("no_bias", parse_bool, False, "whether to leave out the bias"),
        Param("flatten", parse_bool, True, "whether to flatten all but the first axis of the input"),
    ),
    fusion=FusionKind.MATMUL,
    doc="Applies a linear transformation: y = x W^T + b.",
)


def _fc_input_dim(params, data):
    if params["flatten"]:
        return size_of(data[1:]) if len(data) > 1 else 1
    return data[-1]


@shape_rule("FullyConnected")
def fc_shape(params, in_shapes, out_shapes):
    """data (N, d1, ...) -> (N, num_hidden) with flatten; (..., k) -> (..., num_hidden) without."""
    data = in_shapes[0]
    if not is_known(data):
        return in_shapes, out_shapes
    hidden = params["num_hidden"]
    if hidden < 1:
        raise RuleError(f"num_hidden must be at least 1, got {hidden}")
    weight = (hidden, _fc_input_dim(params, data))
    out = (data[0], hidden) if params["flatten"] else tuple(data[:-1]) + (hidden,)
    inferred = [data, weight] + ([(hidden,)] if not params["no_bias"] else [])
    return inferred, [out]


type_rule("FullyConnected")(same_type_rule)


@reference("FullyConnected")
def fc_reference(params, inputs, ctx):
    data, weight = inputs[0], inputs[1]
    x = data.reshape(data.shape[0], -1) if params["flatten"] else data
    if params["flatten"] and data.ndim == 1:
        x = data.reshape(-1, 1)
    out = x @ weight.T
    if not params["no_bias"]:
        out = out + inputs[2]
    return [out.astype(data.dtype, copy=False)]


# ---------------------------------------------------------------------------------------------
# Activation


def _softrelu(x):
    return np.logaddexp(0, x)


ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softrelu": _softrelu,
    "softsign": lambda x: x / (1 + np.abs(x)),
}

define_op(
    "Activation",
    params=(Param("act_type", enum(*ACTIVATIONS), doc="the activation function"),),
    fusion=FusionKind.ELEMENTWISE,
    doc="Applies an element-wise activation: relu, sigmoid, tanh, softrelu (log(1+e^x)) or softsign.",
)


shape_rule("Activation")(same_shape_rule)

type_rule("Activation")(same_type_rule)


@reference("Activation")
def activation_reference(params, inputs, ctx):
    x = inputs[0]
    return [ACTIVATIONS[params["act_type"]](x).astype(x.dtype, copy=False)]

"""Dense layers and activations: FullyConnected, Activation, LeakyReLU and Embedding.

Each op: its schema, then its shape rule, type rule, NumPy reference and gradient rule, each registered
right under its function. (Convolution and Pooling live in conv.py; BatchNorm and Dropout in norm.py;
Embedding's weight gradient is the `_backward_Embedding` op of nn_backward.py.)
"""

from __future__ import annotations

import math

import numpy as np

from .elementwise import UNARY_DERIVATIVES, UNARY_FUNCTIONS
from .params import Param, enum, parse_bool, parse_dtype, parse_float, parse_int
from .registry import FusionKind, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import (
    RuleError,
    describe,
    first_known,
    is_known,
    merge,
    product_or_none,
    same_shape_rule,
    same_type_rule,
)

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
    """Features per row: the product of all but the first axis (flatten) or the last axis; None if unknown."""
    dims = (data[1:] if len(data) > 1 else (1,)) if params["flatten"] else data[-1:]
    return product_or_none(dims)


@shape_rule("FullyConnected")
def fc_shape(params, in_shapes, out_shapes):
    """data (N, d1, ...) -> (N, num_hidden) with flatten; (..., k) -> (..., num_hidden) without.

    Needs only the data's rank: weight (num_hidden, input_dim) and bias (num_hidden,) follow with
    what is known of input_dim, and the batch size flows back from the output (as MXNet does).
    """
    data, out = in_shapes[0], out_shapes[0]
    hidden = params["num_hidden"]
    if hidden < 1:
        raise RuleError(f"num_hidden must be at least 1, got {hidden}")
    bias = [] if params["no_bias"] else [(hidden,)]
    if data is None or len(data) == 0:
        return in_shapes, out_shapes  # MXNet infers nothing until the data's rank is known
    if params["flatten"]:
        data = (first_known(data[0], out[0] if out else None),) + tuple(data[1:])
        out = (data[0], hidden)
    else:
        lead = out[:-1] if out is not None and len(out) == len(data) else (None,) * (len(data) - 1)
        data = tuple(first_known(a, b) for a, b in zip(data[:-1], lead)) + tuple(data[-1:])
        out = tuple(data[:-1]) + (hidden,)
    return [data, (hidden, _fc_input_dim(params, data))] + bias, [out]


type_rule("FullyConnected")(same_type_rule)


@grad_rule("FullyConnected")
def fc_grad(g, node, out_grads):
    """dx = dy . W, dW = dy^T . x, db = sum of dy over rows, with x and dy viewed as matrices."""
    data, weight = node.inputs[0], node.inputs[1]
    hidden, features = g.shape(weight)
    dy = g.op("Reshape", out_grads[0], shape=(-1, hidden))
    x = g.op("Reshape", data, shape=(-1, features))
    dx = g.op("Reshape", g.op("dot", dy, weight), shape=g.shape(data))
    dw = g.op("dot", dy, x, transpose_a=True)
    return [dx, dw] + ([] if node.params["no_bias"] else [g.op("sum", dy, axis=0)])


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


# relu, sigmoid, tanh and softsign are the element-wise ops of the same names; softrelu is log(1+e^x).
SHARED_ACTIVATIONS = ("relu", "sigmoid", "tanh", "softsign")
ACTIVATIONS = {name: UNARY_FUNCTIONS[name] for name in SHARED_ACTIVATIONS} | {
    "softrelu": lambda x: np.logaddexp(0, x),
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
    wide = x.astype(np.promote_types(x.dtype, np.float32), copy=False)  # float16 exp() overflows
    return [ACTIVATIONS[params["act_type"]](wide).astype(x.dtype, copy=False)]


# act_type -> d(activation)/dx written with ops, from the builder g, input x and output y
ACTIVATION_DERIVATIVES = {name: UNARY_DERIVATIVES[name] for name in SHARED_ACTIVATIONS} | {
    "softrelu": lambda g, x, y: g.op("sigmoid", x),  # d log(1+e^x) = sigmoid(x)
}


@grad_rule("Activation")
def activation_grad(g, node, out_grads):
    x, y = node.inputs[0], node.output(0)
    derivative = ACTIVATION_DERIVATIVES[node.params["act_type"]](g, x, y)
    return [g.op("elemwise_mul", out_grads[0], derivative)]


# ---------------------------------------------------------------------------------------------
# LeakyReLU: leaky, prelu, rrelu, elu, selu, gelu

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _xelu(x, slope):
    """x where x > 0, else slope * x."""
    return np.where(x > 0, x, x * slope)


def _prelu_gamma(gamma: np.ndarray, x: np.ndarray) -> np.ndarray:
    """gamma as a factor of x: elementwise when it has x's shape, else aligned to axis 1."""
    return gamma if gamma.shape == x.shape else gamma.reshape((1, -1) + (1,) * (x.ndim - 2))


def _rrelu(x, params, inputs, ctx):
    """A random slope in [lower_bound, upper_bound] per element in training, their mean otherwise."""
    low, high = params["lower_bound"], params["upper_bound"]
    slopes = ctx.rng.uniform(low, high, x.shape) if ctx.is_train else np.full(x.shape, (low + high) / 2)
    return [_xelu(x, slopes), slopes]


# act_type -> f(x, params, inputs, ctx) -> outputs, on float64 x
LEAKY_ACTIVATIONS = {
    "leaky": lambda x, params, inputs, ctx: [_xelu(x, params["slope"])],
    "prelu": lambda x, params, inputs, ctx: [_xelu(x, _prelu_gamma(inputs[1].astype(np.float64), x))],
    "rrelu": _rrelu,
    "elu": lambda x, params, inputs, ctx: [np.where(x > 0, x, params["slope"] * np.expm1(x))],
    "selu": lambda x, params, inputs, ctx: [SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))],
    "gelu": lambda x, params, inputs, ctx: [0.5 * x * (1 + _erf(x / math.sqrt(2)))],
}


def _leaky_inputs(params):
    return ("data", "gamma") if params["act_type"] == "prelu" else ("data",)


def _leaky_output_names(params):
    return ("output", "mask") if params["act_type"] == "rrelu" else ("output",)


define_op(
    "LeakyReLU",
    inputs=_leaky_inputs,
    params=(
        Param("act_type", enum(*LEAKY_ACTIVATIONS), "leaky", "the activation function"),
        Param("slope", parse_float, 0.25, "slope for x < 0 (leaky), scale of exp(x)-1 (elu)"),
        Param("lower_bound", parse_float, 0.125, "lowest random slope (rrelu)"),
        Param("upper_bound", parse_float, 0.334, "highest random slope (rrelu)"),
    ),
    outputs=lambda params: len(_leaky_output_names(params)),
    visible_outputs=1,
    output_names=_leaky_output_names,
    input_inits={"gamma": '["Constant", {"value": 0.25}]'},
    fusion=FusionKind.ELEMENTWISE,
    draws_random=lambda params: params["act_type"] == "rrelu",  # a random slope per element
    reads_context=True,
    doc=(
        "Leaky rectifiers: leaky (x or slope x), prelu (learned slope gamma per channel), rrelu (random "
        "slope in training, the hidden output `mask` holding it), elu, selu and gelu (erf form)."
    ),
)


def _prelu_gamma_shape(data, gamma):
    """(C,) for data (N, C, ...); (1,) and the data's own shape are accepted too."""
    if data is None:
        return gamma
    if len(data) < 2:
        raise RuleError(f"prelu needs data with a channel axis 1, got {describe(data)}")
    if not is_known(gamma):
        return merge(gamma, (data[1],), "prelu's gamma must have shape (C,)")
    if gamma in ((1,), tuple(data)) or len(gamma) == 1 and data[1] in (None, gamma[0]):
        return gamma
    raise RuleError(
        f"prelu's gamma must have shape (C,) = {describe(data[1:2])}, (1,) or the data's shape "
        f"{describe(data)}; got {describe(gamma)}"
    )


@shape_rule("LeakyReLU")
def leaky_shape(params, in_shapes, out_shapes):
    """Every output has the data's shape; prelu's gamma is (C,) for data (N, C, ...)."""
    data = in_shapes[0]
    for out in out_shapes:
        data = merge(data, out, "every output must have the data's shape")
    gamma = [_prelu_gamma_shape(data, in_shapes[1])] if len(in_shapes) > 1 else []
    return [data] + gamma, [data] * len(out_shapes)


type_rule("LeakyReLU")(same_type_rule)


@reference("LeakyReLU")
def leaky_reference(params, inputs, ctx):
    x = inputs[0].astype(np.float64)
    with np.errstate(over="ignore"):
        outs = LEAKY_ACTIVATIONS[params["act_type"]](x, params, inputs, ctx)
    return [out.astype(inputs[0].dtype) for out in outs]


def _positive_or(g, y, otherwise):
    """1 where y > 0, else `otherwise` (MXNet's xelu_grad)."""
    return g.op("where", g.op("_greater_scalar", y, scalar=0.0), g.op("ones_like", y), otherwise)


def _leaky_derivative(g, node):
    """1 where y > 0, else slope: (y > 0) (1 - slope) + slope."""
    slope = node.params["slope"]
    positive = g.op("_greater_scalar", node.output(0), scalar=0.0)
    return g.op("_plus_scalar", g.op("_mul_scalar", positive, scalar=1 - slope), scalar=slope)


def _rrelu_derivative(g, node):
    """1 where y > 0, else the element's slope, held by the hidden output `mask`."""
    return _positive_or(g, node.output(0), node.output(1))


def _elu_derivative(g, node):
    """1 where y > 0, else d slope (e^x - 1) / dx = slope e^x = y + slope."""
    y = node.output(0)
    return _positive_or(g, y, g.op("_plus_scalar", y, scalar=node.params["slope"]))


def _selu_derivative(g, node):
    """lambda where y > 0, else lambda alpha e^x = y + lambda alpha; written lambda (1 or y / lambda + alpha)."""
    y = node.output(0)
    otherwise = g.op("_plus_scalar", g.op("_mul_scalar", y, scalar=1 / SELU_LAMBDA), scalar=SELU_ALPHA)
    return g.op("_mul_scalar", _positive_or(g, y, otherwise), scalar=SELU_LAMBDA)


def _gelu_derivative(g, node):
    """Phi(x) + x phi(x): the standard normal's cdf plus x times its density."""
    x = node.inputs[0]
    erf = g.op("erf", g.op("_mul_scalar", x, scalar=math.sqrt(0.5)))
    cdf = g.op("_mul_scalar", g.op("_plus_scalar", erf, scalar=1.0), scalar=0.5)
    gauss = g.op("exp", g.op("_mul_scalar", g.op("square", x), scalar=-0.5))
    density = g.op("_mul_scalar", gauss, scalar=1 / math.sqrt(2 * math.pi))
    return g.op("elemwise_add", cdf, g.op("elemwise_mul", x, density))


# act_type -> d(activation)/dx built by g for the node. As in MXNet's backward, leaky, rrelu, elu and selu
# read the output y (so a negative slope behaves as in MXNet) and gelu reads the data.
LEAKY_DERIVATIVES = {
    "leaky": _leaky_derivative,
    "rrelu": _rrelu_derivative,
    "elu": _elu_derivative,
    "selu": _selu_derivative,
    "gelu": _gelu_derivative,
}


def _prelu_grad(g, node, dy):
    """dx = dy where x > 0, else dy gamma; dgamma = dy x where x <= 0, summed to gamma's shape (from the data,
    as MXNet's prelu backward)."""
    x, gamma = node.inputs
    shape, gamma_shape = g.shape(x), g.shape(gamma)
    view = gamma_shape if gamma_shape == shape else (1, gamma_shape[0]) + (1,) * (len(shape) - 2)
    negative = g.op("_lesser_equal_scalar", x, scalar=0.0)
    slopes = g.op(
        "broadcast_add",
        g.op("_greater_scalar", x, scalar=0.0),
        g.op("broadcast_mul", negative, g.op("Reshape", gamma, shape=view)),
    )
    dgamma = g.sum_to(g.op("elemwise_mul", dy, g.op("elemwise_mul", x, negative)), view, shape)
    return [g.op("elemwise_mul", dy, slopes), g.op("Reshape", dgamma, shape=gamma_shape)]


@grad_rule("LeakyReLU")
def leaky_grad(g, node, out_grads):
    if out_grads[0] is None:
        return [None] * len(node.inputs)
    if node.params["act_type"] == "prelu":
        return _prelu_grad(g, node, out_grads[0])
    return [g.op("elemwise_mul", out_grads[0], LEAKY_DERIVATIVES[node.params["act_type"]](g, node))]


# ---------------------------------------------------------------------------------------------
# Embedding: rows of weight picked by integer indices

define_op(
    "Embedding",
    inputs=("data", "weight"),
    params=(
        Param("input_dim", parse_int, doc="vocabulary size: the number of rows of weight"),
        Param("output_dim", parse_int, doc="embedding size: the number of columns of weight"),
        Param("dtype", parse_dtype, "float32", "dtype of weight and output when weight's is not known"),
        Param("sparse_grad", parse_bool, False, "row-sparse gradient in MXNet; dense in Ember"),
    ),
    fusion=FusionKind.OPAQUE,
    doc="out[i..., :] = weight[clip(int(data[i...]), 0, input_dim - 1), :].",
)


@shape_rule("Embedding")
def embedding_shape(params, in_shapes, out_shapes):
    """data (any shape) -> data.shape + (output_dim,); weight (input_dim, output_dim)."""
    rows, dim = params["input_dim"], params["output_dim"]
    if rows < 1 or dim < 1:
        raise RuleError(f"input_dim and output_dim must be positive, got {rows} and {dim}")
    data, out = in_shapes[0], out_shapes[0]
    if out is not None:
        data = merge(data, tuple(out[:-1]), "the output must be the data's shape plus (output_dim,)")
    if data is not None:
        out = merge(out, tuple(data) + (dim,), "the output must be the data's shape plus (output_dim,)")
    return [data, (rows, dim)], [out]


@type_rule("Embedding")
def embedding_type(params, in_types, out_types):
    """The output has weight's dtype (the `dtype` parameter when that is unknown); indices are free."""
    dtype = merge(in_types[1], out_types[0], "the output must have weight's dtype") or params["dtype"]
    return [in_types[0], dtype], [dtype]


@reference("Embedding")
def embedding_reference(params, inputs, ctx):
    data, weight = inputs
    rows = np.clip(data.astype(np.int64), 0, params["input_dim"] - 1)
    return [weight[rows]]


@grad_rule("Embedding")
def embedding_grad(g, node, out_grads):
    """No gradient to the indices; the weight's is `_backward_Embedding` (nn_backward.py): a scatter-add of
    the rows of dy onto the rows they were read from."""
    return [None, g.op("_backward_Embedding", out_grads[0], node.inputs[0], **node.params)]

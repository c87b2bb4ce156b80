"""Lowering rules of the activations, the softmax family, the loss heads, BlockGrad and Dropout
(ops/nn.py, ops/softmax.py, ops/loss.py, ops/nn_backward.py's `_backward_SoftmaxOutput`, ops/norm.py's
Dropout).

Activations are scalar formulas (the elementwise family's where they are the same function), computed
in the dtype their reference uses: Activation in the data's dtype promoted with float32, LeakyReLU and
the loss heads in float64. A softmax materializes each row's maximum and its sum of exponentials
(one stored reduction each), then its output is a lazy formula reading them. Dropout and rrelu draw
from the program's random stream, one number per element of the mask they output, so every reader of
the mask (the output, the backward pass) sees the same draw.
"""

from __future__ import annotations

import math
from math import prod

import numpy as np

from ..ops.loss import REGRESSION_OUTPUTS, SOFTMAX_OUTPUT_VIEWS, _softmax_output_mode
from ..ops.nn import ACTIVATIONS, LEAKY_ACTIVATIONS, SELU_ALPHA, SELU_LAMBDA, SHARED_ACTIVATIONS
from ..ops.registry import lowering
from ..ops.rules import normalize_axis
from ..ops.softmax import SOFTMAX_ACTIVATION_AXIS
from . import expr as E
from .expr import Expr
from .exprmath import c
from .rules_elementwise import UNARY_FORMULAS
from .tensor import Tensor, broadcast_to, cast_tensor, constant, pointwise, ravel, reshape

F64 = "float64"


def f64(value) -> Expr:
    return E.const(value, F64)


def through(formula, x: Expr, wide: str) -> Expr:
    """`formula` applied to `x` widened to `wide`, the result cast back to `x`'s dtype."""
    return E.cast(formula(E.cast(x, wide)), x.dtype)


# -- Activation ------------------------------------------------------------------------------------


def _softrelu(x):
    """log(1 + e^x) as NumPy's logaddexp(0, x) computes it: max(x, 0) + log1p(e^-|x|)."""
    return E.add(E.maximum(x, c(0, x)), E.call("log1p", E.call("exp", E.call("neg", E.call("abs", x)))))


ACTIVATION_FORMULAS = {name: UNARY_FORMULAS[name] for name in SHARED_ACTIVATIONS} | {"softrelu": _softrelu}
assert set(ACTIVATION_FORMULAS) == set(ACTIVATIONS), "every act_type needs a formula"


def activation_dtype(dtype: str) -> str:
    """Where Activation's reference computes: the data's dtype promoted with float32 (float32 for
    float16 and 8-bit data, float64 for 32- and 64-bit integers)."""
    return np.promote_types(dtype, np.float32).name


@lowering("Activation")
def lower_activation(ctx, node, inputs):
    formula = ACTIVATION_FORMULAS[node.params["act_type"]]
    return [pointwise(lambda x: through(formula, x, activation_dtype(x.dtype)), inputs[0])]


# -- LeakyReLU: on float64 elements, as its reference ----------------------------------------------


def _xelu(x, slope):
    """x where x > 0, else x * slope."""
    return E.select(E.compare("gt", x, f64(0)), x, E.mul(x, slope))


def _leaky_slopes(ctx, node, inputs, shape):
    return constant(node.params["slope"], shape, F64)


def _prelu_slopes(ctx, node, inputs, shape):
    """gamma elementwise when it has the data's shape, else one value per channel (axis 1)."""
    gamma = inputs[1]
    if gamma.shape != shape:
        gamma = broadcast_to(reshape(gamma, (1, gamma.size) + (1,) * (len(shape) - 2)), shape)
    return cast_tensor(gamma, F64)


def _rrelu_slopes(ctx, node, inputs, shape):
    """A uniform slope in [lower_bound, upper_bound) per element in training, their mean otherwise."""
    low, high = node.params["lower_bound"], node.params["upper_bound"]
    if not ctx.is_train:
        return constant((low + high) / 2, shape, F64)
    draw = ctx.random_stream()
    return Tensor(
        shape, F64, lambda idx: E.add(f64(low), E.mul(f64(high - low), E.cast(draw(idx.flat), F64)))
    )


# act_type -> (ctx, node, inputs, shape) -> the float64 slope tensor of x <= 0
LEAKY_SLOPES = {"leaky": _leaky_slopes, "prelu": _prelu_slopes, "rrelu": _rrelu_slopes}


def _expm1_below_zero(x, scale: float):
    """x where x > 0, else scale * (e^x - 1)."""
    return E.select(E.compare("gt", x, f64(0)), x, E.mul(f64(scale), E.call("expm1", x)))


# act_type -> formula of one float64 element, given the params
LEAKY_CURVES = {
    "elu": lambda x, params: _expm1_below_zero(x, params["slope"]),
    "selu": lambda x, params: E.mul(f64(SELU_LAMBDA), _expm1_below_zero(x, SELU_ALPHA)),
    "gelu": lambda x, params: E.mul(
        E.mul(f64(0.5), x), E.add(f64(1), E.call("erf", E.div(x, f64(math.sqrt(2)))))
    ),
}
assert set(LEAKY_SLOPES) | set(LEAKY_CURVES) == set(LEAKY_ACTIVATIONS), "every act_type needs a rule"


@lowering("LeakyReLU")
def lower_leaky_relu(ctx, node, inputs):
    """The output and, for rrelu, the hidden `mask` holding each element's slope."""
    data, act = inputs[0], node.params["act_type"]
    x = cast_tensor(data, F64)
    if act in LEAKY_CURVES:
        outputs = [pointwise(lambda v: LEAKY_CURVES[act](v, node.params), x)]
    else:
        slopes = LEAKY_SLOPES[act](ctx, node, inputs, data.shape)
        outputs = [pointwise(_xelu, x, slopes), slopes]
    return [cast_tensor(t, data.dtype) for t in outputs[: node.num_outputs]]


# -- softmax family ----------------------------------------------------------------------------------


def _along(dims, axis: int, position: Expr) -> tuple:
    """`dims` with the one of `axis` replaced by `position`."""
    return (*dims[:axis], position, *dims[axis + 1 :])


def _row_reduction(ctx, op: str, shape, axis: int, element) -> Tensor:
    """`op` of the float64 `element(dims)` along `axis`, stored once per row: `shape` with `axis` set to 1."""
    rows = (*shape[:axis], 1, *shape[axis + 1 :])

    def at(idx):
        return ctx.reduce(op, shape[axis], lambda r: element(_along(idx.dims, axis, r)))

    return ctx.store(Tensor(rows, F64, at))


def _is_finite(x: Expr) -> Expr:
    return E.compare("lt", E.call("abs", x), f64(math.inf))


def _valid_positions(length: Tensor | None, shape, axis: int):
    """dims -> whether the element is among the first length[row] of its row (None: all are)."""
    if length is None:
        return None
    rest = (*shape[:axis], *shape[axis + 1 :])

    def valid(dims):
        limit = length.flat(ravel((*dims[:axis], *dims[axis + 1 :]), rest))
        return E.compare("lt", dims[axis], E.cast(limit, "int64"))

    return valid


def softmax_along(ctx, x: Tensor, axis: int, temperature=None, length=None, log=False) -> Tensor:
    """softmax (or log_softmax) of x / temperature along `axis` in float64, as ops.softmax.softmax_along:
    each row's maximum and sum of exponentials are stored, the output reads them. With `length` only
    the first length[row] positions count; the others are 0."""
    shape = x.shape
    axis = normalize_axis(axis, len(shape))
    valid = _valid_positions(length, shape, axis)

    def scaled(dims):
        v = E.cast(x(*dims), F64)
        v = v if temperature is None else E.div(v, f64(temperature))
        return v if valid is None else E.select(valid(dims), v, f64(-math.inf))

    def row(stats: Tensor, dims) -> Expr:
        return stats(*_along(dims, axis, E.index(0)))

    peak = _row_reduction(ctx, "max", shape, axis, scaled)

    def shifted(dims):
        top = row(peak, dims)
        return E.sub(scaled(dims), E.select(_is_finite(top), top, f64(0)))

    total = _row_reduction(ctx, "sum", shape, axis, lambda dims: E.call("exp", shifted(dims)))

    def at(idx):
        s, t = shifted(idx.dims), row(total, idx.dims)
        y = E.sub(s, E.call("log", t)) if log else E.div(E.call("exp", s), t)
        return y if valid is None else E.select(valid(idx.dims), y, f64(0))

    return Tensor(shape, F64, at)


@lowering("softmax", "log_softmax")
def lower_softmax(ctx, node, inputs):
    params = node.params
    length = inputs[1] if len(inputs) > 1 else None
    y = softmax_along(ctx, inputs[0], params["axis"], params["temperature"], length, node.op == "log_softmax")
    return [cast_tensor(y, ctx.out_types[0][1])]


@lowering("SoftmaxActivation")
def lower_softmax_activation(ctx, node, inputs):
    data = inputs[0]
    return [cast_tensor(softmax_along(ctx, data, SOFTMAX_ACTIVATION_AXIS[node.params["mode"]]), data.dtype)]


# -- SoftmaxOutput -------------------------------------------------------------------------------------


def _resolved(view, size: int) -> tuple[int, ...]:
    """A reshape target with its -1 replaced by what makes it hold `size` elements."""
    known = prod(d for d in view if d != -1)
    return tuple(size // max(known, 1) if d == -1 else d for d in view)


@lowering("SoftmaxOutput")
def lower_softmax_output(ctx, node, inputs):
    """The softmax along axis 1 of the data's 2-D or 3-D view; the label is not read."""
    data = inputs[0]
    view = _resolved(SOFTMAX_OUTPUT_VIEWS[_softmax_output_mode(node.params)](data.shape), data.size)
    probabilities = softmax_along(ctx, reshape(data, view), 1)
    return [cast_tensor(reshape(probabilities, data.shape), data.dtype)]


def _class_view(params, shape) -> tuple[int, int, int]:
    """The output as (rows, classes, positions): each (row, position) has one label, at flat position
    row * positions + position of the label; multi_output's classes are axis 1."""
    size = prod(shape)
    if params["multi_output"]:
        return shape[0], shape[1], size // max(shape[0] * shape[1], 1)
    width = shape[-1] if params["preserve_shape"] else size // max(shape[0], 1)
    return size // max(width, 1), width, 1


def _label_class(label: Tensor, position: Expr) -> Expr:
    """The label at flat `position`, truncated to an int64 class."""
    return E.cast(E.call("trunc", E.cast(label.flat(position), F64)), "int64")


def _gradient_scale(ctx, params, label: Tensor, positions: int) -> Expr:
    """grad_scale / the normalizer: 1, the batch (times the positions for multi_output) or the count of
    labels that are not ignore_label (at least 1), counted by a stored reduction."""
    mode, multi = params["normalization"], params["multi_output"]
    if mode == "valid":
        ignore = E.index(int(params["ignore_label"]))
        ignored = ctx.reduce(
            "sum", label.size, lambda r: E.cast(E.compare("eq", _label_class(label, r), ignore), "int64")
        )
        valid = E.maximum(E.sub(E.index(label.size), ignored), E.index(1))
        scale = Tensor((1,), F64, lambda idx: E.div(f64(params["grad_scale"]), E.cast(valid, F64)))
        return ctx.store(scale).flat(E.index(0))
    batch = (label.shape[0] if multi else label.size) if mode == "batch" else 1
    return f64(params["grad_scale"] / (batch * (positions if multi else 1)))


def _class_gradient(ctx, params, output: Tensor, label: Tensor) -> Tensor:
    """(p - the smoothed one-hot target of the row's label) * scale, 0 on ignored rows (use_ignore)."""
    rows, classes, positions = _class_view(params, output.shape)
    probabilities = reshape(output, (rows, classes, positions))
    alpha = params["smooth_alpha"]
    off = alpha / (classes - 1) if alpha else 0.0
    scale = _gradient_scale(ctx, params, label, positions)
    ignore = E.index(int(params["ignore_label"]))

    def at(idx):
        row, k, position = idx.dims
        cls = _label_class(label, E.add(E.mul(row, E.index(positions)), position))
        target = E.select(E.compare("eq", cls, k), f64(1 - alpha), f64(off))
        grad = E.sub(E.cast(probabilities(row, k, position), F64), target)
        if params["use_ignore"]:
            grad = E.select(E.compare("eq", cls, ignore), f64(0), grad)
        return E.mul(grad, scale)

    return reshape(Tensor((rows, classes, positions), F64, at), output.shape)


@lowering("_backward_SoftmaxOutput")
def lower_softmax_output_grad(ctx, node, inputs):
    """(output - target) * grad_scale / norm; a label of the output's shape is the target itself."""
    params, output, label = node.params, inputs[0], inputs[1]
    if label.shape == output.shape:
        scale = f64(params["grad_scale"])
        grad = pointwise(
            lambda p, y: E.mul(E.sub(E.cast(p, F64), E.cast(y, F64)), scale), output, label, dtype=F64
        )
    else:
        grad = _class_gradient(ctx, params, output, label)
    if params["out_grad"]:
        grad = pointwise(lambda g, head: E.mul(g, E.cast(head, F64)), grad, inputs[2])
    return [cast_tensor(grad, output.dtype)]


# -- regression heads, MakeLoss, make_loss, BlockGrad: the forward pass ---------------------------------

# op -> formula of one float64 element (its reference's forward)
REGRESSION_FORMULAS = {
    "LinearRegressionOutput": lambda x: x,
    "LogisticRegressionOutput": UNARY_FORMULAS["sigmoid"],
    "MAERegressionOutput": lambda x: x,
}
assert set(REGRESSION_FORMULAS) == set(REGRESSION_OUTPUTS), "every regression output needs a formula"


@lowering(*REGRESSION_FORMULAS)
def lower_regression_output(ctx, node, inputs):
    formula = REGRESSION_FORMULAS[node.op]
    return [pointwise(lambda x: through(formula, x, F64), inputs[0])]


@lowering("MakeLoss", "make_loss", "BlockGrad")
def lower_identity(ctx, node, inputs):
    return [inputs[0]]


# -- Dropout ------------------------------------------------------------------------------------------


def _dropout_factors(ctx, p: float, shape) -> Tensor:
    """The float64 mask: 1/(1-p) where the element's uniform draw is >= p, else 0 (all 0 for p >= 1)."""
    if p >= 1:
        return constant(0.0, shape, F64)
    draw, kept = ctx.random_stream(), f64(1 / (1 - p))
    return Tensor(
        shape, F64, lambda idx: E.select(E.compare("ge", E.cast(draw(idx.flat), F64), f64(p)), kept, f64(0))
    )


@lowering("Dropout")
def lower_dropout(ctx, node, inputs):
    """In training (or mode='always') the data times the mask, shared along `axes`, and the mask; else
    the data and ones. The mask is lazy: the output and the mask read the same draw of each element."""
    data = inputs[0]
    (_, dtype), (mask_shape, _) = ctx.out_types
    if not (ctx.is_train or node.params["mode"] == "always"):
        return [data, constant(1, mask_shape, dtype)]
    factors = _dropout_factors(ctx, node.params["p"], mask_shape)
    output = pointwise(
        lambda x, factor: E.cast(E.mul(E.cast(x, F64), factor), dtype),
        data,
        broadcast_to(factors, data.shape),
    )
    return [output, cast_tensor(factors, dtype)]

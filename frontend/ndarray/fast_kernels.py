"""Fast paths of the imperative engine: an op's NumPy computation specialized once per call signature.

A registry reference rule is written for every dtype and shape (float math on integers widened, float16
in float32, operands broadcast explicitly, results checked for aliasing), which costs 5-20 us on a small
array. For float32/float64 operands of one dtype most of that work is known to be unnecessary when the
call is prepared, so the engine asks `fast_kernel(op, params, dtypes, shapes)` once per call signature
and, where a specialization exists, runs it instead. The specializations are the registry's own
pointwise formulas (`ops/elementwise.py`'s POINTWISE) called without the generic wrapping, and NumPy's
ufuncs for the few ops whose formula is exactly one ufunc; `tests/test_imperative_equivalence.py` checks
each against the reference rule bit for bit. Anything else (integers, float16, mixed dtypes, other ops)
returns None and runs the reference rule.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from ember.compiler.ops.elementwise import POINTWISE
from ember.compiler.ops.mathspace import NumpyMath
from ember.compiler.ops.reduce import REDUCERS, reduce_shape
from ember.compiler.ops.rules import normalize_axis, reduce_axes

FLOAT_DTYPES = (np.dtype("float32"), np.dtype("float64"))

# NumPy reports float overflow and division by zero as RuntimeWarnings raised from the frame that
# called the ufunc; MXNet gives inf/nan silently, as the reference rules do (np.errstate), so warnings
# raised from this module and from the formulas it calls (elementwise.py's entries, mathspace.py's
# functions) are ignored. (np.errstate itself would cost 1.5 us a call.)
warnings.filterwarnings(
    "ignore", category=RuntimeWarning, module=rf"({__name__}|ember\.compiler\.ops\.(elementwise|mathspace))$"
)

# op -> (ufunc, scalar on the left): ops whose formula is exactly this one ufunc on floats
SAME_DTYPE_UFUNCS = {
    "elemwise_add": np.add,
    "broadcast_add": np.add,
    "elemwise_sub": np.subtract,
    "broadcast_sub": np.subtract,
    "elemwise_mul": np.multiply,
    "broadcast_mul": np.multiply,
    "elemwise_div": np.divide,  # the formula's m.div is np.divide on floats
    "broadcast_div": np.divide,
}
# op -> the one NumPy call its formula makes on a float array
UNARY_CALLS = {
    "relu": lambda x: np.maximum(x, 0),
    "negative": np.negative,
    "exp": np.exp,
    "square": np.square,
}
SCALAR_UFUNCS = {
    "_plus_scalar": (np.add, False),
    "_minus_scalar": (np.subtract, False),
    "_rminus_scalar": (np.subtract, True),
    "_mul_scalar": (np.multiply, False),
    "_div_scalar": (np.divide, False),
    "_rdiv_scalar": (np.divide, True),
}
Kernel = Callable[[list], list]


def fast_kernel(op: str, params: dict, dtypes: tuple, shapes: tuple | None = None) -> Kernel | None:
    """A function from the input arrays to the list of every output, equal to `op`'s reference rule
    for inputs of these dtypes (and, where given, shapes); None where no specialization applies."""
    if shapes is not None and op in SHAPED_KERNELS and dtypes and dtypes[0] in FLOAT_DTYPES:
        return SHAPED_KERNELS[op](op, params, shapes, dtypes)
    if not dtypes or dtypes[0] not in FLOAT_DTYPES or any(d != dtypes[0] for d in dtypes):
        return None
    if op in SAME_DTYPE_UFUNCS:
        return _ufunc_kernel(SAME_DTYPE_UFUNCS[op])
    if op in UNARY_CALLS:
        call = UNARY_CALLS[op]
        return lambda arrays: [call(arrays[0])]
    if op in SCALAR_UFUNCS:
        ufunc, on_left = SCALAR_UFUNCS[op]
        return _scalar_kernel(ufunc, dtypes[0].type(params["scalar"]), on_left)
    if op in POINTWISE and op not in ("Cast", "where"):  # where: a 1-D condition selects rows
        return _formula_kernel(POINTWISE[op], params)
    return None


# A ufunc kernel also has `into(arrays, out)`, writing its one output into `out` (an array of the
# output's shape and dtype): `w -= lr * g` then allocates nothing.


def _ufunc_kernel(ufunc) -> Kernel:
    def kernel(arrays):
        return [ufunc(arrays[0], arrays[1])]

    kernel.into = lambda arrays, out: ufunc(arrays[0], arrays[1], out=out)
    return kernel


def _scalar_kernel(ufunc, scalar, on_left: bool) -> Kernel:
    if on_left:
        kernel = lambda arrays: [ufunc(scalar, arrays[0])]  # noqa: E731
        kernel.into = lambda arrays, out: ufunc(scalar, arrays[0], out=out)
    else:
        kernel = lambda arrays: [ufunc(arrays[0], scalar)]  # noqa: E731
        kernel.into = lambda arrays, out: ufunc(arrays[0], scalar, out=out)
    return kernel


def _formula_kernel(formula, params: dict) -> Kernel:
    """The registry formula itself; NumPy broadcasts operands of broadcastable shapes as MXNet's
    broadcast ops do (the shape rules have accepted them already)."""

    def kernel(arrays):
        out = formula(NumpyMath, params, *arrays)
        for array in arrays:
            if out is array:  # a formula may hand back an operand (add_n of one input)
                return [out.copy()]
        return [out]

    return kernel


# Kernels that need the input shapes (known per prepared signature): the reference's shape work done once.


def _reduce_kernel(op: str, params: dict, shapes: tuple, dtypes: tuple) -> Kernel | None:
    """sum/mean/max/...: the reference's one NumPy reduction, axes and output shape computed once
    (empty inputs keep the reference, whose errors name the op)."""
    function, shape = REDUCERS[op], shapes[0]
    if 0 in shape:
        return None
    axes = reduce_axes(params["axis"], len(shape), params["exclude"])
    out_shape = reduce_shape(params, shape)
    return lambda arrays: [function(arrays[0], axis=axes, keepdims=True).reshape(out_shape)]


def _pick_kernel(op: str, params: dict, shapes: tuple, dtypes: tuple) -> Kernel | None:
    """pick along the last axis of a 2-D array in clip mode: one fancy-index gather."""
    data, index = shapes
    if len(data) != 2 or normalize_axis(params["axis"], 2) != 1 or params["mode"] != "clip":
        return None
    rows, size = data
    if rows == 0 or size == 0:
        return None
    keep = (rows, 1) if params["keepdims"] else (rows,)
    if tuple(index) not in ((rows,), (rows, 1)):
        return None
    row_index = np.arange(rows)

    def kernel(arrays):
        columns = np.clip(arrays[1].reshape(rows).astype(np.int64), 0, size - 1)
        return [arrays[0][row_index, columns].reshape(keep)]

    return kernel


def _fully_connected_kernel(op: str, params: dict, shapes: tuple, dtypes: tuple) -> Kernel | None:
    """FullyConnected on a 2-D input of one float dtype: the reference's product, with the bias added
    into the product's own memory (the same float additions, one array fewer)."""
    if len(shapes[0]) != 2 or any(d != dtypes[0] for d in dtypes):
        return None
    if params["no_bias"]:
        return lambda arrays: [arrays[0] @ arrays[1].T]

    def kernel(arrays):
        out = arrays[0] @ arrays[1].T
        out += arrays[2]
        return [out]

    return kernel


def _dot_kernel(op: str, params: dict, shapes: tuple, dtypes: tuple) -> Kernel | None:
    """dot of two 2-D arrays of one float dtype: the reference's one product of (transposed) views."""
    if len(shapes[0]) != 2 or len(shapes[1]) != 2 or dtypes[0] != dtypes[1]:
        return None
    ta, tb = params["transpose_a"], params["transpose_b"]
    return lambda arrays: [(arrays[0].T if ta else arrays[0]) @ (arrays[1].T if tb else arrays[1])]


def _broadcast_to_kernel(op: str, params: dict, shapes: tuple, dtypes: tuple) -> Kernel:
    """broadcast_to: the target shape worked out once, the values copied into a new array."""
    have = shapes[0]
    shape = tuple(h if want == 0 else want for h, want in zip(have, params["shape"]))
    dtype = dtypes[0]

    def kernel(arrays):
        out = np.empty(shape, dtype)
        out[...] = arrays[0]
        return [out]

    return kernel


def _scatter_add_axis_kernel(op: str, params: dict, shapes: tuple, dtypes: tuple) -> Kernel | None:
    """pick's gradient (one clipped index per row of a 2-D gradient, scattered along the last axis):
    each output element receives at most one value, so the scatter-add is one assignment of 0 + value
    (which is what adding into zeros gives, -0.0 included)."""
    grad, index = shapes
    if len(grad) != 2 or grad[1] != 1 or tuple(index) != tuple(grad) or params["mode"] != "clip":
        return None
    if normalize_axis(params["axis"], 2) != 1 or grad[0] == 0:
        return None
    rows, size, dtype = grad[0], params["size"], dtypes[0]
    row_index = np.arange(rows)

    def kernel(arrays):
        out = np.zeros((rows, size), dtype)
        columns = np.clip(arrays[1].reshape(rows).astype(np.int64), 0, size - 1)
        out[row_index, columns] = np.add(arrays[0].reshape(rows), 0.0, dtype=dtype)
        return [out]

    return kernel


def _softmax_kernel(op: str, params: dict, shapes: tuple, dtypes: tuple) -> Kernel | None:
    """softmax/log_softmax without `length`: the reference's float64 steps (ops/softmax.py
    `softmax_along`), axis and output dtype resolved once."""
    if params["use_length"] or 0 in shapes[0]:
        return None
    axis = normalize_axis(params["axis"], len(shapes[0]))
    scale = 1.0 if params["temperature"] is None else params["temperature"]
    out_dtype = np.dtype(params["dtype"] or dtypes[0])
    log = op == "log_softmax"

    def kernel(arrays):
        x = arrays[0].astype(np.float64) / scale
        peak = np.max(x, axis=axis, keepdims=True)
        shifted = x - np.where(np.isfinite(peak), peak, 0)
        total = np.sum(np.exp(shifted), axis=axis, keepdims=True)
        out = shifted - np.log(total) if log else np.exp(shifted) / total
        return [out.astype(out_dtype)]

    return kernel


SHAPED_KERNELS = {
    "softmax": _softmax_kernel,
    "log_softmax": _softmax_kernel,
    **{name: _reduce_kernel for name in REDUCERS},
    "pick": _pick_kernel,
    "FullyConnected": _fully_connected_kernel,
    "dot": _dot_kernel,
    "broadcast_to": _broadcast_to_kernel,
    "_scatter_add_axis": _scatter_add_axis_kernel,
}

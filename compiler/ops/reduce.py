"""Reductions: sum, mean, max, min, prod, nansum, nanprod (axis/keepdims/exclude), argmax, argmin, norm.

Legacy shape semantics: a reduction over every axis without keepdims gives shape (1,), never a 0-d
array. Results keep the input dtype (argmax/argmin return float indices in it, as MXNet 1.x does);
integer sums and means are computed as MXNet's integer kernels compute them, then cast back.
Shapes are inferred forward only, as in MXNet.
"""

from __future__ import annotations

import numpy as np

from .mathspace import as_float
from .params import Param, enum, optional, parse_axes, parse_bool, parse_int
from .registry import FusionKind, define_op, grad_rule, no_gradient, reference, shape_rule, type_rule
from .rules import RuleError, normalize_axis, reduce_axes, same_type_rule, size_of


def reduced_shape(shape: tuple, axis, keepdims: bool, exclude: bool = False) -> tuple:
    """MXNet's ReduceAxesShapeImpl on a partial shape of known rank."""
    ndim = len(shape)
    if axis is None or axis == ():
        return (1,) * ndim if keepdims else (1,)
    axes = sorted(normalize_axis(a, ndim, "reduction axis") for a in axis)
    if len(set(axes)) != len(axes):
        raise RuleError(f"reduction axes {tuple(axis)} have duplicates")
    kept = [i for i in range(ndim) if (i in axes) == exclude]
    if keepdims:
        return tuple(shape[i] if i in kept else 1 for i in range(ndim))
    return tuple(shape[i] for i in kept) or (1,)


def reduced_axis_shape(shape: tuple, axis: int | None, keepdims: bool) -> tuple:
    """MXNet's ReduceAxisShapeImpl (argmax, pick): one axis, or every axis when `axis` is None."""
    if axis is None or len(shape) == 1:
        return (1,) * len(shape) if keepdims else (1,)
    return reduced_shape(shape, (axis,), keepdims)


def _forward(shape_of):
    """A shape rule computing the output from the input's rank-known partial shape."""

    def rule(params, in_shapes, out_shapes):
        if in_shapes[0] is None:
            return in_shapes, out_shapes
        return in_shapes, [shape_of(params, in_shapes[0])]

    rule.__doc__ = shape_of.__doc__
    return rule


# ---------------------------------------------------------------------------------------------
# sum, mean, max, min, prod, nansum, nanprod

REDUCERS = {
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
    "prod": np.prod,
    "nansum": np.nansum,
    "nanprod": np.nanprod,
}
REDUCER_ALIASES = {"sum": ("sum_axis",), "max": ("max_axis",), "min": ("min_axis",)}

REDUCE_PARAMS = (
    Param("axis", parse_axes, None, "axis or axes to reduce; None or () reduces all"),
    Param("keepdims", parse_bool, False, "whether reduced axes stay as size-1 dims"),
    Param("exclude", parse_bool, False, "whether to reduce every axis except `axis`"),
)


def reduce_shape(params, data):
    """The input without the reduced axes (size 1 with keepdims; (1,) when nothing is left)."""
    return reduced_shape(data, params["axis"], params["keepdims"], params["exclude"])


def _reduce_reference(name: str):
    function = REDUCERS[name]

    def reduce_reference(params, inputs, ctx):
        x = inputs[0]
        axes = reduce_axes(params["axis"], x.ndim, params["exclude"])
        work = x if x.dtype.kind in "iu" and name != "mean" else as_float(x)
        with np.errstate(all="ignore"):
            out = function(work, axis=axes, keepdims=True)
        return [out.reshape(reduce_shape(params, x.shape)).astype(x.dtype, copy=False)]

    reduce_reference.__name__ = f"{name}_reference"
    return reduce_reference


for _name in REDUCERS:
    define_op(
        _name,
        aliases=REDUCER_ALIASES.get(_name, ()),
        params=REDUCE_PARAMS,
        fusion=FusionKind.REDUCE,
        doc=f"Reduces the given axes with {_name}; reducing every axis gives shape (1,).",
    )
    shape_rule(_name)(_forward(reduce_shape))
    type_rule(_name)(same_type_rule)
    reference(_name)(_reduce_reference(_name))


def kept_shape(shape: tuple, axis, exclude: bool = False) -> tuple:
    """`shape` with the reduced axes as size-1 dims: the output's shape under keepdims."""
    axes = reduce_axes(axis, len(shape), exclude)
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


class _Reduced:
    """The pieces a reduction's gradient is built from: x, and y and dy reshaped to keepdims form."""

    def __init__(self, g, node, out_grads):
        self.g, self.x = g, node.inputs[0]
        self.shape = g.shape(self.x)
        self.kept = kept_shape(self.shape, node.params["axis"], node.params.get("exclude", False))
        self.out_shape = g.shape(node.output(0))
        self.y, self.dy = node.output(0), out_grads[0]

    def keep(self, value):
        """An output-shaped value reshaped to keepdims form, ready to broadcast against x."""
        return value if self.out_shape == self.kept else self.g.op("Reshape", value, shape=self.kept)

    def spread(self, value):
        """An output-shaped value broadcast back to x's shape."""
        kept = self.keep(value)
        return kept if self.kept == self.shape else self.g.op("broadcast_to", kept, shape=self.shape)


# reduction -> (g, r: _Reduced) -> dx. max/min pass dy to every element equal to the extreme (ties
# included, as MXNet's mshadow_op::eq); prod's and nanprod's dx = dy * y / x (rdiv) is undefined at
# x = 0, as in MXNet; the nan* ones give NaN elements no gradient (`_equal(x, x)` is 0 there).
REDUCE_GRADIENTS = {
    "sum": lambda g, r: r.spread(r.dy),
    "mean": lambda g, r: r.spread(
        g.op("_div_scalar", r.dy, scalar=float(size_of(r.shape) // size_of(r.kept)))
    ),
    "max": lambda g, r: g.op("broadcast_mul", g.op("broadcast_equal", r.x, r.keep(r.y)), r.keep(r.dy)),
    "min": lambda g, r: g.op("broadcast_mul", g.op("broadcast_equal", r.x, r.keep(r.y)), r.keep(r.dy)),
    "prod": lambda g, r: g.op("broadcast_mul", g.op("broadcast_div", r.keep(r.y), r.x), r.keep(r.dy)),
    "nansum": lambda g, r: g.op("broadcast_mul", g.op("_equal", r.x, r.x), r.keep(r.dy)),
    "nanprod": lambda g, r: g.op(
        "broadcast_mul", _unless_nan(g, r.x, g.op("broadcast_div", r.keep(r.y), r.x)), r.keep(r.dy)
    ),
}


def _unless_nan(g, x, value):
    """`value` where x is a number, 0 where x is NaN."""
    return g.op("where", g.op("_equal", x, x), value, g.op("zeros_like", value))


@grad_rule(*REDUCE_GRADIENTS)
def reduce_grad(g, node, out_grads):
    return [REDUCE_GRADIENTS[node.schema.name](g, _Reduced(g, node, out_grads))]


# ---------------------------------------------------------------------------------------------
# argmax, argmin: indices of the first extreme value, as floats in the input dtype

SEARCHERS = {"argmax": np.argmax, "argmin": np.argmin}

SEARCH_PARAMS = (
    Param("axis", optional(parse_int), None, "the axis to search; None searches the flattened input"),
    Param("keepdims", parse_bool, False, "whether the searched axis stays as a size-1 dim"),
)


def search_shape(params, data):
    """The input without `axis` (size 1 with keepdims); (1,) for a flattened search."""
    return reduced_axis_shape(data, params["axis"], params["keepdims"])


def _search_reference(name: str):
    function = SEARCHERS[name]

    def search_reference(params, inputs, ctx):
        x = inputs[0]
        axis = params["axis"]
        found = function(x.reshape(-1)) if axis is None else function(x, axis=normalize_axis(axis, x.ndim))
        return [np.asarray(found).reshape(search_shape(params, x.shape)).astype(x.dtype)]

    search_reference.__name__ = f"{name}_reference"
    return search_reference


for _name in SEARCHERS:
    define_op(
        _name,
        params=SEARCH_PARAMS,
        fusion=FusionKind.REDUCE,
        doc=f"Returns the index of the {_name[3:]}imum along `axis` (first occurrence), in the input dtype.",
    )
    shape_rule(_name)(_forward(search_shape))
    type_rule(_name)(same_type_rule)
    reference(_name)(_search_reference(_name))

no_gradient(*SEARCHERS)


# ---------------------------------------------------------------------------------------------
# norm: L1 or L2 norm over axes

NORM_OUT_DTYPES = ("float16", "float32", "float64", "int64", "int32", "int8")

define_op(
    "norm",
    params=(
        Param("ord", parse_int, 2, "the order of the norm: 1 or 2"),
        Param("axis", parse_axes, None, "axis or axes to reduce; None reduces all"),
        Param("out_dtype", optional(enum(*NORM_OUT_DTYPES)), None, "the output dtype (default: the input's)"),
        Param("keepdims", parse_bool, False, "whether reduced axes stay as size-1 dims"),
    ),
    fusion=FusionKind.REDUCE,
    doc="The L1 or L2 norm over the given axes (over all elements by default, giving shape (1,)).",
)


@shape_rule("norm")
def norm_shape(params, in_shapes, out_shapes):
    """The input without the reduced axes, as for sum; ord must be 1 or 2."""
    if params["ord"] not in (1, 2):
        raise RuleError(f"norm supports ord=1 and ord=2 only, got ord={params['ord']}")
    if in_shapes[0] is None:
        return in_shapes, out_shapes
    return in_shapes, [reduced_shape(in_shapes[0], params["axis"], params["keepdims"])]


@type_rule("norm")
def norm_type(params, in_types, out_types):
    """out_dtype when given, else the input's dtype."""
    if params["out_dtype"] is None:
        return same_type_rule(params, in_types, out_types)
    return in_types, [params["out_dtype"]]


@reference("norm")
def norm_reference(params, inputs, ctx):
    x = inputs[0]
    axes = reduce_axes(params["axis"], x.ndim)
    magnitude = np.abs(x.astype(np.float64))
    if params["ord"] == 1:
        out = magnitude.sum(axis=axes, keepdims=True)
    else:
        out = np.sqrt(np.square(magnitude).sum(axis=axes, keepdims=True))
    shape = reduced_shape(x.shape, params["axis"], params["keepdims"])
    return [out.reshape(shape).astype(params["out_dtype"] or x.dtype)]


@grad_rule("norm")
def norm_grad(g, node, out_grads):
    """dx = dy * sign(x) (ord 1) or dy * x / y (ord 2), in the input's dtype when out_dtype differs."""
    r = _Reduced(g, node, out_grads)
    y, dy, dtype = r.y, r.dy, g.dtype(r.x)
    if node.params["out_dtype"] not in (None, dtype):
        y, dy = g.op("Cast", y, dtype=dtype), g.op("Cast", dy, dtype=dtype)
    slope = g.op("sign", r.x) if node.params["ord"] == 1 else g.op("broadcast_div", r.x, r.keep(y))
    return [g.op("broadcast_mul", slope, r.keep(dy))]

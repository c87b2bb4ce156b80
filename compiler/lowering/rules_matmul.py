"""Lowering rules of the contractions: dot, batch_dot, FullyConnected, (De)Convolution, conv gradients.

Every op is one or more GEMMs (`ctx.gemm`) over tensors whose axes are named ("m", "k", "g", "o0",
...), so one piece of code reads any operand as the (batch, rows, cols) view a GEMM wants: in place
through strides when its axes nest in the right order, else from a copy laid out in that order. A
convolution's operand of windows (im2col) is computed, so it is stored in whatever order the GEMM
reads; its data gradient scatters the GEMM's columns back onto the input (col2im), and its weight
gradient sums per sample before summing over samples (short float sums). Where a choice of GEMM
exists the one copying least is taken, and a product whose axes are in the output's order is written
straight into the result buffer. Biases are added lazily so they fuse into the final store.

Dtypes follow the references: dot-like ops multiply as NumPy does (float16 accumulated in float32,
bools as or-of-ands, integers wrapping); convolutions compute integers in float64 and cast back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import prod

from ..ops.conv import Window, _conv_groups, _conv_layout, _conv_window, _to_channel_first, deconv_as_conv
from ..ops.registry import lowering
from . import expr as E
from .expr import Expr
from .rules_elementwise import binary
from .tensor import Index, Tensor, cast_tensor, from_buffer, pointwise, ravel, reshape, unravel

Sizes = Mapping[str, int]  # axis name -> extent
Dims = Mapping[str, Expr]  # axis name -> position
Axes = tuple[str, ...]  # the row-major order of a buffer's named axes, outermost first

# The dtype a GEMM runs in, by the data's dtype (unlisted: the dtype itself).
# dot-like ops follow NumPy's matmul: float16 is accumulated in float32; bools are counted in int32
# and the count cast back to bool (or of ands).
PRODUCT_COMPUTE = {"float16": "float32", "bool": "int32"}
# Convolutions follow their float64 references: floats stay (float16 widened), the rest go float64.
CONV_COMPUTE = {"float16": "float32", "float32": "float32", "float64": "float64"}


# -- named tensors and GEMM views --------------------------------------------------------------


def extent(names: Sequence[str], sizes: Sizes) -> int:
    return prod(sizes[name] for name in names)


def offset(axes: Axes, dims: Dims, sizes: Sizes) -> Expr:
    """The flat position of the element at `dims` in a buffer laid out as `axes`."""
    return ravel([dims[name] for name in axes], [sizes[name] for name in axes])


def same_order(first: Axes, second: Axes, sizes: Sizes) -> bool:
    """Whether two layouts of the same axes put every element at the same place."""
    return [n for n in first if sizes[n] != 1] == [n for n in second if sizes[n] != 1]


def view_strides(axes: Axes, view: Sequence[Axes], sizes: Sizes) -> tuple[int, ...] | None:
    """The element stride of each group of names in `view`, reading a buffer laid out as `axes` with
    each group flattened into one dim; names the buffer lacks read with stride 0 (broadcast). None
    when some group's names are not nested in order in `axes`, so no single stride reads it."""
    own, step = {}, 1
    for name in reversed(axes):
        own[name], step = step, step * sizes[name]
    strides = []
    for group in view:
        live = [name for name in group if sizes[name] != 1]
        steps = [own.get(name, 0) for name in live]
        if any(outer != inner * sizes[name] for outer, inner, name in zip(steps, steps[1:], live[1:])):
            return None
        strides.append(steps[-1] if steps else 0)
    return tuple(strides)


@dataclass(frozen=True)
class Named:
    """A tensor read by axis name: `value(dims)`. A stored one (`tensor`, laid out as `axes`) is read in
    place where a GEMM view allows; a computed one (`tensor` None) is stored in the order a GEMM reads."""

    value: Callable[[Dims], Expr]
    dtype: str
    axes: Axes = ()
    tensor: Tensor | None = None


def stored(t: Tensor, axes: Axes, sizes: Sizes) -> Named:
    """`t` (its elements row-major over `axes`) as a named tensor."""
    return Named(lambda dims: t.flat(offset(axes, dims, sizes)), t.dtype, tuple(axes), t)


def materialize(ctx, x: Named, order: Axes, sizes: Sizes, dtype: str) -> Tensor:
    """A scratch copy of `x` in `dtype`, laid out as `order` (one loop per axis: no index division)."""
    shape = [sizes[name] for name in order]
    return ctx.store(Tensor(shape, dtype, lambda idx: E.cast(x.value(dict(zip(order, idx.dims))), dtype)))


def copy_size(x: Named, view: Sequence[Axes], sizes: Sizes, dtype: str) -> int:
    """Elements stored to read `x` as `view` (0 when a stored `x` is read in place)."""
    if x.tensor is not None and x.dtype == dtype and view_strides(x.axes, view, sizes) is not None:
        return 0
    return extent([name for group in view for name in group], sizes)


def gemm_operand(ctx, x: Named, view: Sequence[Axes], sizes: Sizes, dtype: str) -> tuple[Tensor, tuple]:
    """A dense tensor and the (batch, row, col) strides reading `x` as `view` in `dtype`."""
    if x.tensor is not None and x.dtype == dtype:
        strides = view_strides(x.axes, view, sizes)
        if strides is not None:
            return x.tensor, strides
    order = tuple(name for group in view for name in group)
    return materialize(ctx, x, order, sizes, dtype), view_strides(order, view, sizes)


@dataclass(frozen=True)
class Contraction:
    """`out[batch, rows, cols] = sum over inner of a[batch, rows, inner] * b[batch, inner, cols]`, each
    part a tuple of axis names flattened in order."""

    batch: Axes
    rows: Axes
    cols: Axes
    inner: Axes

    @property
    def a_view(self) -> tuple[Axes, Axes, Axes]:
        return self.batch, self.rows, self.inner

    @property
    def b_view(self) -> tuple[Axes, Axes, Axes]:
        return self.batch, self.inner, self.cols

    @property
    def out_axes(self) -> Axes:
        return self.batch + self.rows + self.cols

    def cost(self, a: Named, b: Named, sizes: Sizes, dtype: str, out_axes: Axes | None = None) -> int:
        """Elements copied to run it: operands out of order, and the product when `out_axes` differ."""
        cost = copy_size(a, self.a_view, sizes, dtype) + copy_size(b, self.b_view, sizes, dtype)
        if out_axes is not None and not same_order(self.out_axes, out_axes, sizes):
            cost += extent(out_axes, sizes)
        return cost


def cheapest(
    specs, a: Named, b: Named, sizes: Sizes, dtype: str, out_axes: Axes | None = None
) -> Contraction:
    """The spec copying least (the first of equals)."""
    return min(specs, key=lambda spec: spec.cost(a, b, sizes, dtype, out_axes))


def contract(
    ctx, spec: Contraction, a: Named, b: Named, sizes: Sizes, dtype: str, out: str | None = None
) -> Named:
    """The product `spec` of `a` and `b` in `dtype`, stored (in `out` if given) as `spec.out_axes`."""
    a_tensor, a_strides = gemm_operand(ctx, a, spec.a_view, sizes, dtype)
    b_tensor, b_strides = gemm_operand(ctx, b, spec.b_view, sizes, dtype)
    product = ctx.gemm(
        a_tensor,
        b_tensor,
        batch=extent(spec.batch, sizes),
        m=extent(spec.rows, sizes),
        n=extent(spec.cols, sizes),
        k=extent(spec.inner, sizes),
        a_strides=a_strides,
        b_strides=b_strides,
        out=out,
    )
    return stored(product, spec.out_axes, sizes)


def contract_output(
    ctx,
    specs: Sequence[Contraction],
    a: Named,
    b: Named,
    sizes: Sizes,
    dtype: str,
    out_axes: Axes,
    out_shape: Sequence[int],
) -> Tensor:
    """The node's result (`out_shape`, elements row-major over `out_axes`) by the cheapest of `specs`:
    written straight into the result buffer when its axes are in order, else read back reordered."""
    spec = cheapest(specs, a, b, sizes, dtype, out_axes)
    if same_order(spec.out_axes, out_axes, sizes):
        product = contract(ctx, spec, a, b, sizes, dtype, ctx.result_buffer(out_shape, dtype))
        return reshape(product.tensor, out_shape)
    product = contract(ctx, spec, a, b, sizes, dtype)
    return Tensor(out_shape, dtype, lambda idx: product.value(named_position(idx, out_axes, sizes)))


def named_position(idx: Index, axes: Axes, sizes: Sizes) -> dict[str, Expr]:
    """The position along each of `axes` of element `idx`, its tensor's elements being row-major over
    `axes`: each dim of the tensor splits into consecutive axes when it can, else the flat index does."""
    rest, named = list(axes), {}
    for position, size in zip(idx.dims, idx.shape):
        group = []
        while rest and extent(group, sizes) < size:
            group.append(rest.pop(0))
        if extent(group, sizes) != size:
            return dict(zip(axes, Index([sizes[name] for name in axes], flat=idx.flat).dims))
        named.update(zip(group, unravel(position, [sizes[name] for name in group])))
    return named | {name: E.index(0) for name in rest}


def along(vector: Tensor, shape: Sequence[int], axis: int) -> Tensor:
    """`vector` broadcast over `shape`, its elements running along `axis` (a bias)."""
    return Tensor(shape, vector.dtype, lambda idx: vector.flat(idx.dims[axis]))


# -- dot, batch_dot, FullyConnected ---------------------------------------------------------------

MATRIX_PRODUCT = Contraction(batch=(), rows=("m",), cols=("j",), inner=("k",))
BATCHED_PRODUCT = Contraction(batch=("b",), rows=("m",), cols=("j",), inner=("k",))


def product(ctx, spec: Contraction, lhs: Named, rhs: Named, sizes: Sizes) -> Tensor:
    """The node's output `lhs . rhs`, computed as NumPy's matmul does for its dtype."""
    out_shape, dtype = ctx.out_types[0]
    compute = PRODUCT_COMPUTE.get(dtype, dtype)
    result = contract_output(ctx, [spec], lhs, rhs, sizes, compute, spec.out_axes, out_shape)
    return cast_tensor(result, dtype)


@lowering("dot")
def lower_dot(ctx, node, inputs):
    """lhs as (m, k) (or (k, m) with transpose_a) times rhs as (k, j) (or (j, k)), as dot_reference."""
    lhs, rhs = inputs
    ta, tb = node.params["transpose_a"], node.params["transpose_b"]
    sizes = {
        "m": prod(lhs.shape[1:] if ta else lhs.shape[:-1]),
        "k": lhs.shape[0] if ta else lhs.shape[-1],
        "j": prod(rhs.shape[:-1] if tb else rhs.shape[1:]),
    }
    lhs_axes = ("k", "m") if ta else ("m", "k")
    rhs_axes = ("j", "k") if tb else ("k", "j")
    return [product(ctx, MATRIX_PRODUCT, stored(lhs, lhs_axes, sizes), stored(rhs, rhs_axes, sizes), sizes)]


@lowering("batch_dot")
def lower_batch_dot(ctx, node, inputs):
    """lhs (b, m, k) times rhs (b, k, j) per batch b, each read transposed as the params say."""
    lhs, rhs = inputs
    ta, tb = node.params["transpose_a"], node.params["transpose_b"]
    *batch, rows, cols = ctx.out_types[0][0]
    sizes = {"b": prod(batch), "m": rows, "j": cols, "k": lhs.shape[-2] if ta else lhs.shape[-1]}
    lhs_axes = ("b", "k", "m") if ta else ("b", "m", "k")
    rhs_axes = ("b", "j", "k") if tb else ("b", "k", "j")
    return [product(ctx, BATCHED_PRODUCT, stored(lhs, lhs_axes, sizes), stored(rhs, rhs_axes, sizes), sizes)]


@lowering("FullyConnected")
def lower_fully_connected(ctx, node, inputs):
    """data as rows (m, k) times weight (j, k) transposed, plus the bias in the data's dtype."""
    data, weight = inputs[0], inputs[1]
    out_shape = ctx.out_types[0][0]
    hidden, features = weight.shape
    sizes = {"m": prod(out_shape[:-1]), "k": features, "j": hidden}
    result = product(
        ctx, MATRIX_PRODUCT, stored(data, ("m", "k"), sizes), stored(weight, ("j", "k"), sizes), sizes
    )
    if node.params["no_bias"]:
        return [result]
    return [pointwise(lambda y, b: binary("add", y, b), result, along(inputs[2], out_shape, -1))]


# -- convolution ------------------------------------------------------------------------------------
# Axis names: n sample, g group, c channel within its group, f filter within its group, i0.. input
# positions, k0.. kernel taps, o0.. output positions.


@dataclass(frozen=True)
class ConvGeometry:
    """A convolution's window, layout and named sizes, for data and output of the given shapes."""

    window: Window
    channel_last: bool
    sizes: Mapping[str, int]

    def _spatial(self, prefix: str) -> Axes:
        return tuple(f"{prefix}{axis}" for axis in range(len(self.window.kernel)))

    @property
    def outs(self) -> Axes:
        return self._spatial("o")

    @property
    def taps(self) -> Axes:
        """The axes a filter contracts, in the weight's order: (c, k0, ..) or (k0, .., c)."""
        kernel = self._spatial("k")
        return (*kernel, "c") if self.channel_last else ("c", *kernel)

    def _layout(self, lead: Axes, spatial: Axes, channel: Axes) -> Axes:
        return lead + spatial + channel if self.channel_last else lead + channel + spatial

    @property
    def data_axes(self) -> Axes:
        return self._layout(("n",), self._spatial("i"), ("g", "c"))

    @property
    def out_axes(self) -> Axes:
        return self._layout(("n",), self.outs, ("g", "f"))

    @property
    def weight_axes(self) -> Axes:
        return ("g", "f") + self.taps

    def input_position(self, dims: Dims) -> tuple[dict, Expr | None]:
        """The input cell window tap `dims` reads, clamped into the data, and whether it lies inside the
        data (None: always, without padding)."""
        coords, inside = dict(dims), []
        for axis, (stride, dilate, pad) in enumerate(
            zip(self.window.stride, self.window.dilate, self.window.pad)
        ):
            start = E.mul(dims[f"o{axis}"], E.index(stride))
            position = E.sub(E.add(start, E.mul(dims[f"k{axis}"], E.index(dilate))), E.index(pad))
            size = self.sizes[f"i{axis}"]
            if pad:
                low, high = E.compare("ge", position, E.index(0)), E.compare("lt", position, E.index(size))
                inside.append(E.call("and", low, high))
                position = E.clamp_index(position, size)
            coords[f"i{axis}"] = position
        return coords, functools.reduce(lambda p, q: E.call("and", p, q), inside) if inside else None


def conv_geometry(params, data_shape: Sequence[int], out_shape: Sequence[int]) -> ConvGeometry:
    """The geometry of a convolution of `params` from data of `data_shape` to `out_shape` (in layout)."""
    window = _conv_window(params)
    layout = _conv_layout(params, len(window.kernel))
    filters, groups = _conv_groups(params)
    batch, channels, *ins = _to_channel_first(data_shape, layout)
    outs = _to_channel_first(out_shape, layout)[2:]
    sizes = {"n": batch, "g": groups, "c": channels // groups, "f": filters // groups}
    for axis, (i, k, o) in enumerate(zip(ins, window.kernel, outs)):
        sizes.update({f"i{axis}": i, f"k{axis}": k, f"o{axis}": o})
    return ConvGeometry(window, layout.endswith("C"), sizes)


def windows(geometry: ConvGeometry, data: Named) -> Named:
    """The computed im2col operand: at (n, g, c, taps, outs), the data cell that tap reads (0 in padding)."""
    zero = E.const(0, data.dtype)

    def value(dims: Dims) -> Expr:
        coords, inside = geometry.input_position(dims)
        cell = data.value(coords)
        return cell if inside is None else E.select(inside, cell, zero)

    return Named(value, data.dtype)


def filter_products(
    geometry: ConvGeometry, weight: Named, per_sample: Named, kept: Axes
) -> tuple[list[Contraction], Named, Named]:
    """(candidate contractions, a, b) multiplying the weight with a `per_sample` operand (windows or the
    output gradient) per group, keeping the weight's axes `kept` (f, or the taps) and contracting its
    others. Channel-first outputs put the weight first, batched over samples and groups (no copy when
    either is 1) or over groups alone; channel-last outputs put the samples' positions first."""
    g = geometry
    inner = ("f",) if kept == g.taps else g.taps
    if g.channel_last:
        return [Contraction(("g",), ("n", *g.outs), kept, inner)], per_sample, weight
    by_sample = Contraction(("n", "g"), kept, g.outs, inner)
    return [by_sample, Contraction(("g",), kept, ("n", *g.outs), inner)], weight, per_sample


def conv_compute(dtype: str) -> str:
    return CONV_COMPUTE.get(dtype, "float64")


@lowering("Convolution")
def lower_convolution(ctx, node, inputs):
    """Windows (im2col) times filters, per group; the bias is added in the compute dtype."""
    out_shape, dtype = ctx.out_types[0]
    geometry = conv_geometry(node.params, inputs[0].shape, out_shape)
    sizes, compute = geometry.sizes, conv_compute(dtype)
    data, weight = (
        stored(t, axes, sizes) for t, axes in zip(inputs, (geometry.data_axes, geometry.weight_axes))
    )
    specs, a, b = filter_products(geometry, weight, windows(geometry, data), ("f",))
    result = contract_output(ctx, specs, a, b, sizes, compute, geometry.out_axes, out_shape)
    if not node.params["no_bias"]:
        bias = along(inputs[2], out_shape, -1 if geometry.channel_last else 1)
        result = pointwise(lambda y, b: E.add(y, E.cast(b, compute)), result, bias)
    return [cast_tensor(result, dtype)]


def add_windows_back(ctx, geometry: ConvGeometry, columns: Named, target: str) -> None:
    """col2im: every window cell of `columns` added onto the input cell of `target` it was read from
    (cells read from padding add 0 to a clamped cell)."""
    zero = E.const(0, columns.dtype)

    def index_of(dims) -> Expr:
        coords, _ = geometry.input_position(dict(zip(columns.axes, dims)))
        return offset(geometry.data_axes, coords, geometry.sizes)

    def value_of(dims) -> Expr:
        named = dict(zip(columns.axes, dims))
        _, inside = geometry.input_position(named)
        value = columns.value(named)
        return value if inside is None else E.select(inside, value, zero)

    ctx.scatter([geometry.sizes[name] for name in columns.axes], target, index_of, value_of, mode="add")


def transposed_convolution(ctx, params, inputs, out_shape, compute: str) -> Tensor:
    """The data gradient of the Convolution of `params` onto `out_shape`, in the compute dtype: filters
    (transposed) times the output gradient give each window's gradient (col2im's columns), which are
    then added onto the input cells the windows read."""
    geometry = conv_geometry(params, out_shape, inputs[0].shape)
    sizes = geometry.sizes
    grad, weight = (
        stored(t, axes, sizes) for t, axes in zip(inputs, (geometry.out_axes, geometry.weight_axes))
    )
    specs, a, b = filter_products(geometry, weight, grad, geometry.taps)
    columns = contract(ctx, cheapest(specs, a, b, sizes, compute), a, b, sizes, compute)
    target = ctx.result_buffer(out_shape, compute)
    ctx.fill(target, out_shape, 0, compute)
    add_windows_back(ctx, geometry, columns, target)
    return from_buffer(target, out_shape, compute)


@lowering("_backward_Convolution_data")
def lower_conv_data_grad(ctx, node, inputs):
    """A transposed convolution of the output gradient (col2im of filters times gradient)."""
    out_shape, dtype = ctx.out_types[0]
    return [
        cast_tensor(transposed_convolution(ctx, node.params, inputs, out_shape, conv_compute(dtype)), dtype)
    ]


@lowering("Deconvolution")
def lower_deconvolution(ctx, node, inputs):
    """The data gradient of the Convolution it transposes (conv.deconv_as_conv), plus the bias."""
    out_shape, dtype = ctx.out_types[0]
    compute = conv_compute(dtype)
    conv = deconv_as_conv(node.params, inputs[0].shape)
    result = transposed_convolution(ctx, conv, inputs[:2], out_shape, compute)
    if not node.params["no_bias"]:
        bias = along(inputs[2], out_shape, -1 if _conv_layout(conv, len(conv["kernel"])).endswith("C") else 1)
        result = pointwise(lambda y, b: E.add(y, E.cast(b, compute)), result, bias)
    return [cast_tensor(result, dtype)]


@lowering("_backward_Convolution_weight")
def lower_conv_weight_grad(ctx, node, inputs):
    """The output gradient times the windows (im2col), contracted over output positions and samples.

    Summed per sample first, then over the samples, a float32 gradient keeps the accuracy of the
    float64 reference (one running sum over every position of every sample drifts past it); that takes
    a partial gradient per sample, so it is done when those take no more memory than the windows."""
    out_shape, dtype = ctx.out_types[0]
    geometry = conv_geometry(node.params, inputs[1].shape, inputs[0].shape)
    sizes, compute = geometry.sizes, conv_compute(dtype)
    grad, data = (stored(t, axes, sizes) for t, axes in zip(inputs, (geometry.out_axes, geometry.data_axes)))
    columns = windows(geometry, data)
    if sizes["n"] == 1 or sizes["f"] > extent(geometry.outs, sizes):
        spec = Contraction(("g",), ("f",), geometry.taps, ("n", *geometry.outs))
        result = contract_output(ctx, [spec], grad, columns, sizes, compute, geometry.weight_axes, out_shape)
    else:
        spec = Contraction(("n", "g"), ("f",), geometry.taps, geometry.outs)
        per_sample = contract(ctx, spec, grad, columns, sizes, compute)
        result = sum_over(ctx, per_sample, "n", geometry.weight_axes, out_shape, sizes)
    return [cast_tensor(result, dtype)]


def sum_over(ctx, x: Named, axis: str, axes: Axes, shape: Sequence[int], sizes: Sizes) -> Tensor:
    """`x` summed over `axis`: a tensor of `shape` whose elements are row-major over `axes`."""

    def at(idx: Index) -> Expr:
        position = named_position(idx, axes, sizes)
        return ctx.reduce("sum", sizes[axis], lambda r: x.value({**position, axis: r}))

    return Tensor(shape, x.dtype, at)

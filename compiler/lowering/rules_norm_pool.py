"""Lowering rules of pooling, batch, layer, instance and group normalization and embedding, and of their
backward ops (ops/conv.py's Pooling, ops/norm.py's normalizations, ops/nn.py's Embedding, ops/nn_backward.py).

As the references do, every sum, average and statistic is computed in float64 and cast back to the
result's dtype, so the compiled code agrees with them for float16, float32 and float64 alike.

- Pooling reduces each window with one (nested) reduction whose cells outside the input read the
  reference's fill value (-inf for max); its gradient gathers, for each input cell, the windows that
  read it, in the reference's order of window taps (max pooling stores each window's arg max first).
- BatchNorm stores its per-channel statistics (mean and 1/sqrt(var + eps)) and is then a per-element
  formula; its gradient stores the per-channel sums of dy and dy * normalised first.
- LayerNorm, InstanceNorm and GroupNorm store each row's mean, variance and std (the rows of their
  `NormView`) and are then a per-element formula; their gradients are composed of other ops.
- Embedding is a gather of weight rows; its gradient scatter-adds rows of out_grad into a zeroed
  accumulator, so repeated indices add up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod

from ..ops.conv import (
    POOL_REDUCERS,
    Window,
    _channel_first_order,
    _pool_layout,
    _pool_out_sizes,
    _pool_window,
)
from ..ops.norm import PER_SAMPLE_NORMS, NormView, _batchnorm_param_dtype
from ..ops.registry import lowering
from ..ops.rules import normalize_axis
from . import expr as E
from .expr import Expr
from .tensor import Index, Tensor, cast_tensor, constant, from_buffer, pointwise, ravel, reshape, unravel

WIDE = "float64"  # what the references compute in


def wide(e: Expr) -> Expr:
    return E.cast(e, WIDE)


def f64(value) -> Expr:
    return E.const(value, WIDE)


def all_of(conditions: Sequence[Expr]) -> Expr:
    """The conjunction of bool expressions (true when there are none)."""
    result = E.const(1, "bool")
    for condition in conditions:
        result = condition if E.is_const(result) else E.call("and", result, condition)
    return result


def store_together(ctx, tensors: Sequence[Tensor]) -> list[Tensor]:
    """Same-shaped tensors stored into new scratch buffers in one loop nest; the buffers as tensors."""
    names = [ctx.scratch_buffer(t.shape, t.dtype) for t in tensors]
    ctx.store_many(list(zip(tensors, names)))
    return [from_buffer(name, t.shape, t.dtype) for name, t in zip(names, tensors)]


def nested_reduce(ctx, op: str, extents: Sequence[int], body: Callable[[tuple[Expr, ...]], Expr]) -> Expr:
    """`op` of `body(taps)` over every point of a box of `extents`, the last axis innermost; an axis of
    extent 1 needs no loop. (Not for argmax/argmin: their position would be per axis.)"""
    if not extents:
        return body(())
    if extents[0] == 1:
        return nested_reduce(ctx, op, extents[1:], lambda rest: body((E.index(0), *rest)))
    return ctx.reduce(
        op, extents[0], lambda r: nested_reduce(ctx, op, extents[1:], lambda rest: body((r, *rest)))
    )


# =================================================================================================
# Pooling


@dataclass(frozen=True)
class PoolGeometry:
    """Where Pooling's windows lie: the data's layout order and sizes, in channel-first terms."""

    order: tuple[int, ...]  # the layout axis of each channel-first axis (N, C, spatial...)
    data_shape: tuple[int, ...]  # channel-first
    out_shape: tuple[int, ...]  # channel-first
    window: Window

    @classmethod
    def of(cls, params, data_shape: Sequence[int]) -> PoolGeometry:
        order = _channel_first_order(_pool_layout(params, len(data_shape)))
        shape = tuple(data_shape[axis] for axis in order)
        sizes = tuple(_pool_out_sizes(params, shape[2:]))
        return cls(order, shape, shape[:2] + sizes, _pool_window(params, shape[2:]))

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.data_shape[2:]

    @property
    def out_spatial(self) -> tuple[int, ...]:
        return self.out_shape[2:]

    def channel_first(self, dims: Sequence[Expr]) -> tuple[Expr, ...]:
        """Per-dimension positions in the layout -> channel-first ones."""
        return tuple(dims[axis] for axis in self.order)

    def in_layout(self, dims: Sequence[Expr]) -> tuple[Expr, ...]:
        """Channel-first positions -> positions in the layout."""
        result: list = [None] * len(dims)
        for position, axis in enumerate(self.order):
            result[axis] = dims[position]
        return tuple(result)

    def window_start(self, axis: int, out: Expr) -> Expr:
        """The input position of window `out`'s first cell on spatial `axis` (negative in padding)."""
        return E.sub(E.mul(out, E.index(self.window.stride[axis])), E.index(self.window.pad[axis]))

    def cell(self, x: Tensor, batch: Expr, channel: Expr, positions: Sequence[Expr], fill: float) -> Expr:
        """`x` (float64) at spatial `positions`, or `fill` where a position lies outside the input."""
        checks, safe = [], []
        for axis, (p, n) in enumerate(zip(positions, self.spatial)):
            below, past = self.reaches_outside(axis)
            checks += [E.compare("ge", p, E.index(0))] if below else []
            checks += [E.compare("lt", p, E.index(n))] if past else []
            safe.append(E.clamp_index(p, n) if below or past else p)
        value = wide(x(*self.in_layout((batch, channel, *safe))))
        return E.select(all_of(checks), value, f64(fill)) if checks else value

    def reaches_outside(self, axis: int) -> tuple[bool, bool]:
        """Whether some window reads cells before the input's start, and past its end, on `axis`."""
        w = self.window
        last_cell = (self.out_spatial[axis] - 1) * w.stride[axis] - w.pad[axis] + w.kernel[axis] - 1
        return w.pad[axis] > 0, last_cell >= self.spatial[axis]

    def window_cell(self, x: Tensor, out: Sequence[Expr], taps: Sequence[Expr], fill: float) -> Expr:
        """Cell `taps` of the window at channel-first output position `out` (N, C, spatial...)."""
        positions = [E.add(self.window_start(a, o), t) for a, (o, t) in enumerate(zip(out[2:], taps))]
        return self.cell(x, out[0], out[1], positions, fill)

    def divisor(self, out: Sequence[Expr], include_pad: bool) -> Expr:
        """avg pooling's divisor for window `out` (float64), as conv._avg_divisor counts it."""
        count = E.index(1)
        for axis, (o, n) in enumerate(zip(out, self.spatial)):
            start = self.window_start(axis, o)
            end = E.minimum(
                E.add(start, E.index(self.window.kernel[axis])), E.index(n + self.window.pad[axis])
            )
            if include_pad:
                cells = E.sub(end, start)
            else:
                cells = E.sub(E.minimum(end, E.index(n)), E.maximum(start, E.index(0)))
            count = E.mul(count, cells)
        return wide(count)


def _include_pad(params) -> bool:
    return params["count_include_pad"] is not False


# p of lp pooling -> (cell -> its power, window sum -> its root); as conv.LP_ROOTS with cells ** p
LP_POWERS = {
    1: lambda v: v,
    2: lambda v: E.mul(v, v),
    3: lambda v: E.call("pow", v, f64(3)),
}
LP_ROOTS = {1: lambda s: s, 2: lambda s: E.call("sqrt", s), 3: lambda s: E.call("cbrt", s)}


@dataclass(frozen=True)
class PoolForm:
    """How a pool_type reduces a window: the reduction, each cell's term and the window's result."""

    reduce: str
    term: Callable[[Expr, dict], Expr]
    finish: Callable[[Expr, Expr | None, dict], Expr]  # (reduced, avg divisor or None, params)


POOL_FORMS = {
    "max": PoolForm("max", lambda v, params: v, lambda total, divisor, params: total),
    "sum": PoolForm("sum", lambda v, params: v, lambda total, divisor, params: total),
    "avg": PoolForm("sum", lambda v, params: v, lambda total, divisor, params: E.div(total, divisor)),
    "lp": PoolForm(
        "sum",
        lambda v, params: LP_POWERS[params["p_value"]](v),
        lambda total, divisor, params: LP_ROOTS[params["p_value"]](total),
    ),
}
assert set(POOL_FORMS) == set(POOL_REDUCERS), "every pool_type needs a form"


@lowering("Pooling")
def lower_pooling(ctx, node, inputs):
    params, x = node.params, inputs[0]
    geometry = PoolGeometry.of(params, x.shape)
    pool_type = params["pool_type"]
    form, fill = POOL_FORMS[pool_type], POOL_REDUCERS[pool_type][0]
    shape, dtype = ctx.out_types[0]

    def at(idx):
        out = geometry.channel_first(idx.dims)
        cells = nested_reduce(
            ctx, form.reduce, geometry.window.kernel,
            lambda taps: form.term(geometry.window_cell(x, out, taps, fill), params),
        )  # fmt: skip
        divisor = geometry.divisor(out[2:], _include_pad(params)) if pool_type == "avg" else None
        return E.cast(form.finish(cells, divisor, params), dtype)

    return [Tensor(shape, dtype, at)]


def _max_positions(ctx, geometry: PoolGeometry, x: Tensor) -> Tensor:
    """Each window's first maximal cell (-inf in padding) as a flat tap number, stored (N, C, *out)."""
    kernel = geometry.window.kernel
    fill = POOL_REDUCERS["max"][0]

    def at(idx):
        out = idx.dims
        return ctx.reduce(
            "argmax", prod(kernel), lambda r: geometry.window_cell(x, out, unravel(r, kernel), fill)
        )

    return ctx.store(Tensor(geometry.out_shape, E.INDEX, at))


def _lp_weight(params, cell: Expr, output: Expr) -> Expr:
    """d output / d cell = (cell / output)^(p-1), as nn_backward._lp_weights."""
    ratio = E.div(cell, output)
    return {1: f64(1), 2: ratio, 3: E.mul(ratio, ratio)}[params["p_value"]]


@dataclass(frozen=True)
class WindowRead:
    """In the pooling gradient: window `out` (channel-first, clamped) reading input value `cell` at
    its tap `taps`; `output` is the forward output, `arg_max` the stored tap of each window's maximum."""

    geometry: PoolGeometry
    params: dict
    out: tuple[Expr, ...]
    taps: tuple[Expr, ...]
    cell: Expr
    output: Tensor
    arg_max: Tensor | None

    def output_value(self) -> Expr:
        return wide(self.output(*self.geometry.in_layout(self.out)))

    def is_arg_max(self) -> Expr:
        return E.compare("eq", self.arg_max(*self.out), ravel(self.taps, self.geometry.window.kernel))


# pool_type -> d output / d cell of one window read (float64), as nn_backward.POOL_GRADIENT_WEIGHTS
POOL_GRADIENT_WEIGHTS: dict[str, Callable[[WindowRead], Expr]] = {
    "max": lambda read: E.select(read.is_arg_max(), f64(1), f64(0)),
    "sum": lambda read: f64(1),
    "avg": lambda read: E.div(f64(1), read.geometry.divisor(read.out[2:], _include_pad(read.params))),
    "lp": lambda read: _lp_weight(read.params, read.cell, read.output_value()),
}
assert set(POOL_GRADIENT_WEIGHTS) == set(POOL_REDUCERS), "every pool_type needs a gradient weight"


@lowering("_backward_Pooling")
def lower_pooling_backward(ctx, node, inputs):
    """dx at each input cell: the sum, over the windows reading it (taps in row-major order), of the
    window's gradient times POOL_GRADIENT_WEIGHTS, 0 where out_grad is 0 (as the reference)."""
    params = node.params
    dy, x, y = inputs
    geometry = PoolGeometry.of(params, x.shape)
    window, pool_type = geometry.window, params["pool_type"]
    arg_max = _max_positions(ctx, geometry, x) if pool_type == "max" else None
    weight = POOL_GRADIENT_WEIGHTS[pool_type]
    # per spatial axis: how many windows can read one cell
    reach = tuple(min(-(-k // s), n) for k, s, n in zip(window.kernel, window.stride, geometry.out_spatial))
    _, dtype = ctx.out_types[0]

    def at(idx):
        batch, channel, *spatial = geometry.channel_first(idx.dims)
        padded = [E.add(i, E.index(p)) for i, p in zip(spatial, window.pad)]
        last = [  # the last window reading the cell on each axis
            E.minimum(E.div(q, E.index(s)), E.index(n - 1))
            for q, s, n in zip(padded, window.stride, geometry.out_spatial)
        ]
        cell = wide(x(*idx.dims))

        def contribution(steps):
            outs = [E.sub(o, j) for o, j in zip(last, steps)]
            taps = tuple(E.sub(q, E.mul(o, E.index(s))) for q, o, s in zip(padded, outs, window.stride))
            valid = all_of(
                [E.compare("ge", o, E.index(0)) for o in outs]
                + [E.compare("lt", t, E.index(k)) for t, k in zip(taps, window.kernel)]
            )
            safe = (batch, channel, *(E.clamp_index(o, n) for o, n in zip(outs, geometry.out_spatial)))
            grad = wide(dy(*geometry.in_layout(safe)))
            read = WindowRead(geometry, params, safe, taps, cell, y, arg_max)
            spread = E.select(E.compare("eq", grad, f64(0)), f64(0), E.mul(weight(read), grad))
            return E.select(valid, spread, f64(0))

        return E.cast(nested_reduce(ctx, "sum", reach, contribution), dtype)

    return [Tensor(x.shape, dtype, at)]


# =================================================================================================
# BatchNorm


@dataclass(frozen=True)
class Channels:
    """Data of `shape` with its channels on `axis`, for per-channel sums and per-element formulas.
    Callbacks `term(idx, c)` get an element's `Index` into the data and its channel `c`."""

    shape: tuple[int, ...]
    axis: int

    @property
    def channels(self) -> int:
        return self.shape[self.axis]

    @property
    def count(self) -> int:
        """Elements per channel."""
        return prod(self.shape) // self.channels

    def sum(self, ctx, term: Callable[[Index, Expr], Expr]) -> Tensor:
        """Per channel c (C,) float64: the sum of `term` over the channel's elements, the data seen as
        (outer, C, inner) with the inner axis innermost."""
        outer, inner = prod(self.shape[: self.axis]), prod(self.shape[self.axis + 1 :])

        def at(idx):
            c = idx.dims[0]

            def body(steps):
                o, i = steps
                flat = E.add(E.mul(E.add(E.mul(o, E.index(self.channels)), c), E.index(inner)), i)
                return term(Index(self.shape, flat=flat), c)

            return nested_reduce(ctx, "sum", (outer, inner), body)

        return Tensor((self.channels,), WIDE, at)

    def broadcast(self, term: Callable[[Index, Expr], Expr], dtype: str) -> Tensor:
        """A data-shaped tensor: `term` at each element."""
        return Tensor(self.shape, dtype, lambda idx: term(idx, idx.dims[self.axis]))


def _wide_vector(t: Tensor) -> Callable[[Expr], Expr]:
    """A per-channel vector read as float64 at channel `c`."""
    return lambda c: wide(t(c))


def _inverse_std(variance: Expr, eps: float) -> Expr:
    return E.div(f64(1), E.call("sqrt", E.add(variance, f64(eps))))


def _batch_statistics(ctx, view: Channels, x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Stored (C,) float64 batch mean and 1/sqrt(biased variance + eps), the variance in two passes."""
    count = f64(view.count)
    mean = ctx.store(
        pointwise(lambda total: E.div(total, count), view.sum(ctx, lambda at, c: wide(x.at(at))))
    )

    def squared_deviation(at, c):
        deviation = E.sub(wide(x.at(at)), mean(c))
        return E.mul(deviation, deviation)

    variance = view.sum(ctx, squared_deviation)
    return mean, ctx.store(pointwise(lambda total: _inverse_std(E.div(total, count), eps), variance))


def _moving_statistics(ctx, moving_mean: Tensor, moving_var: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """The moving mean (float64) and a stored 1/sqrt(moving_var + eps)."""
    inverse_std = pointwise(lambda var: _inverse_std(wide(var), eps), moving_var, dtype=WIDE)
    return cast_tensor(moving_mean, WIDE), ctx.store(inverse_std)


def _uses_batch_statistics(ctx, params) -> bool:
    return ctx.is_train and not params["use_global_stats"]


def _gamma(params, gamma: Tensor) -> Callable[[Expr], Expr]:
    """gamma at channel c in float64, or 1 with fix_gamma."""
    return (lambda c: f64(1)) if params["fix_gamma"] else _wide_vector(gamma)


@lowering("BatchNorm")
def lower_batchnorm(ctx, node, inputs):
    """out = (x - mean) * invstd * gamma + beta; the hidden outputs are mean and invstd (named var)."""
    params = node.params
    x, gamma, beta, moving_mean, moving_var = inputs
    axis = normalize_axis(params["axis"], x.ndim)
    view = Channels(x.shape, axis)
    if _uses_batch_statistics(ctx, params):
        mean, inverse_std = _batch_statistics(ctx, view, x, params["eps"])
    else:
        mean, inverse_std = _moving_statistics(ctx, moving_mean, moving_var, params["eps"])
    scale, shift = _gamma(params, gamma), _wide_vector(beta)

    def normalise(at, c):
        normalised = E.mul(E.sub(wide(x.at(at)), mean(c)), inverse_std(c))
        return E.cast(E.add(E.mul(normalised, scale(c)), shift(c)), x.dtype)

    vector = _batchnorm_param_dtype(x.dtype)
    out = view.broadcast(normalise, x.dtype)
    return [out, cast_tensor(mean, vector), cast_tensor(inverse_std, vector)]


@lowering("_backward_BatchNorm")
def lower_batchnorm_backward(ctx, node, inputs):
    """dx, dgamma, dbeta from stored per-channel sums of dy and dy * normalised (as the reference)."""
    params = node.params
    dy, x, gamma, mean, inverse_std = inputs
    axis = normalize_axis(params["axis"], x.ndim)
    view = Channels(x.shape, axis)
    mean_of, inverse_std_of = _wide_vector(mean), _wide_vector(inverse_std)

    def normalised(at, c):
        return E.mul(E.sub(wide(x.at(at)), mean_of(c)), inverse_std_of(c))

    sum_dy = view.sum(ctx, lambda at, c: wide(dy.at(at)))
    sum_dy_normalised = view.sum(ctx, lambda at, c: E.mul(wide(dy.at(at)), normalised(at, c)))
    sum_dy, sum_dy_normalised = store_together(ctx, [sum_dy, sum_dy_normalised])
    scale = _gamma(params, gamma)
    through_statistics = _uses_batch_statistics(ctx, params)
    count = f64(view.count)

    def data_grad(at, c):
        grad = wide(dy.at(at))
        if through_statistics:
            mean_dy, mean_dy_normalised = E.div(sum_dy(c), count), E.div(sum_dy_normalised(c), count)
            grad = E.sub(E.sub(grad, mean_dy), E.mul(normalised(at, c), mean_dy_normalised))
        return E.cast(E.mul(grad, E.mul(scale(c), inverse_std_of(c))), x.dtype)

    vector = gamma.dtype
    dgamma = (
        constant(0, gamma.shape, vector) if params["fix_gamma"] else cast_tensor(sum_dy_normalised, vector)
    )
    return [view.broadcast(data_grad, x.dtype), dgamma, cast_tensor(sum_dy, vector)]


# =================================================================================================
# LayerNorm, InstanceNorm, GroupNorm


def _row_statistics(ctx, view: NormView, x: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """Stored (outer, inner) float64 mean, biased variance (two passes) and sqrt(variance + eps) of the
    rows of `x`'s rows view (outer, length, inner)."""
    outer, length, inner = view.rows
    rows = reshape(x, view.rows)
    count = f64(length)

    def row_mean(term: Callable[[Expr, Expr, Expr], Expr]) -> Tensor:
        def at(idx):
            o, i = idx.dims
            return E.div(nested_reduce(ctx, "sum", (length,), lambda steps: term(o, steps[0], i)), count)

        return Tensor((outer, inner), WIDE, at)

    mean = ctx.store(row_mean(lambda o, r, i: wide(rows(o, r, i))))

    def squared_deviation(o, r, i):
        deviation = E.sub(wide(rows(o, r, i)), mean(o, i))
        return E.mul(deviation, deviation)

    variance = ctx.store(row_mean(squared_deviation))
    std = ctx.store(pointwise(lambda v: E.call("sqrt", E.add(v, f64(eps))), variance))
    return mean, variance, std


@lowering(*PER_SAMPLE_NORMS)
def lower_per_sample_norm(ctx, node, inputs):
    """out = (x - mean) / std * gamma + beta from stored row statistics; then the mean and the std (the
    variance for InstanceNorm) as the hidden outputs, as the reference computes them."""
    norm = PER_SAMPLE_NORMS[node.op]
    x, gamma, beta = inputs
    view = norm.view(node.params, x.shape)
    mean, variance, std = _row_statistics(ctx, view, x, node.params["eps"])
    rows = reshape(x, view.rows)

    def entry(idx: Index) -> Expr:
        """The gamma/beta entry of the element at rows-view `idx`."""
        if view.channels == view.rows:
            return idx.dims[1]
        return Index(view.channels, flat=idx.flat).dims[1]

    def normalise(idx):
        o, _, i = idx.dims
        normalised = E.div(E.sub(wide(rows.at(idx)), mean(o, i)), std(o, i))
        p = entry(idx)
        return E.cast(E.add(E.mul(normalised, wide(gamma(p))), wide(beta(p))), x.dtype)

    out = reshape(Tensor(view.rows, x.dtype, normalise), x.shape)
    third = std if norm.third_is_std else variance
    stats = [reshape(cast_tensor(t, x.dtype), view.stats_shape) for t in (mean, third)]
    return [out, *stats]


# =================================================================================================
# Embedding


def _row(indices: Expr, rows: int) -> Expr:
    """An index of any dtype truncated to an integer (as astype(int64)) and clipped into [0, rows).
    float16 goes through float32 (exactly): codegen cannot convert float16 to int64 directly."""
    if indices.dtype == "float16":
        indices = E.cast(indices, "float32")
    return E.clamp_index(E.cast(indices, E.INDEX), rows)


@lowering("Embedding")
def lower_embedding(ctx, node, inputs):
    data, weight = inputs
    rows = node.params["input_dim"]
    shape, dtype = ctx.out_types[0]

    def at(idx):
        *position, column = idx.dims
        return weight(_row(data(*position), rows), column)

    return [Tensor(shape, dtype, at)]


@lowering("_backward_Embedding")
def lower_embedding_backward(ctx, node, inputs):
    """Rows of out_grad scatter-added in float64 onto the rows of weight they were read from."""
    grad, data = inputs
    shape, dtype = ctx.out_types[0]
    rows, width = shape
    target = ctx.result_buffer(shape, WIDE) if dtype == WIDE else ctx.scratch_buffer(shape, WIDE)
    ctx.fill(target, shape, 0, WIDE)
    ctx.scatter(
        (data.size, width),
        target,
        lambda dims: E.add(E.mul(_row(data.flat(dims[0]), rows), E.index(width)), dims[1]),
        lambda dims: wide(grad.flat(E.add(E.mul(dims[0], E.index(width)), dims[1]))),
    )
    return [cast_tensor(from_buffer(target, shape, WIDE), dtype)]

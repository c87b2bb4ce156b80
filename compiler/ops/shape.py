"""Shape manipulation: Reshape, Flatten, transpose, SwapAxis, expand_dims, squeeze, Concat, stack,
SliceChannel, slice_axis, slice, tile, repeat.

Every op here only moves elements (fusion kind INJECTIVE). Rules that MXNet runs both ways
(transpose, SwapAxis, expand_dims, Concat, stack, SliceChannel, Reshape's one unknown input dim) are
two-way here too; the others infer forward.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np

from .params import Param, ParamValueError, optional, parse_axes, parse_bool, parse_int, parse_tuple
from .registry import FusionKind, define_op, reference, shape_rule, type_rule
from .rules import Mismatch, RuleError, describe, is_known, normalize_axis, same_type_rule, size_of, unify


def _product(dims) -> int | None:
    """The product of partial dims; None when any is unknown."""
    return None if any(d is None for d in dims) else size_of(dims)


def _with_dim(shape: tuple, axis: int, dim) -> tuple:
    return shape[:axis] + (dim,) + shape[axis + 1 :]


def parse_optional_int_tuple(text: str) -> tuple[int | None, ...]:
    """A tuple whose entries are ints or None: "(0, None)", "[1,2]", "(None,)", or a bare "3"."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        raise ParamValueError(f"expected a tuple of integers or None, got {text!r}") from None
    value = (value,) if value is None or isinstance(value, int) else value
    if not isinstance(value, (tuple, list)) or not all(v is None or isinstance(v, int) for v in value):
        raise ParamValueError(f"expected a tuple of integers or None, got {text!r}")
    return tuple(value)


# ---------------------------------------------------------------------------------------------
# Reshape (shape codes: 0 copy, -1 infer, -2 copy the rest, -3 merge two, -4 split one)

define_op(
    "Reshape",
    aliases=("reshape",),
    params=(
        Param("shape", parse_tuple, (), "the target shape, with special codes 0, -1, -2, -3, -4"),
        Param("reverse", parse_bool, False, "whether special codes match input dims from the right"),
        Param("target_shape", parse_tuple, (), "(deprecated) the target shape; 0 marks the inferred dim"),
        Param("keep_highest", parse_bool, False, "(deprecated, with target_shape) whether to keep dim 0"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Gives the data a new shape with the same number of elements (MXNet's special codes apply).",
)


@dataclass
class _ReshapeCursor:
    """Walks the `shape` codes and the input dims together, as MXNet's InferReshapeShape does."""

    codes: list
    source: list
    code_at: int = 0
    source_at: int = 0
    out: list = field(default_factory=list)
    infer_at: int | None = None

    def take(self, count: int = 1) -> list:
        if self.source_at + count > len(self.source):
            raise RuleError(
                f"shape code {self.codes[self.code_at]} reads past the input's {len(self.source)} dims"
            )
        dims = self.source[self.source_at : self.source_at + count]
        self.source_at += count
        return dims

    def next_code(self) -> int:
        self.code_at += 1
        if self.code_at >= len(self.codes):
            raise RuleError("shape code -4 must be followed by two dims")
        return self.codes[self.code_at]


def _copy_dim(c: _ReshapeCursor, code: int):
    c.out.extend(c.take())


def _infer_dim(c: _ReshapeCursor, code: int):
    if c.infer_at is not None:
        raise RuleError("only one dim of the target shape can be inferred (-1)")
    c.infer_at = len(c.out)
    c.out.append(1)
    c.source_at += 1


def _copy_rest(c: _ReshapeCursor, code: int):
    c.out.extend(c.source[c.source_at :])
    c.source_at = len(c.source)


def _merge_two(c: _ReshapeCursor, code: int):
    c.out.append(_product(c.take(2)))


def _split_one(c: _ReshapeCursor, code: int):
    (whole,) = c.take()
    first, second = c.next_code(), c.next_code()
    if first == -1 and second == -1:
        raise RuleError("split dims (-4) cannot both be -1")
    if first == -1:
        first = None if whole is None else whole // second
    if second == -1:
        second = None if whole is None else whole // first
    if None not in (whole, first, second) and first * second != whole:
        raise RuleError(f"split dims {first}, {second} do not divide the input dim {whole}")
    c.out.extend([first, second])


def _new_dim(c: _ReshapeCursor, code: int):
    if code < -4:
        raise RuleError(f"unknown shape code {code}")
    c.out.append(code)
    c.source_at += 1


RESHAPE_CODES = {0: _copy_dim, -1: _infer_dim, -2: _copy_rest, -3: _merge_two, -4: _split_one}


def reshape_target(codes: tuple, data: tuple, reverse: bool) -> tuple:
    """The output shape of `Reshape(shape=codes, reverse=...)` on a partial input shape."""
    flip = (lambda seq: list(reversed(seq))) if reverse else list
    cursor = _ReshapeCursor(flip(codes), flip(data))
    while cursor.code_at < len(cursor.codes):
        code = cursor.codes[cursor.code_at]
        RESHAPE_CODES.get(code, _new_dim)(cursor, code)
        cursor.code_at += 1
    if cursor.infer_at is not None:
        known = _product(cursor.out)
        whole = _product(data)
        cursor.out[cursor.infer_at] = None if None in (known, whole) or known == 0 else whole // known
    return tuple(flip(cursor.out))


def legacy_target(params, data: tuple) -> tuple:
    """The deprecated `target_shape`: 0 marks the one inferred dim; keep_highest keeps dim 0."""
    out = list(params["target_shape"])
    start = 1 if params["keep_highest"] else 0
    if params["keep_highest"]:
        out[0] = data[0]
    zeros = [i for i in range(start, len(out)) if out[i] == 0]
    if len(zeros) == 1:
        out[zeros[0]] = 1
        known, whole = _product(out), _product(data)
        out[zeros[0]] = None if None in (known, whole) else whole // known
    return tuple(out)


def _reshape_forward(params, data: tuple) -> tuple | None:
    if params["shape"]:
        out = reshape_target(params["shape"], data, params["reverse"])
    elif params["target_shape"]:
        out = legacy_target(params, data)
    else:
        return None
    if is_known(out) and is_known(data) and size_of(out) != size_of(data):
        raise RuleError(
            f"target shape {describe(out)} has {size_of(out)} elements but the input {describe(data)} "
            f"has {size_of(data)}"
        )
    return out


def _reshape_backward(data: tuple | None, out: tuple | None) -> tuple | None:
    """The one unknown input dim, from a known output (MXNet's ReverseReshapeInferShape)."""
    if data is None or not is_known(out) or sum(d is None for d in data) != 1:
        return data
    rest = size_of([d for d in data if d is not None])
    return tuple(size_of(out) // rest if d is None else d for d in data)


@shape_rule("Reshape")
def reshape_shape(params, in_shapes, out_shapes):
    """Output from the input and the shape codes; a single unknown input dim from a known output."""
    data, out = in_shapes[0], out_shapes[0]
    forward = None if data is None else _reshape_forward(params, data)
    return [_reshape_backward(data, out)], [forward or out]


type_rule("Reshape")(same_type_rule)


@reference("Reshape")
def reshape_reference(params, inputs, ctx):
    x = inputs[0]
    out = _reshape_forward(params, x.shape)
    if out is None:
        raise RuleError("Reshape needs `shape` (or `target_shape`) to run")
    return [x.reshape(out)]


# ---------------------------------------------------------------------------------------------
# Flatten: (N, d1, d2, ...) -> (N, d1*d2*...)

define_op(
    "Flatten",
    aliases=("flatten",),
    fusion=FusionKind.INJECTIVE,
    doc="Collapses all axes but the first: (N, d1, d2, ...) -> (N, d1*d2*...); (N,) -> (N, 1).",
)


@shape_rule("Flatten")
def flatten_shape(params, in_shapes, out_shapes):
    """(N, d1, ...) -> (N, d1*...); a 1-D (N,) becomes (N, 1)."""
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if not data:
        raise RuleError("cannot flatten a 0-d array")
    return in_shapes, [(data[0], _product(data[1:]))]


type_rule("Flatten")(same_type_rule)


@reference("Flatten")
def flatten_reference(params, inputs, ctx):
    x = inputs[0]
    return [x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(-1, 1)]


# ---------------------------------------------------------------------------------------------
# transpose and SwapAxis: permutations of the axes (two-way)


def transpose_permutation(params, ndim: int) -> tuple[int, ...]:
    axes = params["axes"] or tuple(reversed(range(ndim)))
    perm = tuple(normalize_axis(a, ndim) for a in axes)
    if sorted(perm) != list(range(ndim)):
        raise RuleError(f"axes {params['axes']} is not a permutation of the input's {ndim} axes")
    return perm


def swap_permutation(params, ndim: int) -> tuple[int, ...]:
    first, second = normalize_axis(params["dim1"], ndim, "dim1"), normalize_axis(params["dim2"], ndim, "dim2")
    perm = list(range(ndim))
    perm[first], perm[second] = second, first
    return tuple(perm)


def _permutation_rule(permutation):
    """A two-way shape rule for an op whose output dim i is input dim perm[i]."""

    def rule(params, in_shapes, out_shapes):
        data, out = in_shapes[0], out_shapes[0]
        known = data if data is not None else out
        if known is None:
            return in_shapes, out_shapes
        perm = permutation(params, len(known))
        forward = None if data is None else tuple(data[p] for p in perm)
        backward = None if out is None else tuple(out[perm.index(i)] for i in range(len(out)))
        return [backward or data], [forward or out]

    rule.__doc__ = "Output dim i is input dim perm[i]; either side gives the other."
    return rule


def _permutation_reference(permutation):
    def permutation_reference(params, inputs, ctx):
        x = inputs[0]
        return [np.ascontiguousarray(np.transpose(x, permutation(params, x.ndim)))]

    return permutation_reference


define_op(
    "transpose",
    params=(Param("axes", parse_tuple, (), "the permutation of the axes; () reverses them"),),
    fusion=FusionKind.INJECTIVE,
    doc="Permutes the axes (reverses them by default).",
)
define_op(
    "SwapAxis",
    aliases=("swapaxes",),
    params=(
        Param("dim1", parse_int, 0, "the first axis"),
        Param("dim2", parse_int, 0, "the second axis"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Interchanges two axes.",
)
for _name, _permutation in (("transpose", transpose_permutation), ("SwapAxis", swap_permutation)):
    shape_rule(_name)(_permutation_rule(_permutation))
    type_rule(_name)(same_type_rule)
    reference(_name)(_permutation_reference(_permutation))


# ---------------------------------------------------------------------------------------------
# expand_dims(axis): insert a size-1 axis (two-way)

define_op(
    "expand_dims",
    params=(Param("axis", parse_int, doc="where the new axis goes, in [-ndim-1, ndim]"),),
    fusion=FusionKind.INJECTIVE,
    doc="Inserts a new axis of size 1 at `axis`.",
)


@shape_rule("expand_dims")
def expand_dims_shape(params, in_shapes, out_shapes):
    """The output is the input with a 1 inserted at axis; the input is the output without it."""
    data, out = in_shapes[0], out_shapes[0]
    ndim = len(data) if data is not None else len(out) - 1 if out is not None else None
    if ndim is None:
        return in_shapes, out_shapes
    axis = normalize_axis(params["axis"], ndim + 1)
    forward = None if data is None else data[:axis] + (1,) + data[axis:]
    backward = None if out is None else out[:axis] + out[axis + 1 :]
    return [backward or data], [forward or out]


type_rule("expand_dims")(same_type_rule)


@reference("expand_dims")
def expand_dims_reference(params, inputs, ctx):
    x = inputs[0]
    return [np.expand_dims(x, normalize_axis(params["axis"], x.ndim + 1))]


# ---------------------------------------------------------------------------------------------
# squeeze(axis): drop size-1 axes

define_op(
    "squeeze",
    params=(Param("axis", parse_axes, None, "the size-1 axes to drop; None drops every size-1 axis"),),
    fusion=FusionKind.INJECTIVE,
    doc="Removes size-1 axes (all of them by default); squeezing everything leaves shape (1,).",
)


def _squeezed_axes(params, data: tuple) -> tuple[int, ...] | None:
    """The axes to drop, or None while an unknown dim makes it undecidable."""
    if params["axis"] is None:
        return None if None in data else tuple(i for i, d in enumerate(data) if d == 1)
    axes = tuple(normalize_axis(a, len(data)) for a in params["axis"])
    for axis in axes:
        if data[axis] not in (None, 1):
            raise RuleError(f"cannot squeeze axis {axis} of {describe(data)}: its size {data[axis]} is not 1")
    return axes


def squeeze_result(params, data: tuple) -> tuple | None:
    axes = _squeezed_axes(params, data)
    if axes is None:
        return None
    return tuple(d for i, d in enumerate(data) if i not in axes) or (1,)


@shape_rule("squeeze")
def squeeze_shape(params, in_shapes, out_shapes):
    """The input without the squeezed axes, which must have size 1; (1,) if nothing is left."""
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    return in_shapes, [squeeze_result(params, data)]


type_rule("squeeze")(same_type_rule)


@reference("squeeze")
def squeeze_reference(params, inputs, ctx):
    x = inputs[0]
    return [x.reshape(squeeze_result(params, x.shape))]


# ---------------------------------------------------------------------------------------------
# Concat(*data, dim): join along an existing axis (two-way)

define_op(
    "Concat",
    aliases=("concat",),
    variadic="num_args",
    params=(
        Param("num_args", parse_int, doc="the number of inputs"),
        Param("dim", parse_int, 1, "the axis to join along"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Joins the inputs along axis `dim`; every other dim must match.",
)


def _common_shape(shapes: list, axis: int, what: str) -> tuple | None:
    """The shape every entry shares once its dim `axis` is blanked out."""
    common = None
    for shape in shapes:
        if shape is None:
            continue
        try:
            common = unify(common, _with_dim(shape, axis, None))
        except Mismatch:
            raise RuleError(f"{what}: {', '.join(describe(s) for s in shapes)}") from None
    return common


@shape_rule("Concat")
def concat_shape(params, in_shapes, out_shapes):
    """Inputs agree on every dim but `dim`; the output's `dim` is their sum (or gives the one unknown)."""
    known = [s for s in list(in_shapes) + list(out_shapes) if s is not None]
    if not known:
        return in_shapes, out_shapes
    ranks = {len(s) for s in known}
    if len(ranks) != 1:
        raise RuleError(f"inputs and output must have one rank: {', '.join(describe(s) for s in known)}")
    axis = normalize_axis(params["dim"], ranks.pop(), "dim")
    common = _common_shape(
        list(in_shapes) + list(out_shapes),
        axis,
        f"inputs must match on every dim except dim {axis}",
    )
    sizes = [None if s is None else s[axis] for s in in_shapes]
    total = out_shapes[0][axis] if out_shapes[0] is not None else None
    missing = [i for i, size in enumerate(sizes) if size is None]
    if not missing:
        total = sum(sizes)
    elif len(missing) == 1 and total is not None:
        rest = total - sum(s for s in sizes if s is not None)
        if rest < 1:
            raise RuleError(
                f"the output's dim {axis} ({total}) is not larger than the sum of the known inputs'"
            )
        sizes[missing[0]] = rest
    return [_with_dim(common, axis, size) for size in sizes], [_with_dim(common, axis, total)]


type_rule("Concat")(same_type_rule)


@reference("Concat")
def concat_reference(params, inputs, ctx):
    return [np.concatenate(inputs, axis=normalize_axis(params["dim"], inputs[0].ndim))]


# ---------------------------------------------------------------------------------------------
# stack(*data, axis): join along a new axis (two-way)

define_op(
    "stack",
    variadic="num_args",
    params=(
        Param("num_args", parse_int, doc="the number of inputs"),
        Param("axis", parse_int, 0, "where the new axis goes, in [-ndim-1, ndim]"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Stacks same-shaped inputs along a new axis.",
)


@shape_rule("stack")
def stack_shape(params, in_shapes, out_shapes):
    """All inputs share one shape; the output inserts num_args at `axis`."""
    out = out_shapes[0]
    ndim = next((len(s) for s in in_shapes if s is not None), None)
    ndim = ndim if ndim is not None else len(out) - 1 if out is not None else None
    if ndim is None:
        return in_shapes, out_shapes
    axis = normalize_axis(params["axis"], ndim + 1)
    from_out = None if out is None else out[:axis] + out[axis + 1 :]
    common = None
    for shape in list(in_shapes) + [from_out]:
        try:
            common = unify(common, shape)
        except Mismatch:
            raise RuleError(
                f"all inputs must have one shape: {', '.join(describe(s) for s in in_shapes)}"
            ) from None
    forward = None if common is None else common[:axis] + (len(in_shapes),) + common[axis:]
    return [common] * len(in_shapes), [forward or out]


type_rule("stack")(same_type_rule)


@reference("stack")
def stack_reference(params, inputs, ctx):
    return [np.stack(inputs, axis=normalize_axis(params["axis"], inputs[0].ndim + 1))]


# ---------------------------------------------------------------------------------------------
# SliceChannel(num_outputs, axis, squeeze_axis): split into equal parts (two-way)

define_op(
    "SliceChannel",
    aliases=("split",),
    params=(
        Param("num_outputs", parse_int, doc="the number of equal parts"),
        Param("axis", parse_int, 1, "the axis to split"),
        Param(
            "squeeze_axis", parse_bool, False, "whether to drop the split axis (its parts must have size 1)"
        ),
    ),
    outputs=lambda params: params["num_outputs"],
    output_names=lambda params: tuple(f"output{i}" for i in range(params["num_outputs"])),
    fusion=FusionKind.INJECTIVE,
    doc="Splits the data into num_outputs equal parts along `axis`.",
)


def _split_part(params, data: tuple, axis: int) -> tuple:
    """The shape of one part of `data`."""
    count, whole = params["num_outputs"], data[axis]
    if whole is not None and whole % count:
        raise RuleError(f"num_outputs={count} does not evenly divide dim {axis} of size {whole}")
    if params["squeeze_axis"]:
        if whole not in (None, count):
            raise RuleError(f"with squeeze_axis, dim {axis} must equal num_outputs={count}, got {whole}")
        return data[:axis] + data[axis + 1 :]
    return _with_dim(data, axis, None if whole is None else whole // count)


def _split_whole(params, part: tuple, axis: int) -> tuple:
    """The data shape from the shape of one part."""
    count = params["num_outputs"]
    if params["squeeze_axis"]:
        return part[:axis] + (count,) + part[axis:]
    return _with_dim(part, axis, None if part[axis] is None else part[axis] * count)


@shape_rule("SliceChannel")
def slice_channel_shape(params, in_shapes, out_shapes):
    """Each output is the data with dim `axis` divided by num_outputs (or dropped); outputs give the data."""
    if params["num_outputs"] < 1:
        raise RuleError(f"num_outputs must be at least 1, got {params['num_outputs']}")
    data = in_shapes[0]
    part = None
    for shape in out_shapes:
        try:
            part = unify(part, shape)
        except Mismatch:
            raise RuleError("all outputs must have one shape") from None
    ndim = len(data) if data is not None else None
    if ndim is None and part is not None:
        ndim = len(part) + (1 if params["squeeze_axis"] else 0)
    if ndim is None:
        return in_shapes, out_shapes
    axis = normalize_axis(params["axis"], ndim)
    forward = None if data is None else _split_part(params, data, axis)
    backward = None if part is None else _split_whole(params, part, axis)
    return [backward or data], [forward or part] * len(out_shapes)


type_rule("SliceChannel")(same_type_rule)


@reference("SliceChannel")
def slice_channel_reference(params, inputs, ctx):
    x = inputs[0]
    axis = normalize_axis(params["axis"], x.ndim)
    parts = np.split(x, params["num_outputs"], axis=axis)
    return [np.squeeze(p, axis=axis) if params["squeeze_axis"] else p for p in parts]


# ---------------------------------------------------------------------------------------------
# slice_axis(axis, begin, end)

define_op(
    "slice_axis",
    params=(
        Param("axis", parse_int, doc="the axis to slice"),
        Param("begin", parse_int, doc="the first index (negative counts from the end)"),
        Param("end", optional(parse_int), doc="one past the last index; None means the end"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Takes elements begin..end-1 along one axis.",
)


def slice_axis_bounds(params, size: int) -> tuple[int, int]:
    """begin and end as indices in [0, size]; RuleError when the range is empty or out of bounds."""
    begin = params["begin"] + size if params["begin"] < 0 else params["begin"]
    end = size if params["end"] is None else params["end"] + size if params["end"] < 0 else params["end"]
    if not 0 <= begin < end <= size:
        raise RuleError(
            f"slice_axis begin={params['begin']}, end={params['end']} is not a non-empty range of an axis of "
            f"size {size}"
        )
    return begin, end


@shape_rule("slice_axis")
def slice_axis_shape(params, in_shapes, out_shapes):
    """The input with dim `axis` replaced by end - begin."""
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    axis = normalize_axis(params["axis"], len(data))
    if data[axis] is None:
        return in_shapes, [_with_dim(data, axis, None)]
    begin, end = slice_axis_bounds(params, data[axis])
    return in_shapes, [_with_dim(data, axis, end - begin)]


type_rule("slice_axis")(same_type_rule)


@reference("slice_axis")
def slice_axis_reference(params, inputs, ctx):
    x = inputs[0]
    axis = normalize_axis(params["axis"], x.ndim)
    begin, end = slice_axis_bounds(params, x.shape[axis])
    return [np.take(x, np.arange(begin, end), axis=axis)]


# ---------------------------------------------------------------------------------------------
# slice(begin, end, step): a strided window on the leading axes

define_op(
    "slice",
    params=(
        Param("begin", parse_optional_int_tuple, doc="start index per axis (None: from the edge)"),
        Param("end", parse_optional_int_tuple, doc="stop index per axis, exclusive (None: to the edge)"),
        Param("step", parse_optional_int_tuple, (), "step per axis (None or missing: 1)"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Slices the leading len(begin) axes with begin:end:step, as Python slicing does.",
)


def _axis_window(begin, end, step, size: int) -> slice:
    """One axis of the window, clamped as MXNet's GetIndexRange clamps; RuleError when empty."""
    if step == 0:
        raise RuleError("slice step cannot be 0")
    window = slice(begin, end, step)
    start, stop, _ = window.indices(size)
    if len(range(start, stop, step)) == 0:
        raise RuleError(
            f"slice begin={begin}, end={end}, step={step} selects nothing from an axis of size {size}"
        )
    return slice(start, stop if stop >= 0 else None, step)


def _window_length(window: slice) -> int:
    return len(range(window.start, -1 if window.stop is None else window.stop, window.step))


def slice_windows(params, shape: tuple) -> list[slice | None]:
    """The window of each leading axis (None where the axis size is unknown)."""
    begin, end, step = params["begin"], params["end"], params["step"]
    if len(begin) != len(end) or len(step) not in (0, len(begin)):
        raise RuleError(f"begin {begin}, end {end} and step {step} must have one length")
    if len(begin) > len(shape):
        raise RuleError(f"slicing {len(begin)} axes exceeds the input's {len(shape)} dims")
    steps = step or (None,) * len(begin)
    return [
        None if size is None else _axis_window(b, e, 1 if s is None else s, size)
        for b, e, s, size in zip(begin, end, steps, shape)
    ]


@shape_rule("slice")
def slice_shape(params, in_shapes, out_shapes):
    """Each sliced axis keeps the elements begin:end:step selects; the other axes are kept."""
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    windows = slice_windows(params, data)
    sliced = tuple(None if w is None else _window_length(w) for w in windows)
    return in_shapes, [sliced + tuple(data[len(windows) :])]


type_rule("slice")(same_type_rule)


@reference("slice")
def slice_reference(params, inputs, ctx):
    x = inputs[0]
    return [x[tuple(slice_windows(params, x.shape))].copy()]


# ---------------------------------------------------------------------------------------------
# tile(reps) and repeat(repeats, axis)

define_op(
    "tile",
    params=(Param("reps", parse_tuple, doc="the repetitions per axis (aligned from the right)"),),
    fusion=FusionKind.INJECTIVE,
    doc="Repeats the whole array `reps` times per axis, as numpy.tile.",
)


@shape_rule("tile")
def tile_shape(params, in_shapes, out_shapes):
    """Shape and reps are right-aligned (padded with 1s); each output dim is dim * rep."""
    data, reps = in_shapes[0], params["reps"]
    if data is None:
        return in_shapes, out_shapes
    if any(r < 0 for r in reps):
        raise RuleError(f"reps {reps} cannot be negative")
    if not reps:
        return in_shapes, [data]
    ndim = max(len(data), len(reps))
    dims = (1,) * (ndim - len(data)) + tuple(data)
    reps = (1,) * (ndim - len(reps)) + tuple(reps)
    return in_shapes, [tuple(None if d is None else d * r for d, r in zip(dims, reps))]


type_rule("tile")(same_type_rule)


@reference("tile")
def tile_reference(params, inputs, ctx):
    return [np.tile(inputs[0], params["reps"])]


define_op(
    "repeat",
    params=(
        Param("repeats", parse_int, doc="how many times each element is repeated"),
        Param("axis", optional(parse_int), None, "the axis to repeat along; None flattens first"),
    ),
    fusion=FusionKind.INJECTIVE,
    doc="Repeats each element `repeats` times along `axis` (of the flattened input when axis is None).",
)


@shape_rule("repeat")
def repeat_shape(params, in_shapes, out_shapes):
    """Dim `axis` multiplied by repeats; the flattened size times repeats when axis is None."""
    data, repeats = in_shapes[0], params["repeats"]
    if repeats < 0:
        raise RuleError(f"repeats must be non-negative, got {repeats}")
    if data is None:
        return in_shapes, out_shapes
    if params["axis"] is None:
        total = _product(data)
        return in_shapes, [(None if total is None else total * repeats,)]
    axis = normalize_axis(params["axis"], len(data))
    return in_shapes, [_with_dim(data, axis, None if data[axis] is None else data[axis] * repeats)]


type_rule("repeat")(same_type_rule)


@reference("repeat")
def repeat_reference(params, inputs, ctx):
    return [np.repeat(inputs[0], params["repeats"], axis=params["axis"])]

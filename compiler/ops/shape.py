"""Shape manipulation: Reshape, Flatten, transpose, SwapAxis, expand_dims, squeeze.
(Joining and splitting live in join.py; windows and repetition in slicing.py.)

Every op here only moves elements (fusion kind INJECTIVE). Rules that MXNet runs both ways
(transpose, SwapAxis, expand_dims, Concat, stack, SliceChannel, Reshape's one unknown input dim) are
two-way here too; the others infer forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .params import (
    Param,
    parse_axes,
    parse_bool,
    parse_int,
    parse_tuple,
)
from .registry import FusionKind, define_op, grad_rule, reference, shape_rule, type_rule
from .rules import (
    RuleError,
    describe,
    is_known,
    normalize_axis,
    product_or_none,
    same_type_rule,
    size_of,
)

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
    reshapes_input=True,
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
    c.out.append(product_or_none(c.take(2)))


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
        known = product_or_none(cursor.out)
        whole = product_or_none(data)
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
        known, whole = product_or_none(out), product_or_none(data)
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


@grad_rule("Reshape")
def reshape_grad(g, node, out_grads):
    """dy reshaped to the data's shape; any further input (reshape_like's rhs) only lends a shape."""
    data = node.inputs[0]
    return [g.op("Reshape", out_grads[0], shape=g.shape(data))] + [None] * (len(node.inputs) - 1)


# ---------------------------------------------------------------------------------------------
# Flatten: (N, d1, d2, ...) -> (N, d1*d2*...)

define_op(
    "Flatten",
    aliases=("flatten",),
    fusion=FusionKind.INJECTIVE,
    reshapes_input=True,
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
    return in_shapes, [(data[0], product_or_none(data[1:]))]


type_rule("Flatten")(same_type_rule)


@reference("Flatten")
def flatten_reference(params, inputs, ctx):
    x = inputs[0]
    return [x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(-1, 1)]


grad_rule("Flatten")(reshape_grad)


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


def _permutation_grad(permutation):
    def permutation_grad(g, node, out_grads):
        """dy permuted back: transpose by the inverse permutation."""
        perm = permutation(node.params, len(g.shape(node.inputs[0])))
        inverse = tuple(perm.index(i) for i in range(len(perm)))
        return [g.op("transpose", out_grads[0], axes=inverse)]

    return permutation_grad


for _name, _permutation in (("transpose", transpose_permutation), ("SwapAxis", swap_permutation)):
    shape_rule(_name)(_permutation_rule(_permutation))
    type_rule(_name)(same_type_rule)
    reference(_name)(_permutation_reference(_permutation))
    grad_rule(_name)(_permutation_grad(_permutation))


# ---------------------------------------------------------------------------------------------
# expand_dims(axis): insert a size-1 axis (two-way)

define_op(
    "expand_dims",
    params=(Param("axis", parse_int, doc="where the new axis goes, in [-ndim-1, ndim]"),),
    fusion=FusionKind.INJECTIVE,
    reshapes_input=True,
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


grad_rule("expand_dims")(reshape_grad)


# ---------------------------------------------------------------------------------------------
# squeeze(axis): drop size-1 axes

define_op(
    "squeeze",
    params=(Param("axis", parse_axes, None, "the size-1 axes to drop; None drops every size-1 axis"),),
    fusion=FusionKind.INJECTIVE,
    reshapes_input=True,
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


grad_rule("squeeze")(reshape_grad)

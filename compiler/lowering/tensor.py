"""Lazy tensors: a shape, a dtype and a function from an element's index to its scalar expression.

Lowering rules take and return `Tensor`s. A tensor read from a buffer loads; one made by an
elementwise, broadcast or injective rule wraps its inputs' functions, so a chain of such ops becomes
one expression evaluated inside a single loop. An `Index` holds an element's position both per
dimension and as a row-major flat number, each computed only when asked for, so reshapes and
same-shape loads need no division.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod

from . import expr as E
from .expr import Expr


class Index:
    """The position of one element of a tensor of `shape`: per-dimension `dims` and/or `flat`."""

    __slots__ = ("_dims", "_flat", "shape")

    def __init__(self, shape: Sequence[int], dims: Sequence[Expr] | None = None, flat: Expr | None = None):
        if dims is None and flat is None:
            raise ValueError("an Index needs dims or a flat position")
        if dims is not None and len(dims) != len(shape):
            raise ValueError(f"index of rank {len(dims)} for shape {tuple(shape)}")
        self.shape = tuple(shape)
        self._dims = tuple(dims) if dims is not None else None
        self._flat = flat

    @property
    def dims(self) -> tuple[Expr, ...]:
        if self._dims is None:
            self._dims = unravel(self._flat, self.shape)
        return self._dims

    @property
    def flat(self) -> Expr:
        if self._flat is None:
            self._flat = ravel(self._dims, self.shape)
        return self._flat


def ravel(dims: Sequence[Expr], shape: Sequence[int]) -> Expr:
    """The row-major flat position of `dims` in `shape` (size-1 dims contribute nothing)."""
    flat = E.index(0)
    for d, n in zip(dims, shape):
        flat = E.add(E.mul(flat, E.index(n)), d) if n != 1 else flat
    return flat


def unravel(flat: Expr, shape: Sequence[int]) -> tuple[Expr, ...]:
    """Per-dimension positions of row-major `flat` in `shape`."""
    dims: list[Expr] = []
    inner = 1
    for n in reversed(shape):
        if n == 1:
            dims.append(E.index(0))
        else:
            q = E.div(flat, E.index(inner)) if inner != 1 else flat
            dims.append(E.mod(q, E.index(n)) if inner * n != prod(shape) else q)
        inner *= n
    return tuple(reversed(dims))


class Tensor:
    """`shape`, `dtype`, and `at(Index) -> Expr`; `buffer` names the buffer when it is one, dense."""

    __slots__ = ("at", "buffer", "dtype", "shape")

    def __init__(
        self, shape: Sequence[int], dtype: str, at: Callable[[Index], Expr], buffer: str | None = None
    ):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.at = at
        self.buffer = buffer

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __call__(self, *dims: Expr) -> Expr:
        """The element at per-dimension positions `dims`."""
        return self.at(Index(self.shape, dims=dims))

    def flat(self, position: Expr) -> Expr:
        """The element at row-major position `position`."""
        return self.at(Index(self.shape, flat=position))

    def __repr__(self) -> str:
        return f"Tensor({self.shape}, {self.dtype}{', ' + self.buffer if self.buffer else ''})"


def from_buffer(name: str, shape: Sequence[int], dtype: str) -> Tensor:
    """The dense row-major tensor stored in buffer `name`."""
    return Tensor(shape, dtype, lambda idx: E.Load(name, idx.flat, dtype), buffer=name)


def pointwise(fn: Callable[..., Expr], *inputs: Tensor, dtype: str | None = None, shape=None) -> Tensor:
    """`fn` applied element by element to same-shaped `inputs` (a scalar `fn(*elements)`)."""
    shape = inputs[0].shape if shape is None else shape
    out_dtype = dtype or inputs[0].dtype
    return Tensor(shape, out_dtype, lambda idx: fn(*(t.at(idx) for t in inputs)))


def broadcast_to(t: Tensor, shape: Sequence[int]) -> Tensor:
    """`t` broadcast NumPy-style to `shape` (its dims aligned right; size-1 dims repeat)."""
    shape = tuple(shape)
    if t.shape == shape:
        return t
    lead = len(shape) - len(t.shape)

    def at(idx: Index) -> Expr:
        dims = [E.index(0) if n == 1 else idx.dims[lead + k] for k, n in enumerate(t.shape)]
        return t.at(Index(t.shape, dims=dims))

    return Tensor(shape, t.dtype, at)


def reshape(t: Tensor, shape: Sequence[int]) -> Tensor:
    """The same elements in row-major order under a new shape."""
    shape = tuple(shape)
    if t.shape == shape:
        return t
    return Tensor(shape, t.dtype, lambda idx: t.at(Index(t.shape, flat=idx.flat)), buffer=t.buffer)


def remap(t: Tensor, shape: Sequence[int], dims_of: Callable[[tuple[Expr, ...]], Sequence[Expr]]) -> Tensor:
    """An injective view: output element `dims` is `t` at `dims_of(dims)` (transpose, slice, ...)."""
    return Tensor(shape, t.dtype, lambda idx: t.at(Index(t.shape, dims=tuple(dims_of(idx.dims)))))


def constant(value, shape: Sequence[int], dtype: str) -> Tensor:
    c = E.const(value, dtype)
    return Tensor(shape, dtype, lambda idx: c)


def cast_tensor(t: Tensor, dtype: str) -> Tensor:
    if t.dtype == dtype:
        return t
    return Tensor(t.shape, dtype, lambda idx: E.cast(t.at(idx), dtype))

"""NDArray's fluent methods, as MXNet 1.9.1 has them: `x.sum(axis=1)` is `mx.nd.sum(x, axis=1)`.

`attach()` (run on import) sets one method per name of `FLUENT_OPS` on `NDArray`, plus the few whose
signature MXNet spells out (`flatten`, `expand_dims`, `squeeze`, `diag`, `broadcast_like`,
`split_v2`, and `as_np_ndarray`/`to_dlpack_for_*`, which need modules above the NDArray). Names the
class already defines are left alone. A method whose op Ember's registry lacks
raises the same MXNetError as `mx.nd.<op>` (see `unsupported`).
"""

from __future__ import annotations

from ember.compiler.ops import ALIASES, SCHEMAS
from ember.runtime.errors import MXNetError

from . import unsupported
from .ndarray import NDArray, call

# The fluent methods of MXNet 1.9.1's NDArray that take (*args, **kwargs) and call the op of their name.
FLUENT_OPS = (
    "abs", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "argmax", "argmax_channel",
    "argmin", "argsort", "broadcast_axes", "cbrt", "ceil", "clip", "cos", "cosh", "degrees",
    "depth_to_space", "exp", "expm1", "fix", "flip", "floor", "log", "log10", "log1p", "log2",
    "log_softmax", "max", "mean", "min", "nanprod", "nansum", "norm", "one_hot", "ones_like", "pad", "pick",
    "prod", "radians", "rcbrt", "reciprocal", "relu", "repeat", "reshape_like", "rint", "round", "rsqrt",
    "shape_array", "sigmoid", "sign", "sin", "sinh", "size_array", "slice", "slice_axis", "slice_like",
    "softmax", "softmin", "sort", "space_to_depth", "split", "sqrt", "square", "sum", "swapaxes", "take",
    "tan", "tanh", "tile", "topk", "transpose", "trunc", "zeros_like",
)  # fmt: skip


def op_call(name: str, *args, **kwargs):
    """`mx.nd.<name>(*args, **kwargs)`, or the MXNetError saying why Ember lacks that op."""
    if name in SCHEMAS or name in ALIASES:
        return call(name, *args, **kwargs)
    reason = unsupported.reason_for(name) or unsupported.NOT_YET
    raise unsupported.not_implemented(name, reason)


def _fluent(name: str):
    def method(self, *args, **kwargs):
        return op_call(name, self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`mx.nd.{name}` with this array as its first input."
    return method


def flatten(self, inplace: bool = False) -> NDArray:
    """The array as 2-D (first axis kept); with inplace=True a view sharing this array's data."""
    return self.reshape((0, -1)) if inplace else op_call("flatten", self)


def expand_dims(self, axis: int, inplace: bool = False) -> NDArray:
    """A new axis of size 1 at `axis` (in [-ndim-1, ndim]); with inplace=True a view."""
    if not inplace:
        return op_call("expand_dims", self, axis=axis)
    shape = list(self.shape)
    if not -len(shape) - 1 <= axis <= len(shape):
        raise MXNetError(f"expand_dims: axis {axis} is out of range for a {len(shape)}-d array")
    shape.insert(axis + len(shape) + 1 if axis < 0 else axis, 1)
    return self.reshape(shape)


def squeeze(self, axis=None, inplace: bool = False) -> NDArray:
    """The array without its size-1 axes (or just `axis`, int or tuple); with inplace=True a view."""
    if not inplace:
        return op_call("squeeze", self, axis=axis)
    shape = list(self.shape)
    axes = [axis] if isinstance(axis, int) else list(axis or [])
    if len(axes) != len(set(axes)):
        raise MXNetError(f"squeeze: axis {axis} contains duplicate which is not allowed")
    for given in axes:
        if not -len(shape) <= given < len(shape):
            raise MXNetError(f"squeeze: axis {given} is out of range for a {len(shape)}-d array")
        if shape[given] != 1:
            raise MXNetError(f"squeeze: target axis {given} must be size 1, got {shape[given]}")
    drop = {a % len(shape) for a in axes} if axes else {i for i, d in enumerate(shape) if d == 1}
    kept = [d for i, d in enumerate(shape) if i not in drop]
    return self.reshape(kept or [1])


def diag(self, k: int = 0, **kwargs) -> NDArray:
    """`mx.nd.diag(x, k)`: the k-th diagonal of a matrix, or a matrix with `x` on its k-th diagonal."""
    return op_call("diag", self, k, **kwargs)


def broadcast_like(self, other: NDArray) -> NDArray:
    """This array broadcast to `other`'s shape."""
    return self.broadcast_to(other.shape)


def split_v2(self, *args, **kwargs):
    """`mx.nd.split_v2(x, ...)`: NumPy-style split into equal sections or at indices."""
    from .creation import split_v2 as split

    return split(self, *args, **kwargs)


def as_np_ndarray(self):
    """MXNet's NumPy-compatible arrays (`mx.np`) are not part of Ember: MXNetError."""
    raise MXNetError(f"as_np_ndarray: {unsupported.NUMPY_API}")


def to_dlpack_for_read(self):
    """A DLPack capsule of this array's memory, for reading by another framework."""
    from .creation import to_dlpack_for_read as capsule

    return capsule(self)


def to_dlpack_for_write(self):
    """A DLPack capsule of this array's memory, for writing by another framework."""
    from .creation import to_dlpack_for_write as capsule

    return capsule(self)


SPECIAL_METHODS = (
    flatten, expand_dims, squeeze, diag, broadcast_like, split_v2, as_np_ndarray, to_dlpack_for_read,
    to_dlpack_for_write,
)  # fmt: skip


def attach(cls: type = NDArray) -> list[str]:
    """Set every fluent method the class does not define yet; returns the names set."""
    methods = {name: _fluent(name) for name in FLUENT_OPS}
    methods.update((f.__name__, f) for f in SPECIAL_METHODS)
    added = [name for name in sorted(methods) if name not in vars(cls)]
    for name in added:
        setattr(cls, name, methods[name])
    return added


attach()

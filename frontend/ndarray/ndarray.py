"""The NDArray: MXNet 1.x's imperative array, backed by a C-contiguous NumPy array on the CPU.

Every computation goes through the op registry (`register.invoke`), so `x.sum()`, `x + y` and
`mx.nd.sum(x)` run the same NumPy reference rule the compiler is tested against. Indexing, views
and in-place updates follow MXNET_COMPAT.md section 3; conversions and properties follow 3.1.
"""

from __future__ import annotations

import warnings

import numpy as np
from ember.compiler.dtypes import dtype_name
from ember.runtime.errors import DeviceError, MXNetError, ShapeError

from ..context import Context, current_context
from . import arith, indexing


def np_dtype(dtype) -> np.dtype:
    """The NumPy dtype of anything naming one of Ember's dtypes ('float32', numpy.int32, ...)."""
    return np.dtype(dtype_name(dtype))


def check_device(ctx: Context) -> None:
    """Raise DeviceError unless arrays can be placed on `ctx`: any CPU context, or an NVIDIA GPU that
    exists. (An NDArray's values are held in host memory whatever its context; compiled programs of
    a GPU context run on that GPU, copying their inputs and outputs.)"""
    if ctx.device_type == "gpu":
        from ember.runtime.cuda_driver import cuda_device

        try:
            cuda_device(ctx.device_id)
        except DeviceError as err:
            raise DeviceError(f"cannot allocate an NDArray on {ctx}: {err}") from None


class NDArray:
    """An n-dimensional array on a context, with MXNet 1.x's operators, views and methods."""

    # numpy defers binary operators (np_array + nd) to NDArray's reflected methods
    __array_priority__ = 1000.0

    def __init__(self, data: np.ndarray | None = None, ctx: Context | None = None, writable: bool = True):
        """Wrap `data` (a NumPy array, used as is, without a copy) on `ctx` (default: the current context).

        Users create arrays with `mx.nd.array`, `mx.nd.zeros`, ...; `NDArray(None)` is the empty shell
        unpickling fills in.
        """
        ctx = ctx if ctx is not None else current_context()
        check_device(ctx)
        self._data = data
        self._ctx = ctx
        self.writable = writable

    # -- properties ---------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints."""
        return tuple(int(d) for d in self._data.shape)

    @property
    def dtype(self) -> type:
        """The element type as a NumPy type class (`numpy.float32`, ...)."""
        return self._data.dtype.type

    @property
    def context(self) -> Context:
        """The context (device) the array lives on."""
        return self._ctx

    ctx = context

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return int(self._data.size)

    @property
    def stype(self) -> str:
        """The storage type; always 'default' (dense) in Ember."""
        return "default"

    @property
    def T(self) -> NDArray:
        """The transpose (reversed axes); arrays with fewer than two axes are returned unchanged."""
        return self if self.ndim < 2 else self.transpose()

    def __repr__(self) -> str:
        shape_info = "x".join(str(d) for d in self.shape)
        return f"\n{self.asnumpy()}\n<{type(self).__name__} {shape_info} @{self.context}>"

    # -- conversion ---------------------------------------------------------------------------

    def asnumpy(self) -> np.ndarray:
        """A NumPy copy of the data."""
        return self._data.copy()

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self._data.astype(dtype if dtype is not None else self._data.dtype, copy=True)

    def asscalar(self):
        """The single element as a NumPy scalar; ValueError unless the array has exactly one element."""
        if self.size != 1:
            raise ValueError(
                f"The current array is not a scalar: asscalar() needs exactly one element, "
                f"this array has shape {self.shape}"
            )
        return self._data.reshape(-1)[0]

    def astype(self, dtype, copy: bool = True) -> NDArray:
        """The array converted to `dtype`; with copy=False the array itself when it already has it."""
        target = np_dtype(dtype)
        if not copy and target == self._data.dtype:
            return self
        return NDArray(self._data.astype(target), self._ctx)

    def copy(self) -> NDArray:
        """A copy on the same context."""
        return self.copyto(self._ctx)

    def copyto(self, other: NDArray | Context):
        """Copy into NDArray `other` (same shape; converted to its dtype) or onto a new array on a context."""
        if isinstance(other, NDArray):
            if other is self:
                warnings.warn("You are attempting to copy an array to itself", RuntimeWarning, stacklevel=2)
                return False
            if other.shape != self.shape:
                raise ShapeError(
                    f"copyto: cannot copy an array of shape {self.shape} into one of shape {other.shape}"
                )
            other._data[...] = self._data
            return other
        if isinstance(other, Context):
            return NDArray(self._data.copy(), other)
        raise TypeError(f"copyto does not support type {type(other).__name__}")

    def as_in_context(self, context: Context) -> NDArray:
        """This array if it is on `context` already, else a copy there."""
        return self if self._ctx == context else self.copyto(context)

    def as_nd_ndarray(self) -> NDArray:
        return self

    def tostype(self, stype: str) -> NDArray:
        """A dense copy; sparse storage types are not supported."""
        if stype != "default":
            raise MXNetError(f"storage type {stype!r} is not supported: Ember has dense NDArrays only")
        return self.copy()

    def wait_to_read(self) -> None:
        """Block until pending writes finish (computation is synchronous in Ember)."""

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        if self.size == 0:
            return False
        if self.size == 1:
            return bool(self.asscalar())
        raise ValueError("The truth value of an NDArray with multiple elements is ambiguous.")

    def __hash__(self) -> int:
        return id(self) // 16

    def __reduce__(self):
        return NDArray, (None,), self.__getstate__()

    def __getstate__(self) -> dict:
        from .io import encode_array

        return {"handle": bytearray(encode_array(self))}

    def __setstate__(self, state: dict) -> None:
        from .io import decode_array

        restored = decode_array(bytes(state["handle"]), "pickled NDArray")
        self._data, self._ctx, self.writable = restored._data, restored._ctx, True

    # -- indexing -----------------------------------------------------------------------------

    def __getitem__(self, key) -> NDArray:
        key = indexing.normalize_key(key, _to_numpy)
        return NDArray(indexing.getitem(self._data, key), self._ctx)

    def __setitem__(self, key, value) -> None:
        if not self.writable:
            raise ValueError("trying to assign to a readonly NDArray")
        key = indexing.normalize_key(key, _to_numpy)
        value = value._data if isinstance(value, NDArray) else value
        indexing.setitem(self._data, key, value)

    def reshape(self, *shape, **kwargs) -> NDArray:
        """A view with a new shape; MXNet's special codes 0, -1, -2, -3, -4 and `reverse=` apply."""
        from .register import check_inputs, format_params

        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = tuple(shape[0])
        elif not shape:
            shape = kwargs.get("shape")
            if shape is None:
                raise TypeError("reshape() needs a shape")
        unknown = [k for k in kwargs if k not in ("shape", "reverse")]
        if unknown:
            raise TypeError(
                f"Got unknown keywords in reshape: {', '.join(unknown)}. "
                "Accepted keyword arguments are 'shape' and 'reverse'."
            )
        shape = tuple(int(d) for d in shape)
        attrs = tuple(
            sorted(format_params({"shape": shape, "reverse": kwargs.get("reverse", False)}).items())
        )
        dtype = self._data.dtype.name
        (new_shape,) = check_inputs("Reshape", attrs, ("data",), (self.shape,), (dtype,), "reshape")
        if new_shape is None or None in new_shape:
            raise ShapeError(f"cannot reshape an array of shape {self.shape} into {shape}")
        return NDArray(self._data.reshape(new_shape), self._ctx, self.writable)

    def broadcast_to(self, shape) -> NDArray:
        """The array broadcast to `shape` (missing leading axes are added first)."""
        shape = tuple(shape)
        if len(shape) < self.ndim:
            raise ShapeError(f"cannot broadcast an array of shape {self.shape} to {shape}: too few axes")
        padded = (1,) * (len(shape) - self.ndim) + self.shape
        source = self if padded == self.shape else self.reshape(padded)
        return _op("broadcast_to")(source, shape=shape)

    # -- arithmetic (MXNET_COMPAT.md 3.2): between NDArrays these broadcast --------------------

    def __add__(self, other):
        return arith.binary("add", self, other)

    def __radd__(self, other):
        return arith.binary("add", other, self)

    def __iadd__(self, other):
        return arith.binary("add", self, other, out=self)

    def __sub__(self, other):
        return arith.binary("subtract", self, other)

    def __rsub__(self, other):
        return arith.binary("subtract", other, self)

    def __isub__(self, other):
        return arith.binary("subtract", self, other, out=self)

    def __mul__(self, other):
        return arith.binary("multiply", self, other)

    def __rmul__(self, other):
        return arith.binary("multiply", other, self)

    def __imul__(self, other):
        return arith.binary("multiply", self, other, out=self)

    def __truediv__(self, other):
        return arith.binary("divide", self, other)

    def __rtruediv__(self, other):
        return arith.binary("divide", other, self)

    def __itruediv__(self, other):
        return arith.binary("divide", self, other, out=self)

    def __mod__(self, other):
        return arith.binary("modulo", self, other)

    def __rmod__(self, other):
        return arith.binary("modulo", other, self)

    def __imod__(self, other):
        return arith.binary("modulo", self, other, out=self)

    def __pow__(self, other):
        return arith.binary("power", self, other)

    def __rpow__(self, other):
        return arith.binary("power", other, self)

    def __neg__(self):
        return arith.binary("multiply", self, -1.0)

    def __eq__(self, other):
        return arith.binary("equal", self, other)

    def __ne__(self, other):
        return arith.binary("not_equal", self, other)

    def __gt__(self, other):
        return arith.binary("greater", self, other)

    def __ge__(self, other):
        return arith.binary("greater_equal", self, other)

    def __lt__(self, other):
        return arith.binary("lesser", self, other)

    def __le__(self, other):
        return arith.binary("lesser_equal", self, other)


def _to_numpy(index):
    """The NumPy data of an NDArray index, None for any other index."""
    return index._data if isinstance(index, NDArray) else None


def _op(name: str):
    from .register import op_function

    return op_function(name)


# Methods that call the op of the same name with this array as the first input, as MXNet's
# "fluent" methods do: `x.sum(axis=1)` is `mx.nd.sum(x, axis=1)`.
FLUENT_METHODS = (
    "sum", "mean", "max", "min", "prod", "nansum", "norm", "argmax", "argmin",
    "exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "square", "reciprocal", "abs", "sign",
    "round", "floor", "ceil", "sin", "cos", "tan", "relu", "sigmoid", "tanh",
    "softmax", "log_softmax", "clip", "transpose", "flatten", "expand_dims", "squeeze", "swapaxes",
    "split", "slice_axis", "take", "pick", "one_hot", "tile", "repeat", "topk", "sort", "argsort",
    "zeros_like", "ones_like", "reshape_like",
)  # fmt: skip


def _fluent(name: str):
    def method(self, *args, **kwargs):
        return _op(name)(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`mx.nd.{name}` with this array as its first input."
    return method


for _name in FLUENT_METHODS:
    setattr(NDArray, _name, _fluent(_name))

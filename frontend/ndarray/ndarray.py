"""The NDArray: MXNet 1.x's imperative array, backed by a C-contiguous NumPy array on the CPU.

Every computation goes through the op registry (`invoke`, below), so `x.sum()`, `x + y` and
`mx.nd.sum(x)` run the same NumPy reference rule the compiler is tested against. Indexing, views
and in-place updates follow MXNET_COMPAT.md section 3; conversions and properties follow 3.1;
arithmetic with scalars and broadcasting (`binary`) follows 3.2. The op machinery that needs no
NDArray (`op_call`), indexing and the binary record format (`records`) live in lower modules; the
generated `mx.nd.<op>` functions (`register`), `mx.nd.add` and friends (`arith`) and `.params`
files (`io`) sit above this one.
"""

from __future__ import annotations

import numbers
import operator
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ember.compiler.dtypes import dtype_name
from ember.compiler.ops import SCHEMAS, canonical_name, get_schema
from ember.runtime.errors import DeviceError, MXNetError, ShapeError

from .. import profiler
from ..context import Context, check_context, cpu, current_context
from . import compiled_steps, dispatch, indexing, op_call, recorded_indexing, tape
from .records import decode_pickled_state, encode_record


def np_dtype(dtype) -> np.dtype:
    """The NumPy dtype of anything naming one of Ember's dtypes ('float32', numpy.int32, ...)."""
    return np.dtype(dtype_name(dtype))


def check_device(ctx: Context) -> None:
    """Raise DeviceError unless arrays can be placed on `ctx`: any CPU context, or an NVIDIA GPU that
    exists (and MXNetError when `ctx` is no Context at all, a 'cpu' string say). (An NDArray's values
    are held in host memory whatever its context; compiled programs of a GPU context run on that GPU,
    copying their inputs and outputs.)"""
    if check_context(ctx, "ctx").device_type == "gpu":
        from ember.runtime.cuda_driver import cuda_device

        try:
            cuda_device(ctx.device_id)
        except DeviceError as err:
            raise DeviceError(f"cannot allocate an NDArray on {ctx}: {err}") from None


IN_PLACE_WHILE_RECORDING = (
    "Inplace operations (+=, -=, x[:]=, etc) are not supported when recording with autograd. Assigning "
    "to NDArrays that are already in a computational graph will cause undefined behavior when evaluating "
    "gradients. Please call backward first to clear the graph or do this out side of a record section."
)


class NDArray:
    """An n-dimensional array on a context, with MXNet 1.x's operators, views and methods."""

    # numpy defers binary operators (np_array + nd) to NDArray's reflected methods
    __array_priority__ = 1000.0
    writable = True
    _entry = None  # (tape entry, output index) while the array is recorded or a marked variable
    _pending = None  # set on a PendingNDArray only

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
        return self._data.shape

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
        """The number of axes."""
        return self._data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
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

    def host_buffer(self) -> np.ndarray:
        """The NumPy array holding this array's values, without a copy (Ember only; MXNet has no such
        call). Writing into it changes the array; it stays the array's memory until
        `adopt_host_buffer` gives the array another."""
        return self._data

    def adopt_host_buffer(self, buffer: np.ndarray) -> None:
        """Make `buffer` this array's memory from now on, without copying (Ember only): the array's
        values become `buffer`'s, and writes through either show in both. `buffer` must be a NumPy
        array of this array's shape and dtype (a compiled program's memory, for instance)."""
        if not isinstance(buffer, np.ndarray):
            raise TypeError(f"adopt_host_buffer needs a NumPy array, not {type(buffer).__name__}")
        if buffer.shape != self._data.shape or buffer.dtype != self._data.dtype:
            raise ShapeError(
                f"adopt_host_buffer: the buffer is {buffer.dtype.name}{list(buffer.shape)}, the array "
                f"{self._data.dtype.name}{list(self._data.shape)}"
            )
        compiled_steps.before_write(self)
        self._data = buffer
        if self._entry is not None and not self._entry[0].inputs:
            self._entry[0].values[0] = buffer

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
        if self._entry is not None and tape.FLAGS.recording:
            return invoke("Cast", [self], {"dtype": target.name})
        return NDArray(self._data.astype(target), self._ctx)

    def copy(self) -> NDArray:
        """A copy on the same context (recorded as `_copy` while autograd records this array)."""
        if self._entry is not None and tape.FLAGS.recording:
            return invoke("_copy", [self])
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
            compiled_steps.before_write(other)
            other._data[...] = self._data
            return other
        if isinstance(other, Context):
            return NDArray(self._data.copy(), other)
        raise MXNetError(
            f"copyto does not support type {type(other).__name__}: pass an NDArray, or a Context such as "
            "mx.cpu() or mx.gpu(i)"
        )

    def as_in_context(self, context: Context) -> NDArray:
        """This array if it is on `context` already, else a copy there."""
        return self if self._ctx == context else self.copyto(context)

    def as_nd_ndarray(self) -> NDArray:
        """This array (it is a legacy `mx.nd` array already)."""
        return self

    def slice_assign(self, rhs, begin, end, step) -> NDArray:
        """Write NDArray `rhs` into the region begin:end:step of this array (in place); returns it."""
        self[_region(begin, end, step)] = rhs
        return self

    def slice_assign_scalar(self, value, begin, end, step) -> NDArray:
        """Fill the region begin:end:step of this array with `value` (in place); returns it."""
        self[_region(begin, end, step)] = float(value)
        return self

    def tostype(self, stype: str) -> NDArray:
        """A dense copy; sparse storage types are not supported."""
        if stype != "default":
            raise MXNetError(f"storage type {stype!r} is not supported: Ember has dense NDArrays only")
        return self.copy()

    def wait_to_read(self) -> None:
        """Block until pending writes finish (computation is synchronous in Ember)."""

    # -- autograd (MXNET_COMPAT.md 3.4) ----------------------------------------------------------

    def attach_grad(self, grad_req: str = "write", stype=None) -> None:
        """Mark this array as a variable to differentiate against: `grad` becomes a zero array of its
        shape, written ('write') or accumulated into ('add') by backward passes; 'null' records no
        gradient. Recording restarts from this array (it becomes a leaf)."""
        if stype is not None and stype != "default":
            raise MXNetError(
                f"attach_grad: storage type {stype!r} is not supported: Ember has dense NDArrays only"
            )
        grad = _wrap(np.zeros_like(self._data), self._ctx)
        self._entry = (tape.leaf_entry(self._data, check_grad_req(grad_req), grad), 0)

    @property
    def grad(self) -> NDArray | None:
        """The gradient array `attach_grad` made (None for arrays that are not marked variables)."""
        entry = self._entry[0] if self._entry is not None else None
        return entry.grad_array if entry is not None and not entry.inputs else None

    @property
    def _fresh_grad(self) -> bool:
        """Whether a backward pass wrote `grad` since this flag was last cleared (Gluon's Trainer)."""
        entry = self._entry[0] if self._entry is not None else None
        return bool(entry is not None and entry.fresh_grad)

    @_fresh_grad.setter
    def _fresh_grad(self, state: bool) -> None:
        if self._entry is not None:
            self._entry[0].fresh_grad = bool(state)

    def detach(self) -> NDArray:
        """The same data (no copy) outside any recorded graph: gradients stop here."""
        return _wrap(self._data, self._ctx)

    def backward(self, out_grad=None, retain_graph: bool = False, train_mode: bool = True) -> None:
        """Compute the gradients of this array with respect to every marked variable it depends on,
        into their `grad` arrays; `out_grad` weights the head (ones by default)."""
        compiled_steps.backward([self], [out_grad], retain_graph, train_mode)

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
        return {"handle": bytearray(encode_record(self._data, self._ctx))}

    def __setstate__(self, state: dict) -> None:
        # as MXNet, an unpickled array is on the CPU, whatever its context was
        self._data = decode_pickled_state(state)
        self._ctx, self.writable = cpu(0), True

    # -- indexing -----------------------------------------------------------------------------

    def __getitem__(self, key) -> NDArray:
        key = indexing.normalize_key(key, _to_numpy)
        result = _wrap(indexing.getitem(self._data, key), self._ctx)
        if self._entry is not None and tape.FLAGS.recording:
            result._entry = recorded_indexing.record_getitem(self._entry, self._data, key, result._data)
        return result

    def __setitem__(self, key, value) -> None:
        if not self.writable:
            raise ValueError("trying to assign to a readonly NDArray")
        compiled_steps.before_write(self)
        recorded_value = tape.FLAGS.recording and getattr(value, "_entry", None) is not None
        if tape.FLAGS.recording and self._entry is not None:
            raise MXNetError(IN_PLACE_WHILE_RECORDING)
        key = indexing.normalize_key(key, _to_numpy)
        if recorded_value and not recorded_indexing.is_window_key(key, self.ndim):
            raise MXNetError(
                f"x[{key!r}] = y with a recorded y is not differentiable in Ember: inside autograd.record() "
                "assign through ints and slices, or build the array with concat, stack or where"
            )
        old = self._data.copy() if recorded_value else None
        data = value._data if isinstance(value, NDArray) else value
        indexing.setitem(self._data, key, data)
        if recorded_value:  # as MXNet's _slice_assign: the array becomes a recorded result
            self._entry = recorded_indexing.record_assignment(self._data, key, value._entry, data, old)

    def reshape(self, *shape, **kwargs) -> NDArray:
        """A view with a new shape; MXNet's special codes 0, -1, -2, -3, -4 and `reverse=` apply."""
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
            sorted(op_call.format_params({"shape": shape, "reverse": kwargs.get("reverse", False)}).items())
        )
        dtype = self._data.dtype.name
        (new_shape,), _ = op_call.check_inputs(
            "Reshape", attrs, ("data",), (self.shape,), (dtype,), "reshape"
        )
        if new_shape is None or None in new_shape:
            raise ShapeError(f"cannot reshape an array of shape {self.shape} into {shape}")
        result = NDArray(self._data.reshape(new_shape), self._ctx, self.writable)
        if self._entry is not None and tape.FLAGS.recording:
            result._entry = recorded_indexing.record_reshape(self._entry, self._data, result._data)
        return result

    def broadcast_to(self, shape) -> NDArray:
        """The array broadcast to `shape` (missing leading axes are added first)."""
        shape = tuple(shape)
        if len(shape) < self.ndim:
            raise ShapeError(f"cannot broadcast an array of shape {self.shape} to {shape}: too few axes")
        padded = (1,) * (len(shape) - self.ndim) + self.shape
        source = self if padded == self.shape else self.reshape(padded)
        return call("broadcast_to", source, shape=shape)

    # -- arithmetic (MXNET_COMPAT.md 3.2): between NDArrays these broadcast --------------------

    def __add__(self, other):
        return binary("add", self, other)

    def __radd__(self, other):
        return binary("add", other, self)

    def __iadd__(self, other):
        return binary("add", self, other, out=self)

    def __sub__(self, other):
        return binary("subtract", self, other)

    def __rsub__(self, other):
        return binary("subtract", other, self)

    def __isub__(self, other):
        return binary("subtract", self, other, out=self)

    def __mul__(self, other):
        return binary("multiply", self, other)

    def __rmul__(self, other):
        return binary("multiply", other, self)

    def __imul__(self, other):
        return binary("multiply", self, other, out=self)

    def __truediv__(self, other):
        return binary("divide", self, other)

    def __rtruediv__(self, other):
        return binary("divide", other, self)

    def __itruediv__(self, other):
        return binary("divide", self, other, out=self)

    def __mod__(self, other):
        return binary("modulo", self, other)

    def __rmod__(self, other):
        return binary("modulo", other, self)

    def __imod__(self, other):
        return binary("modulo", self, other, out=self)

    def __pow__(self, other):
        return binary("power", self, other)

    def __rpow__(self, other):
        return binary("power", other, self)

    def __neg__(self):
        return binary("multiply", self, -1.0)

    def __abs__(self):
        return invoke("abs", [self])

    # Python 2 spellings MXNet's NDArray still defines
    __div__, __rdiv__, __idiv__ = __truediv__, __rtruediv__, __itruediv__

    def __nonzero__(self) -> bool:
        return self.__bool__()

    def __eq__(self, other):
        return binary("equal", self, other)

    def __ne__(self, other):
        return binary("not_equal", self, other)

    def __gt__(self, other):
        return binary("greater", self, other)

    def __ge__(self, other):
        return binary("greater_equal", self, other)

    def __lt__(self, other):
        return binary("lesser", self, other)

    def __le__(self, other):
        return binary("lesser_equal", self, other)


def _settling(name: str) -> property:
    """A PendingNDArray attribute that gives the array its values first, then reads or writes `name`
    (by then the array is an NDArray, whose instance holds it)."""

    def read(self):
        self._settle()
        return getattr(self, name)

    def write(self, value):
        self._settle()
        setattr(self, name, value)

    return property(read, write)


class PendingNDArray(NDArray):
    """The result of a call deferred by the compiled-steps tier (`compiled_steps.py`): shape, dtype and
    context are known; the values come from the step's program at `backward`, or from replaying the
    step the moment anything else needs them (its values or its tape entry).
    `_pending` is (step log, wire, shape, NumPy dtype). Once it has values the array is an NDArray."""

    _data = _settling("_data")
    _entry = _settling("_entry")

    @property
    def shape(self) -> tuple[int, ...]:
        return self._pending[2]

    @property
    def dtype(self) -> type:
        return self._pending[3].type

    @property
    def ndim(self) -> int:
        return len(self._pending[2])

    @property
    def size(self) -> int:
        return int(np.prod(self._pending[2], dtype=np.int64))

    def _fill(self, data: np.ndarray, entry_pair: tuple) -> None:
        """Give the array its values and tape entry: from now on it is an NDArray."""
        self.__class__ = NDArray
        values = self.__dict__
        del values["_pending"]
        values["_data"], values["_entry"] = data, entry_pair

    def _settle(self) -> None:
        self._pending[0].settle()  # its step log (compiled_steps.StepLog) replays the deferred calls
        if type(self) is PendingNDArray:  # every pending array of a replayed log has values: cannot happen
            raise MXNetError("internal error: a deferred array lost its step")


compiled_steps.PENDING_ARRAY = PendingNDArray  # a deferred backward pass makes gradient arrays pending

# The exact types of NDArray objects, for the fast paths that test `type(x)` rather than isinstance
ARRAY_TYPES = (NDArray, PendingNDArray)


# -- running ops on NDArrays ------------------------------------------------------------------------


def invoke(
    op: str,
    inputs: Sequence[NDArray],
    params: Mapping[str, Any] | None = None,
    *,
    out=None,
    name: str | None = None,
    ctx=None,
):
    """Run `op` on NDArray `inputs` (in the schema's input order) with Python-valued `params`: the one
    path by which an NDArray operation runs. The first call of a signature checks the inputs against
    the op's shape and type rules (ShapeError naming the op and the shapes) and picks its kernel
    (`dispatch`); while autograd records, the call is added to the tape (`tape`).

    Returns one NDArray, or a list when the op has several visible outputs; with `out=` the
    results are written into the given NDArray(s), which are returned.
    """
    for item in inputs:
        if type(item) not in ARRAY_TYPES and not isinstance(item, NDArray):
            index = list(inputs).index(item)
            raise TypeError(f"operator {op} expects NDArray inputs; input {index} is a {type(item).__name__}")
    recording = tape.FLAGS.recording
    if recording:
        if compiled_steps.HOT_TRACES and out is None and not profiler.RUNNING:
            pending = compiled_steps.defer(PendingNDArray, op, inputs, params, name, ctx)
            if pending is not None:
                return pending
        if tape.FLAGS.step_log is None:
            compiled_steps.open_step()
    arrays = [x._data for x in inputs]
    prepared = dispatch.prepared(
        op, params, name, tuple([a.shape for a in arrays]), tuple([a.dtype for a in arrays])
    )
    if out is not None:
        if recording:
            _check_not_recorded(out)
        else:
            for target in out if isinstance(out, (list, tuple)) else (out,):
                compiled_steps.before_write(target)
            if type(out) is NDArray and _write_in_place(prepared, arrays, out):
                return out
    if profiler.RUNNING:
        start = time.perf_counter_ns()
        results = prepared.kernel(arrays)
        profiler.record_event(prepared.op, "operator", start, time.perf_counter_ns())
    else:
        results = prepared.kernel(arrays)
    visible = results[: prepared.visible] if len(results) > prepared.visible else results
    if out is not None:
        outputs = _write_out(prepared.op, visible, out)
    else:
        if ctx is None:
            ctx = inputs[0]._ctx if inputs else current_context()
        outputs = [_wrap(r, ctx) for r in visible]
    if recording:
        _record(prepared, inputs, results, outputs)
    if out is not None:
        return out
    return outputs[0] if len(outputs) == 1 else outputs


def _write_in_place(prepared, arrays: list, out: NDArray) -> bool:
    """Run a one-ufunc kernel straight into `out` when its shape and dtype are the result's; False
    (nothing done) otherwise."""
    into = getattr(prepared.kernel, "into", None)
    target = out._data
    if (
        into is None
        or not out.writable
        or target.shape != prepared.out_shapes[0]
        or target.dtype != arrays[0].dtype
    ):
        return False
    if profiler.RUNNING:
        start = time.perf_counter_ns()
        into(arrays, target)
        profiler.record_event(prepared.op, "operator", start, time.perf_counter_ns())
    else:
        into(arrays, target)
    return True


def _wrap(data: np.ndarray, ctx: Context) -> NDArray:
    """A new NDArray on `data` (no copy) on a context known to be valid."""
    array = object.__new__(NDArray)
    array._data, array._ctx = data, ctx
    return array


def _check_not_recorded(out) -> None:
    for target in out if isinstance(out, (list, tuple)) else [out]:
        if target._entry is not None:
            raise MXNetError(IN_PLACE_WHILE_RECORDING)


def _record(prepared, inputs: Sequence[NDArray], results: list, outputs: list) -> None:
    """Add the call to the tape when one of its inputs is recorded (a marked variable or a recorded
    result); its outputs become recorded results."""
    for x in inputs:
        if x._entry is not None:
            break
    else:
        return
    pairs = [x._entry if x._entry is not None else _constant_entry(x) for x in inputs]
    entry = tape.record_node(prepared.op, prepared.attrs, prepared.params, prepared.node_name, pairs, results)
    if prepared.aux_update is not None and tape.FLAGS.training:
        entry.aux_update = prepared.aux_update  # applied by the backward pass, as MXNet's CPU kernels do
    for index, output in enumerate(outputs):
        output._entry = (entry, index)
    compiled_steps.note_call(prepared, inputs, entry)


def _constant_entry(array: NDArray) -> tuple:
    """The tape entry of an input no recorded op produced: a constant leaf, kept on the array (as
    MXNet does) so later recorded ops reuse it. The array then counts as part of a recorded graph."""
    array._entry = (tape.leaf_entry(array._data), 0)
    return array._entry


def _write_out(op: str, results: list[np.ndarray], out) -> list:
    targets = list(out) if isinstance(out, (list, tuple)) else [out]
    if len(targets) != len(results):
        raise MXNetError(f"operator {op} has {len(results)} outputs but out= holds {len(targets)} arrays")
    for target, result in zip(targets, results):
        if target._data.shape != result.shape:
            raise ShapeError(
                f"operator {op} produced shape {result.shape} but its out= array has shape {target.shape}"
            )
        if not target.writable:
            raise ValueError("trying to assign to a readonly NDArray")
        target._data[...] = result
    return targets


def call(op: str, *args, **kwargs):
    """`mx.nd.<op>(*args, **kwargs)`: NDArray inputs positionally or by name, parameters positionally
    after them or as keywords, plus `out=`, `name=` and (for ops without a `ctx` parameter) `ctx=`."""
    schema, takes_ctx = _CALL_FACTS.get(op) or _call_facts(op)
    out = kwargs.pop("out", None)
    name = kwargs.pop("name", None)
    ctx = kwargs.get("ctx") if takes_ctx else kwargs.pop("ctx", None)
    ctx = ctx if isinstance(ctx, Context) else None
    if _arrays_then_keywords(args, kwargs):
        return invoke(op, args, kwargs, out=out, name=name, ctx=ctx)
    inputs, params = op_call.bind_arguments(schema, op, args, kwargs, lambda a: isinstance(a, NDArray))
    return invoke(op, inputs, params, out=out, name=name, ctx=ctx)


def _arrays_then_keywords(args: tuple, kwargs: dict) -> bool:
    """Whether a call passes only NDArrays positionally and only parameters by keyword (the usual
    form, which needs no binding of names to inputs)."""
    for value in args:
        if type(value) not in ARRAY_TYPES:
            return False
    for value in kwargs.values():
        if isinstance(value, NDArray):
            return False
    return True


_CALL_FACTS: dict[str, tuple] = {}


def _call_facts(op: str) -> tuple:
    """(schema, whether the op has a `ctx` parameter) of `op`, kept per name."""
    schema = get_schema(op)
    facts = _CALL_FACTS[op] = (schema, any(p.name == "ctx" for p in schema.params))
    return facts


# kind -> (op for two arrays, op for array-scalar, op for scalar-array, Python operator for two scalars)
BINARY_OPS = {
    "add": ("broadcast_add", "_plus_scalar", "_plus_scalar", operator.add),
    "subtract": ("broadcast_sub", "_minus_scalar", "_rminus_scalar", operator.sub),
    "multiply": ("broadcast_mul", "_mul_scalar", "_mul_scalar", operator.mul),
    "divide": ("broadcast_div", "_div_scalar", "_rdiv_scalar", operator.truediv),
    "modulo": ("broadcast_mod", "_mod_scalar", "_rmod_scalar", operator.mod),
    "power": ("broadcast_power", "_power_scalar", "_rpower_scalar", operator.pow),
    "maximum": ("broadcast_maximum", "_maximum_scalar", "_maximum_scalar", max),
    "minimum": ("broadcast_minimum", "_minimum_scalar", "_minimum_scalar", min),
    "equal": ("broadcast_equal", "_equal_scalar", "_equal_scalar", operator.eq),
    "not_equal": ("broadcast_not_equal", "_not_equal_scalar", "_not_equal_scalar", operator.ne),
    "greater": ("broadcast_greater", "_greater_scalar", "_lesser_scalar", operator.gt),
    "greater_equal": (
        "broadcast_greater_equal",
        "_greater_equal_scalar",
        "_lesser_equal_scalar",
        operator.ge,
    ),
    "lesser": ("broadcast_lesser", "_lesser_scalar", "_greater_scalar", operator.lt),
    "lesser_equal": ("broadcast_lesser_equal", "_lesser_equal_scalar", "_greater_equal_scalar", operator.le),
    # symmetric: a scalar on either side takes the same scalar op
    "logical_and": (
        "broadcast_logical_and",
        "_logical_and_scalar",
        "_logical_and_scalar",
        lambda x, y: float(bool(x) and bool(y)),
    ),
    "logical_or": (
        "broadcast_logical_or",
        "_logical_or_scalar",
        "_logical_or_scalar",
        lambda x, y: float(bool(x) or bool(y)),
    ),
    "logical_xor": (
        "broadcast_logical_xor",
        "_logical_xor_scalar",
        "_logical_xor_scalar",
        lambda x, y: float(bool(x) != bool(y)),
    ),
}


def _is_scalar(value) -> bool:
    return isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, np.ndarray)


def binary(kind: str, lhs, rhs, out=None):
    """`lhs <kind> rhs` (a key of BINARY_OPS) for any mix of NDArrays, scalars and NumPy arrays;
    NotImplemented for other types.

    As in MXNet, two NDArrays combine through the `broadcast_*` op and an NDArray with a scalar
    through the `_*_scalar` op (`_rminus_scalar` and friends when the scalar is on the left); the
    scalar takes the array's dtype, so float32 stays float32. NumPy arrays become NDArrays of the
    other operand's dtype.
    """
    array_op, scalar_op, reflected_op, python_op = BINARY_OPS[kind]
    if type(lhs) in ARRAY_TYPES:  # the common cases first: two arrays, an array and a Python number
        if type(rhs) in ARRAY_TYPES:
            return invoke(array_op, (lhs, rhs), None, out=out)
        if type(rhs) is float or type(rhs) is int:
            if scalar_op in _REGISTERED_SCALAR_OPS:
                return invoke(scalar_op, (lhs,), {"scalar": float(rhs)}, out=out)
    elif type(rhs) in ARRAY_TYPES and (type(lhs) is float or type(lhs) is int):
        if reflected_op in _REGISTERED_SCALAR_OPS:
            return invoke(reflected_op, (rhs,), {"scalar": float(lhs)}, out=out)
    if not isinstance(lhs, NDArray) and not isinstance(rhs, NDArray):
        return python_op(lhs, rhs) if _is_scalar(lhs) and _is_scalar(rhs) else NotImplemented
    array = lhs if isinstance(lhs, NDArray) else rhs
    other = rhs if array is lhs else lhs
    if isinstance(other, (np.ndarray, list, tuple)):
        other = NDArray(np.array(other, dtype=array._data.dtype), array.context)
    if isinstance(other, NDArray):
        operands = [lhs if lhs is array else other, rhs if rhs is array else other]
        return invoke(array_op, operands, out=out)
    if not _is_scalar(other):
        return NotImplemented
    op = scalar_op if array is lhs else reflected_op
    if op in _REGISTERED_SCALAR_OPS:
        return invoke(op, [array], {"scalar": float(other)}, out=out)
    # Without the scalar op, the scalar becomes a one-element array of the array's dtype.
    constant = NDArray(np.full((1,), other).astype(array._data.dtype), array.context)
    operands = [array, constant] if array is lhs else [constant, array]
    return invoke(array_op, operands, out=out)


_REGISTERED_SCALAR_OPS = {
    op for ops in BINARY_OPS.values() for op in ops[1:3] if canonical_name(op) in SCHEMAS
}


def _to_numpy(index):
    """The NumPy data of an NDArray index, None for any other index."""
    return index._data if isinstance(index, NDArray) else None


def _region(begin, end, step) -> tuple:
    """The basic index of MXNet's (begin, end, step) triple (None entries: the whole axis)."""
    step = step if step else [None] * len(begin)
    return tuple(slice(b, e, s) for b, e, s in zip(begin, end, step))


GRAD_REQS = ("write", "add", "null")


def check_grad_req(grad_req: str) -> str:
    """`grad_req` if it is 'write', 'add' or 'null', else MXNetError."""
    if grad_req not in GRAD_REQS:
        raise MXNetError(f"grad_req must be one of 'write', 'add' or 'null', got {grad_req!r}")
    return grad_req

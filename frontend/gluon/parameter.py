"""Gluon's `Parameter`, `Constant` and `ParameterDict` (MXNet 1.9.1's `mxnet.gluon.parameter`).

A Parameter holds one NDArray per context once initialized, each marked for autograd with a gradient
array (unless grad_req is 'null'), so a recorded forward's `backward()` fills `grad()`. A shape may
have unknown (0) dimensions until the first forward infers them: initialization is then *deferred*
(`allow_deferred_init`) and runs when the Block knows the shape. `ParameterDict` is the named
collection Blocks create their Parameters through (`get`), with MXNet's prefix and sharing rules, and
its `.params` file format (`save`/`load`).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np

from .. import autograd, initializer, ndarray
from ..context import Context, cpu, current_context
from ..symbol import Symbol
from ..symbol import var as symbol_var
from .errors import CheckFailed, DeferredInitializationError, InvalidValue, check

tensor_types = (Symbol, ndarray.NDArray)  # what a HybridBlock takes as data (MXNet's module constant)
GRAD_REQS = ("write", "add", "null")
STORAGE_TYPES = ("default", "row_sparse", "csr")

NOT_INITIALIZED = (
    "Parameter '{}' has not been initialized. Note that you should initialize parameters and create "
    "Trainer with Block.collect_params() instead of Block.params because the later does not include "
    "Parameters of nested child Blocks"
)
DEFERRED = (
    "Parameter '{}' has not been initialized yet because initialization was deferred. Actual "
    "initialization happens during the first forward pass. Please pass one batch of data through the "
    "network before accessing Parameters. You can also avoid deferred initialization by specifying "
    "in_units, num_features, etc., for network layers."
)


def shape_is_known(shape) -> bool:
    """Whether every dimension of `shape` is known (no 0 or -1; None: unknown)."""
    return shape is not None and all(d > 0 for d in shape)


def _dtype_name(dtype) -> str:
    return np.dtype(dtype).name


class Parameter:
    """A weight of a Block: its data (one NDArray per context), gradient arrays, and the facts an
    optimizer reads (`lr_mult`, `wd_mult`, `grad_req`). See MXNet 1.9.1's `gluon.Parameter`."""

    def __init__(
        self, name, grad_req="write", shape=None, dtype=np.float32, lr_mult=1.0, wd_mult=1.0, init=None,
        allow_deferred_init=False, differentiable=True, stype="default", grad_stype="default",
    ):  # fmt: skip
        for what, value in (("stype", stype), ("grad_stype", grad_stype)):
            check(value in STORAGE_TYPES, f"{what} for Parameter '{name}' must be one of 'default', "
                  f"'row_sparse', or 'csr', but got '{value}'")  # fmt: skip
            if value != "default":
                raise InvalidValue(
                    f"Parameter '{name}': {what}={value!r} is not supported: Ember has dense arrays only"
                )
        self._data = None  # one NDArray per context
        self._grad = None
        self._ctx_list = None
        self._trainer = None
        self._deferred_init = ()  # (init, contexts, default_init, data) until the shape is known
        self._differentiable = differentiable
        self._allow_deferred_init = allow_deferred_init
        self._grad_req = None
        self._shape = (shape,) if isinstance(shape, int) else (tuple(shape) if shape is not None else None)
        self.name = name
        self.dtype = dtype
        self.lr_mult = lr_mult
        self.wd_mult = wd_mult
        self.grad_req = grad_req
        self.init = init
        self._stype, self._grad_stype = stype, grad_stype

    def __repr__(self) -> str:
        return f"Parameter {self.name} (shape={self.shape}, dtype={self.dtype})"

    # -- attributes -----------------------------------------------------------------------------

    @property
    def grad_req(self) -> str:
        """'write', 'add' or 'null' (always 'null' for a non-differentiable Parameter)."""
        return self._grad_req

    @grad_req.setter
    def grad_req(self, req: str) -> None:
        check(req in GRAD_REQS, f"grad_req must be one of 'write', 'add', or 'null', but got '{req}'")
        if not self._differentiable:
            req = "null"
        if self._grad_req == req:
            return
        self._grad_req = req
        if req == "null" and self._grad is not None:
            self._grad = None
            self._data = [d.detach() for d in self._data]
        elif self._data is not None:
            self._init_grad()

    @property
    def shape(self):
        """The shape, 0 for dimensions not known yet (None: nothing known)."""
        return self._shape

    @shape.setter
    def shape(self, new_shape) -> None:
        new_shape = tuple(new_shape)
        if self._shape is None:
            self._shape = new_shape
            return
        check(
            len(self._shape) == len(new_shape) and all(j in (0, i) for i, j in zip(new_shape, self._shape)),
            f"Expected shape {new_shape} is incompatible with given shape {self._shape}.",
        )
        self._shape = new_shape

    @property
    def stype(self) -> str:
        return self._stype

    @property
    def dtype(self):
        """The element type (as given: a NumPy type or a name)."""
        return self._dtype

    @dtype.setter
    def dtype(self, dtype) -> None:
        self._dtype = dtype

    # -- data -----------------------------------------------------------------------------------

    def _check_and_get(self, arrays, ctx):
        """The array of `ctx` in `arrays` (`ctx` list: all of them; None: the only one, or the current
        context's), or the error saying why there is none."""
        if arrays is not None:
            if ctx is list:
                return arrays
            if ctx is None:
                if len(arrays) == 1:
                    return arrays[0]
                ctx = current_context()
            for array, array_ctx in zip(arrays, self._ctx_list):
                if array_ctx == ctx:
                    return array
            raise RuntimeError(
                f"Parameter '{self.name}' was not initialized on context {ctx}. "
                f"It was only initialized on {self._ctx_list}."
            )
        if self._deferred_init:
            raise DeferredInitializationError(DEFERRED.format(self.name))
        raise RuntimeError(NOT_INITIALIZED.format(self.name))

    def initialize(self, init=None, ctx=None, default_init=initializer.Uniform(), force_reinit=False) -> None:
        """Create the data (and gradient) arrays on `ctx` (a Context or a list; default the current
        context), filled by `init`, else the Parameter's `init`, else `default_init` (Uniform). With an
        unknown shape the initialization is deferred to the first forward (when allowed)."""
        if self._data is not None and not force_reinit:
            warnings.warn(
                f"Parameter '{self.name}' is already initialized, ignoring. Set force_reinit=True to "
                "re-initialize.",
                stacklevel=2,
            )
            return
        self._data = self._grad = None
        contexts = _context_list(ctx)
        if default_init is None:
            default_init = initializer.Uniform()
        if init is None:
            init = default_init if self.init is None else self.init
        if not shape_is_known(self.shape):
            if self._allow_deferred_init:
                self._deferred_init = (init, contexts, default_init, None)
                return
            raise InvalidValue(f"Cannot initialize Parameter '{self.name}' because it has invalid shape: "
                               f"{self.shape}.")  # fmt: skip
        self._deferred_init = (init, contexts, default_init, None)
        self._finish_deferred_init()

    def _finish_deferred_init(self) -> None:
        """Run a deferred initialization now that the shape is known."""
        if not self._deferred_init:
            return
        init, contexts, default_init, data = self._deferred_init
        self._deferred_init = ()
        check(
            shape_is_known(self.shape),
            f"Cannot initialize Parameter '{self.name}' because it has invalid shape: {self.shape}. "
            "Please specify in_units, in_channels, etc for `Block`s.",
        )
        with autograd.pause():
            if data is None:
                data = ndarray.zeros(self.shape, ctx=cpu(), dtype=self.dtype)
                initializer.create(default_init)(initializer.InitDesc(self.name, {"__init__": init}), data)
            self._init_impl(data, contexts)

    def _init_impl(self, data, contexts) -> None:
        self._ctx_list = list(contexts)
        self._data = [data.copyto(ctx) for ctx in self._ctx_list]
        self._init_grad()

    def _init_grad(self) -> None:
        if self.grad_req == "null":
            self._grad = None
            return
        self._grad = [ndarray.zeros(d.shape, ctx=d.context, dtype=d.dtype) for d in self._data]
        autograd.mark_variables(self._data, self._grad, self.grad_req)

    def _load_init(self, data, ctx, cast_dtype=False, dtype_source="current") -> None:
        """(Re)initialize from loaded `data` (an NDArray), checking shape and dtype against this one."""
        if cast_dtype:
            check(dtype_source in ("current", "saved"), "dtype_source should be either 'current' or 'saved'")
        if self.shape:
            unknown_ok = all(mine in (0, saved) for mine, saved in zip(self.shape, data.shape))
            check(
                unknown_ok and len(self.shape) == len(data.shape),
                f"Failed loading Parameter '{self.name}' from saved params: shape incompatible expected "
                f"{self.shape} vs saved {data.shape}",
            )
            self.shape = tuple(saved if mine == 0 else mine for mine, saved in zip(self.shape, data.shape))
        if self.dtype is not None:
            if cast_dtype and np.dtype(self.dtype) != np.dtype(data.dtype):
                if dtype_source == "current":
                    data = data.astype(self.dtype, copy=False)
                else:
                    self.dtype = data.dtype
            check(
                np.dtype(self.dtype) == np.dtype(data.dtype),
                f"Failed loading Parameter '{self.name}' from saved params: dtype incompatible expected "
                f"{np.dtype(self.dtype).type} vs saved {np.dtype(data.dtype).type}. Set cast_dtype=True to "
                "cast the dtype of saved params.",
            )
        contexts = None if ctx is None else _context_list(ctx)
        if self._data is None:
            if self._deferred_init:
                check(
                    contexts is None or set(contexts) == set(self._deferred_init[1]),
                    f"Failed to load Parameter '{self.name}' on {contexts} because it was previous "
                    f"initialized on {self.list_ctx()}.",
                )
                contexts = self._deferred_init[1]
            elif contexts is None:
                contexts = [cpu()]
            self._init_impl(data, contexts)
        else:
            check(
                contexts is None or set(contexts) == set(self.list_ctx()),
                f"Failed to load Parameter '{self.name}' on {contexts} because it was previous "
                f"initialized on {self.list_ctx()}.",
            )
            self.set_data(data)
        self._deferred_init = ()

    def data(self, ctx=None):
        """The data on `ctx` (default: the only context, or the current one)."""
        return self._check_and_get(self._data, ctx)

    def list_data(self) -> list:
        """The data on every context, in initialization order."""
        return self._check_and_get(self._data, list)

    def grad(self, ctx=None):
        """The gradient array on `ctx`."""
        self._check_has_grad()
        return self._check_and_get(self._grad, ctx)

    def list_grad(self) -> list:
        """The gradient arrays on every context."""
        self._check_has_grad()
        return self._check_and_get(self._grad, list)

    def _check_has_grad(self) -> None:
        if self._data is not None and self._grad is None:
            raise RuntimeError(
                f"Cannot get gradient array for Parameter '{self.name}' because grad_req='null'"
            )

    def list_ctx(self) -> list:
        """The contexts the data lives on (those it will live on, while initialization is deferred)."""
        if self._data is None:
            if self._deferred_init:
                return self._deferred_init[1]
            raise RuntimeError(NOT_INITIALIZED.format(self.name))
        return self._ctx_list

    def zero_grad(self) -> None:
        """Set the gradient arrays to 0 (for grad_req 'add' between iterations)."""
        if self._grad is None:
            return
        for grad in self._grad:
            grad[:] = 0

    def set_data(self, data) -> None:
        """Copy `data` into the data on every context (or into the pending deferred initialization)."""
        self.shape = data.shape
        if self._data is None:
            check(bool(self._deferred_init), f"Parameter '{self.name}' has not been initialized")
            self._deferred_init = self._deferred_init[:3] + (data,)
            return
        for array in self._data:
            array[:] = data

    def reset_ctx(self, ctx) -> None:
        """Move the data (and gradients) to `ctx` (a Context or a list of them)."""
        contexts = _context_list(ctx)
        if self._data is not None:
            with autograd.pause():
                data = self._reduce()
                self._init_impl(data, contexts)
        elif self._deferred_init:
            init, _, default_init, data = self._deferred_init
            self._deferred_init = (init, contexts, default_init, data)
        else:
            raise InvalidValue(f"Cannot reset context for Parameter '{self.name}' because it has not been "
                               "initialized.")  # fmt: skip

    def _reduce(self):
        """The mean of the data over its contexts, on the CPU (what `save` writes)."""
        arrays = self.list_data()
        total = arrays[0].copyto(cpu())
        for array in arrays[1:]:
            total = total + array.copyto(cpu())
        return total if len(arrays) == 1 else total / len(arrays)

    def var(self):
        """The symbol variable standing for this Parameter in a traced graph."""
        return symbol_var(
            self.name, shape=self.shape, dtype=self.dtype, lr_mult=self.lr_mult, wd_mult=self.wd_mult,
            init=self.init, stype=self._stype,
        )  # fmt: skip

    def cast(self, dtype) -> None:
        """Convert the data and gradients to `dtype`."""
        self.dtype = dtype
        if self._data is None:
            return
        with autograd.pause():
            self._data = [d.astype(dtype) for d in self._data]
            if self._grad is not None:
                self._init_grad()

    def row_sparse_data(self, row_id):
        """MXNet's row-sparse access: Ember stores every Parameter densely."""
        raise InvalidValue(f"Parameter '{self.name}' is dense: row_sparse_data needs stype='row_sparse', "
                           "which Ember does not support")  # fmt: skip

    def list_row_sparse_data(self, row_id):
        """MXNet's row-sparse access: Ember stores every Parameter densely."""
        return self.row_sparse_data(row_id)

    def _set_trainer(self, trainer) -> None:
        self._trainer = trainer


class _ConstantInit(initializer.Initializer):
    """Fills a Constant with its value, whatever its name."""

    def __init__(self, value):
        super().__init__(value=value.tolist())
        self._value = value

    def _init_weight(self, _, arr) -> None:
        arr[:] = self._value

    def __call__(self, desc, arr) -> None:  # the value, whatever the name says
        self._init_weight(desc, arr)


class Constant(Parameter):
    """A Parameter that never changes (grad_req 'null'), initialized to `value`."""

    def __init__(self, name, value):
        value = value.asnumpy() if isinstance(value, ndarray.NDArray) else np.asarray(value, dtype=np.float32)
        self.value = value
        super().__init__(
            name, grad_req="null", shape=value.shape, dtype=value.dtype, init=_ConstantInit(value),
            differentiable=False,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"Constant {self.name} (shape={self.shape}, dtype={self.dtype})"

    @Parameter.grad_req.setter
    def grad_req(self, req: str) -> None:
        if req != "null":
            warnings.warn("Constant parameter \"{}\" does not support grad_req other than \"null\", and new "
                          "value \"{}\" is ignored.".format(self.name, req), stacklevel=2)  # fmt: skip
        self._grad_req = "null"


def _context_list(ctx) -> list:
    if ctx is None:
        return [current_context()]
    if isinstance(ctx, Context):
        return [ctx]
    contexts = list(ctx)
    for item in contexts:
        if not isinstance(item, Context):
            raise InvalidValue(f"ctx must be a Context or a list of Contexts, got {type(item).__name__}")
    return contexts


class ParameterDict:
    """The Parameters of a Block, by full name (`prefix` + name); `shared` is a dict whose Parameters
    `get` returns instead of creating new ones."""

    def __init__(self, prefix="", shared=None):
        self._prefix = prefix
        self._params: OrderedDict[str, Parameter] = OrderedDict()
        self._shared = shared

    def __repr__(self) -> str:
        name = f"{self._prefix} " if self._prefix else ""
        lines = "\n".join(f"  {v}" for v in self.values())
        return f"{name}(\n{lines}\n)"

    def __getitem__(self, key) -> Parameter:
        return self._params[key]

    def __iter__(self):
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, key) -> bool:
        return key in self._params

    def items(self):
        return self._params.items()

    def keys(self):
        return self._params.keys()

    def values(self):
        return self._params.values()

    @property
    def prefix(self) -> str:
        """The prefix of every Parameter name created through `get`."""
        return self._prefix

    def _get_impl(self, name: str):
        if name in self._params:
            return self._params[name]
        if self._shared is not None and name in self._shared._params:
            self._params[name] = self._shared._params[name]
            return self._params[name]
        return None

    def get(self, name, **kwargs) -> Parameter:
        """The Parameter `prefix + name`, created with `kwargs` when it does not exist; an existing one
        must agree with them (unknown shape dimensions are filled in)."""
        full_name = self._prefix + name
        param = self._get_impl(full_name)
        if param is None:
            param = self._params[full_name] = Parameter(full_name, **kwargs)
            return param
        for key, value in kwargs.items():
            existing = getattr(param, key, None)
            if existing is None:
                setattr(param, key, value)
                continue
            if key == "shape" and _merge_shape(param, value):
                continue
            if key == "dtype" and np.dtype(value) == np.dtype(existing):
                continue
            check(
                value is None or value == existing,
                f"Cannot retrieve Parameter '{full_name}' because desired attribute does not match with "
                f"stored for attribute '{key}': desired '{value}' vs stored '{existing}'.",
            )
        return param

    def get_constant(self, name, value=None) -> Constant:
        """The Constant `prefix + name`, created from `value` when it does not exist."""
        full_name = self._prefix + name
        param = self._get_impl(full_name)
        if param is None:
            if value is None:
                raise KeyError(f"No constant named '{full_name}'. Please specify value if you want to "
                               "create a new constant.")  # fmt: skip
            param = self._params[full_name] = Constant(full_name, value)
        elif value is not None:
            check(isinstance(param, Constant), f"Parameter '{full_name}' already exists but it is not a "
                  "constant.")  # fmt: skip
            stored = param.value
            given = value.asnumpy() if isinstance(value, ndarray.NDArray) else np.asarray(value)
            check(stored.shape == given.shape and np.array_equal(stored, given),
                  f"Constant '{full_name}' already exists but its value doesn't match new value")  # fmt: skip
        return param

    def update(self, other) -> None:
        """Add `other`'s Parameters; a name both hold must be the same Parameter."""
        for key, value in other.items():
            if key in self._params:
                check(self._params[key] is value, "Cannot update self with other because they have different "
                      f"Parameters with the same name '{key}'")  # fmt: skip
            else:
                self._params[key] = value

    def initialize(self, init=initializer.Uniform(), ctx=None, verbose=False, force_reinit=False) -> None:
        """Initialize every Parameter; `init` is the default initializer for those without their own."""
        if verbose:
            init.set_verbosity(verbose=verbose)
        for param in self.values():
            param.initialize(None, ctx, init, force_reinit=force_reinit)

    def zero_grad(self) -> None:
        """Set every gradient array to 0."""
        for param in self.values():
            param.zero_grad()

    def reset_ctx(self, ctx) -> None:
        """Move every Parameter to `ctx`."""
        for param in self.values():
            param.reset_ctx(ctx)

    def list_ctx(self) -> list:
        """The contexts any Parameter lives on."""
        contexts = []
        for param in self.values():
            contexts += [c for c in param.list_ctx() if c not in contexts]
        return contexts

    def setattr(self, name, value) -> None:
        """Set attribute `name` of every Parameter (`grad_req`, `lr_mult`, ...)."""
        for param in self.values():
            setattr(param, name, value)

    def save(self, filename, strip_prefix="") -> None:
        """Write every Parameter (its mean over contexts) to an MXNet `.params` file, names without
        `strip_prefix`."""
        arrays = {}
        for param in self.values():
            if not param.name.startswith(strip_prefix):
                raise InvalidValue(
                    f"Prefix '{strip_prefix}' is to be striped before saving, but Parameter's name "
                    f"'{param.name}' does not start with '{strip_prefix}'. this may be due to your Block "
                    "shares parameters from other Blocks or you forgot to use 'with name_scope()' when "
                    "creating child blocks. For more info on naming, please see "
                    "https://mxnet.apache.org/api/python/docs/tutorials/packages/gluon/blocks/naming.html"
                )
            arrays[param.name[len(strip_prefix):]] = param._reduce()
        ndarray.save(filename, arrays)

    def load(self, filename, ctx=None, allow_missing=False, ignore_extra=False, restore_prefix="",
             cast_dtype=False, dtype_source="current") -> None:  # fmt: skip
        """Load Parameters from an MXNet `.params` file (names get `restore_prefix`; `arg:`/`aux:`
        prefixes of exported files are dropped)."""
        loaded = ndarray.load(filename)
        if not isinstance(loaded, dict):
            raise InvalidValue(f"{filename} holds a list of arrays, not named parameters")
        self.load_dict(
            loaded, ctx, allow_missing, ignore_extra, restore_prefix, filename, cast_dtype, dtype_source
        )

    def load_dict(self, param_dict, ctx=None, allow_missing=False, ignore_extra=False, restore_prefix="",
                  filename=None, cast_dtype=False, dtype_source="current") -> None:  # fmt: skip
        """Load Parameters from a dict of name -> NDArray (`filename` only names it in errors)."""
        filename = "the given dict" if filename is None else filename
        if restore_prefix:
            for name in self.keys():
                check(name.startswith(restore_prefix), f"restore_prefix is '{restore_prefix}' but Parameters "
                      f"name '{name}' does not start with '{restore_prefix}'")  # fmt: skip
        arrays = {restore_prefix + _strip_role(k): v for k, v in param_dict.items()}
        if not allow_missing:
            for name in self.keys():
                check(name in arrays, f"Parameter '{name[len(restore_prefix):]}' is missing in file "
                      f"'{filename}', which contains parameters: {_brief(arrays.keys())}. Please make sure "
                      "source and target networks have the same prefix.")  # fmt: skip
        for name, value in arrays.items():
            if name not in self._params:
                check(ignore_extra, f"Parameter '{name[len(restore_prefix):]}' loaded from file "
                      f"'{filename}' is not present in ParameterDict, choices are: {_brief(self.keys())}. "
                      "Set ignore_extra to True to ignore. Please make sure source and target networks "
                      "have the same prefix.")  # fmt: skip
                continue
            self[name]._load_init(value, ctx, cast_dtype=cast_dtype, dtype_source=dtype_source)


def _merge_shape(param: Parameter, wanted) -> bool:
    """Fill unknown dimensions of `param`'s shape from `wanted` (and the other way round); False when
    they disagree."""
    existing = param.shape
    wanted = (wanted,) if isinstance(wanted, int) else tuple(wanted)
    if len(wanted) != len(existing):
        return False
    merged = []
    for mine, theirs in zip(wanted, existing):
        if mine != theirs and mine > 0 and theirs > 0:
            return False
        merged.append(theirs if mine in (0, -1) else mine)
    param._shape = tuple(merged)
    return True


def _strip_role(name: str) -> str:
    return name[4:] if name.startswith(("arg:", "aux:")) else name


def _brief(names) -> str:
    """MXNet's short listing of names: all of them when few, else the first and last few."""
    names = list(names)
    if len(names) <= 6:
        return ", ".join(f"'{n}'" for n in names)
    return ", ".join(f"'{n}'" for n in names[:3]) + ", ..., " + ", ".join(f"'{n}'" for n in names[-3:])


__all__ = [
    "CheckFailed", "Constant", "DeferredInitializationError", "Parameter", "ParameterDict", "shape_is_known",
    "tensor_types",
]  # fmt: skip

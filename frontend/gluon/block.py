"""Gluon's `Block` and `HybridBlock` (MXNet 1.9.1's `mxnet.gluon.block`; `SymbolBlock` is in symbol_block.py).

A Block owns Parameters (through its `ParameterDict`, named `<prefix><name>` as MXNet 1.x names them:
`dense0_weight`) and child Blocks, and computes in `forward`. A HybridBlock computes in
`hybrid_forward(F, x, ..., **params)` where `F` is `ember.ndarray` (imperative) or `ember.symbol`
(tracing): `hybridize()` traces it once into a Symbol, and calls then run that graph through an
executor per input signature (shapes, dtypes, training flag) - the tiered engine, so a hot signature
runs as compiled code. While autograd records, a hybridized block runs its `hybrid_forward` on NDArrays,
which the compiled-steps tier (`ndarray/compiled_steps.py`) turns into one compiled program of the
whole training step once it repeats; from then on the block appends its recorded calls from a step
macro (`ndarray/step_macros.py`) without running its Python, as Ember's own layers and losses do.
Shapes left unknown at construction (`in_units=0`) are inferred from the first input through the
traced graph (deferred initialization).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import warnings
from collections import OrderedDict, defaultdict

import numpy as np

from .. import autograd, initializer, ndarray, symbol
from ..name import NameManager, Prefix
from ..ndarray import NDArray, step_macros
from ..nesting import flatten, regroup
from ..symbol import Symbol
from .errors import CheckFailed, DeferredInitializationError, InvalidValue, check
from .parameter import Parameter, ParameterDict, _brief, shape_is_known

MAX_EXECUTORS = 16  # a hybridized block's executors kept (input signatures, contexts, modes)
_STRUCTURE = [0]  # bumped by any change of any block's children or hooks: step macros made before are stale


class _BlockScope:
    """The naming scope of a Block (`with block.name_scope():`): children created inside get the
    block's prefix plus `<hint><n>_`, counted per hint within the block."""

    _current = threading.local()

    def __init__(self, block):
        self._block = block
        self._counter: dict[str, int] = {}
        self._old_scope = None
        self._name_scope = None

    @staticmethod
    def create(prefix, params, hint):
        """(prefix, ParameterDict) of a new Block with alias `hint` in the current scope."""
        current = getattr(_BlockScope._current, "value", None)
        if current is None:
            if prefix is None:
                prefix = NameManager.current.get(None, hint) + "_"
            params = ParameterDict(prefix) if params is None else ParameterDict(params.prefix, params)
            return prefix, params
        if prefix is None:
            count = current._counter.get(hint, 0)
            prefix = f"{hint}{count}_"
            current._counter[hint] = count + 1
        if params is None:
            parent = current._block.params
            params = ParameterDict(parent.prefix + prefix, parent._shared)
        else:
            params = ParameterDict(params.prefix, params)
        return current._block.prefix + prefix, params

    def __enter__(self):
        if self._block._empty_prefix:
            return self
        self._old_scope = getattr(_BlockScope._current, "value", None)
        _BlockScope._current.value = self
        self._name_scope = Prefix(self._block.prefix)
        self._name_scope.__enter__()
        return self

    def __exit__(self, *exc):
        if self._block._empty_prefix:
            return
        self._name_scope.__exit__(*exc)
        self._name_scope = None
        _BlockScope._current.value = self._old_scope


class HookHandle:
    """Returned by `register_forward_hook`/`register_forward_pre_hook`: `detach()` removes the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: OrderedDict, hook):
        self._hooks, self._id = hooks, next(HookHandle._ids)  # one key per registration
        hooks[self._id] = hook

    def detach(self) -> None:
        """Remove the hook (again: nothing)."""
        _STRUCTURE[0] += 1
        self._hooks.pop(self._id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()


class Block:
    """The base of every layer and model: Parameters, children, `forward`, saving and loading."""

    _summary_row = True  # whether `summary()` gives the Block a row (containers: False)

    def __init__(self, prefix=None, params=None):
        self._empty_prefix = prefix == ""
        self._prefix, self._params = _BlockScope.create(prefix, params, self._alias())
        self._name = self._prefix[:-1] if self._prefix.endswith("_") else self._prefix
        self._scope = _BlockScope(self)
        self._children: OrderedDict[str, Block] = OrderedDict()
        self._reg_params: dict[str, Parameter] = {}
        self._forward_hooks: OrderedDict = OrderedDict()
        self._forward_pre_hooks: OrderedDict = OrderedDict()

    def _alias(self) -> str:
        return self.__class__.__name__.lower()

    def __repr__(self) -> str:
        children = "\n".join(f"  ({key}): {_indent(repr(block), 2)}" for key, block in self._children.items())
        return f"{self.__class__.__name__}(\n{children}\n)"

    def __setattr__(self, name, value):
        """Blocks and Parameters assigned as attributes are registered as children and parameters."""
        if hasattr(self, name):
            existing = getattr(self, name)
            if isinstance(existing, (Parameter, Block)) and not isinstance(value, type(existing)):
                raise TypeError(f"Changing attribute type for {name} from {type(existing)} to {type(value)} "
                                "is not allowed.")  # fmt: skip
        if isinstance(value, Block):
            self.register_child(value, name)
        elif isinstance(value, Parameter):
            check(name not in self._reg_params, f"Overriding Parameter attribute {name} is not allowed. If "
                  "you want to share parameters between blocks, please set 'params' at Block construction "
                  "instead.")  # fmt: skip
            self._reg_params[name] = value
        super().__setattr__(name, value)

    @property
    def prefix(self) -> str:
        """The prefix of this Block's Parameter names and its children's prefixes."""
        return self._prefix

    @property
    def name(self) -> str:
        """The prefix without its trailing underscore."""
        return self._name

    def name_scope(self):
        """`with block.name_scope():` - children created inside are named under this block."""
        return self._scope

    @property
    def params(self) -> ParameterDict:
        """This Block's own Parameters (not its children's: see `collect_params`)."""
        return self._params

    def collect_params(self, select=None) -> ParameterDict:
        """This Block's and its descendants' Parameters; `select` keeps names matching a regex."""
        result = ParameterDict(self._params.prefix)
        if not select:
            result.update(self.params)
        else:
            pattern = re.compile(select)
            result.update({n: p for n, p in self.params.items() if pattern.match(n)})
        for child in self._children.values():
            result.update(child.collect_params(select=select))
        return result

    def _collect_params_with_prefix(self, prefix="") -> dict:
        """Parameters by structural name (`0.weight`, `features.1.bias`): the keys of save_parameters."""
        if prefix:
            prefix += "."
        found = {prefix + key: value for key, value in self._reg_params.items()}
        for name, child in self._children.items():
            found.update(child._collect_params_with_prefix(prefix + name))
        return found

    def save_parameters(self, filename, deduplicate=False) -> None:
        """Write the Parameters to an MXNet `.params` file under their structural names; `deduplicate`
        writes a shared Parameter once."""
        params = self._collect_params_with_prefix()
        if deduplicate:  # a shared Parameter is written once, under its last name (as MXNet)
            last_name = {id(value): (key, value) for key, value in params.items()}
            params = dict(last_name.values())
        ndarray.save(filename, {key: value._reduce() for key, value in params.items()})

    def load_parameters(self, filename, ctx=None, allow_missing=False, ignore_extra=False, cast_dtype=False,
                        dtype_source="current") -> None:  # fmt: skip
        """Load Parameters written by `save_parameters` (or, names without dots, by
        `collect_params().save`), on `ctx`."""
        loaded = ndarray.load(filename)
        if not isinstance(loaded, dict):
            raise InvalidValue(f"{filename} holds a list of arrays, not named parameters")
        params = self._collect_params_with_prefix()
        if not loaded and not params:
            return
        if not any("." in key for key in loaded):  # the ParameterDict format, full names
            self.collect_params().load(filename, ctx, allow_missing, ignore_extra, self.prefix,
                                       cast_dtype=cast_dtype, dtype_source=dtype_source)  # fmt: skip
            return
        if not allow_missing:
            names_of = defaultdict(list)
            for key, value in params.items():
                names_of[id(value)].append(key)
            for key, value in params.items():
                check(any(n in loaded for n in names_of[id(value)]), f"Parameter '{key}' is missing in file "
                      f"'{filename}', which contains parameters: {_brief(loaded.keys())}. Set "
                      "allow_missing=True to ignore missing parameters.")  # fmt: skip
        for key, value in loaded.items():
            if key not in params:
                if not ignore_extra:
                    raise InvalidValue(
                        f"Parameter '{key}' loaded from file '{filename}' is not present in ParameterDict, "
                        f"which contains parameters {_brief(params.keys())}. Set ignore_extra=True to "
                        "ignore. "
                    )
                continue
            params[key]._load_init(value, ctx, cast_dtype=cast_dtype, dtype_source=dtype_source)

    def save(self, prefix) -> None:
        """Write `<prefix>-model.json` (the structure, traced graphs) and `<prefix>-model.params`
        (MXNet 1.9's format; `model_files.py`)."""
        from .model_files import save_model

        save_model(self, prefix)

    def load(self, prefix) -> None:
        """Load what `save` wrote into this Block, built as the saved one was."""
        from .model_files import load_model

        load_model(self, prefix)

    def save_params(self, filename) -> None:
        """Deprecated (MXNet 1.x): `collect_params().save(filename, strip_prefix=self.prefix)`."""
        warnings.warn("save_params is deprecated. Please use save_parameters. Note that if you want load "
                      "from SymbolBlock later, please use export instead.", stacklevel=2)  # fmt: skip
        self.collect_params().save(filename, strip_prefix=self.prefix)

    def load_params(self, filename, ctx=None, allow_missing=False, ignore_extra=False) -> None:
        """Deprecated (MXNet 1.x): `load_parameters`."""
        warnings.warn("load_params is deprecated. Please use load_parameters.", stacklevel=2)
        self.load_parameters(filename, ctx, allow_missing, ignore_extra)

    def register_child(self, block, name=None) -> None:
        """Make `block` a child (named `name`, default its position)."""
        if name is None:
            name = str(len(self._children))
        self._children[name] = block
        _STRUCTURE[0] += 1

    def register_forward_pre_hook(self, hook) -> HookHandle:
        """`hook(block, inputs)` runs before each forward."""
        _STRUCTURE[0] += 1
        return HookHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> HookHandle:
        """`hook(block, inputs, outputs)` runs after each forward."""
        _STRUCTURE[0] += 1
        return HookHandle(self._forward_hooks, hook)

    def apply(self, fn):
        """Call `fn(block)` on every descendant, then on this Block; returns this Block."""
        for child in self._children.values():
            child.apply(fn)
        fn(self)
        return self

    def initialize(self, init=initializer.Uniform(), ctx=None, verbose=False, force_reinit=False) -> None:
        """Initialize every Parameter (`collect_params().initialize`)."""
        self.collect_params().initialize(init, ctx, verbose, force_reinit)

    def hybridize(self, active=True, **kwargs) -> None:
        """Hybridize every HybridBlock among the descendants (a plain Block itself stays imperative)."""
        for child in self._children.values():
            child.hybridize(active, **kwargs)

    def cast(self, dtype) -> None:
        """Convert every Parameter to `dtype`."""
        for child in self._children.values():
            child.cast(dtype)
        for param in self.params.values():
            param.cast(dtype)

    def __call__(self, *args):
        """Run the forward pass (with the registered hooks around it)."""
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):
                hook(self, args)
        out = self.forward(*args)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                hook(self, args, out)
        return out

    def forward(self, *args):
        """The computation; subclasses override it."""
        raise NotImplementedError

    def summary(self, *inputs) -> None:
        """Print each layer's output shape and parameter count for one forward pass over `inputs`."""
        from .summary import print_summary

        print_summary(self, inputs)


class HybridBlock(Block):
    """A Block whose computation, `hybrid_forward(F, x, ..., **params)`, works on NDArrays and Symbols
    alike, so it can be traced into a graph and run compiled (`hybridize`)."""

    _runs_user_code = False  # True for blocks whose hybrid_forward calls a user's function

    def __init__(self, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        self._cached_graph = ()
        self._cached_executors: dict = {}
        self._out_format = None
        self._in_format = None
        self._active = False
        self._flags: dict = {}
        # input signature -> (step_macros.Macro or None, Parameters, _STRUCTURE when captured)
        self._step_macros: dict = {}

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if isinstance(value, HybridBlock):
            self._clear_cached_op()

    def register_child(self, block, name=None) -> None:
        if not isinstance(block, HybridBlock):
            raise InvalidValue(
                f"Children of HybridBlock must also be HybridBlock, but {block} has type {type(block)}. If "
                "you are using Sequential, please try HybridSequential instead."
            )
        super().register_child(block, name)
        self._clear_cached_op()

    def hybridize(
        self, active=True, backend=None, clear=True, static_alloc=False, static_shape=False, inline_limit=2,
        forward_bulk_size=None, backward_bulk_size=None, **kwargs,
    ) -> None:  # fmt: skip
        """Trace `hybrid_forward` into a graph at the next call and run calls through it (executors per
        input signature, compiled once hot). `static_alloc`/`static_shape` are accepted: Ember's programs
        always plan their memory once per signature. `backend` (subgraph partitioning) is not supported."""
        if backend is not None:
            raise InvalidValue(f"hybridize(backend={backend!r}): Ember has no subgraph backends")
        self._active = active
        self._flags = {"static_alloc": static_alloc, "static_shape": static_shape, **kwargs}
        if clear:
            self._clear_cached_op()
        super().hybridize(active, static_alloc=static_alloc, static_shape=static_shape, **kwargs)

    def optimize_for(
        self, x, *args, backend=None, clear=False, static_alloc=False, static_shape=False, inline_limit=2,
        forward_bulk_size=None, backward_bulk_size=None, **kwargs,
    ) -> None:  # fmt: skip
        """Hybridize and trace the graph for these inputs now (finishing deferred initialization), without
        running it. MXNet's subgraph backends do not exist in Ember: `backend` must be None."""
        if backend is not None:
            raise InvalidValue(f"optimize_for(backend={backend!r}): Ember has no subgraph backends")
        self.hybridize(True, None, clear, static_alloc, static_shape, inline_limit, forward_bulk_size,
                       backward_bulk_size, **kwargs)  # fmt: skip
        self._get_graph(x, *args)
        if any(p._deferred_init for p in self.collect_params().values()):
            self._deferred_infer_shape(x, *args)
            for param in self.collect_params().values():
                param._finish_deferred_init()

    def cast(self, dtype) -> None:
        self._clear_cached_op()
        super().cast(dtype)

    def _clear_cached_op(self) -> None:
        self._cached_graph = ()
        self._cached_executors = {}
        self._step_macros = {}
        _STRUCTURE[0] += 1  # a parent's macros may hold this block's old calls

    # -- tracing --------------------------------------------------------------------------------

    def _get_graph(self, *args):
        """(input variables, output Symbol) of `hybrid_forward` traced with `args`' structure."""
        if not self._cached_graph:
            flat, self._in_format = _flatten(args, "input")
            names = ["data"] if len(flat) == 1 else [f"data{i}" for i in range(len(flat))]
            inputs = [symbol.var(n) for n in names]
            grouped = regroup(inputs, self._in_format)[0]
            params = {name: param.var() for name, param in self._reg_params.items()}
            with self.name_scope():
                out = self.hybrid_forward(symbol, *grouped, **params)
            outputs, self._out_format = _flatten(out, "output")
            self._cached_graph = inputs, (symbol.Group(outputs) if len(outputs) > 1 else outputs[0])
        return self._cached_graph

    def infer_shape(self, *args) -> None:
        """Give every Parameter the shape the traced graph infers from `args`' shapes."""
        self._infer_attrs("infer_shape", "shape", *args)

    def infer_type(self, *args) -> None:
        """Give every Parameter the dtype the traced graph infers from `args`' dtypes."""
        self._infer_attrs("infer_type", "dtype", *args)

    def _infer_attrs(self, method: str, attr: str, *args) -> None:
        inputs, out = self._get_graph(*args)
        flat, _ = _flatten(args, "input")
        given = {var.name: getattr(array, attr) for var, array in zip(inputs, flat) if array is not None}
        arg_attrs, _, aux_attrs = getattr(out, method)(**given)
        if arg_attrs is None:
            raise InvalidValue(f"{self.name}: {attr}s of the parameters cannot be inferred from the inputs")
        found = dict(zip(out.list_arguments(), arg_attrs))
        found.update(zip(out.list_auxiliary_states(), aux_attrs))
        for param in self.collect_params().values():
            if param.name in found:
                setattr(param, attr, found[param.name])

    def _deferred_infer_shape(self, *args) -> None:
        try:
            self.infer_shape(*args)
        except Exception as err:  # noqa: BLE001 - reported with MXNet's wording and the cause
            message = f"Deferred initialization failed because shape cannot be inferred. {err}"
            raise InvalidValue(message) from err

    def export(self, path, epoch=0, remove_amp_cast=True):
        """Write `<path>-symbol.json` and `<path>-<epoch>.params` (`arg:`/`aux:` names), which MXNet's
        `SymbolBlock.imports` and Module load; needs one hybridized forward first."""
        if not self._cached_graph:
            raise RuntimeError("Please first call block.hybridize() and then run forward with this block at "
                               "least once before calling export.")  # fmt: skip
        sym = self._cached_graph[1]
        sym_file = f"{path}-symbol.json"
        sym.save(sym_file, remove_amp_cast=remove_amp_cast)
        arg_names, aux_names = set(sym.list_arguments()), set(sym.list_auxiliary_states())
        arrays = {}
        for name, param in self.collect_params().items():
            if name in arg_names:
                arrays[f"arg:{name}"] = param._reduce()
            elif name in aux_names:
                arrays[f"aux:{name}"] = param._reduce()
        params_file = f"{path}-{epoch:04d}.params"
        ndarray.save(params_file, arrays)
        return sym_file, params_file

    # -- calls ----------------------------------------------------------------------------------

    def forward(self, x, *args):
        """Symbols in: the traced graph of this call. NDArrays in: computed (hybridized: through the
        cached graph; else `hybrid_forward` on NDArrays), with deferred initialization on the first.
        While autograd records a compiled step, a block whose Python adds nothing to its graph appends
        its calls without running (`_call_by_macro`)."""
        if autograd.is_recording():
            out = self._call_by_macro((x, *args))
            if out is not None:
                return out
        return self._forward(x, *args)

    def _call_by_macro(self, inputs: tuple):
        """This recorded call through its step macro (ndarray/step_macros.py): the outputs, pending in
        the speculated step, or the outputs of the call that captured the macro; None when the call
        must run as usual. Used by hybridized blocks (whose Python MXNet never runs again either) and
        by Ember's own layers and losses without hooks inside."""
        if not (self._active or _runs_only_ember_code(self)):
            return None
        key = step_macros.signature(inputs)
        if key is None:
            return None
        ctx = inputs[0].context
        found = self._step_macros.get(key)
        if found is None or found[2] != _STRUCTURE[0]:
            if len(self._step_macros) >= MAX_EXECUTORS:
                self._step_macros.clear()
            params = list(self.collect_params().values())
            out, macro = step_macros.capture(inputs, lambda: [p.data(ctx) for p in params],
                                             lambda: self._forward(*inputs))  # fmt: skip
            self._step_macros[key] = (macro, params, _STRUCTURE[0])
            return out
        macro, params, _ = found
        if macro is None:
            return None
        return step_macros.replay(macro, inputs, [p.data(ctx) for p in params], ctx)

    def _forward(self, x, *args):
        if isinstance(x, Symbol) or any(isinstance(a, Symbol) for a in _flatten(args, "input")[0]):
            params = {name: param.var() for name, param in self._reg_params.items()}
            with self.name_scope():
                return self.hybrid_forward(symbol, x, *args, **params)
        ctx = _first_context(x, args)
        if self._active:
            if not autograd.is_recording():
                return self._call_cached(x, *args)
            self._get_graph(x, *args)  # traced once all the same: `export` needs the graph
        try:
            params = {name: param.data(ctx) for name, param in self._reg_params.items()}
        except DeferredInitializationError:
            self._deferred_infer_shape(x, *args)
            for param in self.params.values():
                param._finish_deferred_init()
            params = {name: param.data(ctx) for name, param in self._reg_params.items()}
        with ctx if ctx is not None else contextlib.nullcontext():  # arrays made inside land on the inputs'
            return self.hybrid_forward(ndarray, x, *args, **params)

    def hybrid_forward(self, F, x, *args, **kwargs):
        """The computation over `F` (ember.ndarray or ember.symbol); subclasses override it."""
        raise NotImplementedError

    def _call_cached(self, *args):
        """Run the traced graph on NDArrays: one executor per input signature, context and training
        flag (at most MAX_EXECUTORS kept)."""
        inputs, out = self._get_graph(*args)
        flat, fmt = _flatten(args, "input")
        if fmt != self._in_format:
            raise InvalidValue(
                "The argument structure of HybridBlock does not match the cached version. Stored format = "
                f"{self._in_format}, input format = {fmt}"
            )
        if all(a is None for a in flat):
            raise InvalidValue(f"{self.name}: every input is None")
        params = self.collect_params()
        if any(p._deferred_init for p in params.values()):
            self._deferred_infer_shape(*args)
            for param in params.values():
                param._finish_deferred_init()
        training = autograd.is_training()
        ctx = next(a for a in flat if a is not None).context
        signature = tuple(None if a is None else (a.shape, np.dtype(a.dtype).str) for a in flat)
        key = (signature, ctx, training)
        executor = self._cached_executors.get(key)
        if executor is None:
            if len(self._cached_executors) >= MAX_EXECUTORS:  # a loop over many shapes: drop the oldest
                self._cached_executors.pop(next(iter(self._cached_executors)))
            executor = self._cached_executors[key] = _bind(out, inputs, flat, params, ctx)
        feeds = {var.name: array for var, array in zip(inputs, flat) if array is not None}
        arg_names = set(executor.arg_dict)
        feeds.update({n: p.data(ctx) for n, p in params.items() if n in arg_names})
        states = {n: p for n, p in params.items() if n in executor.aux_dict}
        for name, param in states.items():
            executor.aux_dict[name][:] = param.data(ctx)
        outputs = executor.forward(is_train=training, **feeds)
        if training:  # auxiliary states (BatchNorm's moving statistics) the forward updated
            for name, param in states.items():
                param.data(ctx)[:] = executor.aux_dict[name]
        return regroup(outputs, self._out_format)[0]


def _bind(out: Symbol, inputs: list, flat: list, params: ParameterDict, ctx):
    """An executor of the traced graph for these input shapes and dtypes (no gradients: training under
    autograd runs the imperative path)."""
    given = [(var, array) for var, array in zip(inputs, flat) if array is not None]  # None: an omitted input
    shapes = {var.name: array.shape for var, array in given}
    types = {var.name: np.dtype(array.dtype) for var, array in given}
    for name, param in params.items():
        if shape_is_known(param.shape):
            shapes[name] = param.shape
            types[name] = np.dtype(param.dtype)
    known = set(out.list_arguments()) | set(out.list_auxiliary_states())
    shapes = {n: s for n, s in shapes.items() if n in known}
    types = {n: t for n, t in types.items() if n in known}
    return out.simple_bind(ctx, grad_req="null", type_dict=types, **shapes)


# -- nested inputs and outputs (MXNet's _flatten/_regroup) --------------------------------------


def _flatten(args, what: str):
    """(flat list of arrays/symbols, format) of a nested list/tuple; `nesting.regroup` rebuilds it."""

    def leaf(value):
        if isinstance(value, Symbol):
            count = len(value.list_outputs())
            return ([value[i] for i in range(count)], count) if count > 1 else ([value], 0)
        if isinstance(value, NDArray):
            return [value], 0
        return ([None], -1) if value is None else None

    def error(value):
        return InvalidValue(
            f"HybridBlock {what} must be (nested) list of Symbol or NDArray, but got {value} of type "
            f"{type(value)}"
        )

    return flatten(args, leaf, error)



def _runs_only_ember_code(block) -> bool:
    """Whether calling `block` runs nothing but Ember's own layer code: Ember's classes all the way
    down, no forward hooks inside, no user function (HybridLambda)."""
    cls = type(block)
    if not cls.__module__.startswith("ember.") or cls._runs_user_code:
        return False
    if cls.forward is not HybridBlock.forward:
        return False
    for child in block._children.values():
        if child._forward_hooks or child._forward_pre_hooks or not _runs_only_ember_code(child):
            return False
    return True


def _first_context(x, args):
    for item in _flatten([x, *args], "input")[0]:
        if isinstance(item, NDArray):
            return item.context
    return None


def _indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    return "\n".join([lines[0]] + [" " * spaces + line for line in lines[1:]])


__all__ = ["Block", "CheckFailed", "HookHandle", "HybridBlock"]

"""`Module`: a symbol bound to data shapes, with parameters, an optimizer and an executor.

Semantics follow MXNet 1.9.1 (MXNET_COMPAT.md section 4) with Ember's one deliberate deviation: an
optimizer *object* whose `rescale_grad` was left at its default gets `1/batch_size`, with one INFO
line saying so, instead of MXNet's 100x-too-large steps (apache/mxnet#5098).
"""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict

from ember.runtime.errors import ArtifactError, MXNetError
from ember.runtime.files import read_regular_file, write_atomic

from .. import ndarray as nd
from .. import optimizer as opt
from ..context import context_list, cpu
from ..initializer import InitDesc, Uniform
from ..io import DataDesc
from ..model import load_checkpoint, write_checkpoint
from ..symbol.binding import simple_bind
from .base_module import BaseModule
from .fused_step import FusedStep

_PARAM_SUFFIXES = ("_weight", "_bias", "_gamma", "_beta")


class Module(BaseModule):
    """MXNet's `mx.mod.Module` over one executor (several contexts share it: see `bind`)."""

    def __init__(self, symbol, data_names=("data",), label_names=("softmax_label",), logger=logging,
                 context=cpu(), work_load_list=None, fixed_param_names=None, state_names=None, group2ctxs=None,
                 compression_params=None):
        super().__init__(logger=logger)
        self._symbol = symbol
        self._context = context_list(context, "Module's context")
        self._data_names = list(data_names or [])
        self._label_names = list(label_names or [])
        self._state_names = list(state_names or [])
        self._fixed_param_names = list(fixed_param_names or [])
        arguments = symbol.list_arguments()
        self._check_names(arguments)
        inputs = set(self._data_names + self._label_names + self._state_names)
        self._param_names = [n for n in arguments if n not in inputs]
        self._aux_names = symbol.list_auxiliary_states()
        self._output_names = symbol.list_outputs()
        self._arg_params = self._aux_params = None
        self._grad_req = "write"
        self._params_dirty = False
        self._exec = None
        self._data_shapes = self._label_shapes = None
        self._optimizer = self._updater = None
        self._kvstore = None  # a KVStore object given to init_optimizer: it updates the parameters
        self._preload_opt_states = None

    def _check_names(self, arguments) -> None:
        for name in self._data_names + self._state_names:
            if name not in arguments:
                candidates = [a for a in arguments if not a.endswith(_PARAM_SUFFIXES)]
                raise ValueError(
                    f"You created Module with Module(..., data_names={self._data_names}) but input with name "
                    f"'{name}' is not found in symbol.list_arguments(). Did you mean one of:\n\t"
                    + "\n\t".join(candidates)
                )
        for name in self._label_names:
            if name not in arguments:
                warnings.warn(
                    f"You created Module with Module(..., label_names={self._label_names}) but input with name "
                    f"'{name}' is not found in symbol.list_arguments().",
                    stacklevel=3,
                )
        self._label_names = [n for n in self._label_names if n in arguments]

    # -- properties ---------------------------------------------------------------------------

    data_names = property(lambda self: self._data_names)
    label_names = property(lambda self: self._label_names)
    output_names = property(lambda self: self._output_names)
    data_shapes = property(lambda self: self._data_shapes)
    label_shapes = property(lambda self: self._label_shapes)

    @property
    def output_shapes(self):
        """[(output name, shape)] for the bound input shapes."""
        self._require(binded=True)
        return list(zip(self._output_names, self._symbol.infer_shape(**self._shape_dict())[1]))

    # Ember's additions: MXNet keeps these private (its Module holds an executor group instead).

    @property
    def param_names(self) -> list[str]:
        """The parameters' names (the symbol's arguments that are not inputs); a parameter's index in
        this list is its index for the optimizer and the updater."""
        return list(self._param_names)

    @property
    def contexts(self) -> list:
        """The contexts the module was created with (they share one executor: see `bind`)."""
        return list(self._context)

    @property
    def executor(self):
        """The executor `bind` made (None before bind); it is replaced when the module is re-bound."""
        return self._exec

    @property
    def optimizer(self):
        """The optimizer `init_optimizer` created or was given (None before)."""
        return self._optimizer

    @property
    def updater(self):
        """The `Updater` applying `optimizer` and holding its states (None before `init_optimizer`)."""
        return self._updater

    # -- binding ------------------------------------------------------------------------------

    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False, force_rebind=False,
             shared_module=None, grad_req="write"):
        """Allocate an executor for these input shapes (a list of DataDesc or (name, shape))."""
        if self.binded and not force_rebind:
            self.logger.warning("Already bound, ignoring bind()")
            return
        self.for_training, self.inputs_need_grad = for_training, inputs_need_grad
        self._data_shapes = _descs(data_shapes)
        self._label_shapes = _descs(label_shapes) if label_shapes else None
        given = [d.name for d in self._data_shapes]
        if sorted(given) != sorted(self._data_names):
            raise ValueError(f"Data provided by data_shapes don't match names specified by data_names "
                             f"({given} vs. {self._data_names})")
        self._grad_req = grad_req
        self._exec = simple_bind(self._symbol, self._context[0], grad_req=self._grad_reqs(grad_req),
                                 type_dict=self._type_dict(), **self._shape_dict())
        self.binded = True
        if shared_module is not None:
            self._share_with(shared_module)
        elif self.params_initialized:
            self._exec.copy_params_from(self._arg_params, self._aux_params)
        else:  # MXNet creates the parameter copies, as zeros, at the first bind
            self._arg_params = {n: nd.zeros(a.shape, dtype=a.dtype) for n, a in self._exec.arg_dict.items()
                                if n in self._param_names}
            self._aux_params = {n: nd.zeros(a.shape, dtype=a.dtype) for n, a in self._exec.aux_dict.items()}

    def _share_with(self, shared_module: "Module") -> None:
        """Use `shared_module`'s parameter arrays (same memory, so its updates show here) and optimizer."""
        if not (shared_module.binded and shared_module.params_initialized):
            raise MXNetError("shared_module must be bound and have initialised parameters")
        theirs = {**shared_module._exec.arg_dict, **shared_module._exec.aux_dict}
        for arrays, names in ((self._exec.arg_arrays, self._exec.arg_names), (self._exec.aux_arrays, self._exec.aux_names)):
            for i, name in enumerate(names):
                if (name in self._param_names or name in self._aux_names) and name in theirs:
                    if theirs[name].shape != arrays[i].shape:
                        raise MXNetError(f"shared_module's {name!r} has shape {theirs[name].shape}, this module's {arrays[i].shape}")
                    arrays[i] = theirs[name]
        self._arg_params, self._aux_params = shared_module._arg_params, shared_module._aux_params
        self._params_dirty = True
        self.params_initialized = True
        if shared_module.optimizer_initialized:
            self._optimizer, self._updater = shared_module._optimizer, shared_module._updater
            self.optimizer_initialized = True

    def _descs_all(self):
        return list(self._data_shapes) + list(self._label_shapes or [])

    def _shape_dict(self) -> dict:
        return {d.name: tuple(d.shape) for d in self._descs_all()}

    def _type_dict(self) -> dict:
        return {d.name: d.dtype for d in self._descs_all()}

    def _grad_reqs(self, grad_req) -> dict:
        """One req per argument, as MXNet's executor group: params get `grad_req` (null when fixed),
        data gets write only with inputs_need_grad; a dict `grad_req` overrides any of them."""
        names = self._symbol.list_arguments()
        if isinstance(grad_req, (list, tuple)):
            return dict(zip(names, grad_req))
        default = grad_req if isinstance(grad_req, str) else "write"
        reqs = {}
        for name in names:
            if not self.for_training:
                reqs[name] = "null"
            elif name in self._param_names:
                reqs[name] = "null" if name in self._fixed_param_names else default
            else:
                reqs[name] = "write" if self.inputs_need_grad and name in self._data_names else "null"
        if isinstance(grad_req, dict) and self.for_training:
            reqs.update(grad_req)
        return reqs

    def reshape(self, data_shapes, label_shapes=None):
        """Re-bind for new input shapes, keeping parameters."""
        self._require(binded=True)
        if self.params_initialized:
            self._sync_params_from_devices()
        self.bind(data_shapes, label_shapes, self.for_training, self.inputs_need_grad, force_rebind=True,
                  grad_req=self._grad_req)

    # -- parameters ---------------------------------------------------------------------------

    def init_params(self, initializer=Uniform(0.01), arg_params=None, aux_params=None, allow_missing=False,
                    force_init=False, allow_extra=False):
        """Initialise parameters (in sorted-name order) from the given dicts or `initializer`."""
        if self.params_initialized and not force_init:
            warnings.warn("Parameters already initialized and force_init=False. init_params call ignored.",
                          stacklevel=2)
            return
        self._require(binded=True)
        attrs = self._symbol.attr_dict()
        for params, given in ((self._arg_params, arg_params), (self._aux_params, aux_params)):
            for name in sorted(params):
                _init_one(name, params[name], given, initializer, attrs.get(name, {}), allow_missing)
        self.params_initialized = True
        self._params_dirty = False
        self._exec.copy_params_from(self._arg_params, self._aux_params, allow_extra_params=allow_extra)

    def get_params(self):
        """(arg_params, aux_params): copies synchronised from the executor after updates."""
        self._require(binded=True, params=True)
        if self._params_dirty:
            self._sync_params_from_devices()
        return self._arg_params, self._aux_params

    def set_params(self, arg_params, aux_params, allow_missing=False, force_init=True, allow_extra=False):
        """Set parameters from dicts (no initializer: missing names are an error unless allowed)."""
        if not allow_missing:
            self.init_params(initializer=None, arg_params=arg_params, aux_params=aux_params,
                             allow_missing=allow_missing, force_init=force_init, allow_extra=allow_extra)
            return
        if self.params_initialized and not force_init:
            warnings.warn("Parameters already initialized and force_init=False. set_params call ignored.",
                          stacklevel=2)
            return
        self._exec.copy_params_from(arg_params, aux_params, allow_extra_params=allow_extra)
        self._params_dirty = True
        self.params_initialized = True

    def _sync_params_from_devices(self) -> None:
        for name, array in self._arg_params.items():
            array[:] = self._exec.arg_dict[name]
        for name, array in self._aux_params.items():
            array[:] = self._exec.aux_dict[name]
        self._params_dirty = False

    def save_params(self, fname: str) -> None:
        """Write parameters to `fname` with MXNet's arg:/aux: keys."""
        arg_params, aux_params = self.get_params()
        saved = {f"arg:{k}": v for k, v in arg_params.items()}
        saved.update({f"aux:{k}": v for k, v in aux_params.items()})
        nd.save(fname, saved)

    def load_params(self, fname: str) -> None:
        """Read parameters written by `save_params` (or MXNet)."""
        loaded = nd.load(fname)
        arg_params = {k[4:]: v for k, v in loaded.items() if k.startswith("arg:")}
        aux_params = {k[4:]: v for k, v in loaded.items() if k.startswith("aux:")}
        self.set_params(arg_params, aux_params)

    # -- optimizer ----------------------------------------------------------------------------

    def init_optimizer(self, kvstore="local", optimizer="sgd", optimizer_params=(("learning_rate", 0.01),),
                       force_init=False):
        """Create the optimizer (string + params, or an Optimizer object) and its updater."""
        self._require(binded=True, params=True)
        if self.optimizer_initialized and not force_init:
            self.logger.warning("optimizer already initialized, ignoring...")
            return
        batch_size = self._batch_size()
        rescale_grad = 1.0 / batch_size
        idx2name = dict(enumerate(self._param_names))
        if isinstance(optimizer, str):
            try:
                params = {str(k): v for k, v in dict(optimizer_params).items()}
            except (TypeError, ValueError):
                raise MXNetError(
                    "init_optimizer: optimizer_params must be a dict or (name, value) pairs, "
                    f"not {type(optimizer_params).__name__} {optimizer_params!r}"
                ) from None
            params.setdefault("rescale_grad", rescale_grad)
            optimizer = opt.create(optimizer, sym=self._symbol, param_idx2name=idx2name, **params)
        elif not isinstance(optimizer, opt.Optimizer):
            raise MXNetError(
                f"init_optimizer: optimizer must be the name of a registered optimizer ('sgd', 'adam', ...) "
                f"or an mx.optimizer.Optimizer, not {type(optimizer).__name__} {optimizer!r}"
            )
        else:
            self._normalise_rescale(optimizer, rescale_grad)
            if not optimizer.idx2name:
                optimizer.idx2name = idx2name.copy()
        self._optimizer = optimizer
        self._updater = opt.get_updater(optimizer)
        self._kvstore = self._kvstore_for(kvstore)
        if self._kvstore is not None:
            self._kvstore.set_optimizer(optimizer)
            for name in self._param_names:
                self._kvstore.init(name, self._exec.arg_dict[name])
        self.optimizer_initialized = True
        if self._preload_opt_states is not None:
            self.load_optimizer_states(self._preload_opt_states)
            self._preload_opt_states = None

    @property
    def kvstore(self):
        """The KVStore that updates this module's parameters (one given to `init_optimizer`/`fit`), or
        None when the module's own updater does (Ember; MXNet keeps it private)."""
        return self._kvstore

    def _kvstore_for(self, kvstore):
        """MXNet's choice (model._create_kvstore): a KVStore object is used, updating the parameters on
        the store; a type name on one device needs no store (the local updater runs); a distributed
        name makes one (which fails until distributed training lands); other types are a TypeError."""
        from ..kvstore import KVStore, create

        if kvstore is None or isinstance(kvstore, KVStore):
            return kvstore
        if not isinstance(kvstore, str):
            raise TypeError("kvstore must be KVStore, str or None")
        return create(kvstore) if "dist" in kvstore else None  # Ember runs one executor for all devices

    def _batch_size(self) -> int:
        first = self._data_shapes[0]
        return first.shape[DataDesc.get_batch_axis(first.layout)]

    def _normalise_rescale(self, optimizer, rescale_grad: float) -> None:
        """Ember's deviation 1: a default rescale_grad on an optimizer object becomes 1/batch_size."""
        if optimizer.rescale_grad == rescale_grad:
            return
        if getattr(optimizer, "rescale_grad_is_default", False):
            optimizer.rescale_grad = rescale_grad
            self.logger.info("Optimizer object left rescale_grad at its default; Module set it to 1/batch_size "
                             "= %g so gradients are averaged over the batch (Ember differs from MXNet here)",
                             rescale_grad)
            return
        warnings.warn(f"Optimizer created manually outside Module but rescale_grad is not normalized to "
                      f"1.0/batch_size/num_workers ({optimizer.rescale_grad} vs. {rescale_grad}). Is this intended?",
                      stacklevel=3)

    def save_optimizer_states(self, fname: str) -> None:
        """Write the updater's states to `fname` atomically (a full disk raises DiskFullError and leaves
        the previous file as it was)."""
        self._require(optimizer=True)
        if self._kvstore is not None:
            self._kvstore.save_optimizer_states(fname)  # atomic too (write_atomic inside the store)
            return
        write_atomic(fname, [self._updater.get_states(dump_optimizer=False)], MXNetError)

    def load_optimizer_states(self, fname: str) -> None:
        """Restore the updater's states from a `.states` file (Ember's or MXNet 1.x's), read as data:
        nothing the file names runs, and a bad file raises ArtifactError naming it."""
        self._require(optimizer=True)
        if self._kvstore is not None:
            self._kvstore.load_optimizer_states(fname)
            return
        try:
            data = read_regular_file(fname)  # a FIFO, device or folder is refused at once
        except OSError as err:
            raise ArtifactError(f"cannot load optimizer states from {fname}: {err.strerror or err}") from None
        self._updater.set_states(data, source=f"'{fname}'")
        # MXNet 1.9.1's files key states by parameter name (see tests/fixtures/lin-0003.states);
        # this Module's updater is called with the parameter's index.
        index_of = {name: i for i, name in enumerate(self._param_names)}
        states = self._updater.states
        self._updater.states = {index_of.get(k, k): v for k, v in states.items()}
        self._updater.states_synced = dict.fromkeys(self._updater.states, False)

    # -- computation --------------------------------------------------------------------------

    def forward(self, data_batch, is_train=None) -> None:
        """Copy the batch into the executor (re-binding if its shapes changed) and run forward."""
        self._require(binded=True, params=True)
        is_train = self.for_training if is_train is None else is_train
        self._reshape_for(data_batch)
        # Batch arrays follow the bound DataDescs' order (the iterator's provide_data), as MXNet's.
        arrays = dict(zip([d.name for d in self._data_shapes], data_batch.data))
        labels = getattr(data_batch, "label", None)
        if labels and self._label_shapes:
            arrays.update(zip([d.name for d in self._label_shapes], labels))
        with self._exec.lock:  # the executor's forward without the copy of its outputs it returns:
            self._exec.run_forward(bool(is_train), arrays)  # Module reads them with get_outputs

    def _reshape_for(self, data_batch) -> None:
        shapes = [tuple(a.shape) for a in data_batch.data]
        if shapes == [tuple(d.shape) for d in self._data_shapes]:
            return
        new_data = [DataDesc(d.name, s, d.dtype, d.layout) for d, s in zip(self._data_shapes, shapes)]
        new_label = None
        labels = getattr(data_batch, "label", None)
        if self._label_shapes and labels:
            new_label = [DataDesc(d.name, tuple(a.shape), d.dtype, d.layout) for d, a in zip(self._label_shapes, labels)]
        self.reshape(new_data, new_label)

    def backward(self, out_grads=None) -> None:
        self._require(binded=True, params=True)
        self._exec.backward(out_grads=out_grads)

    def _fit_step(self, data_batch) -> None:
        """fit's step: one native call (fused_step.py) where the step compiles as a whole, else
        forward_backward and update."""
        shapes = [tuple(a.shape) for a in data_batch.data]
        fused = self._fused_step() if shapes == [tuple(d.shape) for d in self._data_shapes] else None
        if fused is None:
            super()._fit_step(data_batch)
            return
        self._params_dirty = True
        fused.run(data_batch)

    def _fused_step(self):
        """The fused step for the current executor, optimizer and optimizer states, built (or rebuilt)
        when any of them changed or another module took over the shared parameters' memory."""
        key = (self._exec, self._optimizer, self._updater, self._updater.states)
        stale = getattr(self, "_fused_key", None)
        if stale is None or any(a is not b for a, b in zip(stale, key)):
            self._fused_key = key
            self._fused = FusedStep.build(self)
        elif self._fused is not None and not self._fused.owns_memory():
            self._fused = FusedStep.build(self)
        return self._fused

    def update(self) -> None:
        """Apply the optimizer to every parameter that has a gradient."""
        self._require(binded=True, params=True, optimizer=True)
        self._params_dirty = True
        for index, name in enumerate(self._param_names):
            grad = self._exec.grad_dict[name]
            if grad is None:
                continue
            if self._kvstore is not None:  # MXNet's update on the kvstore: push the gradient, pull the weight
                self._kvstore.push(name, grad, priority=-index)
                self._kvstore.pull(name, self._exec.arg_dict[name], priority=-index)
            else:
                self._updater(index, grad, self._exec.arg_dict[name])

    def get_outputs(self, merge_multi_context=True):
        """The outputs; unmerged, one list per output holding each device's array (one device here)."""
        self._require(binded=True, params=True)
        return self._exec.outputs if merge_multi_context else [[out] for out in self._exec.outputs]

    def get_input_grads(self, merge_multi_context=True):
        self._require(binded=True, params=True)
        if not self.inputs_need_grad:
            raise RuntimeError("bind with inputs_need_grad=True to get input gradients")
        return [self._exec.grad_dict[n] for n in self._data_names]

    def update_metric(self, eval_metric, labels, pre_sliced=False) -> None:
        """Update `eval_metric` with the labels and the current outputs, by name."""
        names = [d.name for d in self._label_shapes] if self._label_shapes else self._label_names
        eval_metric.update_dict(OrderedDict(zip(names, labels)),
                                OrderedDict(zip(self._output_names, self._exec.outputs)))

    # -- checkpoints --------------------------------------------------------------------------

    def save_checkpoint(self, prefix, epoch, save_optimizer_states=False, remove_amp_cast=True):
        """Write prefix-%04d.states (optionally), prefix-%04d.params, then prefix-symbol.json.

        Each file is replaced atomically, in the order `mx.model.write_checkpoint` explains: a crash or
        a full disk leaves the previous checkpoint loadable, and the symbol, unchanged between epochs,
        is not rewritten.
        """
        if save_optimizer_states:
            self._require(optimizer=True)
        states = self._updater.get_states(dump_optimizer=False) if save_optimizer_states else None
        arg_params, aux_params = self.get_params()
        write_checkpoint(prefix, epoch, self._symbol, arg_params, aux_params, states, remove_amp_cast)
        logging.info('Saved checkpoint to "%s"', f"{prefix}-{epoch:04d}.params")
        if save_optimizer_states:
            self.logger.info('Saved optimizer state to "%s"', f"{prefix}-{epoch:04d}.states")

    @staticmethod
    def load(prefix, epoch, load_optimizer_states=False, **kwargs) -> "Module":
        """An unbound Module with the checkpoint's symbol and parameters (counted as initialised)."""
        symbol, arg_params, aux_params = load_checkpoint(prefix, epoch)
        module = Module(symbol=symbol, **kwargs)
        module._arg_params, module._aux_params = arg_params, aux_params
        module.params_initialized = True
        if load_optimizer_states:
            module._preload_opt_states = f"{prefix}-{epoch:04d}.states"
        return module


def _descs(shapes) -> list[DataDesc]:
    return [s if isinstance(s, DataDesc) else DataDesc(*s) for s in shapes]


def _init_one(name, array, given, initializer, attrs, allow_missing) -> None:
    """Fill one parameter from `given` (a dict) or with `initializer`, as MXNet's `_impl`."""
    if given is not None and name in given:
        if given[name] is not array:
            source = given[name]
            if tuple(source.shape) != tuple(array.shape):
                raise MXNetError(f"parameter {name!r} has shape {tuple(source.shape)}, the module needs {array.shape}")
            array[:] = source
        return
    if given is not None and not allow_missing:
        raise RuntimeError(f"{name} is not presented")
    if initializer is not None:
        initializer(InitDesc(name, attrs), array)


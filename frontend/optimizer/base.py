"""`mx.optimizer.Optimizer` and the registry (`register`, `create`) (MXNET_COMPAT.md 6.1).

The base class holds what every optimizer shares: learning rate and scheduler, weight decay,
per-parameter lr/wd multipliers (from `param_idx2name`, symbol attributes and `set_*_mult`),
gradient rescaling and clipping, and the per-index update counts. Subclasses add `create_state`
and `update_step`, which counts one update of an index and hands out its rule and scalar
hyper-parameters (an `UpdateStep`); `update` applies that step to NumPy arrays, and the fused
training step compiles the same rule and feeds it the same scalars. Optimizers whose update is no
compiled rule (`Test`, users' own) override `update` instead. `updater.py`'s `Updater` applies an
optimizer as `updater(index, grad, weight)`, keeping states.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, ClassVar

import numpy as np

from ember.runtime.errors import MXNetError, ShapeError

from ..metric.registry import RegistryError, RegistryTypeError, construct
from ..ndarray import NDArray, zeros
from .update_rules import NO_CLIP, UpdateStep, apply_step

FLOAT16_WARNING = (
    "Accumulating with float16 in optimizer can lead to poor accuracy or slow convergence. "
    "Consider using multi_precision=True option of the {}optimizer"
)


class _DefaultRescale(float):
    """The value 1.0 of `rescale_grad` when the user did not give one.

    Ember deviation 1 (MXNET_COMPAT.md): Module replaces a default `rescale_grad` of an optimizer
    object by 1/batch_size and keeps an explicit one, so the default has to be recognisable.
    """

    def __repr__(self) -> str:
        return "1.0"

    def __reduce__(self):
        return _DefaultRescale, (1.0,)


RESCALE_GRAD_DEFAULT = _DefaultRescale(1.0)


class Optimizer:
    """The base class of all optimizers; see MXNET_COMPAT.md 6.1 for every argument's meaning."""

    opt_registry: ClassVar[dict[str, type[Optimizer]]] = {}

    def __init__(
        self,
        rescale_grad: float = RESCALE_GRAD_DEFAULT,
        param_idx2name: dict | None = None,
        wd: float = 0.0,
        clip_gradient: float | None = None,
        learning_rate: float | None = None,
        lr_scheduler=None,
        sym=None,
        begin_num_update: int = 0,
        multi_precision: bool = False,
        param_dict: dict | None = None,
    ):
        self.rescale_grad = rescale_grad
        self.lr_scheduler = lr_scheduler
        if lr_scheduler is None and learning_rate is None:
            learning_rate = 0.01
        self.lr = learning_rate
        if lr_scheduler is not None and learning_rate is not None and lr_scheduler.base_lr != learning_rate:
            # MXNet prints this (it does not warn), and only the scheduler's base_lr changes.
            print(
                "learning rate from ``lr_scheduler`` has been overwritten by ``learning_rate`` in optimizer."
            )
            lr_scheduler.base_lr = learning_rate

        self.wd = wd
        self.lr_mult: dict = {}
        self.wd_mult: dict = {}
        self.begin_num_update = begin_num_update
        self.num_update = begin_num_update
        # update counts per device (MXNet's Updater switches them with _set_current_context)
        self._all_index_update_counts: dict[int, dict] = {0: {}}
        self._index_update_count = self._all_index_update_counts[0]
        self.clip_gradient = clip_gradient
        self.multi_precision = multi_precision
        self.aggregate_num = 0

        if param_idx2name is None:
            param_idx2name = {}
        if not isinstance(param_idx2name, dict):
            raise TypeError(
                "param_idx2name should be a dict of param indexes to names, "
                f"not {type(param_idx2name).__name__}"
            )
        self.idx2name = param_idx2name.copy()
        self.sym_info = (sym.attr_dict(), sym.list_arguments()) if sym is not None else ()
        self.param_dict = param_dict if param_dict else {}

        self.set_lr_mult({})
        self.set_wd_mult({})

    # -- registry ------------------------------------------------------------------------------

    @staticmethod
    def register(klass: type) -> type:
        """Register an optimizer class under its lower-cased class name (a decorator)."""
        if not isinstance(klass, type):
            raise RegistryTypeError(f"register expects an optimizer class, not {type(klass).__name__}")
        name = klass.__name__.lower()
        if name in Optimizer.opt_registry:
            old = Optimizer.opt_registry[name]
            warnings.warn(
                f"WARNING: New optimizer {klass.__module__}.{klass.__name__} is overriding existing "
                f"optimizer {old.__module__}.{old.__name__}",
                stacklevel=2,
            )
        Optimizer.opt_registry[name] = klass
        return klass

    @staticmethod
    def create_optimizer(name: str, **kwargs) -> Optimizer:
        """An instance of the optimizer registered as `name` (case-insensitive), built with `kwargs`;
        RegistryError for an unknown name or a refused value, RegistryTypeError for a name that is
        not a string or arguments the optimizer does not take."""
        if not isinstance(name, str):
            raise RegistryTypeError(
                f"optimizer names are strings such as 'sgd'; got {type(name).__name__} {name!r}"
            )
        if name.lower() not in Optimizer.opt_registry:
            known = ", ".join(sorted(Optimizer.opt_registry))
            raise RegistryError(f"Cannot find optimizer {name}; the registered optimizers are: {known}")
        return construct(Optimizer.opt_registry[name.lower()], (), kwargs, f"optimizer {name!r}")

    # -- learning rate and multipliers ---------------------------------------------------------

    @property
    def learning_rate(self) -> float:
        """The current learning rate: the scheduler's value at `num_update`, else `lr`."""
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    @property
    def rescale_grad_is_default(self) -> bool:
        """True while `rescale_grad` is the 1.0 nobody asked for (Ember deviation 1; Module reads it)."""
        return type(self.rescale_grad) is _DefaultRescale

    def set_learning_rate(self, lr: float) -> None:
        """Set `lr`; raises UserWarning (as MXNet does) when a scheduler is in charge of it."""
        if self.lr_scheduler is not None:
            raise UserWarning(
                "LRScheduler of the optimizer has already been defined. Note that set_learning_rate can "
                "mutate the value of the learning rate of the optimizer only when the LRScheduler of the "
                "optimizer is undefined."
            )
        self.lr = lr

    def set_lr_scale(self, args_lrscale) -> None:
        """[DEPRECATED] Use set_lr_mult instead."""
        raise DeprecationWarning

    def set_lr_mult(self, args_lr_mult: dict) -> None:
        """Learning-rate multipliers by parameter name or index: the symbol's `__lr_mult__` attributes
        first, then `args_lr_mult` on top."""
        self.lr_mult = {}
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__lr_mult__" in attr[name]:
                    self.lr_mult[name] = float(attr[name]["__lr_mult__"])
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult: dict) -> None:
        """Weight-decay multipliers by parameter name or index: 0 for every `param_idx2name` name not
        ending in `_weight` or `_gamma`, then the symbol's `__wd_mult__` attributes, then `args_wd_mult`."""
        self.wd_mult = {}
        for name in self.idx2name.values():
            if not name.endswith(("_weight", "_gamma")):
                self.wd_mult[name] = 0.0
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__wd_mult__" in attr[name]:
                    self.wd_mult[name] = float(attr[name]["__wd_mult__"])
        self.wd_mult.update(args_wd_mult)

    def _set_current_context(self, device_id: int) -> None:
        """Switch to the update counts of device `device_id` (each device counts its own updates)."""
        if device_id not in self._all_index_update_counts:
            self._all_index_update_counts[device_id] = {}
        self._index_update_count = self._all_index_update_counts[device_id]

    def _update_count(self, index) -> None:
        """Count one more update of `index` (or of each index of a list); `num_update` is the maximum."""
        for idx in index if isinstance(index, (list, tuple)) else [index]:
            if idx not in self._index_update_count:
                self._index_update_count[idx] = self.begin_num_update
            self._index_update_count[idx] += 1
            self.num_update = max(self._index_update_count[idx], self.num_update)

    def _get_lrs(self, indices) -> list[float]:
        """Learning rate of each index: current rate x multiplier (Gluon param_dict, index, then name)."""
        lr = self.lr_scheduler(self.num_update) if self.lr_scheduler is not None else self.lr
        lrs = [lr for _ in indices]
        for i, index in enumerate(indices):
            if index in self.param_dict:
                lrs[i] *= self.param_dict[index].lr_mult
            elif index in self.lr_mult:
                lrs[i] *= self.lr_mult[index]
            elif index in self.idx2name:
                lrs[i] *= self.lr_mult.get(self.idx2name[index], 1.0)
        return lrs

    def _get_lr(self, index) -> float:
        return self._get_lrs([index])[0]

    def _get_wds(self, indices) -> list[float]:
        """Weight decay of each index: `wd` x multiplier (Gluon param_dict, index, then name)."""
        wds = [self.wd for _ in indices]
        for i, index in enumerate(indices):
            if index in self.param_dict:
                wds[i] *= self.param_dict[index].wd_mult
            elif index in self.wd_mult:
                wds[i] *= self.wd_mult[index]
            elif index in self.idx2name:
                wds[i] *= self.wd_mult.get(self.idx2name[index], 1.0)
        return wds

    def _get_wd(self, index) -> float:
        return self._get_wds([index])[0]

    def _kernel_clip(self) -> float:
        """The clip bound as the kernels take it: MXNet passes clip_gradient only when it is truthy."""
        return self.clip_gradient if self.clip_gradient else NO_CLIP

    def _count_kernel_scalars(self, index) -> dict[str, float]:
        """Count one more update of `index`, then the scalars every kernel rule takes: its learning
        rate and weight decay, `rescale_grad` and the kernels' clip bound."""
        self._update_count(index)
        return {
            "lr": self._get_lr(index),
            "wd": self._get_wd(index),
            "rescale_grad": self.rescale_grad,
            "clip_gradient": self._kernel_clip(),
        }

    # -- states and updates (the subclass hooks) -----------------------------------------------

    def create_state(self, index, weight: NDArray) -> Any:
        """The auxiliary state (momentum, moments, ...) for `weight`; None when the optimizer has none."""
        return None

    def create_state_multi_precision(self, index, weight: NDArray) -> Any:
        """As create_state; with multi_precision and a float16 weight, (float32 master copy, state)."""
        if self.multi_precision and weight.dtype == np.float16:
            master = weight.astype(np.float32)
            return (master, self.create_state(index, master))
        if weight.dtype == np.float16 and not self.multi_precision:
            warnings.warn(FLOAT16_WARNING.format(""), stacklevel=2)
        return self.create_state(index, weight)

    def update_step(self, index, has_state: bool) -> UpdateStep:
        """Count one update of `index` and return its rule and scalar hyper-parameters (learning rate
        after schedule, multipliers and bias corrections; weight decay; ...). `has_state` says whether
        the index has state arrays (SGD's momentum is optional). `update` applies the step to NumPy
        arrays, and the fused training step applies it in compiled code: both call this once per
        update. Optimizers without a compiled rule do not implement it and override `update`."""
        raise NotImplementedError(f"{type(self).__name__} has no compiled update rule")

    def probe_update_step(self, index, has_state: bool = True) -> UpdateStep:
        """The step `update_step` would hand out for the next update of `index`, without counting that
        update, consulting the learning-rate scheduler or advancing any schedule: for learning the
        rule and its scalar names ahead of training."""
        probe = copy.copy(self)
        probe.param_dict = self.param_dict  # copying goes through pickling's state, which drops it
        probe._index_update_count = dict(self._index_update_count)
        probe._all_index_update_counts = {}
        probe.lr_scheduler = None
        return probe.update_step(index, has_state)

    @property
    def has_update_rule(self) -> bool:
        """Whether every update is `update_step`'s rule applied to the weight and its states, so that
        compiled code may run it instead of `update`: true for MXNet's optimizers here and for
        subclasses that change only hyper-parameters or `update_step` itself. A class that defines
        its own `update`, `update_multi_precision`, `create_state` or `create_state_multi_precision`
        (anywhere outside Ember) updates its own way, and is never compiled."""
        cls = type(self)
        hooks = ("update", "update_multi_precision", "create_state", "create_state_multi_precision")
        return _defining_class(cls, "update_step") is not Optimizer and uses_ember_hooks(cls, hooks)

    def update(self, index, weight: NDArray, grad: NDArray, state: Any) -> None:
        """Update `weight` in place from `grad` and `state` (which it may update too): the rule and
        scalars of `update_step`, applied with NumPy."""
        check_arrays(index, weight, grad)
        states = state_arrays(state)
        step = self.update_step(index, bool(states))
        apply_step(step, weight.host_buffer(), grad.host_buffer(), [s.host_buffer() for s in states])

    def update_multi_precision(self, index, weight: NDArray, grad: NDArray, state: Any) -> None:
        """As update; with multi_precision and a float16 weight, update the float32 master copy and
        copy it back into the weight."""
        if self.multi_precision and weight.dtype == np.float16:
            master, inner = state
            self.update(index, master, grad.astype(np.float32), inner)
            weight.host_buffer()[...] = master.host_buffer().astype(weight.dtype)
        else:
            self.update(index, weight, grad, state)

    # -- pickling ------------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # Gluon's Parameters are not part of an optimizer's saved state; the Trainer sets them again.
        del state["param_dict"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__ = state
        self.param_dict = {}


register = Optimizer.register
create = Optimizer.create_optimizer


def check_arrays(index, weight, grad) -> None:
    """Raise a clear error unless `weight` and `grad` are NDArrays of one shape."""
    for role, value in (("weight", weight), ("grad", grad)):
        if not isinstance(value, NDArray):
            raise MXNetError(
                f"optimizer update of index {index!r}: {role} must be an NDArray, not {type(value).__name__}"
            )
    if weight.shape != grad.shape:
        raise ShapeError(
            f"optimizer update of index {index!r}: the gradient's shape {grad.shape} differs from the "
            f"weight's shape {weight.shape}"
        )


EMBER_OPTIMIZERS = "ember.optimizer."  # the modules of Ember's own optimizer classes


def uses_ember_hooks(cls: type, hooks) -> bool:
    """Whether every one of `hooks` (method names) of optimizer class `cls` is Ember's own."""
    return all(_defining_class(cls, hook).__module__.startswith(EMBER_OPTIMIZERS) for hook in hooks)


def _defining_class(cls: type, attribute: str) -> type:
    """The class in `cls`'s method resolution order whose body defines `attribute`."""
    return next(c for c in cls.__mro__ if attribute in vars(c))


def state_arrays(state) -> list[NDArray]:
    """The state arrays of one index in the order its update rule takes them: none for None, else the
    NDArray or the tuple's items."""
    if state is None:
        return []
    return list(state) if isinstance(state, (tuple, list)) else [state]


def new_state(weight: NDArray, dtype) -> NDArray:
    """A zero state array shaped like `weight`, on its context. MXNet gives some states the weight's
    dtype and others float32 (`zeros(shape, ctx)` without a dtype); each optimizer says which."""
    return zeros(weight.shape, weight.context, dtype=dtype)

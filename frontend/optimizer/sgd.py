"""Gradient-descent optimizers: SGD (with momentum), NAG, Signum, and MXNet's ccSGD and Test.

Each hands out its update as an `UpdateStep` (`update_step`): a rule of `update_rules`' table with
the learning rate and weight decay of the index from the `Optimizer` base class (MXNET_COMPAT.md 6.2).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..ndarray import NDArray
from .base import FLOAT16_WARNING, Optimizer, check_arrays, new_state, register
from .update_rules import UpdateStep, apply_step


class _MomentumOptimizer(Optimizer):
    """SGD and NAG: an optional momentum state in the weight's dtype, and their own multi-precision
    layout `(momentum, float32 master copy)` (the reverse of the base class's)."""

    warning_name = ""  # how MXNet's float16 warning names the optimizer
    momentum_rule = ""  # the update rule with a momentum state; without one both are plain "sgd"

    def __init__(self, momentum: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum

    def create_state(self, index, weight: NDArray):
        if self.momentum == 0.0:
            return None
        return new_state(weight, weight.dtype)

    def create_state_multi_precision(self, index, weight: NDArray):
        if self.multi_precision and weight.dtype == np.float16:
            master = weight.astype(np.float32)
            return (self.create_state(index, master), master)
        if weight.dtype == np.float16 and not self.multi_precision:
            warnings.warn(FLOAT16_WARNING.format(self.warning_name), stacklevel=2)
        return self.create_state(index, weight)

    def update_step(self, index, has_state: bool) -> UpdateStep:
        scalars = self._count_kernel_scalars(index)
        if not has_state:
            return UpdateStep("sgd", scalars)
        return UpdateStep(self.momentum_rule, {**scalars, "momentum": max(self.momentum, 0.0)})

    def update_multi_precision(self, index, weight: NDArray, grad: NDArray, state) -> None:
        if not (self.multi_precision and weight.dtype == np.float16 and isinstance(state, (tuple, list))):
            self.update(index, weight, grad, state)
            return
        check_arrays(index, weight, grad)
        mom, master = state
        step = self.update_step(index, mom is not None)
        grad32 = grad.host_buffer().astype(np.float32)
        apply_step(step, master.host_buffer(), grad32, [] if mom is None else [mom.host_buffer()])
        weight.host_buffer()[...] = master.host_buffer().astype(np.float16)


@register
class SGD(_MomentumOptimizer):
    """Stochastic gradient descent with momentum (the buffer carries the learning rate, as in MXNet):
    mom = momentum*mom - lr*wd*w - lr*clip(rescale_grad*g); w += mom.

    `lazy_update` only matters for sparse gradients, which Ember does not have.
    """

    warning_name = "SGD "
    momentum_rule = "sgd_mom"

    def __init__(self, momentum: float = 0.0, lazy_update: bool = True, **kwargs):
        super().__init__(momentum=momentum, **kwargs)
        self.lazy_update = lazy_update
        self.aggregate_num = int(os.getenv("MXNET_OPTIMIZER_AGGREGATION_SIZE", "4"))


@register
class ccSGD(SGD):
    """[DEPRECATED] Same as SGD; kept because MXNet still registers it."""


@register
class NAG(_MomentumOptimizer):
    """Nesterov accelerated gradient: with step = lr*(clip(rescale_grad*g) + wd*w),
    mom = momentum*mom - step; w = w + momentum*mom - step. Without momentum it is plain SGD."""

    warning_name = "NAG "
    momentum_rule = "nag_mom"


@register
class Signum(Optimizer):
    """signSGD / Signum: steps of size lr along the sign of the gradient or of its momentum;
    `wd_lh` is decoupled weight decay (Loshchilov & Hutter)."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9, wd_lh: float = 0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = momentum
        self.wd_lh = wd_lh

    def create_state(self, index, weight: NDArray):
        return None if self.momentum == 0.0 else new_state(weight, weight.dtype)

    def update_step(self, index, has_state: bool) -> UpdateStep:
        scalars = self._count_kernel_scalars(index)
        if not has_state:  # rescale_grad and clipping cannot change a sign
            return UpdateStep("signsgd", {"lr": scalars["lr"], "wd": scalars["wd"]})
        momentum = {"momentum": max(self.momentum, 0.0), "wd_lh": self.wd_lh or 0.0}
        return UpdateStep("signum", {**scalars, **momentum})


@register
class Test(Optimizer):
    """MXNet's test optimizer: w += rescale_grad*g, and the state keeps a copy of the weight."""

    def create_state(self, index, weight: NDArray):
        return new_state(weight, np.float32)

    def update(self, index, weight: NDArray, grad: NDArray, state) -> None:
        weight.host_buffer()[...] += grad.host_buffer() * self.rescale_grad
        state.host_buffer()[...] = weight.host_buffer()

"""Optimizers with per-element adaptive step sizes: Adam, RMSProp, AdaGrad, AdaDelta, Adamax, Nadam, Ftrl.

Each creates its moment states and hands out its update as an `UpdateStep` (`update_step`): a rule
of `update_rules`' table with the learning rate and weight decay of the index from the `Optimizer`
base class (MXNET_COMPAT.md 6.2), after the optimizer's own bias corrections. Which states take the
weight's dtype and which are float32 follows MXNet.
"""

from __future__ import annotations

import math

import numpy as np

from ..ndarray import NDArray
from .base import Optimizer, new_state, register
from .update_rules import NO_CLIP, UpdateStep, python_clip


@register
class Adam(Optimizer):
    """Adam with L2 weight decay inside the gradient (not AdamW); the bias correction of step t
    (this index's update count) scales the learning rate: lr*sqrt(1 - beta2^t)/(1 - beta1^t)."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        lazy_update: bool = True,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lazy_update = lazy_update

    def create_state(self, index, weight: NDArray):
        return (new_state(weight, weight.dtype), new_state(weight, weight.dtype))  # mean, variance

    def update_step(self, index, has_state: bool) -> UpdateStep:
        scalars = self._count_kernel_scalars(index)
        t = self._index_update_count[index]
        scalars["lr"] *= math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        moments = {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon}
        return UpdateStep("adam", {**scalars, **moments})


@register
class RMSProp(Optimizer):
    """RMSProp: Tieleman & Hinton's (epsilon inside the root), or with centered=True Graves's, whose
    `gamma2` is a momentum. `gamma1` is the averaging decay; `clip_weights` clamps the new weight."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        gamma1: float = 0.9,
        gamma2: float = 0.9,
        epsilon: float = 1e-8,
        centered: bool = False,
        clip_weights: float | None = None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.centered = centered
        self.epsilon = epsilon
        self.clip_weights = clip_weights

    def create_state(self, index, weight: NDArray):
        if self.centered:
            return tuple(new_state(weight, np.float32) for _ in range(3))  # n, g, delta
        return (new_state(weight, np.float32),)  # n

    def update_step(self, index, has_state: bool) -> UpdateStep:
        scalars = {
            **self._count_kernel_scalars(index),
            "gamma1": self.gamma1,
            "epsilon": self.epsilon,
            "clip_weights": self.clip_weights if self.clip_weights else NO_CLIP,
        }
        if self.centered:
            return UpdateStep("rmspropalex", {**scalars, "gamma2": self.gamma2})
        return UpdateStep("rmsprop", scalars)


@register
class AdaGrad(Optimizer):
    """AdaGrad: steps scaled by the root of the summed squared gradients; `eps` keeps the root positive.
    Weight decay is added to the scaled step, outside the history."""

    def __init__(self, eps: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index, weight: NDArray):
        return new_state(weight, np.float32)  # history

    def update_step(self, index, has_state: bool) -> UpdateStep:
        scalars = self._count_kernel_scalars(index)
        scalars["clip_gradient"] = python_clip(self.clip_gradient)
        return UpdateStep("adagrad", {**scalars, "eps": self.float_stable_eps})


@register
class AdaDelta(Optimizer):
    """AdaDelta: no learning rate; steps are the ratio of the RMS of past steps to the RMS of past
    gradients. Weight decay is subtracted from the weight directly (not scaled by any rate)."""

    def __init__(self, rho: float = 0.90, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def create_state(self, index, weight: NDArray):
        return (new_state(weight, np.float32), new_state(weight, np.float32))  # acc. g^2, acc. delta^2

    def update_step(self, index, has_state: bool) -> UpdateStep:
        wd = self._get_wd(index)
        self._update_count(index)
        clip = python_clip(self.clip_gradient)
        scalars = {"wd": wd, "rescale_grad": self.rescale_grad, "clip_gradient": clip}
        return UpdateStep("adadelta", {**scalars, "rho": self.rho, "epsilon": self.epsilon})


@register
class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm): lr/(1 - beta1^t) * m/u with u = max(beta2*u, |g|)."""

    def __init__(self, learning_rate: float = 0.002, beta1: float = 0.9, beta2: float = 0.999, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2

    def create_state(self, index, weight: NDArray):
        return (new_state(weight, weight.dtype), new_state(weight, weight.dtype))  # m, u

    def update_step(self, index, has_state: bool) -> UpdateStep:
        scalars = self._count_kernel_scalars(index)
        scalars["clip_gradient"] = python_clip(self.clip_gradient)
        scalars["lr"] /= 1.0 - self.beta1 ** self._index_update_count[index]
        return UpdateStep("adamax", {**scalars, "beta1": self.beta1, "beta2": self.beta2})


@register
class Nadam(Optimizer):
    """Nesterov Adam with a warming momentum schedule. As in MXNet, the schedule product
    `m_schedule` belongs to the optimizer and advances on every update of every index."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        schedule_decay: float = 0.004,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.schedule_decay = schedule_decay
        self.m_schedule = 1.0

    def create_state(self, index, weight: NDArray):
        return (new_state(weight, weight.dtype), new_state(weight, weight.dtype))  # m, v

    def update_step(self, index, has_state: bool) -> UpdateStep:
        scalars = self._count_kernel_scalars(index)
        scalars["clip_gradient"] = python_clip(self.clip_gradient)
        t = self._index_update_count[index]
        momentum_t = self.beta1 * (1.0 - 0.5 * pow(0.96, t * self.schedule_decay))
        momentum_t_1 = self.beta1 * (1.0 - 0.5 * pow(0.96, (t + 1) * self.schedule_decay))
        self.m_schedule = self.m_schedule * momentum_t
        return UpdateStep("nadam", {
            **scalars, "beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon,
            "momentum_t": momentum_t, "momentum_t_1": momentum_t_1, "m_schedule": self.m_schedule,
            "m_schedule_next": self.m_schedule * momentum_t_1, "v_correction": 1 - pow(self.beta2, t),
        })  # fmt: skip


@register
class Ftrl(Optimizer):
    """FTRL-Proximal (McMahan et al.): per-coordinate rates from the summed squared gradients, L1
    strength `lamda1`, and `wd` as L2. Its learning rate defaults to 0.1."""

    def __init__(self, lamda1: float = 0.01, learning_rate: float = 0.1, beta: float = 1, **kwargs):
        super().__init__(**kwargs)
        self.lamda1 = lamda1
        self.beta = beta
        self.lr = learning_rate

    def create_state(self, index, weight: NDArray):
        return (new_state(weight, np.float32), new_state(weight, np.float32))  # z, n

    def update_step(self, index, has_state: bool) -> UpdateStep:
        scalars = self._count_kernel_scalars(index)
        return UpdateStep("ftrl", {**scalars, "lamda1": self.lamda1, "beta": self.beta})

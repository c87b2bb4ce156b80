"""Optimizers with per-element adaptive step sizes: Adam, RMSProp, AdaGrad, AdaDelta, Adamax, Nadam, Ftrl.

Each creates its moment states and applies its rule from `update_rules` in place, with the learning
rate and weight decay of the index from the `Optimizer` base class (MXNET_COMPAT.md 6.2). Which
states take the weight's dtype and which are float32 follows MXNet.
"""

from __future__ import annotations

import math

import numpy as np

from ..ndarray import NDArray
from . import update_rules
from .base import Optimizer, check_arrays, new_state, register


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

    def update(self, index, weight: NDArray, grad: NDArray, state) -> None:
        check_arrays(index, weight, grad)
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        t = self._index_update_count[index]
        lr *= math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        mean, var = state
        update_rules.adam(
            weight._data,
            grad._data,
            mean._data,
            var._data,
            lr=lr,
            beta1=self.beta1,
            beta2=self.beta2,
            epsilon=self.epsilon,
            wd=wd,
            rescale_grad=self.rescale_grad,
            clip_gradient=self._kernel_clip(),
        )


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

    def update(self, index, weight: NDArray, grad: NDArray, state) -> None:
        check_arrays(index, weight, grad)
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        common = {
            "lr": lr,
            "gamma1": self.gamma1,
            "epsilon": self.epsilon,
            "wd": wd,
            "rescale_grad": self.rescale_grad,
            "clip_gradient": self._kernel_clip(),
            "clip_weights": self.clip_weights if self.clip_weights else update_rules.NO_CLIP,
        }
        if self.centered:
            n, g, delta = state
            update_rules.rmspropalex(
                weight._data, grad._data, n._data, g._data, delta._data, gamma2=self.gamma2, **common
            )
        else:
            (n,) = state
            update_rules.rmsprop(weight._data, grad._data, n._data, **common)


@register
class AdaGrad(Optimizer):
    """AdaGrad: steps scaled by the root of the summed squared gradients; `eps` keeps the root positive.
    Weight decay is added to the scaled step, outside the history."""

    def __init__(self, eps: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index, weight: NDArray):
        return new_state(weight, np.float32)  # history

    def update(self, index, weight: NDArray, grad: NDArray, state) -> None:
        check_arrays(index, weight, grad)
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        update_rules.adagrad(
            weight._data,
            grad._data,
            state._data,
            lr=lr,
            wd=wd,
            eps=self.float_stable_eps,
            rescale_grad=self.rescale_grad,
            clip_gradient=self.clip_gradient,
        )


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

    def update(self, index, weight: NDArray, grad: NDArray, state) -> None:
        check_arrays(index, weight, grad)
        wd = self._get_wd(index)
        self._update_count(index)
        acc_g, acc_delta = state
        update_rules.adadelta(
            weight._data,
            grad._data,
            acc_g._data,
            acc_delta._data,
            wd=wd,
            rho=self.rho,
            epsilon=self.epsilon,
            rescale_grad=self.rescale_grad,
            clip_gradient=self.clip_gradient,
        )


@register
class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm): lr/(1 - beta1^t) * m/u with u = max(beta2*u, |g|)."""

    def __init__(self, learning_rate: float = 0.002, beta1: float = 0.9, beta2: float = 0.999, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2

    def create_state(self, index, weight: NDArray):
        return (new_state(weight, weight.dtype), new_state(weight, weight.dtype))  # m, u

    def update(self, index, weight: NDArray, grad: NDArray, state) -> None:
        check_arrays(index, weight, grad)
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        t = self._index_update_count[index]
        lr /= 1.0 - self.beta1**t
        m, u = state
        update_rules.adamax(
            weight._data,
            grad._data,
            m._data,
            u._data,
            lr=lr,
            wd=wd,
            beta1=self.beta1,
            beta2=self.beta2,
            rescale_grad=self.rescale_grad,
            clip_gradient=self.clip_gradient,
        )


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

    def update(self, index, weight: NDArray, grad: NDArray, state) -> None:
        check_arrays(index, weight, grad)
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        t = self._index_update_count[index]
        momentum_t = self.beta1 * (1.0 - 0.5 * pow(0.96, t * self.schedule_decay))
        momentum_t_1 = self.beta1 * (1.0 - 0.5 * pow(0.96, (t + 1) * self.schedule_decay))
        self.m_schedule = self.m_schedule * momentum_t
        m, v = state
        update_rules.nadam(
            weight._data,
            grad._data,
            m._data,
            v._data,
            lr=lr,
            wd=wd,
            beta1=self.beta1,
            beta2=self.beta2,
            epsilon=self.epsilon,
            t=t,
            momentum_t=momentum_t,
            momentum_t_1=momentum_t_1,
            m_schedule=self.m_schedule,
            m_schedule_next=self.m_schedule * momentum_t_1,
            rescale_grad=self.rescale_grad,
            clip_gradient=self.clip_gradient,
        )


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

    def update(self, index, weight: NDArray, grad: NDArray, state) -> None:
        check_arrays(index, weight, grad)
        self._update_count(index)
        wd, lr = self._get_wd(index), self._get_lr(index)
        z, n = state
        update_rules.ftrl(
            weight._data,
            grad._data,
            z._data,
            n._data,
            lr=lr,
            lamda1=self.lamda1,
            beta=self.beta,
            wd=wd,
            rescale_grad=self.rescale_grad,
            clip_gradient=self._kernel_clip(),
        )

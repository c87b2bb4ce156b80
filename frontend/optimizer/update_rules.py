"""The per-element update rules of MXNet 1.9.1's optimizers, applied in place to NumPy arrays.

The formulas themselves live once, in `ember.compiler.ops.optimizer.UPDATE_RULES` (MXNet's kernels in
`src/operator/optimizer_op-inl.h` - `sgd_update`, `adam_update`, ... - and, for AdaGrad, AdaDelta,
Adamax and Nadam, MXNet's Python optimizer code), where compiled training steps read them too. Each
function here takes the weight, the gradient and the state arrays and the scalar hyper-parameters,
and overwrites the weight and the states with the rule's results.
"""

from __future__ import annotations

import numpy as np

from ember.compiler.ops.optimizer import numpy_step

# Kernel convention: a clip bound below zero means "no clipping" (the kernels' default is -1).
NO_CLIP = -1.0


def _apply(rule: str, weight: np.ndarray, grad: np.ndarray, states: list, **scalars) -> None:
    new_weight, new_states = numpy_step(rule, weight, grad, states, scalars)
    weight[...] = new_weight
    for state, value in zip(states, new_states):
        state[...] = value


def _python_clip(clip_gradient) -> float:
    """The rules MXNet runs in Python clip whenever clip_gradient is not None."""
    return NO_CLIP if clip_gradient is None else clip_gradient


# -- rules MXNet runs as C++ kernels --------------------------------------------------------------


def sgd(weight, grad, *, lr, wd, rescale_grad, clip_gradient=NO_CLIP) -> None:
    """sgd_update: w = (1 - lr*wd)*w - lr*clip(rescale*g)."""
    _apply("sgd", weight, grad, [], lr=lr, wd=wd, rescale_grad=rescale_grad, clip_gradient=clip_gradient)


def sgd_mom(weight, grad, mom, *, lr, wd, momentum, rescale_grad, clip_gradient=NO_CLIP) -> None:
    """sgd_mom_update: mom = momentum*mom - lr*wd*w - lr*clip(rescale*g); w += mom (lr lives in mom)."""
    _apply("sgd_mom", weight, grad, [mom], lr=lr, wd=wd, momentum=momentum, rescale_grad=rescale_grad,
           clip_gradient=clip_gradient)  # fmt: skip


def nag_mom(weight, grad, mom, *, lr, wd, momentum, rescale_grad, clip_gradient=NO_CLIP) -> None:
    """nag_mom_update: with step = lr*(clip(rescale*g) + wd*w) and m = momentum*mom,
    w = w - m + (momentum + 1)*(m - step); mom = m - step."""
    _apply("nag_mom", weight, grad, [mom], lr=lr, wd=wd, momentum=momentum, rescale_grad=rescale_grad,
           clip_gradient=clip_gradient)  # fmt: skip


def adam(
    weight, grad, mean, var, *, lr, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient=NO_CLIP
) -> None:
    """adam_update: g = clip(rescale*g + wd*w); mean, var moving averages of g and g^2;
    w -= lr*mean/(sqrt(var) + epsilon). Bias correction is folded into lr by the caller."""
    _apply("adam", weight, grad, [mean, var], lr=lr, wd=wd, rescale_grad=rescale_grad, clip_gradient=clip_gradient,
           beta1=beta1, beta2=beta2, epsilon=epsilon)  # fmt: skip


def rmsprop(
    weight, grad, n, *, lr, gamma1, epsilon, wd, rescale_grad, clip_gradient=NO_CLIP, clip_weights=NO_CLIP
) -> None:
    """rmsprop_update (Tieleman & Hinton): g = clip(rescale*g + wd*w); n = (1-gamma1)*g^2 + gamma1*n;
    w = clip_weights(w - lr*g/sqrt(n + epsilon))."""
    _apply("rmsprop", weight, grad, [n], lr=lr, wd=wd, rescale_grad=rescale_grad, clip_gradient=clip_gradient,
           gamma1=gamma1, epsilon=epsilon, clip_weights=clip_weights)  # fmt: skip


def rmspropalex(weight, grad, n, g_avg, delta, *, lr, gamma1, gamma2, epsilon, wd, rescale_grad,
                clip_gradient=NO_CLIP, clip_weights=NO_CLIP) -> None:  # fmt: skip
    """rmspropalex_update (Graves 2013, centered): n and g_avg are moving averages of g^2 and g;
    delta = gamma2*delta - lr*g/sqrt(n - g_avg^2 + epsilon); w = clip_weights(w + delta)."""
    _apply("rmspropalex", weight, grad, [n, g_avg, delta], lr=lr, wd=wd, rescale_grad=rescale_grad,
           clip_gradient=clip_gradient, gamma1=gamma1, gamma2=gamma2, epsilon=epsilon,
           clip_weights=clip_weights)  # fmt: skip


def ftrl(weight, grad, z, n, *, lr, lamda1, beta, wd, rescale_grad, clip_gradient=NO_CLIP) -> None:
    """ftrl_update: g = clip(rescale*g); z += g - (sqrt(n + g^2) - sqrt(n))*w/lr; n += g^2;
    w = (sign(z)*lamda1 - z)/((beta + sqrt(n))/lr + wd) where |z| > lamda1, else 0."""
    _apply("ftrl", weight, grad, [z, n], lr=lr, wd=wd, rescale_grad=rescale_grad, clip_gradient=clip_gradient,
           lamda1=lamda1, beta=beta)  # fmt: skip


def signsgd(weight, grad, *, lr, wd) -> None:
    """signsgd_update: w = (1 - lr*wd)*w - lr*sign(g); rescale_grad and clipping cannot change a sign."""
    _apply("signsgd", weight, grad, [], lr=lr, wd=wd)


def signum(weight, grad, mom, *, lr, wd, momentum, rescale_grad, clip_gradient=NO_CLIP, wd_lh=0.0) -> None:
    """signum_update: mom = momentum*mom - (1-momentum)*(wd*w + clip(rescale*g));
    w = (1 - lr*wd_lh)*w + lr*sign(mom)."""
    _apply("signum", weight, grad, [mom], lr=lr, wd=wd, rescale_grad=rescale_grad, clip_gradient=clip_gradient,
           momentum=momentum, wd_lh=wd_lh)  # fmt: skip


# -- rules MXNet runs in Python (clipping applies whenever clip_gradient is not None) ---------------


def adagrad(weight, grad, history, *, lr, wd, eps, rescale_grad, clip_gradient=None) -> None:
    """AdaGrad: g = clip(rescale*g); history += g^2; w -= lr*(g/sqrt(history + eps) + wd*w)."""
    _apply("adagrad", weight, grad, [history], lr=lr, wd=wd, rescale_grad=rescale_grad,
           clip_gradient=_python_clip(clip_gradient), eps=eps)  # fmt: skip


def adadelta(weight, grad, acc_g, acc_delta, *, wd, rho, epsilon, rescale_grad, clip_gradient=None) -> None:
    """AdaDelta (no learning rate): g = clip(rescale*g); acc_g = rho*acc_g + (1-rho)*g^2;
    d = sqrt(acc_delta + eps)/sqrt(acc_g + eps)*g; acc_delta = rho*acc_delta + (1-rho)*d^2;
    w -= d + wd*w."""
    _apply("adadelta", weight, grad, [acc_g, acc_delta], wd=wd, rescale_grad=rescale_grad,
           clip_gradient=_python_clip(clip_gradient), rho=rho, epsilon=epsilon)  # fmt: skip


def adamax(weight, grad, m, u, *, lr, wd, beta1, beta2, rescale_grad, clip_gradient=None) -> None:
    """Adamax: g = clip(rescale*g + wd*w); m = beta1*m + (1-beta1)*g; u = max(beta2*u, |g|);
    w -= lr*m/u. Bias correction is folded into lr by the caller."""
    _apply("adamax", weight, grad, [m, u], lr=lr, wd=wd, rescale_grad=rescale_grad,
           clip_gradient=_python_clip(clip_gradient), beta1=beta1, beta2=beta2)  # fmt: skip


def nadam(weight, grad, m, v, *, lr, wd, beta1, beta2, epsilon, t, momentum_t, momentum_t_1, m_schedule,
          m_schedule_next, rescale_grad, clip_gradient=None) -> None:  # fmt: skip
    """Nadam: g = clip(rescale*g + wd*w); Adam moments of g; the update mixes the bias-corrected
    gradient and momentum with the warming momentum schedule the caller computes."""
    _apply("nadam", weight, grad, [m, v], lr=lr, wd=wd, rescale_grad=rescale_grad,
           clip_gradient=_python_clip(clip_gradient), beta1=beta1, beta2=beta2, epsilon=epsilon,
           momentum_t=momentum_t, momentum_t_1=momentum_t_1, m_schedule=m_schedule,
           m_schedule_next=m_schedule_next, v_correction=1 - pow(beta2, t))  # fmt: skip

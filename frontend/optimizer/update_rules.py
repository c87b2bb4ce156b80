"""The per-element update rules of MXNet 1.9.1's optimizers, in NumPy, acting in place.

Each function takes the weight, the gradient and the state arrays (NumPy, same shape) and the scalar
hyper-parameters, and overwrites the weight and the states as MXNet's kernels in
`src/operator/optimizer_op-inl.h` do (`sgd_update`, `adam_update`, ...), or, for AdaGrad, AdaDelta,
Adamax and Nadam, as MXNet's Python optimizer code does. The optimizer classes call these.
"""

from __future__ import annotations

import numpy as np

# Kernel convention: a clip bound below zero means "no clipping" (the kernels' default is -1).
NO_CLIP = -1.0


def _cast(weight: np.ndarray, *values: float) -> list:
    """Scalars in the weight's element type, as the kernels `static_cast<DType>` their parameters."""
    return [weight.dtype.type(v) for v in values]


def _clip(x: np.ndarray, bound) -> np.ndarray:
    return np.clip(x, -bound, bound) if bound >= 0 else x


# -- rules MXNet runs as C++ kernels --------------------------------------------------------------


def sgd(weight, grad, *, lr, wd, rescale_grad, clip_gradient=NO_CLIP) -> None:
    """sgd_update: w = (1 - lr*wd)*w - lr*clip(rescale*g)."""
    lr, wd, rescale, clip = _cast(weight, lr, wd, rescale_grad, clip_gradient)
    weight[...] = (1 - lr * wd) * weight - lr * _clip(rescale * grad, clip)


def sgd_mom(weight, grad, mom, *, lr, wd, momentum, rescale_grad, clip_gradient=NO_CLIP) -> None:
    """sgd_mom_update: mom = momentum*mom - lr*wd*w - lr*clip(rescale*g); w += mom (lr lives in mom)."""
    lr, wd, momentum, rescale, clip = _cast(weight, lr, wd, momentum, rescale_grad, clip_gradient)
    mom[...] = momentum * mom - lr * wd * weight - lr * _clip(rescale * grad, clip)
    weight += mom


def nag_mom(weight, grad, mom, *, lr, wd, momentum, rescale_grad, clip_gradient=NO_CLIP) -> None:
    """nag_mom_update: with step = lr*(clip(rescale*g) + wd*w) and m = momentum*mom,
    w = w - m + (momentum + 1)*(m - step); mom = m - step."""
    lr, wd, momentum, rescale, clip = _cast(weight, lr, wd, momentum, rescale_grad, clip_gradient)
    step = lr * (_clip(rescale * grad, clip) + wd * weight)
    mom *= momentum
    weight[...] = weight - mom + (momentum + 1) * (mom - step)
    mom -= step


def adam(
    weight, grad, mean, var, *, lr, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient=NO_CLIP
) -> None:
    """adam_update: g = clip(rescale*g + wd*w); mean, var moving averages of g and g^2;
    w -= lr*mean/(sqrt(var) + epsilon). Bias correction is folded into lr by the caller."""
    lr, beta1, beta2, eps, wd, rescale, clip = _cast(
        weight, lr, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient
    )
    g = _clip(grad * rescale + weight * wd, clip)
    mean[...] = beta1 * mean + (1 - beta1) * g
    var[...] = beta2 * var + (1 - beta2) * g * g
    weight -= lr * mean / (np.sqrt(var) + eps)


def rmsprop(
    weight, grad, n, *, lr, gamma1, epsilon, wd, rescale_grad, clip_gradient=NO_CLIP, clip_weights=NO_CLIP
) -> None:
    """rmsprop_update (Tieleman & Hinton): g = clip(rescale*g + wd*w); n = (1-gamma1)*g^2 + gamma1*n;
    w = clip_weights(w - lr*g/sqrt(n + epsilon))."""
    lr, gamma1, eps, wd, rescale, clip, clip_w = _cast(
        weight, lr, gamma1, epsilon, wd, rescale_grad, clip_gradient, clip_weights
    )
    g = _clip(rescale * grad + wd * weight, clip)
    n[...] = (1 - gamma1) * (g * g) + gamma1 * n
    weight[...] = _clip(weight - lr * (g / np.sqrt(n + eps)), clip_w)


def rmspropalex(
    weight,
    grad,
    n,
    g_avg,
    delta,
    *,
    lr,
    gamma1,
    gamma2,
    epsilon,
    wd,
    rescale_grad,
    clip_gradient=NO_CLIP,
    clip_weights=NO_CLIP,
) -> None:
    """rmspropalex_update (Graves 2013, centered): n and g_avg are moving averages of g^2 and g;
    delta = gamma2*delta - lr*g/sqrt(n - g_avg^2 + epsilon); w = clip_weights(w + delta)."""
    lr, gamma1, gamma2, eps, wd, rescale, clip, clip_w = _cast(
        weight, lr, gamma1, gamma2, epsilon, wd, rescale_grad, clip_gradient, clip_weights
    )
    g = _clip(rescale * grad + wd * weight, clip)
    n[...] = (1 - gamma1) * g * g + gamma1 * n
    g_avg[...] = (1 - gamma1) * g + gamma1 * g_avg
    delta[...] = gamma2 * delta - lr * g / np.sqrt(n - g_avg * g_avg + eps)
    weight[...] = _clip(weight + delta, clip_w)


def ftrl(weight, grad, z, n, *, lr, lamda1, beta, wd, rescale_grad, clip_gradient=NO_CLIP) -> None:
    """ftrl_update: g = clip(rescale*g); z += g - (sqrt(n + g^2) - sqrt(n))*w/lr; n += g^2;
    w = (sign(z)*lamda1 - z)/((beta + sqrt(n))/lr + wd) where |z| > lamda1, else 0."""
    lr, lamda1, beta, wd, rescale, clip = _cast(weight, lr, lamda1, beta, wd, rescale_grad, clip_gradient)
    g = _clip(grad * rescale, clip)
    z += g - (np.sqrt(n + g * g) - np.sqrt(n)) * weight / lr
    n += g * g
    weight[...] = (np.sign(z) * lamda1 - z) / ((beta + np.sqrt(n)) / lr + wd) * (np.abs(z) > lamda1)


def signsgd(weight, grad, *, lr, wd) -> None:
    """signsgd_update: w = (1 - lr*wd)*w - lr*sign(g); rescale_grad and clipping cannot change a sign."""
    lr, wd = _cast(weight, lr, wd)
    weight[...] = (1 - lr * wd) * weight - lr * np.sign(grad)


def signum(weight, grad, mom, *, lr, wd, momentum, rescale_grad, clip_gradient=NO_CLIP, wd_lh=0.0) -> None:
    """signum_update: mom = momentum*mom - (1-momentum)*(wd*w + clip(rescale*g));
    w = (1 - lr*wd_lh)*w + lr*sign(mom)."""
    lr, wd, momentum, rescale, clip, wd_lh = _cast(
        weight, lr, wd, momentum, rescale_grad, clip_gradient, wd_lh
    )
    mom[...] = momentum * mom - (1 - momentum) * wd * weight - (1 - momentum) * _clip(rescale * grad, clip)
    weight[...] = (1 - lr * wd_lh) * weight + lr * np.sign(mom)


# -- rules MXNet runs in Python (clipping applies whenever clip_gradient is not None) ---------------


def _python_clip(g: np.ndarray, clip_gradient) -> np.ndarray:
    return g if clip_gradient is None else np.clip(g, -clip_gradient, clip_gradient)


def adagrad(weight, grad, history, *, lr, wd, eps, rescale_grad, clip_gradient=None) -> None:
    """AdaGrad: g = clip(rescale*g); history += g^2; w -= lr*(g/sqrt(history + eps) + wd*w)."""
    g = _python_clip(grad * rescale_grad, clip_gradient)
    history += g * g
    weight += (g / np.sqrt(history + eps) + weight * wd) * -lr


def adadelta(weight, grad, acc_g, acc_delta, *, wd, rho, epsilon, rescale_grad, clip_gradient=None) -> None:
    """AdaDelta (no learning rate): g = clip(rescale*g); acc_g = rho*acc_g + (1-rho)*g^2;
    d = sqrt(acc_delta + eps)/sqrt(acc_g + eps)*g; acc_delta = rho*acc_delta + (1-rho)*d^2;
    w -= d + wd*w."""
    g = _python_clip(grad * rescale_grad, clip_gradient)
    acc_g *= rho
    acc_g += (1 - rho) * g * g
    delta = np.sqrt(acc_delta + epsilon) / np.sqrt(acc_g + epsilon) * g
    acc_delta *= rho
    acc_delta += (1 - rho) * delta * delta
    weight -= delta + wd * weight


def adamax(weight, grad, m, u, *, lr, wd, beta1, beta2, rescale_grad, clip_gradient=None) -> None:
    """Adamax: g = clip(rescale*g + wd*w); m = beta1*m + (1-beta1)*g; u = max(beta2*u, |g|);
    w -= lr*m/u. Bias correction is folded into lr by the caller."""
    g = _python_clip(grad * rescale_grad + wd * weight, clip_gradient)
    m *= beta1
    m += (1 - beta1) * g
    u[...] = np.maximum(beta2 * u, np.abs(g))
    weight -= lr * m / u


def nadam(
    weight,
    grad,
    m,
    v,
    *,
    lr,
    wd,
    beta1,
    beta2,
    epsilon,
    t,
    momentum_t,
    momentum_t_1,
    m_schedule,
    m_schedule_next,
    rescale_grad,
    clip_gradient=None,
) -> None:
    """Nadam: g = clip(rescale*g + wd*w); Adam moments of g; the update mixes the bias-corrected
    gradient and momentum with the warming momentum schedule the caller computes."""
    g = _python_clip(grad * rescale_grad + wd * weight, clip_gradient)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    g_prime = g / (1 - m_schedule)
    m_prime = m / (1 - m_schedule_next)
    v_prime = v / (1 - pow(beta2, t))
    m_bar = (1 - momentum_t) * g_prime + momentum_t_1 * m_prime
    weight -= lr * m_bar / (np.sqrt(v_prime) + epsilon)

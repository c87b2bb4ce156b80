"""Optimizer updates as one graph op, so a whole training step (forward, backward, update) compiles
into one program.

`_optimizer_update(weight, grad, *states, *scalars; rule=...)` returns the new weight and the new
states. Every hyper-parameter is a (1,)-shaped input (`scalars`, in the rule's order): the frontend
computes them each step (learning rate with its schedule, multipliers and bias corrections), so one
program serves every step. Each rule's formula is written once, over a math namespace `m` and
Python operators (ops/mathspace.py), and runs both on NumPy arrays (`NumpyMath`: the reference,
which the NumPy optimizers also use) and on scalar expressions (`ExprMath`: the lowering). A clip
bound below zero means "no clipping".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .mathspace import NumpyMath
from .params import Param, enum
from .registry import FusionKind, define_op, no_gradient, reference, shape_rule, type_rule
from .rules import RuleError, unify


@dataclass(frozen=True)
class UpdateRule:
    """`step(m, w, g, states, s) -> (new w, new states)`; `s` maps each name in `scalars` to a value."""

    states: int
    scalars: tuple[str, ...]
    step: Callable


def clip(m, x, bound):
    """x clipped to [-bound, bound]; unchanged where bound < 0."""
    return (
        m.where(bound >= 0, m.minimum(m.maximum(x, -bound), bound), x)
        if m.data_dependent
        else (m.minimum(m.maximum(x, -bound), bound) if bound >= 0 else x)
    )


def _sgd(m, w, g, st, s):
    return (1 - s["lr"] * s["wd"]) * w - s["lr"] * clip(m, s["rescale_grad"] * g, s["clip_gradient"]), []


def _sgd_mom(m, w, g, st, s):
    mom = (
        s["momentum"] * st[0]
        - s["lr"] * s["wd"] * w
        - s["lr"] * clip(m, s["rescale_grad"] * g, s["clip_gradient"])
    )
    return w + mom, [mom]


def _nag_mom(m, w, g, st, s):
    step = s["lr"] * (clip(m, s["rescale_grad"] * g, s["clip_gradient"]) + s["wd"] * w)
    mom = st[0] * s["momentum"]
    return w - mom + (s["momentum"] + 1) * (mom - step), [mom - step]


def _adam(m, w, g, st, s):
    g = clip(m, g * s["rescale_grad"] + w * s["wd"], s["clip_gradient"])
    mean = s["beta1"] * st[0] + (1 - s["beta1"]) * g
    var = s["beta2"] * st[1] + (1 - s["beta2"]) * g * g
    return w - s["lr"] * mean / (m.sqrt(var) + s["epsilon"]), [mean, var]


def _rmsprop(m, w, g, st, s):
    g = clip(m, s["rescale_grad"] * g + s["wd"] * w, s["clip_gradient"])
    n = (1 - s["gamma1"]) * (g * g) + s["gamma1"] * st[0]
    return clip(m, w - s["lr"] * (g / m.sqrt(n + s["epsilon"])), s["clip_weights"]), [n]


def _rmspropalex(m, w, g, st, s):
    g = clip(m, s["rescale_grad"] * g + s["wd"] * w, s["clip_gradient"])
    n = (1 - s["gamma1"]) * g * g + s["gamma1"] * st[0]
    g_avg = (1 - s["gamma1"]) * g + s["gamma1"] * st[1]
    delta = s["gamma2"] * st[2] - s["lr"] * g / m.sqrt(n - g_avg * g_avg + s["epsilon"])
    return clip(m, w + delta, s["clip_weights"]), [n, g_avg, delta]


def _ftrl(m, w, g, st, s):
    g = clip(m, g * s["rescale_grad"], s["clip_gradient"])
    z = st[0] + g - (m.sqrt(st[1] + g * g) - m.sqrt(st[1])) * w / s["lr"]
    n = st[1] + g * g
    keep = m.indicator(m.abs(z) > s["lamda1"], z)
    return (m.sign(z) * s["lamda1"] - z) / ((s["beta"] + m.sqrt(n)) / s["lr"] + s["wd"]) * keep, [z, n]


def _signsgd(m, w, g, st, s):
    return (1 - s["lr"] * s["wd"]) * w - s["lr"] * m.sign(g), []


def _signum(m, w, g, st, s):
    mom = (
        s["momentum"] * st[0]
        - (1 - s["momentum"]) * s["wd"] * w
        - (1 - s["momentum"]) * clip(m, s["rescale_grad"] * g, s["clip_gradient"])
    )
    return (1 - s["lr"] * s["wd_lh"]) * w + s["lr"] * m.sign(mom), [mom]


def _adagrad(m, w, g, st, s):
    g = clip(m, g * s["rescale_grad"], s["clip_gradient"])
    history = st[0] + g * g
    return w + (g / m.sqrt(history + s["eps"]) + w * s["wd"]) * -s["lr"], [history]


def _adadelta(m, w, g, st, s):
    g = clip(m, g * s["rescale_grad"], s["clip_gradient"])
    acc_g = st[0] * s["rho"] + (1 - s["rho"]) * g * g
    delta = m.sqrt(st[1] + s["epsilon"]) / m.sqrt(acc_g + s["epsilon"]) * g
    acc_delta = st[1] * s["rho"] + (1 - s["rho"]) * delta * delta
    return w - (delta + s["wd"] * w), [acc_g, acc_delta]


def _adamax(m, w, g, st, s):
    g = clip(m, g * s["rescale_grad"] + s["wd"] * w, s["clip_gradient"])
    mean = st[0] * s["beta1"] + (1 - s["beta1"]) * g
    u = m.maximum(s["beta2"] * st[1], m.abs(g))
    return w - s["lr"] * mean / u, [mean, u]


def _nadam(m, w, g, st, s):
    g = clip(m, g * s["rescale_grad"] + s["wd"] * w, s["clip_gradient"])
    mean = st[0] * s["beta1"] + (1 - s["beta1"]) * g
    var = st[1] * s["beta2"] + (1 - s["beta2"]) * g * g
    g_prime = g / (1 - s["m_schedule"])
    m_prime = mean / (1 - s["m_schedule_next"])
    v_prime = var / s["v_correction"]
    m_bar = (1 - s["momentum_t"]) * g_prime + s["momentum_t_1"] * m_prime
    return w - s["lr"] * m_bar / (m.sqrt(v_prime) + s["epsilon"]), [mean, var]


_CLIPPED = ("lr", "wd", "rescale_grad", "clip_gradient")
UPDATE_RULES: dict[str, UpdateRule] = {
    "sgd": UpdateRule(0, _CLIPPED, _sgd),
    "sgd_mom": UpdateRule(1, _CLIPPED + ("momentum",), _sgd_mom),
    "nag_mom": UpdateRule(1, _CLIPPED + ("momentum",), _nag_mom),
    "adam": UpdateRule(2, _CLIPPED + ("beta1", "beta2", "epsilon"), _adam),
    "rmsprop": UpdateRule(1, _CLIPPED + ("gamma1", "epsilon", "clip_weights"), _rmsprop),
    "rmspropalex": UpdateRule(3, _CLIPPED + ("gamma1", "gamma2", "epsilon", "clip_weights"), _rmspropalex),
    "ftrl": UpdateRule(2, _CLIPPED + ("lamda1", "beta"), _ftrl),
    "signsgd": UpdateRule(0, ("lr", "wd"), _signsgd),
    "signum": UpdateRule(1, _CLIPPED + ("momentum", "wd_lh"), _signum),
    "adagrad": UpdateRule(1, _CLIPPED + ("eps",), _adagrad),
    "adadelta": UpdateRule(2, ("wd", "rescale_grad", "clip_gradient", "rho", "epsilon"), _adadelta),
    "adamax": UpdateRule(2, _CLIPPED + ("beta1", "beta2"), _adamax),
    "nadam": UpdateRule(
        2,
        _CLIPPED
        + (
            "beta1",
            "beta2",
            "epsilon",
            "momentum_t",
            "momentum_t_1",
            "m_schedule",
            "m_schedule_next",
            "v_correction",
        ),
        _nadam,
    ),
}


def numpy_step(rule: str, weight: np.ndarray, grad: np.ndarray, states: list, scalars: dict):
    """(new weight, new states) of `rule` on NumPy arrays; scalars are cast to the weight's dtype as
    MXNet's kernels cast their parameters."""
    cast = {k: weight.dtype.type(v) for k, v in scalars.items()}
    with np.errstate(all="ignore"):
        new_w, new_states = UPDATE_RULES[rule].step(NumpyMath, weight, grad, states, cast)
    return np.asarray(new_w, weight.dtype), [np.asarray(x, s.dtype) for x, s in zip(new_states, states)]


# -- the op -----------------------------------------------------------------------------------------


def _inputs(params) -> tuple[str, ...]:
    rule = UPDATE_RULES[params["rule"]]
    return ("weight", "grad") + tuple(f"state{i}" for i in range(rule.states)) + rule.scalars


define_op(
    "_optimizer_update",
    params=(Param("rule", enum(*UPDATE_RULES), doc="the update rule: " + ", ".join(UPDATE_RULES)),),
    inputs=_inputs,
    outputs=lambda params: 1 + UPDATE_RULES[params["rule"]].states,
    fusion=FusionKind.OPAQUE,
    doc="One optimizer step: the new weight and states from the weight, its gradient, the states and "
    "the (1,)-shaped hyper-parameters.",
)


@shape_rule("_optimizer_update")
def update_shape(params, in_shapes, out_shapes):
    count = 2 + UPDATE_RULES[params["rule"]].states
    shape = None
    for s in list(in_shapes[:count]) + list(out_shapes):
        shape = unify(shape, s)
    for s in in_shapes[count:]:
        if s is not None and tuple(s) != (1,):
            raise RuleError(f"hyper-parameter inputs must have shape (1,), got {s}")
    return [shape] * count + [(1,)] * (len(in_shapes) - count), [shape] * len(out_shapes)


@type_rule("_optimizer_update")
def update_type(params, in_types, out_types):
    states = UPDATE_RULES[params["rule"]].states
    weight = unify(unify(in_types[0], in_types[1]), out_types[0])
    state_types = [unify(in_types[2 + i], out_types[1 + i]) for i in range(states)]
    scalars = [weight] * (len(in_types) - 2 - states)
    return [weight, weight, *state_types, *scalars], [weight, *state_types]


@reference("_optimizer_update")
def update_reference(params, inputs, ctx):
    rule = UPDATE_RULES[params["rule"]]
    weight, grad = inputs[:2]
    states = list(inputs[2 : 2 + rule.states])
    scalars = {name: float(a.reshape(-1)[0]) for name, a in zip(rule.scalars, inputs[2 + rule.states :])}
    new_w, new_states = numpy_step(params["rule"], weight, grad, states, scalars)
    return [new_w, *new_states]


no_gradient("_optimizer_update")

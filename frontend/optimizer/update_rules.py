"""One optimizer update as data, and its application to NumPy arrays in place.

An optimizer hands out each update as an `UpdateStep`: the name of a rule of
`ember.compiler.ops.optimizer.UPDATE_RULES` (MXNet's kernels in `src/operator/optimizer_op-inl.h` -
`sgd_update`, `adam_update`, ... - and, for AdaGrad, AdaDelta, Adamax and Nadam, MXNet's Python
optimizer code) and the rule's scalar hyper-parameters for this step. The formulas live there once;
`apply_step` runs them on NumPy arrays (`Optimizer.update`), and the fused training step
(`ember.module.fused_step`) compiles the same rule and feeds it the same scalars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ember.compiler.ops.optimizer import UPDATE_RULES, numpy_step

# Kernel convention: a clip bound below zero means "no clipping" (the kernels' default is -1).
NO_CLIP = -1.0


@dataclass(frozen=True)
class UpdateStep:
    """One update of one parameter: `rule` (a key of UPDATE_RULES) and `scalars`, a value for each of
    the rule's scalar names (`UPDATE_RULES[rule].scalars`)."""

    rule: str
    scalars: dict[str, float]

    def check(self) -> UpdateStep:
        """This step, after checking that its scalars are exactly its rule's (ValueError naming both
        otherwise). The NumPy path checks every step; the fused step checks its probe once at build,
        since a step's rule and names never change between batches."""
        expected = UPDATE_RULES[self.rule].scalars
        if set(self.scalars) != set(expected):
            raise ValueError(
                f"update rule {self.rule} takes the hyper-parameters {', '.join(expected)}; "
                f"the optimizer gave {', '.join(sorted(self.scalars))}"
            )
        return self


def apply_step(step: UpdateStep, weight: np.ndarray, grad: np.ndarray, states: list[np.ndarray]) -> None:
    """Overwrite `weight` and `states` with the results of `step`'s rule (the scalars are cast to the
    weight's dtype, as MXNet's kernels cast their parameters)."""
    step.check()
    expected = UPDATE_RULES[step.rule].states
    if len(states) != expected:
        raise ValueError(f"update rule {step.rule} takes {expected} state arrays, got {len(states)}")
    new_weight, new_states = numpy_step(step.rule, weight, grad, states, step.scalars)
    weight[...] = new_weight
    for state, value in zip(states, new_states):
        state[...] = value


def python_clip(clip_gradient) -> float:
    """The clip bound of the rules MXNet runs in Python, which clip whenever clip_gradient is not None."""
    return NO_CLIP if clip_gradient is None else clip_gradient

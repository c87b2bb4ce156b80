"""`Trainer.step` fused into the compiled training step before it (Gluon's half of the fused update).

A Gluon training loop repeats `record` -> forward -> loss -> `backward` -> `trainer.step`. Once the
recorded step runs as a compiled program (`ndarray/compiled_steps.py`), the Trainer offers each
update it makes on its own (`offer`): the weights, their optimizer rule (`Optimizer.update_step`, the
rules `Module.fit`'s fused step compiles too) and their state arrays. When the same step and update
repeat, the step's trace compiles one program doing forward, backward and this update, and the
weights and optimizer states move into its memory. From then on `backward` waits
(`DeferredBackward`) and `trainer.step` runs that one program (`apply`): no gradient or weight
crosses Python, and the update counts, learning-rate schedule and multipliers are the optimizer's
own, computed per step as `update` computes them. Anything unusual - another optimizer object,
`load_states`, a Parameter re-initialized or its grad_req changed, several contexts, float16
weights, grad_req 'add', an optimizer with its own `update` - takes the separate path, which gives
the same numbers.
"""

from __future__ import annotations

import numpy as np

from ..ndarray import compiled_steps
from ..ndarray.step_programs import UpdateSpec
from ..optimizer.base import state_arrays


class FusedUpdate:
    """One Trainer's side of the fused update: what it offered, checked again before each fused run."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.optimizer = self.updater = None
        self.unplanned: list = []  # the Parameters with grad_req 'null' at the last offer

    def offer(self) -> None:
        """After a separate update: offer it for fusing into the step that ran before it."""
        if not compiled_steps.may_offer_update(self):
            return
        trainer = self.trainer
        planned = _plan(trainer)
        if not planned:
            return
        optimizer = trainer._optimizer
        plan = []
        for index, param, weight, grad, state, has_state in planned:
            states = state_arrays(state)
            rule = optimizer.probe_update_step(index, has_state).check().rule
            spec = UpdateSpec(rule, tuple((s.shape, np.dtype(s.dtype).name) for s in states))
            plan.append((weight, spec, states, (index, param, grad, state, has_state)))
        self.optimizer, self.updater = optimizer, trainer._updaters[0]
        self.unplanned = [p for p in trainer._params if p.grad_req == "null"]
        compiled_steps.offer_update(self, plan)

    def apply(self) -> bool:
        """Run this step's fused program as the update, when the step waits for this Trainer's update
        and nothing changed since it was planned; False (nothing done) otherwise."""
        deferred = compiled_steps.deferred_backward()
        plan = deferred.plan_of(self) if deferred is not None else None
        if plan is None:
            return False
        if not self._still_planned(plan):
            deferred.decline()  # the separate update that follows plans the fused one anew
            return False
        optimizer = self.trainer._optimizer
        optimizer._set_current_context(plan[0][1].context.device_id)
        deferred.update([optimizer.update_step(tag[0], tag[4]).scalars for _, _, _, tag in plan])
        for _, weight, _, _ in plan:
            weight._fresh_grad = False
        return True

    def _still_planned(self, plan: list) -> bool:
        """Whether the optimizer, its states and the Parameters are those `plan` was made for."""
        trainer = self.trainer
        optimizer, updater = trainer._optimizer, trainer._updaters[0]
        if optimizer is not self.optimizer or updater is not self.updater:
            return False
        states = updater.states
        for _, weight, _, (index, param, grad, state, _) in plan:
            grads = param._grad
            if param._data[0] is not weight or not grads or grads[0] is not grad:
                return False
            if states.get(index) is not state:
                return False
        return not any(param.grad_req != "null" for param in self.unplanned)


def _plan(trainer) -> list | None:
    """(index, Parameter, weight, gradient, optimizer state, whether it has state arrays) of each
    Parameter the update changes, or None when the update cannot be fused."""
    optimizer = trainer._optimizer
    contexts = trainer._contexts
    if len(contexts) != 1 or contexts[0].device_type != "cpu" or not optimizer.has_update_rule:
        return None
    updater = trainer._updaters[0]
    planned = []
    for index, param in enumerate(trainer._params):
        if param.grad_req == "null":
            continue
        if param.grad_req != "write" or param._data is None or index not in updater.states:
            return None
        weight = param._data[0]
        if weight.dtype == np.float16:
            return None
        state = updater.states[index]
        planned.append((index, param, weight, param._grad[0], state, bool(state_arrays(state))))
    return planned

"""`mx.lr_scheduler`: learning rate as a function of the update count (MXNET_COMPAT.md 6.3).

An optimizer calls its scheduler with `num_update`, the largest number of updates any one weight has
had (1 on the first update). Schedulers are stateful, as in MXNet 1.9.1: Factor and MultiFactor
lower `base_lr` as updates pass their steps (logging each change), Poly and Cosine rewrite it.
During the first `warmup_steps` updates every scheduler returns the warmup rate instead.
"""

from __future__ import annotations

import logging
import numbers
from math import cos, pi

# FactorScheduler catches up at most this many steps one by one (logging each), as MXNet does; more
# are taken at once.
LOOPED_STEPS = 10_000

__all__ = ["CosineScheduler", "FactorScheduler", "LRScheduler", "MultiFactorScheduler", "PolyScheduler"]


class LRScheduler:
    """Base class: holds `base_lr` and the warmup, 'linear' (from `warmup_begin_lr` up to `base_lr`)
    or 'constant' (`warmup_begin_lr` throughout)."""

    def __init__(
        self,
        base_lr: float = 0.01,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ):
        self.base_lr = base_lr
        _check_int("warmup_steps", warmup_steps)
        self.warmup_steps = warmup_steps
        # The warmup's target is fixed here: an optimizer overwriting base_lr later does not move it.
        self.warmup_final_lr = base_lr
        self.warmup_begin_lr = warmup_begin_lr
        if self.warmup_begin_lr > self.warmup_final_lr:
            raise ValueError("Base lr has to be higher than warmup_begin_lr")
        if self.warmup_steps < 0:
            raise ValueError("Warmup steps has to be positive or 0")
        if warmup_mode not in ("linear", "constant"):
            raise ValueError("Supports only linear and constant modes of warmup")
        self.warmup_mode = warmup_mode

    def get_warmup_lr(self, num_update: int) -> float:
        """The warmup learning rate at `num_update` (< warmup_steps)."""
        if num_update >= self.warmup_steps:
            raise ValueError(f"update {num_update} is past the {self.warmup_steps} warmup steps")
        if self.warmup_mode == "linear":
            increase = (
                (self.warmup_final_lr - self.warmup_begin_lr) * float(num_update) / float(self.warmup_steps)
            )
            return self.warmup_begin_lr + increase
        if self.warmup_mode == "constant":
            return self.warmup_begin_lr
        raise ValueError(f"Invalid warmup mode {self.warmup_mode}")

    def __call__(self, num_update: int) -> float:
        """The learning rate after `num_update` updates (the largest count over all weights)."""
        raise NotImplementedError("must override this")


class FactorScheduler(LRScheduler):
    """Multiply the rate by `factor` every `step` updates: base_lr * factor^floor((num_update-1)/step),
    never below `stop_factor_lr`."""

    def __init__(
        self,
        step: int,
        factor: float = 1,
        stop_factor_lr: float = 1e-8,
        base_lr: float = 0.01,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if step < 1:
            raise ValueError("Schedule step must be greater or equal than 1 round")
        if factor > 1.0:
            raise ValueError("Factor must be no more than 1 to make lr reduce")
        self.step = step
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr
        self.count = 0

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        # a loop, not an if: training resumed from a checkpoint may be several steps ahead
        self._jump_far_ahead(num_update)
        while num_update > self.count + self.step:
            self.count += self.step
            self.base_lr *= self.factor
            if self.base_lr < self.stop_factor_lr:
                self.base_lr = self.stop_factor_lr
                logging.info(  # noqa: LOG015 - MXNet logs these lines on the root logger
                    "Update[%d]: now learning rate arrived at %0.5e, will not change in the future",
                    num_update,
                    self.base_lr,
                )
            else:
                logging.info("Update[%d]: Change learning rate to %0.5e", num_update, self.base_lr)  # noqa: LOG015
        return self.base_lr

    def _jump_far_ahead(self, num_update: int) -> None:
        """Take all but the last LOOPED_STEPS of the steps due at once (the loop in __call__ takes one
        per round and logs each): a schedule far behind its optimizer's count, as a loaded file may
        say, would otherwise loop for as many rounds. The rate is the same up to rounding."""
        due = int((num_update - self.count - 1) // self.step)
        jumped = due - LOOPED_STEPS
        if jumped > 0:
            self.count += jumped * self.step
            self.base_lr = max(self.base_lr * self.factor**jumped, self.stop_factor_lr)


class MultiFactorScheduler(LRScheduler):
    """Multiply the rate by `factor` once `num_update` exceeds each of the increasing `step`s."""

    def __init__(
        self,
        step: list[int],
        factor: float = 1,
        base_lr: float = 0.01,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if not isinstance(step, list) or len(step) < 1:
            raise ValueError(f"MultiFactorScheduler's step must be a non-empty list of ints, not {step!r}")
        for i, _step in enumerate(step):
            if i != 0 and _step <= step[i - 1]:
                raise ValueError("Schedule step must be an increasing integer list")
            if _step < 1:
                raise ValueError("Schedule step must be greater or equal than 1 round")
        if factor > 1.0:
            raise ValueError("Factor must be no more than 1 to make lr reduce")
        self.step = step
        self.cur_step_ind = 0
        self.factor = factor
        self.count = 0

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        while self.cur_step_ind <= len(self.step) - 1 and num_update > self.step[self.cur_step_ind]:
            self.count = self.step[self.cur_step_ind]
            self.cur_step_ind += 1
            self.base_lr *= self.factor
            logging.info("Update[%d]: Change learning rate to %0.5e", num_update, self.base_lr)  # noqa: LOG015
        return self.base_lr


class _DecayToFinalScheduler(LRScheduler):
    """After warmup, lr = final_lr + (base_lr - final_lr) * decay(progress), progress = n / max_steps
    with n = num_update - warmup_steps and max_steps = max_update - warmup_steps; constant after
    max_update. The decay starts from the constructor's base_lr, even if an optimizer overwrites it."""

    def __init__(self, max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        _check_int("max_update", max_update)
        if max_update < 1:
            raise ValueError("maximum number of updates must be strictly positive")
        self.base_lr_orig = self.base_lr
        self.max_update = max_update
        self.final_lr = final_lr
        self.max_steps = self.max_update - self.warmup_steps

    def decay(self, progress: float) -> float:
        raise NotImplementedError

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update <= self.max_update:
            progress = float(num_update - self.warmup_steps) / float(self.max_steps)
            self.base_lr = self.final_lr + (self.base_lr_orig - self.final_lr) * self.decay(progress)
        return self.base_lr


class PolyScheduler(_DecayToFinalScheduler):
    """Polynomial decay after warmup: decay(progress) = (1 - progress)^pwr."""

    def __init__(self, max_update: int, base_lr: float = 0.01, pwr: float = 2, final_lr: float = 0,
                 warmup_steps: int = 0, warmup_begin_lr: float = 0, warmup_mode: str = "linear"):
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        self.power = pwr

    def decay(self, progress: float) -> float:
        return pow(1 - progress, self.power)


class CosineScheduler(_DecayToFinalScheduler):
    """Cosine decay after warmup: decay(progress) = (1 + cos(pi * progress)) / 2."""

    def __init__(self, max_update: int, base_lr: float = 0.01, final_lr: float = 0, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0, warmup_mode: str = "linear"):
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode)

    def decay(self, progress: float) -> float:
        return (1 + cos(pi * progress)) / 2


def _check_int(name: str, value) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__} {value!r}")

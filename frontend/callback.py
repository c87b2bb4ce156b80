"""`mx.callback`: what `Module.fit` calls after each batch and each epoch, as in MXNet 1.9.1.

Batch-end callbacks receive a `BatchEndParam(epoch, nbatch, eval_metric, locals)` and log through the
root logger (`Speedometer`, `log_train_metric`, `ProgressBar`, `LogValidationMetricsCallback`);
epoch-end callbacks receive `(epoch, symbol, arg_params, aux_params)` and save checkpoints
(`do_checkpoint`, `module_checkpoint`).
"""

# MXNet logs these lines on the root logger, and users' `logging.basicConfig` shows them from there.
# ruff: noqa: LOG015

from __future__ import annotations

import logging
import math
import time

from .model import BatchEndParam, save_checkpoint

__all__ = [
    "BatchEndParam",
    "LogValidationMetricsCallback",
    "ProgressBar",
    "Speedometer",
    "do_checkpoint",
    "log_train_metric",
    "module_checkpoint",
]

def module_checkpoint(mod, prefix: str, period: int = 1, save_optimizer_states: bool = False):
    """An epoch-end callback calling `mod.save_checkpoint(prefix, epoch + 1, ...)` every `period` epochs."""
    period = int(max(1, period))

    def _callback(iter_no, sym=None, arg=None, aux=None):
        if (iter_no + 1) % period == 0:
            mod.save_checkpoint(prefix, iter_no + 1, save_optimizer_states)

    return _callback


def do_checkpoint(prefix: str, period: int = 1):
    """An epoch-end callback saving `prefix-symbol.json` and `prefix-%04d.params` every `period` epochs.

    The file number is the count of finished epochs: after the first epoch, `prefix-0001.params`.
    """
    period = int(max(1, period))

    def _callback(iter_no, sym, arg, aux):
        if (iter_no + 1) % period == 0:
            save_checkpoint(prefix, iter_no + 1, sym, arg, aux)

    return _callback


def log_train_metric(period: int, auto_reset: bool = False):
    """A batch-end callback logging `Iter[e] Batch[b] Train-<name>=<value>` every `period` batches."""

    def _callback(param):
        if param.nbatch % period == 0 and param.eval_metric is not None:
            for name, value in param.eval_metric.get_name_value():
                logging.info("Iter[%d] Batch[%d] Train-%s=%f", param.epoch, param.nbatch, name, value)
            if auto_reset:
                param.eval_metric.reset_local()

    return _callback


class Speedometer:
    """Logs samples/sec and the metric's local values every `frequent` batches.

    The first call of an epoch (nbatch going down starts a new one) only starts the clock. With
    `auto_reset` the metric's local statistics are cleared after each line, which then covers
    batches `[n - frequent, n]`; otherwise it covers `[0, n]`.
    """

    def __init__(self, batch_size: int, frequent: int = 50, auto_reset: bool = True):
        self.batch_size = batch_size
        self.frequent = frequent
        self.init = False
        self.tic = 0.0
        self.last_count = 0
        self.auto_reset = auto_reset

    def __call__(self, param) -> None:
        count = param.nbatch
        if self.last_count > count:
            self.init = False
        self.last_count = count

        if not self.init:
            self.init = True
            self.tic = time.time()
            return
        if count % self.frequent != 0:
            return
        try:
            speed = self.frequent * self.batch_size / (time.time() - self.tic)
        except ZeroDivisionError:
            speed = float("inf")
        if param.eval_metric is None:
            logging.info("Iter[%d] Batch [%d]\tSpeed: %.2f samples/sec", param.epoch, count, speed)
        else:
            name_value = param.eval_metric.get_name_value()
            values = [item for pair in name_value for item in pair]
            msg = "Epoch[%d] Batch [%d-%d]\tSpeed: %.2f samples/sec" + "\t%s=%f" * len(name_value)
            if self.auto_reset:
                param.eval_metric.reset_local()
                logging.info(msg, param.epoch, count - self.frequent, count, speed, *values)
            else:
                logging.info(msg, param.epoch, 0, count, speed, *values)
        self.tic = time.time()


class ProgressBar:
    """Logs a progress bar `[====----] 50%` of the batches done in the epoch (`total` per epoch)."""

    def __init__(self, total: int, length: int = 80):
        self.bar_len = length
        self.total = total

    def __call__(self, param) -> None:
        count = param.nbatch
        filled_len = round(self.bar_len * count / float(self.total))
        percents = math.ceil(100.0 * count / float(self.total))
        prog_bar = "=" * filled_len + "-" * (self.bar_len - filled_len)
        logging.info("[%s] %s%s\r", prog_bar, percents, "%")


class LogValidationMetricsCallback:
    """Logs `Epoch[e] Validation-<name>=<value>` for each value of the metric (an eval-end callback)."""

    def __call__(self, param) -> None:
        if not param.eval_metric:
            return
        for name, value in param.eval_metric.get_name_value():
            logging.info("Epoch[%d] Validation-%s=%f", param.epoch, name, value)

"""`BaseModule`: the training and evaluation loops every module shares (`fit`, `score`, `predict`).

The loops follow MXNet 1.9.1's exactly (MXNET_COMPAT.md 4.6-4.7): the same order of binding,
initialisation and optimizer set-up, the same callbacks, and the same log lines through `logging`.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .. import metric as metric_module
from .. import ndarray as nd
from ..initializer import Uniform
from ..io import DataBatch
from ..model import BatchEndParam


def _as_list(obj) -> list:
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


class BaseModule:
    """Shared loops over `forward`, `backward`, `update` and `update_metric` of a subclass."""

    def __init__(self, logger=logging):
        self.logger = logger
        self.binded = False
        self.for_training = False
        self.inputs_need_grad = False
        self.params_initialized = False
        self.optimizer_initialized = False
        self._symbol = None

    @property
    def symbol(self):
        return self._symbol

    def _fit_step(self, data_batch) -> None:
        """One training step of `fit`: forward, backward and update (modules may fuse them)."""
        self.forward_backward(data_batch)
        self.update()

    def forward_backward(self, data_batch) -> None:
        """A training forward pass and its backward pass."""
        self.forward(data_batch, is_train=True)
        self.backward()

    def prepare(self, data_batch, sparse_row_id_fn=None) -> None:
        """Nothing to prepare for dense parameters on one device."""

    def score(self, eval_data, eval_metric, num_batch=None, batch_end_callback=None, score_end_callback=None,
              reset=True, epoch=0, sparse_row_id_fn=None):
        """Run inference over `eval_data` and return `eval_metric.get_name_value()`."""
        self._require(binded=True, params=True)
        if reset:
            eval_data.reset()
        if not isinstance(eval_metric, metric_module.EvalMetric):
            eval_metric = metric_module.create(eval_metric)
        eval_metric.reset()
        actual_num_batch = 0
        for nbatch, eval_batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.prepare(eval_batch, sparse_row_id_fn=sparse_row_id_fn)
            self.forward(eval_batch, is_train=False)
            self.update_metric(eval_metric, eval_batch.label)
            for callback in _as_list(batch_end_callback or []):
                callback(BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=eval_metric, locals=locals()))
            actual_num_batch += 1
        for callback in _as_list(score_end_callback or []):
            callback(BatchEndParam(epoch=epoch, nbatch=actual_num_batch, eval_metric=eval_metric, locals=locals()))
        return eval_metric.get_name_value()

    def iter_predict(self, eval_data, num_batch=None, reset=True, sparse_row_id_fn=None):
        """Yield (outputs without the batch's padding, batch index, batch) for each batch."""
        self._require(binded=True, params=True)
        if reset:
            eval_data.reset()
        for nbatch, eval_batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.prepare(eval_batch, sparse_row_id_fn=sparse_row_id_fn)
            self.forward(eval_batch, is_train=False)
            pad = eval_batch.pad or 0
            yield [out[0 : out.shape[0] - pad] for out in self.get_outputs()], nbatch, eval_batch

    def predict(self, eval_data, num_batch=None, merge_batches=True, reset=True, always_output_list=False,
                sparse_row_id_fn=None):
        """Outputs over a DataIter (padding stripped, batches concatenated), or of one array."""
        self._require(binded=True, params=True)
        if isinstance(eval_data, (nd.NDArray, np.ndarray)):
            array = nd.array(eval_data) if isinstance(eval_data, np.ndarray) else eval_data
            self.forward(DataBatch([array]))
            return self.get_outputs()[0]
        output_list = [[o.copy() for o in outs] for outs, _, _ in self.iter_predict(eval_data, num_batch, reset)]
        if not output_list or not merge_batches:
            return output_list
        num_outputs = len(output_list[0])
        merged = [nd.concatenate([outs[i] for outs in output_list]) for i in range(num_outputs)]
        return merged[0] if num_outputs == 1 and not always_output_list else merged

    def fit(self, train_data, eval_data=None, eval_metric="acc", epoch_end_callback=None, batch_end_callback=None,
            kvstore="local", optimizer="sgd", optimizer_params=(("learning_rate", 0.01),), eval_end_callback=None,
            eval_batch_end_callback=None, initializer=Uniform(0.01), arg_params=None, aux_params=None,
            allow_missing=False, force_rebind=False, force_init=False, begin_epoch=0, num_epoch=None,
            validation_metric=None, monitor=None, sparse_row_id_fn=None):
        """Train over `train_data` for epochs [begin_epoch, num_epoch), as MXNet's Module.fit does."""
        if num_epoch is None:
            raise ValueError("please specify number of epochs")
        self.bind(data_shapes=train_data.provide_data, label_shapes=train_data.provide_label, for_training=True,
                  force_rebind=force_rebind)
        if monitor is not None:
            self.install_monitor(monitor)
        self.init_params(initializer=initializer, arg_params=arg_params, aux_params=aux_params,
                         allow_missing=allow_missing, force_init=force_init)
        self.init_optimizer(kvstore=kvstore, optimizer=optimizer, optimizer_params=optimizer_params)
        validation_metric = validation_metric if validation_metric is not None else eval_metric
        if not isinstance(eval_metric, metric_module.EvalMetric):
            eval_metric = metric_module.create(eval_metric)
        for epoch in range(begin_epoch, num_epoch):
            tic = time.time()
            eval_name_vals = self._fit_epoch(train_data, eval_metric, epoch, batch_end_callback, monitor,
                                             sparse_row_id_fn, locals())
            for name, val in eval_name_vals:
                self.logger.info("Epoch[%d] Train-%s=%f", epoch, name, val)
            self.logger.info("Epoch[%d] Time cost=%.3f", epoch, time.time() - tic)
            arg_params, aux_params = self.get_params()
            self.set_params(arg_params, aux_params)
            for callback in _as_list(epoch_end_callback or []):
                callback(epoch, self.symbol, arg_params, aux_params)
            if eval_data:
                res = self.score(eval_data, validation_metric, score_end_callback=eval_end_callback,
                                 batch_end_callback=eval_batch_end_callback, epoch=epoch)
                for name, val in res:
                    self.logger.info("Epoch[%d] Validation-%s=%f", epoch, name, val)
            train_data.reset()

    def _fit_epoch(self, train_data, eval_metric, epoch, batch_end_callback, monitor, sparse_row_id_fn, fit_locals):
        """One pass over the training data (not reset first, as MXNet); the metric's global values.
        Callbacks see `fit`'s locals and this loop's (`data_batch`, `next_data_batch`, ...), as in MXNet."""
        eval_metric.reset()
        data_iter = iter(train_data)
        next_data_batch = next(data_iter)
        nbatch, end_of_batch, eval_name_vals = 0, False, []
        while not end_of_batch:
            data_batch = next_data_batch
            if monitor is not None:
                monitor.tic()
            self._fit_step(data_batch)
            self.update_metric(eval_metric, data_batch.label)
            try:
                next_data_batch = next(data_iter)
                self.prepare(next_data_batch, sparse_row_id_fn=sparse_row_id_fn)
            except StopIteration:
                end_of_batch = True
            if monitor is not None:
                monitor.toc_print()
            if end_of_batch:
                eval_name_vals = eval_metric.get_global_name_value()
            for callback in _as_list(batch_end_callback or []):
                callback(BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=eval_metric,
                                       locals={**fit_locals, **locals()}))
            nbatch += 1
        return eval_name_vals

    def get_params(self):
        """(arg_params, aux_params); modules implement it."""
        raise NotImplementedError()

    def set_params(self, arg_params, aux_params, allow_missing=False, force_init=True, allow_extra=False):
        """Set parameters from dicts, through `init_params` (as MXNet's BaseModule does)."""
        self.init_params(initializer=None, arg_params=arg_params, aux_params=aux_params,
                         allow_missing=allow_missing, force_init=force_init, allow_extra=allow_extra)

    def install_monitor(self, mon) -> None:
        raise NotImplementedError("mx.monitor.Monitor is not supported by Ember yet")

    def _require(self, binded: bool = False, params: bool = False, optimizer: bool = False) -> None:
        if binded and not self.binded:
            raise RuntimeError("call bind before using this module")
        if params and not self.params_initialized:
            raise RuntimeError("call init_params (or set_params) before using this module")
        if optimizer and not self.optimizer_initialized:
            raise RuntimeError("call init_optimizer before update")

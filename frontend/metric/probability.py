"""Metrics of predicted probabilities and of loss outputs: CrossEntropy, NegativeLogLikelihood,
Perplexity, and Loss (with its Torch and Caffe aliases), which averages what the network outputs.

The probability metrics expect rows of class probabilities (SoftmaxOutput's output) and report the
mean over samples.
"""

from __future__ import annotations

import math

import numpy

from .base import EvalMetric, alias, as_numpy, check_label_shapes, register


def _label_probabilities(label, pred) -> numpy.ndarray:
    """pred[i, label[i]] for each sample i of `(N, C)` probabilities and N labels."""
    label, pred = as_numpy(label).ravel(), as_numpy(pred)
    if label.shape[0] != pred.shape[0]:
        raise ValueError(f"{label.shape[0]} labels for {pred.shape[0]} predictions (shape {pred.shape})")
    return pred[numpy.arange(label.shape[0], dtype=numpy.int64), label.astype(numpy.int64)]


@register
@alias("ce")
class CrossEntropy(EvalMetric):
    """Mean of -log(p[label] + eps) over samples."""

    def __init__(self, eps=1e-12, name="cross-entropy", output_names=None, label_names=None):
        super().__init__(
            name, eps=eps, output_names=output_names, label_names=label_names, has_global_stats=True
        )
        self.eps = eps

    def update(self, labels, preds) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            prob = _label_probabilities(label, pred)
            loss = float((-numpy.log(prob + self.eps)).sum())
            self.sum_metric += loss
            self.global_sum_metric += loss
            self.num_inst += prob.shape[0]
            self.global_num_inst += prob.shape[0]


@register
@alias("nll_loss")
class NegativeLogLikelihood(CrossEntropy):
    """Mean negative log-likelihood of the labels; the same quantity as CrossEntropy."""

    def __init__(self, eps=1e-12, name="nll-loss", output_names=None, label_names=None):
        super().__init__(eps, name, output_names, label_names)


@register
class Perplexity(EvalMetric):
    """exp of the mean negative log-probability of the labels; `ignore_label` positions don't count.

    Class scores lie along `axis` of the prediction; there is one label per position on the others.
    """

    def __init__(self, ignore_label, axis=-1, name="perplexity", output_names=None, label_names=None):
        super().__init__(
            name,
            ignore_label=ignore_label,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self.ignore_label = ignore_label
        self.axis = axis

    def update(self, labels, preds) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        loss, count = 0.0, 0
        for label, pred in zip(labels, preds):
            label, pred = as_numpy(label), as_numpy(pred)
            if label.size != pred.size // pred.shape[self.axis]:
                raise ValueError(f"shape mismatch: {label.shape} vs. {pred.shape}")
            label = label.reshape(-1).astype(numpy.int64)
            scores = numpy.moveaxis(pred, self.axis, -1).reshape(label.size, -1)
            prob = scores[numpy.arange(label.size), label].astype(numpy.float64)
            if self.ignore_label is not None:
                ignore = label == self.ignore_label
                count -= int(ignore.sum())
                prob = numpy.where(ignore, 1.0, prob)
            loss -= float(numpy.log(numpy.maximum(1e-10, prob)).sum())
            count += prob.size
        self.sum_metric += loss
        self.global_sum_metric += loss
        self.num_inst += count
        self.global_num_inst += count

    def get(self) -> tuple:
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.sum_metric / self.num_inst))

    def get_global(self) -> tuple:
        if self.global_num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.global_sum_metric / self.global_num_inst))


@register
class Loss(EvalMetric):
    """Mean of the prediction values: for networks whose outputs are the loss (MakeLoss)."""

    def __init__(self, name="loss", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names, has_global_stats=True)

    def update(self, _, preds) -> None:
        preds = [preds] if not isinstance(preds, (list, tuple)) else preds
        for pred in preds:
            pred = as_numpy(pred)
            loss = float(pred.sum())
            self.sum_metric += loss
            self.global_sum_metric += loss
            self.num_inst += pred.size
            self.global_num_inst += pred.size


@register
class Torch(Loss):
    """Loss under the name 'torch' (MXNet's metric for Torch criterions)."""

    def __init__(self, name="torch", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)


@register
class Caffe(Loss):
    """Loss under the name 'caffe' (MXNet's metric for Caffe losses)."""

    def __init__(self, name="caffe", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

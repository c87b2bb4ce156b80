"""Gluon's losses (MXNet 1.9.1's `mxnet.gluon.loss`): HybridBlocks that take a prediction, a label and
optionally a per-sample weight, and return one loss per sample (other axes than `batch_axis` reduced).
Each loss is written once over `F` (ember.ndarray or ember.symbol), so it runs imperatively, hybridized
and on Symbols; it only calls registry ops, so autograd and the compiler see ordinary graphs.
"""

from __future__ import annotations

import numbers

import numpy as np

from ember.compiler.ops import SCHEMAS

from .. import ndarray
from ..base import MXNetError
from ..symbol import Symbol
from .block import HybridBlock
from .errors import CheckFailed, InvalidValue, check


def _apply_weighting(F, loss, weight=None, sample_weight=None):
    """`loss` times `sample_weight` (broadcast) and times the scalar `weight` (None: neither)."""
    if sample_weight is not None:
        loss = F.broadcast_mul(loss, sample_weight)
    if weight is not None:
        loss = loss * weight
    return loss


def _reshape_like(F, x, y):
    """`x` with `y`'s shape (same number of elements): labels may come flat or with extra unit axes."""
    return x.reshape(y.shape) if F is ndarray else F.reshape_like(x, y)


def _per_sample_mean(F, loss, batch_axis):
    """The mean over every axis but `batch_axis`: one value per sample."""
    return F.mean(loss, axis=batch_axis, exclude=True)


def _check_weight(loss_name: str, weight) -> None:
    """MXNet asserts a numeric weight when the loss runs; Ember checks at construction."""
    check(weight is None or (isinstance(weight, numbers.Number) and not isinstance(weight, bool)),
          f"{loss_name}: weight must be a number (or None), got {weight!r}")  # fmt: skip


def _softrelu(F, x):
    """log(1 + exp(x)), the smooth ReLU."""
    return F.Activation(x, act_type="softrelu")


def _require_op(op: str, loss_name: str) -> None:
    """Raise unless the registry has `op` (a loss whose operator Ember does not have yet)."""
    if op not in SCHEMAS:
        raise MXNetError(f"{loss_name} needs the {op} operator, which Ember's registry does not have yet")


class Loss(HybridBlock):
    """The base of every loss: a global scalar `weight` (None: 1) and the mini-batch axis `batch_axis`."""

    def __init__(self, weight, batch_axis, **kwargs):
        super().__init__(**kwargs)
        _check_weight(self.__class__.__name__, weight)
        self._weight = weight
        self._batch_axis = batch_axis

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(batch_axis={self._batch_axis}, w={self._weight})"

    def hybrid_forward(self, F, x, *args, **kwargs):
        """The loss of prediction `x` against the other inputs; subclasses override it."""
        raise NotImplementedError


class L2Loss(Loss):
    """Half the squared error, `weight / 2 * (label - pred)^2`, averaged per sample."""

    def __init__(self, weight=1.0, batch_axis=0, **kwargs):
        if weight is None:
            raise CheckFailed("L2Loss: weight must be a number (it scales the half squared error), got None")
        super().__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        loss = _apply_weighting(F, F.square(label - pred), self._weight / 2, sample_weight)
        return _per_sample_mean(F, loss, self._batch_axis)


class L1Loss(Loss):
    """The absolute error `|label - pred|`, averaged per sample."""

    def __init__(self, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        loss = _apply_weighting(F, F.abs(label - pred), self._weight, sample_weight)
        return _per_sample_mean(F, loss, self._batch_axis)


class SigmoidBinaryCrossEntropyLoss(Loss):
    """Binary cross-entropy of `sigmoid(pred)` (of `pred` itself with `from_sigmoid=True`) against labels
    in [0, 1]; `pos_weight` (broadcast against the label) scales the positive term."""

    def __init__(self, from_sigmoid=False, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._from_sigmoid = from_sigmoid

    def hybrid_forward(self, F, pred, label, sample_weight=None, pos_weight=None):
        label = _reshape_like(F, label, pred)
        if self._from_sigmoid:
            loss = self._from_probabilities(F, pred, label, pos_weight)
        else:
            loss = self._from_logits(F, pred, label, pos_weight)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _per_sample_mean(F, loss, self._batch_axis)

    @staticmethod
    def _from_logits(F, pred, label, pos_weight):
        # The log-sum-exp-safe forms: relu(x) - x*z + log(1 + exp(-|x|)), and with pos_weight
        # x - x*z + (1 + (pos_weight - 1)*z) * (log(1 + exp(-|x|)) + relu(-x)).
        if pos_weight is None:
            return F.relu(pred) - pred * label + _softrelu(F, -F.abs(pred))
        log_weight = 1 + F.broadcast_mul(pos_weight - 1, label)
        return pred - pred * label + log_weight * (_softrelu(F, -F.abs(pred)) + F.relu(-pred))

    @staticmethod
    def _from_probabilities(F, pred, label, pos_weight):
        eps = 1e-12
        positive = F.log(pred + eps) * label
        if pos_weight is not None:
            positive = F.broadcast_mul(positive, pos_weight)
        return -(positive + F.log(1.0 - pred + eps) * (1.0 - label))


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


class SoftmaxCrossEntropyLoss(Loss):
    """Cross-entropy of `softmax(pred)` along `axis` against class indices (`sparse_label=True`: the
    label is pred's shape without `axis`) or distributions (the label has pred's shape);
    `from_logits=True` takes `pred` as log-probabilities already."""

    def __init__(self, axis=-1, sparse_label=True, from_logits=False, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._axis = axis
        self._sparse_label = sparse_label
        self._from_logits = from_logits

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        if not self._from_logits:
            pred = F.log_softmax(pred, axis=self._axis)
        if self._sparse_label:
            loss = -F.pick(pred, _keepdims_index(F, label, pred, self._axis), axis=self._axis, keepdims=True)
        else:
            label = _reshape_like(F, label, pred)
            loss = -F.sum(pred * label, axis=self._axis, keepdims=True)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _per_sample_mean(F, loss, self._batch_axis)


SoftmaxCELoss = SoftmaxCrossEntropyLoss


def _keepdims_index(F, label, pred, axis):
    """The class indices shaped like `pred` with `axis` of size 1, as `pick(keepdims=True)` takes them:
    MXNet accepts the label with or without that unit axis (`(N,)` or `(N, 1)`)."""
    if F is ndarray:
        shape = list(pred.shape)
        shape[axis] = 1
        return label.reshape(tuple(shape))
    return F.reshape_like(label, F.slice_axis(pred, axis=axis, begin=0, end=1))


class KLDivLoss(Loss):
    """Kullback-Leibler divergence `label * (log(label) - pred)`, summed per sample; `pred` is
    log-probabilities (`from_logits=True`) or logits turned into them by log_softmax along `axis`."""

    def __init__(self, from_logits=True, axis=-1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._axis = axis

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        if not self._from_logits:
            pred = F.log_softmax(pred, axis=self._axis)
        loss = label * (F.log(label + 1e-12) - pred)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.sum(loss, axis=self._batch_axis, exclude=True)


class CTCLoss(Loss):
    """Connectionist Temporal Classification loss of unnormalized `pred` (layout 'NTC' or 'TNC', the last
    class is the blank) against zero-based, -1-padded labels (layout 'NT' or 'TN'), with optional
    per-sequence `pred_lengths` and `label_lengths`. Needs the registry's `CTCLoss` operator."""

    def __init__(self, layout="NTC", label_layout="NT", weight=None, **kwargs):
        check(layout in ("NTC", "TNC"), f"Only 'NTC' and 'TNC' layouts for pred are supported. Got: {layout}")
        check(label_layout in ("NT", "TN"),
              f"Only 'NT' and 'TN' layouts for label are supported. Got: {label_layout}")  # fmt: skip
        self._layout = layout
        self._label_layout = label_layout
        super().__init__(weight, label_layout.find("N"), **kwargs)

    def hybrid_forward(self, F, pred, label, pred_lengths=None, label_lengths=None, sample_weight=None):
        _require_op("CTCLoss", self.__class__.__name__)
        if self._layout == "NTC":
            pred = F.swapaxes(pred, 0, 1)
        if self._batch_axis == 1:
            label = F.swapaxes(label, 0, 1)
        loss = F.CTCLoss(
            pred, label, pred_lengths, label_lengths, use_data_lengths=pred_lengths is not None,
            use_label_lengths=label_lengths is not None, blank_label="last",
        )  # fmt: skip
        return _apply_weighting(F, loss, self._weight, sample_weight)


class HuberLoss(Loss):
    """Smoothed L1: `(label - pred)^2 / (2 rho)` where the error is within `rho`, `|error| - rho/2`
    beyond it, averaged per sample."""

    def __init__(self, rho=1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._rho = rho

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        error = F.abs(label - pred)
        loss = F.where(error > self._rho, error - 0.5 * self._rho, (0.5 / self._rho) * F.square(error))
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _per_sample_mean(F, loss, self._batch_axis)


class HingeLoss(Loss):
    """The SVM hinge `max(0, margin - pred * label)` for labels -1/1, averaged per sample."""

    def __init__(self, margin=1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        loss = F.relu(self._margin - pred * label)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _per_sample_mean(F, loss, self._batch_axis)


class SquaredHingeLoss(Loss):
    """The soft-margin SVM loss `max(0, margin - pred * label)^2` for labels -1/1, averaged per sample."""

    def __init__(self, margin=1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        loss = F.square(F.relu(self._margin - pred * label))
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _per_sample_mean(F, loss, self._batch_axis)


class LogisticLoss(Loss):
    """`log(1 + exp(-pred * label))` for labels -1/1 (`label_format='signed'`) or 0/1 ('binary'),
    averaged per sample."""

    def __init__(self, weight=None, batch_axis=0, label_format="signed", **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        if label_format not in ("signed", "binary"):
            raise InvalidValue(f"label_format can only be signed or binary, recieved {label_format}.")
        self._label_format = label_format

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        if self._label_format == "signed":
            label = (label + 1.0) / 2.0  # -1/1 to 0/1
        loss = F.relu(pred) - pred * label + _softrelu(F, -F.abs(pred))  # log-sum-exp-safe form
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _per_sample_mean(F, loss, self._batch_axis)


class TripletLoss(Loss):
    """`max(0, |positive - pred|^2 - |negative - pred|^2 + margin)`, squared distances summed per
    sample (no sample_weight, as in MXNet)."""

    def __init__(self, margin=1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, pred, positive, negative):
        positive = _reshape_like(F, positive, pred)
        negative = _reshape_like(F, negative, pred)
        gap = F.square(positive - pred) - F.square(negative - pred)
        gap = F.sum(gap, axis=self._batch_axis, exclude=True)
        return _apply_weighting(F, F.relu(gap + self._margin), self._weight)


class PoissonNLLLoss(Loss):
    """Negative log-likelihood of counts `target` under a Poisson of rate `exp(pred)`
    (`from_logits=True`) or `pred`; `compute_full` adds Stirling's approximation of log(target!) where
    target > 1. Returns the mean over all elements, shape (1,) (`batch_axis` unused, as in MXNet)."""

    def __init__(self, weight=None, from_logits=True, batch_axis=0, compute_full=False, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._compute_full = compute_full

    def hybrid_forward(self, F, pred, target, sample_weight=None, epsilon=1e-08):
        target = _reshape_like(F, target, pred)
        if self._from_logits:
            loss = F.exp(pred) - target * pred
        else:
            loss = pred - target * F.log(pred + epsilon)
        if self._compute_full:
            # As MXNet: a zero target makes 0 * log(0) NaN, which the mask does not remove.
            stirling = target * F.log(target) - target + 0.5 * F.log(2 * target * np.pi)
            loss = loss + stirling * (target > 1)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.mean(loss)


class CosineEmbeddingLoss(Loss):
    """For label 1: `1 - cos_sim(input1, input2)`; for label -1: `max(0, cos_sim - margin)`, the cosine
    taken along the last axis. Returns shape (batch_size, 1), as MXNet does."""

    def __init__(self, weight=None, batch_axis=0, margin=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, input1, input2, label, sample_weight=None):
        input1 = _reshape_like(F, input1, input2)
        label = label.reshape((-1, 1))
        cos_sim = self._cosine_similarity(F, input1, input2)
        similar = (1 - cos_sim) * (label == 1)
        dissimilar = F.relu((label == -1) * (cos_sim - self._margin))
        return _apply_weighting(F, similar + dissimilar, self._weight, sample_weight)

    @staticmethod
    def _cosine_similarity(F, x, y, axis=-1):
        """x.y / max(|x| |y|, 1e-12) along `axis`, one column per sample."""
        x_norm = F.norm(x, axis=axis).reshape((-1, 1))
        y_norm = F.norm(y, axis=axis).reshape((-1, 1))
        x_dot_y = F.sum(x * y, axis=axis).reshape((-1, 1))
        return x_dot_y / F.maximum(x_norm * y_norm, 1e-12)


class SDMLLoss(Loss):
    """Batchwise Smoothed Deep Metric Learning loss of aligned mini-batches `x1`, `x2` (batch, dim):
    KL divergence between softmax(-squared distances) of every pair and the identity smoothed by
    `smoothing_parameter`. It needs the batch size, so it always computes on NDArrays (MXNet 1.9.1
    cannot hybridize it either); `weight` is accepted and unused, as in MXNet."""

    def __init__(self, smoothing_parameter=0.3, weight=1.0, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self.kl_loss = KLDivLoss(from_logits=True)
        self.smoothing_parameter = smoothing_parameter

    def forward(self, x, *args):
        """The loss of NDArrays `x` (x1) and `args[0]` (x2), computed imperatively even when hybridized."""
        if isinstance(x, Symbol) or any(isinstance(a, Symbol) for a in args):
            raise InvalidValue("SDMLLoss needs the batch size to build its smoothed identity labels, which "
                               "a Symbol does not carry: call it on NDArrays")  # fmt: skip
        return self.hybrid_forward(ndarray, x, *args)

    def hybrid_forward(self, F, x1, x2):
        shapes = f"{x1.shape} and {x2.shape}"
        check(x1.shape == x2.shape and len(x1.shape) == 2,
              f"SDMLLoss takes two (batch, dim) inputs of one shape, got {shapes}")  # fmt: skip
        batch_size = x1.shape[0]
        log_probabilities = F.log_softmax(-self._distances(x1, x2), axis=1)
        return self.kl_loss(log_probabilities, self._labels(F, batch_size, x1.context))

    @staticmethod
    def _distances(x1, x2):
        """Squared euclidean distance between every row of x1 and every row of x2: (batch, batch)."""
        batch_size, dim = x1.shape
        rows = x1.expand_dims(1).broadcast_to((batch_size, batch_size, dim))
        cols = x2.expand_dims(0).broadcast_to((batch_size, batch_size, dim))
        return ((rows - cols) ** 2).sum(axis=2)

    def _labels(self, F, batch_size, ctx):
        """The identity, smoothed: 1 - s on the diagonal, s / (batch_size - 1) elsewhere."""
        gold = F.eye(batch_size, ctx=ctx)
        off_diagonal = (1 - gold) * self.smoothing_parameter / (batch_size - 1)
        return gold * (1 - self.smoothing_parameter) + off_diagonal


__all__ = [
    "CTCLoss", "CosineEmbeddingLoss", "HingeLoss", "HuberLoss", "KLDivLoss", "L1Loss", "L2Loss",
    "LogisticLoss", "Loss", "PoissonNLLLoss", "SDMLLoss", "SigmoidBCELoss", "SigmoidBinaryCrossEntropyLoss",
    "SoftmaxCELoss", "SoftmaxCrossEntropyLoss", "SquaredHingeLoss", "TripletLoss",
]  # fmt: skip

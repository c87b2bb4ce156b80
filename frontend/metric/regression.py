"""Regression metrics: MAE, MSE, RMSE and PearsonCorrelation.

MAE, MSE and RMSE add one batch mean per label/prediction pair and count one instance, so the
reported value is the mean of batch means, as in MXNet. A 1-D label or prediction counts as `(N, 1)`.
"""

from __future__ import annotations

import numpy

from .base import EvalMetric, alias, as_numpy, check_label_shapes, register


def _columns(array) -> numpy.ndarray:
    array = as_numpy(array)
    return array.reshape(array.shape[0], 1) if array.ndim == 1 else array


class _BatchMeanMetric(EvalMetric):
    """Adds `batch_value(label, pred)` once per pair and counts one instance."""

    def __init__(self, name, output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names, has_global_stats=True)

    @staticmethod
    def batch_value(label: numpy.ndarray, pred: numpy.ndarray) -> float:
        raise NotImplementedError()

    def update(self, labels, preds) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            value = float(self.batch_value(_columns(label), _columns(pred)))
            self.sum_metric += value
            self.global_sum_metric += value
            self.num_inst += 1
            self.global_num_inst += 1


@register
class MAE(_BatchMeanMetric):
    """Mean absolute error."""

    def __init__(self, name="mae", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

    @staticmethod
    def batch_value(label, pred) -> float:
        return numpy.abs(label - pred).mean()


@register
class MSE(_BatchMeanMetric):
    """Mean squared error."""

    def __init__(self, name="mse", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

    @staticmethod
    def batch_value(label, pred) -> float:
        return ((label - pred) ** 2.0).mean()


@register
class RMSE(_BatchMeanMetric):
    """Root mean squared error (of each batch, then averaged over batches)."""

    def __init__(self, name="rmse", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)

    @staticmethod
    def batch_value(label, pred) -> float:
        return numpy.sqrt(((label - pred) ** 2.0).mean())


class _Moments:
    """Count, means and centred second moments of (label, pred) pairs, merged batch by batch."""

    def __init__(self):
        self.n = 0
        self.mean_l = self.mean_p = 0.0
        self.m2_l = self.m2_p = self.c_lp = 0.0

    def add(self, label: numpy.ndarray, pred: numpy.ndarray) -> None:
        # Chan et al.'s pairwise merge keeps the sums centred, so long runs lose no precision.
        n_b = label.size
        mean_l, mean_p = label.mean(), pred.mean()
        d_l, d_p = mean_l - self.mean_l, mean_p - self.mean_p
        n = self.n + n_b
        self.m2_l += ((label - mean_l) ** 2).sum() + d_l * d_l * self.n * n_b / n
        self.m2_p += ((pred - mean_p) ** 2).sum() + d_p * d_p * self.n * n_b / n
        self.c_lp += ((label - mean_l) * (pred - mean_p)).sum() + d_l * d_p * self.n * n_b / n
        self.mean_l += d_l * n_b / n
        self.mean_p += d_p * n_b / n
        self.n = n

    def pearson(self) -> float:
        return float(self.c_lp / numpy.sqrt(self.m2_l * self.m2_p))


@register
@alias("pearsonr")
class PearsonCorrelation(EvalMetric):
    """Pearson correlation of flattened labels and predictions.

    'macro' averages the correlation of each pair; 'micro' computes one correlation over all values.
    """

    def __init__(self, name="pearsonr", output_names=None, label_names=None, average="macro"):
        if average not in ("macro", "micro"):
            raise ValueError(f"average must be 'macro' or 'micro', got {average!r}")
        self.average = average
        super().__init__(name, output_names=output_names, label_names=label_names, has_global_stats=True)

    def reset(self) -> None:
        super().reset()
        self._local, self._global = _Moments(), _Moments()

    def reset_local(self) -> None:
        super().reset_local()
        self._local = _Moments()

    def update(self, labels, preds) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            check_label_shapes(label, pred, False, True)
            label = as_numpy(label).ravel().astype(numpy.float64)
            pred = as_numpy(pred).ravel().astype(numpy.float64)
            self.num_inst += 1
            self.global_num_inst += 1
            if self.average == "macro":
                value = float(numpy.corrcoef(pred, label)[0, 1])
                self.sum_metric += value
                self.global_sum_metric += value
            else:
                self._local.add(label, pred)
                self._global.add(label, pred)

    def get(self) -> tuple:
        if self.average == "micro" and self.num_inst:
            return (self.name, self._local.pearson())
        return super().get()

    def get_global(self) -> tuple:
        if self.average == "micro" and self.global_num_inst:
            return (self.name, self._global.pearson())
        return super().get_global()

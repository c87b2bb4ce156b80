"""Classification metrics: Accuracy, TopKAccuracy, and the binary F1 and MCC, plus multi-class PCC.

Predictions are class scores `(N, C)` (the class is their argmax) or, where their shape equals the
labels', class indices. F1 and MCC keep true/false positive/negative counts per batch ('macro':
mean of per-batch scores) or pooled over batches ('micro').
"""

from __future__ import annotations

import math

import numpy

from .base import EvalMetric, alias, as_numpy, check_label_shapes, register


@register
@alias("acc")
class Accuracy(EvalMetric):
    """The fraction of predictions equal to their labels; scores are reduced by argmax over `axis`."""

    def __init__(self, axis=1, name="accuracy", output_names=None, label_names=None):
        super().__init__(
            name, axis=axis, output_names=output_names, label_names=label_names, has_global_stats=True
        )
        self.axis = axis

    def update(self, labels, preds) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label, pred = as_numpy(label), as_numpy(pred)
            if pred.shape != label.shape:
                pred = numpy.argmax(pred, axis=self.axis)
            label = label.astype("int32").ravel()
            pred = pred.astype("int32").ravel()
            check_label_shapes(label, pred)
            correct = int((pred == label).sum())
            self.sum_metric += correct
            self.global_sum_metric += correct
            self.num_inst += pred.size
            self.global_num_inst += pred.size


@register
@alias("top_k_accuracy", "top_k_acc")
class TopKAccuracy(EvalMetric):
    """The fraction of labels among the `top_k` highest scores of their prediction row."""

    def __init__(self, top_k=1, name="top_k_accuracy", output_names=None, label_names=None):
        super().__init__(
            name, top_k=top_k, output_names=output_names, label_names=label_names, has_global_stats=True
        )
        self.top_k = top_k
        if self.top_k <= 1:
            raise ValueError("Please use Accuracy if top_k is no more than 1")
        self.name += f"_{self.top_k}"

    def update(self, labels, preds) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            pred = as_numpy(pred).astype("float32")
            label = as_numpy(label).astype("int32").ravel()
            if pred.ndim > 2:
                raise ValueError(f"Predictions should be no more than 2 dims, got shape {pred.shape}")
            check_label_shapes(label, pred)
            if pred.ndim == 1:
                # One value per sample: already a class index.
                hits = int((pred.astype("int32") == label).sum())
            else:
                k = min(self.top_k, pred.shape[1])
                top = numpy.argsort(pred, axis=1)[:, pred.shape[1] - k :]
                hits = int((top == label[:, None]).any(axis=1).sum())
            self.sum_metric += hits
            self.global_sum_metric += hits
            self.num_inst += pred.shape[0]
            self.global_num_inst += pred.shape[0]


class _BinaryCounts:
    """True/false positive/negative counts, local and global, of binary predictions."""

    FIELDS = ("tp", "fp", "fn", "tn")

    def __init__(self):
        self.local = dict.fromkeys(self.FIELDS, 0)
        self.total = dict.fromkeys(self.FIELDS, 0)

    def update(self, metric_name: str, label, pred) -> None:
        pred = as_numpy(pred)
        label = as_numpy(label).astype("int32")
        check_label_shapes(label, pred)
        pred_label = pred.astype("int32") if pred.ndim == 1 else numpy.argmax(pred, axis=1)
        if len(numpy.unique(label)) > 2:
            raise ValueError(f"{metric_name} currently only supports binary classification.")
        pred_true, label_true = pred_label.ravel() == 1, label.ravel() == 1
        counts = {
            "tp": int((pred_true & label_true).sum()),
            "fp": int((pred_true & ~label_true).sum()),
            "fn": int((~pred_true & label_true).sum()),
            "tn": int((~pred_true & ~label_true).sum()),
        }
        for key, value in counts.items():
            self.local[key] += value
            self.total[key] += value

    def reset_local(self) -> None:
        self.local = dict.fromkeys(self.FIELDS, 0)

    def reset(self) -> None:
        self.local = dict.fromkeys(self.FIELDS, 0)
        self.total = dict.fromkeys(self.FIELDS, 0)

    @staticmethod
    def examples(c: dict) -> int:
        return c["tp"] + c["fp"] + c["fn"] + c["tn"]

    @staticmethod
    def fscore(c: dict) -> float:
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] > 0 else 0.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] > 0 else 0.0
        return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0

    @staticmethod
    def matthewscc(c: dict) -> float:
        if not _BinaryCounts.examples(c):
            return 0.0
        tp, fp, fn, tn = (float(c[k]) for k in _BinaryCounts.FIELDS)
        # Zero marginals are left out of the denominator, as MXNet does, so the score stays finite.
        denominator = math.prod(t for t in (tp + fp, tp + fn, tn + fp, tn + fn) if t != 0)
        return (tp * tn - fp * fn) / math.sqrt(denominator)


class _BinaryMetric(EvalMetric):
    """A score of the binary counts: averaged per update ('macro') or over pooled counts ('micro')."""

    def __init__(self, name, output_names=None, label_names=None, average="macro"):
        if average not in ("macro", "micro"):
            raise ValueError(f"average must be 'macro' or 'micro', got {average!r}")
        self.average = average
        self.counts = _BinaryCounts()
        super().__init__(name, output_names=output_names, label_names=label_names, has_global_stats=True)

    def score(self, counts: dict) -> float:
        raise NotImplementedError()

    def update(self, labels, preds) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            self.counts.update(type(self).__name__, label, pred)
        local, total = self.counts.local, self.counts.total
        if self.average == "macro":
            self.sum_metric += self.score(local)
            self.global_sum_metric += self.score(total)
            self.num_inst += 1
            self.global_num_inst += 1
            self.counts.reset()
        else:
            self.num_inst = _BinaryCounts.examples(local)
            self.global_num_inst = _BinaryCounts.examples(total)
            self.sum_metric = self.score(local) * self.num_inst
            self.global_sum_metric = self.score(total) * self.global_num_inst

    def reset(self) -> None:
        super().reset()
        self.counts.reset()

    def reset_local(self) -> None:
        super().reset_local()
        self.counts.reset_local()


@register
class F1(_BinaryMetric):
    """F1 score of binary predictions (class 1 is positive); 0 where precision and recall are 0/0."""

    def __init__(self, name="f1", output_names=None, label_names=None, average="macro"):
        super().__init__(name, output_names, label_names, average)

    def score(self, counts: dict) -> float:
        return _BinaryCounts.fscore(counts)


@register
class MCC(_BinaryMetric):
    """Matthews correlation coefficient of binary predictions."""

    def __init__(self, name="mcc", output_names=None, label_names=None, average="macro"):
        super().__init__(name, output_names, label_names, average)

    def score(self, counts: dict) -> float:
        return _BinaryCounts.matthewscc(counts)


@register
class PCC(EvalMetric):
    """Multi-class Matthews correlation (Pearson correlation of the confusion matrix).

    The confusion matrix grows with the largest class seen; each update counts as one instance.
    """

    def __init__(self, name="pcc", output_names=None, label_names=None):
        self.k = 2
        super().__init__(name, output_names=output_names, label_names=label_names, has_global_stats=True)

    @staticmethod
    def _mcc(confusion: numpy.ndarray) -> float:
        n = confusion.sum()
        x, y = confusion.sum(axis=1), confusion.sum(axis=0)
        cov_xx, cov_yy = numpy.sum(x * (n - x)), numpy.sum(y * (n - y))
        if cov_xx == 0 or cov_yy == 0:
            return float("nan")
        cov_xy = numpy.sum(confusion.diagonal() * n - x * y)
        return float(cov_xy / (cov_xx * cov_yy) ** 0.5)

    def _grow(self, k: int) -> None:
        pad = ((0, k - self.k), (0, k - self.k))
        self.lcm, self.gcm = numpy.pad(self.lcm, pad), numpy.pad(self.gcm, pad)
        self.k = k

    def update(self, labels, preds) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label, pred = as_numpy(label).astype("int32").ravel(), as_numpy(pred)
            pred = numpy.argmax(pred, axis=1) if pred.shape != label.shape else pred.astype("int32").ravel()
            largest = int(max(pred.max(), label.max()))
            if largest >= self.k:
                self._grow(largest + 1)
            batch = numpy.zeros((self.k, self.k))
            numpy.add.at(batch, (pred, label), 1)
            self.lcm += batch
            self.gcm += batch
        self.num_inst += 1
        self.global_num_inst += 1
        self.sum_metric = self._mcc(self.lcm) * self.num_inst
        self.global_sum_metric = self._mcc(self.gcm) * self.global_num_inst

    def reset(self) -> None:
        super().reset()
        self.gcm = numpy.zeros((self.k, self.k))
        self.lcm = numpy.zeros((self.k, self.k))

    def reset_local(self) -> None:
        super().reset_local()
        self.lcm = numpy.zeros((self.k, self.k))

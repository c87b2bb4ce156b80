"""The metric protocol: `EvalMetric`, the registry and `create`, and the metrics built from others.

A metric accumulates `sum_metric / num_inst` twice: locally (cleared by `reset_local`, e.g. by
Speedometer after each log line) and globally (cleared only by `reset`, read by `get_global` for the
epoch line). Values come back as Python floats so that `print(metric)` reads as MXNet's does.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy

from ..ndarray.ndarray import NDArray
from .registry import Registry, construct


def check_label_shapes(labels, preds, wrap: bool = False, shape: bool = False):
    """Raise ValueError unless labels and preds agree in length (or in shape when `shape`).

    With `wrap`, a single array on either side is wrapped in a list; returns (labels, preds).
    """
    if shape:
        label_shape, pred_shape = labels.shape, preds.shape
    else:
        label_shape, pred_shape = len(labels), len(preds)
    if label_shape != pred_shape:
        raise ValueError(f"Shape of labels {label_shape} does not match shape of predictions {pred_shape}")
    if wrap:
        if isinstance(labels, (NDArray, numpy.ndarray)):
            labels = [labels]
        if isinstance(preds, (NDArray, numpy.ndarray)):
            preds = [preds]
    return labels, preds


def as_numpy(array) -> numpy.ndarray:
    """The NumPy array behind an NDArray (anything else goes through `numpy.asarray`)."""
    return array.asnumpy() if isinstance(array, NDArray) else numpy.asarray(array)


def _as_python(value):
    """NumPy scalars as Python numbers, so that printed values read `0.5`, never `np.float64(0.5)`."""
    return value.item() if isinstance(value, numpy.generic) else value


def _ratio(total, count) -> float:
    return float("nan") if count == 0 else float(total / count)


def _name_value_pairs(name, value) -> list[tuple]:
    names = name if isinstance(name, list) else [name]
    values = value if isinstance(value, list) else [value]
    return list(zip(names, [_as_python(v) for v in values]))


class EvalMetric:
    """Base class of all evaluation metrics: subclasses implement `update(labels, preds)`.

    `output_names` / `label_names` choose, by name, which predictions and labels `update_dict`
    passes on (all, in order, when None). Keyword arguments are kept for `get_config`;
    `has_global_stats=True` declares that `update` also maintains the global counters.
    """

    def __init__(self, name, output_names=None, label_names=None, **kwargs):
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._has_global_stats = kwargs.pop("has_global_stats", False)
        self._kwargs = kwargs
        self.reset()

    def __str__(self) -> str:
        return f"EvalMetric: {dict(self.get_name_value())}"

    def get_config(self) -> dict:
        """The arguments that recreate this metric through `mx.metric.create(**config)`."""
        config = self._kwargs.copy()
        config.update(
            {
                "metric": self.__class__.__name__,
                "name": self.name,
                "output_names": self.output_names,
                "label_names": self.label_names,
            }
        )
        return config

    def update_dict(self, label: dict, pred: dict) -> None:
        """Update with name -> array mappings, selected by `label_names` / `output_names` when set."""
        preds = [pred[n] for n in self.output_names] if self.output_names is not None else list(pred.values())
        labels = (
            [label[n] for n in self.label_names] if self.label_names is not None else list(label.values())
        )
        self.update(labels, preds)

    def update(self, labels, preds) -> None:
        """Accumulate one batch: `labels` and `preds` are lists of NDArrays (or single NDArrays)."""
        raise NotImplementedError()

    def reset(self) -> None:
        """Clear the local and the global statistics."""
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0

    def reset_local(self) -> None:
        """Clear the local statistics only; the global ones keep accumulating."""
        self.num_inst = 0
        self.sum_metric = 0.0

    def get(self) -> tuple:
        """(name, value) of the local statistics; value is nan before any update."""
        return (self.name, _ratio(self.sum_metric, self.num_inst))

    def get_global(self) -> tuple:
        """(name, value) of the global statistics (the local ones for metrics without global stats)."""
        if not self._has_global_stats:
            return self.get()
        return (self.name, _ratio(self.global_sum_metric, self.global_num_inst))

    def get_name_value(self) -> list[tuple]:
        """[(name, value), ...] of the local statistics."""
        return _name_value_pairs(*self.get())

    def get_global_name_value(self) -> list[tuple]:
        """[(name, value), ...] of the global statistics."""
        if not self._has_global_stats:
            return self.get_name_value()
        return _name_value_pairs(*self.get_global())


_registry = Registry(EvalMetric, "metric")
register = _registry.register
alias = _registry.alias


def create(metric, *args, **kwargs) -> EvalMetric:
    """A metric from a name ('acc', 'ce', ...), an EvalMetric, a list of those, or a function.

    A callable becomes a `CustomMetric`, a list a `CompositeEvalMetric` of its items, an instance is
    returned as is; `args` and `kwargs` go to the constructor (to each item's, for a list).
    """
    if callable(metric):
        return construct(CustomMetric, (metric, *args), kwargs, "a custom metric")
    if isinstance(metric, list):
        composite = CompositeEvalMetric()
        for child in metric:
            composite.add(create(child, *args, **kwargs))
        return composite
    return _registry.create(metric, *args, **kwargs)


@register
@alias("composite")
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; `get()` returns ([names], [values])."""

    def __init__(self, metrics=None, name="composite", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names, has_global_stats=True)
        self.metrics = [create(m) for m in (metrics or [])]

    def add(self, metric) -> None:
        """Add a child metric (anything `create` accepts)."""
        self.metrics.append(create(metric))

    def get_metric(self, index: int) -> EvalMetric:
        """The child metric at `index`."""
        if not -len(self.metrics) <= index < len(self.metrics):
            raise ValueError(f"Metric index {index} is out of range 0 and {len(self.metrics)}")
        return self.metrics[index]

    def update_dict(self, labels: dict, preds: dict) -> None:
        if self.label_names is not None:
            labels = OrderedDict((k, v) for k, v in labels.items() if k in self.label_names)
        if self.output_names is not None:
            preds = OrderedDict((k, v) for k, v in preds.items() if k in self.output_names)
        for metric in self.metrics:
            metric.update_dict(labels, preds)

    def update(self, labels, preds) -> None:
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self) -> None:
        # EvalMetric.__init__ resets before the children exist.
        for metric in getattr(self, "metrics", []):
            metric.reset()

    def reset_local(self) -> None:
        for metric in self.metrics:
            metric.reset_local()

    def _collect(self, getter: str) -> tuple[list, list]:
        names, values = [], []
        for metric in self.metrics:
            name, value = getattr(metric, getter)()
            names.extend(name if isinstance(name, list) else [name])
            values.extend(value if isinstance(value, list) else [value])
        return names, values

    def get(self) -> tuple[list, list]:
        return self._collect("get")

    def get_global(self) -> tuple[list, list]:
        return self._collect("get_global")

    def get_config(self) -> dict:
        config = super().get_config()
        config["metrics"] = [m.get_config() for m in self.metrics]
        return config


@register
class CustomMetric(EvalMetric):
    """A metric from `feval(label, pred)` on NumPy arrays, returning a value or (sum, count).

    A plain value counts as one instance, so the metric reports the mean over calls. The default
    name is the function's name, `custom(<lambda>)` for lambdas.
    """

    def __init__(self, feval, name=None, allow_extra_outputs=False, output_names=None, label_names=None):
        if name is None:
            name = feval.__name__
            if "<" in name:
                name = f"custom({name})"
        super().__init__(
            name,
            feval=feval,
            allow_extra_outputs=allow_extra_outputs,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels, preds) -> None:
        if not self._allow_extra_outputs:
            labels, preds = check_label_shapes(labels, preds, True)
        for pred, label in zip(preds, labels):
            result = self._feval(as_numpy(label), as_numpy(pred))
            total, count = result if isinstance(result, tuple) else (result, 1)
            total = _as_python(total)
            self.sum_metric += total
            self.global_sum_metric += total
            self.num_inst += count
            self.global_num_inst += count

    def get_config(self):
        raise NotImplementedError("CustomMetric cannot be serialized")


def np(numpy_feval, name=None, allow_extra_outputs=False) -> CustomMetric:
    """A `CustomMetric` from a function of NumPy arrays `(label, pred)`; its name by default."""

    def feval(label, pred):
        return numpy_feval(label, pred)

    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval, name, allow_extra_outputs)

"""`mx.metric` against hand-computed values, MXNet's printed format, and its registry rules."""

from __future__ import annotations

import math
from collections import OrderedDict

import ember as mx
import numpy as np
import pytest
from ember import metric

# MXNet's docstring example: argmax predictions are [1, 1, 1], so 2 of 3 are right.
PROBS = [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]]
LABELS = [0, 1, 1]


def nd(values):
    return mx.nd.array(values)


def updated(m, labels=LABELS, preds=PROBS):
    m.update([nd(labels)], [nd(preds)])
    return m


# -- EvalMetric base: values, printing, local and global statistics ------------------------------


def test_fresh_metric_is_nan_and_prints_like_mxnet():
    acc = metric.Accuracy()
    assert math.isnan(acc.get()[1])
    assert str(acc) == "EvalMetric: {'accuracy': nan}"


def test_accuracy_value_and_str_use_python_float_repr():
    acc = updated(metric.Accuracy())
    name, value = acc.get()
    assert (name, value) == ("accuracy", 2 / 3)
    assert type(value) is float
    assert str(acc) == "EvalMetric: {'accuracy': 0.6666666666666666}"
    assert acc.get_name_value() == [("accuracy", 0.6666666666666666)]


def test_accuracy_index_predictions_are_compared_directly():
    acc = metric.Accuracy()
    acc.update([nd([0, 1, 2, 2])], [nd([0, 1, 1, 2])])  # same shape as labels: class indices
    assert acc.get() == ("accuracy", 0.75)


def test_accuracy_axis_picks_the_class_axis():
    acc = metric.Accuracy(axis=0)
    acc.update([nd([1, 0])], [nd([[0.1, 0.9], [0.8, 0.2]])])  # argmax over axis 0: [1, 0]
    assert acc.get()[1] == 1.0


def test_accuracy_accepts_single_arrays_and_counts_instances():
    acc = metric.Accuracy()
    acc.update(nd(LABELS), nd(PROBS))
    assert (acc.sum_metric, acc.num_inst) == (2, 3)


def test_label_and_prediction_lists_of_different_length_raise_mxnets_error():
    with pytest.raises(ValueError, match="^Shape of labels 1 does not match shape of predictions 2$"):
        metric.Accuracy().update([nd(LABELS)], [nd(PROBS), nd(PROBS)])


def test_reset_local_keeps_global_statistics():
    acc = updated(metric.Accuracy())  # 2 of 3
    acc.reset_local()
    assert math.isnan(acc.get()[1])
    acc.update([nd([1])], [nd([[0.2, 0.8]])])  # 1 of 1
    assert acc.get() == ("accuracy", 1.0)
    assert acc.get_global() == ("accuracy", 0.75)
    assert acc.get_global_name_value() == [("accuracy", 0.75)]
    acc.reset()
    assert math.isnan(acc.get_global()[1])


def test_metric_without_global_stats_reports_local_values_as_global():
    class Count(metric.EvalMetric):
        def update(self, labels, preds):
            self.sum_metric += 3
            self.num_inst += 4

    m = Count("count")
    m.update([], [])
    assert m.get_global() == ("count", 0.75)
    assert m.get_global_name_value() == [("count", 0.75)]


def test_numpy_values_of_user_metrics_print_as_python_floats():
    class Half(metric.EvalMetric):
        def update(self, labels, preds):
            pass

        def get(self):
            return (self.name, np.float64(0.5))

    assert str(Half("half")) == "EvalMetric: {'half': 0.5}"


def test_update_dict_selects_by_names():
    acc = metric.Accuracy(output_names=["softmax_output"], label_names=["softmax_label"])
    labels = OrderedDict([("other_label", nd([0, 0, 0])), ("softmax_label", nd(LABELS))])
    preds = OrderedDict([("softmax_output", nd(PROBS)), ("extra_output", nd([[1.0, 0.0]] * 3))])
    acc.update_dict(labels, preds)
    assert acc.get()[1] == 2 / 3


def test_update_dict_without_names_uses_all_values_in_order():
    acc = metric.Accuracy()
    acc.update_dict({"softmax_label": nd(LABELS)}, {"softmax_output": nd(PROBS)})
    assert acc.get()[1] == 2 / 3


def test_get_config_recreates_the_metric():
    config = metric.Accuracy(axis=0, name="acc0").get_config()
    assert config == {
        "axis": 0,
        "metric": "Accuracy",
        "name": "acc0",
        "output_names": None,
        "label_names": None,
    }
    again = metric.create(**config)
    assert isinstance(again, metric.Accuracy) and (again.axis, again.name) == (0, "acc0")


# -- Concrete metrics --------------------------------------------------------------------------


def test_top_k_accuracy_counts_labels_among_the_k_best():
    topk = metric.TopKAccuracy(top_k=2)
    assert topk.name == "top_k_accuracy_2"
    # top-2 sets: {1, 2}, {0, 1}, {2, 1}; labels 2 and 1 are in theirs, 0 is not.
    topk.update([nd([2, 1, 0])], [nd([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])])
    assert topk.get()[1] == 2 / 3


def test_top_k_accuracy_needs_k_above_one():
    with pytest.raises(ValueError, match="Please use Accuracy if top_k is no more than 1"):
        metric.TopKAccuracy(top_k=1)


def test_f1_binary_macro_and_micro():
    batch2 = ([1, 0], [[0.9, 0.1], [0.2, 0.8]])  # predicted [0, 1]: tp 0, fp 1, fn 1 -> F1 0
    macro = updated(metric.F1())
    assert macro.get() == ("f1", pytest.approx(0.8))  # tp 2, fp 1, fn 0
    updated(macro, *batch2)
    assert macro.get()[1] == pytest.approx(0.4)  # mean of 0.8 and 0
    micro = updated(metric.F1(average="micro"))
    updated(micro, *batch2)
    assert micro.get()[1] == pytest.approx(4 / 7)  # pooled: tp 2, fp 2, fn 1 -> p 1/2, r 2/3


def test_f1_rejects_more_than_two_classes():
    with pytest.raises(ValueError, match="F1 currently only supports binary classification"):
        metric.F1().update([nd([0, 1, 2])], [nd(PROBS)])


def test_mcc_binary():
    mcc = metric.MCC()
    mcc.update([nd([0, 1, 1, 0])], [nd([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])])
    # tp 1, fp 0, fn 1, tn 2: (1*2 - 0) / sqrt(1 * 2 * 2 * 3)
    assert mcc.get() == ("mcc", pytest.approx(2 / math.sqrt(12)))


def test_pcc_of_perfect_multiclass_predictions_is_one():
    pcc = metric.PCC()
    pcc.update([nd([0, 1, 2, 3])], [nd(np.eye(4))])
    assert pcc.get() == ("pcc", pytest.approx(1.0))


def test_regression_metrics_average_batch_means():
    batches = [([1.0, 2.0, 3.0], [1.5, 2.0, 2.0]), ([0.0], [2.0])]  # errors [0.5, 0, -1], then [2]
    expected = {
        "mae": (0.5 + 2.0) / 2,
        "mse": (1.25 / 3 + 4.0) / 2,
        "rmse": (math.sqrt(1.25 / 3) + 2.0) / 2,
    }
    for name, value in expected.items():
        m = metric.create(name)
        for labels, preds in batches:
            m.update([nd(labels)], [nd(preds)])
        assert m.get() == (name, pytest.approx(value)), name
        assert m.num_inst == 2


def test_mse_treats_one_dimensional_labels_as_a_column():
    mse = metric.MSE()
    mse.update([nd([1.0, 2.0])], [nd([[1.0], [4.0]])])
    assert mse.get()[1] == 2.0  # (0 + 4) / 2, not a broadcast (2, 2) difference


def test_cross_entropy_and_nll_are_mean_negative_log_probabilities():
    probs = np.array(PROBS, dtype=np.float32)
    expected = -np.mean(np.log(probs[[0, 1, 2], LABELS].astype(np.float64) + 1e-12))
    ce = updated(metric.CrossEntropy())
    nll = updated(metric.NegativeLogLikelihood())
    assert ce.get() == ("cross-entropy", pytest.approx(expected, rel=1e-6))
    assert nll.get() == ("nll-loss", pytest.approx(expected, rel=1e-6))
    assert ce.num_inst == 3


def test_perplexity_with_and_without_ignore_label():
    labels, preds = [0, 1], [[0.5, 0.5], [0.25, 0.75]]
    plain = updated(metric.Perplexity(ignore_label=None), labels, preds)
    assert plain.get() == ("perplexity", pytest.approx(math.exp(-(math.log(0.5) + math.log(0.75)) / 2)))
    ignoring = updated(metric.Perplexity(ignore_label=0), labels, preds)
    assert ignoring.get()[1] == pytest.approx(1 / 0.75)


def test_pearson_correlation_macro_and_micro():
    batches = [([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]), ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])]
    macro = metric.PearsonCorrelation()
    micro = metric.PearsonCorrelation(average="micro")
    for labels, preds in batches:
        macro.update([nd(labels)], [nd(preds)])
        micro.update([nd(labels)], [nd(preds)])
    assert macro.get() == ("pearsonr", pytest.approx(0.0))  # mean of 1 and -1
    all_labels = np.concatenate([b[0] for b in batches])
    all_preds = np.concatenate([b[1] for b in batches])
    assert micro.get()[1] == pytest.approx(np.corrcoef(all_preds, all_labels)[0, 1])
    assert micro.get_global()[1] == pytest.approx(micro.get()[1])


def test_loss_is_the_mean_prediction():
    loss = metric.Loss()
    loss.update(None, [nd([1.0, 2.0]), nd([[3.0, 4.0]])])
    assert loss.get() == ("loss", 2.5)
    assert metric.create("torch").name == "torch" and metric.create("caffe").name == "caffe"


# -- Composite and custom metrics ----------------------------------------------------------------


def test_composite_metric_gets_lists_and_prints_every_value():
    comp = updated(metric.create(["acc", "ce"]))
    names, values = comp.get()
    assert names == ["accuracy", "cross-entropy"]
    assert values[0] == 2 / 3
    assert str(comp) == f"EvalMetric: {{'accuracy': 0.6666666666666666, 'cross-entropy': {values[1]!r}}}"
    assert comp.get_name_value() == list(zip(names, values))


def test_composite_reset_local_and_global():
    comp = metric.CompositeEvalMetric([metric.Accuracy(), "mse"])
    updated(comp)
    comp.reset_local()
    comp.update([nd([1])], [nd([[0.2, 0.8]])])
    assert comp.get_global()[1][0] == 0.75
    assert comp.get()[1][0] == 1.0
    assert comp.get_metric(0).name == "accuracy"
    with pytest.raises(ValueError, match="out of range"):
        comp.get_metric(5)


def test_custom_metric_names_and_averaging():
    def mean_abs(label, pred):
        return float(np.abs(label - pred).mean())

    m = metric.CustomMetric(mean_abs)
    assert m.name == "mean_abs"
    m.update([nd([1.0, 2.0])], [nd([2.0, 2.0])])  # 0.5
    m.update([nd([0.0])], [nd([1.5])])  # 1.5
    assert m.get() == ("mean_abs", 1.0)
    assert metric.create(lambda label, pred: 0.0).name == "custom(<lambda>)"


def test_custom_metric_sum_and_count_tuple():
    m = metric.np(lambda label, pred: ((label == pred).sum(), label.size), name="hits")
    m.update([nd([1, 2, 3])], [nd([1, 0, 3])])
    assert m.get() == ("hits", 2 / 3)
    assert type(m.get()[1]) is float


def test_np_wrapper_keeps_the_function_name():
    def my_metric(label, pred):
        return 0.25

    m = metric.np(my_metric)
    assert isinstance(m, metric.CustomMetric) and m.name == "my_metric"
    updated(m)
    assert str(m) == "EvalMetric: {'my_metric': 0.25}"


# -- create and the registry ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("acc", metric.Accuracy),
        ("Accuracy", metric.Accuracy),
        ("ce", metric.CrossEntropy),
        ("f1", metric.F1),
        ("mse", metric.MSE),
        ("rmse", metric.RMSE),
        ("mae", metric.MAE),
        ("loss", metric.Loss),
        ("nll_loss", metric.NegativeLogLikelihood),
        ("pearsonr", metric.PearsonCorrelation),
        ("mcc", metric.MCC),
        ("pcc", metric.PCC),
        ("composite", metric.CompositeEvalMetric),
    ],
)
def test_create_by_name_is_case_insensitive(name, cls):
    assert type(metric.create(name)) is cls


def test_create_passes_arguments_and_returns_instances_as_is():
    assert metric.create("top_k_accuracy", top_k=3).name == "top_k_accuracy_3"
    acc = metric.Accuracy()
    assert metric.create(acc) is acc
    assert isinstance(metric.create(np.mean), metric.CustomMetric)
    assert metric.create("perplexity", ignore_label=None).name == "perplexity"


def test_create_unknown_name_says_what_is_registered():
    with pytest.raises(
        ValueError, match=r"^nosuch is not registered\. Please register with metric\.register first"
    ) as e:
        metric.create("nosuch")
    assert "accuracy" in str(e.value)


def test_register_and_alias_a_user_metric():
    @metric.register
    @metric.alias("always_one")
    class AlwaysOne(metric.EvalMetric):
        def __init__(self):
            super().__init__("always_one")

        def update(self, labels, preds):
            self.sum_metric += 1
            self.num_inst += 1

    assert type(metric.create("alwaysone")) is AlwaysOne
    assert type(metric.create("ALWAYS_ONE")) is AlwaysOne

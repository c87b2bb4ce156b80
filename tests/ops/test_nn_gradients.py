"""Gradients of the neural-network ops (nn, conv, norm, loss, softmax and the backward ops of nn_backward).

Differentiable ops are checked against central finite differences in float64; loss heads, whose
backward is a fixed rule rather than a derivative, against MXNet's formulas written out here; and
BatchNorm's moving-statistics update against its formula.
"""

from __future__ import annotations

import numpy as np
import pytest

from ember.compiler import Graph, RefContext, Value, evaluate, variable
from ember.compiler.ops import SCHEMAS, aux_update_rules, grad_rules, reference_rules
from ember.compiler.passes import infer_shapes, infer_types
from ember.compiler.passes.autodiff import GradBuilder, gradients

from .grad_harness import check_gradient
from .harness import OpCase, input_dtypes, input_shapes


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """The gradient checks run executors compiled from their first run (not 'tiered'), as before: the
    float64 programs stay covered, and Dropout's re-seeded mask never changes tier mid-check."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")


RNG = np.random.default_rng(7)


def _away_from_zero(*shape):
    """Normal samples pushed at least 0.1 away from 0, the kink of leaky, elu and prelu."""
    x = RNG.standard_normal(shape)
    return np.where(x >= 0, x + 0.1, x - 0.1)


def _positive(*shape):
    return np.abs(RNG.standard_normal(shape)) + 0.5


def _batchnorm(data, channels, attrs, is_train=True):
    """A BatchNorm case with a positive moving variance; the moving statistics are not differentiated."""
    inputs = [data, (channels,), (channels,), RNG.standard_normal(channels), _positive(channels)]
    return OpCase("BatchNorm", inputs, attrs, is_train=is_train), (3, 4)


def _indices(rows, *shape):
    """Indices in [-1, rows], so some are clipped, with repeats."""
    return RNG.integers(-1, rows + 1, shape).astype(np.float32)


# Each entry: an OpCase and the inputs not to differentiate (indices, lengths, moving statistics).
GRAD_CASES = [
    # LeakyReLU
    (OpCase("LeakyReLU", [_away_from_zero(3, 5)], {"act_type": "leaky", "slope": 0.1}), ()),
    (OpCase("LeakyReLU", [_away_from_zero(1, 7)], {"act_type": "leaky"}), ()),
    (OpCase("LeakyReLU", [_away_from_zero(2, 3, 5), (3,)], {"act_type": "prelu"}), ()),
    (OpCase("LeakyReLU", [_away_from_zero(2, 1, 3), (1,)], {"act_type": "prelu"}), ()),
    (OpCase("LeakyReLU", [_away_from_zero(4, 3), (3,)], {"act_type": "prelu"}), ()),
    (OpCase("LeakyReLU", [_away_from_zero(5, 3)], {"act_type": "rrelu"}, is_train=True), ()),
    (OpCase("LeakyReLU", [_away_from_zero(1, 5)], {"act_type": "rrelu"}), ()),
    (OpCase("LeakyReLU", [_away_from_zero(7)], {"act_type": "elu", "slope": 0.5}), ()),
    (OpCase("LeakyReLU", [_away_from_zero(3, 1, 3)], {"act_type": "elu"}), ()),
    (OpCase("LeakyReLU", [_away_from_zero(3, 3)], {"act_type": "selu"}), ()),
    (OpCase("LeakyReLU", [(1, 9)], {"act_type": "gelu"}), ()),
    (OpCase("LeakyReLU", [(2, 3, 5)], {"act_type": "gelu"}), ()),
    # Embedding: no gradient to the indices
    (OpCase("Embedding", [_indices(7, 3, 5), (7, 4)], {"input_dim": 7, "output_dim": 4}), (0,)),
    (OpCase("Embedding", [np.array([2], np.int32), (3, 5)], {"input_dim": 3, "output_dim": 5}), (0,)),
    (OpCase("Embedding", [_indices(2, 2, 3, 1), (2, 1)], {"input_dim": 2, "output_dim": 1}), (0,)),
    # Convolution
    (OpCase("Convolution", [(2, 3, 7, 7), (4, 3, 3, 3), (4,)], {"kernel": (3, 3), "num_filter": 4}), ()),
    (
        OpCase(
            "Convolution",
            [(1, 2, 9), (3, 2, 3)],
            {"kernel": (3,), "stride": (2,), "pad": (1,), "num_filter": 3, "no_bias": True},
        ),
        (),
    ),
    (
        OpCase(
            "Convolution",
            [(2, 4, 5, 5), (6, 2, 3, 3), (6,)],
            {"kernel": (3, 3), "stride": (2, 1), "pad": (1, 0), "num_filter": 6, "num_group": 2},
        ),
        (),
    ),
    (
        OpCase(
            "Convolution",
            [(1, 2, 5, 4, 3), (2, 2, 2, 2, 2), (2,)],
            {"kernel": (2, 2, 2), "dilate": (2, 1, 1), "num_filter": 2},
        ),
        (),
    ),
    (
        OpCase(
            "Convolution",
            [(1, 2, 7, 6), (3, 2, 3, 2), (3,)],
            {
                "kernel": (3, 2),
                "dilate": (2, 2),
                "stride": (2, 3),
                "pad": (2, 1),
                "num_filter": 3,
                "num_group": 1,
            },
        ),
        (),
    ),
    (
        OpCase(
            "Convolution",
            [(1, 5, 5, 3), (2, 3, 3, 3), (2,)],
            {"kernel": (3, 3), "num_filter": 2, "layout": "NHWC"},
        ),
        (),
    ),
    (
        OpCase(
            "Convolution",
            [(1, 5, 5, 4), (6, 3, 3, 2), (6,)],
            {"kernel": (3, 3), "stride": (2, 1), "num_filter": 6, "num_group": 2, "layout": "NHWC"},
        ),
        (),
    ),
    (
        OpCase(
            "Convolution",
            [(1, 3, 3, 3, 2), (2, 2, 2, 2, 2)],
            {"kernel": (2, 2, 2), "num_filter": 2, "no_bias": True, "layout": "NDHWC"},
        ),
        (),
    ),
    (OpCase("Convolution", [(3, 2, 1, 5), (1, 2, 1, 3), (1,)], {"kernel": (1, 3), "num_filter": 1}), ()),
    # Deconvolution: data by a Convolution, weight by _backward_Convolution_weight (roles swapped), bias
    (
        OpCase(
            "Deconvolution",
            [(2, 3, 3, 2), (3, 2, 3, 2), (2,)],
            {
                "kernel": (3, 2),
                "stride": (2, 2),
                "pad": (1, 0),
                "adj": (1, 1),
                "num_filter": 2,
                "no_bias": False,
            },
        ),
        (),
    ),
    (
        OpCase(
            "Deconvolution",
            [(1, 4, 3, 3), (4, 1, 2, 2)],
            {"kernel": (2, 2), "dilate": (2, 1), "stride": (1, 2), "num_filter": 2, "num_group": 2},
        ),
        (),
    ),
    (
        OpCase(
            "Deconvolution",
            [(2, 2, 4), (2, 1, 3)],
            {"kernel": (3,), "stride": (2,), "target_shape": (8,), "num_filter": 1},
        ),
        (),
    ),
    (
        OpCase(
            "Deconvolution",
            [(1, 2, 2, 2, 2), (2, 1, 2, 1, 2), (1,)],
            {"kernel": (2, 1, 2), "stride": (2, 1, 1), "pad": (0, 0, 1), "num_filter": 1, "no_bias": False},
        ),
        (),
    ),
    (
        OpCase(
            "Deconvolution",
            [(1, 3, 2, 4), (4, 2, 2, 1)],
            {"kernel": (2, 2), "stride": (2, 1), "num_filter": 2, "num_group": 2, "layout": "NHWC"},
        ),
        (),
    ),
    # Pooling
    (OpCase("Pooling", [(1, 3, 8, 8)], {"kernel": (3, 3), "stride": (2, 2)}), ()),
    (
        OpCase("Pooling", [(1, 2, 7, 7)], {"kernel": (3, 3), "stride": (2, 2), "pooling_convention": "full"}),
        (),
    ),
    (OpCase("Pooling", [(1, 1, 5, 5)], {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1)}), ()),
    (OpCase("Pooling", [(2, 1, 4, 5)], {"kernel": (2, 2)}), ()),
    (OpCase("Pooling", [(1, 1, 7)], {"kernel": (3,), "stride": (2,), "pooling_convention": "same"}), ()),
    (OpCase("Pooling", [(1, 1, 5, 5, 5)], {"kernel": (2, 2, 2), "stride": (2, 2, 2)}), ()),
    (OpCase("Pooling", [(2, 3, 5, 5)], {"global_pool": True}), ()),
    (OpCase("Pooling", [(1, 5, 5, 3)], {"kernel": (2, 2), "layout": "NHWC"}), ()),
    (
        OpCase(
            "Pooling", [(1, 2, 4, 4)], {"kernel": (2, 2), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg"}
        ),
        (),
    ),
    (
        OpCase(
            "Pooling",
            [(1, 1, 5, 6)],
            {
                "kernel": (2, 2),
                "stride": (2, 2),
                "pad": (1, 1),
                "pool_type": "avg",
                "count_include_pad": False,
            },
        ),
        (),
    ),
    (
        OpCase(
            "Pooling",
            [(2, 1, 7, 7)],
            {
                "kernel": (3, 3),
                "stride": (2, 2),
                "pad": (1, 1),
                "pool_type": "avg",
                "pooling_convention": "full",
            },
        ),
        (),
    ),
    (OpCase("Pooling", [(1, 3, 3, 1)], {"global_pool": True, "pool_type": "avg"}), ()),
    (OpCase("Pooling", [(1, 7, 2)], {"kernel": (3,), "pool_type": "avg", "layout": "NWC"}), ()),
    (OpCase("Pooling", [(1, 2, 9)], {"kernel": (2,), "pool_type": "sum"}), ()),
    (OpCase("Pooling", [(1, 2, 5, 5)], {"kernel": (2, 2), "pool_type": "lp", "p_value": 1}), ()),
    (OpCase("Pooling", [(1, 2, 5, 5)], {"kernel": (2, 2), "pool_type": "lp", "p_value": 2}), ()),
    (
        OpCase(
            "Pooling",
            [_positive(1, 2, 5, 5)],
            {"kernel": (3, 3), "stride": (2, 2), "pool_type": "lp", "p_value": 3},
        ),
        (),
    ),
    # BatchNorm in training (through the batch statistics), in inference and with use_global_stats
    _batchnorm((4, 3, 2, 2), 3, {"fix_gamma": False}),
    _batchnorm((2, 3, 5), 3, {}),  # fix_gamma=True: gamma's gradient is 0
    _batchnorm((5, 3), 3, {"fix_gamma": False, "axis": -1}),
    _batchnorm((2, 3, 4), 4, {"fix_gamma": False, "axis": 2, "eps": 1e-5}),
    _batchnorm((5, 1), 1, {"fix_gamma": False}),
    _batchnorm((3, 2, 3), 2, {"fix_gamma": False}, is_train=False),
    _batchnorm((3, 2, 3), 2, {"fix_gamma": False, "use_global_stats": True}),
    # LayerNorm, InstanceNorm, GroupNorm: data, gamma and beta through the per-row statistics (their mean
    # and std outputs take no gradient, as MXNet: test_layer_group_instance_norm.py)
    (OpCase("LayerNorm", [(3, 5), (5,), (5,)]), ()),
    (OpCase("LayerNorm", [(2, 3, 4), (3,), (3,)], {"axis": 1, "eps": 1e-3}), ()),
    (OpCase("LayerNorm", [(2, 1, 3), (2,), (2,)], {"axis": 0}), ()),
    (OpCase("InstanceNorm", [(2, 3, 5), (3,), (3,)]), ()),
    (OpCase("InstanceNorm", [(1, 2, 3, 2), (2,), (2,)], {"eps": 1e-5}, is_train=True), ()),
    (OpCase("GroupNorm", [(2, 6, 3), (3,), (3,)], {"num_groups": 3}), ()),
    (OpCase("GroupNorm", [(3, 2, 2, 2), (1,), (1,)]), ()),
    # Dropout: the harness reuses one seed, so training cases keep one mask
    (OpCase("Dropout", [(3, 5)], {"p": 0.3}, is_train=True), ()),
    (OpCase("Dropout", [(1, 4, 7)], {"axes": (1,)}, is_train=True), ()),
    (OpCase("Dropout", [(5,)]), ()),
    (OpCase("Dropout", [(5, 1)], {"mode": "always", "p": 0.2}), ()),
    # softmax family
    (OpCase("softmax", [(3, 5)]), ()),
    (OpCase("softmax", [(2, 5, 3)], {"axis": 1}), ()),
    (OpCase("softmax", [(4, 3)], {"axis": 0, "temperature": 2.0}), ()),
    (OpCase("softmax", [(1, 3)], {"temperature": 0.5}), ()),
    (
        OpCase(
            "softmax",
            [(2, 5, 3), np.array([[5, 1, 2], [2, 3, 4]], np.int32)],
            {"axis": 1, "use_length": True},
        ),
        (1,),
    ),
    (OpCase("softmax", [(7,), np.array([4], np.int32)], {"use_length": True, "temperature": 3.0}), (1,)),
    (OpCase("log_softmax", [(1, 5)]), ()),
    (OpCase("log_softmax", [(5,)]), ()),
    (OpCase("log_softmax", [(3, 7)], {"axis": 0, "temperature": 0.5}), ()),
    (OpCase("SoftmaxActivation", [(1, 2, 2)], {"mode": "channel"}), ()),
    (OpCase("SoftmaxActivation", [(2, 3, 5)], {"mode": "channel"}), ()),
    (OpCase("SoftmaxActivation", [(3, 5)]), ()),
    (OpCase("SoftmaxActivation", [(7,)]), ()),
]


@pytest.mark.parametrize("case, skip", GRAD_CASES, ids=lambda c: c.id if isinstance(c, OpCase) else "")
def test_gradient_matches_finite_differences(case, skip):
    check_gradient(case, skip)


@pytest.mark.parametrize("case, skip", GRAD_CASES, ids=lambda c: c.id if isinstance(c, OpCase) else "")
def test_gradient_graph_infers_each_inputs_shape_and_dtype(case, skip):
    """The gradient graph passes shape and dtype inference on its own, as the executor will run it."""
    graph, node = case.graph()
    arrays = [
        a.astype(np.float32) if a.dtype.kind == "f" else a for a in case.arrays(np.random.default_rng(0))
    ]
    shapes = infer_shapes(graph, input_shapes(case))
    dtypes = infer_types(graph, input_dtypes(case, arrays))
    heads = [Value(node, i) for i in range(node.num_visible_outputs)]
    wrt = [v for i, v in enumerate(node.inputs) if i not in skip]
    grads = gradients(Graph(heads), shapes, wrt, [variable(f"head{i}").output() for i in range(len(heads))])
    backward = Graph([grad for grad in grads if grad is not None])
    given_shapes = {**input_shapes(case), **{f"head{i}": shapes[h] for i, h in enumerate(heads)}}
    given_dtypes = {**input_dtypes(case, arrays), **{f"head{i}": dtypes[h] for i, h in enumerate(heads)}}
    inferred_shapes, inferred_dtypes = (
        infer_shapes(backward, given_shapes),
        infer_types(backward, given_dtypes),
    )
    for value, grad in zip(wrt, grads):
        assert grad is not None, f"no gradient for {value}"
        assert inferred_shapes[grad] == shapes[value]
        assert inferred_dtypes[grad] == dtypes[value]


# ---------------------------------------------------------------------------------------------
# Coverage


NN_MODULES = {"nn", "conv", "norm", "loss", "softmax", "nn_backward"}
NN_OPS = sorted(op for op in SCHEMAS if reference_rules[op].__module__.rsplit(".", 1)[-1] in NN_MODULES)
LOSS_HEADS = {
    "SoftmaxOutput",
    "LinearRegressionOutput",
    "LogisticRegressionOutput",
    "MAERegressionOutput",
    "MakeLoss",
    "make_loss",
}


def test_every_nn_op_has_a_gradient_rule():
    assert "Convolution" in NN_OPS and "_backward_Pooling" in NN_OPS
    assert [op for op in NN_OPS if op not in grad_rules] == []


def test_exactly_the_loss_heads_are_marked_as_losses():
    assert {op for op in NN_OPS if SCHEMAS[op].loss_head} == LOSS_HEADS


def test_every_differentiable_nn_op_is_checked_here():
    checked = {case.op for case, _ in GRAD_CASES} | LOSS_HEADS | {"FullyConnected", "Activation"}
    no_gradient = {op for op in NN_OPS if grad_rules[op].__name__ in ("_no_gradient", "_non_differentiable")}
    assert set(NN_OPS) - no_gradient - checked == set()
    assert no_gradient == {"BlockGrad"} | {op for op in NN_OPS if op.startswith("_backward_")}


# ---------------------------------------------------------------------------------------------
# Loss heads: MXNet's fixed gradients


def loss_gradient(
    op: str, inputs: list[np.ndarray], attrs: dict | None = None, head: np.ndarray | None = None
):
    """The data gradient autodiff gives `op(*inputs)` with `head` as head gradient (None: none given).

    Asserts that no input but the data (the label) gets a gradient."""
    graph, node = OpCase(op, inputs, attrs or {}).graph()
    feeds = {v.node.name: a for v, a in zip(node.inputs, inputs)}
    shapes = infer_shapes(graph, {name: a.shape for name, a in feeds.items()})
    heads = [None]
    if head is not None:
        feeds["head"], heads = head, [variable("head").output()]
    grads = gradients(Graph([node.output(0)]), shapes, list(node.inputs), heads)
    assert grads[1:] == [None] * (len(inputs) - 1)
    return evaluate(Graph([grads[0]]), feeds)[grads[0]]


def softmax_rows(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def one_hot(labels, classes: int) -> np.ndarray:
    return (np.arange(classes) == np.asarray(labels)[..., None]).astype(np.float64)


OBSERVED_X = np.array([[1, 2, 3], [1, 1, 1], [0, 0, 5], [2, 1, 0]], np.float64)
OBSERVED_LABELS = np.array([2, 0, 1, 0], np.float64)


def test_softmax_output_gradient_is_p_minus_onehot_as_observed_in_mxnet():
    grad = loss_gradient("SoftmaxOutput", [OBSERVED_X, OBSERVED_LABELS])
    np.testing.assert_allclose(grad[0], [0.0900, 0.2447, -0.3348], atol=5e-5)
    np.testing.assert_allclose(grad, softmax_rows(OBSERVED_X) - one_hot(OBSERVED_LABELS, 3), rtol=1e-12)


def test_softmax_output_ignores_a_supplied_head_gradient():
    plain = loss_gradient("SoftmaxOutput", [OBSERVED_X, OBSERVED_LABELS])
    with_head = loss_gradient("SoftmaxOutput", [OBSERVED_X, OBSERVED_LABELS], head=5 * np.ones((4, 3)))
    np.testing.assert_array_equal(with_head, plain)


def test_softmax_output_out_grad_multiplies_by_the_head_gradient():
    head = RNG.standard_normal((4, 3))
    grad = loss_gradient("SoftmaxOutput", [OBSERVED_X, OBSERVED_LABELS], {"out_grad": True}, head)
    np.testing.assert_allclose(
        grad, (softmax_rows(OBSERVED_X) - one_hot(OBSERVED_LABELS, 3)) * head, rtol=1e-12
    )


def test_softmax_output_batch_normalization_and_grad_scale():
    grad = loss_gradient(
        "SoftmaxOutput", [OBSERVED_X, OBSERVED_LABELS], {"normalization": "batch", "grad_scale": 2.0}
    )
    np.testing.assert_allclose(
        grad, 2.0 * (softmax_rows(OBSERVED_X) - one_hot(OBSERVED_LABELS, 3)) / 4, rtol=1e-12
    )


@pytest.mark.parametrize("use_ignore", [False, True])
def test_softmax_output_valid_normalization_counts_labels_other_than_ignore_label(use_ignore):
    labels = np.array([2, -1, 1, -1], np.float64)
    attrs = {"normalization": "valid", "use_ignore": use_ignore}
    grad = loss_gradient("SoftmaxOutput", [OBSERVED_X, labels], attrs)
    # -1 is out of range: its rows get no -1; use_ignore zeroes them
    expected = (softmax_rows(OBSERVED_X) - one_hot(labels, 3)) / 2
    if use_ignore:
        expected[labels == -1] = 0
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_softmax_output_valid_count_is_never_below_one():
    labels = np.full(4, 3.0)
    grad = loss_gradient("SoftmaxOutput", [OBSERVED_X, labels], {"normalization": "valid", "ignore_label": 3})
    np.testing.assert_allclose(grad, softmax_rows(OBSERVED_X), rtol=1e-12)


def test_softmax_output_ignore_label_is_compared_as_an_integer_and_labels_are_truncated():
    labels = np.array([2.7, 0.2, 1.9, 5.5], np.float64)  # 2, 0, 1, 5 (out of range)
    attrs = {"use_ignore": True, "ignore_label": 5.2}
    grad = loss_gradient("SoftmaxOutput", [OBSERVED_X, labels], attrs)
    expected = softmax_rows(OBSERVED_X) - one_hot([2, 0, 1, 5], 3)
    expected[3] = 0
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_softmax_output_label_smoothing():
    grad = loss_gradient("SoftmaxOutput", [OBSERVED_X, OBSERVED_LABELS], {"smooth_alpha": 0.1})
    target = np.where(one_hot(OBSERVED_LABELS, 3) == 1, 0.9, 0.05)
    np.testing.assert_allclose(grad, softmax_rows(OBSERVED_X) - target, rtol=1e-12)


@pytest.mark.parametrize("normalization, divisor", [("null", 5), ("batch", 2 * 5), ("valid", 8)])
def test_softmax_output_multi_output_normalizations(normalization, divisor):
    x = RNG.standard_normal((2, 3, 5))
    labels = np.array([[0, 1, 2, -1, 1], [2, 2, 0, 1, -1]], np.float64)  # 8 valid of 10
    grad = loss_gradient("SoftmaxOutput", [x, labels], {"multi_output": True, "normalization": normalization})
    p = np.moveaxis(softmax_rows(np.moveaxis(x, 1, -1)), -1, 1)
    expected = (p - np.moveaxis(one_hot(labels, 3), -1, 1)) / divisor
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_softmax_output_multi_output_use_ignore_and_label_with_a_unit_axis():
    x = RNG.standard_normal((2, 3, 4))
    labels = np.array([[0, 1, 2, 1], [2, 1, 0, 1]], np.float64)
    attrs = {"multi_output": True, "use_ignore": True, "ignore_label": 1}
    grad = loss_gradient("SoftmaxOutput", [x, labels.reshape(2, 1, 4)], attrs)
    p = np.moveaxis(softmax_rows(np.moveaxis(x, 1, -1)), -1, 1)
    expected = (p - np.moveaxis(one_hot(labels, 3), -1, 1)) / 4
    expected[np.broadcast_to((labels == 1)[:, None, :], expected.shape)] = 0
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_softmax_output_preserve_shape_and_batch_counts_every_label():
    x = RNG.standard_normal((2, 3, 4))
    labels = np.array([[0, 3, 1], [2, 2, 0]], np.float64)
    grad = loss_gradient("SoftmaxOutput", [x, labels], {"preserve_shape": True, "normalization": "batch"})
    np.testing.assert_allclose(grad, (softmax_rows(x) - one_hot(labels, 4)) / 6, rtol=1e-12)


def test_softmax_output_probability_labels_are_targets_without_normalization():
    x, target = RNG.standard_normal((3, 4)), softmax_rows(RNG.standard_normal((3, 4)))
    attrs = {"normalization": "batch", "grad_scale": 3.0}
    grad = loss_gradient("SoftmaxOutput", [x, target], attrs)
    np.testing.assert_allclose(grad, 3.0 * (softmax_rows(x) - target), rtol=1e-12)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize(
    "op, data, label, attrs, expected",
    [
        # num_output = label.size / label.shape[0]
        (
            "LinearRegressionOutput",
            (4, 1),
            (4,),
            {"grad_scale": 2.0},
            lambda x, y: 2.0 * (x - y.reshape(4, 1)),
        ),
        ("LinearRegressionOutput", (3, 5), (3, 5), {}, lambda x, y: (x - y) / 5),
        ("LinearRegressionOutput", (2, 3, 5), (2, 15), {}, lambda x, y: (x - y.reshape(2, 3, 5)) / 15),
        (
            "LogisticRegressionOutput",
            (3, 4),
            (3, 4),
            {"grad_scale": 0.5},
            lambda x, y: 0.5 * (_sigmoid(x) - y) / 4,
        ),
        ("LogisticRegressionOutput", (1, 1), (1,), {}, lambda x, y: _sigmoid(x) - y.reshape(1, 1)),
        ("MAERegressionOutput", (2, 3), (2, 3), {}, lambda x, y: np.where(x - y > 0, 1.0, -1.0) / 3),
        (
            "MAERegressionOutput",
            (5,),
            (5,),
            {"grad_scale": 4.0},
            lambda x, y: 4.0 * np.where(x > y, 1.0, -1.0),
        ),
    ],
)
def test_regression_outputs_scale_by_grad_scale_over_num_output(op, data, label, attrs, expected):
    x, y = RNG.standard_normal(data), RNG.standard_normal(label)
    y.reshape(-1)[0] = x.reshape(-1)[0]  # MAE's minus_sign gives -1 where out equals the label
    grad = loss_gradient(op, [x, y], attrs)
    np.testing.assert_allclose(grad, expected(x, y), rtol=1e-12)
    np.testing.assert_array_equal(loss_gradient(op, [x, y], attrs, head=7 * np.ones(data)), grad)


@pytest.mark.parametrize(
    "shape, attrs, expected",
    [
        ((3, 4), {"grad_scale": 0.5}, lambda x: np.full(x.shape, 0.5)),
        ((3, 4), {"normalization": "batch"}, lambda x: np.full(x.shape, 1 / 3)),
        # 'batch' divides by the rows of MXNet's 2-D view: every axis but the last
        ((2, 3, 4), {"normalization": "batch", "grad_scale": 2.0}, lambda x: np.full(x.shape, 2.0 / 6)),
        ((7,), {"normalization": "batch"}, lambda x: np.ones(7)),
        (
            (3, 4),
            {"normalization": "valid", "valid_thresh": 0.2},
            lambda x: np.full(x.shape, 1 / np.sum(x > 0.2)),
        ),
        ((2, 2), {"normalization": "valid", "valid_thresh": 100.0}, lambda x: np.ones(x.shape)),
    ],
)
def test_make_loss_sends_grad_scale_over_its_normalizer(shape, attrs, expected):
    x = RNG.standard_normal(shape)
    grad = loss_gradient("MakeLoss", [x], attrs)
    np.testing.assert_allclose(grad, expected(x), rtol=1e-12)
    np.testing.assert_array_equal(loss_gradient("MakeLoss", [x], attrs, head=3 * np.ones(shape)), grad)


def test_make_loss_lowercase_sends_ones():
    x = RNG.standard_normal((2, 3))
    np.testing.assert_array_equal(loss_gradient("make_loss", [x]), np.ones((2, 3)))
    np.testing.assert_array_equal(loss_gradient("make_loss", [x], head=np.full((2, 3), 4.0)), np.ones((2, 3)))


def test_block_grad_passes_no_gradient():
    graph, node = OpCase("BlockGrad", [(2, 3)]).graph()
    shapes = infer_shapes(graph, {"data": (2, 3)})
    assert gradients(graph, shapes, [node.inputs[0]], [variable("head").output()]) == [None]


# ---------------------------------------------------------------------------------------------
# BatchNorm: hidden outputs and the moving-statistics update


def test_batchnorm_hidden_mean_and_var_take_no_gradient():
    data = RNG.standard_normal((4, 3, 2))
    inputs = [data, RNG.standard_normal(3), RNG.standard_normal(3), np.zeros(3), np.ones(3)]
    graph, node = OpCase("BatchNorm", inputs, {"fix_gamma": False, "output_mean_var": True}).graph()
    feeds = {v.node.name: a for v, a in zip(node.inputs, inputs)}
    shapes = infer_shapes(graph, {name: a.shape for name, a in feeds.items()})
    heads = {f"head{i}": RNG.standard_normal(shapes[node.output(i)]) for i in range(3)}
    results = []
    for used in (1, 3):
        head_values = [variable(f"head{i}").output() if i < used else None for i in range(3)]
        grads = gradients(
            Graph([node.output(i) for i in range(3)]), shapes, list(node.inputs[:3]), head_values
        )
        values = evaluate(Graph(grads), {**feeds, **heads}, RefContext(is_train=True))
        results.append([values[g] for g in grads])
    for only_output, all_outputs in zip(*results):
        np.testing.assert_array_equal(all_outputs, only_output)


def _aux_updates(inputs, attrs):
    graph, node = OpCase("BatchNorm", inputs, attrs, is_train=True).graph()
    feeds = {v.node.name: a for v, a in zip(node.inputs, inputs)}
    g = GradBuilder(infer_shapes(graph, {name: a.shape for name, a in feeds.items()}))
    g.node = node
    updates = aux_update_rules["BatchNorm"](g, node)
    values = evaluate(Graph(list(updates.values())), feeds, RefContext(is_train=True)) if updates else {}
    return {name: values[value] for name, value in updates.items()}


def test_batchnorm_aux_update_blends_the_batch_statistics_into_the_moving_ones():
    data = RNG.standard_normal((4, 3, 5)) * 2 + 1
    moving_mean, moving_var = RNG.standard_normal(3), _positive(3)
    inputs = [data, RNG.standard_normal(3), RNG.standard_normal(3), moving_mean, moving_var]
    eps, momentum = 1e-3, 0.8
    updates = _aux_updates(inputs, {"momentum": momentum, "eps": eps, "fix_gamma": False})
    assert set(updates) == {"moving_mean", "moving_var"}
    mean, var = data.mean(axis=(0, 2)), data.var(axis=(0, 2))
    recovered_var = 1 / (1 / np.sqrt(var + eps)) ** 2 - eps  # MXNet recovers var from the inverse std
    np.testing.assert_allclose(
        updates["moving_mean"], moving_mean * momentum + mean * (1 - momentum), rtol=1e-12
    )
    np.testing.assert_allclose(
        updates["moving_var"], moving_var * momentum + recovered_var * (1 - momentum), rtol=1e-12
    )


def test_batchnorm_aux_update_on_another_axis():
    data = RNG.standard_normal((4, 5, 2))
    inputs = [data, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2)]
    updates = _aux_updates(inputs, {"axis": -1, "momentum": 0.9})
    np.testing.assert_allclose(updates["moving_mean"], 0.1 * data.mean(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(updates["moving_var"], 0.9 + 0.1 * data.var(axis=(0, 1)), rtol=1e-10)


def test_batchnorm_with_global_stats_updates_nothing_but_a_fixed_gamma():
    inputs = [RNG.standard_normal((4, 3)), np.full(3, 2.0), np.zeros(3), np.zeros(3), np.ones(3)]
    assert _aux_updates(inputs, {"use_global_stats": True, "fix_gamma": False}) == {}
    updates = _aux_updates(inputs, {"use_global_stats": True})  # fix_gamma defaults to True
    assert list(updates) == ["gamma"] and updates["gamma"].tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------------------------------------
# Backward ops at points finite differences cannot check


def test_max_pooling_sends_a_tied_windows_gradient_to_its_first_maximum():
    x = np.array([[[1.0, 3.0, 3.0, 0.0]]])
    grad = loss_gradient_of_sum("Pooling", x, {"kernel": (2,)})
    # windows [1, 3], [3, 3], [3, 0]: the middle one's maximum is its first cell
    np.testing.assert_array_equal(grad, [[[0.0, 2.0, 1.0, 0.0]]])


def test_embedding_weight_gradient_adds_rows_read_more_than_once_and_clips_indices():
    indices = np.array([[0, 2, 2], [5, -1, 1]], np.float32)  # 5 -> 2 and -1 -> 0, as the forward clips
    head = RNG.standard_normal((2, 3, 4))
    graph, node = OpCase("Embedding", [indices, (3, 4)], {"input_dim": 3, "output_dim": 4}).graph()
    shapes = infer_shapes(graph, {"data": (2, 3), "weight": (3, 4)})
    grads = gradients(graph, shapes, list(node.inputs), [variable("head").output()])
    assert grads[0] is None
    dw = evaluate(Graph([grads[1]]), {"data": indices, "weight": np.zeros((3, 4)), "head": head})[grads[1]]
    expected = np.stack([head[0, 0] + head[1, 1], head[1, 2], head[0, 1] + head[0, 2] + head[1, 0]])
    np.testing.assert_allclose(dw, expected, rtol=1e-12)


def loss_gradient_of_sum(op: str, data: np.ndarray, attrs: dict) -> np.ndarray:
    """d sum(op(data)) / d data."""
    graph, node = OpCase(op, [data], attrs).graph()
    shapes = infer_shapes(graph, {"data": data.shape})
    (grad,) = gradients(Graph([node.output(0)]), shapes, [node.inputs[0]], [variable("head").output()])
    head = np.ones(shapes[node.output(0)])
    return evaluate(Graph([grad]), {"data": data, "head": head})[grad]


def test_softmax_with_a_dtype_casts_its_gradient_back_to_the_datas():
    graph, node = OpCase("softmax", [(2, 3)], {"dtype": "float64"}).graph()
    shapes, dtypes = infer_shapes(graph, {"data": (2, 3)}), infer_types(graph, {"data": "float32"})
    head = variable("head").output()
    (grad,) = gradients(Graph([node.output(0)]), shapes, [node.inputs[0]], [head], dtypes)
    assert infer_types(Graph([grad]), {"data": "float32", "head": "float64"})[grad] == "float32"

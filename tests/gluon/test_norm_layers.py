"""gluon.nn normalization layers, Embedding and the concurrent containers (frontend/gluon/nn/norm_layers.py)
against MXNet 1.9.1.

Expected names, reprs, outputs, gradients and running statistics were recorded from the real mxnet==1.9.1
wheel: each BatchNorm got deterministic inputs and parameters (`_det`; running_var made positive), one
forward to finish deferred initialization, then a recorded forward and a backward with a deterministic head
gradient (`_run` repeats exactly that). MXNet's CPU build cannot run BatchNormReLU, whose oracle is NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember import autograd
from ember.gluon import nn as gluon_nn
from ember.gluon.nn import norm_layers as nn


def _det(shape, offset=0.0):
    """sin(0.7 i + offset) laid out in `shape`: the same float32 values in NumPy and under MXNet."""
    count = int(np.prod(shape))
    return np.sin(np.arange(count, dtype=np.float64) * 0.7 + offset).astype(np.float32).reshape(shape)


def _running(layer):
    return np.concatenate([layer.running_mean.data().asnumpy(), layer.running_var.data().asnumpy()])


def _run(layer, shape, hybridize=False):
    """{"out", "dx", "dgamma", "dbeta", "gamma", "running"} of a BatchNorm as the MXNet recording ran it;
    hybridized, also "inference": a plain call's output (the traced graph's executor, running statistics)."""
    layer.initialize()
    if hybridize:
        layer.hybridize()
    x = mx.nd.array(_det(shape, 0.3))
    layer(x)
    params = layer.collect_params()
    for i, param in enumerate(params.values()):
        value = _det(param.shape, 1.0 + i)
        param.set_data(mx.nd.array(np.abs(value) + 0.5 if param.name.endswith("running_var") else value))
    found = {"inference": layer(x).asnumpy()} if hybridize else {}
    x.attach_grad()
    with autograd.record():
        y = layer(x)
    y.backward(mx.nd.array(_det(y.shape, 2.0)))
    found.update(
        out=y.asnumpy(), dx=x.grad.asnumpy(), gamma=layer.gamma.data().asnumpy(), running=_running(layer)
    )
    for name in ("gamma", "beta"):
        param = getattr(layer, name)
        if param.grad_req != "null":
            found["d" + name] = param.grad().asnumpy()
    return found


def _batchnorm(x, gamma, beta, mean, var, axis=1, eps=1e-5):
    """NumPy BatchNorm with the given statistics."""
    shape = [-1 if a == axis % x.ndim else 1 for a in range(x.ndim)]
    normalized = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return normalized * gamma.reshape(shape) + beta.reshape(shape)


# MXNet 1.9.1's values for each case of BATCHNORM_CASES (flattened, row-major); "running" is running_mean
# then running_var after the step, "gamma" the stored gamma (MXNet overwrites it with 1s under fix_gamma)
RECORDED = {
    "bn": {
        "out": [
            1.0982648, 1.778239, 1.5189178, 1.0804613, -0.13434315, -0.8178338, -0.487302, -0.37013227,
            -0.37459132, 0.57583404, 0.7117127, 0.8570235, 1.5559175, 0.76105595, -0.722906, -1.2163621,
            -1.0935509, -0.5525406, 1.1380634, 1.8002727, 1.5121331, 1.0455521, -0.16950671, -0.8452898
        ],
        "dx": [
            0.92622375, 0.31262213, 0.099591, -0.7872641, -0.8201255, -0.5349757, -0.2785808,
            0.54303914, 1.3359631, 1.4757482, 0.6762472, -0.03507849, -1.2463455, -1.4383599,
            -1.0524967, -0.30270395, 0.8147161, 1.2270366, 0.90737337, 0.27402773, 0.05306772,
            -0.8219054, -0.81742835, -0.5103918
        ],
        "dgamma": [
            0.10635404, -1.3902687, -0.14240465
        ],
        "dbeta": [
            1.3011804, -1.0886188, -1.6712393
        ],
    },
    "bn_last": {
        "out": [
            1.2031587, 1.3014275, 0.4160581, 1.7123471, 0.18984748, -1.0336763, -0.50294596, -1.0956424,
            -0.818519, 1.2246298, 1.3138868, 0.4139727
        ],
        "dx": [
            0.91203344, 0.4181913, -0.05488034, -1.4060822, -1.5229334, -0.71271443, -0.40831414,
            0.7081751, 0.83750004, 0.90236294, 0.39656696, -0.0699053
        ],
        "dgamma": [
            0.01416151, 0.09533559, -0.51739365
        ],
        "dbeta": [
            0.9101027, 0.42177355, -0.26492235
        ],
        "running": [
            0.13463286, -0.45560166, -0.83155966, 1.170446, 1.4007534, 1.2012063
        ],
    },
    "bn_fixed": {
        "out": [
            0.54230046, 1.2584091, 2.2755435, 1.002828, -0.08995181, -0.9790976
        ],
        "dx": [
            2.643323, 0.8468086, -0.7064899, -0.9559934, -1.9368328, 0.10918489
        ],
        "gamma": [1.0, 1.0],
        "running": [0.17130019, -0.4466833, 1.1472529, 1.3921189],
    },
    "bn_global": {
        "out": [
            1.0251889, 1.5377395, 1.5477095, 1.4033216, 0.834584, 0.36096612
        ],
        "dx": [
            0.68251127, 0.3460533, -0.1918071, -0.6625663, -0.74771315, -0.57128227
        ],
        "dgamma": [
            0.01980607, -0.27951762
        ],
        "dbeta": [
            -0.34240836, -1.0964376
        ],
        "running": [0.14112, -0.5298361, 1.2568026, 1.4999232],
    },
}  # fmt: skip


# name -> (layer, input shape), as the recording built them
BATCHNORM_CASES = {
    "bn": (lambda: nn.BatchNorm(momentum=0.8), (4, 3, 2)),
    "bn_last": (lambda: nn.BatchNorm(axis=-1, epsilon=1e-3), (2, 2, 3)),
    "bn_fixed": (lambda: nn.BatchNorm(scale=False, center=False), (3, 2)),
    "bn_global": (lambda: nn.BatchNorm(use_global_stats=True), (3, 2)),
}


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
@pytest.mark.parametrize("case", sorted(BATCHNORM_CASES))
def test_batchnorm_outputs_gradients_and_statistics_match_mxnet(case, hybridize):
    make, shape = BATCHNORM_CASES[case]
    found = _run(make(), shape, hybridize)
    for key, want in RECORDED[case].items():
        np.testing.assert_allclose(found[key].ravel(), want, rtol=1e-5, atol=1e-6, err_msg=f"{case} {key}")


# MXNet 1.9.1: a default BatchNorm(momentum=0.8) over _det((4, 3, 2), 0.3): running_mean then running_var
# after one recorded forward and backward (the same hybridized); unchanged after the forward alone and
# after a training-mode call without autograd recording
RUNNING_AFTER_STEP = [0.02875968, 0.04089614, -0.01485768, 0.89128953, 0.9022884, 0.88340026]
RUNNING_INITIAL = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
def test_running_statistics_move_in_the_backward_of_a_recorded_step(hybridize):
    x = mx.nd.array(_det((4, 3, 2), 0.3))
    layer = nn.BatchNorm(momentum=0.8)
    layer.initialize()
    if hybridize:
        layer.hybridize()
    with autograd.record():
        y = layer(x)
    np.testing.assert_array_equal(_running(layer), RUNNING_INITIAL)
    y.backward()
    np.testing.assert_allclose(_running(layer), RUNNING_AFTER_STEP, rtol=1e-5, atol=1e-7)
    # the oracle of the update: momentum * old + (1 - momentum) * batch mean / biased variance
    batch = x.asnumpy().transpose(1, 0, 2).reshape(3, -1)
    want = np.concatenate([0.2 * batch.mean(axis=1), 0.8 + 0.2 * batch.var(axis=1)])
    np.testing.assert_allclose(_running(layer), want, rtol=1e-5, atol=1e-7)
    fresh = nn.BatchNorm(momentum=0.8)
    fresh.initialize()
    if hybridize:
        fresh.hybridize()
        fresh(x)
    with autograd.train_mode():
        fresh(x)
    np.testing.assert_array_equal(_running(fresh), RUNNING_INITIAL)


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
def test_batchnorm_inference_normalizes_by_the_running_statistics(hybridize):
    layer = nn.BatchNorm(axis=2, epsilon=1e-3, in_channels=4)
    layer.initialize()
    if hybridize:
        layer.hybridize()
    values = {"gamma": _det(4, 1.0), "beta": _det(4, 2.0), "running_mean": _det(4, 3.0),
              "running_var": np.abs(_det(4, 4.0)) + 0.5}  # fmt: skip
    for name, value in values.items():
        getattr(layer, name).set_data(mx.nd.array(value))
    x = _det((2, 3, 4), 0.3)
    want = _batchnorm(x, *values.values(), axis=2, eps=1e-3)
    np.testing.assert_allclose(layer(mx.nd.array(x)).asnumpy(), want, rtol=1e-5, atol=1e-6)


def test_batchnorm_relu_and_sync_batchnorm_on_one_device():
    x = _det((4, 3, 2), 0.3)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    want = _batchnorm(x, ones, zeros, mean, var)
    for hybridize in (False, True):
        fused = nn.BatchNormReLU()
        fused.initialize()
        if hybridize:
            fused.hybridize()
        with autograd.record():
            out = fused(mx.nd.array(x))
        np.testing.assert_allclose(out.asnumpy(), np.maximum(want, 0), rtol=1e-5, atol=1e-6)
    sync = nn.SyncBatchNorm(num_devices=1, momentum=0.8)
    sync.initialize()
    with autograd.record():
        out = sync(mx.nd.array(x))
    out.backward()
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_running(sync), RUNNING_AFTER_STEP, rtol=1e-5, atol=1e-7)  # as MXNet's
    with pytest.raises(mx.MXNetError, match=r"SyncBatchNorm \(syncbatchnorm\d+\): num_devices=2 is not"):
        nn.SyncBatchNorm(num_devices=2)


def test_batchnorm_keeps_float32_parameters_under_float16():
    """As MXNet: cast('float16') leaves BatchNorm's parameters float32; the output has the data's dtype."""
    layer = nn.BatchNorm()
    layer.initialize()
    layer.cast("float16")
    assert [np.dtype(p.dtype).name for p in layer.collect_params().values()] == ["float32"] * 4
    out = layer(mx.nd.ones((2, 3), dtype="float16"))
    assert out.dtype == np.float16
    assert [p.data().dtype for p in layer.collect_params().values()] == [np.float32] * 4


# MXNet 1.9.1: Embedding(5, 3) with weight _det((5, 3), 1.0) over indices EMBEDDING_INDICES (out of range
# ones clip to the ends), backward with head gradient _det((3, 2, 3), 2.0)
EMBEDDING_INDICES = [[0, 4], [2, 4], [7, -1]]
EMBEDDING = {
    "out": [
        0.84147096, 0.9916648, 0.6754632, 0.02477542, -0.62507063, -0.9809362, -0.8834547,
        -0.37387666, 0.31154135, 0.02477542, -0.62507063, -0.9809362, 0.02477542, -0.62507063,
        -0.9809362, 0.84147096, 0.9916648, 0.6754632
    ],
    "dw": [
        0.8429755, 1.0194534, 0.7164664, 0.0, 0.0, 0.0, -0.0830894, 0.5784398, 0.96791965, 0.0, 0.0,
        0.0, -0.7439317, -1.5785987, -1.670826
    ],
}  # fmt: skip


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
def test_embedding_rows_and_weight_gradient_match_mxnet(hybridize):
    layer = nn.Embedding(5, 3)
    layer.initialize()
    if hybridize:
        layer.hybridize()
    layer.weight.set_data(mx.nd.array(_det((5, 3), 1.0)))
    indices = mx.nd.array(EMBEDDING_INDICES)
    np.testing.assert_allclose(layer(indices).asnumpy().ravel(), EMBEDDING["out"], rtol=1e-6)
    with autograd.record():
        out = layer(indices)
    out.backward(mx.nd.array(_det((3, 2, 3), 2.0)))
    np.testing.assert_allclose(out.asnumpy().ravel(), EMBEDDING["out"], rtol=1e-6)
    np.testing.assert_allclose(layer.weight.grad().asnumpy().ravel(), EMBEDDING["dw"], rtol=1e-5, atol=1e-7)
    # NumPy: rows picked by the clipped indices
    rows = np.clip(np.array(EMBEDDING_INDICES), 0, 4)
    np.testing.assert_array_equal(out.asnumpy(), _det((5, 3), 1.0)[rows])


def test_embedding_sparse_grad_is_refused():
    with pytest.raises(
        mx.MXNetError, match=r"^Embedding \(embedding\d+\): sparse_grad=True needs row_sparse"
    ):
        nn.Embedding(4, 2, sparse_grad=True)


# (layer, input shape, repr, repr after the first call (None: unchanged), {parameter: (shape, shape after
# the first call, init, grad_req)}, output shape), recorded from MXNet 1.9.1; the layers whose op Ember
# lacks are not called
LAYOUTS = [
    (
        lambda: nn.BatchNorm(axis=-1, momentum=0.5, in_channels=3),
        (2, 3),
        "BatchNorm(axis=-1, eps=1e-05, momentum=0.5, fix_gamma=False, use_global_stats=False, in_channels=3)",
        None,
        {
            "batchnorm0_gamma": ((3,), (3,), "ones", "write"),
            "batchnorm0_beta": ((3,), (3,), "zeros", "write"),
            "batchnorm0_running_mean": ((3,), (3,), "zeros", "null"),
            "batchnorm0_running_var": ((3,), (3,), "ones", "null"),
        },
        (2, 3),
    ),
    (
        lambda: nn.BatchNorm(center=False),
        (2, 4, 3),
        (
            "BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, use_global_stats=False, "
            "in_channels=None)"
        ),
        "BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, use_global_stats=False, in_channels=4)",
        {
            "batchnorm0_gamma": ((0,), (4,), "ones", "write"),
            "batchnorm0_beta": ((0,), (4,), "zeros", "null"),
            "batchnorm0_running_mean": ((0,), (4,), "zeros", "null"),
            "batchnorm0_running_var": ((0,), (4,), "ones", "null"),
        },
        (2, 4, 3),
    ),
    (
        lambda: nn.Embedding(6, 2, dtype="float64"),
        (2, 3),
        "Embedding(6 -> 2, float64)",
        None,
        {"embedding0_weight": ((6, 2), (6, 2), "None", "write")},
        (2, 3, 2),
    ),
    (
        lambda: nn.InstanceNorm(axis=2, scale=True, in_channels=3),
        None,
        "InstanceNorm(eps=1e-05, axis=2, center=True, scale=True, in_channels=3)",
        None,
        {
            "instancenorm0_gamma": ((3,), None, "ones", "write"),
            "instancenorm0_beta": ((3,), None, "zeros", "write"),
        },
        None,
    ),
    (
        lambda: nn.LayerNorm(axis=1, epsilon=0.1, center=False),
        None,
        "LayerNorm(eps=0.1, axis=1, center=False, scale=True, in_channels=0)",
        None,
        {"layernorm0_gamma": ((0,), None, "ones", "write"), "layernorm0_beta": ((0,), None, "zeros", "null")},
        None,
    ),
    (
        lambda: nn.GroupNorm(4, scale=False),
        None,
        "GroupNorm(eps=1e-05, num_groups=4, center=True, scale=False)",
        None,
        {"groupnorm0_gamma": ((4,), None, "ones", "null"), "groupnorm0_beta": ((4,), None, "zeros", "write")},
        None,
    ),
    (
        lambda: nn.BatchNormReLU(in_channels=2),
        None,
        (
            "BatchNormReLU(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, use_global_stats=False, "
            "in_channels=2)"
        ),
        None,
        {
            "batchnormrelu0_gamma": ((2,), None, "ones", "write"),
            "batchnormrelu0_beta": ((2,), None, "zeros", "write"),
            "batchnormrelu0_running_mean": ((2,), None, "zeros", "null"),
            "batchnormrelu0_running_var": ((2,), None, "ones", "null"),
        },
        None,
    ),
    (
        lambda: nn.SyncBatchNorm(in_channels=3, num_devices=1, scale=False),
        (2, 3),
        (
            "SyncBatchNorm(eps=1e-05, momentum=0.9, fix_gamma=True, use_global_stats=False, ndev=1, "
            "key='syncbatchnorm0_', in_channels=3)"
        ),
        None,
        {
            "syncbatchnorm0_gamma": ((3,), (3,), "ones", "null"),
            "syncbatchnorm0_beta": ((3,), (3,), "zeros", "write"),
            "syncbatchnorm0_running_mean": ((3,), (3,), "zeros", "null"),
            "syncbatchnorm0_running_var": ((3,), (3,), "ones", "null"),
        },
        (2, 3),
    ),
]


def _describe(layer):
    return {name: (p.shape, None if p.init is None else str(p.init), p.grad_req)
            for name, p in layer.collect_params().items()}  # fmt: skip


@pytest.mark.parametrize("make, shape, text, text_after, params, out_shape", LAYOUTS,
                         ids=[row[2].split("(")[0] + str(i) for i, row in enumerate(LAYOUTS)])  # fmt: skip
def test_names_shapes_and_reprs_match_mxnet(make, shape, text, text_after, params, out_shape):
    with mx.name.NameManager():
        layer = make()
    assert repr(layer) == text
    want = {
        name: (before, init if init != "None" else None, req)
        for name, (before, _, init, req) in params.items()
    }
    assert _describe(layer) == want
    if shape is None:
        return
    layer.initialize()
    assert layer(mx.nd.ones(shape)).shape == out_shape
    assert repr(layer) == (text if text_after is None else text_after)
    assert {name: p.shape for name, p in layer.collect_params().items()} == {
        n: s[1] for n, s in params.items()
    }


def _normalized(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
def test_layer_instance_and_group_norm_compute_numpy_normalizations(hybridize):
    """The three layers (their ops joined the registry) against NumPy, default gamma 1 and beta 0."""
    x = np.random.default_rng(5).standard_normal((2, 4, 3)).astype(np.float32) * 3 + 1
    grouped = _normalized(x.reshape(2, 2, 2, 3), (2, 3), 1e-5).reshape(2, 4, 3)
    cases = (
        (nn.LayerNorm(epsilon=1e-5), _normalized(x, (2,), 1e-5)),
        (nn.InstanceNorm(epsilon=1e-5), _normalized(x, (2,), 1e-5)),
        (nn.GroupNorm(2, epsilon=1e-5), grouped),
    )
    for layer, want in cases:
        net = gluon_nn.HybridSequential()
        net.add(layer)
        net.initialize()
        if hybridize:
            net.hybridize()
        np.testing.assert_allclose(net(mx.nd.array(x)).asnumpy(), want, rtol=1e-4, atol=1e-5)


def _concurrent(hybrid):
    with mx.name.NameManager():
        net = nn.HybridConcurrent(axis=1) if hybrid else nn.Concurrent(axis=1)
        with net.name_scope():
            net.add(gluon_nn.Dense(2), gluon_nn.Dense(3, in_units=4), gluon_nn.Identity())
    return net


def test_concurrent_containers_concatenate_their_children():
    assert list(_concurrent(True).collect_params()) == [  # names as MXNet 1.9.1's gluon.contrib.nn
        "hybridconcurrent0_dense0_weight", "hybridconcurrent0_dense0_bias",
        "hybridconcurrent0_dense1_weight", "hybridconcurrent0_dense1_bias",
    ]  # fmt: skip
    assert repr(_concurrent(True)) == (
        "HybridConcurrent(\n  (0): Dense(None -> 2, linear)\n  (1): Dense(4 -> 3, linear)\n"
        "  (2): Identity(\n  \n  )\n)"
    )
    x = _det((5, 4), 0.3)
    results = []
    for hybrid, hybridize in ((False, False), (True, False), (True, True)):
        net = _concurrent(hybrid)
        net.initialize(mx.init.Constant(0.1))
        if hybridize:
            net.hybridize()
        data = mx.nd.array(x)
        data.attach_grad()
        with autograd.record():
            out = net(data)
        out.backward()
        results.append((out.asnumpy(), data.grad.asnumpy()))
    dense = x.sum(axis=1, keepdims=True) * 0.1  # weights 0.1, biases 'zeros' (their own initializer)
    want = np.concatenate([np.repeat(dense, 2, axis=1), np.repeat(dense, 3, axis=1), x], axis=1)
    for out, grad in results:
        np.testing.assert_allclose(out, want, rtol=1e-5)
        np.testing.assert_allclose(
            grad, np.full((5, 4), 1 + 5 * 0.1), rtol=1e-5
        )  # 2 + 3 dense units, identity


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
def test_bad_input_names_the_layer(hybridize):
    layer = nn.BatchNorm(prefix="bn_")
    layer.initialize()
    if hybridize:
        layer.hybridize()
    assert layer(mx.nd.ones((2, 3))).shape == (2, 3)
    message = (
        r"^BatchNorm \(bn\) has parameters for 3 channels, got input of shape \(2, 4\) with 4 on axis 1$"
    )
    with pytest.raises(mx.MXNetError, match=message):
        layer(mx.nd.ones((2, 4)))
    last = nn.BatchNorm(axis=3)
    last.initialize()
    with pytest.raises(mx.MXNetError, match=r"axis 3 is out of range for input of shape \(2, 3\)"):
        last(mx.nd.ones((2, 3)))

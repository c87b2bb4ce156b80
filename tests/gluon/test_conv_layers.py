"""gluon.nn convolution, pooling and padding layers (frontend/gluon/nn/conv_layers.py) against MXNet 1.9.1.

Expected names, shapes, reprs, outputs and gradients were recorded from the real mxnet==1.9.1 wheel: each
layer got deterministic inputs and weights (`_det`), one forward to finish deferred initialization, then a
recorded forward and a backward with a deterministic head gradient (`_run` repeats exactly that). MXNet's CPU
build cannot run NHWC convolution, so that case is checked against a NumPy convolution instead.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import ember as mx
from ember import autograd
from ember.gluon import nn as gluon_nn
from ember.gluon.nn import conv_layers as nn
from ember.gluon.nn import norm_layers


def _det(shape, offset=0.0):
    """sin(0.7 i + offset) laid out in `shape`: the same float32 values in NumPy and under MXNet."""
    count = int(np.prod(shape))
    return np.sin(np.arange(count, dtype=np.float64) * 0.7 + offset).astype(np.float32).reshape(shape)


def _run(layer, shape, hybridize=False):
    """{"out", "dx", "d<param>"...} of `layer` as the MXNet recording ran it; hybridized, the output of a
    plain (unrecorded) call, which runs the traced graph's executor, is returned too as "inference"."""
    layer.initialize()
    if hybridize:
        layer.hybridize()
    x = mx.nd.array(_det(shape, 0.3))
    layer(x)
    params = layer.collect_params()
    for i, param in enumerate(params.values()):
        param.set_data(mx.nd.array(_det(param.shape, 1.0 + i)))
    found = {"inference": layer(x).asnumpy()} if hybridize else {}
    x.attach_grad()
    with autograd.record():
        y = layer(x)
    y.backward(mx.nd.array(_det(y.shape, 2.0)))
    found.update(out=y.asnumpy(), dx=x.grad.asnumpy())
    for name, param in params.items():
        if param.grad_req != "null":
            found["d" + name.split("_", 1)[1]] = param.grad().asnumpy()
    return found


# MXNet 1.9.1's values for each case of CASES (flattened, row-major)
RECORDED = {
    "conv1d": {
        "out": [
            2.6767614, 2.019528, -0.11243063, -0.56253785, -0.5428771, 0.07773367, 1.7660741, 1.9217294
        ],
        "dx": [
            1.274161, 1.2867911, 0.68760264, -0.07275029, -0.22234595, -1.3980762, -1.0277218,
            -1.5419245, -2.1315386, -0.95952785, -0.96681607, 0.07414966, 0.6526153, 1.0729535
        ],
        "dweight": [
            0.68768847, 1.4817984, 1.2101816, -0.91960144, -0.9432714, -0.14592144, -1.0037384,
            -1.5629436, -1.2639712, 0.57661057, 0.5923872, -0.28266034
        ],
        "dbias": [
            0.2628591, -1.2063546
        ],
    },
    "conv2d": {
        "out": [
            3.833403, 0.0, 1.6777933, 5.329494, 0.0, 0.0, 0.6089718, 2.812385, 0.0, 0.0, 3.3845198, 0.0,
            0.97521436, 2.8259158, 0.0, 0.0, 1.6870321, 0.0, 0.0, 0.0, 2.6231432, 0.0, 0.36236346,
            2.2532253
        ],
        "dx": [
            -0.21503043, -0.25341114, -0.86116505, -0.8114566, -0.5527161, 0.1207604, -0.7841989,
            -1.8267336, -0.20721406, 0.18942425, -0.01062557, 0.15635484, 0.21577463, 0.5006693,
            0.7998905, 0.225759, 0.09554086, 0.64329916, 0.30593473, -0.25492716, 1.1267146, 1.3593078,
            0.9572034, -0.3691063, -0.56922233, -0.21732153, -0.2528217, -0.8653087, -0.80956924,
            -0.54249257, -0.25216907, -0.282365, -0.17976025, 0.0, 0.0, -2.1011577, -1.9908416,
            -2.403869, -1.6467545, -1.0593472, 0.00738855, 0.19106239, 0.2848766, 0.0, 0.0, 0.2447089,
            0.08945078, -0.10787745, 0.0, 0.0, 1.5493495, 0.19339624, 0.17961067, 0.5365381, -0.6123909,
            -0.25446922, -0.28138015, -0.1759536, 0.0, 0.0
        ],
        "dweight": [
            -0.8869742, -0.7677465, -0.28743565, -1.3161749, -1.1619605, -0.46125793, 0.54380035,
            -0.04425082, -0.61149013, 0.8379483, -0.03115034, -0.8855985, -0.25215796, -0.40285823,
            -0.364088, -0.4601864, -0.13504273, 0.25361362, 0.40666696, 0.26799566, 0.00328178,
            -0.07738407, -0.42313832, -0.569884, -0.193392, 0.21258894, 0.518586, -0.6007126,
            -1.2726586, -1.3460534, -0.40031144, -0.58720595, -0.49792835, 1.3961178, 1.1140872,
            0.30808395, -0.4560285, -1.0220819, -1.107434, 0.00738855, 0.19106239, 0.2848766, 1.1362559,
            0.93079317, 0.28756392, -0.25669742, -0.28031576, -0.17209719
        ],
        "dbias": [
            -0.16452086, 0.90746886, -1.2303057, -1.9618764
        ],
    },
    "conv3d": {
        "out": [
            -0.70636934, -0.38292068, 1.6492703, 2.4022415, 0.833493, 1.3277521, 1.5859561, 1.2284635,
            2.46364, 2.596771, 0.7927475, -0.29594654, -0.79026544, 0.32323146, 2.150441, 2.0047884,
            0.7350215, 1.0939437, 0.8499369, 0.3617682, 1.9200197, 1.1438217, -0.8959031, -1.2001153
        ],
    },
    "maxpool1d": {
        "out": [
            0.84147096, 0.9916648, 0.6754632, -0.6118579, -0.8834547, 0.31154135, 0.98935825, 0.98935825
        ],
        "dx": [
            0.0, 0.9092974, 0.42737988, -0.25554112, 0.0, -0.8182771, 0.0, -0.9961646, 0.0, -0.7055403,
            0.0, 0.49535036
        ],
    },
    "maxpool2d": {
        "out": [
            0.84147096, 0.9916648, 0.6754632, 0.98935825, 0.98935825, 0.8591618, 0.98677194, 0.65028787,
            0.8591618
        ],
        "dx": [
            0.0, 0.9092974, 0.42737988, -0.25554112, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.8144417, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.26237935, -0.0830894, 0.5784398, 0.0, 0.0, 0.0
        ],
    },
    "avgpool2d": {
        "out": [
            -0.18099841, 0.26046818, 0.37608707, 0.18875018, 0.0022327, -0.00342219, -0.00479299,
            -0.00232591, -0.00600993, -0.00187504, 0.00475026, 0.00638829, 0.31428567, -0.54890966,
            -0.72408587, -0.32663512
        ],
        "dx": [
            0.22732435, 0.29855433, 0.07122998, 0.02863979, -0.04259019, -0.45172876, 0.06129691,
            0.05413352, -0.00716339, -0.05898573, -0.05182234, -0.26814765, -0.16602744, -0.24442081,
            -0.07839337, -0.08762553, -0.00923216, 0.18358111, -0.0047075, 0.01714045, 0.02184795,
            0.05840674, 0.03655879, 0.13878518, 0.16131994, 0.26156127, 0.10024132, 0.14603226,
            0.04579094, -0.04479593, -0.25259328, -0.4838695, -0.23127623, -0.4166603, -0.18538408,
            -0.34229285
        ],
    },
    "avgpool2d_pad": {
        "out": [
            0.06296822, 0.00397293, 0.00612579, -0.21141532
        ],
    },
    "avgpool1d_nwc": {
        "out": [
            0.64359254, 0.7584671, -0.46797472, -0.7476563
        ],
    },
    "avgpool3d": {
        "out": [
            0.03694003, 0.22914198, 0.0844329, -0.07128465, -0.12219127, -0.15716642, 0.03894267,
            0.22997436
        ],
    },
    "maxpool2d_nhwc": {
        "out": [
            0.9916648, 0.98935825, 0.66296923, 0.02477542, 0.32747445, 0.8591618, 0.98677194, 0.9839067
        ],
    },
    "maxpool3d": {
        "out": [
            0.9916648, 0.98935825
        ],
    },
    "reflect": {
        "out": [
            0.04158066, 0.6754632, 0.04158066, -0.6118579, 0.04158066, 0.84147096, 0.29552022,
            0.84147096, 0.9916648, 0.84147096, 0.04158066, 0.6754632, 0.04158066, -0.6118579,
            0.04158066, -0.8834547, -0.9775301, -0.8834547, -0.37387666, -0.8834547, 0.04158066,
            0.6754632, 0.04158066, -0.6118579, 0.04158066
        ],
        "dx": [
            -0.0830894, 0.7750713, 0.96791965, -0.6815225, -2.7817397, -2.4941435, 0.5920735, 1.3024262,
            0.8947912
        ],
    },
    "reflect8": {
        "out": [
            -0.9775301, -0.8834547, -0.37387666, -0.8834547, 0.6754632, 0.04158066, -0.6118579,
            0.04158066, 0.29552022, 0.84147096, 0.9916648, 0.84147096, 0.6754632, 0.04158066,
            -0.6118579, 0.04158066, -0.9775301, -0.8834547, -0.37387666, -0.8834547, 0.6754632,
            0.04158066, -0.6118579, 0.04158066
        ],
    },
}  # fmt: skip


# name -> (layer, input shape), as the recording built them
CASES = {
    "conv1d": (lambda: nn.Conv1D(2, 3, strides=2, padding=1), (1, 2, 7)),
    "conv2d": (
        lambda: nn.Conv2D(
            4, (2, 3), strides=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2, activation="relu"
        ),
        (1, 4, 3, 5),
    ),
    "conv3d": (lambda: nn.Conv3D(2, 2, padding=(1, 0, 0)), (1, 1, 2, 3, 3)),
    "maxpool1d": (lambda: nn.MaxPool1D(3, 2, 1, ceil_mode=True), (1, 2, 6)),
    "maxpool2d": (lambda: nn.MaxPool2D(3, 2, 1), (1, 1, 5, 5)),
    "avgpool2d": (lambda: nn.AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=False), (1, 1, 6, 6)),
    "avgpool2d_pad": (lambda: nn.AvgPool2D(3, 2, 1), (1, 1, 4, 4)),
    "avgpool1d_nwc": (lambda: nn.AvgPool1D(2, layout="NWC"), (1, 4, 2)),
    "avgpool3d": (lambda: nn.AvgPool3D(2, padding=1), (1, 1, 2, 2, 3)),
    "maxpool2d_nhwc": (lambda: nn.MaxPool2D(layout="NHWC"), (1, 4, 4, 2)),
    "maxpool3d": (lambda: nn.MaxPool3D(2, 1), (1, 1, 3, 2, 2)),
    "reflect": (lambda: nn.ReflectionPad2D(1), (1, 1, 3, 3)),
    "reflect8": (lambda: nn.ReflectionPad2D((0, 0, 0, 0, 2, 1, 0, 1)), (1, 1, 3, 3)),
}


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_and_gradients_match_mxnet(case, hybridize):
    make, shape = CASES[case]
    found = _run(make(), shape, hybridize)
    for key, want in RECORDED[case].items():
        np.testing.assert_allclose(found[key].ravel(), want, rtol=1e-5, atol=1e-6, err_msg=f"{case} {key}")
    if hybridize:
        np.testing.assert_allclose(found["inference"].ravel(), RECORDED[case]["out"], rtol=1e-5, atol=1e-6)


# (layer, input shape, repr, repr after the first call (None: unchanged), {parameter: (shape, shape after
# the first call)}, output shape), recorded from MXNet 1.9.1; transposed convolutions are not called
LAYOUTS = [
    (
        lambda: nn.Conv1D(2, 3, padding=1, dilation=2, use_bias=False, activation="tanh"),
        (1, 3, 9),
        (
            "Conv1D(None -> 2, kernel_size=(3,), stride=(1,), padding=(1,), dilation=(2,), bias=False, "
            "Activation(tanh))"
        ),
        (
            "Conv1D(3 -> 2, kernel_size=(3,), stride=(1,), padding=(1,), dilation=(2,), bias=False, "
            "Activation(tanh))"
        ),
        {"conv0_weight": ((2, 0, 3), (2, 3, 3))},
        (1, 2, 7),
    ),
    (
        lambda: nn.Conv2D(4, (2, 3), strides=(1, 2), padding=(1, 0), groups=2, in_channels=6),
        (1, 6, 5, 5),
        "Conv2D(3 -> 4, kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), groups=2)",
        None,
        {"conv0_weight": ((4, 3, 2, 3), (4, 3, 2, 3)), "conv0_bias": ((4,), (4,))},
        (1, 4, 6, 2),
    ),
    (
        lambda: nn.Conv2D(3, 2, layout="NHWC"),
        (1, 4, 4, 5),
        "Conv2D(2 -> 3, kernel_size=(2, 2), stride=(1, 1))",
        None,
        {"conv0_weight": ((3, 2, 2, 0), (3, 2, 2, 5)), "conv0_bias": ((3,), (3,))},
        (1, 3, 3, 3),
    ),
    (
        lambda: nn.Conv2D(3, [2, 2], padding=[0, 0]),
        (1, 2, 4, 4),
        "Conv2D(None -> 3, kernel_size=[2, 2], stride=(1, 1), padding=[0, 0])",
        "Conv2D(2 -> 3, kernel_size=[2, 2], stride=(1, 1), padding=[0, 0])",
        {"conv0_weight": ((3, 0, 2, 2), (3, 2, 2, 2)), "conv0_bias": ((3,), (3,))},
        (1, 3, 3, 3),
    ),
    (
        lambda: nn.Conv3D(2, 2, strides=2, layout="NDHWC"),
        (1, 4, 4, 4, 3),
        "Conv3D(2 -> 2, kernel_size=(2, 2, 2), stride=(2, 2, 2))",
        None,
        {"conv0_weight": ((2, 2, 2, 2, 0), (2, 2, 2, 2, 3)), "conv0_bias": ((2,), (2,))},
        (1, 2, 2, 2, 2),
    ),
    (
        lambda: nn.Conv1DTranspose(4, 3, strides=2, output_padding=1),
        None,
        "Conv1DTranspose(4 -> 0, kernel_size=(3,), stride=(2,))",
        None,
        {"conv0_weight": ((0, 4, 3), None), "conv0_bias": ((4,), None)},
        None,
    ),
    (
        lambda: nn.Conv2DTranspose(6, 3, groups=3, in_channels=6, use_bias=False),
        None,
        "Conv2DTranspose(2 -> 6, kernel_size=(3, 3), stride=(1, 1), groups=3, bias=False)",
        None,
        {"conv0_weight": ((6, 2, 3, 3), None)},
        None,
    ),
    (
        lambda: nn.Conv3DTranspose(2, (1, 2, 3), padding=1, activation="relu"),
        None,
        (
            "Conv3DTranspose(2 -> 0, kernel_size=(1, 2, 3), stride=(1, 1, 1), padding=(1, 1, 1), "
            "Activation(relu))"
        ),
        None,
        {"conv0_weight": ((0, 2, 1, 2, 3), None), "conv0_bias": ((2,), None)},
        None,
    ),
    (
        lambda: nn.MaxPool1D(),
        (1, 2, 6),
        (
            "MaxPool1D(size=(2,), stride=(2,), padding=(0,), ceil_mode=False, global_pool=False, "
            "pool_type=max, layout=NCW)"
        ),
        None,
        {},
        (1, 2, 3),
    ),
    (
        lambda: nn.MaxPool1D(3, 1, 1, "NWC", True),
        (1, 6, 2),
        (
            "MaxPool1D(size=(3,), stride=(1,), padding=(1,), ceil_mode=True, global_pool=False, "
            "pool_type=max, layout=NWC)"
        ),
        None,
        {},
        (1, 6, 2),
    ),
    (
        lambda: nn.MaxPool3D(2, None, 0, True, "NDHWC"),
        (1, 3, 3, 3, 2),
        (
            "MaxPool3D(size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0), ceil_mode=True, "
            "global_pool=False, pool_type=max, layout=NDHWC)"
        ),
        None,
        {},
        (1, 2, 2, 2, 2),
    ),
    (
        lambda: nn.AvgPool1D(3, 2, 1, "NCW", True, False),
        (1, 2, 7),
        (
            "AvgPool1D(size=(3,), stride=(2,), padding=(1,), ceil_mode=True, global_pool=False, "
            "pool_type=avg, layout=NCW)"
        ),
        None,
        {},
        (1, 2, 4),
    ),
    (
        lambda: nn.AvgPool2D(strides=1),
        (1, 2, 4, 4),
        (
            "AvgPool2D(size=(2, 2), stride=(1, 1), padding=(0, 0), ceil_mode=False, global_pool=False, "
            "pool_type=avg, layout=NCHW)"
        ),
        None,
        {},
        (1, 2, 3, 3),
    ),
    (
        lambda: nn.AvgPool3D(),
        (1, 1, 4, 4, 4),
        (
            "AvgPool3D(size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0), ceil_mode=False, "
            "global_pool=False, pool_type=avg, layout=NCDHW)"
        ),
        None,
        {},
        (1, 1, 2, 2, 2),
    ),
    (
        lambda: nn.GlobalMaxPool1D(),
        (1, 2, 5),
        (
            "GlobalMaxPool1D(size=(1,), stride=(1,), padding=(0,), ceil_mode=True, global_pool=True, "
            "pool_type=max, layout=NCW)"
        ),
        None,
        {},
        (1, 2, 1),
    ),
    (
        lambda: nn.GlobalMaxPool2D(layout="NHWC"),
        (1, 3, 3, 2),
        (
            "GlobalMaxPool2D(size=(1, 1), stride=(1, 1), padding=(0, 0), ceil_mode=True, global_pool=True, "
            "pool_type=max, layout=NHWC)"
        ),
        None,
        {},
        (1, 1, 1, 2),
    ),
    (
        lambda: nn.GlobalMaxPool3D(),
        (1, 2, 2, 2, 2),
        (
            "GlobalMaxPool3D(size=(1, 1, 1), stride=(1, 1, 1), padding=(0, 0, 0), ceil_mode=True, "
            "global_pool=True, pool_type=max, layout=NCDHW)"
        ),
        None,
        {},
        (1, 2, 1, 1, 1),
    ),
    (
        lambda: nn.GlobalAvgPool1D(layout="NWC"),
        (1, 5, 2),
        (
            "GlobalAvgPool1D(size=(1,), stride=(1,), padding=(0,), ceil_mode=True, global_pool=True, "
            "pool_type=avg, layout=NWC)"
        ),
        None,
        {},
        (1, 1, 2),
    ),
    (
        lambda: nn.GlobalAvgPool2D(),
        (2, 3, 4, 4),
        (
            "GlobalAvgPool2D(size=(1, 1), stride=(1, 1), padding=(0, 0), ceil_mode=True, global_pool=True, "
            "pool_type=avg, layout=NCHW)"
        ),
        None,
        {},
        (2, 3, 1, 1),
    ),
    (
        lambda: nn.GlobalAvgPool3D(),
        (1, 2, 2, 3, 2),
        (
            "GlobalAvgPool3D(size=(1, 1, 1), stride=(1, 1, 1), padding=(0, 0, 0), ceil_mode=True, "
            "global_pool=True, pool_type=avg, layout=NCDHW)"
        ),
        None,
        {},
        (1, 2, 1, 1, 1),
    ),
    (
        lambda: nn.ReflectionPad2D(2),
        (1, 1, 3, 3),
        "ReflectionPad2D(\n\n)",
        None,
        {},
        (1, 1, 7, 7),
    ),
]


@pytest.mark.parametrize("make, shape, text, text_after, params, out_shape", LAYOUTS,
                         ids=[row[2].split("(")[0] + str(i) for i, row in enumerate(LAYOUTS)])  # fmt: skip
def test_names_shapes_and_reprs_match_mxnet(make, shape, text, text_after, params, out_shape):
    with mx.name.NameManager():
        layer = make()
    assert repr(layer) == text
    assert {name: p.shape for name, p in layer.collect_params().items()} == {
        n: s[0] for n, s in params.items()
    }
    if shape is None:
        return
    layer.initialize()
    assert layer(mx.nd.ones(shape)).shape == out_shape
    assert repr(layer) == (text if text_after is None else text_after)
    assert {name: p.shape for name, p in layer.collect_params().items()} == {
        n: s[1] for n, s in params.items()
    }


def _numpy_conv2d_nchw(x, w, stride=1):
    """Cross-correlation of x (N, C, H, W) with w (F, C, kh, kw), no padding: the oracle for NHWC."""
    kh, kw = w.shape[2:]
    rows = (x.shape[2] - kh) // stride + 1
    cols = (x.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], rows, cols))
    for i in range(rows):
        for j in range(cols):
            patch = x[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,fchw->nf", patch, w)
    return out


def test_channel_last_convolution_agrees_with_numpy_hybridized_or_not():
    """MXNet stores an NHWC convolution's weight as (F, kh, kw, C); its CPU build cannot run NHWC, so
    NumPy is the oracle (the same correlation on the transposed data and weight)."""
    found = [_run(nn.Conv2D(3, 2, strides=2, layout="NHWC"), (2, 5, 5, 2), h) for h in (False, True)]
    x, weight, bias = _det((2, 5, 5, 2), 0.3), _det((3, 2, 2, 2), 1.0), _det((3,), 2.0)
    nchw = _numpy_conv2d_nchw(x.transpose(0, 3, 1, 2), weight.transpose(0, 3, 1, 2), stride=2)
    want = nchw.transpose(0, 2, 3, 1) + bias
    for result in found:
        np.testing.assert_allclose(result["out"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(found[1]["inference"], want, rtol=1e-5, atol=1e-6)
    for key in ("dx", "dweight", "dbias"):
        np.testing.assert_allclose(found[0][key], found[1][key], rtol=1e-6, atol=1e-7, err_msg=key)
    # d(sum(out * head))/d bias = the head gradient summed over batch and positions
    np.testing.assert_allclose(found[0]["dbias"], _det((2, 2, 2, 3), 2.0).sum(axis=(0, 1, 2)), rtol=1e-5)


def test_initializers_grad_req_and_activation_prefix_follow_mxnet():
    with mx.name.NameManager():
        conv = nn.Conv2D(2, 3, activation="relu", use_bias=False, weight_initializer="ones")
        plain = nn.Conv1D(2, 3, bias_initializer="ones")
    assert conv.act.prefix == "conv0_relu_"
    assert [(p.name, p.init, p.grad_req) for p in conv.collect_params().values()] == [
        ("conv0_weight", "ones", "write")
    ]
    assert [(p.name, p.init, p.grad_req) for p in plain.collect_params().values()] == [
        ("conv1_weight", None, "write"), ("conv1_bias", "ones", "write"),
    ]  # fmt: skip
    conv.initialize()
    conv(mx.nd.ones((1, 4, 3, 3)))
    np.testing.assert_array_equal(conv.weight.data().asnumpy(), np.ones((2, 4, 3, 3)))


# The operator nodes (op, name after "hybridsequential0_", "key=value" attrs) of MXNet 1.9.1's `export` of
# `_export_net()`; Ember's whole -symbol.json was byte-identical to MXNet's when this was recorded
EXPORTED_OPS = [
    ("Convolution", "conv0_fwd", "dilate=(1, 1) kernel=(3, 3) layout=NCHW no_bias=False num_filter=4 "
     "num_group=1 pad=(1, 1) stride=(1, 1)"),
    ("Activation", "conv0_relu_fwd", "act_type=relu"),
    ("BatchNorm", "batchnorm0_fwd", "axis=1 eps=1e-05 fix_gamma=False momentum=0.9 use_global_stats=False"),
    ("Pooling", "pool0_fwd", "global_pool=False kernel=(2, 2) layout=NCHW pad=(0, 0) pool_type=max "
     "pooling_convention=full stride=(2, 2)"),
    ("Pooling", "pool1_fwd", "count_include_pad=False global_pool=False kernel=(2, 2) layout=NCHW pad=(0, 0) "
     "pool_type=avg pooling_convention=valid stride=(1, 1)"),
    ("Pad", "reflectionpad2d0_pad0", "mode=reflect pad_width=(0, 0, 0, 0, 1, 1, 1, 1)"),
    ("Pooling", "pool2_fwd", "global_pool=True kernel=(1, 1) layout=NCHW pad=(0, 0) pool_type=max "
     "pooling_convention=full stride=(1, 1)"),
    ("Embedding", "embedding0_fwd", "dtype=float32 input_dim=4 output_dim=3 sparse_grad=False"),
]  # fmt: skip


def _export_net():
    with mx.name.NameManager():
        net = gluon_nn.HybridSequential()
        with net.name_scope():
            net.add(nn.Conv2D(4, 3, padding=1, activation="relu"), norm_layers.BatchNorm(),
                    nn.MaxPool2D(ceil_mode=True), nn.AvgPool2D(2, 1, count_include_pad=False),
                    nn.ReflectionPad2D(1), nn.GlobalMaxPool2D(), norm_layers.Embedding(4, 3))  # fmt: skip
    return net


def test_exported_graph_has_mxnet_op_names_and_attributes(tmp_path):
    net = _export_net()
    net.initialize()
    net.hybridize()
    assert net(mx.nd.ones((1, 2, 6, 6))).shape == (1, 4, 1, 1, 3)
    sym_file, _ = net.export(str(tmp_path / "net"))
    nodes = json.loads(open(sym_file).read())["nodes"]
    ops = [n for n in nodes if n["op"] != "null"]
    attrs = [" ".join(f"{key}={value}" for key, value in n["attrs"].items()) for n in ops]
    names = [n["name"].removeprefix("hybridsequential0_") for n in ops]
    assert [(n["op"], name, text) for n, name, text in zip(ops, names, attrs)] == EXPORTED_OPS
    assert repr(net).splitlines()[1] == (
        "  (0): Conv2D(2 -> 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), Activation(relu))"
    )


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
def test_transposed_convolutions_run_with_mxnets_shapes(hybridize):
    """Conv1D/2D/3DTranspose run on Ember's Deconvolution with MXNet 1.9.1's weight and output shapes."""
    layers = [nn.Conv1DTranspose(2, 3), nn.Conv2DTranspose(2, 3, in_channels=3), nn.Conv3DTranspose(2, 1)]
    assert [layer.weight.shape for layer in layers] == [(0, 2, 3), (3, 2, 3, 3), (0, 2, 1, 1, 1)]
    shapes = []
    for layer, rank in zip(layers, (3, 4, 5)):
        net = gluon_nn.HybridSequential()
        net.add(layer)
        net.initialize()
        if hybridize:
            net.hybridize()
        shapes.append(net(mx.nd.ones((1, 3) + (4,) * (rank - 2))).shape)
    assert shapes == [(1, 2, 6), (1, 2, 6, 6), (1, 2, 4, 4, 4)]
    assert [layer.weight.shape for layer in layers] == [(3, 2, 3), (3, 2, 3, 3), (3, 2, 1, 1, 1)]


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
def test_bad_input_names_the_layer(hybridize):
    conv = nn.Conv2D(4, 3, prefix="stem_")
    conv.initialize()
    if hybridize:
        conv.hybridize()
    message = r"^Conv2D \(stem\) expects 4-D input in layout NCHW, got shape \(1, 2, 5\)$"
    with pytest.raises(mx.MXNetError, match=message):
        conv(mx.nd.ones((1, 2, 5)))
    assert conv(mx.nd.ones((1, 2, 5, 5))).shape == (1, 4, 3, 3)
    message = r"^Conv2D \(stem\) has weights for 2 input channels, got input of shape \(1, 3, 5, 5\) with 3"
    with pytest.raises(mx.MXNetError, match=message + r" channels \(layout NCHW\)$"):
        conv(mx.nd.ones((1, 3, 5, 5)))
    last = nn.Conv3D(2, 1, layout="NDHWC", groups=2, in_channels=4)
    last.initialize()
    with pytest.raises(mx.MXNetError, match=r"weights for 4 input channels, got input of shape \(1, 2, 2, 2"):
        last(mx.nd.ones((1, 2, 2, 2, 2)))
    wrong_rank = [
        (nn.MaxPool2D(prefix="pool_"), (2, 4, 4)),
        (nn.GlobalAvgPool1D(prefix="pool_"), (2, 4)),
        (nn.ReflectionPad2D(1, prefix="pad_"), (1, 3, 3)),
    ]
    for layer, shape in wrong_rank:
        if hybridize:
            layer.hybridize()
        name = type(layer).__name__
        with pytest.raises(mx.MXNetError, match=rf"^{name} \((pool|pad)\) expects \d-D input in layout"):
            layer(mx.nd.ones(shape))


def test_constructor_checks_raise_as_mxnet():
    """MXNet asserts on layouts and kernel sizes (AssertionError); its op rejects bad groups (MXNetError)."""
    asserted = [
        (lambda: nn.Conv1D(2, 3, layout="NWC"), "Only supports 'NCW' layout for now"),
        (lambda: nn.Conv2D(2, 3, layout="NCW"), "Only supports 'NCHW' and 'NHWC' layout for now"),
        (lambda: nn.Conv3D(2, (3, 3)), "kernel_size must be a number or a list of 3 ints"),
        (lambda: nn.Conv2DTranspose(2, 3, output_padding=(1, 1, 1)),
         "output_padding must be a number or a list of 2 ints"),
        (lambda: nn.MaxPool2D(layout="NCW"), "Only NCHW and NHWC layouts are valid for 2D Pooling"),
        (lambda: nn.AvgPool1D((2, 2)), "pool_size must be a number or a list of 1 ints"),
        (lambda: nn.GlobalMaxPool3D(layout="NCHW"), "Only NCDHW and NDHWC layouts are valid for 3D Pooling"),
        (lambda: nn.ReflectionPad2D((1, 1)), "ReflectionPad2D: padding must be an int or 8 widths"),
    ]  # fmt: skip
    for make, message in asserted:
        with pytest.raises(AssertionError, match=re.escape(message)):
            make()
    rejected = [
        (lambda: nn.Conv2D(3, 2, groups=2), "Conv2D: channels=3 must be a multiple of groups=2"),
        (
            lambda: nn.Conv2D(4, 2, groups=2, in_channels=5),
            "Conv2D: in_channels=5 must be a multiple of groups",
        ),
        (lambda: nn.Conv2D(4, 2, strides=(1, 2, 3)), "Conv2D: strides (1, 2, 3) must have one entry per"),
    ]
    for make, message in rejected:
        with pytest.raises(mx.MXNetError, match=re.escape(message)):
            make()

"""Deconvolution against MXNet 1.9.1.

The values below were recorded once from the mxnet 1.9.1 wheel (CPU, float32) for the fixed inputs
`ramp(...)` builds: the output and the gradients of sum(out * head) through mx.autograd, times 32 (every
one is a multiple of 1/32, so they are exact). The target_shape cases come from MXNet's native kernel
(MXNET_MKLDNN_ENABLED=0; its oneDNN kernel rejects them), the 3-D one from oneDNN (the native kernel is
1-D and 2-D only); where both ran they agreed exactly. Checked through mx.nd + autograd and through a
compiled executor; plus shapes and errors as MXNet infers them, MXNet's default no_bias=True, and a Gluon
Conv2DTranspose layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

import ember as mx
from ember.base import MXNetError
from ember.gluon import nn

SCALE = 32  # the recorded values are MXNet's times SCALE


def ramp(shape, mod: int, shift: int, scale: float) -> np.ndarray:
    """Fixed float32 inputs: ((5 k) mod `mod` - `shift`) * `scale` over the flat positions k."""
    return (((np.arange(int(np.prod(shape))) * 5) % mod - shift) * scale).reshape(shape).astype(np.float32)


@dataclass
class Recorded:
    """One Deconvolution and what MXNet gave: data ramp(data, 7, 3, 0.25), weight ramp(weight, 5, 2, 0.5),
    bias (when `bias` names its size) ramp((bias,), 3, 1, 0.5), head gradient ramp(out, 11, 5, 0.125)."""

    name: str
    data: tuple
    weight: tuple
    bias: int | None
    attrs: dict
    out: list
    grads: list  # data, weight[, bias]

    def inputs(self) -> list[np.ndarray]:
        arrays = [ramp(self.data, 7, 3, 0.25), ramp(self.weight, 5, 2, 0.5)]
        return arrays + ([ramp((self.bias,), 3, 1, 0.5)] if self.bias else [])


RECORDED = [
    Recorded(
        "stride_pad_adj_bias",
        (1, 2, 3, 3),
        (2, 3, 3, 3),
        3,
        {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "adj": (1, 1), "num_filter": 3, "no_bias": False},
        out=[
            8,
            8,
            -16,
            -40,
            -40,
            -40,
            16,
            0,
            -32,
            -40,
            -24,
            -24,
            -8,
            -24,
            -32,
            -16,
            0,
            0,
            -16,
            -8,
            -8,
            8,
            0,
            0,
            -24,
            0,
            8,
            8,
            -16,
            -16,
            -24,
            0,
            8,
            8,
            -16,
            -16,
            40,
            40,
            16,
            -8,
            -8,
            -8,
            48,
            32,
            0,
            -8,
            8,
            8,
            24,
            8,
            0,
            16,
            32,
            32,
            16,
            24,
            24,
            40,
            32,
            32,
            8,
            32,
            40,
            40,
            16,
            16,
            8,
            32,
            40,
            40,
            16,
            16,
            24,
            24,
            0,
            -24,
            -24,
            -24,
            32,
            16,
            -16,
            -24,
            -8,
            -8,
            8,
            -8,
            -16,
            0,
            16,
            16,
            0,
            8,
            8,
            24,
            16,
            16,
            -8,
            16,
            24,
            24,
            0,
            0,
            -8,
            16,
            24,
            24,
            0,
            0,
        ],
        grads=[
            [0, -12, 16, -28, -16, 4, 8, 16, -8, 0, -12, 16, -28, -16, 4, 8, 16, -8],
            [
                -17,
                6,
                -16,
                18,
                9,
                4,
                3,
                -21,
                29,
                28,
                -5,
                -5,
                -6,
                5,
                -22,
                -10,
                -3,
                25,
                18,
                -16,
                6,
                3,
                -21,
                29,
                -1,
                4,
                -23,
                13,
                2,
                20,
                -16,
                13,
                -8,
                -1,
                19,
                -24,
                -11,
                -10,
                -14,
                8,
                -6,
                17,
                -10,
                11,
                -21,
                -13,
                11,
                -4,
                -1,
                19,
                -24,
                3,
                -8,
                15,
            ],
            [0, 4, 8],
        ],
    ),
    Recorded(
        "groups_dilate",
        (1, 4, 3, 3),
        (4, 1, 2, 2),
        None,
        {"kernel": (2, 2), "dilate": (2, 1), "num_filter": 2, "num_group": 2},
        out=[
            24,
            24,
            -24,
            -24,
            8,
            -8,
            0,
            16,
            16,
            40,
            0,
            -24,
            8,
            -8,
            0,
            16,
            -8,
            16,
            24,
            0,
            -16,
            0,
            8,
            -8,
            24,
            24,
            -24,
            -24,
            -8,
            -8,
            8,
            8,
            24,
            24,
            -24,
            -24,
            8,
            -8,
            0,
            16,
        ],
        grads=[
            [
                28,
                -8,
                0,
                -28,
                -20,
                -12,
                4,
                12,
                20,
                28,
                -8,
                0,
                -28,
                -20,
                -12,
                4,
                12,
                20,
                12,
                20,
                28,
                0,
                8,
                -28,
                -12,
                -4,
                4,
                12,
                20,
                28,
                0,
                8,
                -28,
                -12,
                -4,
                4,
            ],
            [16, 11, -13, 15, 14, -7, 11, -21, -36, 17, 3, 1, 5, 7, 21, 1],
        ],
    ),
    Recorded(
        "target_shape_1d",
        (2, 2, 4),
        (2, 1, 3),
        None,
        {"kernel": (3,), "stride": (2,), "target_shape": (8,), "num_filter": 1},
        out=[0, -24, -24, -16, 8, 48, 40, 40, -24, -16, 8, 48, 40, 0, -40, -40],
        grads=[[20, -16, -4, 8, 20, -16, -4, 8, 8, 32, 0, -32, 8, 32, 0, -32], [29, 20, -2, 36, -24, 4]],
    ),
    Recorded(
        "target_shape_odd",
        (1, 1, 3, 2),
        (1, 2, 3, 2),
        2,
        {
            "kernel": (3, 2),
            "stride": (2, 3),
            "pad": (5, 5),
            "target_shape": (6, 5),
            "num_filter": 2,
            "no_bias": False,
        },
        out=[
            8,
            8,
            -16,
            -32,
            -32,
            8,
            8,
            -16,
            -16,
            -16,
            -16,
            -16,
            -16,
            0,
            0,
            -40,
            -40,
            -16,
            -8,
            -8,
            -40,
            -40,
            -16,
            -24,
            -24,
            -40,
            -40,
            -16,
            -24,
            -24,
            40,
            40,
            16,
            0,
            0,
            40,
            40,
            16,
            16,
            16,
            16,
            16,
            16,
            32,
            32,
            -8,
            -8,
            16,
            24,
            24,
            -8,
            -8,
            16,
            8,
            8,
            -8,
            -8,
            16,
            8,
            8,
        ],
        grads=[[8, 12, -28, 0, -8, -24], [5, 4, -9, 18, 16, -12, 8, 7, -13, 14, -43, 17], [4, 8]],
    ),
    Recorded(
        "three_d",
        (1, 2, 2, 2, 2),
        (2, 2, 2, 1, 2),
        None,
        {"kernel": (2, 1, 2), "stride": (2, 1, 1), "num_filter": 2},
        out=[
            8,
            -8,
            -16,
            16,
            8,
            -8,
            8,
            -8,
            -16,
            16,
            8,
            -8,
            -32,
            -32,
            0,
            32,
            40,
            8,
            -32,
            -32,
            0,
            32,
            40,
            8,
            8,
            -8,
            -16,
            16,
            8,
            -8,
            8,
            -8,
            -16,
            16,
            8,
            -8,
            -32,
            -32,
            0,
            32,
            40,
            8,
            -32,
            -32,
            0,
            32,
            40,
            8,
        ],
        grads=[
            [12, -16, 16, -12, -16, 0, -12, 4, 12, -16, 16, -12, -16, 0, -12, 4],
            [14, 21, -10, 30, -16, 24, -40, 0, -17, 4, -1, -2, 3, 2, 19, -4],
        ],
    ),
]


def assert_recorded(got: np.ndarray, want: list, what: str) -> None:
    np.testing.assert_allclose(got * SCALE, np.reshape(want, got.shape), atol=1e-4, err_msg=what)


@pytest.mark.parametrize("case", RECORDED, ids=lambda c: c.name)
def test_nd_forward_and_autograd_match_mxnet(case):
    arrays = [mx.nd.array(a) for a in case.inputs()]
    for array in arrays:
        array.attach_grad()
    with mx.autograd.record():
        out = mx.nd.Deconvolution(*arrays, **case.attrs)
    out.backward(mx.nd.array(ramp(out.shape, 11, 5, 0.125)))
    assert_recorded(out.asnumpy(), case.out, "out")
    for array, want, name in zip(arrays, case.grads, ("data", "weight", "bias")):
        assert_recorded(array.grad.asnumpy(), want, f"grad {name}")


@pytest.mark.parametrize("case", RECORDED, ids=lambda c: c.name)
def test_compiled_executor_matches_mxnet(case, monkeypatch):
    """Forward and backward as compiled programs (the lowering and the gradient ops it composes)."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")
    symbol = mx.sym.Deconvolution(mx.sym.Variable("data"), name="dc", **case.attrs)
    executor = symbol.simple_bind(mx.cpu(), data=case.data)
    names = ("data", "dc_weight", "dc_bias")
    for name, value in zip(names, case.inputs()):
        executor.arg_dict[name][:] = value
    (out,) = executor.forward(is_train=True)
    executor.backward([mx.nd.array(ramp(out.shape, 11, 5, 0.125))])
    assert_recorded(out.asnumpy(), case.out, "out")
    for name, want in zip(names, case.grads):
        assert_recorded(executor.grad_dict[name].asnumpy(), want, f"grad {name}")


# data shape, attributes -> (weight shape, output shape), as MXNet 1.9.1's infer_shape gives them
SHAPES = [
    ((1, 2, 5, 5), {"kernel": (3, 3), "num_filter": 4}, (2, 4, 3, 3), (1, 4, 7, 7)),
    (
        (1, 2, 5, 5),
        {"kernel": (3, 3), "num_filter": 4, "stride": (2, 2), "adj": (1, 1)},
        (2, 4, 3, 3),
        (1, 4, 12, 12),
    ),
    (
        (1, 2, 5, 5),
        {"kernel": (3, 3), "num_filter": 4, "stride": (2, 2), "target_shape": (10, 11)},
        (2, 4, 3, 3),
        (1, 4, 10, 11),
    ),
    (
        (1, 1, 5, 5),
        {"kernel": (3, 3), "num_filter": 2, "stride": (2, 2), "adj": (5, 5), "target_shape": (6, 6)},
        (1, 2, 3, 3),
        (1, 2, 6, 6),
    ),
    ((1, 4, 5, 5), {"kernel": (3, 3), "num_filter": 6, "num_group": 2}, (4, 3, 3, 3), (1, 6, 7, 7)),
    ((1, 2, 5, 5, 5), {"kernel": (3, 3, 3), "num_filter": 4}, (2, 4, 3, 3, 3), (1, 4, 7, 7, 7)),
    ((1, 2, 5), {"kernel": (3,), "num_filter": 4, "dilate": (2,)}, (2, 4, 3), (1, 4, 9)),
    ((1, 2, 5, 5), {"kernel": (3, 3), "num_filter": 4, "pad": (3, 3)}, (2, 4, 3, 3), (1, 4, 1, 1)),
    ((1, 5, 5, 2), {"kernel": (3, 3), "num_filter": 4, "layout": "NHWC"}, (2, 3, 3, 4), (1, 7, 7, 4)),
]


@pytest.mark.parametrize("data, attrs, weight, out", SHAPES)
def test_inferred_shapes_match_mxnet(data, attrs, weight, out):
    args, outs, _ = mx.sym.Deconvolution(mx.sym.Variable("d"), name="dc", **attrs).infer_shape(d=data)
    assert (args, outs) == ([data, weight], [out])


# data shape, attributes -> the error (MXNet 1.9.1 rejects each of these in infer_shape)
ERRORS = [
    ((1, 2, 5, 5), {"stride": (2, 2), "adj": (2, 2)}, r"adj \(2, 2\) must be smaller than stride \(2, 2\)"),
    ((1, 1, 5, 5), {"target_shape": (6, 6)}, r"adj \(1, 1\) must be smaller than stride \(1, 1\)"),
    (
        (1, 2, 5, 5),
        {"stride": (2, 2), "target_shape": (12, 12)},
        "target_shape entry 12 is too big: input size 5 gives at most 11",
    ),
    (
        (1, 3, 5, 5),
        {"num_group": 2, "num_filter": 4},
        "the 3 input channels do not split into num_group=2 groups",
    ),
    (
        (1, 2, 5, 5),
        {"pad": (4, 4)},
        "input size 5 gives output size -1 with stride 1, pad 4 and kernel extent 3",
    ),
]


@pytest.mark.parametrize("data, attrs, message", ERRORS)
def test_bad_geometry_raises(data, attrs, message):
    symbol = mx.sym.Deconvolution(
        mx.sym.Variable("d"), name="dc", **{"kernel": (3, 3), "num_filter": 2, **attrs}
    )
    with pytest.raises(MXNetError, match=message):
        symbol.infer_shape(d=data)


def test_no_bias_defaults_to_true_and_json_keeps_mxnets_attributes():
    """Unlike Convolution, MXNet's Deconvolution has no bias unless no_bias=False; JSON as MXNet writes it."""
    plain = mx.sym.Deconvolution(mx.sym.Variable("d"), kernel=(3, 3), num_filter=3, name="dc")
    assert plain.list_arguments() == ["d", "dc_weight"]
    node = json.loads(plain.tojson())["nodes"][2]
    assert (node["op"], node["attrs"]) == ("Deconvolution", {"kernel": "(3, 3)", "num_filter": "3"})
    biased = mx.sym.Deconvolution(mx.sym.Variable("d"), kernel=(3, 3), num_filter=3, no_bias=False, name="dc")
    assert biased.list_arguments() == ["d", "dc_weight", "dc_bias"]


def test_gluon_conv2d_transpose_matches_mxnet():
    """Conv2DTranspose(4, (3, 2), strides=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 2),
    groups=2, in_channels=2) with ramp weights and bias, as MXNet 1.9.1's Gluon computes it."""
    layer = nn.Conv2DTranspose(
        4,
        (3, 2),
        strides=(2, 1),
        padding=(1, 0),
        output_padding=(1, 0),
        dilation=(1, 2),
        groups=2,
        in_channels=2,
    )
    layer.initialize()
    assert (layer.weight.shape, layer.bias.shape) == ((2, 2, 3, 2), (4,))
    layer.weight.set_data(mx.nd.array(ramp((2, 2, 3, 2), 5, 2, 0.5)))
    layer.bias.set_data(mx.nd.array(ramp((4,), 3, 1, 0.5)))
    out = layer(mx.nd.array(ramp((1, 2, 2, 2), 7, 3, 0.25))).asnumpy() * SCALE
    want = [
        [[8, -32, 8, -32], [8, -16, 8, -16], [-16, 0, -16, 0], [-16, 0, -16, 0]],
        [[40, 0, 40, 0], [40, 16, 40, 16], [16, 32, 16, 32], [16, 32, 16, 32]],
        [[-24, -8, -24, -8], [-16, 16, -16, 16], [8, 24, 8, 24], [8, 24, 8, 24]],
        [[-40, -24, -40, -24], [-32, 0, -32, 0], [-8, 8, -8, 8], [-8, 8, -8, 8]],
    ]
    np.testing.assert_allclose(out, [want], atol=1e-4)

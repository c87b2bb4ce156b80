"""Inception V3 (Szegedy et al. 2015) as in MXNet 1.9.1's model zoo: same Blocks, prefixes and parameter
names. The final 8x8 average pool expects 299x299 inputs.
"""

from __future__ import annotations

from ....context import cpu
from ... import nn
from ...block import HybridBlock
from ...contrib.nn import HybridConcurrent
from ..model_store import DEFAULT_ROOT, load_pretrained

__all__ = ["Inception3", "inception_v3"]

_CONV_SETTINGS = ("channels", "kernel_size", "strides", "padding")


def _basic_conv(**kwargs):
    """Bias-free Conv2D, BatchNorm (epsilon 1e-3) and ReLU."""
    out = nn.HybridSequential(prefix="")
    out.add(nn.Conv2D(use_bias=False, **kwargs), nn.BatchNorm(epsilon=0.001), nn.Activation("relu"))
    return out


def _branch(pool, *convs):
    """An optional pool ('avg': 3x3/1 pad 1, 'max': 3x3/2) then basic convs, each given as
    (channels, kernel_size, strides, padding) with None for the Conv2D default."""
    out = nn.HybridSequential(prefix="")
    if pool == "avg":
        out.add(nn.AvgPool2D(pool_size=3, strides=1, padding=1))
    elif pool == "max":
        out.add(nn.MaxPool2D(pool_size=3, strides=2))
    for setting in convs:
        out.add(
            _basic_conv(**{key: value for key, value in zip(_CONV_SETTINGS, setting) if value is not None})
        )
    return out


def _concurrent(prefix, *branches):
    """Branches (built inside the block's name scope by the callables given) concatenated on channels."""
    out = HybridConcurrent(axis=1, prefix=prefix)
    with out.name_scope():
        for make in branches:
            out.add(make())
    return out


def _split(first, second):
    """Two branches side by side in a prefix-less HybridConcurrent."""
    out = HybridConcurrent(axis=1, prefix="")
    out.add(first, second)
    return out


def _block_a(pool_features, prefix):
    """35x35 module: 1x1; 1x1-5x5; 1x1-3x3-3x3; avg pool-1x1."""
    return _concurrent(
        prefix,
        lambda: _branch(None, (64, 1, None, None)),
        lambda: _branch(None, (48, 1, None, None), (64, 5, None, 2)),
        lambda: _branch(None, (64, 1, None, None), (96, 3, None, 1), (96, 3, None, 1)),
        lambda: _branch("avg", (pool_features, 1, None, None)),
    )


def _block_b(prefix):
    """Grid reduction 35 -> 17: 3x3/2; 1x1-3x3-3x3/2; max pool."""
    return _concurrent(
        prefix,
        lambda: _branch(None, (384, 3, 2, None)),
        lambda: _branch(None, (64, 1, None, None), (96, 3, None, 1), (96, 3, 2, None)),
        lambda: _branch("max"),
    )


def _block_c(c7, prefix):
    """17x17 module with factorized 7x7 convolutions of `c7` channels."""
    return _concurrent(
        prefix,
        lambda: _branch(None, (192, 1, None, None)),
        lambda: _branch(None, (c7, 1, None, None), (c7, (1, 7), None, (0, 3)), (192, (7, 1), None, (3, 0))),
        lambda: _branch(
            None,
            (c7, 1, None, None),
            (c7, (7, 1), None, (3, 0)),
            (c7, (1, 7), None, (0, 3)),
            (c7, (7, 1), None, (3, 0)),
            (192, (1, 7), None, (0, 3)),
        ),
        lambda: _branch("avg", (192, 1, None, None)),
    )


def _block_d(prefix):
    """Grid reduction 17 -> 8: 1x1-3x3/2; 1x1-1x7-7x1-3x3/2; max pool."""
    return _concurrent(
        prefix,
        lambda: _branch(None, (192, 1, None, None), (320, 3, 2, None)),
        lambda: _branch(
            None,
            (192, 1, None, None),
            (192, (1, 7), None, (0, 3)),
            (192, (7, 1), None, (3, 0)),
            (192, 3, 2, None),
        ),
        lambda: _branch("max"),
    )


def _expanded(*head):
    """A stem branch followed by parallel 1x3 and 3x1 convolutions (the 8x8 module's wide branches)."""
    out = nn.HybridSequential(prefix="")
    out.add(_branch(None, *head))
    out.add(_split(_branch(None, (384, (1, 3), None, (0, 1))), _branch(None, (384, (3, 1), None, (1, 0)))))
    return out


def _block_e(prefix):
    """8x8 module: 1x1; 1x1 then 1x3|3x1; 1x1-3x3 then 1x3|3x1; avg pool-1x1."""
    return _concurrent(
        prefix,
        lambda: _branch(None, (320, 1, None, None)),
        lambda: _expanded((384, 1, None, None)),
        lambda: _expanded((448, 1, None, None), (384, 3, None, 1)),
        lambda: _branch("avg", (192, 1, None, None)),
    )


class Inception3(HybridBlock):
    """Inception V3 (without the auxiliary classifier, as MXNet's model zoo)."""

    def __init__(self, classes=1000, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(
                _basic_conv(channels=32, kernel_size=3, strides=2),
                _basic_conv(channels=32, kernel_size=3),
                _basic_conv(channels=64, kernel_size=3, padding=1),
                nn.MaxPool2D(pool_size=3, strides=2),
                _basic_conv(channels=80, kernel_size=1),
                _basic_conv(channels=192, kernel_size=3),
                nn.MaxPool2D(pool_size=3, strides=2),
            )
            self.features.add(_block_a(32, "A1_"), _block_a(64, "A2_"), _block_a(64, "A3_"), _block_b("B_"))
            self.features.add(
                _block_c(128, "C1_"), _block_c(160, "C2_"), _block_c(160, "C3_"), _block_c(192, "C4_")
            )
            self.features.add(_block_d("D_"), _block_e("E1_"), _block_e("E2_"))
            self.features.add(nn.AvgPool2D(pool_size=8), nn.Dropout(0.5))
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def inception_v3(pretrained=False, ctx=cpu(), root=DEFAULT_ROOT, **kwargs):
    """Inception V3; `pretrained` loads `inceptionv3` from `root`."""
    net = Inception3(**kwargs)
    if pretrained:
        load_pretrained(net, "inceptionv3", ctx, root)
    return net

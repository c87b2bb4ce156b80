"""SqueezeNet 1.0 and 1.1 (Iandola et al. 2016) as in MXNet 1.9.1's model zoo: same Blocks, prefixes and
parameter names. The final 13x13 average pool expects 224x224 inputs.
"""

from __future__ import annotations

from ....context import cpu
from ... import nn
from ...block import HybridBlock
from ...contrib.nn import HybridConcurrent
from ...errors import check
from ..model_store import DEFAULT_ROOT, load_pretrained

__all__ = ["SqueezeNet", "squeezenet1_0", "squeezenet1_1"]

_POOL = "pool"
# version -> (stem channels, stem kernel, then fire modules (squeeze, expand 1x1, expand 3x3) and pools)
_LAYOUT = {
    "1.0": (
        96,
        7,
        [
            _POOL,
            (16, 64, 64),
            (16, 64, 64),
            (32, 128, 128),
            _POOL,
            (32, 128, 128),
            (48, 192, 192),
            (48, 192, 192),
            (64, 256, 256),
            _POOL,
            (64, 256, 256),
        ],
    ),
    "1.1": (
        64,
        3,
        [
            _POOL,
            (16, 64, 64),
            (16, 64, 64),
            _POOL,
            (32, 128, 128),
            (32, 128, 128),
            _POOL,
            (48, 192, 192),
            (48, 192, 192),
            (64, 256, 256),
            (64, 256, 256),
        ],
    ),
}


def _fire_conv(channels, kernel_size, padding=0):
    """Conv2D + ReLU in a prefix-less HybridSequential."""
    out = nn.HybridSequential(prefix="")
    out.add(nn.Conv2D(channels, kernel_size, padding=padding), nn.Activation("relu"))
    return out


def _fire(squeeze_channels, expand1x1_channels, expand3x3_channels):
    """A fire module: a 1x1 squeeze, then 1x1 and 3x3 expansions concatenated on channels."""
    out = nn.HybridSequential(prefix="")
    out.add(_fire_conv(squeeze_channels, 1))
    paths = HybridConcurrent(axis=1, prefix="")
    paths.add(_fire_conv(expand1x1_channels, 1), _fire_conv(expand3x3_channels, 3, 1))
    out.add(paths)
    return out


class SqueezeNet(HybridBlock):
    """SqueezeNet `version` '1.0' or '1.1'."""

    def __init__(self, version, classes=1000, **kwargs):
        super().__init__(**kwargs)
        check(version in _LAYOUT, f"Unsupported SqueezeNet version {version}:1.0 or 1.1 expected")
        stem_channels, stem_kernel, layout = _LAYOUT[version]
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(
                nn.Conv2D(stem_channels, kernel_size=stem_kernel, strides=2), nn.Activation("relu")
            )
            for item in layout:
                if item == _POOL:
                    self.features.add(nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True))
                else:
                    self.features.add(_fire(*item))
            self.features.add(nn.Dropout(0.5))
            self.output = nn.HybridSequential(prefix="")
            self.output.add(
                nn.Conv2D(classes, kernel_size=1), nn.Activation("relu"), nn.AvgPool2D(13), nn.Flatten()
            )

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def get_squeezenet(version, pretrained=False, ctx=cpu(), root=DEFAULT_ROOT, **kwargs):
    """SqueezeNet `version`; `pretrained` loads `squeezenet<version>` from `root`."""
    net = SqueezeNet(version, **kwargs)
    if pretrained:
        load_pretrained(net, f"squeezenet{version}", ctx, root)
    return net


def squeezenet1_0(**kwargs):
    """SqueezeNet 1.0."""
    return get_squeezenet("1.0", **kwargs)


def squeezenet1_1(**kwargs):
    """SqueezeNet 1.1 (about 2.4x less computation than 1.0, same accuracy)."""
    return get_squeezenet("1.1", **kwargs)

"""VGG 11/13/16/19, with or without BatchNorm (Simonyan & Zisserman 2014), as in MXNet 1.9.1's model
zoo: same Blocks, prefixes, parameter names and initializers.
"""

from __future__ import annotations

from ....context import cpu
from ....initializer import Xavier
from ... import nn
from ...block import HybridBlock
from ...errors import check
from ..model_store import DEFAULT_ROOT, load_pretrained

__all__ = [
    "VGG",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "get_vgg",
]


class VGG(HybridBlock):
    """VGG: stage i has `layers[i]` 3x3 convolutions of `filters[i]` channels then a 2x2 max pool; then two
    4096-unit Dense+Dropout layers and the `classes` output."""

    def __init__(self, layers, filters, classes=1000, batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        check(len(layers) == len(filters), "VGG needs as many filters entries as layers")
        with self.name_scope():
            self.features = self._make_features(layers, filters, batch_norm)
            for _ in range(2):
                self.features.add(
                    nn.Dense(4096, activation="relu", weight_initializer="normal", bias_initializer="zeros"),
                    nn.Dropout(rate=0.5),
                )
            self.output = nn.Dense(classes, weight_initializer="normal", bias_initializer="zeros")

    def _make_features(self, layers, filters, batch_norm):
        """The convolutional stages, in a HybridSequential with no prefix of its own."""
        features = nn.HybridSequential(prefix="")
        for num_convs, channels in zip(layers, filters):
            for _ in range(num_convs):
                features.add(
                    nn.Conv2D(
                        channels,
                        kernel_size=3,
                        padding=1,
                        bias_initializer="zeros",
                        weight_initializer=Xavier(rnd_type="gaussian", factor_type="out", magnitude=2),
                    )
                )
                if batch_norm:
                    features.add(nn.BatchNorm())
                features.add(nn.Activation("relu"))
            features.add(nn.MaxPool2D(strides=2))
        return features

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


# num_layers -> (convolutions per stage, channels per stage)
vgg_spec = {
    11: ([1, 1, 2, 2, 2], [64, 128, 256, 512, 512]),
    13: ([2, 2, 2, 2, 2], [64, 128, 256, 512, 512]),
    16: ([2, 2, 3, 3, 3], [64, 128, 256, 512, 512]),
    19: ([2, 2, 4, 4, 4], [64, 128, 256, 512, 512]),
}


def get_vgg(num_layers, pretrained=False, ctx=cpu(), root=DEFAULT_ROOT, **kwargs):
    """VGG with `num_layers` (11, 13, 16, 19); `batch_norm=True` adds BatchNorm; `pretrained` loads
    `vgg<n>[_bn]` from `root`."""
    check(num_layers in vgg_spec, f"Invalid number of layers: {num_layers}. Options are {sorted(vgg_spec)}")
    net = VGG(*vgg_spec[num_layers], **kwargs)
    if pretrained:
        load_pretrained(net, f"vgg{num_layers}{'_bn' if kwargs.get('batch_norm') else ''}", ctx, root)
    return net


def vgg11(**kwargs):
    """VGG-11 (`get_vgg(11)`)."""
    return get_vgg(11, **kwargs)


def vgg13(**kwargs):
    """VGG-13 (`get_vgg(13)`)."""
    return get_vgg(13, **kwargs)


def vgg16(**kwargs):
    """VGG-16 (`get_vgg(16)`)."""
    return get_vgg(16, **kwargs)


def vgg19(**kwargs):
    """VGG-19 (`get_vgg(19)`)."""
    return get_vgg(19, **kwargs)


def vgg11_bn(**kwargs):
    """VGG-11 with BatchNorm."""
    return get_vgg(11, batch_norm=True, **kwargs)


def vgg13_bn(**kwargs):
    """VGG-13 with BatchNorm."""
    return get_vgg(13, batch_norm=True, **kwargs)


def vgg16_bn(**kwargs):
    """VGG-16 with BatchNorm."""
    return get_vgg(16, batch_norm=True, **kwargs)


def vgg19_bn(**kwargs):
    """VGG-19 with BatchNorm."""
    return get_vgg(19, batch_norm=True, **kwargs)

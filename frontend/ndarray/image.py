"""`mx.nd.image`: MXNet 1.9.1's image operators on HWC (or NHWC) arrays.

`to_tensor`, `normalize`, `flip_left_right` and `flip_top_bottom` are built from registry ops; like
MXNet's they take images of 1 or 3 channels. Resizing, cropping with bounds checks and the random
augmentations are not in Ember: each raises MXNetError saying so.
"""

from __future__ import annotations

import numpy as np

from ember.runtime.errors import MXNetError

from .ndarray import NDArray
from .register import op_function
from .unsupported import unsupported_function

NOT_IN_REGISTRY = "image resizing, cropping and random augmentation are not in Ember's op registry"
UNSUPPORTED = (
    "adjust_lighting", "crop", "random_brightness", "random_color_jitter", "random_contrast",
    "random_flip_left_right", "random_flip_top_bottom", "random_hue", "random_lighting", "random_saturation",
    "resize",
)  # fmt: skip
globals().update((name, unsupported_function(name, NOT_IN_REGISTRY, module="image")) for name in UNSUPPORTED)


def _check_image(data: NDArray, op: str, channel_axis: int, layout: str) -> None:
    if data.ndim not in (3, 4) or data.shape[channel_axis] not in (1, 3):
        raise MXNetError(
            f"image.{op}: the input must be {layout} (or N{layout}) with 1 or 3 channels; "
            f"got shape {data.shape}"
        )


def to_tensor(data: NDArray, out=None, name=None, **kwargs) -> NDArray:
    """An HWC (NHWC) image of values in [0, 255] as a CHW (NCHW) float32 tensor of values in [0, 1]."""
    _check_image(data, "to_tensor", -1, "HWC")
    axes = (2, 0, 1) if data.ndim == 3 else (0, 3, 1, 2)
    scaled = op_function("Cast")(data, dtype="float32") / 255.0
    return op_function("transpose")(scaled, axes=axes, out=out)


def normalize(data: NDArray, mean=0.0, std=1.0, out=None, name=None, **kwargs) -> NDArray:
    """(data - mean) / std per channel of a CHW (NCHW) tensor; `mean` and `std` are a number, or one
    value per channel (1 or 3)."""
    _check_image(data, "normalize", -3, "CHW")
    channels = data.shape[-3]
    shape = (channels, 1, 1)
    mean_array = _per_channel(mean, channels, "mean", data)
    std_array = _per_channel(std, channels, "std", data)
    centered = op_function("broadcast_sub")(data, mean_array.reshape(shape))
    return op_function("broadcast_div")(centered, std_array.reshape(shape), out=out)


def _per_channel(value, channels: int, what: str, data: NDArray) -> NDArray:
    values = np.atleast_1d(np.asarray(value, dtype=np.dtype(data.dtype)))
    if values.size not in (1, channels):
        raise MXNetError(
            f"image.normalize: {what} must have either 1 or {channels} elements, got {values.size}"
        )
    return NDArray(np.ascontiguousarray(np.broadcast_to(values, (channels,))), data.context)


def flip_left_right(data: NDArray, out=None, name=None, **kwargs) -> NDArray:
    """The HWC (NHWC) image mirrored left to right (its W axis reversed)."""
    _check_image(data, "flip_left_right", -1, "HWC")
    return op_function("reverse")(data, axis=data.ndim - 2, out=out)


def flip_top_bottom(data: NDArray, out=None, name=None, **kwargs) -> NDArray:
    """The HWC (NHWC) image upside down (its H axis reversed)."""
    _check_image(data, "flip_top_bottom", -1, "HWC")
    return op_function("reverse")(data, axis=data.ndim - 3, out=out)

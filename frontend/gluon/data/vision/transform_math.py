"""The arithmetic of MXNet 1.9.1's image transforms (gluon.data.vision.transforms, mx.nd.image, mx.image),
as plain functions; the transform Blocks call these.

Each function takes an NDArray or a NumPy array and returns the same kind (an NDArray on the input's
context); the arithmetic runs in NumPy, so nothing is recorded for autograd. Images are HWC (or NHWC
where MXNet's op takes a batch); tensors are CHW (NCHW). Random variants draw from the explicit `rng`
they take (a NumPy Generator), except interp=10, a random interpolation, which draws from `ember.random`
as mx.image draws from Python's `random`. Resizing implements OpenCV's nearest (interp 0) and bilinear
(interp 1, half-pixel centres) rules without OpenCV: float images match OpenCV's float arithmetic, uint8
images round the exact value half up, where OpenCV's fixed-point arithmetic can differ by 1. Bicubic (2),
area (3) and Lanczos (4) need OpenCV and raise MXNetError.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ember import random as _random
from ember.ndarray import NDArray
from ember.runtime.errors import MXNetError

__all__ = [
    "to_tensor", "normalize", "cast", "flip_left_right", "flip_top_bottom", "crop", "fixed_crop",
    "scale_down", "center_crop", "resize", "imresize", "random_flip_left_right", "random_flip_top_bottom",
    "random_crop", "random_size_crop", "random_brightness", "random_contrast",
]  # fmt: skip

NEAREST, BILINEAR, BICUBIC, AREA, LANCZOS, AUTO, RANDOM = 0, 1, 2, 3, 4, 9, 10
NEEDS_OPENCV = {BICUBIC: "bicubic", AREA: "area", LANCZOS: "Lanczos"}
GRAY_COEFFICIENTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # MXNet's RGB -> grey weights


def _unwrap(data):
    """(NumPy array of `data`, function that turns a NumPy result back into `data`'s kind)."""
    if isinstance(data, NDArray):
        return data.asnumpy(), lambda out: NDArray(np.ascontiguousarray(out), data.context)
    return np.asarray(data), lambda out: out


def _check_ndim(array: np.ndarray, op: str, layout: str) -> None:
    if array.ndim not in (3, 4):
        raise MXNetError(f"{op}: the input must be {layout} or N{layout}; got shape {array.shape}")


def _saturate(values: np.ndarray, dtype) -> np.ndarray:
    """float results as `dtype`, as MXNet's image ops store them: clipped to [0, 255] and truncated for
    uint8, converted as they are for other types."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.clip(values, 0, 255).astype(np.uint8)
    return values.astype(dtype)


def to_tensor(data):
    """An HWC (NHWC) image of values in [0, 255] as a CHW (NCHW) float32 tensor of values in [0, 1]."""
    array, wrap = _unwrap(data)
    _check_ndim(array, "to_tensor", "HWC")
    axes = (2, 0, 1) if array.ndim == 3 else (0, 3, 1, 2)
    return wrap(np.transpose(array.astype(np.float32) / np.float32(255), axes))


def _per_channel(value, channels: int, what: str) -> np.ndarray:
    values = np.atleast_1d(np.asarray(value, dtype=np.float32)).ravel()
    if values.size not in (1, channels):
        raise MXNetError(f"normalize: {what} must have either 1 or {channels} elements, got {values.size}")
    return np.broadcast_to(values, (channels,)).reshape(channels, 1, 1)


def normalize(data, mean=0.0, std=1.0):
    """(data - mean) / std per channel of a CHW (NCHW) tensor with 1 or 3 channels; `mean` and `std`
    are numbers or one value per channel. Float input keeps its type; other input becomes float32."""
    array, wrap = _unwrap(data)
    _check_ndim(array, "normalize", "CHW")
    channels = array.shape[-3]
    if channels not in (1, 3):
        raise MXNetError(f"normalize: the input must have 1 or 3 channels (axis -3); got shape {array.shape}")
    dtype = array.dtype if np.issubdtype(array.dtype, np.floating) else np.dtype(np.float32)
    centered = array.astype(np.float32) - _per_channel(mean, channels, "mean")
    return wrap((centered / _per_channel(std, channels, "std")).astype(dtype))


def cast(data, dtype="float32"):
    """`data` converted to `dtype`."""
    array, wrap = _unwrap(data)
    return wrap(array.astype(np.dtype(dtype)))


def flip_left_right(data):
    """The HWC (NHWC) image mirrored left to right (its W axis reversed)."""
    array, wrap = _unwrap(data)
    _check_ndim(array, "flip_left_right", "HWC")
    return wrap(np.flip(array, axis=array.ndim - 2))


def flip_top_bottom(data):
    """The HWC (NHWC) image upside down (its H axis reversed)."""
    array, wrap = _unwrap(data)
    _check_ndim(array, "flip_top_bottom", "HWC")
    return wrap(np.flip(array, axis=array.ndim - 3))


def crop(data, x, y, width, height):
    """The `width` x `height` region of an HWC (NHWC) image whose top-left corner is column `x`, row `y`
    (mx.nd.image.crop); the region must lie inside the image."""
    array, wrap = _unwrap(data)
    _check_ndim(array, "crop", "HWC")
    rows, cols = array.shape[-3], array.shape[-2]
    if min(x, y) < 0 or width <= 0 or height <= 0:
        raise MXNetError(
            f"crop: x and y must be >= 0 and width, height > 0; got x={x} y={y} width={width} height={height}"
        )
    if x + width > cols:
        raise MXNetError(
            f"crop: cropped image width out of bound: x + width = {x + width} > image width {cols}"
        )
    if y + height > rows:
        raise MXNetError(
            f"crop: cropped image height out of bound: y + height = {y + height} > image height {rows}"
        )
    return wrap(array[..., y : y + height, x : x + width, :])


def _resolve_interp(interp: int, sizes: tuple = ()) -> int:
    """mx.image's interpolation code: 9 chooses by the resize direction (bicubic to enlarge, area to
    shrink, bilinear otherwise), 10 at random; other codes are OpenCV's."""
    if interp == AUTO:
        if not sizes:
            return BICUBIC
        old_h, old_w, new_h, new_w = sizes
        if new_h > old_h and new_w > old_w:
            return BICUBIC
        if new_h < old_h and new_w < old_w:
            return AREA
        return BILINEAR
    if interp == RANDOM:
        return int(_random.generator().integers(0, 5))
    if interp not in (NEAREST, BILINEAR, BICUBIC, AREA, LANCZOS):
        raise MXNetError(f"Unknown interp method {interp}")
    return interp


def _nearest_indices(src: int, dst: int) -> np.ndarray:
    """OpenCV's INTER_NEAREST source index of each destination index: floor(d * src / dst)."""
    step = 1.0 / (dst / src)
    return np.minimum(np.floor(np.arange(dst) * step).astype(np.int64), src - 1)


def _linear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR taps along one axis: (left index, right index, right weight as float32),
    half-pixel centres, clamped at both borders."""
    scale = 1.0 / (dst / src)
    position = ((np.arange(dst) + 0.5) * scale - 0.5).astype(np.float32)
    left = np.floor(position).astype(np.int64)
    weight = position - left.astype(np.float32)
    below = left < 0
    left[below], weight[below] = 0, 0
    above = left >= src - 1
    left[above], weight[above] = src - 1, 0
    return left, np.minimum(left + 1, src - 1), weight


def _resize_nearest(image: np.ndarray, width: int, height: int) -> np.ndarray:
    rows = _nearest_indices(image.shape[0], height)
    cols = _nearest_indices(image.shape[1], width)
    return image[rows][:, cols]


def _resize_bilinear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    left, right, wx = _linear_taps(image.shape[1], width)
    top, bottom, wy = _linear_taps(image.shape[0], height)
    values = image.astype(np.float32)
    wx, wy = wx[None, :, None], wy[:, None, None]
    one = np.float32(1)
    rows = values[:, left] * (one - wx) + values[:, right] * wx  # horizontal pass first, as OpenCV
    out = rows[top] * (one - wy) + rows[bottom] * wy
    if image.dtype == np.uint8:
        return np.clip(np.floor(out + np.float32(0.5)), 0, 255).astype(np.uint8)
    return out.astype(image.dtype)


RESIZERS = {NEAREST: _resize_nearest, BILINEAR: _resize_bilinear}


def _resize_hwc(image: np.ndarray, width: int, height: int, interp: int) -> np.ndarray:
    """One HWC image resized to `width` x `height` with a resolved interpolation code."""
    method = _resolve_interp(interp, (image.shape[0], image.shape[1], height, width))
    if method in NEEDS_OPENCV:
        raise MXNetError(
            f"resize: {NEEDS_OPENCV[method]} interpolation (interp={method}) needs OpenCV, which Ember does "
            f"not use; interp=0 (nearest) and interp=1 (bilinear) are available"
        )
    return RESIZERS[method](image, width, height)


def _resized_size(rows: int, cols: int, size, keep_ratio: bool) -> tuple[int, int]:
    """(width, height) that mx.nd.image.resize gives an image of `rows` x `cols`."""
    sizes = (size,) if isinstance(size, numbers.Integral) else tuple(size)
    if len(sizes) not in (1, 2) or min(sizes) <= 0:
        raise MXNetError(f"resize: size must be a positive int or (width, height); got {size!r}")
    if len(sizes) == 2:
        return int(sizes[0]), int(sizes[1])
    if not keep_ratio:
        return int(sizes[0]), int(sizes[0])
    if rows > cols:
        return int(sizes[0]), rows * int(sizes[0]) // cols
    return cols * int(sizes[0]) // rows, int(sizes[0])


def resize(data, size, keep_ratio=False, interp=BILINEAR):
    """An HWC (NHWC) image resized (mx.nd.image.resize): `size` is (width, height), or one int for a
    square - or, with `keep_ratio`, for the shorter side, the longer scaled in proportion (rounded down)."""
    array, wrap = _unwrap(data)
    _check_ndim(array, "resize", "HWC")
    width, height = _resized_size(array.shape[-3], array.shape[-2], size, keep_ratio)
    if array.ndim == 3:
        return wrap(_resize_hwc(array, width, height, interp))
    return wrap(np.stack([_resize_hwc(image, width, height, interp) for image in array]))


def imresize(src, w, h, interp=BILINEAR):
    """An HWC image resized to width `w` and height `h` (mx.image.imresize)."""
    array, wrap = _unwrap(src)
    if array.ndim != 3:
        raise MXNetError(f"imresize: the input must be HWC; got shape {array.shape}")
    return wrap(_resize_hwc(array, int(w), int(h), interp))


def _square(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, numbers.Integral) else tuple(size)


def scale_down(src_size, size):
    """`size` (w, h) scaled down, keeping its ratio, until it fits in `src_size` (w, h) (mx.image)."""
    w, h = size
    sw, sh = src_size
    if sh < h:
        w, h = float(w * sh) / h, sh
    if sw < w:
        w, h = sw, float(h * sw) / w
    return int(w), int(h)


def fixed_crop(src, x0, y0, w, h, size=None, interp=BICUBIC):
    """The `w` x `h` region at (`x0`, `y0`) of an HWC image, resized to `size` (w, h) when given and
    different (mx.image.fixed_crop; its default interp is 2)."""
    out = crop(src, x0, y0, w, h)
    if size is not None and (w, h) != tuple(size):
        out = imresize(out, size[0], size[1], interp=_resolve_interp(interp, (h, w, size[1], size[0])))
    return out


def _hw(data) -> tuple[int, int]:
    shape = data.shape
    if len(shape) != 3:
        raise MXNetError(f"the input must be an HWC image; got shape {tuple(shape)}")
    return shape[0], shape[1]


def center_crop(src, size, interp=BICUBIC):
    """(image, (x0, y0, w, h)): the centred region of the HWC image with `size`'s ratio (size scaled
    down to fit), resized to `size` (w, h, or one int for a square) - mx.image.center_crop."""
    size = _square(size)
    h, w = _hw(src)
    new_w, new_h = scale_down((w, h), size)
    x0, y0 = int((w - new_w) / 2), int((h - new_h) / 2)
    return fixed_crop(src, x0, y0, new_w, new_h, size, interp), (x0, y0, new_w, new_h)


def random_flip_left_right(data, p=0.5, *, rng: np.random.Generator):
    """The image mirrored left to right with probability `p`, else unchanged."""
    return flip_left_right(data) if rng.random() < p else data


def random_flip_top_bottom(data, p=0.5, *, rng: np.random.Generator):
    """The image upside down with probability `p`, else unchanged."""
    return flip_top_bottom(data) if rng.random() < p else data


def random_crop(src, size, interp=BICUBIC, *, rng: np.random.Generator):
    """(image, (x0, y0, w, h)): a region of `size`'s ratio at a uniformly drawn place, resized to
    `size` (mx.image.random_crop)."""
    size = _square(size)
    h, w = _hw(src)
    new_w, new_h = scale_down((w, h), size)
    x0 = int(rng.integers(0, w - new_w + 1))
    y0 = int(rng.integers(0, h - new_h + 1))
    return fixed_crop(src, x0, y0, new_w, new_h, size, interp), (x0, y0, new_w, new_h)


def random_size_crop(src, size, area, ratio, interp=BICUBIC, *, rng: np.random.Generator):
    """(image, (x0, y0, w, h)): a region covering a random fraction `area` (a number: [area, 1]; or
    (min, max)) of the image with a random aspect ratio (log-uniform in `ratio`), resized to `size`;
    after 10 draws that do not fit, the centre crop (mx.image.random_size_crop, as RandomResizedCrop)."""
    size = _square(size)
    h, w = _hw(src)
    area = (area, 1.0) if isinstance(area, numbers.Number) else area
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = rng.uniform(area[0], area[1]) * h * w
        new_ratio = math.exp(rng.uniform(*log_ratio))
        new_w = int(round(math.sqrt(target_area * new_ratio)))
        new_h = int(round(math.sqrt(target_area / new_ratio)))
        if new_w <= w and new_h <= h:
            x0 = int(rng.integers(0, w - new_w + 1))
            y0 = int(rng.integers(0, h - new_h + 1))
            return fixed_crop(src, x0, y0, new_w, new_h, size, interp), (x0, y0, new_w, new_h)
    return center_crop(src, size, interp)


def random_brightness(data, brightness, *, rng: np.random.Generator):
    """The image times a factor drawn uniformly from [max(0, 1 - brightness), 1 + brightness]
    (RandomBrightness); uint8 results are clipped to [0, 255] and truncated."""
    array, wrap = _unwrap(data)
    alpha = np.float32(rng.uniform(max(0.0, 1.0 - brightness), 1.0 + brightness))
    return wrap(_saturate(array.astype(np.float32) * alpha, array.dtype))


def random_contrast(data, contrast, *, rng: np.random.Generator):
    """The HWC RGB image blended with its mean grey level: `x * alpha + (1 - alpha) * mean_grey`, alpha
    drawn uniformly from [max(0, 1 - contrast), 1 + contrast] (RandomContrast); grey is
    0.299 R + 0.587 G + 0.114 B."""
    array, wrap = _unwrap(data)
    if array.ndim != 3 or array.shape[2] != 3:
        raise MXNetError(f"random_contrast: the input must be an HWC RGB image; got shape {array.shape}")
    alpha = np.float32(rng.uniform(max(0.0, 1.0 - contrast), 1.0 + contrast))
    values = array.astype(np.float32)
    mean_grey = np.float32((values @ GRAY_COEFFICIENTS).sum() / np.float32(array.shape[0] * array.shape[1]))
    return wrap(_saturate(values * alpha + (np.float32(1) - alpha) * mean_grey, array.dtype))

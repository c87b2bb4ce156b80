"""`mx.gluon.data.vision.transforms` (MXNet 1.9.1): image transforms as Blocks, for `Dataset.transform`.

Each transform calls the arithmetic in `transform_math.py` (NumPy, nothing recorded); the random ones
draw from Ember's generator (`ember.random`), so `mx.random.seed` makes them reproducible. `Compose`
chains transforms. Left out, each raising MXNetError when built: the colour transforms whose exact
formulas are not settled here (saturation, hue, lighting, colour jitter) and rotations.
"""

from __future__ import annotations

from .... import random as _random
from ....base import MXNetError, numeric_types  # noqa: F401 (MXNet's module exports it)
from ...block import Block, HybridBlock  # noqa: F401
from ...nn import HybridSequential, Sequential  # noqa: F401
from . import transform_math as tm


def is_np_array() -> bool:
    """Whether NumPy-array semantics are on: never in Ember (MXNet 1.x's legacy NDArray only)."""
    return False


class Compose(Sequential):
    """Applies `transforms` (a list of Blocks or callables) in order."""

    def __init__(self, transforms):
        super().__init__()
        with self.name_scope():
            for transform in transforms:
                self.add(transform if isinstance(transform, Block) else _Callable(transform))


class _Callable(Block):
    """A plain function as a transform Block."""

    def __init__(self, function):
        super().__init__()
        self._function = function

    def forward(self, *args):
        return self._function(*args)


class _Transform(Block):
    """A transform whose forward is `transform_math.<function>(x, ...)` (MXNet: a plain Block)."""

    def forward(self, x):
        return self._apply(x)


class _HybridTransform(HybridBlock):
    """A transform MXNet makes a HybridBlock; here it computes in NumPy (`transform_math`) on NDArrays
    and its `forward` never traces: hybridizing it changes nothing."""

    def forward(self, x, *args):
        return self._apply(x)

    def hybrid_forward(self, F, x):
        return self._apply(x)


class Cast(_HybridTransform):
    """Converts to `dtype`."""

    def __init__(self, dtype="float32"):
        super().__init__()
        self._dtype = dtype

    def _apply(self, x):
        return tm.cast(x, self._dtype)


class ToTensor(_HybridTransform):
    """HWC uint8 image(s) in [0, 255] -> CHW float32 in [0, 1] (NHWC -> NCHW for batches)."""

    def __init__(self):
        super().__init__()

    def _apply(self, x):
        return tm.to_tensor(x)


class Normalize(_HybridTransform):
    """(x - mean) / std per channel of a CHW tensor."""

    def __init__(self, mean=0.0, std=1.0):
        super().__init__()
        self._mean, self._std = mean, std

    def _apply(self, x):
        return tm.normalize(x, self._mean, self._std)


class RandomFlipLeftRight(_HybridTransform):
    """Mirrors left to right with probability 0.5."""

    def __init__(self):
        super().__init__()

    def _apply(self, x):
        return tm.random_flip_left_right(x, rng=_random.generator())


class RandomFlipTopBottom(_HybridTransform):
    """Flips upside down with probability 0.5."""

    def __init__(self):
        super().__init__()

    def _apply(self, x):
        return tm.random_flip_top_bottom(x, rng=_random.generator())


class Resize(_HybridTransform):
    """Resizes an HWC image to `size` ((w, h) or one int; `keep_ratio` keeps the aspect ratio)."""

    def __init__(self, size, keep_ratio=False, interpolation=1):
        super().__init__()
        self._size, self._keep_ratio, self._interpolation = size, keep_ratio, interpolation

    def _apply(self, x):
        return tm.resize(x, self._size, self._keep_ratio, self._interpolation)


class CenterCrop(_Transform):
    """The centred region of `size`'s ratio, resized to `size`."""

    def __init__(self, size, interpolation=1):
        super().__init__()
        self._size, self._interpolation = size, interpolation

    def _apply(self, x):
        return tm.center_crop(x, self._size, self._interpolation)[0]


class CropResize(_HybridTransform):
    """The `width` x `height` region at (`x`, `y`), resized to `size` when given."""

    def __init__(self, x, y, width, height, size=None, interpolation=None):
        super().__init__()
        self._box = (x, y, width, height)
        self._size, self._interpolation = size, interpolation

    def _apply(self, x):
        cropped = tm.crop(x, *self._box)
        if self._size is None:
            return cropped
        interp = tm.BILINEAR if self._interpolation is None else self._interpolation
        return tm.resize(cropped, self._size, False, interp)


class RandomResizedCrop(_Transform):
    """A random region (area fraction in `scale`, aspect ratio in `ratio`) resized to `size`."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation=1):
        super().__init__()
        self._args = (size, scale, ratio, interpolation)

    def _apply(self, x):
        size, scale, ratio, interpolation = self._args
        return tm.random_size_crop(x, size, scale, ratio, interpolation, rng=_random.generator())[0]


class RandomBrightness(_HybridTransform):
    """Brightness scaled by a factor drawn from [max(0, 1 - brightness), 1 + brightness]."""

    def __init__(self, brightness):
        super().__init__()
        self._brightness = brightness

    def _apply(self, x):
        return tm.random_brightness(x, self._brightness, rng=_random.generator())


class RandomContrast(_HybridTransform):
    """Contrast scaled by a factor drawn from [max(0, 1 - contrast), 1 + contrast]."""

    def __init__(self, contrast):
        super().__init__()
        self._contrast = contrast

    def _apply(self, x):
        return tm.random_contrast(x, self._contrast, rng=_random.generator())


class RandomApply(Sequential):
    """Applies `transforms` with probability `p` (all of them, or none)."""

    def __init__(self, transforms, p=0.5):
        super().__init__()
        self._p = p
        self.add(transforms if isinstance(transforms, Block) else Compose(transforms))

    def forward(self, x):
        if _random.generator().random() >= self._p:
            return x
        return super().forward(x)


def _not_yet(name: str, why: str):
    def __init__(self, *args, **kwargs):
        raise MXNetError(f"transforms.{name} is not supported in Ember yet: {why}")

    return type(name, (HybridBlock,), {"__init__": __init__, "__doc__": f"Not supported yet: {why}."})


_COLOUR = "its exact arithmetic (MXNet's C++ kernels) is not reproduced yet"
RandomSaturation = _not_yet("RandomSaturation", _COLOUR)
RandomHue = _not_yet("RandomHue", _COLOUR)
RandomLighting = _not_yet("RandomLighting", _COLOUR)
RandomColorJitter = _not_yet("RandomColorJitter", _COLOUR)
_ROTATION = "image rotation needs MXNet's bilinear sampler, which Ember lacks"
Rotate = _not_yet("Rotate", _ROTATION)
RandomRotation = _not_yet("RandomRotation", _ROTATION)

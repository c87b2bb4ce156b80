"""`ember.datasets`: small data sets shipped inside the package, so examples run with no download.

`load_digits(split)` gives 6,000 real handwritten digits: the first 6,000 images and labels of the
MNIST test set ("t10k"), by Yann LeCun and Corinna Cortes (with Christopher J.C. Burges), available
under the Creative Commons Attribution-Share Alike 3.0 license (CC BY-SA 3.0). They are stored here
unchanged, as gzipped IDX files (about 0.95 MB), and read with Ember's own IDX reader
(`ember.io.idx.read_idx`). examples/make_embedded_digits.py regenerates them from the original files.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..io.idx import read_idx

__all__ = ["DIGITS_IMAGES", "DIGITS_LABELS", "SPLITS", "load_digits"]

HERE = Path(__file__).resolve().parent
DIGITS_IMAGES = HERE / "digits-images-idx3-ubyte.gz"
DIGITS_LABELS = HERE / "digits-labels-idx1-ubyte.gz"
SPLITS = {"train": slice(0, 5000), "test": slice(5000, 6000)}  # indices into the MNIST test set
PIXEL_MAX = np.float32(255)


@lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """The embedded (6000, 28, 28) images and (6000,) labels, as read-only uint8 arrays."""
    images = read_idx(DIGITS_IMAGES, "embedded digits image file", ndim=3)
    labels = read_idx(DIGITS_LABELS, "embedded digits label file", ndim=1)
    return images, labels


def load_digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Real handwritten digits (28x28 grey images of 0-9) from the MNIST test set, embedded in Ember.

    Source: the MNIST database's test set (t10k), Yann LeCun and Corinna Cortes (with Christopher
    J.C. Burges), http://yann.lecun.com/exdb/mnist/, licensed CC BY-SA 3.0. Ember ships its first
    6,000 examples unchanged:

    - `split="train"`: MNIST test images 0-4,999 (5,000 digits);
    - `split="test"`: MNIST test images 5,000-5,999 (1,000 digits), never in "train".

    Returns `(images, labels)`: images a new float32 array of shape (N, 784), each row one image
    flattened row by row and scaled from bytes to [0, 1] (byte / 255); labels a float32 array of
    shape (N,) holding the digits 0-9, ready for `mx.io.NDArrayIter` and `SoftmaxOutput`.
    """
    if split not in SPLITS:
        raise ValueError(f"load_digits: split must be one of {', '.join(map(repr, SPLITS))}, not {split!r}")
    images, labels = _raw_digits()
    part = SPLITS[split]
    pixels = images[part].reshape(-1, 28 * 28).astype(np.float32) / PIXEL_MAX
    return pixels, labels[part].astype(np.float32)

"""`mx.io.MNISTIter` (MXNET_COMPAT.md 5.3): MNIST digits from IDX files, raw or gzipped, in batches.

Reads `image` and `label` once, keeps this part's examples (`num_parts`/`part_index`), shuffles them
once with a fixed seed, and yields `(batch, 1, rows, cols)` float32 pixels scaled by 1/256 (or
`(batch, rows*cols)` when `flat`) with `(batch,)` float32 labels, dropping the incomplete last batch.
"""

from __future__ import annotations

import logging

import numpy as np
from ember.runtime.errors import ArtifactError, MXNetError

from ..context import cpu
from ..ndarray import NDArray
from .base import DataDesc
from .idx import read_idx
from .native import MXDataIter, bool_param, dtype_param, int_param

logger = logging.getLogger(__name__)

PIXEL_SCALE = np.float32(1.0 / 256.0)  # a power of two: byte/256 is exact in float32


class MNISTIter(MXDataIter):
    """Iterate over an MNIST image file and label file in batches of `batch_size`.

    Takes keyword arguments only, as MXNet's C++ iterators do; unknown ones (`input_shape=`,
    `prefetch_buffer=`, `ctx=`) are ignored. `shuffle=True` (the default) permutes the examples once,
    at construction, with a random generator seeded by `seed`, so every run and every epoch sees the
    same order. The permutation is NumPy's `RandomState(seed)`, not MXNet's C++ engine, so it differs
    from the order MXNet 1.9.1 produces. Unlike MXNet, gzipped files are read too (recognised by their
    first bytes, whatever their name).
    """

    def __init__(
        self,
        *,
        image: str = "./train-images-idx3-ubyte",
        label: str = "./train-labels-idx1-ubyte",
        batch_size=128,
        shuffle=True,
        flat=False,
        seed=0,
        silent=False,
        num_parts=1,
        part_index=0,
        dtype=None,
        data_name: str = "data",
        label_name: str = "softmax_label",
        **_ignored,
    ):
        batch_size = int_param("MNISTIter", "batch_size", batch_size, minimum=1)
        super().__init__(batch_size)
        self.shuffle = bool_param("MNISTIter", "shuffle", shuffle)
        self.flat = bool_param("MNISTIter", "flat", flat)
        seed = int_param("MNISTIter", "seed", seed)
        num_parts = int_param("MNISTIter", "num_parts", num_parts, minimum=1)
        part_index = int_param("MNISTIter", "part_index", part_index, minimum=0)
        if part_index >= num_parts:
            raise MXNetError(f"MNISTIter: part_index={part_index} must be smaller than num_parts={num_parts}")
        self._dtype = dtype_param("MNISTIter", dtype)

        images, labels = load_mnist(image, label)
        start, end = part_bounds(len(images), num_parts, part_index)
        images, labels = images[start:end], labels[start:end]
        if self.shuffle:
            order = np.random.RandomState(seed % 2**32).permutation(len(images))
            images, labels = images[order], labels[order]
        if batch_size > len(images):
            part = f" in part {part_index} of {num_parts}" if num_parts > 1 else ""
            raise MXNetError(
                f"MNISTIter: batch_size={batch_size} is larger than the {len(images)} images{part} of "
                f"'{image}'; incomplete batches are dropped, so there would be no batch at all"
            )
        self._images = np.ascontiguousarray(images)  # uint8; scaled to float32 one batch at a time
        self._labels = labels.astype(np.float32)
        self._cursor = -batch_size

        rows, cols = images.shape[1:]
        data_shape = (batch_size, rows * cols) if self.flat else (batch_size, 1, rows, cols)
        self.provide_data = [DataDesc(data_name, data_shape, self._dtype.type)]
        self.provide_label = [DataDesc(label_name, (batch_size,), np.float32)]
        if not bool_param("MNISTIter", "silent", silent):
            shape = ",".join(str(d) for d in data_shape)
            logger.info("MNISTIter: load %d images, shuffle=%d, shape=[%s]", len(images), self.shuffle, shape)

    def reset(self) -> None:
        """Rewind to the first batch; the order stays the one chosen at construction."""
        self._cursor = -self.batch_size

    def iter_next(self) -> bool:
        if self._cursor + 2 * self.batch_size > len(self._images):
            return False
        self._cursor += self.batch_size
        return True

    def getdata(self) -> NDArray:
        pixels = self._images[self._cursor : self._cursor + self.batch_size].astype(np.float32) * PIXEL_SCALE
        pixels = pixels.reshape(self.provide_data[0].shape)
        return NDArray(pixels if self._dtype == np.float32 else pixels.astype(self._dtype), cpu())

    def getlabel(self) -> NDArray:
        return NDArray(self._labels[self._cursor : self._cursor + self.batch_size].copy(), cpu())

    def getpad(self) -> int:
        return 0

    def getindex(self):
        return None


def load_mnist(image_path, label_path) -> tuple[np.ndarray, np.ndarray]:
    """The `(count, rows, cols)` images and `(count,)` labels of an MNIST file pair, as uint8."""
    images = read_idx(image_path, "MNISTIter image file", ndim=3)
    labels = read_idx(label_path, "MNISTIter label file", ndim=1)
    if len(images) != len(labels):
        raise ArtifactError(
            f"MNISTIter: image file '{image_path}' holds {len(images)} images but label file '{label_path}' "
            f"holds {len(labels)} labels; they must hold the same number"
        )
    return images, labels


def part_bounds(count: int, num_parts: int, part_index: int) -> tuple[int, int]:
    """The slice `[start, end)` of `count` examples that part `part_index` of `num_parts` reads.

    Computed in double precision and truncated, as MXNet's C++ does.
    """
    start = int(count / num_parts * part_index)
    end = int(count / num_parts * (part_index + 1))
    return start, end

"""Datasets of `mx.gluon.data`: indexable collections of samples (`dataset[i]`, `len(dataset)`).

`Dataset` is the base with MXNet 1.9.1's derived views (`filter`, `shard`, `take`, `sample`, `transform`,
`transform_first`); `SimpleDataset` wraps any list or array, `ArrayDataset` zips several of equal length,
`RecordFileDataset` reads the records of an indexed RecordIO (.rec + .idx) pair. Transform functions
may be any callable (a function, a lambda, a Block).
"""

from __future__ import annotations

import os

from ember import recordio
from ember.gluon.errors import CheckFailed
from ember.ndarray import NDArray
from ember.runtime.errors import MXNetError

from .sampler import FilterSampler, Sampler, SequentialSampler

__all__ = ["Dataset", "SimpleDataset", "ArrayDataset", "RecordFileDataset"]


class InvalidType(MXNetError, TypeError):
    """An argument of a type MXNet 1.9.1 rejects with TypeError."""


class Dataset:
    """Abstract dataset: subclasses define `__getitem__` (the i-th sample) and `__len__`.

    An NDArray, a NumPy array or a list can be used wherever a dataset is expected.
    """

    def __getitem__(self, idx):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError

    def filter(self, fn) -> Dataset:
        """The samples for which `fn(sample)` is true (`fn` runs over every sample now; a lazily
        transformed dataset is transformed again when a kept sample is read)."""
        return _SampledDataset(self, FilterSampler(fn, self))

    def shard(self, num_shards, index) -> Dataset:
        """Shard `index` of `num_shards` contiguous shards; the first `len % num_shards` shards hold one
        sample more than the others. Shard before shuffling so that each worker sees its own samples."""
        if not index < num_shards:
            raise CheckFailed("Shard index of out bound: %d out of %d" % (index, num_shards))
        if not num_shards > 0:
            raise CheckFailed("Number of shards must be greater than 0")
        if not index >= 0:
            raise CheckFailed("Index must be non-negative")
        shard_len, rest = divmod(len(self), num_shards)
        start = shard_len * index + min(index, rest)
        return _SampledDataset(self, SequentialSampler(shard_len + (index < rest), start))

    def take(self, count) -> Dataset:
        """The first `count` samples (all of them when `count` is None or larger than the dataset)."""
        if count is None or count > len(self):
            count = len(self)
        return _SampledDataset(self, SequentialSampler(count))

    def sample(self, sampler) -> Dataset:
        """The samples at the indices `sampler` yields (drawn once, now)."""
        if not isinstance(sampler, Sampler):
            raise InvalidType(
                "Invalid sampler type: %s. Expected gluon.data.Sampler instead." % type(sampler)
            )
        return _SampledDataset(self, sampler)

    def transform(self, fn, lazy=True) -> Dataset:
        """Each sample passed through `fn` (a tuple sample is spread: `fn(*sample)`). With `lazy=False`
        every sample is transformed now, once; keep `lazy=True` for a random `fn`."""
        transformed = _LazyTransformDataset(self, fn)
        if lazy:
            return transformed
        return SimpleDataset([transformed[i] for i in range(len(transformed))])

    def transform_first(self, fn, lazy=True) -> Dataset:
        """Like `transform`, but `fn` is applied to the first element of each sample only (the data,
        leaving the label as it is)."""
        return self.transform(_TransformFirstClosure(fn), lazy)


class SimpleDataset(Dataset):
    """A dataset over any object with `len()` and `[]` (a list, an NDArray, a NumPy array)."""

    def __init__(self, data):
        self._data = data

    def __len__(self):
        return len(self._data)

    def __getitem__(self, idx):
        return self._data[idx]


class _LazyTransformDataset(Dataset):
    """`data` with `fn` applied to each sample when it is read."""

    def __init__(self, data, fn):
        self._data = data
        self._fn = fn

    def __len__(self):
        return len(self._data)

    def __getitem__(self, idx):
        item = self._data[idx]
        if isinstance(item, tuple):
            return self._fn(*item)
        return self._fn(item)


class _TransformFirstClosure:
    """`fn` applied to the first of its arguments, the others passed through; an object rather than a
    nested function so that it pickles."""

    def __init__(self, fn):
        self._fn = fn

    def __call__(self, x, *args):
        if args:
            return (self._fn(x),) + args
        return self._fn(x)


class _SampledDataset(Dataset):
    """The samples of `dataset` at the indices `sampler` yields."""

    def __init__(self, dataset, sampler):
        self._dataset = dataset
        self._sampler = sampler
        self._indices = list(iter(sampler))

    def __len__(self):
        return len(self._indices)

    def __getitem__(self, idx):
        return self._dataset[self._indices[idx]]


class ArrayDataset(Dataset):
    """Several dataset-like objects of one length zipped: sample i is `(a[i], b[i], ...)`, or `a[i]`
    itself when there is one. A 1-D NDArray is read through NumPy, so its samples are NumPy scalars."""

    def __init__(self, *args):
        if not args:
            raise CheckFailed("Needs at least 1 arrays")
        self._length = len(args[0])
        self._data = []
        for i, data in enumerate(args):
            if len(data) != self._length:
                raise CheckFailed(
                    "All arrays must have the same length; array[0] has length %d while array[%d] has %d."
                    % (self._length, i, len(data))
                )
            if isinstance(data, NDArray) and data.ndim == 1:
                data = data.asnumpy()
            self._data.append(data)

    def __getitem__(self, idx):
        if len(self._data) == 1:
            return self._data[0][idx]
        return tuple(data[idx] for data in self._data)

    def __len__(self):
        return self._length


class RecordFileDataset(Dataset):
    """The records of a RecordIO file as bytes, in the order of its index: `filename` is the .rec file
    and the index is the .idx file beside it with the same stem."""

    def __init__(self, filename):
        self.idx_file = os.path.splitext(filename)[0] + ".idx"
        self.filename = filename
        self._record = recordio.MXIndexedRecordIO(self.idx_file, self.filename, "r")

    def __getitem__(self, idx):
        return self._record.read_idx(self._record.keys[idx])

    def __len__(self):
        return len(self._record.keys)

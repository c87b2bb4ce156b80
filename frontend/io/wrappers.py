"""Iterators that wrap other iterators (MXNET_COMPAT.md 5.1): `ResizeIter` changes the number of
batches per epoch, `PrefetchingIter` joins several iterators into one batch stream.

Ember's PrefetchingIter reads its iterators synchronously, in the caller's thread: same batches and
names as MXNet's, without the background threads.
"""

from __future__ import annotations

from itertools import chain

from ember.runtime.errors import MXNetError

from .base import DataBatch, DataDesc, DataIter


class _CurrentBatch:
    """DataIter accessors that read the batch a wrapper holds in `current_batch`."""

    def getdata(self):
        return self.current_batch.data

    def getlabel(self):
        return self.current_batch.label

    def getindex(self):
        return self.current_batch.index

    def getpad(self):
        return self.current_batch.pad


class ResizeIter(_CurrentBatch, DataIter):
    """Yield exactly `size` batches of `data_iter` per epoch, restarting it when it runs out.

    `reset_internal=False` keeps the inner iterator's position across `reset()`.
    """

    def __init__(self, data_iter: DataIter, size: int, reset_internal: bool = True):
        super().__init__()
        self.data_iter = data_iter
        self.size = size
        self.reset_internal = reset_internal
        self.cur = 0
        self.current_batch = None
        self.provide_data = data_iter.provide_data
        self.provide_label = data_iter.provide_label
        self.batch_size = data_iter.batch_size
        if hasattr(data_iter, "default_bucket_key"):
            self.default_bucket_key = data_iter.default_bucket_key

    def reset(self) -> None:
        self.cur = 0
        if self.reset_internal:
            self.data_iter.reset()

    def iter_next(self) -> bool:
        if self.cur == self.size:
            return False
        try:
            self.current_batch = self.data_iter.next()
        except StopIteration:
            self.data_iter.reset()
            self.current_batch = self.data_iter.next()
        self.cur += 1
        return True


class PrefetchingIter(_CurrentBatch, DataIter):
    """Join the batches of `iters` (one DataIter or a list): data and label lists are concatenated.

    `rename_data` / `rename_label` hold one dict per iterator mapping its names to new ones. The
    iterators must yield the same number of batches with the same padding.
    """

    def __init__(self, iters, rename_data=None, rename_label=None):
        super().__init__()
        if not isinstance(iters, list):
            iters = [iters]
        if not iters:
            raise MXNetError("PrefetchingIter: iters must hold at least one DataIter")
        for name, renames in (("rename_data", rename_data), ("rename_label", rename_label)):
            if renames is not None and len(renames) != len(iters):
                raise MXNetError(
                    f"PrefetchingIter: {name} has {len(renames)} dicts but there are {len(iters)} iterators"
                )
        self.n_iter = len(iters)
        self.iters = iters
        self.rename_data = rename_data
        self.rename_label = rename_label
        self.batch_size = self.provide_data[0][1][0]
        self.current_batch = None

    @property
    def provide_data(self) -> list[DataDesc]:
        return _renamed([i.provide_data for i in self.iters], self.rename_data)

    @property
    def provide_label(self) -> list[DataDesc]:
        return _renamed([i.provide_label for i in self.iters], self.rename_label)

    def reset(self) -> None:
        for it in self.iters:
            it.reset()

    def iter_next(self) -> bool:
        batches = []
        for it in self.iters:
            try:
                batches.append(it.next())
            except StopIteration:
                batches.append(None)
        if all(b is None for b in batches):
            return False
        if any(b is None for b in batches) or any(b.pad != batches[0].pad for b in batches):
            raise MXNetError(
                "PrefetchingIter: the iterators disagree on the number of batches or their padding; "
                "they must yield the same number of examples"
            )
        self.current_batch = DataBatch(
            list(chain.from_iterable(b.data for b in batches)),
            list(chain.from_iterable(b.label or [] for b in batches)),
            batches[0].pad,
            batches[0].index,
            provide_data=self.provide_data,
            provide_label=self.provide_label,
        )
        return True

    def next(self) -> DataBatch:
        if self.iter_next():
            return self.current_batch
        raise StopIteration


def _renamed(descs_per_iter: list[list], renames) -> list[DataDesc]:
    """The descriptions of all iterators in order, with each iterator's names mapped by its dict."""
    if renames is None:
        return list(chain.from_iterable(descs_per_iter))
    renamed = []
    for rename, descs in zip(renames, descs_per_iter):
        for desc in descs:
            if not isinstance(desc, DataDesc):
                desc = DataDesc(*desc)
            if desc.name not in rename:
                raise MXNetError(f"PrefetchingIter: the rename dict {rename} has no entry for '{desc.name}'")
            renamed.append(DataDesc(rename[desc.name], desc.shape, desc.dtype))
    return renamed

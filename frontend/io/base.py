"""The data-iterator protocol of `mx.io` (MXNET_COMPAT.md 5.1): `DataDesc`, `DataBatch`, `DataIter`.

Every iterator (`NDArrayIter`, `MNISTIter`, `CSVIter`, ...) is a `DataIter`: `next()` returns a
`DataBatch` of lists of NDArrays and raises StopIteration at the end of an epoch; `reset()` starts the
next epoch; `provide_data`/`provide_label` describe one batch as `DataDesc`s.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from ember.runtime.errors import MXNetError


class DataDesc(namedtuple("DataDesc", ["name", "shape"])):
    """The name, batch shape, element type and layout of one data or label input.

    A namedtuple of `(name, shape)`, so it compares equal to the plain tuple `('data', (100, 784))`;
    `dtype` and `layout` ride along as attributes.
    """

    def __new__(cls, name: str, shape, dtype=np.float32, layout: str = "NCHW"):
        desc = super().__new__(cls, name, shape)
        desc.dtype = dtype
        desc.layout = layout
        return desc

    def __repr__(self) -> str:
        return f"DataDesc[{self.name},{self.shape},{self.dtype},{self.layout}]"

    @staticmethod
    def get_batch_axis(layout: str | None) -> int:
        """The axis of the batch dimension 'N' in `layout` (0 when layout is None, -1 when it has no 'N')."""
        if layout is None:
            return 0
        return layout.find("N")

    @staticmethod
    def get_list(shapes, types) -> list[DataDesc]:
        """DataDescs from `[(name, shape), ...]` and optionally `[(name, dtype), ...]`."""
        if types is not None:
            type_of = dict(types)
            return [DataDesc(name, shape, type_of[name]) for name, shape in shapes]
        return [DataDesc(name, shape) for name, shape in shapes]


class DataBatch:
    """One batch: `data` and `label` are lists of NDArrays with `batch_size` examples each.

    `pad` counts the examples at the end that only fill the batch up; `index` holds the example
    indices where the iterator knows them.
    """

    def __init__(
        self,
        data,
        label=None,
        pad: int | None = None,
        index=None,
        bucket_key=None,
        provide_data=None,
        provide_label=None,
    ):
        if data is not None and not isinstance(data, (list, tuple)):
            raise MXNetError(f"DataBatch: data must be a list of NDArrays, got {type(data).__name__}")
        if label is not None and not isinstance(label, (list, tuple)):
            raise MXNetError(f"DataBatch: label must be a list of NDArrays, got {type(label).__name__}")
        self.data = data
        self.label = label
        self.pad = pad
        self.index = index
        self.bucket_key = bucket_key
        self.provide_data = provide_data
        self.provide_label = provide_label

    def __str__(self) -> str:
        data_shapes = [d.shape for d in self.data]
        label_shapes = [lab.shape for lab in self.label] if self.label else None
        return f"{type(self).__name__}: data shapes: {data_shapes} label shapes: {label_shapes}"


class DataIter:
    """The base class of data iterators: a Python iterator of DataBatches, one epoch at a time.

    Subclasses implement `iter_next()` (advance; False at the end) and `getdata()`, `getlabel()`,
    `getpad()`, `getindex()` for the current batch, or override `next()` itself.
    """

    def __init__(self, batch_size: int = 0):
        self.batch_size = batch_size

    def __iter__(self):
        return self

    def reset(self) -> None:
        """Go back to the start of the data."""

    def next(self) -> DataBatch:
        """The next batch; raises StopIteration at the end of the epoch."""
        if self.iter_next():
            return DataBatch(
                data=self.getdata(), label=self.getlabel(), pad=self.getpad(), index=self.getindex()
            )
        raise StopIteration

    def __next__(self) -> DataBatch:
        return self.next()

    def iter_next(self) -> bool:
        """Move to the next batch; False when there is none."""
        return False

    def getdata(self):
        """The data of the current batch (a list of NDArrays)."""

    def getlabel(self):
        """The label of the current batch (a list of NDArrays)."""

    def getindex(self):
        """The example indices of the current batch (a numpy array), or None."""

    def getpad(self) -> int | None:
        """How many examples at the end of the current batch are padding."""

"""`mx.io`: MXNet 1.x's data iterators (MXNET_COMPAT.md section 5).

The protocol (`DataDesc`, `DataBatch`, `DataIter`) lives in `base`; `NDArrayIter` batches in-memory
arrays; `MNISTIter` reads MNIST IDX files (raw or gzipped, parsed in `idx`); `CSVIter` reads CSV
files; `ResizeIter` and `PrefetchingIter` wrap other iterators.
"""

from .base import DataBatch, DataDesc, DataIter
from .csv_iter import CSVIter
from .mnist import MNISTIter
from .native import MXDataIter
from .ndarray_iter import NDArrayIter
from .wrappers import PrefetchingIter, ResizeIter

__all__ = [
    "CSVIter",
    "DataBatch",
    "DataDesc",
    "DataIter",
    "MNISTIter",
    "MXDataIter",
    "NDArrayIter",
    "PrefetchingIter",
    "ResizeIter",
]

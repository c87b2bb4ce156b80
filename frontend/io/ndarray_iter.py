"""`mx.io.NDArrayIter` (MXNET_COMPAT.md 5.2): batches of in-memory arrays, with MXNet 1.9.1's exact
cursor arithmetic for `last_batch_handle` 'pad', 'discard' and 'roll_over'.

Takes NumPy arrays or NDArrays (one, a list, or a dict name -> array) and yields DataBatches whose
data and label lists follow the sorted input names (`data`, or `_0_data`, `_1_data`, ...).
"""

from __future__ import annotations

import numpy as np
from ember.runtime.errors import MXNetError

from .. import ndarray as nd
from ..ndarray import NDArray
from .base import DataBatch, DataDesc, DataIter

LAST_BATCH_HANDLES = ("pad", "discard", "roll_over")


def init_data(data, allow_empty: bool, default_name: str) -> list[tuple[str, NDArray]]:
    """`(name, NDArray)` pairs sorted by name, as MXNet's `_init_data` makes them.

    One array is named `default_name`; a list of them `_0_<default_name>`, `_1_...`; a dict keeps its keys.
    NumPy arrays (and anything else array-like) become float32 NDArrays; NDArrays keep their dtype.
    """
    if data is None:
        if not allow_empty:
            raise MXNetError("NDArrayIter: data is required, got None")
        data = []
    if isinstance(data, (np.ndarray, NDArray)):
        data = [data]
    if isinstance(data, (list, tuple)):
        if not data and not allow_empty:
            raise MXNetError("NDArrayIter: data is an empty list; give at least one array")
        if len(data) == 1:
            data = {default_name: data[0]}
        else:
            data = {f"_{i}_{default_name}": d for i, d in enumerate(data)}
    if not isinstance(data, dict):
        raise TypeError("Input must be NDArray, numpy.ndarray, a list of them or dict with them as values")
    pairs = []
    for name, value in data.items():
        if not isinstance(value, NDArray):
            try:
                value = nd.array(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"Invalid type '{type(value)}' for {name}, should be NDArray or numpy.ndarray"
                ) from None
        pairs.append((name, value))
    return sorted(pairs, key=lambda pair: pair[0])


class NDArrayIter(DataIter):
    """Iterate over NDArrays or NumPy arrays in batches of `batch_size` along the layout's 'N' axis.

    `shuffle=True` permutes the examples (with NumPy's global random state, as MXNet does) at
    construction and at every `reset()`. The last incomplete batch is completed with examples from the
    start ('pad', `pad` counts them), dropped ('discard'), or carried into the next epoch ('roll_over').
    """

    def __init__(
        self,
        data,
        label=None,
        batch_size: int = 1,
        shuffle: bool = False,
        last_batch_handle: str = "pad",
        data_name: str = "data",
        label_name: str = "softmax_label",
        layout: str = "NCHW",
    ):
        super().__init__(batch_size)
        if last_batch_handle not in LAST_BATCH_HANDLES:
            raise MXNetError(
                f"NDArrayIter: last_batch_handle must be 'pad', 'discard' or 'roll_over', got {last_batch_handle!r}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise MXNetError(f"NDArrayIter: batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(layout, str) or "N" not in layout:
            raise MXNetError(f"NDArrayIter: layout must name the batch axis 'N', got {layout!r}")
        self.layout = layout
        self._axis = layout.find("N")
        self.data = init_data(data, allow_empty=False, default_name=data_name)
        self.label = init_data(label, allow_empty=True, default_name=label_name)
        self.num_data = self._check_sizes()
        self.idx = np.arange(self.num_data)
        self.shuffle = shuffle
        self.last_batch_handle = last_batch_handle
        self.batch_size = int(batch_size)
        self.cursor = -self.batch_size
        self._cache_data = None  # the incomplete last batch that 'roll_over' carries into the next epoch
        self._cache_label = None
        self.reset()
        self.data_list = [x[1] for x in self.data] + [x[1] for x in self.label]
        self.num_source = len(self.data_list)

    def _check_sizes(self) -> int:
        """The number of examples, which every data and label array must have along the batch axis."""
        counts = {}
        for name, array in self.data + self.label:
            if array.ndim <= self._axis:
                raise MXNetError(
                    f"NDArrayIter: '{name}' has shape {array.shape}, which has no batch axis {self._axis} "
                    f"for layout {self.layout!r}"
                )
            counts[name] = array.shape[self._axis]
        first_name, first_count = next(iter(counts.items()))
        for name, count in counts.items():
            if count != first_count:
                raise MXNetError(
                    f"NDArrayIter: '{name}' has {count} examples but '{first_name}' has {first_count}; "
                    "every data and label array needs the same number"
                )
        return first_count

    # -- description ----------------------------------------------------------------------------

    def _describe(self, pairs) -> list[DataDesc]:
        descs = []
        for name, array in pairs:
            shape = list(array.shape)
            shape[self._axis] = self.batch_size
            descs.append(DataDesc(name, tuple(shape), array.dtype, layout=self.layout))
        return descs

    @property
    def provide_data(self) -> list[DataDesc]:
        """Name, batch shape, dtype and layout of each data array."""
        return self._describe(self.data)

    @property
    def provide_label(self) -> list[DataDesc]:
        """Name, batch shape, dtype and layout of each label array (empty without labels)."""
        return self._describe(self.label)

    # -- the epoch ------------------------------------------------------------------------------

    def hard_reset(self) -> None:
        """Go back to the start, forgetting any examples 'roll_over' carried over."""
        if self.shuffle:
            self._shuffle_data()
        self.cursor = -self.batch_size
        self._cache_data = None
        self._cache_label = None

    def reset(self) -> None:
        """Go back to the start; with 'roll_over' the next epoch begins with the carried-over examples."""
        if self.shuffle:
            self._shuffle_data()
        if (
            self.last_batch_handle == "roll_over"
            and self.num_data - self.batch_size < self.cursor < self.num_data
        ):
            # a negative cursor marks the first batch of the epoch, which starts with the cached examples
            self.cursor = self.cursor - self.num_data - self.batch_size
        else:
            self.cursor = -self.batch_size

    def iter_next(self) -> bool:
        self.cursor += self.batch_size
        return self.cursor < self.num_data

    def next(self) -> DataBatch:
        if not self.iter_next():
            raise StopIteration
        data = self.getdata()
        label = self.getlabel()
        if data[0].shape[self._axis] != self.batch_size:
            # an incomplete last batch ('discard', 'roll_over') ends the epoch; 'roll_over' reuses it
            self._cache_data = data
            self._cache_label = label
            raise StopIteration
        return DataBatch(data=data, label=label, pad=self.getpad(), index=None)

    def getdata(self) -> list[NDArray]:
        return self._batchify(self.data)

    def getlabel(self) -> list[NDArray]:
        return self._batchify(self.label)

    def getpad(self) -> int:
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            return self.cursor + self.batch_size - self.num_data
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            return -self.cursor
        return 0

    # -- slicing --------------------------------------------------------------------------------

    def _batchify(self, source) -> list[NDArray]:
        """The current batch of each array in `source` (self.data or self.label)."""
        if self.cursor >= self.num_data:
            raise MXNetError("NDArrayIter: the epoch is over; call reset() before asking for more data")
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            # first batch of an epoch after 'roll_over': the carried-over examples, then the first ones
            if self._cache_data is not None:
                cached, self._cache_data = self._cache_data, None
            else:
                cached, self._cache_label = self._cache_label, None
            return self._concat(cached, self._slice(source, 0, self.cursor + self.batch_size))
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            pad = self.batch_size - self.num_data + self.cursor
            first = self._slice(source, self.cursor, self.num_data)
            if pad > self.num_data:
                # a batch larger than the data: repeat all of it, then the first examples again
                second = self._tile(self._slice(source, 0, self.num_data), pad // self.num_data)
                if pad % self.num_data:
                    second = self._concat(second, self._slice(source, 0, pad % self.num_data))
            else:
                second = self._slice(source, 0, pad)
            return self._concat(first, second)
        return self._slice(source, self.cursor, min(self.cursor + self.batch_size, self.num_data))

    def _slice(self, source, begin: int, end: int) -> list[NDArray]:
        """Copies of [begin, end) along the batch axis (as slice_axis, without its per-call checks)."""
        window = (slice(None),) * self._axis + (slice(begin, end),)
        return [NDArray(array._data[window].copy(), array.context) for _, array in source]

    def _concat(self, first: list[NDArray], second: list[NDArray]) -> list[NDArray]:
        if not first or not second:
            return first if first else second
        return [nd.concat(a, b, dim=self._axis) for a, b in zip(first, second)]

    def _tile(self, arrays: list[NDArray], repeats: int) -> list[NDArray]:
        tiled = []
        for array in arrays:
            reps = [1] * array.ndim
            reps[self._axis] = repeats
            tiled.append(nd.tile(array, reps=tuple(reps)))
        return tiled

    def _shuffle_data(self) -> None:
        # MXNet permutes self.idx in place and indexes the already permuted arrays with it; doing the
        # same gives MXNet's order for the same NumPy seed. Like MXNet's `array(v.asnumpy()[idx])`, the
        # permuted copies are float32 whatever the input dtype.
        np.random.shuffle(self.idx)
        self.data = [(name, self._permuted(array)) for name, array in self.data]
        self.label = [(name, self._permuted(array)) for name, array in self.label]

    def _permuted(self, array: NDArray) -> NDArray:
        return nd.array(
            np.take(array.asnumpy(), self.idx, axis=self._axis), ctx=array.context, dtype=np.float32
        )

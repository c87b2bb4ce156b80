"""`mx.io.CSVIter` (MXNET_COMPAT.md 5.4): batches of CSV rows, each row one example of `data_shape`.

Parses `data_csv` (and `label_csv`, else labels are 0) once, then batches rows with MXNet's
`round_batch` rules: True completes the last batch with rows from the start and begins the next epoch
after them; False leaves the previous batch's rows in the padded slots.
"""

from __future__ import annotations

import math

import numpy as np
from ember.runtime.errors import ArtifactError, MXNetError

from ..context import cpu
from ..ndarray import NDArray
from .base import DataDesc
from .idx import read_file_bytes
from .native import MXDataIter, bool_param, dtype_param, int_param, shape_param

CSV_DTYPES = ("float32", "int32", "int64")


class CSVIter(MXDataIter):
    """Iterate over the rows of a CSV file (and a label CSV file) in batches of `batch_size`.

    Takes keyword arguments only; unknown ones (`prefetch_buffer=`, `ctx=`) are ignored. A value that
    is not a number, or NaN, raises ArtifactError naming the file, line and column. Extra rows in
    `label_csv` are ignored, as in MXNet; too few raise an error.
    """

    def __init__(
        self,
        *,
        data_csv=None,
        data_shape=None,
        label_csv="NULL",
        label_shape=(1,),
        batch_size=None,
        round_batch=True,
        dtype=None,
        data_name: str = "data",
        label_name: str = "softmax_label",
        **_ignored,
    ):
        for name, value in (("data_csv", data_csv), ("data_shape", data_shape), ("batch_size", batch_size)):
            if value is None:
                raise MXNetError(f"CSVIter: the required parameter {name} is missing")
        batch_size = int_param("CSVIter", "batch_size", batch_size, minimum=1)
        super().__init__(batch_size)
        data_shape = shape_param("CSVIter", "data_shape", data_shape)
        label_shape = shape_param("CSVIter", "label_shape", label_shape)
        self.round_batch = bool_param("CSVIter", "round_batch", round_batch)
        dtype = dtype_param("CSVIter", dtype, CSV_DTYPES)

        data = read_csv(data_csv, "CSVIter data_csv", data_shape, "data_shape", dtype)
        if len(data) == 0:
            raise ArtifactError(f"CSVIter data_csv '{data_csv}' holds no rows")
        if label_csv is None or str(label_csv) == "NULL":
            label_shape = (1,)
            labels = np.zeros((len(data), 1), dtype=dtype)
        else:
            labels = read_csv(label_csv, "CSVIter label_csv", label_shape, "label_shape", dtype)
            if len(labels) < len(data):
                raise ArtifactError(
                    f"CSVIter: label_csv '{label_csv}' has {len(labels)} rows but data_csv '{data_csv}' "
                    f"has {len(data)}; every data row needs a label row"
                )
        if self.round_batch and batch_size - len(data) > len(data):
            raise MXNetError(_too_few_rows(batch_size, batch_size - len(data), data_csv, len(data)))
        self._data_csv = data_csv
        self._data = data.reshape((len(data),) + data_shape)
        label_shape = () if label_shape == (1,) else label_shape
        self._labels = labels[: len(data)].reshape((len(data),) + label_shape)

        # batch buffers: with round_batch=False the padded slots keep the previous batch's rows
        self._data_batch = np.zeros((batch_size,) + data_shape, dtype=dtype)
        self._label_batch = np.zeros((batch_size,) + label_shape, dtype=dtype)
        self._index_batch = np.zeros(batch_size, dtype=np.uint64)
        self._pos = 0  # the next row to read
        self._overflow = 0  # rows wrapped from the start into the last batch; ends the epoch
        self._pad = 0
        self.provide_data = [DataDesc(data_name, self._data_batch.shape, dtype.type)]
        self.provide_label = [DataDesc(label_name, self._label_batch.shape, dtype.type)]

    def reset(self) -> None:
        """Start the next epoch: at the first row, or after the rows the last batch wrapped around to."""
        if not self.round_batch or self._overflow == 0:
            self._pos = 0
        self._overflow = 0

    def iter_next(self) -> bool:
        if self._overflow:
            return False
        count = len(self._data)
        take = min(self.batch_size, count - self._pos)
        if take <= 0:
            return False
        rows = np.arange(self._pos, self._pos + take)
        self._pos += take
        self._pad = 0
        if take < self.batch_size:
            need = self.batch_size - take
            if self.round_batch:
                if need > count:
                    raise MXNetError(_too_few_rows(self.batch_size, need, self._data_csv, count))
                rows = np.concatenate([rows, np.arange(need)])
                self._pos = self._overflow = need
            self._pad = need
        self._data_batch[: len(rows)] = self._data[rows]
        self._label_batch[: len(rows)] = self._labels[rows]
        self._index_batch[: len(rows)] = rows
        return True

    def getdata(self) -> NDArray:
        return NDArray(self._data_batch.copy(), cpu())

    def getlabel(self) -> NDArray:
        return NDArray(self._label_batch.copy(), cpu())

    def getpad(self) -> int:
        return self._pad

    def getindex(self) -> np.ndarray:
        return self._index_batch.copy()


def _too_few_rows(batch_size: int, need: int, path, count: int) -> str:
    return (
        f"CSVIter: batch_size={batch_size} needs {need} rows from the start of data_csv '{path}' to "
        f"complete its last batch, but the file holds only {count} rows"
    )


def read_csv(path, what: str, shape: tuple[int, ...], shape_name: str, dtype: np.dtype) -> np.ndarray:
    """The non-blank rows of the CSV file at `path` as a `(rows, prod(shape))` array of `dtype`."""
    path = str(path)
    try:
        text = read_file_bytes(path, what).decode("utf-8")
    except UnicodeDecodeError as err:
        raise ArtifactError(f"{what} '{path}' is not a text file: {err.reason} at byte {err.start}") from None
    width = math.prod(shape)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        tokens = line.split(",")
        if len(tokens) != width:
            raise ArtifactError(
                f"{what} '{path}' line {number} has {len(tokens)} values, but {shape_name}={shape} needs {width}"
            )
        rows.append((number, tokens))
    integer = dtype.kind == "i"
    try:
        values = np.array(
            [t for _, tokens in rows for t in tokens], dtype=np.int64 if integer else np.float64
        )
    except ValueError:
        values = np.array([_parse(path, what, n, tokens, integer) for n, tokens in rows]).reshape(-1)
    values = values.reshape(len(rows), width)
    if not integer and np.isnan(values).any():
        row, column = np.argwhere(np.isnan(values))[0]
        raise ArtifactError(f"{what} '{path}' line {rows[row][0]}, column {column + 1} holds NaN")
    return values.astype(dtype)


def _parse(path: str, what: str, number: int, tokens: list[str], integer: bool) -> list:
    """The values of one line, or ArtifactError naming the first token that is not a number."""
    values = []
    for column, token in enumerate(tokens, start=1):
        try:
            value = float(token)
            if integer:
                if not value.is_integer():
                    raise ValueError
                value = int(value)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise ArtifactError(
                f"{what} '{path}' line {number}, column {column}: {token!r} is not {kind}"
            ) from None
        values.append(value)
    return values

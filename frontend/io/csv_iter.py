"""`mx.io.CSVIter` (MXNET_COMPAT.md 5.4): batches of CSV rows, each row one example of `data_shape`.

Parses `data_csv` (and `label_csv`, else labels are 0) once, then batches rows with MXNet's
`round_batch` rules: True completes the last batch with rows from the start and begins the next epoch
after them; False leaves the previous batch's rows in the padded slots.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections import namedtuple

import numpy as np

from ember.runtime.errors import ArtifactError, MXNetError

from ..context import cpu
from ..ndarray import NDArray
from .base import DataDesc
from .idx import read_file_bytes
from .native import MXDataIter, bool_param, dtype_param, int_param, shape_param

CSV_DTYPES = ("float32", "int32", "int64")
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # MXNet's parser ends lines at either character
DIGIT_RUN = re.compile(r"\s*[+-]?\d+\s*")  # an integer literal, however long


class CSVIter(MXDataIter):
    """Iterate over the rows of a CSV file (and a label CSV file) in batches of `batch_size`.

    Takes keyword arguments only; unknown ones (`prefetch_buffer=`, `ctx=`) are ignored. A value that
    is not a number (or, for the integer dtypes, not an integer within range) raises ArtifactError
    naming the file, line and column; NaN and inf load as float32 values, as MXNet parses them. Extra
    rows in `label_csv` are ignored, as in MXNet; too few raise an error.
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
        self._data_batch = _batch_buffer((batch_size,) + data_shape, dtype, "data_shape")
        self._label_batch = _batch_buffer((batch_size,) + label_shape, dtype, "label_shape")
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


def _batch_buffer(shape: tuple[int, ...], dtype: np.dtype, shape_name: str) -> np.ndarray:
    """A zeroed batch buffer; a batch too large for memory (round_batch=False allows any batch_size)
    is an MXNetError naming the sizes rather than a MemoryError."""
    try:
        return np.zeros(shape, dtype=dtype)
    except (MemoryError, ValueError):
        nbytes = math.prod(shape) * dtype.itemsize
        raise MXNetError(
            f"CSVIter: a batch of batch_size={shape[0]} examples of {shape_name}={shape[1:]} needs {nbytes} "
            "bytes, more than can be allocated"
        ) from None


def _too_few_rows(batch_size: int, need: int, path, count: int) -> str:
    return (
        f"CSVIter: batch_size={batch_size} needs {need} rows from the start of data_csv '{path}' to "
        f"complete its last batch, but the file holds only {count} rows"
    )


def read_csv(path, what: str, shape: tuple[int, ...], shape_name: str, dtype: np.dtype) -> np.ndarray:
    """The non-blank rows of the CSV file at `path` as a `(rows, prod(shape))` array of `dtype`.

    Lines end at '\\n' or '\\r' (blank ones are skipped) and fields are split at commas, as MXNet's
    parser does; every row must hold exactly `prod(shape)` fields, each a number that fits `dtype`
    (NaN and inf included for float32, as MXNet parses them; integral values only for the integer types).
    """
    path = str(path)
    width = math.prod(shape)
    place = CSVPlace(what, path)
    rows = _rows(_read_text(place), place, f"{shape_name}={shape}", width)
    parse = _integers if dtype.kind == "i" else _floats
    return parse(rows, place, dtype).reshape(len(rows), width)


class CSVPlace(namedtuple("CSVPlace", ["what", "path"])):
    """Which file a CSV value comes from, for error messages: prints as `CSVIter data_csv 'path'`."""

    def __str__(self) -> str:
        return f"{self.what} '{self.path}'"

    def error(self, number: int, column: int, problem: str) -> ArtifactError:
        """ArtifactError naming the file, line and column of a bad value."""
        return ArtifactError(f"{self} line {number}, column {column}: {problem}")


def _read_text(place: CSVPlace) -> str:
    """The file's text; a UTF-8 byte-order mark is dropped, as MXNet's parser drops it."""
    try:
        return read_file_bytes(place.path, place.what).decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ArtifactError(f"{place} is not a text file: {err.reason} at byte {err.start}") from None


def _rows(text: str, place: CSVPlace, shape_text: str, width: int) -> list:
    """(line number, fields) of every non-blank line, each checked to hold `width` fields."""
    rows = []
    for number, line in enumerate(LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        tokens = line.split(",")
        if len(tokens) != width:
            problem = f"has {len(tokens)} values, but {shape_text} needs {width}"
            raise ArtifactError(f"{place} line {number} {problem}")
        rows.append((number, tokens))
    return rows


def _floats(rows: list, place: CSVPlace, dtype: np.dtype) -> np.ndarray:
    """The fields as `dtype` (float32); values beyond its range become inf, as any float32 cast makes them."""
    try:
        values = np.array([t for _, tokens in rows for t in tokens], dtype=np.float64)
    except ValueError:
        values = np.array([_field_values(n, tokens, place, _float) for n, tokens in rows], dtype=np.float64)
    with np.errstate(over="ignore"):
        return values.astype(dtype).reshape(-1)


def _integers(rows: list, place: CSVPlace, dtype: np.dtype) -> np.ndarray:
    """The fields as `dtype` (int32 or int64); a value outside its range is an error (MXNet wraps it)."""
    info = np.iinfo(dtype)
    try:
        values = np.array([t for _, tokens in rows for t in tokens], dtype=np.int64)
    except (ValueError, OverflowError):
        values = None
    if values is None or ((values < info.min) | (values > info.max)).any():
        # exact Python integers, row by row, to name the first field that is wrong
        checked = [_field_values(n, tokens, place, _integer, info) for n, tokens in rows]
        values = np.array(checked, dtype=np.int64)
    return values.astype(dtype).reshape(-1)


def _field_values(number: int, tokens: list[str], place: CSVPlace, convert, *args) -> list:
    """`convert(token, *args)` of each field of line `number`; a ValueError names the field."""
    values = []
    for column, token in enumerate(tokens, start=1):
        try:
            values.append(convert(token, *args))
        except ValueError as err:
            raise place.error(number, column, f"{reprlib.repr(token)} {err}") from None
    return values


def _float(token: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise ValueError("is not a number") from None


def _integer(token: str, info: np.iinfo) -> int:
    """An integral field ('3', '-3', '3.0', '3e2'; not '3.5' or 'nan') within the range of `info`."""
    try:
        value = int(token)
    except ValueError:
        if DIGIT_RUN.fullmatch(token):  # int() refuses more than 4300 digits, far more than any dtype holds
            raise ValueError(f"does not fit in {info.dtype.name}") from None
        value = _integral_float(token)
    if not info.min <= value <= info.max:
        raise ValueError(f"does not fit in {info.dtype.name}")
    return value


def _integral_float(token: str) -> int:
    """The integer a float-looking field ('3.0', '3e2') spells; ValueError for any other field."""
    try:
        number = float(token)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise ValueError("is not an integer")
    return int(number)

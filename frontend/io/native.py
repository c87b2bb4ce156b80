"""What the iterators MXNet wrote in C++ (`MNISTIter`, `CSVIter`) share: their `MXDataIter` base
class, and the reading of their keyword parameters, which MXNet accepts as values or as strings.

`MXDataIter.next()` wraps the single data and label array of a batch in lists, as MXNet's does.
"""

from __future__ import annotations

import ast

import numpy as np
from ember.runtime.errors import MXNetError

from .base import DataBatch, DataIter

# `dtype` values MXNet's prefetcher accepts; None keeps the iterator's float32
OUTPUT_DTYPES = ("float32", "float64", "float16", "int64", "int32", "uint8", "int8")


class MXDataIter(DataIter):
    """An iterator with one data and one label array per batch; `getdata()`/`getlabel()` return NDArrays.

    Subclasses set `provide_data`, `provide_label` and `batch_size` and implement `iter_next`,
    `getdata`, `getlabel`, `getpad`, `getindex` and `reset`.
    """

    def next(self) -> DataBatch:
        if self.iter_next():
            return DataBatch(
                data=[self.getdata()], label=[self.getlabel()], pad=self.getpad(), index=self.getindex()
            )
        raise StopIteration


def bool_param(iterator: str, name: str, value) -> bool:
    """A boolean parameter given as a bool, 0/1 or 'True'/'False'/'1'/'0'."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise MXNetError(f"{iterator}: {name} must be a boolean, got {value!r}")


def int_param(iterator: str, name: str, value, minimum: int | None = None) -> int:
    """An integer parameter given as an int or a string of digits, at least `minimum`."""
    number = None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        number = int(value)
    if number is None:
        raise MXNetError(f"{iterator}: {name} must be an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise MXNetError(f"{iterator}: {name} must be at least {minimum}, got {number}")
    return number


def shape_param(iterator: str, name: str, value) -> tuple[int, ...]:
    """A shape given as an int, a tuple/list of ints or a string such as '(3, 28, 28)'."""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise MXNetError(
                f"{iterator}: {name} must be a shape such as (3, 28, 28), got {value!r}"
            ) from None
    if isinstance(parsed, (int, np.integer)) and not isinstance(parsed, bool):
        parsed = (parsed,)
    if (
        not isinstance(parsed, (tuple, list))
        or not parsed
        or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in parsed)
    ):
        raise MXNetError(f"{iterator}: {name} must be a shape of positive integers, got {value!r}")
    return tuple(int(d) for d in parsed)


def dtype_param(iterator: str, value, allowed=OUTPUT_DTYPES) -> np.dtype:
    """The output dtype: float32 for None, else one of `allowed` (a name, numpy type or dtype)."""
    if value is None or (isinstance(value, str) and value.strip() in ("None", "")):
        return np.dtype(np.float32)
    try:
        dtype = np.dtype(value.strip() if isinstance(value, str) else value)
    except TypeError:
        dtype = None
    if dtype is None or dtype.name not in allowed:
        raise MXNetError(f"{iterator}: dtype must be None or one of {', '.join(allowed)}, got {value!r}")
    return dtype

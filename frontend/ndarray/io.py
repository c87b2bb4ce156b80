"""MXNet's `.params` files (MXNET_COMPAT.md 11.1): `mx.nd.save`, `mx.nd.load`, `mx.nd.load_frombuffer`.

`save` writes exactly what MXNet 1.9.1 writes (V2 records, little-endian), atomically. `load` reads
V2, V1 (0xF993FAC8), pre-V1 (no magic) and V3 (0xF993FACA, numpy shapes) records; a "none" array
(shape without dimensions) loads as None. A malformed file raises ArtifactError with one sentence
naming the file and what is wrong, never a crash.
"""

from __future__ import annotations

import math
import os
import struct

import numpy as np

from ember.compiler.dtypes import CODE_TO_DTYPE, DTYPE_CODES
from ember.runtime.errors import ArtifactError, MXNetError
from ember.runtime.files import write_atomic

from ..context import Context, cpu
from .ndarray import NDArray

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8  # int64 dims, no storage type
V2_MAGIC = 0xF993FAC9  # storage type + int64 dims: what MXNet 1.x writes
V3_MAGIC = 0xF993FACA  # as V2, with numpy shape semantics (0-d arrays allowed)
MAX_LEGACY_NDIM = 32  # a pre-V1 record starts with its ndim; larger values are not a plausible ndim
STORAGE_TYPES = {0: "default", 1: "row_sparse", 2: "csr"}
UNSUPPORTED_DTYPE_CODES = {12: "bfloat16"}


# -- writing --------------------------------------------------------------------------------------


def save(fname, data) -> None:
    """Save an NDArray, a list of NDArrays or a dict str -> NDArray to `fname` in MXNet's format.

    The file is written atomically: to a temporary file in the same folder, then renamed over `fname`.
    """
    write_atomic(fname, [save_tobuffer(data)])


def save_tobuffer(data) -> bytes:
    """The bytes `save` would write for `data` (an NDArray, a list of them or a dict str -> NDArray)."""
    if isinstance(data, NDArray):
        data = [data]
    if isinstance(data, dict):
        if not all(isinstance(k, str) for k in data) or not all(_is_savable(v) for v in data.values()):
            raise TypeError("save only accept dict str->NDArray or list of NDArray")
        names, arrays = list(data), list(data.values())
    elif isinstance(data, list):
        if not all(_is_savable(v) for v in data):
            raise TypeError("save only accept dict str->NDArray or list of NDArray")
        names, arrays = [], data
    else:
        raise ValueError(
            "data needs to either be a NDArray, dict of str, NDArray pairs or a list of NDarrays."
        )
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    parts += [encode_array(array) for array in arrays]
    parts.append(struct.pack("<Q", len(names)))
    for name in names:
        encoded = name.encode("utf-8")
        parts += [struct.pack("<Q", len(encoded)), encoded]
    return b"".join(parts)


def _is_savable(value) -> bool:
    return value is None or isinstance(value, NDArray)


def encode_array(array: NDArray | None) -> bytes:
    """One array record: V2 (V3 for a 0-d array); None gives a "none" record."""
    if array is None:
        return struct.pack("<Iii", V2_MAGIC, 0, 0)
    data = array._data
    if data.dtype.name not in DTYPE_CODES:
        raise MXNetError(f"cannot save an NDArray of dtype {data.dtype.name}: the format has no code for it")
    magic = V3_MAGIC if data.ndim == 0 else V2_MAGIC
    header = struct.pack(f"<Iii{data.ndim}q", magic, 0, data.ndim, *data.shape)
    ctx = array.context
    header += struct.pack("<iii", ctx.device_typeid, ctx.device_id, DTYPE_CODES[data.dtype.name])
    return header + np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes()


# -- reading --------------------------------------------------------------------------------------


def load(fname) -> dict | list:
    """The arrays in an MXNet `.params` file: a dict if it was saved with names, else a list."""
    path = os.fspath(fname)
    try:
        with open(path, "rb") as stream:
            buffer = stream.read()
    except FileNotFoundError:
        raise ArtifactError(f"cannot load '{path}': no such file") from None
    except OSError as err:
        raise ArtifactError(f"cannot load '{path}': {err.strerror or err}") from None
    return decode_list(buffer, f"'{path}'")


def load_frombuffer(buf) -> dict | list:
    """The arrays in the bytes of an MXNet `.params` file: a dict or a list, as `load` returns."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise TypeError("buf required to be a string or bytes")
    return decode_list(bytes(buf), "the buffer")


class _Reader:
    """Reads little-endian values from a buffer; running past its end raises ArtifactError."""

    def __init__(self, buffer: bytes, source: str):
        self.buffer, self.source, self.pos = buffer, source, 0

    def take(self, size: int, what: str) -> bytes:
        remaining = len(self.buffer) - self.pos
        if size > remaining:
            raise ArtifactError(
                f"{self.source} is truncated: {what} needs {size} bytes at byte {self.pos}, "
                f"but only {remaining} remain"
            )
        chunk = self.buffer[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def decode_list(buffer: bytes, source: str) -> dict | list:
    """Parse a whole `.params` file held in `buffer`; `source` names it in error messages."""
    if not buffer:
        raise ArtifactError(f"{source} is empty, not an MXNet NDArray file")
    reader = _Reader(buffer, source)
    (magic,) = reader.unpack("Q", "the list header")
    if magic != LIST_MAGIC:
        raise ArtifactError(
            f"{source} is not an MXNet NDArray file: "
            f"it starts with 0x{magic:x} instead of the magic number 0x112"
        )
    reader.unpack("Q", "the reserved header field")
    (count,) = reader.unpack("Q", "the array count")
    arrays = [_read_array(reader, f"array {i}") for i in range(count)]
    (name_count,) = reader.unpack("Q", "the name count")
    if name_count not in (0, count):
        raise ArtifactError(f"{source} is corrupt: it holds {count} arrays but {name_count} names")
    names = [_read_name(reader, i) for i in range(name_count)]
    if reader.pos != len(buffer):
        raise ArtifactError(
            f"{source} has {len(buffer) - reader.pos} unexpected bytes after its last record "
            f"(from byte {reader.pos})"
        )
    return dict(zip(names, arrays)) if names else arrays


def decode_array(buffer: bytes, source: str) -> NDArray | None:
    """Parse a buffer holding exactly one array record (what pickled MXNet NDArrays carry)."""
    reader = _Reader(buffer, source)
    array = _read_array(reader, "the array")
    if reader.pos != len(buffer):
        raise ArtifactError(
            f"{source} has {len(buffer) - reader.pos} unexpected bytes after its array record"
        )
    return array


def _read_name(reader: _Reader, index: int) -> str:
    (length,) = reader.unpack("Q", f"the length of name {index}")
    raw = reader.take(length, f"name {index}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(f"{reader.source} is corrupt: name {index} is not valid UTF-8") from None


def _read_array(reader: _Reader, label: str) -> NDArray | None:
    start = reader.pos
    (magic,) = reader.unpack("I", f"the magic number of {label}")
    if magic in (V2_MAGIC, V3_MAGIC):
        (stype,) = reader.unpack("i", f"the storage type of {label}")
        if stype != 0:
            kind = STORAGE_TYPES.get(stype)
            if kind is None:
                raise ArtifactError(f"{reader.source} is corrupt: {label} has unknown storage type {stype}")
            raise ArtifactError(
                f"{reader.source}: {label} uses {kind} (sparse) storage, which Ember does not support; "
                "only dense arrays can be loaded"
            )
        shape = _read_shape(reader, label, numpy_semantics=magic == V3_MAGIC)
    elif magic == V1_MAGIC:
        shape = _read_shape(reader, label, numpy_semantics=False)
    elif magic <= MAX_LEGACY_NDIM:  # pre-V1: the first word is ndim, then uint32 dims
        shape = reader.unpack(f"{magic}I", f"the shape of {label}") or None
    else:
        raise ArtifactError(
            f"{reader.source} is corrupt: {label} (at byte {start}) starts with 0x{magic:08x}, "
            "which is neither an NDArray magic number nor a plausible dimension count"
        )
    if shape is None:
        return None
    dev_type, _dev_id = reader.unpack("ii", f"the context of {label}")
    if dev_type not in Context.devtype2str:
        raise ArtifactError(f"{reader.source} is corrupt: {label} has unknown device type code {dev_type}")
    (code,) = reader.unpack("i", f"the dtype code of {label}")
    dtype = _dtype_of(code, reader.source, label)
    size = math.prod(shape)
    raw = reader.take(size * dtype.itemsize, f"the data of {label}")
    data = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    return NDArray(data, cpu(0))  # MXNet loads every array into CPU memory first, GPU ones too


def _read_shape(reader: _Reader, label: str, numpy_semantics: bool) -> tuple | None:
    """int32 ndim + int64 dims; None for a "none" array (ndim 0 in legacy files, unknown in V3)."""
    (ndim,) = reader.unpack("i", f"the dimension count of {label}")
    if numpy_semantics and ndim == -1:
        return None
    if ndim < 0:
        raise ArtifactError(f"{reader.source} is corrupt: {label} has a negative dimension count {ndim}")
    if ndim == 0 and not numpy_semantics:
        return None
    dims = reader.unpack(f"{ndim}q", f"the shape of {label}")
    if numpy_semantics and -1 in dims:
        return None
    if any(d < 0 for d in dims):
        raise ArtifactError(f"{reader.source} is corrupt: {label} has a negative dimension in shape {dims}")
    return tuple(dims)


def _dtype_of(code: int, source: str, label: str) -> np.dtype:
    if code in CODE_TO_DTYPE:
        return np.dtype(CODE_TO_DTYPE[code])
    if code in UNSUPPORTED_DTYPE_CODES:
        raise ArtifactError(
            f"{source}: {label} has dtype {UNSUPPORTED_DTYPE_CODES[code]}, which Ember does not support"
        )
    raise ArtifactError(f"{source} is corrupt: {label} has unknown dtype code {code}")

"""One array record of MXNet's binary NDArray format, on NumPy data (MXNET_COMPAT.md 11.1).

`.params` files (`io.py`) are lists of these records, and a pickled NDArray carries one, so both
the file functions and the NDArray's pickling use this module, which needs no NDArray class.
Records are written as V2 (V3 for a 0-d array) and read as V2, V1 (0xF993FAC8), pre-V1 (no magic)
and V3 (0xF993FACA, numpy shapes); a malformed record raises ArtifactError naming the source.
Sizes are checked before anything is allocated: a record's shape is multiplied out in Python integers
and its data must fit in the bytes that remain, so a corrupt header can never ask for more memory than
the file itself holds.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from ember.compiler.dtypes import CODE_TO_DTYPE, DTYPE_CODES
from ember.runtime.errors import ArtifactError, MXNetError
from ember.runtime.manifest import MAX_NDIM

from ..context import Context

V1_MAGIC = 0xF993FAC8  # int64 dims, no storage type
V2_MAGIC = 0xF993FAC9  # storage type + int64 dims: what MXNet 1.x writes
V3_MAGIC = 0xF993FACA  # as V2, with numpy shape semantics (0-d arrays allowed)
MAX_LEGACY_NDIM = 32  # a pre-V1 record starts with its ndim; larger values are not a plausible ndim
MIN_RECORD_BYTES = 4  # the shortest record: a pre-V1 "none" array, one zero word
MAX_ARRAY_BYTES = 2**63 - 1  # NumPy's limit on the byte size of any array, empty ones included
STORAGE_TYPES = {0: "default", 1: "row_sparse", 2: "csr"}
UNSUPPORTED_DTYPE_CODES = {12: "bfloat16"}


def encode_record(data: np.ndarray | None, ctx: Context | None) -> bytes:
    """One record of `data` on `ctx`: V2 (V3 for a 0-d array); None gives a "none" record."""
    if data is None:
        return struct.pack("<Iii", V2_MAGIC, 0, 0)
    if data.dtype.name not in DTYPE_CODES:
        raise MXNetError(f"cannot save an NDArray of dtype {data.dtype.name}: the format has no code for it")
    magic = V3_MAGIC if data.ndim == 0 else V2_MAGIC
    header = struct.pack(f"<Iii{data.ndim}q", magic, 0, data.ndim, *data.shape)
    header += struct.pack("<iii", ctx.device_typeid, ctx.device_id, DTYPE_CODES[data.dtype.name])
    return header + np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes()


class Reader:
    """Reads little-endian values from a buffer; running past its end raises ArtifactError."""

    def __init__(self, buffer: bytes, source: str):
        self.buffer, self.source, self.pos = buffer, source, 0

    @property
    def remaining(self) -> int:
        """How many bytes are left after the reading position."""
        return len(self.buffer) - self.pos

    def take(self, size: int, what: str) -> bytes:
        remaining = self.remaining
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


def decode_record(buffer: bytes, source: str) -> np.ndarray | None:
    """The data of a buffer holding exactly one record (what pickled MXNet NDArrays carry)."""
    reader = Reader(buffer, source)
    data = read_record(reader, "the array")
    if reader.pos != len(buffer):
        raise ArtifactError(
            f"{source} has {len(buffer) - reader.pos} unexpected bytes after its array record"
        )
    return data


def decode_pickled_state(state, source: str = "pickled NDArray") -> np.ndarray | None:
    """The data of an NDArray's pickled state, `{"handle": <one record's bytes>}` as MXNet pickles it;
    any other shape of state raises ArtifactError instead of reaching `bytes()` (which would allocate
    an integer's worth of zeros)."""
    handle = state.get("handle") if isinstance(state, dict) else None
    if not isinstance(handle, (bytes, bytearray, memoryview)):
        got = type(state).__name__
        if isinstance(state, dict):
            got = f"a dict whose handle is {type(handle).__name__}"
        raise ArtifactError(
            f"{source} is corrupt: its state must be a dict whose 'handle' holds the bytes of one array "
            f"record, got {got}"
        )
    return decode_record(bytes(handle), source)


def read_record(reader: Reader, label: str) -> np.ndarray | None:
    """The data of the record at the reader's position (None for a "none" array); `label` names it
    in error messages."""
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
    raw = reader.take(_data_bytes(reader, label, shape, dtype), f"the data of {label}")
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _data_bytes(reader: Reader, label: str, shape: tuple, dtype: np.dtype) -> int:
    """The byte size of a record's data, checked against the bytes left and NumPy's limits before any
    allocation; products are exact Python integers, so no size wraps around."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > reader.remaining:
        raise ArtifactError(
            f"{reader.source} is truncated: the data of {label} needs {nbytes} bytes at byte {reader.pos}, "
            f"but only {reader.remaining} remain (shape {shape} of {dtype.name} has more elements than "
            "the file holds)"
        )
    extent = math.prod(d for d in shape if d) * dtype.itemsize  # NumPy bounds this even for empty arrays
    if extent > MAX_ARRAY_BYTES:
        raise ArtifactError(
            f"{reader.source} is corrupt: {label} has shape {shape}, whose nonzero dimensions span "
            f"{extent} bytes of {dtype.name}, more than any array can address"
        )
    return nbytes


def _read_shape(reader: Reader, label: str, numpy_semantics: bool) -> tuple | None:
    """int32 ndim + int64 dims; None for a "none" array (ndim 0 in legacy files, unknown in V3)."""
    (ndim,) = reader.unpack("i", f"the dimension count of {label}")
    if numpy_semantics and ndim == -1:
        return None
    if ndim < 0:
        raise ArtifactError(f"{reader.source} is corrupt: {label} has a negative dimension count {ndim}")
    if ndim > MAX_NDIM:
        raise ArtifactError(
            f"{reader.source} is corrupt: {label} has {ndim} dimensions, more than {MAX_NDIM}"
        )
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

"""MXNet's `.params` files (MXNET_COMPAT.md 11.1): `mx.nd.save`, `mx.nd.load`, `mx.nd.load_frombuffer`.

`save` writes exactly what MXNet 1.9.1 writes (V2 records, little-endian), atomically. `load` reads
every record version `records.py` reads; a "none" array (shape without dimensions) loads as None. A
malformed file raises ArtifactError with one sentence naming the file and what is wrong, never a
crash.
"""

from __future__ import annotations

import os
import struct

from ember.runtime.errors import ArtifactError
from ember.runtime.files import open_regular_file, write_atomic

from ..context import cpu
from .ndarray import NDArray
from .records import MIN_RECORD_BYTES, Reader, decode_record, encode_record, read_record

LIST_MAGIC = 0x112
NAME_LENGTH_BYTES = 8  # each name starts with its uint64 length


# -- writing --------------------------------------------------------------------------------------


def save(fname, data) -> None:
    """Save an NDArray, a list of NDArrays or a dict str -> NDArray to `fname` in MXNet's format.

    The file is written atomically: to a temporary file in the same folder, then renamed over `fname`;
    a full disk raises DiskFullError (an ArtifactError) and leaves the previous file as it was.
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
        return encode_record(None, None)
    return encode_record(array.host_buffer(), array.context)


# -- reading --------------------------------------------------------------------------------------


def load(fname) -> dict | list:
    """The arrays in an MXNet `.params` file: a dict if it was saved with names, else a list."""
    path = os.fspath(fname)
    try:
        with open(path, "rb", opener=open_regular_file) as stream:  # a FIFO or device is refused
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


def decode_list(buffer: bytes, source: str) -> dict | list:
    """Parse a whole `.params` file held in `buffer`; `source` names it in error messages."""
    if not buffer:
        raise ArtifactError(f"{source} is empty, not an MXNet NDArray file")
    reader = Reader(buffer, source)
    (magic,) = reader.unpack("Q", "the list header")
    if magic != LIST_MAGIC:
        raise ArtifactError(
            f"{source} is not an MXNet NDArray file: "
            f"it starts with 0x{magic:x} instead of the magic number 0x112"
        )
    reader.unpack("Q", "the reserved header field")
    count = _read_count(reader, "array count", MIN_RECORD_BYTES)
    arrays = [_read_array(reader, f"array {i}") for i in range(count)]
    name_count = _read_count(reader, "name count", NAME_LENGTH_BYTES)
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
    data = decode_record(buffer, source)
    return None if data is None else NDArray(data, cpu(0))


def _read_count(reader: Reader, field: str, min_item_bytes: int) -> int:
    """A uint64 count of items, refused when the bytes after it could not hold that many items."""
    (count,) = reader.unpack("Q", f"the {field}")
    if count * min_item_bytes > reader.remaining:
        raise ArtifactError(
            f"{reader.source} is truncated: its {field} is {count}, more than the {reader.remaining} bytes "
            f"after it (from byte {reader.pos}) can hold"
        )
    return count


def _read_name(reader: Reader, index: int) -> str:
    (length,) = reader.unpack("Q", f"the length of name {index}")
    raw = reader.take(length, f"name {index}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(f"{reader.source} is corrupt: name {index} is not valid UTF-8") from None


def _read_array(reader: Reader, label: str) -> NDArray | None:
    data = read_record(reader, label)
    return None if data is None else NDArray(data, cpu(0))  # MXNet loads every array into CPU memory first

"""Reading IDX files, the format of the MNIST data set, raw or gzip-compressed.

An IDX file is a big-endian header (two zero bytes, an element-type code, the number of dimensions,
then one 32-bit size per dimension) followed by the elements. `read_idx` returns the unsigned-byte
payload as a NumPy array (no copy) and raises ArtifactError naming the file for anything malformed.
Sizes are checked before data is read: the header's dimensions are multiplied in Python integers and
must fit in what the file can hold (its length, or for a gzip file the most deflate can expand it to),
and a gzip file is decompressed in pieces, never past what the header promises, so a gzip bomb costs
no more memory than an honest file of its header's size. `DataFile` is shared with `CSVIter`.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from ember.runtime.errors import ArtifactError
from ember.runtime.files import NotRegularFileError, open_regular_file

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08  # the element-type code of unsigned bytes, the only type MNIST uses
MNIST_MAGIC = {3: 2051, 1: 2049}  # unsigned bytes with 3 dimensions (images) or 1 (labels)
MAX_DIM = 2**31 - 1
DEFLATE_MAX_RATIO = 1032  # deflate's largest possible expansion: 258 bytes per (at best) 2 bits
READ_CHUNK = 1 << 20
EXCESS_PROBE = 1 << 16  # how far past the promised payload `read_idx` reads to report extra bytes
GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


class DataFile:
    """The content of a regular file, gunzipped on the fly when it starts with gzip's magic bytes.

    `capacity` bounds how many content bytes the file can yield; `read(limit)` returns at most `limit`
    of them, reading in pieces so that memory follows the data actually there, not a claim. Read
    failures raise ArtifactError naming the file (`what` says which file it is: "MNISTIter image file").
    """

    def __init__(self, path: str, what: str):
        self.path, self.what = path, what
        self._raw = _open_data_file(path, what)
        try:
            self.file_size = os.fstat(self._raw.fileno()).st_size
            self.gzipped = self._read_raw(2) == GZIP_MAGIC
            self._raw.seek(0)
        except BaseException:
            self._raw.close()
            raise
        self.capacity = self.file_size * DEFLATE_MAX_RATIO if self.gzipped else self.file_size
        self._stream = gzip.GzipFile(fileobj=self._raw, mode="rb") if self.gzipped else self._raw

    def __enter__(self) -> DataFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        self._stream.close()
        self._raw.close()

    def read(self, limit: int) -> bytes:
        """Up to `limit` bytes of content from the current position (fewer only at the end)."""
        if not self.gzipped:  # one read, bounded by the file's length
            return self._read_raw(min(limit, self.capacity))
        chunks, total = [], 0
        while total < limit:
            chunk = self._gunzip(min(READ_CHUNK, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)

    def _gunzip(self, size: int) -> bytes:
        try:
            return self._stream.read(size)
        except GZIP_ERRORS as err:
            raise ArtifactError(
                f"{self.what} '{self.path}' is a corrupt or truncated gzip file: {err}"
            ) from None

    def _read_raw(self, size: int) -> bytes:
        try:
            return self._raw.read(size)
        except OSError as err:
            raise ArtifactError(f"{self.what} '{self.path}' cannot be read: {err.strerror or err}") from None


def _open_data_file(path: str, what: str):
    """`path` opened for binary reading, refused unless it is a regular file (files.open_regular_file:
    a FIFO is refused without waiting for a writer, a device such as /dev/zero before anything is read)."""
    try:
        return open(path, "rb", opener=open_regular_file)
    except FileNotFoundError:
        raise ArtifactError(f"{what} '{path}' does not exist (No such file or directory)") from None
    except NotRegularFileError:
        raise ArtifactError(f"{what} '{path}' cannot be read: it is not a regular file") from None
    except OSError as err:
        raise ArtifactError(f"{what} '{path}' cannot be read: {err.strerror or err}") from None


def read_file_bytes(path: str, what: str) -> bytes:
    """The whole content of the regular file at `path`, gunzipped when it starts with gzip's magic."""
    with DataFile(path, what) as source:
        return source.read(source.capacity)


def read_idx(path: str | os.PathLike, what: str, ndim: int) -> np.ndarray:
    """The `ndim`-dimensional unsigned-byte array stored in the IDX file at `path`.

    `what` names the file in errors ("MNISTIter image file"). The header must carry MNIST's magic
    number for `ndim` (2051 for 3 dimensions, 2049 for 1), and the payload must be exactly as long as
    the header's sizes say.
    """
    path = os.fspath(path)
    with DataFile(path, what) as source:
        dims = _read_header(source, ndim)
        size = math.prod(dims)
        _check_capacity(source, ndim, dims, size)
        payload = source.read(size + EXCESS_PROBE)
    if len(payload) < size:
        raise ArtifactError(
            f"{what} '{path}' is truncated: its header promises {size} bytes of data for dimensions {dims}, "
            f"but only {len(payload)} follow"
        )
    if len(payload) > size:
        extra = len(payload) - size
        count = f"at least {extra}" if extra == EXCESS_PROBE else str(extra)
        raise ArtifactError(
            f"{what} '{path}' is malformed: {count} bytes follow the {size} bytes its header "
            f"promises for dimensions {dims}"
        )
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def header_size(ndim: int) -> int:
    """The bytes of an `ndim`-dimensional IDX header: the magic number and one size per dimension."""
    return 4 + 4 * ndim


def _read_header(source: DataFile, ndim: int) -> tuple[int, ...]:
    """The dimensions in the header of `source`, after checking its magic number and sizes."""
    where = f"{source.what} '{source.path}'"
    needed = header_size(ndim)
    header = source.read(needed)
    if len(header) < 4:
        raise ArtifactError(f"{where} is truncated: {len(header)} bytes, too short for an IDX header")
    magic = int.from_bytes(header[:4], "big")
    expected = MNIST_MAGIC[ndim]
    if magic != expected:
        raise ArtifactError(
            f"{where} is not an IDX file of {ndim}-D unsigned bytes: its magic number is {magic}, "
            f"expected {expected}{_swapped_hint(magic)}"
        )
    if len(header) < needed:
        raise ArtifactError(
            f"{where} is truncated: {len(header)} bytes, but its {ndim}-D IDX header needs {needed}"
        )
    dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims[1:]) or any(d > MAX_DIM for d in dims):
        raise ArtifactError(f"{where} has an invalid header: dimensions {dims}")
    return dims


def _check_capacity(source: DataFile, ndim: int, dims: tuple[int, ...], size: int) -> None:
    """Refuse a header that promises more data than the file can hold, before reading the data."""
    available = source.capacity - header_size(ndim)
    if size <= available:
        return
    where = f"{source.what} '{source.path}'"
    if source.gzipped:
        raise ArtifactError(
            f"{where} is corrupt: its header promises {size} bytes of data for dimensions {dims}, more than "
            f"a {source.file_size}-byte gzip file can expand to ({DEFLATE_MAX_RATIO}:1 at most)"
        )
    raise ArtifactError(
        f"{where} is truncated: its header promises {size} bytes of data for dimensions {dims}, "
        f"but only {available} follow"
    )


def _swapped_hint(magic: int) -> str:
    for ndim, other in MNIST_MAGIC.items():
        if magic == other:
            kind = "an image file" if ndim == 3 else "a label file"
            return f" ({other} marks {kind}; are the image and label paths swapped?)"
    return ""

"""Reading IDX files, the format of the MNIST data set, raw or gzip-compressed.

An IDX file is a big-endian header (two zero bytes, an element-type code, the number of dimensions,
then one 32-bit size per dimension) followed by the elements. `read_idx` returns the unsigned-byte
payload as a NumPy array (no copy) and raises ArtifactError naming the file for anything malformed.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np
from ember.runtime.errors import ArtifactError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08  # the element-type code of unsigned bytes, the only type MNIST uses
MNIST_MAGIC = {3: 2051, 1: 2049}  # unsigned bytes with 3 dimensions (images) or 1 (labels)


def read_file_bytes(path: str, what: str) -> bytes:
    """The bytes of the file at `path`, gunzipped when it starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except FileNotFoundError:
        raise ArtifactError(f"{what} '{path}' does not exist (No such file or directory)") from None
    except OSError as err:
        raise ArtifactError(f"{what} '{path}' cannot be read: {err.strerror or err}") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ArtifactError(f"{what} '{path}' is a corrupt or truncated gzip file: {err}") from None


def read_idx(path: str | os.PathLike, what: str, ndim: int) -> np.ndarray:
    """The `ndim`-dimensional unsigned-byte array stored in the IDX file at `path`.

    `what` names the file in errors ("MNISTIter image file"). The header must carry MNIST's magic
    number for `ndim` (2051 for 3 dimensions, 2049 for 1), and the payload must be exactly as long as
    the header's sizes say.
    """
    path = os.fspath(path)
    content = read_file_bytes(path, what)
    header_size = 4 + 4 * ndim
    if len(content) < 4:
        raise ArtifactError(
            f"{what} '{path}' is truncated: {len(content)} bytes, too short for an IDX header"
        )
    magic = int.from_bytes(content[:4], "big")
    expected = MNIST_MAGIC[ndim]
    if magic != expected:
        raise ArtifactError(
            f"{what} '{path}' is not an IDX file of {ndim}-D unsigned bytes: its magic number is {magic}, "
            f"expected {expected}{_swapped_hint(magic)}"
        )
    if len(content) < header_size:
        raise ArtifactError(
            f"{what} '{path}' is truncated: {len(content)} bytes, but its {ndim}-D IDX header needs {header_size}"
        )
    dims = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims[1:]) or any(d > 2**31 - 1 for d in dims):
        raise ArtifactError(f"{what} '{path}' has an invalid header: dimensions {dims}")
    size = int(np.prod(dims, dtype=np.int64))
    payload = len(content) - header_size
    if payload < size:
        raise ArtifactError(
            f"{what} '{path}' is truncated: its header promises {size} bytes of data for dimensions {dims}, "
            f"but only {payload} follow"
        )
    if payload > size:
        raise ArtifactError(
            f"{what} '{path}' is malformed: {payload - size} bytes follow the {size} bytes its header "
            f"promises for dimensions {dims}"
        )
    return np.frombuffer(content, dtype=np.uint8, count=size, offset=header_size).reshape(dims)


def _swapped_hint(magic: int) -> str:
    for ndim, other in MNIST_MAGIC.items():
        if magic == other:
            kind = "an image file" if ndim == 3 else "a label file"
            return f" ({other} marks {kind}; are the image and label paths swapped?)"
    return ""

"""`mx.recordio`: reading and writing MXNet's RecordIO files, byte for byte as MXNet 1.9.1 (dmlc-core) does.

A file is a sequence of records. Each is stored as one or more parts: the little-endian word 0xced7230a
(the magic), a little-endian word holding the part's flag in its top 3 bits and its length in the low
29, the part's bytes, and zero padding to a multiple of 4 bytes. A record whose data holds the magic at
a 4-aligned offset is cut there: the magic itself is dropped and the pieces are stored as parts flagged
1 (first), 2 (middle) and 3 (last); a reader joins them with the magic. A record that needs no cut is one
part flagged 0. `MXIndexedRecordIO` adds a text index (`key<TAB>byte offset` per line) for random
access. `pack`/`unpack` add MXNet's image-record header (`IRHeader`); `pack_img`/`unpack_img` encode
images with OpenCV (cv2), when it is installed.

Crashes: a writer truncates its file when it opens it, as MXNet's does, and writes each record with one
call. A process that dies mid-write leaves every earlier record readable; the record being written may
be cut short, and reading it raises RecordIOError naming its byte offset. An index line is written only
after the record it names has reached the file, so an index never names a record that is not there.
"""

from __future__ import annotations

import numbers
import os
import struct
from collections import namedtuple

import numpy as np

from ember.runtime.errors import MXNetError

__all__ = ["MXRecordIO", "MXIndexedRecordIO", "IRHeader", "pack", "unpack", "pack_img", "unpack_img"]

MAGIC = 0xCED7230A
MAGIC_BYTES = MAGIC.to_bytes(4, "little")
LENGTH_BITS = 29
MAX_RECORD_BYTES = (1 << LENGTH_BITS) - 1
FLAG_WHOLE, FLAG_FIRST, FLAG_MIDDLE, FLAG_LAST = 0, 1, 2, 3
_PART_HEADER = struct.Struct("<II")
_INDEX_FLUSH_BYTES = 1 << 16  # index lines held back until their records are flushed to the file


class RecordIOError(MXNetError):
    """A RecordIO or index file that cannot be opened, or whose content is not valid."""


class RecordIOUsageError(MXNetError, AssertionError):
    """A reader asked to write or a writer asked to read (MXNet 1.9.1 fails an assert there)."""


class RecordIOValueError(MXNetError, ValueError):
    """An argument MXNet 1.9.1 rejects with ValueError (an unknown flag)."""


class RecordIOTypeError(MXNetError, TypeError):
    """A record that is not bytes (MXNet 1.9.1 raises TypeError)."""


class RecordIOKeyError(MXNetError, KeyError):
    """A key the index does not hold (MXNet 1.9.1 raises KeyError)."""

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0])


def _aligned(length: int) -> int:
    """`length` rounded up to a multiple of 4: the bytes a part of that length occupies."""
    return (length + 3) & ~3


def _part(flag: int, data: bytes) -> bytes:
    return _PART_HEADER.pack(MAGIC, (flag << LENGTH_BITS) | len(data)) + data


def _magic_offsets(data: bytes) -> list[int]:
    """The 4-aligned offsets at which `data` holds the magic word (where a writer cuts the record)."""
    offsets, found = [], data.find(MAGIC_BYTES)
    while found != -1:
        if found % 4 == 0:
            offsets.append(found)
            found = data.find(MAGIC_BYTES, found + 4)
        else:
            found = data.find(MAGIC_BYTES, found + 1)
    return offsets


def frame_record(data: bytes) -> bytes:
    """The bytes a RecordIO writer stores for the record `data`: its parts and the final padding."""
    if len(data) > MAX_RECORD_BYTES:
        raise RecordIOValueError(
            f"RecordIO only accepts records of less than 2^29 bytes; this one has {len(data)}"
        )
    parts, start = [], 0
    for cut in _magic_offsets(data):
        parts.append(_part(FLAG_FIRST if start == 0 else FLAG_MIDDLE, data[start:cut]))
        start = cut + 4
    parts.append(_part(FLAG_LAST if start else FLAG_WHOLE, data[start:]))
    parts.append(bytes(_aligned(len(data)) - len(data)))
    return b"".join(parts)


def read_record(stream, where: str) -> bytes | None:
    """The next record of the binary `stream` (None at its end); `where` names the file in errors."""
    pieces = []
    while True:
        offset = stream.tell()
        header = stream.read(_PART_HEADER.size)
        if not header and not pieces:
            return None
        if len(header) < _PART_HEADER.size:
            raise RecordIOError(f"{where} is truncated: the record part at byte {offset} has no whole header")
        magic, word = _PART_HEADER.unpack(header)
        if magic != MAGIC:
            raise RecordIOError(
                f"{where} is not a valid RecordIO file: expected the magic number 0x{MAGIC:08x} at byte "
                f"{offset}, found 0x{magic:08x}"
            )
        flag, length = word >> LENGTH_BITS, word & MAX_RECORD_BYTES
        body = stream.read(_aligned(length))
        if len(body) < _aligned(length):
            raise RecordIOError(
                f"{where} is truncated: the record part at byte {offset} promises {length} bytes, "
                f"only {len(body)} follow"
            )
        pieces.append(body[:length])
        if flag in (FLAG_WHOLE, FLAG_LAST):
            return MAGIC_BYTES.join(pieces)


def _as_record_bytes(buf) -> bytes:
    if isinstance(buf, str):
        raise RecordIOTypeError("a record must be bytes, not str: encode the text first (buf.encode())")
    try:
        return bytes(memoryview(buf))
    except TypeError:
        raise RecordIOTypeError(f"a record must be bytes, got {type(buf).__name__}") from None


class MXRecordIO:
    """Sequential reading (`flag='r'`) or writing (`flag='w'`, truncating) of the RecordIO file `uri`.

    The file is opened at once. `read()` returns the next record as bytes, None after the last;
    `write(buf)` appends one. A reader copied into another process (fork) refuses to `read`, as MXNet's
    does: the file position would be shared; reopen it there (`reset()`). Pickling keeps the path, the
    flag and whether it was open: an open reader is reopened at its first record when unpickled; an open
    writer cannot be pickled (MXNet's copy would truncate the file the original is writing).
    """

    def __init__(self, uri, flag):
        self.uri = os.fspath(uri)
        self.flag = flag
        self.is_open = False
        self.writable = flag == "w"
        self.pid = None
        self._file = None
        self.open()

    def open(self):
        """Open the file: for reading at its first record, or for writing, emptied."""
        if self.flag not in ("r", "w"):
            raise RecordIOValueError("Invalid flag %s" % self.flag)
        self.writable = self.flag == "w"
        mode = "wb" if self.writable else "rb"
        try:
            self._file = open(self.uri, mode)  # noqa: SIM115 - held until close()
        except OSError as err:
            action = "writing" if self.writable else "reading"
            raise RecordIOError(
                f"cannot open RecordIO file '{self.uri}' for {action}: {err.strerror or err}"
            ) from None
        self.pid = os.getpid()
        self.is_open = True

    def close(self):
        """Close the file (a writer's records are flushed); closing twice is harmless."""
        if not self.is_open:
            return
        self.is_open = False
        self.pid = None
        self._file.close()

    def __del__(self):
        if getattr(self, "is_open", False):
            self.close()

    def reset(self):
        """Back to the first record; a writer's file is emptied."""
        self.close()
        self.open()

    def __getstate__(self) -> dict:
        if self.is_open and self.writable:
            raise RecordIOError(f"an open RecordIO writer ('{self.uri}') cannot be pickled: close it first")
        return {key: value for key, value in self.__dict__.items() if key not in self._UNPICKLED}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._file = None
        was_open, self.is_open = state["is_open"], False
        if was_open:
            self.open()

    _UNPICKLED = ("_file",)

    def _check_open(self, action: str) -> None:
        if not self.is_open:
            raise RecordIOError(f"cannot {action} RecordIO file '{self.uri}': it is closed")

    def _check_pid(self, allow_reset: bool) -> None:
        """A handle opened by another process (before a fork) is reopened, or refused."""
        if self.pid == os.getpid():
            return
        if not allow_reset:
            raise RecordIOError(
                f"Forbidden operation in multiple processes: RecordIO file '{self.uri}' was opened by "
                f"process {self.pid}; call reset() to reopen it in this one"
            )
        self.reset()

    def write(self, buf):
        """Append the record `buf` (bytes)."""
        if not self.writable:
            raise RecordIOUsageError(f"RecordIO file '{self.uri}' is opened for reading, not writing")
        self._check_open("write to")
        self._check_pid(allow_reset=False)
        self._file.write(frame_record(_as_record_bytes(buf)))

    def read(self):
        """The next record as bytes, or None when there is none left."""
        if self.writable:
            raise RecordIOUsageError(f"RecordIO file '{self.uri}' is opened for writing, not reading")
        self._check_open("read")
        self._check_pid(allow_reset=False)
        return read_record(self._file, f"RecordIO file '{self.uri}'")

    def tell(self):
        """The byte offset at which the next record will be written."""
        if not self.writable:
            raise RecordIOUsageError(
                f"tell() is for writers; RecordIO file '{self.uri}' is opened for reading"
            )
        self._check_open("tell the position of")
        return self._file.tell()


class MXIndexedRecordIO(MXRecordIO):
    """A RecordIO file `uri` with the index `idx_path` for random access by key.

    Reading: `keys` lists the keys in index order, `read_idx(key)` returns a record. Writing:
    `write_idx(key, buf)` appends a record and its index line. Keys are converted with `key_type`.
    """

    def __init__(self, idx_path, uri, flag, key_type=int):
        self.idx_path = os.fspath(idx_path)
        self.idx: dict = {}
        self.keys: list = []
        self.key_type = key_type
        self.fidx = None
        self._pending_lines: list[str] = []
        super().__init__(uri, flag)

    _UNPICKLED = ("_file", "fidx", "_pending_lines")

    def open(self):
        """Open the record file and the index: reading loads every key, writing empties both."""
        super().open()
        self.idx, self.keys, self._pending_lines = {}, [], []
        try:
            self.fidx = open(self.idx_path, self.flag, encoding="utf-8")  # noqa: SIM115
        except OSError as err:
            super().close()
            raise RecordIOError(
                f"cannot open RecordIO index '{self.idx_path}': {err.strerror or err}"
            ) from None
        if not self.writable:
            self._load_index()

    def _load_index(self) -> None:
        for number, line in enumerate(self.fidx, start=1):
            fields = line.strip().split("\t")
            try:
                key, offset = self.key_type(fields[0]), int(fields[1])
            except (IndexError, ValueError, TypeError):
                raise RecordIOError(
                    f"RecordIO index '{self.idx_path}' line {number} is not 'key<TAB>offset': {line!r}"
                ) from None
            self.idx[key] = offset
            self.keys.append(key)

    def close(self):
        """Close the record file, then the index (after the records its lines name are written)."""
        if not self.is_open:
            return
        super().close()
        self._write_pending_lines()
        self.fidx.close()

    def _write_pending_lines(self) -> None:
        if self._pending_lines:
            self.fidx.write("".join(self._pending_lines))
            self._pending_lines = []

    def seek(self, idx):
        """Move the reader to the record of key `idx` (reopening the file in a forked process)."""
        if self.writable:
            raise RecordIOUsageError(f"RecordIO file '{self.uri}' is opened for writing, not reading")
        self._check_open("seek in")
        self._check_pid(allow_reset=True)
        if idx not in self.idx:
            raise RecordIOKeyError(f"key {idx!r} is not in RecordIO index '{self.idx_path}'")
        self._file.seek(self.idx[idx])

    def read_idx(self, idx):
        """The record of key `idx`."""
        self.seek(idx)
        return self.read()

    def write_idx(self, idx, buf):
        """Append the record `buf` under key `idx`."""
        key = self.key_type(idx)
        position = self.tell()
        self.write(buf)
        self._pending_lines.append("%s\t%d\n" % (str(key), position))
        self.idx[key] = position
        self.keys.append(key)
        if sum(map(len, self._pending_lines)) >= _INDEX_FLUSH_BYTES:
            self._file.flush()
            self._write_pending_lines()


IRHeader = namedtuple("HEADER", ["flag", "label", "id", "id2"])
IRHeader.__doc__ = """The header MXNet puts before an image record: `flag` (the number of float labels that
follow the header, 0 for one label kept in `label`), `label` (a number, or an array of them), `id` and `id2`
(the record's id, its low and high 64 bits)."""

_IR_FORMAT = "<IfQQ"
_IR_SIZE = struct.calcsize(_IR_FORMAT)


def pack(header, s):
    """`s` (bytes) behind the 24-byte image-record header; an array `header.label` is stored as float32
    values between the two (the header's flag then counts them)."""
    header = IRHeader(*header)
    if isinstance(header.label, numbers.Number):
        header = header._replace(flag=0)
    else:
        label = np.asarray(header.label, dtype=np.float32)
        header = header._replace(flag=label.size, label=0)
        s = label.tobytes() + s
    return struct.pack(_IR_FORMAT, *header) + s


def unpack(s):
    """(IRHeader, payload bytes) of a record made by `pack`; an array label comes back as float32."""
    if len(s) < _IR_SIZE:
        raise RecordIOError(f"an image record needs a {_IR_SIZE}-byte header; this record has {len(s)} bytes")
    header = IRHeader(*struct.unpack(_IR_FORMAT, s[:_IR_SIZE]))
    s = s[_IR_SIZE:]
    if header.flag > 0:
        if len(s) < header.flag * 4:
            raise RecordIOError(
                f"the image record's header promises {header.flag} float32 labels, "
                f"but only {len(s)} bytes follow"
            )
        header = header._replace(label=np.frombuffer(s, np.float32, header.flag))
        s = s[header.flag * 4 :]
    return header, s


def require_cv2(what: str):
    """The cv2 module, or an MXNetError saying that `what` needs OpenCV."""
    try:
        import cv2
    except ImportError:
        raise MXNetError(
            f"{what} needs OpenCV to encode or decode images, and the cv2 module is not installed "
            "(pip install opencv-python-headless)"
        ) from None
    return cv2


def unpack_img(s, iscolor=-1):
    """(IRHeader, image as a NumPy array) of a record made by `pack_img`; `iscolor` is cv2.imdecode's
    flag (-1 as stored, 0 grey, 1 color in BGR order)."""
    cv2 = require_cv2("recordio.unpack_img")
    header, s = unpack(s)
    img = cv2.imdecode(np.frombuffer(s, dtype=np.uint8), iscolor)
    if img is None:
        raise RecordIOError("recordio.unpack_img: the record's payload is not an image OpenCV can decode")
    return header, img


def pack_img(header, img, quality=95, img_fmt=".jpg"):
    """`pack(header, encoded)` of the image `img` encoded by OpenCV as `img_fmt` ('.jpg' with JPEG
    `quality` 1-100, '.png' with compression level `quality` 0-9)."""
    cv2 = require_cv2("recordio.pack_img")
    encode_params = None
    if img_fmt.upper() in (".JPG", ".JPEG"):
        encode_params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif img_fmt.upper() == ".PNG":
        encode_params = [cv2.IMWRITE_PNG_COMPRESSION, quality]
    ret, buf = cv2.imencode(img_fmt, img, encode_params)
    if not ret:
        raise RecordIOError(f"recordio.pack_img: OpenCV failed to encode the image as {img_fmt}")
    return pack(header, buf.tobytes())

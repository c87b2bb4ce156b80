"""mx.recordio: the byte format of MXNet 1.9.1 (dmlc-core's RecordIO), checked against bytes built by hand
from the format (magic 0xced7230a, flag in the length word's top 3 bits, 4-byte padding, records cut where
they hold the magic), the index file's text, the image-record header, pickling, forked readers, and what a
crash mid-write leaves."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from ember import recordio
from ember.base import MXNetError
from ember.recordio import IRHeader, MXIndexedRecordIO, MXRecordIO, RecordIOError

MAGIC = b"\x0a\x23\xd7\xce"  # 0xced7230a, little-endian


def word(flag: int, length: int) -> bytes:
    return struct.pack("<I", (flag << 29) | length)


def write_records(path, records) -> None:
    writer = MXRecordIO(str(path), "w")
    for record in records:
        writer.write(record)
    writer.close()


def read_all(path) -> list[bytes]:
    reader = MXRecordIO(str(path), "r")
    records = []
    while (record := reader.read()) is not None:
        records.append(record)
    reader.close()
    return records


@pytest.mark.parametrize(
    "record, stored",
    [
        (b"abc", MAGIC + word(0, 3) + b"abc\0"),
        (b"", MAGIC + word(0, 0)),
        (b"abcd", MAGIC + word(0, 4) + b"abcd"),
        # the magic at an aligned offset: cut there, the magic dropped, parts flagged first / last
        (b"ABCD" + MAGIC + b"EFGHIJ", MAGIC + word(1, 4) + b"ABCD" + MAGIC + word(3, 6) + b"EFGHIJ\0\0"),
        (MAGIC + b"xy", MAGIC + word(1, 0) + MAGIC + word(3, 2) + b"xy\0\0"),
        (MAGIC + MAGIC, MAGIC + word(1, 0) + MAGIC + word(2, 0) + MAGIC + word(3, 0)),
        # the magic at an unaligned offset is data like any other
        (b"x" + MAGIC, MAGIC + word(0, 5) + b"x" + MAGIC + b"\0\0\0"),
    ],
)
def test_writer_stores_records_as_mxnet_does_and_reads_them_back(tmp_path, record, stored):
    path = tmp_path / "r.rec"
    write_records(path, [record])
    assert path.read_bytes() == stored
    assert read_all(path) == [record]


def test_reader_reads_a_file_built_by_hand(tmp_path):
    path = tmp_path / "hand.rec"
    path.write_bytes(MAGIC + word(0, 2) + b"hi\0\0" + MAGIC + word(1, 0) + MAGIC + word(3, 1) + b"z\0\0\0")
    assert read_all(path) == [b"hi", MAGIC + b"z"]


def test_tell_reset_and_write_positions_as_mxnet_docstring(tmp_path):
    writer = MXIndexedRecordIO(str(tmp_path / "t.idx"), str(tmp_path / "t.rec"), "w")
    positions = [writer.tell()]
    for i in range(5):
        writer.write_idx(i, b"record_%d" % i)
        positions.append(writer.tell())
    writer.close()
    assert positions == [0, 16, 32, 48, 64, 80]
    assert (tmp_path / "t.idx").read_text() == "0\t0\n1\t16\n2\t32\n3\t48\n4\t64\n"
    reader = MXIndexedRecordIO(str(tmp_path / "t.idx"), str(tmp_path / "t.rec"), "r")
    assert reader.keys == [0, 1, 2, 3, 4] and reader.read_idx(3) == b"record_3"
    assert reader.read() == b"record_4" and reader.read() is None
    reader.reset()
    assert reader.read() == b"record_0"
    reader.close()


def test_reset_empties_a_writers_file(tmp_path):
    writer = MXRecordIO(str(tmp_path / "e.rec"), "w")
    writer.write(b"gone")
    writer.reset()
    writer.write(b"kept")
    writer.close()
    assert read_all(tmp_path / "e.rec") == [b"kept"]


def test_keys_are_converted_with_key_type(tmp_path):
    writer = MXIndexedRecordIO(str(tmp_path / "k.idx"), str(tmp_path / "k.rec"), "w", key_type=str)
    writer.write_idx("cat", b"meow")
    writer.write_idx(7, b"seven")
    writer.close()
    reader = MXIndexedRecordIO(str(tmp_path / "k.idx"), str(tmp_path / "k.rec"), "r", key_type=str)
    assert reader.keys == ["cat", "7"] and reader.read_idx("7") == b"seven"
    with pytest.raises(KeyError, match="key 'dog' is not in RecordIO index") as caught:
        reader.read_idx("dog")
    assert isinstance(caught.value, MXNetError)


def test_misuse_raises_the_errors_mxnet_raises(tmp_path):
    with pytest.raises(ValueError, match="Invalid flag a"):
        MXRecordIO(str(tmp_path / "x.rec"), "a")
    writer = MXRecordIO(str(tmp_path / "x.rec"), "w")
    with pytest.raises(AssertionError, match="opened for writing, not reading"):
        writer.read()
    with pytest.raises(TypeError, match="a record must be bytes, not str"):
        writer.write("text")
    writer.close()
    reader = MXRecordIO(str(tmp_path / "x.rec"), "r")
    with pytest.raises(AssertionError, match="opened for reading, not writing"):
        reader.write(b"x")
    reader.close()
    with pytest.raises(RecordIOError, match="it is closed"):
        reader.read()
    with pytest.raises(RecordIOError, match=r"cannot open RecordIO file '.*missing.rec' for reading"):
        MXRecordIO(str(tmp_path / "missing.rec"), "r")


def test_corrupt_and_truncated_files_name_the_byte_offset(tmp_path):
    bad = tmp_path / "bad.rec"
    bad.write_bytes(MAGIC + word(0, 0) + b"\x01\x02\x03\x04" + word(0, 0))
    reader = MXRecordIO(str(bad), "r")
    assert reader.read() == b""
    with pytest.raises(
        RecordIOError, match="expected the magic number 0xced7230a at byte 8, found 0x04030201"
    ):
        reader.read()
    bad_index = tmp_path / "bad.idx"
    bad_index.write_text("0\t0\nnot-a-line\n")
    with pytest.raises(RecordIOError, match="line 2 is not 'key<TAB>offset'"):
        MXIndexedRecordIO(str(bad_index), str(bad), "r")


def test_a_record_cut_short_by_a_crash_fails_alone(tmp_path):
    path = tmp_path / "cut.rec"
    write_records(path, [b"one", b"two", b"three-three"])
    path.write_bytes(path.read_bytes()[:-6])  # the third record (at byte 24) loses its end
    reader = MXRecordIO(str(path), "r")
    assert [reader.read(), reader.read()] == [b"one", b"two"]
    with pytest.raises(
        RecordIOError, match="truncated: the record part at byte 24 promises 11 bytes, only 6"
    ):
        reader.read()


def _write_and_die(folder: str) -> None:
    writer = MXIndexedRecordIO(os.path.join(folder, "c.idx"), os.path.join(folder, "c.rec"), "w")
    for i in range(8000):
        writer.write_idx(i, b"record number %05d" % i)
    os._exit(0)  # dies without closing: no buffer is flushed


def test_an_index_left_by_a_dead_writer_names_only_records_that_are_there(tmp_path):
    process = multiprocessing.get_context("fork").Process(target=_write_and_die, args=(str(tmp_path),))
    process.start()
    process.join(30)
    lines = (tmp_path / "c.idx").read_text().splitlines()
    assert 0 < len(lines) < 8000  # some index lines reached the file, the last ones did not
    reader = MXIndexedRecordIO(str(tmp_path / "c.idx"), str(tmp_path / "c.rec"), "r")
    last = reader.keys[-1]
    assert reader.read_idx(last) == b"record number %05d" % last
    reader.close()


def test_pickled_readers_reopen_at_the_first_record_and_writers_refuse(tmp_path):
    write_records(tmp_path / "p.rec", [b"a", b"b"])
    reader = MXRecordIO(str(tmp_path / "p.rec"), "r")
    assert reader.read() == b"a"
    copy = pickle.loads(pickle.dumps(reader))
    assert copy.read() == b"a" and reader.read() == b"b"
    closed = pickle.loads(pickle.dumps(_closed_reader(tmp_path / "p.rec")))
    assert closed.is_open is False
    writer = MXRecordIO(str(tmp_path / "w.rec"), "w")
    with pytest.raises(RecordIOError, match="an open RecordIO writer .* cannot be pickled: close it first"):
        pickle.dumps(writer)
    writer.close()
    assert pickle.loads(pickle.dumps(writer)).is_open is False


def _closed_reader(path):
    reader = MXRecordIO(str(path), "r")
    reader.close()
    return reader


def test_pickled_indexed_reader_keeps_its_keys(tmp_path):
    writer = MXIndexedRecordIO(str(tmp_path / "q.idx"), str(tmp_path / "q.rec"), "w")
    writer.write_idx(4, b"four")
    writer.close()
    copy = pickle.loads(
        pickle.dumps(MXIndexedRecordIO(str(tmp_path / "q.idx"), str(tmp_path / "q.rec"), "r"))
    )
    assert copy.keys == [4] and copy.read_idx(4) == b"four"


def _read_in_child(reader, queue) -> None:
    try:
        reader.read()
        queue.put("read")
    except MXNetError as err:
        queue.put(str(err))
    queue.put(reader.read_idx(1).decode())


def test_a_forked_reader_refuses_read_but_read_idx_reopens(tmp_path):
    writer = MXIndexedRecordIO(str(tmp_path / "f.idx"), str(tmp_path / "f.rec"), "w")
    writer.write_idx(0, b"zero")
    writer.write_idx(1, b"one")
    writer.close()
    reader = MXIndexedRecordIO(str(tmp_path / "f.idx"), str(tmp_path / "f.rec"), "r")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_read_in_child, args=(reader, queue))
    process.start()
    first, second = queue.get(timeout=30), queue.get(timeout=30)
    process.join(30)
    assert first.startswith("Forbidden operation in multiple processes") and second == "one"
    assert reader.read() == b"zero"  # the parent's reader is untouched


def test_pack_and_unpack_match_the_header_layout():
    packed = recordio.pack(IRHeader(9, 3.5, 7, 1), b"payload")
    assert packed == struct.pack("<IfQQ", 0, 3.5, 7, 1) + b"payload"  # a number label: flag 0
    header, payload = recordio.unpack(packed)
    assert header == IRHeader(0, 3.5, 7, 1) and payload == b"payload"
    packed = recordio.pack((0, [1.0, 2.0], 8, 0), b"xy")
    assert packed == struct.pack("<IfQQ", 2, 0.0, 8, 0) + np.float32([1, 2]).tobytes() + b"xy"
    header, payload = recordio.unpack(packed)
    assert header.flag == 2 and header.label.dtype == np.float32 and header.label.tolist() == [1, 2]
    assert payload == b"xy"


def test_unpack_rejects_short_records():
    with pytest.raises(RecordIOError, match="needs a 24-byte header; this record has 3 bytes"):
        recordio.unpack(b"abc")
    with pytest.raises(RecordIOError, match="promises 3 float32 labels, but only 4 bytes follow"):
        recordio.unpack(struct.pack("<IfQQ", 3, 0, 0, 0) + b"abcd")


def test_image_records_need_opencv(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` fail
    with pytest.raises(MXNetError, match="recordio.pack_img needs OpenCV .* cv2 module is not installed"):
        recordio.pack_img((0, 1, 2, 0), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(MXNetError, match="recordio.unpack_img needs OpenCV"):
        recordio.unpack_img(recordio.pack((0, 1, 2, 0), b""))


def test_image_records_go_through_cv2_when_it_is_there(monkeypatch):
    calls = []

    def imencode(fmt, img, params):
        calls.append((fmt, params))
        return True, np.frombuffer(img.tobytes(), np.uint8)

    def imdecode(buf, flag):
        calls.append(flag)
        return buf.reshape(2, 2, 3)

    fake = types.SimpleNamespace(
        IMWRITE_JPEG_QUALITY=1, IMWRITE_PNG_COMPRESSION=16, imencode=imencode, imdecode=imdecode
    )
    monkeypatch.setitem(sys.modules, "cv2", fake)
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    packed = recordio.pack_img((0, 4, 1, 0), image, quality=80)
    header, decoded = recordio.unpack_img(packed, iscolor=1)
    assert header.label == 4 and decoded.tolist() == image.tolist()
    assert calls == [(".jpg", [1, 80]), 1]
    recordio.pack_img((0, 4, 1, 0), image, quality=3, img_fmt=".png")
    assert calls[-1] == (".png", [16, 3])

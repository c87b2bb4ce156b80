"""Seeded fuzz of the MXNet-format files Ember reads, and the loaders' size checks one by one.

Every mutated `.params` file, symbol JSON, IDX file (raw and gzipped) and CSV file must load or raise
MXNetError, within a time limit (tests/fuzzing.py's `outcomes` fails on any other exception or a hang);
each fuzz test prints its outcome counts (run with -s to see them). These formats carry no checksum, so
a flipped byte may load as a different number; that is expected. The targeted tests below pin the size
checks: a header or record that claims more than its file holds is refused, before any allocation,
with ArtifactError naming the file and the field.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import math
import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

import ember as mx
from ember import nd
from ember.compiler.dtypes import CODE_TO_DTYPE
from ember.io.idx import read_idx
from ember.ndarray.records import decode_pickled_state
from ember.runtime.errors import ArtifactError, GraphError, MXNetError

from .conftest import SHARED, TEST_FIXTURES
from .fuzzing import mutations, outcomes

MXNET_FIXTURES = SHARED / "fixtures" / "mxnet"  # every file MXNet 1.9.1 wrote for the tests
PARAMS_CASES_PER_FILE = 250
SYMBOL_CASES_PER_FILE = 300
CHECKPOINT_CASES = 150  # per file of the checkpoint (symbol, params)
IDX_CASES = 300  # per kind (raw, re-gzipped, gzip stream)
CSV_CASES = 400  # per dtype
V2_MAGIC = 0xF993FAC9
# sizes at and past the limits of int32, uint32, int64 and uint64 (2**64 - 1 reads as a signed -1)
EXTREME_SIZES = (0, 1, 7, 2**21, 2**22, 2**31 - 1, 2**31, 2**32 - 1, 2**62, 2**63 - 1, 2**64 - 1)
LIST_HEADER = struct.pack("<QQ", 0x112, 0)


def fixture_contents(pattern: str) -> list[tuple[str, bytes]]:
    """(name, bytes) of the MXNet-written files matching `pattern` in tests/fixtures and anywhere under
    ../shared/fixtures/mxnet, one entry per distinct content (tests/fixtures holds copies of some)."""
    paths = sorted(TEST_FIXTURES.glob(pattern))
    if MXNET_FIXTURES.is_dir():
        paths += sorted(MXNET_FIXTURES.rglob(pattern))
    else:
        print(f"\n{MXNET_FIXTURES} is absent: fuzzing only the copies in {TEST_FIXTURES}")
    seen, found = set(), []
    for path in paths:
        data = path.read_bytes()
        if hashlib.sha256(data).digest() not in seen:
            seen.add(hashlib.sha256(data).digest())
            found.append((f"{path.parent.name}/{path.name}", data))
    return found


def fuzz_cases(files: list[tuple[str, bytes]], seed: int, per_file: int, *, text: bool = False):
    """Mutations of every file, labelled with the file's name, the same for the same seed."""
    for index, (name, data) in enumerate(files):
        for description, mutated in mutations(data, seed + index, per_file, text=text):
            yield f"{name} {description}", mutated


def report(fmt: str, counts) -> None:
    """Print a format's outcome counts, the figure the fuzz run is judged by."""
    print(f"\nfuzz outcomes, {fmt}: {dict(sorted(counts.items()))} ({sum(counts.values())} cases)")


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)



# -- .params ---------------------------------------------------------------------------------------


def load_params(description: str, data: bytes) -> None:
    loaded = nd.load_frombuffer(data)
    values = loaded.values() if isinstance(loaded, dict) else loaded
    assert all(v is None or isinstance(v, nd.NDArray) for v in values), description


def test_fuzz_params_files():
    files = fixture_contents("*.params")
    assert len(files) >= 6
    counts = outcomes(load_params, fuzz_cases(files, seed=1200, per_file=PARAMS_CASES_PER_FILE), seconds=10)
    report(".params", counts)
    assert sum(counts.values()) == PARAMS_CASES_PER_FILE * len(files)
    assert set(counts) <= {"loaded", "ArtifactError"}
    assert counts["loaded"] > 0 and counts["ArtifactError"] > 0


def shape_fields(data: bytes) -> list[tuple[int, int]]:
    """(byte offset, ndim) of the int64 dims of every record in a `.params` file of dense V2 records."""
    (count,) = struct.unpack_from("<Q", data, 16)
    pos, fields = 24, []
    for _ in range(count):
        magic, _, ndim = struct.unpack_from("<Iii", data, pos)
        assert magic == V2_MAGIC
        dims = struct.unpack_from(f"<{ndim}q", data, pos + 12)
        (code,) = struct.unpack_from("<i", data, pos + 20 + 8 * ndim)
        fields.append((pos + 12, ndim))
        pos += 24 + 8 * ndim + math.prod(dims) * np.dtype(CODE_TO_DTYPE[code]).itemsize
    return fields


def shape_cases(name: str, data: bytes):
    """Every record's first and last dimension set to each pair of extreme sizes: the headers that
    overflow products, promise more than the file holds, or describe huge empty arrays."""
    for offset, ndim in shape_fields(data):
        slots = (offset, offset + 8 * (ndim - 1)) if ndim > 1 else (offset,)
        for sizes in itertools.product(EXTREME_SIZES, repeat=len(slots)):
            mutated = bytearray(data)
            for slot, size in zip(slots, sizes):
                struct.pack_into("<Q", mutated, slot, size)
            yield f"{name}: record at byte {offset - 12}, first and last dims {sizes}", bytes(mutated)


def test_fuzz_params_shape_fields():
    names = ("t.params", "lin-0003.params", "hn.params")
    cases = [case for name in names for case in shape_cases(name, (TEST_FIXTURES / name).read_bytes())]
    counts = outcomes(load_params, cases, seconds=10)
    report(".params shape fields", counts)
    assert sum(counts.values()) == len(cases) == 583  # 121 per 2+-D record, 11 per 1-D record
    assert set(counts) == {"loaded", "ArtifactError"}


def test_fuzz_checkpoint_consumers(tmp_path):
    """mx.model.load_checkpoint and Module.load over a mutated symbol or params file of a checkpoint."""
    symbol = (TEST_FIXTURES / "lin-symbol.json").read_bytes()
    params = (TEST_FIXTURES / "lin-0003.params").read_bytes()
    prefix = str(tmp_path / "lin")

    def load(description: str, data: bytes) -> None:
        is_symbol = description.startswith("symbol")
        write(tmp_path / "lin-symbol.json", data if is_symbol else symbol)
        write(tmp_path / "lin-0003.params", params if is_symbol else data)
        loaded, arg_params, aux_params = mx.model.load_checkpoint(prefix, 3)
        arrays = [*arg_params.values(), *aux_params.values()]
        assert all(isinstance(v, nd.NDArray) for v in arrays), description
        # a flipped byte may rename an input; Module then refuses the names with MXNet's ValueError
        inputs = [name for name in ("data", "lin_reg_label") if name in loaded.list_arguments()]
        mx.mod.Module.load(prefix, 3, data_names=inputs[:1], label_names=inputs[1:])

    cases = list(fuzz_cases([("symbol", symbol)], 1250, CHECKPOINT_CASES, text=True))
    cases += fuzz_cases([("params", params)], 1260, CHECKPOINT_CASES)
    counts = outcomes(load, cases, seconds=10)
    report("checkpoints (load_checkpoint + Module.load)", counts)
    assert sum(counts.values()) == 2 * CHECKPOINT_CASES
    # MXNetError: load_params refusing a key that a flipped byte moved out of its arg:/aux: prefix
    assert set(counts) <= {"loaded", "ArtifactError", "GraphError", "MXNetError"}
    assert counts["loaded"] > 0 and counts["ArtifactError"] > 0 and counts["GraphError"] > 0


# -- symbol JSON -----------------------------------------------------------------------------------


def test_fuzz_symbol_json(tmp_path):
    files = fixture_contents("*-symbol.json")
    assert len(files) >= 3
    path = tmp_path / "fuzzed-symbol.json"

    def load(description: str, data: bytes) -> None:
        symbol = mx.sym.load(write(path, data))
        symbol.list_arguments(), symbol.list_outputs(), symbol.list_auxiliary_states()
        text = symbol.tojson()
        assert mx.sym.load_json(text).tojson() == text, description  # what loads round-trips

    cases = fuzz_cases(files, seed=1300, per_file=SYMBOL_CASES_PER_FILE, text=True)
    counts = outcomes(load, cases, seconds=10)
    report("symbol JSON", counts)
    assert sum(counts.values()) == SYMBOL_CASES_PER_FILE * len(files)
    assert set(counts) <= {"loaded", "GraphError", "ArtifactError"}
    assert counts["loaded"] > 0 and counts["GraphError"] > 0


# -- IDX -------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x0800 + array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@pytest.fixture
def mnist_like(tmp_path):
    """(raw image bytes, path of a label file) for 6 random 7x7 digits."""
    rng = np.random.default_rng(14)
    images = rng.integers(0, 256, size=(6, 7, 7), dtype=np.uint8)
    labels = rng.integers(0, 10, size=6, dtype=np.uint8)
    return idx_bytes(images), write(tmp_path / "labels-idx1-ubyte", idx_bytes(labels))


def mnist_epoch(image: str, label: str) -> None:
    it = mx.io.MNISTIter(image=image, label=label, batch_size=2, shuffle=False, silent=True)
    for batch in it:
        assert batch.data[0].shape == (2, 1) + it.provide_data[0].shape[2:]


def test_fuzz_idx_files(tmp_path, mnist_like):
    image, label = mnist_like
    path = tmp_path / "fuzzed-idx3-ubyte"
    compressed = gzip.compress(image, mtime=0)

    def raw(description, data):
        mnist_epoch(write(path, data), label)

    def recompressed(description, data):  # a damaged header or payload behind a valid gzip stream
        mnist_epoch(write(path, gzip.compress(data, mtime=0)), label)

    def gzipped(description, data):  # a damaged gzip stream
        read_idx(write(path, data), "fuzzed image file", 3)

    kinds = (("IDX", raw, image, 1400), ("IDX re-gzipped", recompressed, image, 1410),
             ("IDX gzip stream", gzipped, compressed, 1420))
    for fmt, load, source, seed in kinds:
        counts = outcomes(load, mutations(source, seed, IDX_CASES), seconds=10)
        report(fmt, counts)
        assert sum(counts.values()) == IDX_CASES
        assert set(counts) <= {"loaded", "ArtifactError", "MXNetError"}
        assert counts["ArtifactError"] > 0


def test_fuzz_idx_header_sizes(tmp_path, mnist_like):
    """Every combination of extreme sizes in a 3-D header, before the payload (raw and gzipped) or alone:
    none may reach an allocation or a reshape; only the empty arrays (0 images) match their payload."""
    image, _ = mnist_like
    path = tmp_path / "sized-idx3-ubyte"
    sizes = [s for s in EXTREME_SIZES if s < 2**32]  # the header's fields are 32-bit

    def cases():
        for dims in itertools.product(sizes, repeat=3):
            header = struct.pack(">IIII", 2051, *dims)
            yield f"raw dims {dims}", header + image[16:]
            yield f"gzipped dims {dims}", gzip.compress(header + image[16:], mtime=0)
            yield f"header alone, dims {dims}", header

    counts = outcomes(lambda description, data: read_idx(write(path, data), "sized file", 3), cases())
    report("IDX header sizes", counts)
    assert sum(counts.values()) == 3 * len(sizes) ** 3 == 1536
    assert counts == {"ArtifactError": 1511, "loaded": 25}  # (0, a, b) alone for the 5 valid sizes a, b > 0


# -- CSV -------------------------------------------------------------------------------------------


CSV_TEXT = {
    "float32": "1.5,2,3\n4,-5,6e1\n\n7,8,9\n10,11,12\n",
    "int32": "1,2,3\n4,-5,60\n\n7,8,9\n10,11,12\n",
}
LABEL_TEXT = "0\n1\n2\n3\n"


@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_fuzz_csv_files(tmp_path, dtype):
    data_path, label_path = tmp_path / "data.csv", tmp_path / "label.csv"
    write(label_path, LABEL_TEXT.encode())

    def load(description, data):
        write(data_path, data)
        it = mx.io.CSVIter(data_csv=str(data_path), data_shape=(3,), label_csv=str(label_path),
                           batch_size=2, dtype=dtype)
        assert [b.data[0].shape for b in it] == [(2, 3)] * -(-len(it._data) // 2), description

    counts = outcomes(load, mutations(CSV_TEXT[dtype].encode(), 1500, CSV_CASES, text=True), seconds=10)
    report(f"CSV ({dtype})", counts)
    assert sum(counts.values()) == CSV_CASES
    assert set(counts) <= {"loaded", "ArtifactError", "MXNetError"}
    assert counts["loaded"] > 0 and counts["ArtifactError"] > 0


# -- targeted: .params -----------------------------------------------------------------------------


def one_record_file(dims: tuple[int, ...], payload: bytes = b"", dtype_code: int = 0) -> bytes:
    record = struct.pack(f"<Iii{len(dims)}q", V2_MAGIC, 0, len(dims), *dims)
    record += struct.pack("<iii", 1, 0, dtype_code)
    return LIST_HEADER + struct.pack("<Q", 1) + record + payload + struct.pack("<Q", 0)


def test_params_empty_shape_too_large_for_any_array(tmp_path):
    path = write(tmp_path / "t.params", one_record_file((0, 2**62)))
    with pytest.raises(
        ArtifactError,
        match=rf"^'{path}' is corrupt: array 0 has shape \(0, 4611686018427387904\), whose nonzero "
        r"dimensions span 18446744073709551616 bytes of float32, more than any array can address$",
    ):
        nd.load(path)


def test_params_with_more_dimensions_than_numpy_allows(tmp_path):
    path = write(tmp_path / "t.params", one_record_file((1,) * 65, payload=b"\0" * 4))
    message = rf"^'{path}' is corrupt: array 0 has 65 dimensions, more than 32$"
    with pytest.raises(ArtifactError, match=message):
        nd.load(path)


def test_params_shape_larger_than_the_file_is_refused_before_allocating():
    tracemalloc.start()
    try:
        with pytest.raises(
            ArtifactError,
            match=r"^the buffer is truncated: the data of array 0 needs 2199023255552 bytes at byte 64, "
            r"but only 8 remain \(shape \(1024, 536870912\) of float32 has more elements than the file "
            r"holds\)$",
        ):
            nd.load_frombuffer(one_record_file((1024, 2**29)))
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "data, message",
    [
        (LIST_HEADER + struct.pack("<Q", 2**62),
         r"its array count is 4611686018427387904, more than the 0 bytes after it \(from byte 24\) can hold"),
        (LIST_HEADER + struct.pack("<QQ", 0, 2**40),
         r"its name count is 1099511627776, more than the 0 bytes after it \(from byte 32\) can hold"),
        (LIST_HEADER + struct.pack("<Q", 1) + struct.pack("<Iii", V2_MAGIC, 0, 32),
         r"the shape of array 0 needs 256 bytes at byte 36, but only 0 remain"),
        (LIST_HEADER + struct.pack("<QIiiQQ", 1, V2_MAGIC, 0, 0, 1, 2**63),
         r"the buffer is truncated: name 0 needs 9223372036854775808 bytes at byte 52, but only 0 remain$"),
    ],
    ids=["array-count", "name-count", "ndim", "name-length"],
)
def test_params_counts_checked_against_the_bytes_left(data, message):
    with pytest.raises(ArtifactError, match=message):
        nd.load_frombuffer(data)


def test_pickled_ndarray_state_must_hold_record_bytes():
    with pytest.raises(
        ArtifactError,
        match=r"^pickled NDArray is corrupt: its state must be a dict whose 'handle' holds the bytes of one "
        r"array record, got a dict whose handle is int$",
    ):
        decode_pickled_state({"handle": 10**12})
    with pytest.raises(ArtifactError, match=r"record, got list$"):
        decode_pickled_state([1, 2])
    data = nd.array([1.0, 2.0]).__getstate__()
    assert decode_pickled_state(data).tolist() == [1.0, 2.0]


def test_load_checkpoint_names_the_corrupt_params_file(tmp_path):
    (tmp_path / "lin-symbol.json").write_bytes((TEST_FIXTURES / "lin-symbol.json").read_bytes())
    params = (TEST_FIXTURES / "lin-0003.params").read_bytes()
    path = write(tmp_path / "lin-0003.params", params[:-7])
    with pytest.raises(ArtifactError, match=rf"^'{path}' is truncated: "):
        mx.model.load_checkpoint(str(tmp_path / "lin"), 3)


# -- targeted: IDX ---------------------------------------------------------------------------------


def test_idx_sizes_that_overflow_int64(tmp_path):
    path = write(tmp_path / "big-idx3-ubyte", struct.pack(">IIII", 2051, 2**21, 2**21, 2**22))
    with pytest.raises(
        ArtifactError,
        match=r"^fuzzed image file '.*big-idx3-ubyte' is truncated: its header promises 18446744073709551616 "
        r"bytes of data for dimensions \(2097152, 2097152, 4194304\), but only 0 follow$",
    ):
        read_idx(path, "fuzzed image file", 3)


def test_gzipped_idx_promising_more_than_gzip_can_expand_to(tmp_path):
    data = gzip.compress(struct.pack(">IIII", 2051, 60000, 2**20, 2**20), mtime=0)
    path = write(tmp_path / "big.gz", data)
    with pytest.raises(
        ArtifactError,
        match=rf"^MNISTIter image file '.*big\.gz' is corrupt: its header promises 65970697666560000 bytes "
        rf"of data for dimensions \(60000, 1048576, 1048576\), more than a {len(data)}-byte gzip file can "
        r"expand to \(1032:1 at most\)$",
    ):
        mx.io.MNISTIter(image=path, label=path)


def gzip_bomb(header: bytes, zeros: int) -> bytes:
    """A gzip file of `header` and then `zeros` zero bytes, compressed piece by piece."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    parts = [compressor.compress(header)]
    piece = bytes(1 << 20)
    for _ in range(zeros >> 20):
        parts.append(compressor.compress(piece))
    return b"".join(parts) + compressor.flush()


def test_gzip_bomb_is_not_decompressed_past_the_header_claim(tmp_path):
    bomb = gzip_bomb(struct.pack(">IIII", 2051, 1, 28, 28), 64 << 20)
    path = write(tmp_path / "bomb.gz", bomb)
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(
            ArtifactError,
            match=r"^bomb file '.*bomb\.gz' is malformed: at least 65536 bytes follow the 784 bytes its "
            r"header promises for dimensions \(1, 28, 28\)$",
        ):
            read_idx(path, "bomb file", 3)
        assert tracemalloc.get_traced_memory()[1] < 4 << 20  # the 64 MiB of zeros were never held
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("special", ["fifo", "device", "folder"])
def test_idx_path_that_is_not_a_regular_file(tmp_path, special):
    path = str(tmp_path / "pipe")
    if special == "fifo":
        os.mkfifo(path)  # opening it for reading would wait for a writer
    elif special == "device":
        path = "/dev/zero"  # never ends
    else:
        path = str(tmp_path)
    reason = "Is a directory" if special == "folder" else "it is not a regular file"
    with pytest.raises(ArtifactError, match=rf"^image file '{path}' cannot be read: {reason}$"):
        read_idx(path, "image file", 3)


# -- targeted: symbol JSON -------------------------------------------------------------------------


VARIABLE = {"op": "null", "name": "a", "inputs": []}


def symbol_json(*nodes, heads=None, **extra) -> str:
    heads = heads if heads is not None else [[len(nodes) - 1, 0, 0]]
    return json.dumps({"nodes": list(nodes), "heads": heads, **extra})


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, r"^symbol JSON is not valid JSON: maximum recursion depth exceeded"),
        (symbol_json(VARIABLE, {"op": "add_n", "name": "s", "attrs": {"num_args": "1000000000"},
                                "inputs": [[0, 0, 0]]}),
         r"^symbol JSON node 1 \('s'\): operator add_n has num_args=1000000000, but 1 inputs are listed$"),
        (symbol_json(VARIABLE, {"op": "SliceChannel", "name": "s", "attrs": {"num_outputs": "1000000000"},
                                "inputs": [[0, 0, 0]]}),
         r"^symbol JSON node 1 \('s'\): operator SliceChannel would have 1000000000 outputs, more than the "
         r"1048576 any graph file may give one node$"),
        (symbol_json(VARIABLE, {"op": "relu", "name": "r", "inputs": [[1, 0, 0]]}),
         r"^symbol JSON node 1 \('r'\): input entry \[1, 0, 0\] refers to a node that does not precede it$"),
        (symbol_json(VARIABLE, heads=[[0, 0, True]]),
         r"^symbol JSON heads: input entry \[0, 0, True\] must be \[node_id, output_index, version\]$"),
        (symbol_json({"op": "null", "name": 5}),
         r"^symbol JSON node 0's 'name' must be a string, got int 5$"),
        (symbol_json({"op": "null", "name": "a", "attrs": {"__shape__": [2, 3]}}),
         r"^symbol JSON node 0 \('a'\) attribute '__shape__' must be a string, got list \[2, 3\]$"),
        ('{"nodes": [{"op": "null", "name": "\\ud800"}], "heads": [[0, 0, 0]]}',
         r"^symbol JSON node 0's 'name' is not valid Unicode text: '\\ud800'$"),
        ('{"nodes": [{"op": "null", "name": "a", "attrs": {"\\ud800": "x"}}], "heads": [[0, 0, 0]]}',
         r"^symbol JSON node 0 \('a'\) attribute name is not valid Unicode text: '\\ud800'$"),
        (symbol_json(VARIABLE, attrs={"mxnet_version": ["int", 1e309]}),
         r"^symbol JSON has a malformed 'attrs.mxnet_version'$"),
    ],
    ids=["deep-nesting", "variadic-count", "output-count", "cycle", "bool-index", "name-type", "attr-type",
         "lone-surrogate", "surrogate-attr-key", "version-overflow"],
)
def test_malformed_symbol_json(text, message):
    with pytest.raises(GraphError, match=message):
        mx.sym.load_json(text)


def test_pickled_symbol_state_must_hold_json_text():
    symbol = mx.sym.Variable("a")
    message = r"^a pickled Symbol's state must be a dict whose 'handle' is its JSON text, got "
    with pytest.raises(GraphError, match=message + r"a dict whose handle is bytes$"):
        symbol.__setstate__({"handle": bytes(1 << 20)})
    with pytest.raises(GraphError, match=message + r"list$"):
        symbol.__setstate__([0] * (1 << 20))


def test_symbol_file_errors_name_the_file(tmp_path):
    with pytest.raises(ArtifactError, match=r"^cannot read symbol file .*nope-symbol\.json: No such file"):
        mx.sym.load(str(tmp_path / "nope-symbol.json"))
    path = write(tmp_path / "bad-symbol.json", b'{"nodes": [\xff]}')
    message = rf"^symbol file {path} is not UTF-8 text: invalid start byte at byte 11$"
    with pytest.raises(GraphError, match=message):
        mx.sym.load(path)
    path = write(tmp_path / "cut-symbol.json", (TEST_FIXTURES / "lin-symbol.json").read_bytes()[:300])
    with pytest.raises(GraphError, match=rf"^{path}: symbol JSON is not valid JSON: "):
        mx.sym.load(path)


# -- targeted: CSV ---------------------------------------------------------------------------------


def csv_values(tmp_path, text: str, dtype: str = "float32", shape=(2,)) -> list:
    path = write(tmp_path / "d.csv", text.encode("utf-8"))
    return mx.io.CSVIter(data_csv=path, data_shape=shape, batch_size=1, dtype=dtype)._data.tolist()


def test_csv_nan_and_inf_load_as_mxnet_parses_them(tmp_path):
    values = csv_values(tmp_path, "1,NaN\n-inf,nan\n")
    assert np.isnan(values[0][1]) and np.isnan(values[1][1])
    assert values[0][0] == 1.0 and values[1][0] == -np.inf


def test_csv_line_ends_and_byte_order_mark(tmp_path):
    assert csv_values(tmp_path, "\ufeff1,2\r3,4\r\n\r\n5,6") == [[1, 2], [3, 4], [5, 6]]


@pytest.mark.parametrize(
    "text, dtype, message",
    [
        ("1,2\n3,x\n", "float32", r"line 2, column 2: 'x' is not a number$"),
        ("1,nan\n", "int32", r"line 1, column 2: 'nan' is not an integer$"),
        ("1,2147483648\n", "int32", r"line 1, column 2: '2147483648' does not fit in int32$"),
        ("1,-9223372036854775809\n", "int64",
         r"line 1, column 2: '-9223372036854775809' does not fit in int64$"),
        ("1,2,3\n", "float32", r"line 1 has 3 values, but data_shape=\(2,\) needs 2$"),
        ("1," + "9" * 5000 + "\n", "int64",
         r"line 1, column 2: '999999999999\.\.\.9999999999999' does not fit in int64$"),
        ("1,-" + "9" * 5000 + "\n", "int32",
         r"line 1, column 2: '-99999999999\.\.\.9999999999999' does not fit in int32$"),
        ("", "float32", r"holds no rows$"),
    ],
    ids=["not-a-number", "nan-integer", "int32-range", "int64-range", "columns", "huge-token",
         "huge-negative-token", "empty"],
)
def test_csv_malformed_values(tmp_path, text, dtype, message):
    with pytest.raises(ArtifactError, match=r"^CSVIter data_csv '.*d\.csv' " + message):
        csv_values(tmp_path, text, dtype)



def test_csv_batch_too_large_for_memory(tmp_path):
    path = write(tmp_path / "d.csv", b"1,2,3\n")
    with pytest.raises(
        MXNetError,
        match=r"^CSVIter: a batch of batch_size=1000000000000000 examples of data_shape=\(3,\) needs "
        r"12000000000000000 bytes, more than can be allocated$",
    ):  # 12 PB: beyond any address space, so refused even where memory is overcommitted
        mx.io.CSVIter(data_csv=path, data_shape=(3,), batch_size=10**15, round_batch=False)

"""The artifact file (runtime/artifact.py): the documented byte layout, exact round trips of every dtype,
atomic writes, and one clear ArtifactError for every truncated, damaged, foreign, newer or
wrong-machine file, read in a process where the compiler cannot be imported."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ember.runtime import artifact as artifact_module
from ember.runtime.artifact import (
    FORMAT_VERSION,
    Artifact,
    decode_artifact,
    encode_artifact,
    read_artifact,
    write_artifact,
)
from ember.runtime.errors import ArtifactError, MXNetError
from ember.runtime.host import check_cpu_features, check_target, host_cpu_features, host_target, parse_cpuinfo
from ember.runtime.manifest import DTYPES

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GRAPH = (FIXTURES / "lin-symbol.json").read_text()
CHECKSUM_MISMATCH = "is corrupt: its SHA-256 checksum does not match its contents"


def manifest(**fields) -> dict:
    """The producer fields of a small linear model's manifest, with `fields` replacing some."""
    base = {
        "ember_version": "0.1.0",
        "target": host_target(),
        "cpu_features": [],
        "inputs": [{"name": "data", "shape": [2, 3], "dtype": "float32"}],
        "outputs": [{"name": "fc_output", "shape": [2, 1], "dtype": "float32"}],
        "buffer_plan": {
            "arena_bytes": 128,
            "alignment": 64,
            "buffers": [
                {
                    "name": "data",
                    "offset": 0,
                    "nbytes": 24,
                    "shape": [2, 3],
                    "dtype": "float32",
                    "role": "input",
                },
                {
                    "name": "fc_output",
                    "offset": 64,
                    "nbytes": 8,
                    "shape": [2, 1],
                    "dtype": "float32",
                    "role": "output",
                },
            ],
        },
    }
    base.update(fields)
    return base


def small_artifact(**fields) -> Artifact:
    params = {"fc_weight": np.array([[0.5, -1.0, 2.0]], np.float32), "fc_bias": np.array([0.25], np.float32)}
    return Artifact(manifest(**fields), GRAPH, params, {"libmodel.so": b"\x7fELF-not-really"})


def sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    values = np.arange(int(np.prod(shape))).reshape(shape) * 7 - 5
    if dtype == "bool":
        return values % 3 == 0
    if dtype.startswith("float"):
        return (values / 4).astype(dtype)
    return (values % 100).astype(dtype)


def sealed(sections: list[bytes], version: int = FORMAT_VERSION) -> bytes:
    """A file in the documented layout around raw `sections`, with a valid checksum."""
    body = b"".join(struct.pack("<Q", len(s)) + s for s in sections)
    head = b"EMBERART" + struct.pack("<IQ", version, len(body)) + body
    return head + hashlib.sha256(head).digest()


def sections_of(data: bytes) -> list[bytes]:
    body, sections, position = data[20:-32], [], 0
    while position < len(body):
        (length,) = struct.unpack_from("<Q", body, position)
        sections.append(body[position + 8 : position + 8 + length])
        position += 8 + length
    return sections


def canonical(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


# -- the byte layout ------------------------------------------------------------------------------


def test_encoding_follows_the_documented_byte_layout():
    art = small_artifact()
    weight, bias = art.params["fc_weight"], art.params["fc_bias"]
    producer = manifest()
    tables = {
        "format_version": 1,
        "params": [
            {"name": "fc_weight", "dtype": "float32", "shape": [1, 3], "offset": 0, "nbytes": 12},
            {"name": "fc_bias", "dtype": "float32", "shape": [1], "offset": 12, "nbytes": 4},
        ],
        "binaries": [{"name": "libmodel.so", "nbytes": 15}],
    }
    blob = weight.astype("<f4").tobytes() + bias.astype("<f4").tobytes()
    rest = [GRAPH.encode(), blob, b"\x7fELF-not-really"]
    content_hash = hashlib.sha256(sealed([canonical({**producer, **tables}), *rest])[20:-32]).hexdigest()
    expected = sealed([canonical({**producer, **tables, "content_hash": content_hash}), *rest])

    assert art.manifest == {**producer, **tables, "content_hash": content_hash}
    assert art.content_hash == content_hash
    assert encode_artifact(art) == expected
    assert expected[:12] == b"EMBERART\x01\x00\x00\x00"
    assert len(expected) == 52 + struct.unpack_from("<Q", expected, 12)[0]


def test_round_trip_keeps_every_dtype_shape_and_binary_exactly(tmp_path):
    shapes = [(2, 3), (), (0,), (4, 0, 2), (5,)]
    params = {f"{dtype}{shape}": sample(dtype, shape) for dtype in DTYPES for shape in shapes}
    params["big_endian"] = np.array([1.5, -2.25, 3.0], dtype=">f8")
    params["transposed"] = np.arange(6, dtype=np.int64).reshape(2, 3).T
    binaries = {"libmodel.so": bytes(range(256)) * 3, "kernels.ptx": b"//\n.version 8.0\n", "empty.bin": b""}
    art = Artifact(manifest(), GRAPH, params, binaries)

    write_artifact(tmp_path / "model.ember", art)
    back = read_artifact(tmp_path / "model.ember")

    assert list(back.params) == list(params)
    for name, original in params.items():
        assert back.params[name].dtype == np.dtype(original.dtype.name), name
        assert back.params[name].shape == original.shape, name
        assert back.params[name].flags.c_contiguous and not back.params[name].flags.writeable, name
        np.testing.assert_array_equal(back.params[name], original, err_msg=name)
    assert dict(back.binaries) == binaries
    assert back.graph_json == GRAPH
    assert back.manifest == art.manifest
    assert back == art and hash(back) == hash(art)
    assert decode_artifact(encode_artifact(back)) == art


def test_round_trip_of_an_artifact_with_no_parameters_or_binaries(tmp_path):
    art = Artifact(manifest(inputs=[], outputs=[]), '{"nodes": [], "heads": []}')
    write_artifact(tmp_path / "empty.ember", art)
    back = read_artifact(tmp_path / "empty.ember")
    assert (dict(back.params), dict(back.binaries)) == ({}, {})
    assert (back.manifest["params"], back.manifest["binaries"]) == ([], [])
    assert back == art


def test_parameters_are_private_read_only_copies():
    weight = np.ones((2, 2), np.float32)
    art = Artifact(manifest(), GRAPH, {"w": weight})
    weight[0, 0] = 7.0
    assert art.params["w"][0, 0] == 1.0
    with pytest.raises(ValueError):
        art.params["w"][0, 0] = 3.0
    with pytest.raises(TypeError):
        art.params["x"] = weight
    assert Artifact(art.manifest, GRAPH, art.params).params["w"] is art.params["w"]  # already frozen: kept


def test_the_content_hash_names_everything_in_the_artifact():
    base = small_artifact()
    variants = [
        Artifact(manifest(), GRAPH, {**base.params, "fc_bias": np.array([0.5], np.float32)}, base.binaries),
        Artifact(manifest(), GRAPH, {**base.params, "fc_bias": np.array([0.25], np.float64)}, base.binaries),
        Artifact(
            manifest(), GRAPH, {**base.params, "fc_bias": np.array([[0.25]], np.float32)}, base.binaries
        ),
        Artifact(
            manifest(),
            GRAPH,
            {"fc_bias": base.params["fc_bias"], "fc_weight": base.params["fc_weight"]},
            base.binaries,
        ),
        Artifact(manifest(), GRAPH, base.params, {"libmodel.so": b"\x7fELF-not-really!"}),
        Artifact(manifest(), GRAPH, base.params, {"libother.so": b"\x7fELF-not-really"}),
        Artifact(manifest(), GRAPH.replace("fc", "fc1"), base.params, base.binaries),
        Artifact(manifest(cpu_features=["avx2"]), GRAPH, base.params, base.binaries),
    ]
    hashes = {base.content_hash} | {v.content_hash for v in variants}
    assert len(hashes) == len(variants) + 1
    assert all(v != base for v in variants)
    assert small_artifact() == base and {base: 1}[small_artifact()] == 1


def test_repr_is_one_readable_line():
    art = small_artifact()
    assert repr(art) == (
        f"Artifact(target={host_target()}, inputs=[data(2, 3):float32], outputs=[fc_output(2, 1):float32], "
        f"2 params (16 bytes), binaries=[libmodel.so (15 bytes)], content_hash={art.content_hash[:16]}...)"
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Artifact({"a"}, GRAPH), "cannot make an artifact: its manifest is a set, not a mapping"),
        (
            lambda: Artifact(manifest(extra={1, 2}), GRAPH),
            "cannot make an artifact: its manifest is not JSON data (Object of type set is not JSON serializable)",
        ),
        (
            lambda: Artifact(manifest(extra=float("nan")), GRAPH),
            "cannot make an artifact: its manifest is not JSON data (Out of range float values are not JSON compliant)",
        ),
        (
            lambda: Artifact(manifest(target=None), GRAPH),
            "cannot make an artifact: its manifest's field 'target' is not a target triple",
        ),
        (
            lambda: Artifact({k: v for k, v in manifest().items() if k != "buffer_plan"}, GRAPH),
            "cannot make an artifact: its manifest has no field 'buffer_plan'",
        ),
        (
            lambda: Artifact(manifest(), "{nodes"),
            "cannot make an artifact: its graph is not valid JSON (Expecting property name enclosed in double quotes at character 1)",
        ),
        (
            lambda: Artifact(manifest(), "[1, 2]"),
            "cannot make an artifact: its graph is not MXNet symbol JSON (an object with a list of nodes)",
        ),
        (
            lambda: Artifact(manifest(), b"{}"),
            "cannot make an artifact: its graph is a bytes, not a JSON string",
        ),
        (
            lambda: Artifact(manifest(), GRAPH, {"w": np.zeros(2, np.complex64)}),
            (
                "cannot make an artifact: parameter 'w' has dtype complex64, which an artifact cannot hold "
                f"(it holds {', '.join(DTYPES)})"
            ),
        ),
        (
            lambda: Artifact(manifest(), GRAPH, {"w": np.array([None])}),
            (
                "cannot make an artifact: parameter 'w' has dtype object, which an artifact cannot hold "
                f"(it holds {', '.join(DTYPES)})"
            ),
        ),
        (
            lambda: Artifact(manifest(), GRAPH, {"": np.zeros(2)}),
            "cannot make an artifact: parameter name '' is not a non-empty string",
        ),
        (
            lambda: Artifact(manifest(), GRAPH, {}, {"lib.so": "text"}),
            "cannot make an artifact: binary 'lib.so' is a str, not bytes",
        ),
    ],
)
def test_making_an_artifact_from_bad_data_says_what_is_wrong(make, message):
    with pytest.raises(ArtifactError) as caught:
        make()
    assert str(caught.value) == message


# -- atomic writes --------------------------------------------------------------------------------


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "model.ember"
    write_artifact(path, small_artifact())
    write_artifact(str(path), small_artifact(ember_version="0.2.0"))  # replaces the old file
    assert os.listdir(tmp_path) == ["model.ember"]
    assert read_artifact(path).manifest["ember_version"] == "0.2.0"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize(
    "failure, error, message",
    [
        (
            OSError(28, "No space left on device"),
            ArtifactError,
            "cannot write '{path}': No space left on device",
        ),
        (KeyboardInterrupt(), KeyboardInterrupt, ""),
    ],
)
def test_a_write_that_fails_halfway_keeps_the_old_file(tmp_path, monkeypatch, failure, error, message):
    path = tmp_path / "model.ember"
    write_artifact(path, small_artifact())
    old = path.read_bytes()
    newer = small_artifact(ember_version="0.2.0")
    real_chunks = artifact_module._file_chunks

    def fail_after_two_chunks(artifact):
        chunks = real_chunks(artifact)
        yield next(chunks)
        yield next(chunks)
        raise failure

    monkeypatch.setattr(artifact_module, "_file_chunks", fail_after_two_chunks)
    with pytest.raises(error) as caught:
        write_artifact(path, newer)
    assert str(caught.value) == message.format(path=path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["model.ember"]


def test_writing_into_a_missing_folder_says_so(tmp_path):
    path = tmp_path / "no" / "model.ember"
    with pytest.raises(ArtifactError) as caught:
        write_artifact(path, small_artifact())
    assert str(caught.value) == f"cannot write '{path}': No such file or directory"


# -- damaged, foreign and newer files -------------------------------------------------------------


@pytest.fixture
def small_file(tmp_path) -> tuple[Path, bytes]:
    path = tmp_path / "model.ember"
    write_artifact(path, small_artifact())
    return path, path.read_bytes()


def read_error(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    with pytest.raises(ArtifactError) as caught:
        read_artifact(path)
    assert isinstance(caught.value, MXNetError)
    return str(caught.value)


def test_truncation_at_every_byte_says_truncated(small_file):
    path, data = small_file
    for size in range(len(data)):
        if size == 0:
            expected = f"'{path}' is empty, not an Ember artifact"
        elif size < 20:
            expected = f"'{path}' is truncated: it ends after {size} bytes, inside its 20-byte header"
        else:
            expected = f"'{path}' is truncated: its header promises {len(data)} bytes, but it holds {size}"
        assert read_error(path, data[:size]) == expected


def test_flipping_any_byte_after_the_header_fails_the_checksum(small_file):
    path, data = small_file
    for position in range(20, len(data)):
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[position] ^= mask
            assert read_error(path, bytes(damaged)) == f"'{path}' {CHECKSUM_MISMATCH}", (position, mask)


def test_damage_to_the_header_is_named(small_file):
    path, data = small_file

    def flipped(position: int, mask: int = 0xFF) -> bytes:
        damaged = bytearray(data)
        damaged[position] ^= mask
        return bytes(damaged)

    for position in range(8):
        head = flipped(position)[:8]
        assert read_error(path, flipped(position)) == (
            f"'{path}' is not an Ember artifact: it starts with {head!r} instead of b'EMBERART'"
        )
    assert read_error(path, flipped(8, 0x01)) == (
        f"'{path}' is corrupt: its header gives format version 0, which no Ember wrote "
        "(this runtime reads format version 1)"
    )
    assert read_error(path, flipped(11)) == (
        f"'{path}' is an Ember artifact of format version {0xFF000001}, but this runtime reads format version 1; "
        "load it with a newer Ember"
    )
    for position in range(12, 20):
        length = struct.unpack_from("<Q", flipped(position, 0x01), 12)[0]
        if length + 52 > len(data):
            expected = (
                f"'{path}' is truncated: its header promises {length + 52} bytes, but it holds {len(data)}"
            )
        else:
            expected = (
                f"'{path}' is corrupt: it holds {len(data) - length - 52} unexpected bytes after its end "
                f"at byte {length + 52}"
            )
        assert read_error(path, flipped(position, 0x01)) == expected


def test_bytes_after_the_checksum_are_corruption(small_file):
    path, data = small_file
    assert read_error(path, data + b"\0\0\0") == (
        f"'{path}' is corrupt: it holds 3 unexpected bytes after its end at byte {len(data)}"
    )


def test_a_newer_format_version_says_which_versions(small_file):
    path, data = small_file
    newer = data[:8] + struct.pack("<I", 2) + data[12:]
    assert read_error(path, newer) == (
        f"'{path}' is an Ember artifact of format version 2, but this runtime reads format version 1; "
        "load it with a newer Ember"
    )
    assert read_error(path, newer[:12]) == read_error(path, newer)  # said before the rest is looked at


@pytest.mark.parametrize(
    "name, content, start",
    [
        ("image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(40), b"\x89PNG\r\n\x1a\n"),
        ("lin-0003.params", (FIXTURES / "lin-0003.params").read_bytes(), b"\x12\x01\0\0\0\0\0\0"),
        ("lin-symbol.json", GRAPH.encode(), b'{\n  "nod'),
        ("short.txt", b"hi", b"hi"),
    ],
)
def test_a_foreign_file_is_not_an_ember_artifact(tmp_path, name, content, start):
    assert read_error(tmp_path / name, content) == (
        f"'{tmp_path / name}' is not an Ember artifact: it starts with {start!r} instead of b'EMBERART'"
    )


def test_a_missing_file_or_a_folder_says_so(tmp_path):
    with pytest.raises(ArtifactError) as caught:
        read_artifact(tmp_path / "nothing.ember")
    assert str(caught.value) == f"cannot read '{tmp_path / 'nothing.ember'}': no such file"
    with pytest.raises(ArtifactError) as caught:
        read_artifact(tmp_path)
    assert str(caught.value) == f"cannot read '{tmp_path}': Is a directory"


def edited(data: bytes, edit) -> bytes:
    """`data` with its manifest passed through `edit` (a function changing a dict) and resealed."""
    sections = sections_of(data)
    manifest_data = json.loads(sections[0])
    edit(manifest_data)
    return sealed([canonical(manifest_data), *sections[1:]])


def setter(*keys, value):
    def edit(data):
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value

    return edit


MANIFEST_EDITS = [
    (
        setter("params", 0, "nbytes", value=16),
        "parameter 'fc_weight' claims 16 bytes, but a float32 array of shape (1, 3) takes 12",
    ),
    (
        setter("params", 1, "offset", value=8),
        "parameter 'fc_bias' starts at byte 8 of the parameter blob, not at byte 12 where the one before it ends",
    ),
    (
        setter("params", 1, "dtype", value="object"),
        "its parameter table's entry 1 is not an object with a name, a known dtype, a shape, an offset and nbytes",
    ),
    (
        setter("params", 0, "shape", value=[1, -3]),
        "its parameter table's entry 0 is not an object with a name, a known dtype, a shape, an offset and nbytes",
    ),
    (
        setter("params", 0, "shape", value=[1, True, 3]),
        "its parameter table's entry 0 is not an object with a name, a known dtype, a shape, an offset and nbytes",
    ),
    (setter("params", 1, "name", value="fc_weight"), "its parameter table lists 'fc_weight' twice"),
    (setter("params", value={}), "its manifest's parameter table is not a list"),
    (
        setter(
            "params",
            1,
            value={"name": "fc_bias", "dtype": "float64", "shape": [2**40], "offset": 12, "nbytes": 2**43},
        ),
        "parameter 'fc_bias' ends at byte 8796093022220 of the parameter blob, which holds 16",
    ),
    (
        lambda m: m["params"].pop(),
        "its parameter blob holds 16 bytes, but its parameter table accounts for 12",
    ),
    (lambda m: m["binaries"].pop(), "its manifest lists 0 binaries, but it holds 1 binary sections"),
    (
        setter("binaries", 0, "nbytes", value=3),
        "binary 'libmodel.so' claims 3 bytes, but its section holds 15",
    ),
    (
        setter("binaries", 0, value=["libmodel.so", 15]),
        "its manifest's binary table is not a list of objects with a name and nbytes",
    ),
    (setter("format_version", value=2), "its manifest gives format version 2, its header 1"),
    (
        setter("ember_version", value="9.9.9"),
        "its content hash does not match its manifest, graph, parameters and binaries",
    ),
    (
        setter("params", 0, "extra", value=1),
        "its parameter or binary table holds fields an artifact does not have",
    ),
    (
        setter("binaries", 0, "extra", value=1),
        "its parameter or binary table holds fields an artifact does not have",
    ),
    (lambda m: m.pop("target"), "its manifest has no field 'target'"),
    (
        setter("cpu_features", value="avx2"),
        "its manifest's field 'cpu_features' is not a list of feature names",
    ),
    (
        setter("inputs", 0, "dtype", value="float8"),
        "its manifest's field 'inputs' is not a list of {name, shape, dtype} objects with known dtypes",
    ),
    (
        setter("buffer_plan", "buffers", 1, "offset", value=124),
        "its manifest's buffer plan puts buffer 'fc_output' at bytes 124-132, past its 128-byte arena",
    ),
    (
        setter("buffer_plan", "buffers", 0, "role", value="scratch"),
        "its manifest's buffer plan has a buffer 0 that is not an object with a name, offset, nbytes, shape, a known dtype and a role",
    ),
    (setter("extra", value=float("inf")), "its manifest is not valid JSON (1e999 is out of range)"),
]


@pytest.mark.parametrize("edit, problem", MANIFEST_EDITS)
def test_a_resealed_manifest_that_contradicts_the_file_is_named(small_file, edit, problem):
    path, data = small_file
    damaged = edited(data, edit)
    if "1e999" in problem:  # json.dumps spells it Infinity; a number too large for a float is the same
        sections = sections_of(damaged)
        damaged = sealed([sections[0].replace(b'"extra":Infinity', b'"extra":1e999'), *sections[1:]])
    assert read_error(path, damaged) == f"'{path}' is corrupt: {problem}"


@pytest.mark.parametrize(
    "sections, problem",
    [
        (
            lambda s: [b"{", *s[1:]],
            "its manifest is not valid JSON (Expecting property name enclosed in double quotes at character 1)",
        ),
        (lambda s: [b"[1]", *s[1:]], "its manifest is a JSON list, not an object"),
        (
            lambda s: [s[0].replace(b'"ember_version":"0.1.0"', b'"ember_version":NaN'), *s[1:]],
            "its manifest is not valid JSON (NaN is not a JSON value)",
        ),
        (lambda s: [b'{"a":"\xff"}', *s[1:]], "its manifest is not valid UTF-8 (byte 6 of its section)"),
        (lambda s: [s[0], b"\xc3(", *s[2:]], "its graph is not valid UTF-8 (byte 0 of its section)"),
        (
            lambda s: [s[0], b"{", *s[2:]],
            "its graph is not valid JSON (Expecting property name enclosed in double quotes at character 1)",
        ),
        (
            lambda s: [s[0], b'{"heads": []}', *s[2:]],
            "its graph is not MXNet symbol JSON (an object with a list of nodes)",
        ),
        (
            lambda s: s[:2],
            "it holds 2 sections, not the 3 (manifest, graph, parameter blob) every artifact has",
        ),
        (lambda s: [*s, b"extra"], "its manifest lists 1 binaries, but it holds 2 binary sections"),
        (
            lambda s: [s[0], s[1], s[2] + b"\0", s[3]],
            "its parameter blob holds 17 bytes, but its parameter table accounts for 16",
        ),
    ],
)
def test_resealed_sections_that_are_malformed_are_named(small_file, sections, problem):
    path, data = small_file
    assert read_error(path, sealed(sections(sections_of(data)))) == f"'{path}' is corrupt: {problem}"


def test_resealed_framing_errors_are_named(small_file):
    path, data = small_file
    body = data[20:-32]

    def reseal(new_body: bytes) -> bytes:
        head = b"EMBERART" + struct.pack("<IQ", 1, len(new_body)) + new_body
        return head + hashlib.sha256(head).digest()

    assert read_error(path, reseal(body + b"\0\0\0")) == (
        f"'{path}' is corrupt: the length of its binary 1 section is cut off by the end of the body"
    )
    (manifest_length,) = struct.unpack_from("<Q", body)
    overrun = struct.pack("<Q", len(body)) + body[8:]
    assert read_error(path, reseal(overrun)) == (
        f"'{path}' is corrupt: its manifest section claims {len(body)} bytes, but the body has {len(body) - 8} left"
    )
    assert manifest_length == len(sections_of(data)[0])


def test_any_resealed_single_byte_damage_raises_only_artifact_error(small_file):
    """Behind a valid checksum (a deliberately forged file), every byte of the body is still checked."""
    path, data = small_file
    body = data[20:-32]
    rng = np.random.default_rng(0)
    for position in range(len(body)):
        for damaged_body in (
            body[:position] + bytes([body[position] ^ int(rng.integers(1, 256))]) + body[position + 1 :],
            body[:position] + body[position + 1 :],
            body[:position] + b"0" + body[position:],
        ):
            head = b"EMBERART" + struct.pack("<IQ", 1, len(damaged_body)) + damaged_body
            message = read_error(path, head + hashlib.sha256(head).digest())
            assert message.startswith(f"'{path}' is corrupt: "), (position, message)


# -- the machine ----------------------------------------------------------------------------------

X86_CPUINFO = """processor\t: 0
flags\t\t: fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx avx2 bmi1 abm avx512f avx512_vnni

processor\t: 1
flags\t\t: fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx avx2 bmi1 abm
"""
ARM_CPUINFO = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp
CPU implementer\t: 0x41
"""


def test_cpuinfo_gives_the_features_every_processor_has_in_both_spellings():
    x86 = parse_cpuinfo(X86_CPUINFO)
    assert {"avx2", "fma", "sse4_1", "sse4.1", "pni", "sse3", "bmi1", "bmi", "abm", "lzcnt", "crc32"} <= x86
    assert (
        "avx512f" not in x86 and "avx512_vnni" not in x86 and "avx512vnni" not in x86
    )  # processor 1 lacks them
    arm = parse_cpuinfo(ARM_CPUINFO)
    assert {"asimd", "neon", "fp", "fp-armv8", "crc32", "crc", "lse", "dotprod", "fullfp16", "aes"} <= arm
    assert parse_cpuinfo("processor\t: 0\nmodel name\t: mystery\n") is None


def test_missing_cpu_features_are_named():
    host = parse_cpuinfo(X86_CPUINFO)
    needs = manifest(cpu_features=["avx2", "avx1024", "sse4.1", "avx512f", "avx1024"])
    with pytest.raises(ArtifactError) as caught:
        check_cpu_features(needs, host=host)
    assert str(caught.value) == (
        "the artifact needs CPU features this machine lacks: avx1024, avx512f; recompile the model on this machine"
    )
    check_cpu_features(manifest(cpu_features=["avx2", "fma", "sse4.2", "lzcnt"]), host=host)
    check_cpu_features(manifest(target="nvptx64-nvidia-cuda", cpu_features=["avx1024"]), host=host)


@pytest.mark.skipif(host_cpu_features() is None, reason="this system does not report its CPU features")
def test_an_artifact_built_for_features_this_machine_lacks_does_not_load(tmp_path):
    assert "sse2" in host_cpu_features() or "asimd" in host_cpu_features()
    path = tmp_path / "future.ember"
    write_artifact(path, small_artifact(cpu_features=["avx1024"]))
    with pytest.raises(ArtifactError) as caught:
        read_artifact(path)
    assert str(caught.value) == (
        f"'{path}' needs CPU features this machine lacks: avx1024; recompile the model on this machine"
    )
    assert read_artifact(path, check_host=False).manifest["cpu_features"] == ["avx1024"]


def test_an_artifact_for_another_architecture_does_not_load(tmp_path):
    path = tmp_path / "other.ember"
    other = "riscv64-unknown-linux-gnu"
    write_artifact(path, small_artifact(target=other))
    with pytest.raises(ArtifactError) as caught:
        read_artifact(path)
    assert str(caught.value) == (
        f"'{path}' was compiled for {other}, but this machine is {host_target()}; recompile the model on this machine"
    )
    assert read_artifact(path, check_host=False).manifest["target"] == other


def test_targets_compare_by_architecture_and_operating_system():
    check_target({"target": "x86_64-linux-gnu"}, host="x86_64-unknown-linux-gnu")
    check_target({"target": "AMD64-pc-windows-msvc"}, host="x86_64-pc-windows-gnu")
    check_target({"target": "arm64-apple-darwin23.1.0"}, host="aarch64-apple-macosx14.0")
    check_target({"target": "nvptx64-nvidia-cuda"}, host="aarch64-unknown-linux-gnu")
    with pytest.raises(ArtifactError) as caught:
        check_target({"target": "x86_64-apple-darwin"}, host="x86_64-unknown-linux-gnu", source="'m.ember'")
    assert str(caught.value) == (
        "'m.ember' was compiled for x86_64-apple-darwin, but this machine is x86_64-unknown-linux-gnu; "
        "recompile the model on this machine"
    )


def test_host_target_agrees_with_llvm():
    llvm = pytest.importorskip("llvmlite.binding")
    check_target({"target": llvm.get_default_triple()})
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    assert host_target().split("-")[0] in (machine, "arm64")
    if sys.platform.startswith("linux"):
        assert host_target() == f"{machine}-unknown-linux-gnu" or host_target().endswith("-musl")


# -- the runtime alone ----------------------------------------------------------------------------


def test_an_artifact_reads_where_llvmlite_and_networkx_cannot_be_imported(tmp_path):
    path = tmp_path / "model.ember"
    write_artifact(path, small_artifact())
    code = (
        "import sys; sys.modules['llvmlite'] = None; sys.modules['networkx'] = None\n"
        "from ember.runtime.artifact import read_artifact\n"
        f"art = read_artifact({str(path)!r})\n"
        "print(art.params['fc_weight'].tolist(), art.binaries['libmodel.so'], art.manifest['inputs'][0]['name'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('llvmlite', 'networkx') and sys.modules[m]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[[0.5, -1.0, 2.0]] b'\\x7fELF-not-really' data", "[]"]


def test_a_deep_copy_of_a_manifest_makes_an_equal_artifact():
    art = small_artifact()
    again = Artifact(copy.deepcopy(art.manifest), art.graph_json, art.params, art.binaries)
    assert again == art and again.manifest == art.manifest

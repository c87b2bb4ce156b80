"""The artifact: one file holding a compiled model, written by codegen and loaded by the runtime.

An `Artifact` is plain data: a manifest (JSON, see manifest.py), the graph as MXNet symbol JSON, the
parameters (numpy arrays) and the binaries (a shared library, PTX). `write_artifact` stores it
atomically; `read_artifact` checks every byte and raises ArtifactError, and nothing else, on a file
that is truncated, corrupt, foreign, newer than this runtime or built for another machine. No pickle.

Byte layout, format version 1 (integers little-endian):

    offset  size  field
    0       8     magic b"EMBERART"                                 } every format version
    8       4     u32 format version (1)                            } starts with these 12 bytes
    12      8     u64 B: the length of the body
    20      B     body: sections, each a u64 length L followed by L bytes, in this order:
                    manifest        UTF-8 JSON object, canonical (sorted keys, no spaces, ASCII only)
                    graph           UTF-8 MXNet symbol JSON
                    parameter blob  every parameter's bytes (little-endian, C order) back to back,
                                    in the order and at the offsets that manifest["params"] gives
                    binaries        one section per binary, in the order of manifest["binaries"]
    20+B    32    SHA-256 of bytes [0, 20+B), everything before it
    file size: exactly 52 + B

The trailing checksum guards the bytes: any damage after the header fails it. manifest["content_hash"]
names the content: the SHA-256 hex of the body as it would be written with "content_hash" left out of
the manifest. It is the artifact's identity (two artifacts are equal when their content hashes are)
and `read_artifact` recomputes it from the decoded data.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from .errors import ArtifactError
from .files import NotRegularFileError, read_regular_file, write_atomic
from .host import check_cpu_features, check_target
from .manifest import (
    DTYPES,
    content_problem,
    describe_json_error,
    is_count,
    is_shape,
    parameters_problem,
    parse_finite,
    reject_constant,
)

MAGIC = b"EMBERART"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sIQ")  # magic, format version, body length
PREFIX_BYTES = 12  # magic and format version: the part of the header every format version shares
LENGTH = struct.Struct("<Q")
DIGEST_BYTES = 32
FIXED_SECTIONS = ("manifest", "graph", "parameter blob")


@dataclass(frozen=True, eq=False)
class Artifact:
    """A compiled model as plain data: manifest, graph JSON, parameters and binaries.

    Construction checks the manifest's producer fields, the graph JSON and the parameters' names and
    shapes against the layout (when it has one), copies the parameters into read-only C-contiguous
    arrays (those already so are kept), and fills in the derived manifest fields: "format_version",
    the "params" and "binaries" tables and "content_hash". The manifest is the artifact's own plain
    dict, ready for json.dumps (never mutate it: make a new Artifact); parameters and binaries are
    read-only mappings. Artifacts compare and hash by content.
    """

    manifest: dict[str, Any]
    graph_json: str
    params: Mapping[str, np.ndarray] = field(default_factory=dict)
    binaries: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self):
        params = {_checked_name(name, "parameter"): _frozen_array(name, a) for name, a in self.params.items()}
        binaries = {
            _checked_name(name, "binary"): _binary_bytes(name, b) for name, b in self.binaries.items()
        }
        manifest = _json_copy(self.manifest)
        problem = content_problem(manifest, self.graph_json) or parameters_problem(
            manifest, {name: array.shape for name, array in params.items()}
        )
        if problem:
            raise ArtifactError(f"cannot make an artifact: {problem}")
        manifest.pop("content_hash", None)
        manifest["format_version"] = FORMAT_VERSION
        manifest["params"] = _param_table(params)
        manifest["binaries"] = [{"name": name, "nbytes": len(data)} for name, data in binaries.items()]
        digest = hashlib.sha256()
        for chunk in _body(manifest, self.graph_json, params, binaries):
            digest.update(chunk)
        manifest["content_hash"] = digest.hexdigest()
        object.__setattr__(self, "manifest", manifest)
        object.__setattr__(self, "params", MappingProxyType(params))
        object.__setattr__(self, "binaries", MappingProxyType(binaries))

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    def __eq__(self, other) -> bool:
        return isinstance(other, Artifact) and self.content_hash == other.content_hash

    def __hash__(self) -> int:
        return hash(self.content_hash)

    def __repr__(self) -> str:
        m = self.manifest
        specs = {
            io: ", ".join(f"{s['name']}{tuple(s['shape'])}:{s['dtype']}" for s in m[io])
            for io in ("inputs", "outputs")
        }
        binaries = ", ".join(f"{name} ({len(data)} bytes)" for name, data in self.binaries.items())
        return (
            f"Artifact(target={m['target']}, inputs=[{specs['inputs']}], outputs=[{specs['outputs']}], "
            f"{len(self.params)} params ({sum(a.nbytes for a in self.params.values())} bytes), "
            f"binaries=[{binaries}], content_hash={self.content_hash[:16]}...)"
        )


# -- writing --------------------------------------------------------------------------------------


def write_artifact(path, artifact: Artifact) -> None:
    """Write `artifact` to `path` atomically: `path` holds its old content or the whole new artifact
    (DiskFullError when the disk is full, ArtifactError for any other failure)."""
    write_atomic(path, _file_chunks(artifact))


def encode_artifact(artifact: Artifact) -> bytes:
    """The bytes `write_artifact` writes for `artifact`."""
    return b"".join(_file_chunks(artifact))


def _file_chunks(artifact: Artifact) -> Iterator[bytes | memoryview]:
    """Header, body and checksum, as pieces to write one after another."""
    body = list(_body(artifact.manifest, artifact.graph_json, artifact.params, artifact.binaries))
    header = HEADER.pack(MAGIC, FORMAT_VERSION, sum(memoryview(chunk).nbytes for chunk in body))
    digest = hashlib.sha256(header)
    yield header
    for chunk in body:
        digest.update(chunk)
        yield chunk
    yield digest.digest()


def _body(
    manifest: Mapping, graph_json: str, params: Mapping, binaries: Mapping
) -> Iterator[bytes | memoryview]:
    """The body's sections, each as its length and then its bytes (the blob one array at a time)."""
    arrays = [_little_endian_bytes(array) for array in params.values()]
    sections = [[_canonical_json(manifest).encode("ascii")], [graph_json.encode("utf-8")], arrays]
    sections += [[data] for data in binaries.values()]
    for pieces in sections:
        yield LENGTH.pack(sum(memoryview(piece).nbytes for piece in pieces))
        yield from pieces


def _canonical_json(data) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _json_copy(manifest) -> dict:
    """A deep copy of `manifest` as JSON would give it back (tuples become lists), or ArtifactError."""
    if not isinstance(manifest, Mapping):
        raise ArtifactError(
            f"cannot make an artifact: its manifest is a {type(manifest).__name__}, not a mapping"
        )
    try:
        return json.loads(_canonical_json(dict(manifest)))
    except (TypeError, ValueError, RecursionError) as err:
        raise ArtifactError(f"cannot make an artifact: its manifest is not JSON data ({err})") from None


def _is_name(name) -> bool:
    return isinstance(name, str) and name != ""


def _checked_name(name, kind: str) -> str:
    if not _is_name(name):
        raise ArtifactError(f"cannot make an artifact: {kind} name {name!r} is not a non-empty string")
    return name


def _frozen_array(name: str, value) -> np.ndarray:
    """`value` as a read-only, C-contiguous array of a native dtype, copied unless it already is one."""
    array = np.asarray(value)
    if array.dtype.name not in DTYPES:
        raise ArtifactError(
            f"cannot make an artifact: parameter {name!r} has dtype {array.dtype}, which an artifact "
            f"cannot hold (it holds {', '.join(DTYPES)})"
        )
    if _is_frozen(array):
        return array
    frozen = np.array(array, dtype=array.dtype.name, order="C", copy=True)
    frozen.flags.writeable = False
    return frozen


def _is_frozen(array: np.ndarray) -> bool:
    """Read-only, C-contiguous, native dtype, and no writable array underneath it."""
    if array.flags.writeable or not array.flags.c_contiguous or array.dtype != np.dtype(array.dtype.name):
        return False
    base = array.base
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    return base is None or isinstance(base, bytes)


def _binary_bytes(name: str, value) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ArtifactError(
            f"cannot make an artifact: binary {name!r} is a {type(value).__name__}, not bytes"
        )
    return bytes(value)


def _param_table(params: Mapping[str, np.ndarray]) -> list[dict]:
    table, offset = [], 0
    for name, array in params.items():
        table.append(
            {
                "name": name,
                "dtype": array.dtype.name,
                "shape": list(array.shape),
                "offset": offset,
                "nbytes": array.nbytes,
            }
        )
        offset += array.nbytes
    return table


def _little_endian_bytes(array: np.ndarray) -> memoryview:
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return memoryview(little.reshape(-1).view(np.uint8))


# -- reading --------------------------------------------------------------------------------------


def read_artifact(path, *, check_host: bool = True) -> Artifact:
    """The artifact in the file `path`, every byte and every manifest field checked (a FIFO, a device
    or a folder is refused at once). With `check_host` (the default) it must also have been built for
    this machine's architecture, OS and CPU features; `ember inspect`-style tools pass False to read
    artifacts built elsewhere. Nothing here runs the artifact's code: `model.load` does that."""
    path = os.fspath(path)
    return decode_artifact(_read_regular_file(path), f"'{path}'", check_host=check_host)


def _read_regular_file(path: str) -> bytes:
    """The bytes of the regular file `path` (files.read_regular_file); a FIFO, a device or a folder is
    an ArtifactError at once (never a wait for a writer, never an endless read)."""
    try:
        return read_regular_file(path)
    except FileNotFoundError:
        raise ArtifactError(f"cannot read '{path}': no such file") from None
    except NotRegularFileError as err:
        raise ArtifactError(
            f"cannot read '{path}': it is not a regular file (mode {stat.filemode(err.mode)}), "
            "so it cannot be an Ember artifact"
        ) from None
    except OSError as err:
        raise ArtifactError(f"cannot read '{path}': {err.strerror or err}") from None


def decode_artifact(data: bytes, source: str = "the buffer", *, check_host: bool = True) -> Artifact:
    """The artifact held in `data` (what `encode_artifact` returns); `source` names it in errors."""
    view = memoryview(data).cast("B")
    body_end = _checked_header(view, source)
    if hashlib.sha256(view[:body_end]).digest() != view[body_end:]:
        raise ArtifactError(f"{source} is corrupt: its SHA-256 checksum does not match its contents")
    sections = _split_sections(view[HEADER.size : body_end], source)

    def corrupt(problem: str) -> ArtifactError:
        return ArtifactError(f"{source} is corrupt: {problem}")

    manifest = _parse_json(sections[0], "manifest", corrupt)
    graph_json = _utf8(sections[1], "graph", corrupt)
    if not isinstance(manifest, dict):
        raise corrupt(f"its manifest is a JSON {type(manifest).__name__}, not an object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise corrupt(
            f"its manifest gives format version {manifest.get('format_version')!r}, its header {FORMAT_VERSION}"
        )
    params = _read_params(manifest.get("params"), sections[2], corrupt)
    binaries = _read_binaries(manifest.get("binaries"), sections[3:], corrupt)
    try:  # construction checks the manifest, the graph and the parameters against the layout
        artifact = Artifact(manifest, graph_json, params, binaries)
    except ArtifactError as err:  # said as this file's corruption
        raise corrupt(str(err).removeprefix("cannot make an artifact: ")) from None
    if artifact.content_hash != manifest.get("content_hash"):
        raise corrupt("its content hash does not match its manifest, graph, parameters and binaries")
    if artifact.manifest != manifest:  # the hash covers the tables as written; anything more is forged
        raise corrupt("its parameter or binary table holds fields an artifact does not have")
    if check_host:
        check_target(artifact.manifest, source=source)
        check_cpu_features(artifact.manifest, source=source)
    return artifact


def _checked_header(view: memoryview, source: str) -> int:
    """Where the body ends (and the checksum starts), after checking magic, version and file size."""
    size = len(view)
    if size == 0:
        raise ArtifactError(f"{source} is empty, not an Ember artifact")
    head = bytes(view[: len(MAGIC)])
    if head != MAGIC[: len(head)]:
        raise ArtifactError(
            f"{source} is not an Ember artifact: it starts with {head!r} instead of {MAGIC!r}"
        )
    truncated_header = (
        f"{source} is truncated: it ends after {size} bytes, inside its {HEADER.size}-byte header"
    )
    if size < PREFIX_BYTES:
        raise ArtifactError(truncated_header)
    (version,) = struct.unpack_from("<I", view, len(MAGIC))
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"{source} is an Ember artifact of format version {version}, but this runtime reads format "
            f"version {FORMAT_VERSION}; load it with a newer Ember"
        )
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{source} is corrupt: its header gives format version {version}, which no Ember wrote "
            f"(this runtime reads format version {FORMAT_VERSION})"
        )
    if size < HEADER.size:
        raise ArtifactError(truncated_header)
    _, _, body_length = HEADER.unpack_from(view)
    body_end = HEADER.size + body_length
    expected = body_end + DIGEST_BYTES
    if size < expected:
        raise ArtifactError(
            f"{source} is truncated: its header promises {expected} bytes, but it holds {size}"
        )
    if size > expected:
        raise ArtifactError(
            f"{source} is corrupt: it holds {size - expected} unexpected bytes after its end at byte {expected}"
        )
    return body_end


def _split_sections(body: memoryview, source: str) -> list[memoryview]:
    sections, position = [], 0
    while position < len(body):
        label = (
            FIXED_SECTIONS[len(sections)]
            if len(sections) < len(FIXED_SECTIONS)
            else f"binary {len(sections) - len(FIXED_SECTIONS)}"
        )
        remaining = len(body) - position - LENGTH.size
        if remaining < 0:
            raise ArtifactError(
                f"{source} is corrupt: the length of its {label} section is cut off by the end of the body"
            )
        (length,) = LENGTH.unpack_from(body, position)
        if length > remaining:
            raise ArtifactError(
                f"{source} is corrupt: its {label} section claims {length} bytes, but the body has {remaining} left"
            )
        position += LENGTH.size
        sections.append(body[position : position + length])
        position += length
    if len(sections) < len(FIXED_SECTIONS):
        raise ArtifactError(
            f"{source} is corrupt: it holds {len(sections)} sections, not the {len(FIXED_SECTIONS)} "
            f"({', '.join(FIXED_SECTIONS)}) every artifact has"
        )
    return sections


def _utf8(section: memoryview, what: str, corrupt) -> str:
    try:
        return bytes(section).decode("utf-8")
    except UnicodeDecodeError as err:
        raise corrupt(f"its {what} is not valid UTF-8 (byte {err.start} of its section)") from None


def _parse_json(section: memoryview, what: str, corrupt):
    try:
        return json.loads(
            _utf8(section, what, corrupt), parse_constant=reject_constant, parse_float=parse_finite
        )
    except (ValueError, RecursionError) as err:
        raise corrupt(f"its {what} is not valid JSON ({describe_json_error(err)})") from None


def _read_params(table, blob: memoryview, corrupt) -> dict[str, np.ndarray]:
    """The parameters that the manifest's table places in the parameter blob, back to back."""
    if not isinstance(table, list):
        raise corrupt("its manifest's parameter table is not a list")
    params, offset = {}, 0
    for index, entry in enumerate(table):
        if not (
            isinstance(entry, dict)
            and _is_name(entry.get("name"))
            and entry.get("dtype") in DTYPES
            and is_shape(entry.get("shape"))
            and is_count(entry.get("offset"))
            and is_count(entry.get("nbytes"))
        ):
            raise corrupt(
                f"its parameter table's entry {index} is not an object with a name, a known dtype, a shape, "
                "an offset and nbytes"
            )
        name, dtype, shape = entry["name"], np.dtype(entry["dtype"]), entry["shape"]
        size = math.prod(shape)
        if name in params:
            raise corrupt(f"its parameter table lists {name!r} twice")
        if entry["nbytes"] != size * dtype.itemsize:
            raise corrupt(
                f"parameter {name!r} claims {entry['nbytes']} bytes, but a {dtype.name} array of shape "
                f"{tuple(shape)} takes {size * dtype.itemsize}"
            )
        if entry["offset"] != offset:
            raise corrupt(
                f"parameter {name!r} starts at byte {entry['offset']} of the parameter blob, not at byte "
                f"{offset} where the one before it ends"
            )
        end = offset + entry["nbytes"]
        if end > len(blob):
            raise corrupt(
                f"parameter {name!r} ends at byte {end} of the parameter blob, which holds {len(blob)}"
            )
        array = np.frombuffer(blob, dtype=dtype.newbyteorder("<"), count=size, offset=offset)
        params[name] = array.reshape(shape).astype(dtype)
        params[name].flags.writeable = False
        offset = end
    if offset != len(blob):
        raise corrupt(
            f"its parameter blob holds {len(blob)} bytes, but its parameter table accounts for {offset}"
        )
    return params


def _read_binaries(table, sections: list[memoryview], corrupt) -> dict[str, bytes]:
    if not isinstance(table, list) or not all(
        isinstance(entry, dict) and _is_name(entry.get("name")) and is_count(entry.get("nbytes"))
        for entry in table
    ):
        raise corrupt("its manifest's binary table is not a list of objects with a name and nbytes")
    if len(table) != len(sections):
        raise corrupt(
            f"its manifest lists {len(table)} binaries, but it holds {len(sections)} binary sections"
        )
    binaries = {}
    for entry, section in zip(table, sections):
        name = entry["name"]
        if name in binaries:
            raise corrupt(f"its binary table lists {name!r} twice")
        if entry["nbytes"] != len(section):
            raise corrupt(
                f"binary {name!r} claims {entry['nbytes']} bytes, but its section holds {len(section)}"
            )
        binaries[name] = bytes(section)
    return binaries

"""Seeded, bounded-time fuzz of the artifact loader: every mutated artifact loads or raises MXNetError.

The model is a small compiled network (FullyConnected + relu) saved as an artifact; every case is
written to a file and opened with the public loader `ember.runtime.load` (host checks on, as in
normal use), and a model that loads is called once. Three sources of cases:

- the file's bytes mutated (tests/fuzzing.py): the SHA-256 checksum or the header catches each;
- the manifest's JSON text mutated, then sealed again with a valid checksum (and, when the text is
  still a JSON object, a recomputed content hash), as someone editing a file on purpose would;
- structured edits of the manifest: keys deleted, values of the wrong type, huge offsets and shapes.

The checksum only catches accidents, so the last two are what the manifest checks must survive.
The outcome counts are printed (pytest -s) and stated in issue 12's closing note.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import random

import numpy as np
import pytest

import ember as mx
import ember.runtime
from ember.codegen import driver
from ember.runtime import artifact as artifact_module
from ember.runtime.artifact import encode_artifact
from ember.runtime.errors import ArtifactError
from ember.runtime.manifest import parse_finite, reject_constant
from tests.fuzzing import mutations, outcomes, time_limit

SECONDS_PER_CASE = 10.0
BYTE_CASES, TEXT_CASES, EDIT_CASES = 400, 800, 1200
X = np.array([[0.5, -1.0, 2.0]], np.float32)


@pytest.fixture(scope="module")
def small():
    """The artifact of relu(FullyConnected(data, 2)) over a (1, 3) input, its bytes, and its output on X."""
    data = mx.sym.Variable("data")
    net = mx.sym.relu(mx.sym.FullyConnected(data, num_hidden=2, name="fc"), name="out")
    params = {
        "fc_weight": np.array([[1, 2, 3], [-1, 0, 1]], np.float32),
        "fc_bias": np.array([0.5, -9], np.float32),
    }
    roles = {name: "parameter" for name in params}
    compiled = driver.compile_graph(
        net._graph, shapes={"data": (1, 3), "fc_weight": (2, 3), "fc_bias": (2,)}, roles=roles, cache=False
    )
    artifact = compiled.artifact(net.tojson(), params)
    expected = np.maximum(X @ params["fc_weight"].T + params["fc_bias"], 0)
    return artifact, encode_artifact(artifact), expected


def sealed(artifact, manifest_text: bytes) -> bytes:
    """The artifact's file with its manifest section replaced by `manifest_text`, and a valid checksum."""
    body = list(
        artifact_module._body(artifact.manifest, artifact.graph_json, artifact.params, artifact.binaries)
    )
    body[0:2] = [artifact_module.LENGTH.pack(len(manifest_text)), manifest_text]  # the manifest section
    size = sum(memoryview(chunk).nbytes for chunk in body)
    head = artifact_module.HEADER.pack(artifact_module.MAGIC, artifact_module.FORMAT_VERSION, size)
    whole = head + b"".join(bytes(chunk) for chunk in body)
    return whole + hashlib.sha256(whole).digest()


def resealed(artifact, manifest: dict) -> bytes:
    """The artifact's file with `manifest` in it, its content hash and checksum made valid again."""
    manifest = {k: v for k, v in manifest.items() if k != "content_hash"}
    digest = hashlib.sha256()
    for chunk in artifact_module._body(manifest, artifact.graph_json, artifact.params, artifact.binaries):
        digest.update(chunk)
    manifest["content_hash"] = digest.hexdigest()
    return sealed(artifact, artifact_module._canonical_json(manifest).encode("ascii"))


def loader(tmp_path):
    """load(description, data): write the bytes, load them with the public loader, call the model once."""
    path = tmp_path / "case.ember"

    def load(description: str, data: bytes) -> None:
        path.write_bytes(data)
        ember.runtime.load(path)(data=X)

    return load


def report(title: str, counts: collections.Counter) -> None:
    outcome = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
    print(f"\n{title}: {sum(counts.values())} cases, {outcome}")


# ---------------------------------------------------------------------------------------------
# Structured edits: every place in the manifest, each with every kind of wrong value


DELETE = object()  # an edit that removes the value instead of replacing it
WRONG_VALUES = (None, True, -1, 0, 1, 1.5, 2**31, 2**48, 2**63, 10**30, "", "x", [], {}, [2**62, 0], [-1])


def json_paths(value, prefix=()) -> list[tuple]:
    """The path (keys and indices) of every value inside `value`, outermost first."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += json_paths(item, prefix + (index,))
    return paths


def edited(manifest: dict, path: tuple, change) -> dict:
    """A deep copy of `manifest` with the value at `path` deleted (change is DELETE) or replaced."""
    copy = json.loads(json.dumps(manifest))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    if change is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = change
    return copy


def editable(path: tuple) -> bool:
    """Not the content hash (recomputed) nor one CPU feature name (56 of them would crowd out the rest)."""
    return path[0] != "content_hash" and not (path[0] == "cpu_features" and len(path) > 1)


def structured_edits(artifact, seed: int, count: int):
    """`count` seeded (description, file bytes) cases, each one or two structured edits of the manifest."""
    rng = random.Random(seed)
    for case in range(count):
        manifest, notes = artifact.manifest, []
        for _ in range(rng.choice((1, 1, 2))):
            path = rng.choice([p for p in json_paths(manifest) if editable(p)])
            change = DELETE if rng.random() < 0.25 else rng.choice(WRONG_VALUES)
            manifest = edited(manifest, path, change)
            notes.append(f"{'/'.join(map(str, path))} {'deleted' if change is DELETE else f'= {change!r}'}")
        yield f"edit {case}: " + "; ".join(notes), resealed(artifact, manifest)


# ---------------------------------------------------------------------------------------------
# The fuzz


def test_mutated_bytes_are_caught_by_the_checksum_or_the_header(small, tmp_path):
    _, data, _ = small
    cases = list(mutations(data, seed=12, count=BYTE_CASES))
    counts = outcomes(loader(tmp_path), cases, seconds=SECONDS_PER_CASE)
    report("artifact bytes mutated", counts)
    unchanged = sum(mutated == data for _, mutated in cases)
    assert counts == +collections.Counter({"loaded": unchanged, "ArtifactError": BYTE_CASES - unchanged})


def test_mutated_manifest_text_with_a_valid_checksum_loads_or_raises_mxneterror(small, tmp_path):
    artifact, _, _ = small
    # The kernel listing is free text no check reads, and its many numbers would draw most mutations.
    listless = {**artifact.manifest, "kernels": ""}
    text = artifact_module._canonical_json(listless).encode("ascii")

    def cases():
        for description, mutated in mutations(text, seed=12, count=TEXT_CASES, text=True):
            try:
                parsed = json.loads(mutated, parse_constant=reject_constant, parse_float=parse_finite)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict):
                yield description + " (content hash recomputed)", resealed(artifact, parsed)
            else:
                yield description, sealed(artifact, mutated)

    counts = outcomes(loader(tmp_path), cases(), seconds=SECONDS_PER_CASE)
    report("manifest text mutated, checksum valid", counts)
    assert sum(counts.values()) == TEXT_CASES
    assert counts["ArtifactError"] > TEXT_CASES // 2  # most edits reach a check, not only the parser


def test_structured_manifest_edits_with_valid_hashes_load_or_raise_mxneterror(small, tmp_path):
    artifact, _, _ = small
    cases = structured_edits(artifact, seed=12, count=EDIT_CASES)
    counts = outcomes(loader(tmp_path), cases, seconds=SECONDS_PER_CASE)
    report("manifest edited (keys deleted, wrong types, huge values), hashes valid", counts)
    assert sum(counts.values()) == EDIT_CASES
    assert counts["ArtifactError"] > EDIT_CASES // 2


def test_the_unmutated_artifact_loads_and_runs(small, tmp_path):
    artifact, data, expected = small
    assert sealed(artifact, artifact_module._canonical_json(artifact.manifest).encode("ascii")) == data
    assert resealed(artifact, artifact.manifest) == data
    (tmp_path / "m.ember").write_bytes(data)
    (out,) = ember.runtime.load(tmp_path / "m.ember")(data=X)
    np.testing.assert_array_equal(out, expected)


# ---------------------------------------------------------------------------------------------
# Named malformed layouts: each says which field of which file is wrong


# (where in the manifest, the value put there or DELETE, what the error says after "its manifest's ")
MALFORMED = [
    (("layout", "entry"), DELETE, "layout has no field 'entry'"),
    (("layout", "entry"), "ember_pool_shutdown", "layout field 'entry' is not a symbol of the form"),
    (("layout", "arena_bytes"), 2**63, "layout field 'arena_bytes' is not a byte count below 2**48"),
    (("layout", "buffers", "b3", "offset"), 2**40, "layout buffer 'b3' ends at byte 1099511627784, past its"),
    (("layout", "buffers", "b1", "shape"), [0, 2**62, 4], "layout buffer 'b1' field 'shape' is not a shape"),
    (("layout", "buffers", "b1", "dtype"), "float64", "layout buffer 'b1' of shape (2, 3) and dtype float64"),
    (("layout", "buffers", "b3", "offset"), 0, "layout puts buffers 'b3' and 'b0' in the same bytes"),
    (("layout", "buffers", "b0", "offset"), 1, "layout and the manifest's buffer plan describe buffer 'b0'"),
    (("layout", "buffers", "b2"), DELETE, "layout maps parameter 'fc_bias' to buffer 'b2', which it"),
    (("layout", "inputs", "data"), "b3", "layout keeps input 'data' in buffer 'b3' of shape (1, 2)"),
    (("layout", "outputs"), [["out_output"]], "layout field 'outputs' is not a list of [output name, buffer"),
    (("layout", "optional_inputs"), ["label"], "layout lists optional input 'label', which is not one of"),
    (("layout",), [], "layout is a JSON list, not an object"),
    (("target",), "nvptx64-nvidia-cuda", "layout has no field 'arch'"),
]
# the same for what is said after "is corrupt: " (the parameters, checked against the layout)
MALFORMED_PARAMS = [
    (("layout", "parameters", "fc_weight"), "b2", "it holds parameter 'fc_weight' of shape (2, 3), but"),
    (("layout", "parameters", "fc_weight"), DELETE, "it holds parameter 'fc_weight', but its layout has no"),
    (("params", 0, "shape"), [0, 2**62, 4], "its parameter table's entry 0 is not an object with a name"),
]
CASES = [(p, v, "its manifest's " + m) for p, v, m in MALFORMED] + MALFORMED_PARAMS


@pytest.mark.parametrize("where, value, message", CASES, ids=[m.split(": ")[0][:48] for _, _, m in CASES])
def test_a_malformed_manifest_is_an_artifact_error_naming_the_field(small, tmp_path, where, value, message):
    artifact, _, _ = small
    path = tmp_path / "bad.ember"
    path.write_bytes(resealed(artifact, edited(artifact.manifest, where, value)))
    with pytest.raises(ArtifactError) as caught:
        ember.runtime.load(path)
    assert str(caught.value).startswith(f"'{path}' is corrupt: {message}")


def test_making_an_artifact_checks_its_parameters_against_its_layout(small):
    """The same checks as a load, made once at construction: a wrong artifact is never written."""
    artifact, _, _ = small
    manifest = edited(artifact.manifest, ("layout", "parameters", "fc_weight"), "b2")
    with pytest.raises(ArtifactError) as caught:
        artifact_module.Artifact(manifest, artifact.graph_json, artifact.params, artifact.binaries)
    assert str(caught.value).startswith(
        "cannot make an artifact: it holds parameter 'fc_weight' of shape (2, 3), "
        "but its layout's buffer 'b2'"
    )


def test_an_arena_larger_than_memory_is_an_artifact_error(small, tmp_path):
    """2**48 - 64 bytes: within the manifest's bound, more than this machine can map."""
    artifact, _, _ = small
    huge = 2**48 - 64
    manifest = edited(artifact.manifest, ("layout", "arena_bytes"), huge)
    manifest = edited(manifest, ("buffer_plan", "arena_bytes"), huge)
    path = tmp_path / "huge.ember"
    path.write_bytes(resealed(artifact, manifest))
    with pytest.raises(ArtifactError) as caught:
        ember.runtime.load(path)
    assert str(caught.value) == (
        f"cannot load '{path}': it needs more memory than this process can allocate (its layout's "
        f"arena_bytes is {huge})"
    )


def test_a_fifo_or_a_device_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.ember"
    os.mkfifo(fifo)
    with time_limit(5), pytest.raises(ArtifactError) as caught:
        ember.runtime.load(fifo)
    message = str(caught.value)  # the mode's permission bits follow the umask
    assert message.startswith(f"cannot read '{fifo}': it is not a regular file (mode prw")
    assert message.endswith("), so it cannot be an Ember artifact")
    with time_limit(5), pytest.raises(ArtifactError) as caught:
        ember.runtime.load("/dev/zero")  # before: an endless read, then MemoryError
    assert str(caught.value).startswith("cannot read '/dev/zero': it is not a regular file (mode crw")

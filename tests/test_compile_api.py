"""`ember.compile`, `CompiledModel.save` and `ember.runtime.load`: outputs equal the reference
interpreter's, artifacts run in a process where llvmlite cannot be imported, and bad input says
what is wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ember as mx
from ember.compiler import run
from ember.runtime import ArtifactError, MXNetError, load
from ember.runtime.artifact import Artifact, read_artifact, write_artifact

REPO = Path(__file__).resolve().parents[1]


def _model():
    data, bias = mx.sym.var("data"), mx.sym.var("shift_bias")
    scale = mx.sym.var("scale_weight")
    return mx.sym.tanh(mx.sym.broadcast_mul(mx.sym.relu(mx.sym.broadcast_add(data, bias)), scale)) * 3


def _params():
    rng = np.random.default_rng(0)
    return {"shift_bias": rng.standard_normal((1, 7)).astype(np.float32),
            "scale_weight": rng.standard_normal((5, 1)).astype(np.float32)}  # fmt: skip


def _reference(x):
    return run(_model()._graph, {"data": x, **_params()})[0]


@pytest.fixture(scope="module")
def compiled():
    return mx.compile(_model(), {"data": (5, 7)}, _params(), name="toy")


def test_compiled_model_matches_the_reference(compiled):
    x = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
    (got,) = compiled(data=x)
    np.testing.assert_allclose(got, _reference(x), rtol=1e-5, atol=1e-6)
    assert compiled.input_names == ("data",) and len(compiled.output_names) == 1
    assert compiled(x)[0].tolist() == got.tolist()  # positional input


def test_params_from_a_params_file_with_prefixes(tmp_path, compiled):
    path = tmp_path / "toy-0001.params"
    mx.nd.save(str(path), {f"arg:{k}": mx.nd.array(v) for k, v in _params().items()})
    model = mx.compile(_model(), {"data": (5, 7)}, str(path))
    x = np.ones((5, 7), np.float32)
    assert model(data=x)[0].tolist() == compiled(data=x)[0].tolist()


def test_save_and_load_give_identical_outputs(tmp_path, compiled):
    path = tmp_path / "toy.ember"
    compiled.save(path)
    again = load(path)
    x = np.random.default_rng(2).standard_normal((5, 7)).astype(np.float32)
    assert again(data=x)[0].tobytes() == compiled(data=x)[0].tobytes()
    assert again.manifest["content_hash"] == compiled.manifest["content_hash"]
    assert again.kernels == compiled.kernels


def test_an_artifact_runs_where_llvmlite_cannot_be_imported(tmp_path, compiled):
    path, x_path = tmp_path / "toy.ember", tmp_path / "x.npy"
    compiled.save(path)
    x = np.random.default_rng(3).standard_normal((5, 7)).astype(np.float32)
    np.save(x_path, x)
    code = (
        "import sys; sys.modules['llvmlite'] = None\n"
        "try:\n    import llvmlite\nexcept ImportError:\n    print('llvmlite blocked')\n"
        "import numpy as np, ember.runtime as rt\n"
        f"model = rt.load({str(path)!r})\n"
        f"out = model(data=np.load({str(x_path)!r}))[0]\n"
        "sys.stdout.buffer.write(out.tobytes())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(b"llvmlite blocked\n")
    assert done.stdout[len(b"llvmlite blocked\n") :] == compiled(data=x)[0].tobytes()


def test_damaged_artifacts_raise_one_clear_error(tmp_path, compiled):
    path = tmp_path / "toy.ember"
    compiled.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.ember").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated"):
        load(tmp_path / "cut.ember")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flip.ember").write_bytes(bytes(flipped))
    with pytest.raises(ArtifactError, match="checksum|corrupt"):
        load(tmp_path / "flip.ember")
    (tmp_path / "foreign.ember").write_bytes(b"\x7fELF" + data[4:])
    with pytest.raises(ArtifactError, match="not an Ember artifact"):
        load(tmp_path / "foreign.ember")
    with pytest.raises(ArtifactError, match="no such file"):
        load(tmp_path / "missing.ember")


def test_an_artifact_needing_cpu_features_this_machine_lacks_is_refused(tmp_path, compiled):
    manifest = json.loads(json.dumps(compiled.manifest))
    manifest["cpu_features"] = manifest["cpu_features"] + ["avx1024"]
    art = compiled.artifact
    write_artifact(tmp_path / "future.ember", Artifact(manifest, art.graph_json, art.params, art.binaries))
    with pytest.raises(ArtifactError, match="needs CPU features this machine lacks: avx1024"):
        load(tmp_path / "future.ember")


def test_the_manifest_describes_the_model(compiled):
    m = compiled.manifest
    assert m["inputs"] == [{"name": "data", "shape": [5, 7], "dtype": "float32"}]
    assert m["outputs"][0]["shape"] == [5, 7]
    assert sorted(p["name"] for p in m["params"]) == ["scale_weight", "shift_bias"]
    assert m["layout"]["arena_bytes"] == compiled.arena_bytes >= m["layout"]["plan_bytes"] > 0
    assert read_artifact  # the runtime's reader is what load uses
    assert "kernel " in m["kernels"]


@pytest.mark.parametrize(
    "shapes,params,message",
    [
        ({}, _params(), "no shape and no parameter value for 'data'"),
        ({"data": (5, 7), "nope": (1,)}, _params(), "'nope' is not a variable of the symbol"),
        ({"data": (5, 7), "shift_bias": (1, 7)}, _params(), "'shift_bias' is given both"),
        ({"data": (5, 8)}, _params(), "data"),
    ],
)
def test_bad_compile_arguments_say_what_is_wrong(shapes, params, message):
    with pytest.raises(MXNetError, match=message):
        mx.compile(_model(), shapes, params)


def test_wrong_inputs_at_call_time_say_what_is_wrong(compiled):
    with pytest.raises(MXNetError, match="has shape \\(5, 7\\), got an array of shape \\(2, 7\\)"):
        compiled(data=np.zeros((2, 7), np.float32))
    with pytest.raises(MXNetError, match="no input 'label'"):
        compiled(data=np.zeros((5, 7), np.float32), label=np.zeros(5))
    with pytest.raises(MXNetError, match="no value given for input 'data'"):
        compiled()
    with pytest.raises(MXNetError, match="unknown compile target"):
        mx.compile(_model(), {"data": (5, 7)}, _params(), target="tpu")


def test_a_loss_label_needs_no_shape_and_no_value():
    data = mx.sym.var("data")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(data, num_hidden=3, name="fc"), name="softmax")
    rng = np.random.default_rng(4)
    params = {"fc_weight": rng.standard_normal((3, 4)).astype(np.float32), "fc_bias": np.zeros(3, np.float32)}
    model = mx.compile(net, {"data": (2, 4)}, params)
    assert model.manifest["layout"]["optional_inputs"] == ["softmax_label"]
    x = rng.standard_normal((2, 4)).astype(np.float32)
    (got,) = model(data=x)
    logits = x @ params["fc_weight"].T
    want = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(got, want / want.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert model(data=x, softmax_label=np.ones(2, np.float32))[0].tolist() == got.tolist()


def test_the_compile_cache_never_mixes_up_dtypes_of_one_size(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))
    x = mx.sym.var("x")
    square = x * x
    values = {"float32": [1.5, 2, 3, 4], "int32": [1, 2, 3, 4], "int8": [1, 2, -3, 4], "uint8": [1, 2, 3, 4]}
    for dtype, data in values.items():
        model = mx.compile(square, {"x": (4,)}, dtypes={"x": dtype})
        array = np.array(data, dtype)
        assert model(x=array)[0].tolist() == (array * array).tolist(), dtype


def test_dropped_models_unload_their_native_code():
    import gc

    def mapped() -> int:
        with open("/proc/self/maps") as maps:
            return sum(1 for line in maps if "/ember-" in line and ".so" in line)

    x = mx.sym.var("x")
    gc.collect()  # programs earlier tests dropped are unloaded first
    before = mapped()
    models = [mx.compile(x * 2, {"x": (4,)}) for _ in range(5)]
    assert mapped() > before
    del models
    gc.collect()
    assert mapped() == before

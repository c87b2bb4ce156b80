"""Symbol JSON: MXNet 1.9.1's files read and re-written byte for byte; legacy files upgraded; bad files named."""

from __future__ import annotations

import json

import pytest

import ember as mx
from ember.base import GraphError, MXNetError

from .test_symbol import SEED_ARGUMENTS, seed_mlp


@pytest.fixture(autouse=True)
def fresh_names():
    with mx.name.NameManager():
        yield


@pytest.mark.parametrize("name", ["ck-symbol.json", "lin-symbol.json", "mlpnet-symbol.json"])
def test_mxnet_written_json_round_trips_byte_for_byte(mxnet_fixture, name):
    text = mxnet_fixture(name).read_text()
    assert mx.sym.load_json(text).tojson() == text


def test_seed_program_json_is_what_mxnet_wrote(mxnet_fixture):
    assert seed_mlp().tojson() == mxnet_fixture("ck-symbol.json").read_text()


def test_checkpoint_symbol_matches_mxnets_arguments_and_shapes(mxnet_fixture):
    mlp = mx.sym.load(str(mxnet_fixture("ck-symbol.json")))
    assert mlp.list_arguments() == SEED_ARGUMENTS
    args, outs, _ = mlp.infer_shape(data=(100, 1, 28, 28))
    assert args == [(100, 1, 28, 28), (128, 784), (128,), (64, 128), (64,), (10, 64), (10,), (100,)]
    assert outs == [(100, 10)]


def test_linear_regression_fixture(mxnet_fixture):
    lin = mx.sym.load(str(mxnet_fixture("lin-symbol.json")))
    assert lin.list_arguments() == ["data", "fc_weight", "fc_bias", "lin_reg_label"]
    args, outs, _ = lin.infer_shape(data=(10, 2))
    assert args == [(10, 2), (1, 2), (1,), (10,)] and outs == [(10, 1)]


def test_gluon_export_fixture_with_partial_declared_shapes(mxnet_fixture):
    net = mx.sym.load(str(mxnet_fixture("mlpnet-symbol.json")))
    assert net.list_arguments() == [
        "data", "mlp_conv0_weight", "mlp_conv0_bias", "mlp_batchnorm0_gamma", "mlp_batchnorm0_beta",
        "mlp_dense0_weight", "mlp_dense0_bias",
    ]
    assert net.list_auxiliary_states() == ["mlp_batchnorm0_running_mean", "mlp_batchnorm0_running_var"]
    args, outs, aux = net.infer_shape(data=(4, 1, 28, 28))
    assert args == [(4, 1, 28, 28), (20, 1, 5, 5), (20,), (20,), (20,), (10, 2880), (10,)]
    assert outs == [(4, 10)] and aux == [(20,), (20,)]


def test_save_and_load_file_round_trip(tmp_path):
    path = tmp_path / "net-symbol.json"
    seed_mlp().save(str(path))
    assert mx.sym.load(str(path)).tojson() == path.read_text()
    assert not path.read_text().endswith("\n")
    assert [p.name for p in tmp_path.iterdir()] == ["net-symbol.json"]


LEGACY = {
    "nodes": [
        {"op": "null", "param": {}, "name": "data", "inputs": [], "backward_source_id": -1},
        {"op": "null", "param": {}, "name": "fc_weight", "inputs": [], "backward_source_id": -1},
        {"op": "null", "param": {}, "name": "fc_bias", "inputs": [], "backward_source_id": -1},
        {
            "op": "FullyConnected", "param": {"num_hidden": "4", "no_bias": "false"},
            "attr": {"weight_lr_mult": "0.5", "ctx_group": "dev1"},
            "name": "fc", "inputs": [[0, 0], [1, 0], [2, 0]], "backward_source_id": -1,
        },
        {"op": "null", "param": {}, "name": "bn_gamma", "inputs": [], "backward_source_id": -1},
        {"op": "null", "param": {}, "name": "bn_beta", "inputs": [], "backward_source_id": -1},
        {
            "op": "BatchNorm", "param": {"eps": "0.001", "fix_gamma": "true"}, "name": "bn",
            "inputs": [[3, 0], [4, 0], [5, 0]], "backward_source_id": -1,
        },
    ],
    "arg_nodes": [0, 1, 2, 4, 5],
    "heads": [[6, 0]],
}


def test_legacy_json_is_upgraded():
    net = mx.sym.load_json(json.dumps(LEGACY))
    assert net.list_arguments() == ["data", "fc_weight", "fc_bias", "bn_gamma", "bn_beta"]
    assert net.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    attrs = net.attr_dict()
    assert attrs["fc_weight"] == {"__lr_mult__": "0.5", "lr_mult": "0.5"}
    assert attrs["fc"] == {"__ctx_group__": "dev1", "ctx_group": "dev1", "no_bias": "false", "num_hidden": "4"}
    assert json.loads(attrs["bn_moving_mean"]["__init__"]) == ["zero", {}]
    assert json.loads(attrs["bn_moving_var"]["__init__"]) == ["one", {}]
    _, outs, aux = net.infer_shape(data=(2, 3))
    assert outs == [(2, 4)] and aux == [(4,), (4,)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be an object with 'nodes' and 'heads'"),
        ('{"nodes": [{"op": "Frobnicate", "name": "f", "inputs": []}], "heads": [[0, 0, 0]]}',
         "node 0 ('f') uses unknown operator 'Frobnicate'"),
        ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "Activation", "name": "a",'
         ' "attrs": {"act_type": "relu", "colour": "red"}, "inputs": [[0, 0, 0]]}], "heads": [[1, 0, 0]]}',
         "unknown attribute 'colour' for operator Activation (node 'a')"),
        ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "Activation", "name": "a",'
         ' "attrs": {"act_type": "relu"}, "inputs": [[5, 0, 0]]}], "heads": [[1, 0, 0]]}',
         "refers to a node that does not precede it"),
        ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "Activation", "name": "a",'
         ' "attrs": {"act_type": "relu"}, "inputs": [[0, 0, 0], [0, 0, 0]]}], "heads": [[1, 0, 0]],'
         ' "attrs": {"mxnet_version": ["int", 10901]}}',
         "operator Activation takes 1 inputs (data), got 2"),
        ('{"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[0, 3, 0]]}', "reads output 3"),
    ],
)
def test_malformed_json_gives_a_clear_error(text, message):
    with pytest.raises(GraphError, match=message.replace("(", "\\(").replace(")", "\\)").replace("[", "\\[")):
        mx.sym.load_json(text)


def test_missing_symbol_file_names_it(tmp_path):
    with pytest.raises(MXNetError, match="cannot read symbol file .*nope-symbol.json"):
        mx.sym.load(str(tmp_path / "nope-symbol.json"))

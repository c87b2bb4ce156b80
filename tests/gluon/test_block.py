"""gluon.Block / HybridBlock / SymbolBlock and the basic layers: MXNet 1.x naming, deferred
initialization, hybridized and imperative calls agreeing, export in MXNet's exact JSON, imports of files
MXNet 1.9.1 wrote. Expected names, reprs and messages come from the real mxnet==1.9.1 wheel;
tests/fixtures/gluon-mlp-symbol.json is its `export` of `_mlp()` below."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember import autograd, gluon
from ember.gluon import nn

FIXTURES = __import__("pathlib").Path(__file__).resolve().parent.parent / "fixtures"


def _mlp():
    with mx.name.NameManager():
        net = nn.HybridSequential()
        with net.name_scope():
            net.add(nn.Dense(4, activation="relu"), nn.Dense(2))
    return net


def _data(shape=(3, 5), seed=0):
    return mx.nd.array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def test_names_and_reprs_follow_mxnet():
    net = _mlp()
    assert list(net.collect_params().keys()) == [
        "hybridsequential0_dense0_weight", "hybridsequential0_dense0_bias",
        "hybridsequential0_dense1_weight", "hybridsequential0_dense1_bias",
    ]  # fmt: skip
    assert repr(net) == ("HybridSequential(\n  (0): Dense(None -> 4, Activation(relu))\n"
                         "  (1): Dense(None -> 2, linear)\n)")  # fmt: skip
    net.initialize()
    net(_data())
    assert repr(net) == ("HybridSequential(\n  (0): Dense(5 -> 4, Activation(relu))\n"
                         "  (1): Dense(4 -> 2, linear)\n)")  # fmt: skip
    assert sorted(net._collect_params_with_prefix()) == ["0.bias", "0.weight", "1.bias", "1.weight"]
    with mx.name.NameManager():
        seq = nn.Sequential()
        seq.add(nn.Dense(3), nn.Dense(3))
        assert list(seq.collect_params()) == ["dense0_weight", "dense0_bias", "dense1_weight", "dense1_bias"]
        assert nn.Activation("relu").prefix == "relu0_"
    reprs = [repr(nn.Dropout(0.3)), repr(nn.Flatten()), repr(nn.Activation("tanh")), repr(nn.LeakyReLU(0.1))]
    assert reprs == ["Dropout(p = 0.3, axes=())", "Flatten", "Activation(tanh)", "LeakyReLU(0.1)"]


def test_deferred_initialization_infers_shapes_from_the_first_call():
    net = _mlp()
    net.initialize()
    assert net[0].weight.shape == (4, 0)
    net(_data((7, 5)))
    assert [p.shape for p in net.collect_params().values()] == [(4, 5), (4,), (2, 4), (2,)]


def test_hybridized_and_imperative_calls_agree_with_numpy():
    net = _mlp()
    net.initialize(mx.init.Xavier())
    x = _data()
    imperative = net(x).asnumpy()
    w1, b1, w2, b2 = (p.data().asnumpy() for p in net.collect_params().values())
    want = np.maximum(x.asnumpy() @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(imperative, want, rtol=1e-5, atol=1e-6)
    net.hybridize()
    np.testing.assert_allclose(net(x).asnumpy(), want, rtol=1e-5, atol=1e-6)
    assert net._cached_graph  # traced


def test_gradients_under_record_agree_hybridized_or_not():
    grads = []
    for hybridize in (False, True):
        net = _mlp()
        net.initialize(mx.init.Constant(0.1))
        if hybridize:
            net.hybridize()
        x = _data()
        with autograd.record():
            loss = (net(x) ** 2).sum()
        loss.backward()
        grads.append([p.grad().asnumpy() for p in net.collect_params().values()])
    for plain, hybrid in zip(*grads):
        np.testing.assert_allclose(plain, hybrid, rtol=1e-6)
    # d/d b2 of sum(out^2) = 2 * sum over rows of out
    net = _mlp()
    net.initialize(mx.init.Constant(0.1))
    out = net(_data()).asnumpy()
    np.testing.assert_allclose(grads[0][3], 2 * out.sum(axis=0), rtol=1e-5)


def test_export_writes_mxnet_exact_json_and_imports_back(tmp_path):
    net = _mlp()
    net.initialize()
    net.hybridize()
    x = _data()
    want = net(x).asnumpy()
    sym_file, params_file = net.export(str(tmp_path / "mlp"), epoch=3)
    assert params_file.endswith("mlp-0003.params")
    assert open(sym_file).read() == (FIXTURES / "gluon-mlp-symbol.json").read_text()
    assert sorted(mx.nd.load(params_file)) == [f"arg:{n}" for n in sorted(net.collect_params())]
    back = gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
    np.testing.assert_allclose(back(x).asnumpy(), want, rtol=1e-6)


def test_imports_reproduces_mxnet_convnet_predictions(mxnet_fixture):
    folder = mxnet_fixture("gluon/convnet-symbol.json").parent
    net = gluon.SymbolBlock.imports(str(folder / "convnet-symbol.json"), ["data"],
                                    str(folder / "convnet-0002.params"))  # fmt: skip
    x = mx.nd.array(np.load(folder / "convnet-x.npy"))
    np.testing.assert_allclose(net(x).asnumpy(), np.load(folder / "convnet-y.npy"), rtol=1e-5, atol=1e-6)


def test_save_and_load_parameters_round_trip_and_errors(tmp_path):
    net = _mlp()
    net.initialize()
    x = _data()
    want = net(x).asnumpy()
    path = str(tmp_path / "mlp.params")
    net.save_parameters(path)
    assert sorted(mx.nd.load(path)) == ["0.bias", "0.weight", "1.bias", "1.weight"]
    other = _mlp()
    other.load_parameters(path)
    np.testing.assert_allclose(other(x).asnumpy(), want, rtol=1e-6)
    bigger = _mlp()
    with bigger.name_scope():
        bigger.add(nn.Dense(3))
    with pytest.raises(AssertionError, match="Parameter '2.weight' is missing in file"):
        bigger.load_parameters(path)
    bigger.load_parameters(path, allow_missing=True)
    smaller = nn.HybridSequential()
    smaller.add(nn.Dense(4, activation="relu"))
    with pytest.raises(ValueError, match=r"Parameter '1\.(weight|bias)' loaded from file .* is not present"):
        smaller.load_parameters(path)
    smaller.load_parameters(path, ignore_extra=True)


def test_bad_use_raises_as_mxnet():
    with pytest.raises(ValueError, match="Children of HybridBlock must also be HybridBlock"):
        nn.HybridSequential().add(nn.Sequential())
    with pytest.raises(RuntimeError, match="Please first call block.hybridize"):
        nn.Dense(3).export("unused")
    dense = nn.Dense(3)
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dense(_data())
    dense.initialize()
    dense(_data((2, 5)))
    with pytest.raises(mx.MXNetError, match="FullyConnected"):
        dense(_data((2, 6)))  # the weight is (3, 5) now


def test_forward_hooks_and_lambdas():
    net = nn.HybridSequential()
    net.add(nn.HybridLambda("relu"), nn.HybridLambda(lambda F, x: x * 2))
    seen = []
    handle = net.register_forward_hook(lambda block, inputs, out: seen.append(out.asnumpy()))
    x = mx.nd.array([[-1.0, 3.0]])
    np.testing.assert_array_equal(net(x).asnumpy(), [[0.0, 6.0]])
    handle.detach()
    net(x)
    assert len(seen) == 1
    assert nn.Lambda("tanh")(mx.nd.array([0.0])).asnumpy()[0] == 0.0


SUMMARY = """\
--------------------------------------------------------------------------------
        Layer (type)                                Output Shape         Param #
================================================================================
               Input                                      (1, 4)               0
             Dense-1                                      (1, 4)              20
             Dense-2                                      (1, 4)              20
================================================================================
Parameters in forward computation graph, duplicate included
   Total params: 40
   Trainable params: 40
   Non-trainable params: 0
Shared params in forward computation graph: 20
Unique parameters in model: 20
--------------------------------------------------------------------------------
"""


def test_summary_prints_mxnet_table_with_shared_parameters(capsys):
    shared = nn.Dense(4, in_units=4)
    seq = nn.Sequential()
    seq.add(shared, nn.Dense(4, in_units=4, params=shared.params))
    seq.initialize()
    seq.summary(mx.nd.ones((1, 4)))
    assert capsys.readouterr().out == SUMMARY  # MXNet 1.9.1's output for the same net
    net = _mlp()
    net.initialize()
    net.hybridize()
    with pytest.raises(AssertionError, match="must not be hybridized to print summary"):
        net.summary(_data())


def test_save_and_load_models_in_mxnet_19_format(tmp_path):
    """tests/fixtures/gluon-saved-model.{json,params} and gluon-saved-y.npy: `_mlp()` built, Xavier
    initialized, hybridized, called on X and saved by MXNet 1.9.1's `Block.save`."""
    x = mx.nd.array(np.arange(15, dtype=np.float32).reshape(3, 5) / 10)
    net = nn.HybridSequential()  # built under other automatic names than the saved model's
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"), nn.Dense(2))
    net.load(str(FIXTURES / "gluon-saved"))
    assert net.name == "hybridsequential0" and net._active
    np.testing.assert_allclose(net(x).asnumpy(), np.load(FIXTURES / "gluon-saved-y.npy"), rtol=1e-6)
    mine = _mlp()
    mine.initialize()
    mine.hybridize()
    want = mine(x).asnumpy()
    mine.save(str(tmp_path / "m"))
    assert (tmp_path / "m-model.json").read_text() == (FIXTURES / "gluon-saved-model.json").read_text()
    again = _mlp()
    again.load(str(tmp_path / "m"))
    np.testing.assert_allclose(again(x).asnumpy(), want, rtol=1e-6)


def test_optimize_for_traces_and_initializes_without_running():
    net = _mlp()
    net.initialize()
    net.optimize_for(_data((2, 5)))
    assert net._active and net._cached_graph and net[0].weight.shape == (4, 5)
    with pytest.raises(ValueError, match="Ember has no subgraph backends"):
        net.optimize_for(_data((2, 5)), backend="MKLDNN")


def test_a_hybridized_block_trained_under_record_can_be_exported(tmp_path):
    net = _mlp()
    net.initialize()
    net.hybridize()
    with autograd.record():
        loss = net(_data()).sum()
    loss.backward()
    sym_file, _ = net.export(str(tmp_path / "trained"))
    assert open(sym_file).read() == (FIXTURES / "gluon-mlp-symbol.json").read_text()  # traced before init


def test_an_imported_symbol_block_trains_like_the_block_it_came_from(tmp_path):
    net = _mlp()
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = _data()
    net(x)
    sym_file, params_file = net.export(str(tmp_path / "m"))
    imported = gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
    grads = []
    for block in (net, imported):
        with autograd.record():
            loss = (block(x) ** 2).sum()
        loss.backward()
        grads.append([p.grad().asnumpy() for p in block.collect_params().values()])
    for got, want in zip(grads[1], grads[0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_a_hybridized_call_with_another_input_structure_is_refused():
    net = nn.HybridLambda(lambda F, x, *rest: x + 1)
    net.hybridize()
    net(_data())
    with pytest.raises(ValueError, match="The argument structure of HybridBlock does not match the cached"):
        net(_data(), _data())


def test_hybridized_calls_return_arrays_on_their_inputs_context():
    net = _mlp()
    net.initialize(ctx=[mx.cpu(0), mx.cpu(1)])
    net.hybridize()
    for ctx in (mx.cpu(0), mx.cpu(1)):
        assert net(_data().as_in_context(ctx)).context == ctx


def test_load_replaces_a_hybridized_blocks_executors(tmp_path):
    trained = _mlp()
    trained.initialize(mx.init.Constant(1.0))
    trained.hybridize()
    x = _data()
    want = trained(x).asnumpy()
    trained.save(str(tmp_path / "m"))
    fresh = _mlp()
    fresh.initialize(mx.init.Zero())
    fresh.hybridize()
    assert not fresh(x).asnumpy().any()
    fresh.load(str(tmp_path / "m"))
    np.testing.assert_allclose(fresh(x).asnumpy(), want, rtol=1e-6)


def test_deduplicated_shared_parameters_keep_their_last_name(tmp_path):
    shared = nn.Dense(2, in_units=2)
    seq = nn.HybridSequential()
    seq.add(shared, nn.Dense(2, in_units=2, params=shared.params))
    seq.initialize()
    seq.save_parameters(str(tmp_path / "d.params"), deduplicate=True)
    assert sorted(mx.nd.load(str(tmp_path / "d.params"))) == ["1.bias", "1.weight"]  # as MXNet 1.9.1


def test_a_symbol_block_cast_to_float64_runs_in_float64(tmp_path):
    net = _mlp()
    net.initialize()
    net.hybridize()
    x = _data()
    want = net(x).asnumpy()
    sym_file, params_file = net.export(str(tmp_path / "m"))
    imported = gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
    imported.cast("float64")
    out = imported(x.astype("float64"))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-5)
    assert isinstance(x, gluon.tensor_types)

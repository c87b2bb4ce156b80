"""mx.mod.Module against MXNet 1.9.1's behaviour (MXNET_COMPAT.md section 4 and deviation 1)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

import ember as mx
from ember.base import MXNetError


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """These tests are about compiled programs: executors compile from their first run, not 'tiered'."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")


@pytest.fixture(autouse=True)
def fresh_names_and_seed():
    mx.random.seed(7)
    np.random.seed(7)
    with mx.name.NameManager():
        yield


def blobs(n=200, seed=0):
    """Two separable Gaussian blobs in 4-D, labels 0/1 as float32."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    data = rng.standard_normal((n, 4)) * 0.5 + np.where(labels[:, None] == 1, 1.5, -1.5)
    return data.astype(np.float32), labels.astype(np.float32)


def classifier(hidden=8, dropout=False, batchnorm=False):
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data, num_hidden=hidden, name="fc1")
    if batchnorm:
        net = mx.sym.BatchNorm(net, fix_gamma=False, name="bn")
    net = mx.sym.Activation(net, act_type="relu")
    if dropout:
        net = mx.sym.Dropout(net, p=0.5)
    net = mx.sym.FullyConnected(net, num_hidden=2, name="fc2")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def trained(num_epoch=5, **net_kwargs):
    data, labels = blobs()
    module = mx.mod.Module(classifier(**net_kwargs))
    train = mx.io.NDArrayIter(data, labels, batch_size=20, shuffle=True)
    module.fit(train, optimizer="sgd", optimizer_params={"learning_rate": 0.5}, num_epoch=num_epoch)
    return module, data, labels


def test_constructor_checks_data_names_and_warns_on_missing_labels():
    with pytest.raises(ValueError, match="input with name 'x' is not found in symbol.list_arguments\\(\\)"):
        mx.mod.Module(classifier(), data_names=("x",))
    with pytest.warns(UserWarning, match="label_names=\\['lab'\\]"):
        module = mx.mod.Module(classifier(), label_names=("lab",))
    assert module.label_names == []


def test_bind_and_default_initialisation():
    module = mx.mod.Module(classifier())
    module.bind(data_shapes=[("data", (20, 4))], label_shapes=[("softmax_label", (20,))])
    module.init_params()
    arg_params, aux_params = module.get_params()
    weight, bias = arg_params["fc1_weight"].asnumpy(), arg_params["fc1_bias"].asnumpy()
    assert weight.shape == (8, 4) and np.abs(weight).max() <= 0.01 and weight.std() > 0
    assert np.all(bias == 0) and aux_params == {}
    assert module.output_shapes == [("softmax_output", (20, 2))]
    assert module.data_shapes[0].name == "data" and module.data_shapes[0].shape == (20, 4)


def test_init_params_from_a_dict_names_what_is_missing():
    module = mx.mod.Module(classifier())
    module.bind(data_shapes=[("data", (20, 4))], label_shapes=[("softmax_label", (20,))])
    with pytest.raises(RuntimeError, match="fc1_bias is not presented"):
        module.init_params(arg_params={"fc1_weight": mx.nd.ones((8, 4))})
    module.init_params(arg_params={"fc1_weight": mx.nd.ones((8, 4))}, allow_missing=True)
    assert module.get_params()[0]["fc1_weight"].asnumpy().sum() == 32


def test_string_optimizer_gets_one_over_batch_and_objects_follow_embers_deviation(caplog):
    module = mx.mod.Module(classifier())
    module.bind(data_shapes=[("data", (20, 4))], label_shapes=[("softmax_label", (20,))])
    module.init_params()
    module.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1})
    assert module._optimizer.rescale_grad == pytest.approx(1 / 20)
    default = mx.optimizer.SGD(learning_rate=0.1)
    with caplog.at_level(logging.INFO):
        module.init_optimizer(optimizer=default, force_init=True)
    assert default.rescale_grad == pytest.approx(1 / 20)
    assert "Module set it to 1/batch_size = 0.05" in caplog.text
    explicit = mx.optimizer.SGD(learning_rate=0.1, rescale_grad=1.0)
    with pytest.warns(UserWarning, match="rescale_grad is not normalized to 1.0/batch_size/num_workers \\(1.0 vs. 0.05\\)"):
        module.init_optimizer(optimizer=explicit, force_init=True)
    assert explicit.rescale_grad == 1.0


def test_unknown_optimizer_name_is_an_error():
    module = mx.mod.Module(classifier())
    module.bind(data_shapes=[("data", (20, 4))], label_shapes=[("softmax_label", (20,))])
    module.init_params()
    with pytest.raises(ValueError, match="Cannot find optimizer nosuch"):
        module.init_optimizer(optimizer="nosuch")


def test_fit_learns_and_logs_mxnets_lines(caplog):
    data, labels = blobs()
    module = mx.mod.Module(classifier())
    train = mx.io.NDArrayIter(data, labels, batch_size=20, shuffle=True)
    valid = mx.io.NDArrayIter(data, labels, batch_size=20)
    with caplog.at_level(logging.INFO):
        module.fit(train, eval_data=valid, optimizer="sgd", optimizer_params={"learning_rate": 0.5}, num_epoch=3)
    messages = [r.getMessage() for r in caplog.records if r.name == "root"]
    assert any(m.startswith("Epoch[0] Train-accuracy=") for m in messages)
    assert any(m.startswith("Epoch[2] Time cost=") for m in messages)
    validation = [m for m in messages if m.startswith("Epoch[2] Validation-accuracy=")]
    assert validation and float(validation[0].split("=")[1]) > 0.95
    (name, value), = module.score(valid, "acc")
    assert name == "accuracy" and value > 0.95 and isinstance(value, float)


def test_fit_requires_num_epoch():
    data, labels = blobs()
    with pytest.raises(ValueError, match="please specify number of epochs"):
        mx.mod.Module(classifier()).fit(mx.io.NDArrayIter(data, labels, batch_size=20))


def test_predict_strips_padding_and_iter_predict_yields_batches():
    module, data, labels = trained()
    it = mx.io.NDArrayIter(data[:50], labels[:50], batch_size=20)  # 3 batches, the last padded by 10
    predictions = module.predict(it)
    assert predictions.shape == (50, 2)
    np.testing.assert_allclose(predictions.asnumpy().sum(axis=1), np.ones(50), rtol=1e-5)
    batches = list(module.iter_predict(it))
    assert [b[1] for b in batches] == [0, 1, 2] and batches[2][0][0].shape == (10, 2)
    single = module.predict(data[:20])
    np.testing.assert_allclose(single.asnumpy(), predictions.asnumpy()[:20], rtol=1e-6)


def test_checkpoint_round_trip_predicts_the_same(tmp_path):
    module, data, labels = trained()
    prefix = str(tmp_path / "net")
    module.save_checkpoint(prefix, 3, save_optimizer_states=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net-0003.params", "net-0003.states", "net-symbol.json"]
    loaded = mx.mod.Module.load(prefix, 3, load_optimizer_states=True)
    loaded.bind(data_shapes=[("data", (20, 4))], label_shapes=[("softmax_label", (20,))])
    loaded.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.5})
    it = mx.io.NDArrayIter(data, labels, batch_size=20)
    np.testing.assert_array_equal(loaded.predict(it).asnumpy(), module.predict(it).asnumpy())
    symbol, arg_params, aux_params = mx.model.load_checkpoint(prefix, 3)
    assert symbol.tojson() == module.symbol.tojson()
    np.testing.assert_array_equal(arg_params["fc2_weight"].asnumpy(), module.get_params()[0]["fc2_weight"].asnumpy())


def test_batchnorm_moving_statistics_update_in_training_only():
    module, data, labels = trained(num_epoch=1, batchnorm=True)
    _, aux = module.get_params()
    assert set(aux) == {"bn_moving_mean", "bn_moving_var"}
    mean = aux["bn_moving_mean"].asnumpy().copy()
    assert np.abs(mean).sum() > 0
    module.predict(mx.io.NDArrayIter(data, labels, batch_size=20))
    np.testing.assert_array_equal(module.get_params()[1]["bn_moving_mean"].asnumpy(), mean)


def test_dropout_is_identity_when_predicting():
    module, data, labels = trained(dropout=True)
    it = mx.io.NDArrayIter(data, labels, batch_size=20)
    np.testing.assert_array_equal(module.predict(it).asnumpy(), module.predict(it).asnumpy())


def test_nan_in_the_data_propagates_as_in_mxnet():
    data, labels = blobs(40)
    data[3, 1] = np.nan
    module = mx.mod.Module(classifier())
    module.fit(mx.io.NDArrayIter(data, labels, batch_size=20), optimizer="sgd", num_epoch=1)
    assert np.isnan(module.get_params()[0]["fc1_weight"].asnumpy()).any()


def test_forward_rebinds_for_a_new_batch_size():
    module, data, labels = trained(num_epoch=1)
    module.forward(mx.io.DataBatch([mx.nd.array(data[:7])]), is_train=False)
    assert module.get_outputs()[0].shape == (7, 2)


def test_lin_fixture_loads_with_its_optimizer_states(mxnet_fixture):
    prefix = str(mxnet_fixture("lin-symbol.json"))[: -len("-symbol.json")]
    mxnet_fixture("lin-0003.params")
    mxnet_fixture("lin-0003.states")
    module = mx.mod.Module.load(prefix, 3, load_optimizer_states=True, label_names=["lin_reg_label"])
    module.bind(data_shapes=[("data", (4, 5))], label_shapes=[("lin_reg_label", (4,))])
    module.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    arg_params, _ = module.get_params()
    saved = mx.nd.load(prefix + "-0003.params")
    np.testing.assert_array_equal(arg_params["fc_weight"].asnumpy(), saved["arg:fc_weight"].asnumpy())
    states = module._updater.states
    assert set(states) == {0, 1}
    direct = mx.optimizer.get_updater(mx.optimizer.SGD())
    direct.set_states(open(prefix + "-0003.states", "rb").read())
    for index, name in enumerate(("fc_weight", "fc_bias")):
        assert states[index].shape == arg_params[name].shape
        np.testing.assert_array_equal(states[index].asnumpy(), direct.states[name].asnumpy())


def test_bad_parameter_shapes_are_named():
    module = mx.mod.Module(classifier())
    module.bind(data_shapes=[("data", (20, 4))], label_shapes=[("softmax_label", (20,))])
    with pytest.raises(MXNetError, match="parameter 'fc1_weight' has shape \\(3, 3\\)"):
        module.init_params(arg_params={"fc1_weight": mx.nd.ones((3, 3))}, allow_missing=True)


def test_already_bound_warns(caplog):
    module = mx.mod.Module(classifier())
    module.bind(data_shapes=[("data", (20, 4))], label_shapes=[("softmax_label", (20,))])
    with caplog.at_level(logging.WARNING):
        module.bind(data_shapes=[("data", (20, 4))], label_shapes=[("softmax_label", (20,))])
    assert "Already bound, ignoring bind()" in caplog.text
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module.init_params()
        module.init_params()
    assert "Parameters already initialized and force_init=False" in str(caught[-1].message)


def test_fix_gamma_batchnorm_resets_the_stored_gamma_to_one_as_mxnet():
    data = mx.sym.Variable("data")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.BatchNorm(data, name="bn"), num_hidden=2), name="softmax")
    exe = net.simple_bind(mx.cpu(), data=(4, 3), softmax_label=(4,))
    exe.arg_dict["bn_gamma"][:] = mx.nd.array([2.0, 3.0, 4.0])
    exe.aux_dict["bn_moving_var"][:] = 1
    exe.forward(is_train=True, data=mx.nd.array(np.arange(12).reshape(4, 3)))
    exe.backward()
    np.testing.assert_array_equal(exe.arg_dict["bn_gamma"].asnumpy(), [1.0, 1.0, 1.0])
    assert exe.grad_dict["bn_gamma"].asnumpy().tolist() == [0.0, 0.0, 0.0]


def test_public_views_of_the_modules_parts():
    mod = mx.mod.Module(classifier(), context=[mx.cpu(0), mx.cpu(1)])
    assert mod.executor is None and mod.optimizer is None and mod.updater is None
    assert mod.param_names == ["fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    assert mod.contexts == [mx.cpu(0), mx.cpu(1)]
    mod.bind([("data", (10, 4))], [("softmax_label", (10,))])
    mod.init_params()
    mod.init_optimizer(optimizer="adam")
    assert mod.executor.arg_names[:2] == ["data", "fc1_weight"]
    assert isinstance(mod.optimizer, mx.optimizer.Adam) and mod.updater.optimizer is mod.optimizer

"""Module and Executor details where MXNet 1.9.1's behaviour is easy to get wrong (found in review;
each test states what MXNet does)."""

import warnings
from collections import namedtuple

import ember as mx
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """These tests are about compiled programs: executors compile from their first run, not 'tiered'."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")


def fc_softmax(hidden=3):
    data = mx.sym.Variable("data")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(data, num_hidden=hidden, name="fc"), name="softmax")


# ---- 1. inputs are fed by Module.data_names order, MXNet feeds by data_shapes (provide_data) order -------
def test_data_fed_in_provide_data_order_not_data_names_order():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    net = mx.sym.MakeLoss(mx.sym.sum(a - 0 * b), name="loss")  # = sum(a)
    mod = mx.mod.Module(net, data_names=["b", "a"], label_names=None)
    it = mx.io.NDArrayIter(
        {"a": np.ones((4, 2)), "b": np.zeros((4, 2))}, batch_size=4
    )  # provide_data: [a, b]
    mod.bind(it.provide_data, None, for_training=False)
    mod.init_params()
    mod.forward(next(it))
    assert mod.get_outputs()[0].asnumpy()[0] == 8.0


def test_labels_fed_in_provide_label_order():
    data = mx.sym.Variable("data")
    fc = mx.sym.FullyConnected(data, num_hidden=1, name="fc")
    net = mx.sym.Group(
        [mx.sym.LinearRegressionOutput(fc, name="zlin"), mx.sym.LinearRegressionOutput(fc, name="alin")]
    )
    mod = mx.mod.Module(net, label_names=["zlin_label", "alin_label"])
    it = mx.io.NDArrayIter(
        np.zeros((4, 2)), {"zlin_label": np.full(4, 100.0), "alin_label": np.full(4, 1.0)}, batch_size=4
    )
    mod.bind(it.provide_data, it.provide_label)  # provide_label: [alin_label, zlin_label]
    mod.init_params()
    mod.forward(next(it), is_train=False)
    assert (mod._exec.arg_dict["zlin_label"].asnumpy() == 100).all()


# ---- 2. shared_module: MXNet shares the parameter memory (and borrows the optimizer) -------------------
def test_shared_module_sees_updates_of_the_module_it_shares_with():
    it = mx.io.NDArrayIter(np.random.rand(8, 4), np.random.randint(0, 3, 8), batch_size=4)
    train = mx.mod.Module(fc_softmax())
    train.bind(it.provide_data, it.provide_label)
    train.init_params()
    train.init_optimizer(optimizer_params={"learning_rate": 1.0})
    pred = mx.mod.Module(fc_softmax())
    pred.bind(it.provide_data, it.provide_label, for_training=False, shared_module=train)
    train.forward_backward(next(it))
    train.update()
    np.testing.assert_array_equal(
        train.get_params()[0]["fc_weight"].asnumpy(), pred.get_params()[0]["fc_weight"].asnumpy()
    )
    assert pred.optimizer_initialized  # MXNet: borrow_optimizer


# ---- 3. set_params(allow_missing=True) before init_params, then get_params/fit/save_checkpoint crash ----
def test_set_params_allow_missing_then_fit():
    net = mx.sym.SoftmaxOutput(
        mx.sym.FullyConnected(
            mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=4, name="fc1"), num_hidden=3, name="fc2"
        ),
        name="softmax",
    )
    it = mx.io.NDArrayIter(np.random.rand(8, 4), np.random.randint(0, 3, 8), batch_size=4)
    mod = mx.mod.Module(net)
    mod.bind(it.provide_data, it.provide_label)
    mod.set_params({"fc1_weight": mx.nd.ones((4, 4)), "fc1_bias": mx.nd.zeros((4,))}, {}, allow_missing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod.fit(it, num_epoch=1)


# ---- 4. grad_req handling in Module ----------------------------------------------------------------
def test_reshape_keeps_grad_req_add():
    mod = mx.mod.Module(fc_softmax())
    mod.bind([("data", (4, 4))], [("softmax_label", (4,))], grad_req="add")
    mod.init_params()
    b4 = mx.io.DataBatch([mx.nd.ones((4, 4))], [mx.nd.zeros((4,))])
    b2 = mx.io.DataBatch([mx.nd.ones((2, 4))], [mx.nd.zeros((2,))])
    mod.forward_backward(b2)  # triggers reshape
    mod.forward_backward(b4)  # reshape back
    assert mod._exec._grad_reqs[1] == "add"


def test_bind_accepts_grad_req_list():
    mod = mx.mod.Module(fc_softmax())
    mod.bind([("data", (4, 4))], [("softmax_label", (4,))], grad_req=["null", "write", "write", "null"])


# ---- 5. DataBatch-like objects without .label (MXNet's own test_forward_types) ------------------------
def test_forward_with_batch_without_label_attribute():
    Batch = namedtuple("Batch", ["data"])
    mod = mx.mod.Module(mx.sym.Variable("data") * 2, label_names=None)
    mod.bind(data_shapes=[("data", (1, 10))])
    mod.init_params()
    mod.forward(Batch([mx.nd.ones((1, 10))]))
    mod.forward(Batch([mx.nd.ones((3, 5))]))
    assert mod.get_outputs()[0].shape == (3, 5)


# ---- 6. callbacks ---------------------------------------------------------------------------------
def test_score_end_callback_gets_number_of_batches():
    it = mx.io.NDArrayIter(np.random.rand(8, 4), np.random.randint(0, 3, 8), batch_size=4)
    mod = mx.mod.Module(fc_softmax())
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params()
    seen = []
    mod.score(it, "acc", score_end_callback=lambda p: seen.append(p.nbatch))
    assert seen == [2]


def test_batch_end_locals_are_fits_locals():
    it = mx.io.NDArrayIter(np.random.rand(8, 4), np.random.randint(0, 3, 8), batch_size=4)
    mod = mx.mod.Module(fc_softmax())
    keys = []
    mod.fit(it, num_epoch=1, batch_end_callback=lambda p: keys.append(set(p.locals)))
    assert {"next_data_batch", "num_epoch", "eval_data", "optimizer", "tic"} <= keys[0]


def test_basemodule_has_set_params_as_in_mxnet_fit():
    # MXNet's test_reference_single_batch_during_fit builds a bare BaseModule and stubs the rest
    assert hasattr(mx.mod.BaseModule, "set_params") and hasattr(mx.mod.BaseModule, "get_params")


def test_get_outputs_unmerged_is_per_output_list_of_device_arrays():
    mod = mx.mod.Module(fc_softmax())
    mod.bind([("data", (2, 4))], [("softmax_label", (2,))])
    mod.init_params()
    mod.forward(mx.io.DataBatch([mx.nd.ones((2, 4))], [mx.nd.zeros((2,))]))
    outs = mod.get_outputs(merge_multi_context=False)
    assert isinstance(outs[0], list) and outs[0][0].shape == (2, 3)


# ---- 7. Executor -----------------------------------------------------------------------------------
def test_executor_outputs_exist_after_bind_and_are_updated_in_place():
    exe = fc_softmax().simple_bind(mx.cpu(), data=(2, 4), softmax_label=(2,))
    assert len(exe.outputs) == 1
    out = exe.outputs[0]
    exe.forward(data=mx.nd.ones((2, 4)))
    assert out is exe.outputs[0]


def test_output_does_not_alias_an_argument():
    x = mx.sym.Variable("x")
    exe = mx.sym.Flatten(x, name="flat").simple_bind(mx.cpu(), x=(2, 2), grad_req="null")
    exe.arg_dict["x"][:] = 1
    out = exe.forward()[0]
    out[:] = 5
    assert (exe.arg_dict["x"].asnumpy() == 1).all()


def test_non_loss_head_requires_out_grads():
    x, w = mx.sym.Variable("x"), mx.sym.Variable("w")
    exe = mx.sym.FullyConnected(x, weight=w, num_hidden=3, no_bias=True).simple_bind(mx.cpu(), x=(2, 4))
    exe.forward(is_train=True)
    with pytest.raises(Exception, match="head_gradient|head gradient|out_grads"):
        exe.backward()


def test_out_grads_of_wrong_shape_are_rejected():
    x, w = mx.sym.Variable("x"), mx.sym.Variable("w")
    y = mx.sym.Activation(mx.sym.FullyConnected(x, weight=w, num_hidden=3, no_bias=True), act_type="tanh")
    exe = y.simple_bind(mx.cpu(), x=(2, 4))
    exe.forward(is_train=True)
    with pytest.raises(Exception):
        exe.backward(mx.nd.ones((1, 3)))


def test_backward_accepts_out_grads_dict():
    y = mx.sym.FullyConnected(mx.sym.Variable("x"), num_hidden=3, name="fc")
    exe = y.simple_bind(mx.cpu(), x=(2, 4))
    exe.forward(is_train=True)
    exe.backward({"fc_output": mx.nd.ones((2, 3))})


def test_executor_reshape_shares_parameter_memory():
    x, w = mx.sym.Variable("x"), mx.sym.Variable("w")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, weight=w, num_hidden=3, no_bias=True), name="sm")
    exe = net.simple_bind(mx.cpu(), x=(2, 4))
    exe2 = exe.reshape(x=(5, 4), sm_label=(5,))
    exe2.arg_dict["w"][:] = 3
    assert exe.arg_dict["w"].asnumpy()[0, 0] == 3


def test_forward_kwargs_error_types():
    exe = fc_softmax().simple_bind(mx.cpu(), data=(2, 4), softmax_label=(2,))
    with pytest.raises(TypeError):
        exe.forward(foo=mx.nd.ones((2, 4)))
    with pytest.raises(ValueError):
        exe.forward(data=mx.nd.ones((3, 4)))


def test_positional_scalar_parameters():
    x = mx.sym.Variable("x")
    assert mx.sym.Dropout(x, 0.5).list_attr() == {"p": "0.5"}  # MXNet's signature: inputs, then params
    assert mx.sym.Activation(x, "relu").list_attr() == {"act_type": "relu"}
    with pytest.raises(TypeError, match="multiple values for parameter 'p'"):
        mx.sym.Dropout(x, 0.5, p=0.3)

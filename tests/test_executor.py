"""Executor: simple_bind/bind, forward/backward, grad_req, aux updates, and the test_utils checks."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember.base import MXNetError, ShapeError
from ember.compiler.names import head_grad
from ember.test_utils import check_numeric_gradient, check_symbolic_backward, check_symbolic_forward


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """These tests are about compiled programs: executors compile from their first run, not 'tiered'."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")


@pytest.fixture(autouse=True)
def fresh_names():
    with mx.name.NameManager():
        yield


def mlp():
    data = mx.sym.Variable("data")
    hidden = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=4, name="fc1"), act_type="tanh")
    return mx.sym.FullyConnected(hidden, num_hidden=3, name="fc2")


def fill(executor, seed=0):
    rng = np.random.default_rng(seed)
    for array in executor.arg_arrays:
        array[:] = rng.uniform(-1, 1, array.shape)


def test_simple_bind_allocates_zeroed_arrays_by_inferred_shape():
    exe = mlp().simple_bind(mx.cpu(), data=(2, 5))
    assert {k: v.shape for k, v in exe.arg_dict.items()} == {
        "data": (2, 5), "fc1_weight": (4, 5), "fc1_bias": (4,), "fc2_weight": (3, 4), "fc2_bias": (3,),
    }
    assert all(v.asnumpy().sum() == 0 for v in exe.arg_arrays)
    assert exe.grad_dict["fc1_weight"].shape == (4, 5)


def test_public_views_of_what_is_bound():
    net = mx.sym.SoftmaxOutput(mx.sym.BatchNorm(mlp(), fix_gamma=False, name="bn"), name="softmax")
    exe = net.simple_bind(mx.cpu(), data=(2, 5), grad_req={"fc1_weight": "write", "fc2_bias": "add"})
    assert exe.arg_names == net.list_arguments() and exe.aux_names == ["bn_moving_mean", "bn_moving_var"]
    assert dict(zip(exe.arg_names, exe.grad_reqs)) == {
        "data": "null", "fc1_weight": "write", "fc1_bias": "null", "fc2_weight": "null", "fc2_bias": "add",
        "bn_gamma": "null", "bn_beta": "null", "softmax_label": "null",
    }  # fmt: skip
    assert exe.graph.outputs == net._graph.outputs and exe.trains_on_losses_only
    plan = exe.backward_plan()
    assert plan is exe.backward_plan() and sorted(plan.grads) == [1, 4]
    assert sorted(plan.aux_updates) == ["bn_moving_mean", "bn_moving_var"]
    regression = mlp().simple_bind(mx.cpu(), data=(2, 5))
    assert not regression.trains_on_losses_only  # fc2 is no loss head: its gradient comes in by name
    assert head_grad(0) == "__head_grad0__"
    assert head_grad(0) in [v.name for v in regression.backward_plan().graph.variables]


def test_forward_backward_match_numpy():
    exe = mlp().simple_bind(mx.cpu(), data=(2, 5))
    fill(exe)
    a = {k: v.asnumpy() for k, v in exe.arg_dict.items()}
    (out,) = exe.forward(is_train=True)
    hidden = np.tanh(a["data"] @ a["fc1_weight"].T + a["fc1_bias"])
    np.testing.assert_allclose(out.asnumpy(), hidden @ a["fc2_weight"].T + a["fc2_bias"], rtol=1e-5)
    head = np.arange(6, dtype=np.float32).reshape(2, 3)
    exe.backward(mx.nd.array(head))
    np.testing.assert_allclose(exe.grad_dict["fc2_weight"].asnumpy(), head.T @ hidden, rtol=1e-5)
    np.testing.assert_allclose(exe.grad_dict["fc2_bias"].asnumpy(), head.sum(0), rtol=1e-5)
    dhidden = (head @ a["fc2_weight"]) * (1 - hidden**2)
    np.testing.assert_allclose(exe.grad_dict["data"].asnumpy(), dhidden @ a["fc1_weight"], rtol=1e-5)


def test_grad_req_add_accumulates_and_null_keeps_none():
    exe = mlp().simple_bind(mx.cpu(), grad_req={"fc2_bias": "add", "fc2_weight": "write"}, data=(2, 5))
    assert exe.grad_dict["data"] is None and exe.grad_dict["fc1_weight"] is None
    fill(exe)
    for _ in range(2):
        exe.forward(is_train=True)
        exe.backward(mx.nd.ones((2, 3)))
    np.testing.assert_allclose(exe.grad_dict["fc2_bias"].asnumpy(), [4.0, 4.0, 4.0])


def test_forward_keyword_arguments_are_copied_into_arguments():
    exe = mlp().simple_bind(mx.cpu(), data=(2, 5))
    x = np.ones((2, 5), np.float32)
    exe.forward(data=mx.nd.array(x))
    np.testing.assert_array_equal(exe.arg_dict["data"].asnumpy(), x)
    with pytest.raises(ValueError, match="shape mismatch for 'data'"):
        exe.forward(data=mx.nd.ones((3, 5)))
    with pytest.raises(TypeError, match="'nope' is not an argument"):
        exe.forward(nope=mx.nd.ones((1,)))


def test_bind_with_lists_and_dicts_and_errors():
    net = mlp()
    shapes, _, _ = net.infer_shape(data=(2, 5))
    args = [mx.nd.ones(s) for s in shapes]
    exe = net.bind(mx.cpu(), args=args)
    assert exe.grad_dict["data"] is None
    (out,) = exe.forward()
    assert out.shape == (2, 3)
    with pytest.raises(MXNetError, match="args lacks fc2_bias"):
        net.bind(mx.cpu(), args={n: a for n, a in zip(net.list_arguments()[:-1], args)})
    with pytest.raises(ShapeError, match="Shape inconsistent"):
        net.bind(mx.cpu(), args=[mx.nd.ones((2, 5)), mx.nd.ones((4, 6))] + args[2:])


def test_simple_bind_names_undecided_shapes():
    with pytest.raises(ShapeError, match="cannot decide the shapes of .*fc1_weight"):
        mlp().simple_bind(mx.cpu())


def test_check_symbolic_forward_and_backward():
    x = mx.sym.Variable("x")
    y = x * x * 3
    location = {"x": np.array([[1.0, 2.0], [-1.0, 0.5]])}
    check_symbolic_forward(y, location, [3 * location["x"] ** 2])
    check_symbolic_backward(y, location, [np.ones((2, 2))], {"x": 6 * location["x"]})
    with pytest.raises(AssertionError):
        check_symbolic_backward(y, location, [np.ones((2, 2))], {"x": 5 * location["x"]})


def test_check_numeric_gradient_accepts_right_and_catches_wrong_gradients():
    net = mlp()
    rng = np.random.default_rng(1)
    shapes, _, _ = net.infer_shape(data=(3, 5))
    location = {n: rng.uniform(-1, 1, s) for n, s in zip(net.list_arguments(), shapes)}
    check_numeric_gradient(net, location, numeric_eps=1e-6, rtol=1e-4, dtype=np.float64)
    from ember.compiler.ops import grad_rules

    original = grad_rules["Activation"]
    try:
        grad_rules["Activation"] = lambda g, node, dy: [dy[0]]  # wrong: ignores tanh's derivative
        with pytest.raises(AssertionError, match=r"NUMERICAL_data=.*BACKWARD_data="):
            check_numeric_gradient(mlp(), location, numeric_eps=1e-6, rtol=1e-4, dtype=np.float64)
    finally:
        grad_rules["Activation"] = original


def test_get_mnist_reads_local_idx_files(tmp_path):
    from ember.test_utils import get_mnist

    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for stem in ("train", "t10k"):
        (tmp_path / f"{stem}-images-idx3-ubyte").write_bytes(np.array([2051, 2, 28, 28], ">u4").tobytes() + images.tobytes())
        (tmp_path / f"{stem}-labels-idx1-ubyte").write_bytes(np.array([2049, 2], ">u4").tobytes() + bytes([3, 7]))
    mnist = get_mnist(str(tmp_path))
    assert mnist["train_data"].shape == (2, 1, 28, 28) and mnist["train_data"].dtype == np.float32
    np.testing.assert_allclose(mnist["test_data"][1, 0, 0, :3], np.array([784, 785, 786]) % 256 / 255, rtol=1e-6)
    assert mnist["train_label"].tolist() == [3, 7] and mnist["train_label"].dtype == np.int8
    with pytest.raises(MXNetError, match="t10k-labels-idx1-ubyte\\[.gz\\] not found"):
        (tmp_path / "t10k-labels-idx1-ubyte").unlink()
        get_mnist(str(tmp_path))

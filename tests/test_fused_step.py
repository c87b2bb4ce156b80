"""Module.fit's fused training step (forward, backward and the optimizer update in one native call)
trains exactly as the NumPy reference path does, for every optimizer with a compiled update."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import ember as mx
from ember.module import fused_step

OPTIMIZERS = [
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-3}),
    ("sgd", {"learning_rate": 0.1, "clip_gradient": 0.05}),
    ("nag", {"learning_rate": 0.05, "momentum": 0.9}),
    ("adam", {"learning_rate": 0.01, "wd": 1e-4}),
    ("rmsprop", {"learning_rate": 0.01}),
    ("rmsprop", {"learning_rate": 0.01, "centered": True, "clip_weights": 2.0}),
    ("adagrad", {"learning_rate": 0.1}),
    ("adadelta", {"rho": 0.9}),
    ("adamax", {"learning_rate": 0.01}),
    ("nadam", {"learning_rate": 0.01}),
    ("ftrl", {"learning_rate": 0.1}),
    ("signum", {"learning_rate": 0.01}),
    ("signum", {"learning_rate": 0.01, "momentum": 0.0}),
]


def _regression_module():
    data = mx.sym.var("data")
    weight = mx.sym.var("fc_weight", shape=(1, 5))
    bias = mx.sym.var("fc_bias", shape=(1, 1))
    pred = mx.sym.broadcast_add(mx.sym.sum(mx.sym.broadcast_mul(data, weight), axis=1, keepdims=True), bias)
    out = mx.sym.LinearRegressionOutput(pred, label=mx.sym.var("label"))
    return mx.mod.Module(out, data_names=["data"], label_names=["label"])


def _train(monkeypatch, executor: str, optimizer: str, params: dict, schedule: bool = False):
    monkeypatch.setenv("EMBER_EXECUTOR", executor)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 5)).astype(np.float32)
    y = (x @ rng.standard_normal((5, 1)) + 0.5).astype(np.float32)
    it = mx.io.NDArrayIter(x, y, batch_size=20, label_name="label")
    mod = _regression_module()
    params = dict(params)
    if schedule:
        params["lr_scheduler"] = mx.lr_scheduler.FactorScheduler(step=4, factor=0.5)
    mod.fit(it, num_epoch=3, optimizer=optimizer, optimizer_params=params, eval_metric="mse",
            initializer=mx.init.Uniform(0.5))  # fmt: skip
    args, _ = mod.get_params()
    return mod, {k: v.asnumpy() for k, v in args.items()}


@pytest.mark.parametrize("optimizer,params", OPTIMIZERS, ids=lambda p: str(p))
def test_fused_step_trains_as_the_reference(monkeypatch, optimizer, params):
    mx.random.seed(1)
    fused, got = _train(monkeypatch, "compiled", optimizer, params)
    assert fused._fused is not None, "fit did not use the fused step"
    mx.random.seed(1)
    _, want = _train(monkeypatch, "reference", optimizer, params)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_learning_rate_schedules_reach_the_fused_step(monkeypatch):
    mx.random.seed(1)
    _, got = _train(monkeypatch, "compiled", "sgd", {"learning_rate": 0.2}, schedule=True)
    mx.random.seed(1)
    _, want = _train(monkeypatch, "reference", "sgd", {"learning_rate": 0.2}, schedule=True)
    mx.random.seed(1)
    _, unscheduled = _train(monkeypatch, "compiled", "sgd", {"learning_rate": 0.2})
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-6, err_msg=name)
    assert not np.allclose(got["fc_weight"], unscheduled["fc_weight"])


def test_optimizer_states_live_in_the_program_and_save(monkeypatch, tmp_path):
    mx.random.seed(1)
    mod, _ = _train(monkeypatch, "compiled", "adam", {"learning_rate": 0.01})
    exe = mod._fused.exe
    mean, var = mod._updater.states[0]
    assert np.shares_memory(mean._data, exe.arena) and np.shares_memory(var._data, exe.arena)
    assert np.any(mean.asnumpy() != 0)
    mod.save_optimizer_states(str(tmp_path / "adam.states"))
    mod.load_optimizer_states(str(tmp_path / "adam.states"))
    np.testing.assert_array_equal(mod._updater.states[0][0].asnumpy(), mean.asnumpy())


# -- state handling around the fused step (regressions found in review) ------------------------------


def _classifier():
    data = mx.sym.var("data")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(data, num_hidden=3, name="fc"), name="softmax")


def _class_data(dtype=np.float32):
    rng = np.random.default_rng(0)
    return rng.random((16, 4)).astype(dtype), rng.integers(0, 3, 16).astype(dtype)


def _both(monkeypatch, script):
    """`script()` run compiled and on the reference, from the same random state."""
    results = []
    for executor in ("compiled", "reference"):
        monkeypatch.setenv("EMBER_EXECUTOR", executor)
        mx.random.seed(3)
        results.append(script())
    return results


@pytest.mark.parametrize("optimizer", ["adagrad", "adadelta", "ftrl", "adam"])
def test_float64_parameters_with_float32_optimizer_states(monkeypatch, optimizer):
    def script():
        x, y = _class_data(np.float64)
        it = mx.io.NDArrayIter(x, y, batch_size=4)
        mod = mx.mod.Module(_classifier())
        mod.bind(
            [mx.io.DataDesc("data", (4, 4), np.float64)], [mx.io.DataDesc("softmax_label", (4,), np.float64)]
        )
        mod.init_params(mx.init.Constant(0.1))
        mod.fit(it, num_epoch=2, optimizer=optimizer)
        return mod.get_params()[0]["fc_weight"].asnumpy()

    got, want = _both(monkeypatch, script)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_loaded_optimizer_states_drive_the_next_fused_steps(monkeypatch, tmp_path):
    def script():
        x, y = _class_data()
        it = mx.io.NDArrayIter(x, y, batch_size=4)
        mod = mx.mod.Module(_classifier())
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(mx.init.Constant(0.1))
        opt = {"optimizer": "sgd", "optimizer_params": (("learning_rate", 0.5), ("momentum", 0.9))}
        mod.fit(it, num_epoch=1, **opt)
        mod.save_optimizer_states(str(tmp_path / "s.states"))
        it.reset()
        mod.fit(it, num_epoch=1, **opt)
        mod.load_optimizer_states(str(tmp_path / "s.states"))
        it.reset()
        mod.fit(it, num_epoch=1, **opt)
        return mod.get_params()[0]["fc_weight"].asnumpy(), mod._updater.states[0].asnumpy()

    (w, mom), (w_ref, mom_ref) = _both(monkeypatch, script)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mom, mom_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grad_req", ["write", "add"])
def test_gradient_arrays_show_the_last_step(monkeypatch, grad_req):
    def script():
        x, y = _class_data()
        it = mx.io.NDArrayIter(x, y, batch_size=4)
        mod = mx.mod.Module(_classifier())
        mod.bind(it.provide_data, it.provide_label, grad_req=grad_req)
        mod.init_params(mx.init.Constant(0.1))
        mod.fit(it, num_epoch=1, optimizer="sgd", optimizer_params=(("learning_rate", 0.5),))
        return mod.get_params()[0]["fc_weight"].asnumpy(), mod._exec.grad_dict["fc_weight"].asnumpy()

    (w, grad), (w_ref, grad_ref) = _both(monkeypatch, script)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-5, atol=1e-6)
    assert np.abs(grad).sum() > 0


def test_modules_sharing_parameters_each_keep_training_them(monkeypatch):
    def script():
        x, y = _class_data()
        opt = {"optimizer": "sgd", "optimizer_params": (("learning_rate", 0.5), ("momentum", 0.9))}
        it, it2 = mx.io.NDArrayIter(x, y, batch_size=4), mx.io.NDArrayIter(x[:8], y[:8], batch_size=2)
        first = mx.mod.Module(_classifier())
        first.bind(it.provide_data, it.provide_label)
        first.init_params(mx.init.Constant(0.1))
        first.fit(it, num_epoch=1, **opt)
        second = mx.mod.Module(_classifier())
        second.bind(it2.provide_data, it2.provide_label, shared_module=first)
        second.fit(it2, num_epoch=1, **opt)
        it.reset()
        first.fit(it, num_epoch=1, **opt)
        return first.get_params()[0]["fc_weight"].asnumpy()

    got, want = _both(monkeypatch, script)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


class _HalvedSGD(mx.optimizer.SGD):
    """A user's optimizer that changes only the step it hands out: the fused step must apply it too."""

    def update_step(self, index, has_state):
        step = super().update_step(index, has_state)
        return mx.optimizer.UpdateStep(step.rule, {**step.scalars, "lr": step.scalars["lr"] / 2})


class _OwnUpdateSGD(mx.optimizer.SGD):
    """A user's optimizer with its own NumPy update, which no compiled rule reproduces."""

    def update(self, index, weight, grad, state):
        weight[:] = weight - 0.001 * grad


def test_a_users_update_step_drives_both_paths(monkeypatch):
    mx.random.seed(1)
    fused, got = _train(monkeypatch, "compiled", _HalvedSGD(learning_rate=0.2, momentum=0.5), {})
    assert fused._fused is not None, "fit did not use the fused step"
    mx.random.seed(1)
    _, want = _train(monkeypatch, "reference", _HalvedSGD(learning_rate=0.2, momentum=0.5), {})
    mx.random.seed(1)
    _, plain = _train(monkeypatch, "reference", mx.optimizer.SGD(learning_rate=0.2, momentum=0.5), {})
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-6, err_msg=name)
    assert not np.allclose(want["fc_weight"], plain["fc_weight"])


def test_an_optimizer_with_its_own_update_is_not_fused(monkeypatch):
    mx.random.seed(1)
    mod, _ = _train(monkeypatch, "compiled", _OwnUpdateSGD(learning_rate=0.2), {})
    assert mod._fused is None


def test_fused_step_reads_no_private_attribute_of_another_object():
    """fused_step.py works through public members of Module, Executor, Optimizer, Updater and NDArray:
    it reads `x._name` only where x is `self` or `cls`."""
    tree = ast.parse(Path(fused_step.__file__).read_text())
    private = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not (node.attr.startswith("__") and node.attr.endswith("__"))
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert private == []

"""gluon.Parameter, Constant and ParameterDict against MXNet 1.9.1's recorded behaviour (names, shapes,
reprs and error messages were taken from the real mxnet==1.9.1 wheel)."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember import autograd, gluon
from ember.base import MXNetError
from ember.gluon.errors import CheckFailed


def test_data_and_grad_after_initialize():
    p = gluon.Parameter("w", shape=(2, 3), init=mx.init.Constant(1.5))
    p.initialize()
    np.testing.assert_array_equal(p.data().asnumpy(), np.full((2, 3), 1.5, np.float32))
    np.testing.assert_array_equal(p.grad().asnumpy(), np.zeros((2, 3), np.float32))
    assert p.list_ctx() == [mx.cpu()]
    with autograd.record():
        y = (p.data() * p.data()).sum()
    y.backward()
    np.testing.assert_array_equal(p.grad().asnumpy(), np.full((2, 3), 3.0, np.float32))
    p.zero_grad()
    assert not p.grad().asnumpy().any()


def test_uninitialized_deferred_and_invalid_shapes_raise_as_mxnet():
    with pytest.raises(RuntimeError, match="Parameter 'w' has not been initialized. Note that you should "
                       "initialize parameters and create Trainer with Block.collect_params"):  # fmt: skip
        gluon.Parameter("w", shape=(2, 3)).data()
    q = gluon.Parameter("q", shape=(0, 3), allow_deferred_init=True)
    q.initialize()
    with pytest.raises(gluon.DeferredInitializationError, match="initialization was deferred"):
        q.data()
    assert isinstance(gluon.DeferredInitializationError("x"), MXNetError)
    with pytest.raises(ValueError, match=r"Cannot initialize Parameter 'r' because it has invalid shape: "
                       r"\(0, 3\)\."):  # fmt: skip
        gluon.Parameter("r", shape=(0, 3)).initialize()
    with pytest.raises(AssertionError, match="grad_req must be one of 'write', 'add', or 'null', but got "
                       "'bad'"):  # fmt: skip
        gluon.Parameter("w", shape=(2,)).grad_req = "bad"


def test_wrong_context_and_null_grad_req():
    p = gluon.Parameter("w", shape=(2, 3))
    p.initialize()
    with pytest.raises(RuntimeError, match=r"Parameter 'w' was not initialized on context cpu\(1\). It was "
                       r"only initialized on \[cpu\(0\)\]."):  # fmt: skip
        p.data(mx.cpu(1))
    p.grad_req = "null"
    with pytest.raises(RuntimeError, match="Cannot get gradient array for Parameter 'w' because "
                       "grad_req='null'"):  # fmt: skip
        p.grad()


def test_initialize_twice_warns_and_keeps_the_data():
    p = gluon.Parameter("w", shape=(2,), init=mx.init.Constant(2.0))
    p.initialize()
    with pytest.warns(UserWarning, match="Parameter 'w' is already initialized, ignoring. Set "
                      "force_reinit=True to re-initialize."):  # fmt: skip
        p.initialize(init=mx.init.Constant(5.0))
    np.testing.assert_array_equal(p.data().asnumpy(), [2.0, 2.0])
    p.initialize(init=mx.init.Constant(5.0), force_reinit=True)
    np.testing.assert_array_equal(p.data().asnumpy(), [5.0, 5.0])


def test_parameter_dict_get_merges_unknown_dims_and_checks_attributes():
    d = gluon.ParameterDict("pre_")
    a = d.get("a", shape=(2, 0))
    b = d.get("a", shape=(0, 4))
    assert a is b and a.shape == (2, 4) and a.name == "pre_a"
    with pytest.raises(AssertionError, match="Cannot retrieve Parameter 'pre_a' because desired attribute "
                       "does not match with stored for attribute 'dtype'"):  # fmt: skip
        d.get("a", dtype="float64")
    assert repr(d) == "pre_ (\n  Parameter pre_a (shape=(2, 4), dtype=<class 'numpy.float32'>)\n)"


def test_constant():
    c = gluon.Constant("c", mx.nd.array([1, 2]))
    assert repr(c) == "Constant c (shape=(2,), dtype=float32)"
    assert c.grad_req == "null"
    c.initialize()
    np.testing.assert_array_equal(c.data().asnumpy(), [1.0, 2.0])


def test_var_carries_shape_and_multipliers():
    p = gluon.Parameter("w", shape=(2, 3), lr_mult=2.0)
    attrs = p.var().list_attr()
    assert (attrs["__shape__"], attrs["__lr_mult__"], attrs["__storage_type__"]) == ("(2, 3)", "2.0", "0")


def test_save_and_load_round_trip_with_prefix_rules(tmp_path):
    d = gluon.ParameterDict("net_")
    d.get("w", shape=(2, 2), init=mx.init.Constant(3.0))
    d.get("bias", shape=(2,))
    d.initialize()
    path = str(tmp_path / "p.params")
    d.save(path, strip_prefix="net_")
    assert sorted(mx.nd.load(path)) == ["bias", "w"]
    other = gluon.ParameterDict("net_")
    other.get("w", shape=(2, 0))
    other.get("bias", shape=(2,))
    other.load(path, restore_prefix="net_")
    np.testing.assert_array_equal(other["net_w"].data().asnumpy(), np.full((2, 2), 3.0, np.float32))
    with pytest.raises(ValueError, match="Prefix 'x_' is to be striped before saving"):
        d.save(path, strip_prefix="x_")
    missing = gluon.ParameterDict("net_")
    missing.get("w", shape=(2, 2))
    missing.get("extra", shape=(1,))
    with pytest.raises(AssertionError, match="Parameter 'extra' is missing in file"):
        missing.load(path, restore_prefix="net_", ignore_extra=True)
    small = gluon.ParameterDict("net_")
    small.get("w", shape=(2, 2))
    with pytest.raises(CheckFailed, match="Parameter .bias. loaded from file .* is not present in Parameter"):
        small.load(path, restore_prefix="net_")
    small.load(path, restore_prefix="net_", ignore_extra=True)
    with pytest.raises(AssertionError, match="shape incompatible expected"):
        bad = gluon.ParameterDict("net_")
        bad.get("w", shape=(3, 2))
        bad.load(path, restore_prefix="net_", ignore_extra=True)


def test_sparse_storage_is_refused():
    with pytest.raises(MXNetError, match="row_sparse.*not supported"):
        gluon.Parameter("w", shape=(2,), stype="row_sparse")

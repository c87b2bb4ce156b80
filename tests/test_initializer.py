"""`mx.init`: dispatch by `__init__` attribute and name suffix, each initializer's values, the registry,
and seeding through `mx.random.seed`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import ember as mx
from ember import initializer as init
from ember import random as mx_random

UNKNOWN = (
    'Unknown initialization pattern for {}. Default initialization is now limited to "weight", "bias", '
    '"gamma" (1.0), and "beta" (0.0).Please use mx.sym.Variable(init=mx.init.*) to set initialization pattern'
)


def filled(initializer, name, shape, attrs=None, start=5.0):
    """The values `initializer` writes into an array of `shape` (pre-filled with `start`) for `name`."""
    arr = mx.nd.full(shape, start)
    initializer(init.InitDesc(name, attrs), arr)
    return arr.asnumpy()


# -- dispatch ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("fc1_weight", 2.0),  # the initializer's own rule: Constant(2)
        ("fc1_bias", 0.0),
        ("bn_gamma", 1.0),
        ("bn_beta", 0.0),
        ("conv_min", 0.0),
        ("conv_max", 1.0),
        ("bn_moving_mean", 0.0),
        ("bn_moving_var", 1.0),
        ("bn_running_mean", 0.0),
        ("bn_running_var", 1.0),
        ("bn_moving_inv_var", 0.0),
        ("bn_moving_avg", 0.0),
    ],
)
def test_name_suffix_picks_the_rule(name, value):
    np.testing.assert_array_equal(filled(init.Constant(2.0), name, (2, 3)), np.full((2, 3), value))


def test_unknown_name_raises_mxnets_error():
    with pytest.raises(ValueError) as e:
        filled(init.Uniform(), "data", (2,))
    assert str(e.value) == UNKNOWN.format("data")


def test_init_attribute_wins_over_the_suffix():
    desc = init.InitDesc("fc_bias", {"__init__": '["constant", {"value": 3.0}]'})
    arr = mx.nd.zeros((2,))
    uniform = init.Uniform()
    uniform(desc, arr)
    np.testing.assert_array_equal(arr.asnumpy(), [3.0, 3.0])
    assert desc.global_init is uniform


def test_init_attributes_stamped_by_symbols():
    data = mx.sym.Variable("data")
    prelu_gamma = mx.sym.Variable("act_gamma", init=init.Constant(0.25))
    net = mx.sym.BatchNorm(mx.sym.LeakyReLU(data, gamma=prelu_gamma, act_type="prelu"), name="bn")
    attrs = net.attr_dict()
    values = {
        name: filled(init.Xavier(), name, (3,), attrs.get(name))
        for name in ("bn_moving_mean", "bn_moving_var", "act_gamma", "bn_gamma")
    }
    np.testing.assert_array_equal(values["bn_moving_mean"], np.zeros(3))
    np.testing.assert_array_equal(values["bn_moving_var"], np.ones(3))
    np.testing.assert_array_equal(values["act_gamma"], np.full(3, 0.25, dtype=np.float32))
    np.testing.assert_array_equal(values["bn_gamma"], np.ones(3))


def test_legacy_string_call_warns_and_uses_the_old_table():
    arr = mx.nd.full((2,), 5.0)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        init.Uniform()("bn_moving_var", arr)
    np.testing.assert_array_equal(arr.asnumpy(), [1.0, 1.0])
    weight = mx.nd.zeros((1, 1, 4, 4))
    with pytest.warns(DeprecationWarning):
        init.Uniform()("upsampling0_weight", weight)
    np.testing.assert_array_equal(weight.asnumpy(), init.bilinear_kernel((1, 1, 4, 4)))


# -- values of each initializer ----------------------------------------------------------------


def test_zero_one_constant():
    np.testing.assert_array_equal(filled(init.Zero(), "w_weight", (2, 2)), np.zeros((2, 2)))
    np.testing.assert_array_equal(filled(init.One(), "w_weight", (2, 2)), np.ones((2, 2)))
    np.testing.assert_array_equal(filled(init.Constant(0.5), "w_weight", (2, 2)), np.full((2, 2), 0.5))
    row = filled(init.Constant(mx.nd.array([1.0, 2.0, 3.0])), "w_weight", (2, 3))
    np.testing.assert_array_equal(row, [[1.0, 2.0, 3.0]] * 2)


def test_uniform_and_normal_statistics():
    mx_random.seed(0)
    u = filled(init.Uniform(0.2), "w_weight", (200, 100))
    assert u.min() >= -0.2 and u.max() <= 0.2 and u.max() > 0.199
    assert abs(u.mean()) < 0.005 and u.std() == pytest.approx(0.2 / math.sqrt(3), rel=0.02)
    n = filled(init.Normal(0.5), "w_weight", (200, 100))
    assert abs(n.mean()) < 0.02 and n.std() == pytest.approx(0.5, rel=0.02)
    assert u.dtype == np.float32


@pytest.mark.parametrize(("factor_type", "factor"), [("avg", (288 + 576) / 2), ("in", 288), ("out", 576)])
def test_xavier_scale_per_fan_mode(factor_type, factor):
    # conv weight (out=64, in=32, 3, 3): fan_in = 32 * 9 = 288, fan_out = 64 * 9 = 576
    mx_random.seed(1)
    scale = math.sqrt(3.0 / factor)
    w = filled(init.Xavier(factor_type=factor_type), "conv_weight", (64, 32, 3, 3))
    assert np.abs(w).max() <= scale and np.abs(w).max() > 0.99 * scale
    g = filled(init.Xavier("gaussian", factor_type, magnitude=2), "conv_weight", (64, 32, 3, 3))
    assert g.std() == pytest.approx(math.sqrt(2.0 / factor), rel=0.03)


def test_xavier_rejects_vectors_and_bad_options():
    with pytest.raises(
        ValueError,
        match="^Xavier initializer cannot be applied to vector v_weight. It requires at least 2D.$",
    ):
        filled(init.Xavier(), "v_weight", (4,))
    with pytest.raises(ValueError, match="Incorrect factor type"):
        filled(init.Xavier(factor_type="sideways"), "w_weight", (2, 2))
    with pytest.raises(ValueError, match="Unknown random type"):
        filled(init.Xavier(rnd_type="cauchy"), "w_weight", (2, 2))


def test_msra_prelu_is_gaussian_xavier_with_slope_magnitude():
    mx_random.seed(2)
    w = filled(init.MSRAPrelu(factor_type="in", slope=0.25), "w_weight", (400, 300))
    assert w.std() == pytest.approx(math.sqrt(2 / (1 + 0.25**2) / 300), rel=0.02)
    assert init.MSRAPrelu().dumps() == '["msraprelu", {"factor_type": "avg", "slope": 0.25}]'


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (4, 2, 3, 1)])
def test_orthogonal_is_orthogonal(shape):
    w = filled(init.Orthogonal(scale=1.5), "w_weight", shape).astype(np.float64).reshape(shape[0], -1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    np.testing.assert_allclose(gram, 1.5**2 * np.eye(gram.shape[0]), atol=1e-5)


def test_bilinear_kernel_values():
    k = filled(init.Bilinear(), "up_weight", (2, 1, 4, 4))
    line = np.array([0.25, 0.75, 0.75, 0.25])  # f = 2, c = 0.75: 1 - |x/2 - 0.75|
    np.testing.assert_allclose(k[0, 0], np.outer(line, line))
    np.testing.assert_allclose(k[1, 0], np.outer(line, line))
    odd = filled(init.Bilinear(), "up_weight", (1, 1, 3, 3))[0, 0]
    np.testing.assert_allclose(odd, np.outer([0.25, 0.75, 0.75], [0.25, 0.75, 0.75]))


def test_lstm_bias_sets_the_forget_gate():
    b = filled(init.LSTMBias(forget_bias=2.0), "lstm_weight", (8,))
    np.testing.assert_array_equal(b, [0, 0, 2, 2, 0, 0, 0, 0])


def test_mixed_uses_the_first_matching_pattern():
    # Patterns match at the start of the name (re.match), as in MXNet.
    mixed = init.Mixed([".*bias", ".*"], [init.Zero(), init.Constant(7.0)])
    bias, weight = mx.nd.full((2,), 5.0), mx.nd.zeros((2,))
    mixed(init.InitDesc("fc_bias"), bias)
    mixed(init.InitDesc("fc_weight"), weight)
    np.testing.assert_array_equal(bias.asnumpy(), [0, 0])
    np.testing.assert_array_equal(weight.asnumpy(), [7, 7])
    with pytest.raises(ValueError, match="Parameter name fc_weight did not match any pattern"):
        init.Mixed(["bias"], [init.Zero()])(init.InitDesc("fc_weight"), weight)


def test_load_strips_prefixes_and_falls_back(tmp_path):
    params = {"arg:fc_weight": mx.nd.array([[1.0, 2.0]]), "aux:bn_moving_mean": mx.nd.array([3.0])}
    loader = init.Load(params, default_init=init.Constant(9.0))
    w, m, other = mx.nd.zeros((1, 2)), mx.nd.zeros((1,)), mx.nd.zeros((2,))
    loader("fc_weight", w)
    loader("bn_moving_mean", m)
    loader(init.InitDesc("other_weight"), other)
    np.testing.assert_array_equal(w.asnumpy(), [[1.0, 2.0]])
    np.testing.assert_array_equal(m.asnumpy(), [3.0])
    np.testing.assert_array_equal(other.asnumpy(), [9.0, 9.0])
    with pytest.raises(ValueError, match=r"Shape mismatch, target \(3,\) vs loaded \(1, 2\)"):
        loader("fc_weight", mx.nd.zeros((3,)))
    with pytest.raises(ValueError, match="Cannot Initialize x. Not found in loaded param"):
        init.Load(params)("x", other)
    path = str(tmp_path / "p.params")
    mx.nd.save(path, params)
    from_file = mx.nd.zeros((1, 2))
    init.Load(path)("fc_weight", from_file)
    np.testing.assert_array_equal(from_file.asnumpy(), [[1.0, 2.0]])


# -- dumps, create, register -----------------------------------------------------------------


def test_dumps_is_mxnets_json():
    assert init.Uniform().dumps() == '["uniform", {"scale": 0.07}]'
    assert init.Normal(0.5).dumps() == '["normal", {"sigma": 0.5}]'
    assert json.loads(init.Xavier(factor_type="in", magnitude=2.34).dumps()) == [
        "xavier",
        {"rnd_type": "uniform", "factor_type": "in", "magnitude": 2.34},
    ]
    assert init.Constant(np.array([1.0, 2.0])).dumps() == '["constant", {"value": [1.0, 2.0]}]'
    assert init.Zero().dumps() == '["zero", {}]'


def test_create_from_names_json_and_instances():
    assert type(init.create("zeros")) is init.Zero
    assert type(init.create("ONES")) is init.One
    assert init.create("xavier", magnitude=2).magnitude == 2.0
    assert init.create(init.Normal(0.3).dumps()).sigma == 0.3
    assert init.create('["Constant", {"value": 0.25}]').value == 0.25
    uniform = init.Uniform()
    assert init.create(uniform) is uniform


def test_create_unknown_name():
    with pytest.raises(
        ValueError, match=r"^nosuch is not registered\. Please register with initializer\.register"
    ):
        init.create("nosuch")


def test_register_a_custom_initializer():
    @init.register
    @init.alias("point_one")
    class PointOne(init.Initializer):
        def _init_weight(self, _, arr):
            arr[:] = 0.1

    attrs = {"__init__": PointOne().dumps()}
    np.testing.assert_allclose(filled(init.Zero(), "anything", (2,), attrs), [0.1, 0.1])
    assert type(init.create("point_one")) is PointOne


# -- seeding -----------------------------------------------------------------------------------


def test_seed_repeats_draws_and_reseeds_the_op_generator():
    mx_random.seed(42)
    first = filled(init.Xavier(), "w_weight", (5, 4))
    mx_random.seed(42)
    again = filled(init.Xavier(), "w_weight", (5, 4))
    np.testing.assert_array_equal(first, again)
    mx_random.seed(3)
    assert mx_random.generator().random() == np.random.default_rng(3).random()


def test_seed_must_be_an_int():
    with pytest.raises(ValueError, match="seed_state must be int"):
        mx_random.seed(1.5)


def test_random_functions_return_ndarrays():
    mx_random.seed(0)
    u = mx_random.uniform(-1, 1, shape=(3, 2))
    assert u.shape == (3, 2) and u.dtype == np.float32
    assert np.all(np.abs(u.asnumpy()) <= 1)
    assert mx_random.normal(shape=4).shape == (4,)
    r = mx_random.randint(0, 3, shape=(10,))
    assert r.dtype == np.int32 and set(r.asnumpy()) <= {0, 1, 2}

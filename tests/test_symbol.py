"""The Symbol API against MXNet 1.9.1's documented and observed behaviour (MXNET_COMPAT.md 0, 1, 2)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import ember as mx
from ember.base import GraphError, MXNetError, ShapeError


@pytest.fixture(autouse=True)
def fresh_names():
    """Each test starts with fresh automatic-name counters, as a new process would."""
    with mx.name.NameManager():
        yield


def seed_mlp():
    data = mx.symbol.Variable("data")
    fc1 = mx.symbol.FullyConnected(data, num_hidden=128)
    act1 = mx.symbol.Activation(fc1, act_type="relu")
    fc2 = mx.symbol.FullyConnected(act1, num_hidden=64)
    act2 = mx.symbol.Activation(fc2, act_type="relu")
    fc3 = mx.symbol.FullyConnected(act2, num_hidden=10)
    return mx.symbol.SoftmaxOutput(fc3, name="softmax")


SEED_ARGUMENTS = [
    "data", "fullyconnected0_weight", "fullyconnected0_bias", "fullyconnected1_weight",
    "fullyconnected1_bias", "fullyconnected2_weight", "fullyconnected2_bias", "softmax_label",
]


def test_seed_program_names_arguments_and_shapes_as_mxnet():
    mlp = seed_mlp()
    assert mlp.list_arguments() == SEED_ARGUMENTS
    assert mlp.list_outputs() == ["softmax_output"]
    assert mlp.list_auxiliary_states() == []
    args, outs, aux = mlp.infer_shape(data=(100, 1, 28, 28))
    assert args == [(100, 1, 28, 28), (128, 784), (128,), (64, 128), (64,), (10, 64), (10,), (100,)]
    assert outs == [(100, 10)]
    assert aux == []


def test_automatic_names_count_per_hint_and_restart_in_a_new_manager():
    a = mx.sym.var("a")
    assert mx.sym.FullyConnected(a, num_hidden=2).name == "fullyconnected0"
    assert mx.sym.FullyConnected(a, num_hidden=2).name == "fullyconnected1"
    assert mx.sym.Activation(a, act_type="relu").name == "activation0"
    with mx.name.NameManager():
        assert mx.sym.FullyConnected(a, num_hidden=2).name == "fullyconnected0"
    assert mx.sym.FullyConnected(a, num_hidden=2).name == "fullyconnected2"


def test_prefix_applies_to_generated_and_explicit_names_but_not_variables():
    with mx.name.Prefix("mynet_"):
        v = mx.sym.Variable("x")
        fc = mx.sym.FullyConnected(v, num_hidden=3)
        named = mx.sym.FullyConnected(v, num_hidden=3, name="fc1")
    assert v.name == "x"
    assert fc.name == "mynet_fullyconnected0"
    assert named.name == "mynet_fc1"
    assert named.list_arguments() == ["x", "mynet_fc1_weight", "mynet_fc1_bias"]


def test_auto_created_inputs_copy_the_ops_attributes_and_no_bias_removes_bias():
    fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=128, name="fc")
    weight = fc.get_internals()["fc_weight"]
    assert weight.list_attr() == {"num_hidden": "128"}
    nobias = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=4, no_bias=True, name="nb")
    assert nobias.list_arguments() == ["data", "nb_weight"]
    assert nobias.list_attr() == {"no_bias": "True", "num_hidden": "4"}


def test_explicit_input_replaces_the_automatic_variable():
    fc = mx.sym.FullyConnected(mx.sym.var("data"), weight=mx.sym.var("myw"), num_hidden=2, name="fc")
    assert fc.list_arguments() == ["data", "myw", "fc_bias"]


def test_variable_hidden_attributes():
    v = mx.sym.Variable("w", shape=(2, 3), lr_mult=0.1, wd_mult=0, dtype="float64", init="zeros", __foo__="x")
    assert v.list_attr() == {
        "__shape__": "(2, 3)", "__lr_mult__": "0.1", "__wd_mult__": "0", "__dtype__": "1",
        "__init__": "zeros", "__foo__": "x", "lr_mult": "0.1", "wd_mult": "0",
    }
    assert v.attr("name") == "w" and v.attr("shape") is None
    assert v.attr("lr_mult") == "0.1"
    with pytest.raises(ValueError, match="must start and end with double underscores"):
        mx.sym.Variable("w", foo="x")


def test_declared_variable_shape_feeds_inference():
    w = mx.sym.Variable("w", shape=(4, 0))
    fc = mx.sym.FullyConnected(mx.sym.var("data"), weight=w, num_hidden=4, name="fc")
    args, _, _ = fc.infer_shape(data=(2, 5))
    assert args == [(2, 5), (4, 5), (4,)]
    with pytest.raises(ShapeError, match="Shape inconsistent"):
        mx.sym.FullyConnected(mx.sym.var("data"), weight=mx.sym.Variable("w2", shape=(3, 5)), num_hidden=4).infer_shape(data=(2, 5))


def test_aux_states_are_listed_apart_from_arguments():
    bn = mx.sym.BatchNorm(mx.sym.var("data"), name="bn")
    assert bn.list_arguments() == ["data", "bn_gamma", "bn_beta"]
    assert bn.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    assert bn.list_inputs() == ["data", "bn_gamma", "bn_beta", "bn_moving_mean", "bn_moving_var"]
    assert bn.list_outputs() == ["bn_output"]
    internals = bn.get_internals()
    assert json.loads(internals["bn_moving_mean"].list_attr()["__init__"]) == ["zero", {}]
    args, outs, aux = bn.infer_shape(data=(2, 3, 4, 4))
    assert args == [(2, 3, 4, 4), (3,), (3,)] and outs == [(2, 3, 4, 4)] and aux == [(3,), (3,)]
    with_stats = mx.sym.BatchNorm(mx.sym.var("data"), output_mean_var=True, name="bn2")
    assert with_stats.list_outputs() == ["bn2_output", "bn2_mean", "bn2_var"]


def test_infer_shape_two_way_through_elementwise_and_label():
    a, w = mx.sym.var("a"), mx.sym.var("w")
    product = a * w
    args, outs, _ = product.infer_shape(a=(3, 4))
    assert args == [(3, 4), (3, 4)] and outs == [(3, 4)]
    args, _, _ = seed_mlp().infer_shape(softmax_label=(7,), data=(7, 784))
    assert args[-1] == (7,)


def test_infer_shape_positional_arguments_follow_list_arguments():
    fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc")
    args, outs, _ = fc.infer_shape((5, 3))
    assert args == [(5, 3), (2, 3), (2,)] and outs == [(5, 2)]


def test_infer_shape_undecided_warns_and_returns_none_partial_returns_zeros():
    fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fc.infer_shape() == (None, None, None)
    text = str(caught[0].message)
    assert text.startswith("Cannot decide shape for the following arguments (0s in shape means unknown dimensions).")
    assert "\tdata: ()" in text
    args, outs, aux = fc.infer_shape_partial()
    assert args == [(), (), ()] and outs == [()] and aux == []


def test_infer_shape_error_names_node_op_and_shapes():
    fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=10, name="fc1")
    with pytest.raises(ShapeError) as err:
        fc.infer_shape(data=(5, 3), fc1_weight=(10, 7))
    text = str(err.value)
    assert text.startswith("infer_shape error. Arguments:\n  data: (5, 3)\n  fc1_weight: (10, 7)\n")
    assert "Error in operator fc1 (FullyConnected): Shape inconsistent, Provided = [10,7], inferred shape=(10,3)" in text
    assert isinstance(err.value, MXNetError)


def test_symbol_plus_does_not_broadcast():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    with pytest.raises(ShapeError, match="_plus0 \\(elemwise_add\\)"):
        (a + b).infer_shape(a=(2, 3), b=(1, 3))


def test_unknown_input_name_in_infer_shape_is_an_error():
    with pytest.raises(MXNetError, match="'nope' is not an input"):
        mx.sym.var("a").infer_shape(nope=(1,))


def test_infer_type():
    fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc")
    args, outs, aux = fc.infer_type(data="float64")
    assert args == [np.float64] * 3 and outs == [np.float64] and aux == []
    with pytest.warns(UserWarning, match="Cannot decide type for the following arguments. Consider providing them as input:\n\tdata: None"):
        assert fc.infer_type() == (None, None, None)
    assert fc.infer_type_partial() == ([None] * 3, [None], [])


@pytest.mark.parametrize(
    "build, name, op, attrs",
    [
        (lambda a, b: a + b, "_plus0", "elemwise_add", {}),
        (lambda a, b: a - b, "_minus0", "elemwise_sub", {}),
        (lambda a, b: a * b, "_mul0", "elemwise_mul", {}),
        (lambda a, b: a / b, "_div0", "elemwise_div", {}),
        (lambda a, b: a ** b, "_power0", "_power", {}),
        (lambda a, b: a % b, "_mod0", "_mod", {}),
        (lambda a, b: a + 1, "_plusscalar0", "_plus_scalar", {"scalar": "1"}),
        (lambda a, b: a - 1, "_minusscalar0", "_minus_scalar", {"scalar": "1"}),
        (lambda a, b: 1 - a, "_rminusscalar0", "_rminus_scalar", {"scalar": "1"}),
        (lambda a, b: 2.5 * a, "_mulscalar0", "_mul_scalar", {"scalar": "2.5"}),
        (lambda a, b: a / 2, "_divscalar0", "_div_scalar", {"scalar": "2"}),
        (lambda a, b: 2 / a, "_rdivscalar0", "_rdiv_scalar", {"scalar": "2"}),
        (lambda a, b: a ** 2, "_powerscalar0", "_power_scalar", {"scalar": "2"}),
        (lambda a, b: 2 ** a, "_rpower_scalar0", "_rpower_scalar", {"scalar": "2"}),
        (lambda a, b: -a, "_mulscalar0", "_mul_scalar", {"scalar": "-1.0"}),
        (lambda a, b: a > 1, "_greater_scalar0", "_greater_scalar", {"scalar": "1"}),
        (lambda a, b: a == b, "_equal0", "_equal", {}),
        (lambda a, b: a <= b, "_lesser_equal0", "_lesser_equal", {}),
    ],
)
def test_operator_overloads_make_mxnets_nodes(build, name, op, attrs):
    result = build(mx.sym.var("a"), mx.sym.var("b"))
    graph = json.loads(result.tojson())
    head = graph["nodes"][graph["heads"][0][0]]
    assert (head["name"], head["op"], head.get("attrs", {})) == (name, op, attrs)


def test_group_internals_indexing_and_children():
    a = mx.sym.var("a")
    fc = mx.sym.FullyConnected(a, num_hidden=2, name="fc")
    act = mx.sym.Activation(fc, act_type="relu", name="act")
    group = mx.sym.Group([fc, act])
    assert group.list_outputs() == ["fc_output", "act_output"]
    assert len(group) == 2 and group.name is None
    assert group[1].name == "act" and group["fc_output"].name == "fc"
    assert [s.name for s in group] == ["fc", "act"]
    internals = act.get_internals()
    assert internals.list_outputs() == ["a", "fc_weight", "fc_bias", "fc_output", "act_output"]
    assert act.get_children().list_outputs() == ["fc_output"]
    assert a.get_children() is None
    with pytest.raises(ValueError, match="cannot find output"):
        group["nope"]


def test_compose_replaces_variables():
    net = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc")
    inner = mx.sym.Activation(mx.sym.var("x"), act_type="relu", name="act")
    composed = net(data=inner)
    assert composed.list_arguments() == ["x", "fc_weight", "fc_bias"]
    assert net.list_arguments() == ["data", "fc_weight", "fc_bias"]


def test_unknown_attribute_and_missing_required_attribute_are_named():
    with pytest.raises(GraphError, match="unknown attribute 'num_hiden' for operator FullyConnected"):
        mx.sym.FullyConnected(mx.sym.var("data"), num_hiden=3)
    with pytest.raises(GraphError, match="missing its required attribute 'num_hidden'"):
        mx.sym.FullyConnected(mx.sym.var("data"))
    with pytest.raises(GraphError, match="bad value for attribute 'act_type'"):
        mx.sym.Activation(mx.sym.var("data"), act_type="swish")


def test_eval_computes_outputs_with_the_reference_interpreter():
    x = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
    w = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]], np.float32)
    b = np.array([0.0, 1.0, 0.5], np.float32)
    net = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc"), act_type="relu")
    (out,) = net.eval(data=mx.nd.array(x), fc_weight=mx.nd.array(w), fc_bias=mx.nd.array(b))
    assert isinstance(out, mx.nd.NDArray)
    np.testing.assert_allclose(out.asnumpy(), np.maximum(x @ w.T + b, 0))
    with pytest.raises(MXNetError, match="no value given for input\\(s\\) fc_bias"):
        net.eval(data=mx.nd.array(x), fc_weight=mx.nd.array(w))
    with pytest.raises(ShapeError, match="fc_weight: \\(3, 5\\)"):
        net.eval(data=mx.nd.array(x), fc_weight=mx.nd.zeros((3, 5)), fc_bias=mx.nd.array(b))


def test_context_objects():
    assert str(mx.cpu()) == "cpu(0)" and str(mx.gpu(1)) == "gpu(1)"
    assert mx.Context("gpu", 1) == mx.gpu(1) and mx.current_context() == mx.cpu(0)


def test_declared_shape_and_dtype_are_hints_that_given_values_override():
    x = mx.sym.Variable("x", shape=(2, 3), dtype="float64")
    y = mx.sym.Activation(x, act_type="relu")
    assert y.infer_shape() == ([(2, 3)], [(2, 3)], [])
    assert y.infer_shape(x=(4, 4)) == ([(4, 4)], [(4, 4)], [])
    assert y.infer_type() == ([np.float64], [np.float64], [])
    assert y.infer_type(x="float32") == ([np.float32], [np.float32], [])


def test_zero_and_negative_dims_given_by_the_user_mean_unknown():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    assert (a + b).infer_shape(a=(0, 3), b=(2, 3)) == ([(2, 3), (2, 3)], [(2, 3)], [])
    assert (a + b).infer_shape_partial(a=(0, 3)) == ([(0, 3), (0, 3)], [(0, 3)], [])
    assert (a + b).infer_shape_partial(a=(-1, 3)) == ([(0, 3), (0, 3)], [(0, 3)], [])
    assert (a + b).infer_shape_partial(a=()) == ([(), ()], [()], [])


def test_fully_connected_infers_weights_from_a_partially_known_input():
    fc = mx.sym.FullyConnected(mx.sym.Variable("data", shape=(0, 784)), num_hidden=128, name="fc")
    assert fc.infer_shape_partial() == ([(0, 784), (128, 784), (128,)], [(0, 128)], [])


def test_binary_functions_pick_symbol_or_scalar_ops():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    heads = {
        "max_ss": mx.sym.maximum(a, b), "max_sn": mx.sym.maximum(a, 2), "min_ns": mx.sym.minimum(3, a),
        "pow_ns": mx.sym.pow(2, a), "hyp_ss": mx.sym.hypot(a, b),
    }
    ops = {k: json.loads(v.tojson())["nodes"][-1]["op"] for k, v in heads.items()}
    assert ops == {
        "max_ss": "_maximum", "max_sn": "_maximum_scalar", "min_ns": "_minimum_scalar",
        "pow_ns": "_rpower_scalar", "hyp_ss": "_hypot",
    }
    assert mx.sym.maximum(3, 4) == 4 and mx.sym.power(2, 3) == 8
    x = np.array([[-1.0, 2.0], [0.5, -3.0]], np.float32)
    (out,) = mx.sym.maximum(a, 0.0).eval(a=mx.nd.array(x))
    np.testing.assert_array_equal(out.asnumpy(), np.maximum(x, 0))


def test_fluent_methods_forward_to_ops():
    x = np.array([[1.0, 4.0], [9.0, 16.0]], np.float32)
    a = mx.sym.var("a")
    (out,) = a.sqrt().sum(axis=1).eval(a=mx.nd.array(x))
    np.testing.assert_allclose(out.asnumpy(), [3.0, 7.0])
    (out,) = a.reshape(shape=(-1,)).astype("float64").eval(a=mx.nd.array(x))
    assert out.dtype == np.float64 and out.shape == (4,)


def test_creation_functions():
    (z,) = mx.sym.zeros((2, 3)).eval()
    (f,) = mx.sym.full((2,), 7, dtype="int32").eval()
    (r,) = mx.sym.arange(1, 7, step=2).eval()
    assert z.shape == (2, 3) and z.asnumpy().sum() == 0
    assert f.dtype == np.int32 and f.asnumpy().tolist() == [7, 7]
    assert r.asnumpy().tolist() == [1.0, 3.0, 5.0]
    assert mx.sym.ones((1, 5)).infer_shape() == ([], [(1, 5)], [])

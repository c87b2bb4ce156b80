"""Symbol API, JSON and inference details where MXNet 1.9.1's behaviour is easy to get wrong
(found in review; each test states what MXNet does)."""

import json
import pickle
import random
import warnings
from pathlib import Path

import ember as mx
import numpy as np
import pytest
from ember.base import MXNetError

FIX = str(Path(__file__).parent / "fixtures" / "ck-symbol.json")


# --------------------------------------------------------------------------------------------
# 1. Given shapes are not read with legacy semantics (0 dim / () = unknown)


def test_given_zero_dim_is_unknown_not_zero():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    # MXNet docstring: c.infer_shape(a=(0,3)) -> (None, None, None) + UserWarning
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert (a + b).infer_shape(a=(0, 3)) == (None, None, None)
    assert w
    # and a 0 dim must be fillable from elsewhere, not contradict
    assert (a + b).infer_shape(a=(0, 3), b=(2, 3))[0] == [(2, 3), (2, 3)]


def test_given_empty_shape_is_unknown_not_scalar():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    assert (a + b).infer_shape(a=(), b=(2, 3))[0] == [(2, 3), (2, 3)]
    fc = mx.sym.FullyConnected(a, num_hidden=2, name="fc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fc.infer_shape(a=()) == (None, None, None)


def test_negative_dims_are_not_known_dims():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = (a + b).infer_shape(a=(-1, 3))
    assert res == (None, None, None)


# --------------------------------------------------------------------------------------------
# 2. __shape__ / __dtype__ on a variable are hints, a given value overrides them


def test_shape_attr_is_only_a_hint():
    d = mx.sym.Variable("data", shape=(1, 3, 8, 8))
    net = mx.sym.Convolution(d, kernel=(3, 3), num_filter=4, name="conv")
    assert net.infer_shape(data=(32, 3, 8, 8))[1] == [(32, 4, 6, 6)]


def test_dtype_attr_is_only_a_hint():
    d = mx.sym.Variable("data", dtype="float32")
    assert (d * 2).infer_type(data="float16")[1] == [np.float16]


# --------------------------------------------------------------------------------------------
# 3. FullyConnected: partial data shape (unknown batch) still gives weight/bias/out


def test_fc_infers_weight_from_partial_data():
    d = mx.sym.Variable("data", shape=(0, 784))
    fc = mx.sym.FullyConnected(d, num_hidden=128, name="fc")
    args, outs, _ = fc.infer_shape_partial()
    assert args == [(0, 784), (128, 784), (128,)] and outs == [(0, 128)]


# --------------------------------------------------------------------------------------------
# 4. get_internals lists only visible outputs (nnvm GetInternals uses FNumVisibleOutputs)


def test_internals_hide_hidden_outputs():
    d = mx.sym.Variable("data")
    bn = mx.sym.BatchNorm(d, name="bn")
    assert bn.get_internals().list_outputs() == [
        "data",
        "bn_gamma",
        "bn_beta",
        "bn_moving_mean",
        "bn_moving_var",
        "bn_output",
    ]
    dr = mx.sym.Dropout(d, p=0.5, name="dr")
    assert dr.get_internals().list_outputs() == ["data", "dr_output"]


# --------------------------------------------------------------------------------------------
# 5. numpy >= 2 scalars inside tuple params / shapes


def test_numpy_ints_in_tuple_params():
    d = mx.sym.Variable("data")
    k = np.int64(3)
    c = mx.sym.Convolution(d, kernel=(k, k), num_filter=2, name="c")
    assert c.list_attr()["kernel"] == "(3, 3)"


def test_numpy_ints_in_variable_shape():
    v = mx.sym.Variable("v", shape=(np.int64(2), 3))
    assert v.list_attr()["__shape__"] == "(2, 3)"
    assert (v * 2).infer_shape()[1] == [(2, 3)]


# --------------------------------------------------------------------------------------------
# 6. pickle (MXNet pickles via tojson)


def test_pickle_deep_symbol():
    s = mx.sym.Variable("data")
    for i in range(200):
        s = mx.sym.Activation(s, act_type="relu", name=f"a{i}")
    s2 = pickle.loads(pickle.dumps(s))
    assert s2.tojson() == s.tojson()


# --------------------------------------------------------------------------------------------
# 7. compose


def _net2():
    net2 = mx.sym.FullyConnected(name="fc3", num_hidden=10)
    net2 = mx.sym.Activation(data=net2, act_type="relu")
    return mx.sym.FullyConnected(data=net2, name="fc4", num_hidden=20)


def test_compose_name():
    net1 = mx.sym.FullyConnected(data=mx.sym.Variable("data"), name="fc1", num_hidden=10)
    assert _net2()(fc3_data=net1, name="composed").name == "composed"  # MXNet docstring


def test_compose_unknown_keyword_raises():
    net1 = mx.sym.Variable("x")
    with pytest.raises(MXNetError):
        _net2()(fc3_dat=net1)  # typo: MXNet raises KeywordArgumentMismatch; ember ignores it


def test_compose_positional_and_keyword_mix_raises():
    with pytest.raises(TypeError):
        _net2()(mx.sym.Variable("x"), fc3_weight=mx.sym.Variable("w"))


# --------------------------------------------------------------------------------------------
# 8. AttrScope applies to operator-overload nodes (they go through _internal._Plus & co.)


def test_attrscope_on_overloads():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    with mx.AttrScope(ctx_group="dev1"):
        c = a + b
        d = a * 2
    assert c.attr("ctx_group") == "dev1"
    assert d.attr("ctx_group") == "dev1"


# --------------------------------------------------------------------------------------------
# 9. JSON writer: >10 inputs / heads are written one per line (dmlc ArrayHandler, size > 10)


def test_json_inputs_over_10_multiline():
    vs = [mx.sym.Variable("v%d" % i) for i in range(11)]
    t = mx.sym.Concat(*vs, dim=0, name="cat").tojson()
    assert '"inputs": [\n        [0, 0, 0], \n        [1, 0, 0], ' in t
    assert "[10, 0, 0]\n      ]\n    }" in t


def test_json_heads_over_10_multiline():
    t = mx.sym.Group([mx.sym.Variable("v%d" % i) for i in range(11)]).tojson()
    assert '"heads": [\n    [0, 0, 0], \n    [1, 0, 0], ' in t


def test_json_list_param_written_as_str_of_list():
    d = mx.sym.Variable("data")
    c = mx.sym.Convolution(d, kernel=[3, 3], num_filter=2, name="c")
    assert c.list_attr()["kernel"] == "[3, 3]"  # MXNet stores str(value)


# --------------------------------------------------------------------------------------------
# 10. JSON reader: every malformed input must raise MXNetError


def _mut(f):
    d = json.load(open(FIX))
    f(d)
    return json.dumps(d)


def _set(i, k, v):
    return lambda d: d["nodes"][i].setdefault("attrs", {}).__setitem__(k, v)


def _legacy_entry(v):
    def f(d):
        d["attrs"] = {"mxnet_version": ["int", 800]}
        d["nodes"][3]["inputs"][0][0] = v

    return f


BAD_JSON = {
    "num_hidden nan": _mut(_set(3, "num_hidden", "nan")),
    "num_hidden inf": _mut(_set(3, "num_hidden", "inf")),
    "num_hidden 1e400": _mut(_set(3, "num_hidden", "1e400")),
    "mxnet_version dict": _mut(lambda d: d["attrs"].__setitem__("mxnet_version", {"a": 1})),
    "legacy str node id": _mut(_legacy_entry("0")),
    "legacy None node id": _mut(_legacy_entry(None)),
    "legacy float node id": _mut(_legacy_entry(0.0)),
    "deep nesting": "[" * 100000 + "]" * 100000,
    "5000-digit int": '{"nodes": [{"op":"null","name":"a","inputs":[]}], "heads": [['
    + "9" * 5000
    + ", 0, 0]]}",
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_reader_raises_mxnet_error(case):
    with pytest.raises(MXNetError):
        mx.sym.load_json(BAD_JSON[case])


BAD_VAR_ATTRS = {
    "__dtype__ x": ("__dtype__", "x", lambda s: s.infer_type()),
    "__shape__ x": ("__shape__", "x", lambda s: s.infer_shape_partial()),
    "__shape__ {}": ("__shape__", "{}", lambda s: s.infer_shape_partial()),
    "__shape__ 1.5": ("__shape__", "1.5", lambda s: s.infer_shape_partial()),
}


@pytest.mark.parametrize("case", sorted(BAD_VAR_ATTRS))
def test_bad_variable_attrs_raise_mxnet_error(case):
    key, value, use = BAD_VAR_ATTRS[case]
    with pytest.raises(MXNetError):
        use(mx.sym.load_json(_mut(_set(0, key, value))))


def test_op_creation_nan_param_raises_mxnet_error():
    with pytest.raises(MXNetError):
        mx.sym.FullyConnected(mx.sym.Variable("d"), num_hidden=float("nan"))


# --------------------------------------------------------------------------------------------
# 11. inference: sweep cap, infer_type warning/partial


def test_fixpoint_converges_beyond_100_sweeps():
    random.seed(0)
    n = 400
    vs = [mx.sym.Variable(f"v{i}") for i in range(n + 1)]
    ops = [mx.sym.elemwise_add(vs[i], vs[i + 1], name=f"o{i}") for i in range(n)]
    perm = list(range(n))
    random.shuffle(perm)
    g = mx.sym.Group([ops[i] for i in perm])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args, _, _ = g.infer_shape(v0=(2, 3))  # MXNet iterates while progress is made
    assert args is not None


def test_infer_type_warns_when_undecided():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    with pytest.warns(UserWarning, match="Cannot decide type"):
        assert (a + b).infer_type() == (None, None, None)


def test_infer_type_partial_exists():
    d = mx.sym.Variable("data")
    prev = mx.sym.Variable("prev")
    out = mx.sym.Activation(data=mx.sym.elemwise_add(d, mx.sym.Cast(prev, dtype="float32")), act_type="relu")
    assert out.infer_type_partial(data="float32") == ([np.float32, None], [np.float32], [])


# --------------------------------------------------------------------------------------------
# 12. smaller API mismatches


def test_multi_output_single_node_has_name():
    sc = mx.sym.SliceChannel(mx.sym.Variable("d"), num_outputs=2, name="sc")
    assert sc.name == "sc"


def test_list_attr_includes_plain_hidden_key_alias():
    # apache/mxnet tests/python/unittest/test_attr.py::test_list_attr
    data = mx.sym.Variable("data", attr={"mood": "angry"})
    op = mx.sym.Convolution(
        data=data, name="conv", kernel=(1, 1), num_filter=1, attr={"__mood__": "so so", "wd_mult": "x"}
    )
    attrs = op.list_attr()
    assert attrs["wd_mult"] == "x" and attrs["__wd_mult__"] == "x"


def test_hidden_key_as_op_kwarg():
    fc = mx.sym.FullyConnected(mx.sym.Variable("d"), num_hidden=2, name="fc", lr_mult=0)
    assert fc.attr("__lr_mult__") == "0"


def test_numpy_scalar_on_the_left():
    a = mx.sym.Variable("a")
    assert isinstance(np.float32(2.0) * a, mx.sym.Symbol)  # MXNet: __array_priority__ = 1000


def test_abs_slice_set_attr():
    a = mx.sym.Variable("a")
    assert isinstance(abs(a), mx.sym.Symbol)
    g = mx.sym.Group([a, mx.sym.Variable("b"), mx.sym.Variable("c")])
    assert g[0:2].list_outputs() == ["a", "b"]
    a._set_attr(foo="bar")
    assert a.attr("foo") == "bar"


def test_attr_fallback_only_for_hidden_keys():
    v = mx.sym.Variable("v", shape=(2, 3))
    assert v.attr("shape") is None  # MXNet: only ctx_group/lr_mult/wd_mult/... fall back
    assert v.attr("name") == "v"


def test_scalar_overload_validated_at_creation():
    with pytest.raises(TypeError, match="type complex not supported"):
        mx.sym.Variable("a") * 1j


def test_save_to_directory_raises_mxnet_error(tmp_path):
    with pytest.raises(MXNetError):
        mx.sym.Variable("a").save(str(tmp_path) + "/")


def test_name_manager_current_is_a_manager():
    # MXNet 1.x: NameManager.current is a (deprecated) class property returning the manager
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert mx.name.NameManager.current.get(None, "foo").startswith("foo")

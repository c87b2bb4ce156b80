"""Values of the NN, softmax and loss references against independent expectations.

Expectations come from MXNet 1.9.1's observed behaviour (MXNET_COMPAT.md sections 2.1-2.9), hand
formulas, and direct loops; shape tests run the inference pass on graphs where only some shapes are
given, and error tests check the exact error class and its key text.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
from ember.compiler import Graph, Node, RefContext, Value, evaluate, variable
from ember.compiler.ops import SCHEMAS, FusionKind, canonical_name, fusion_kinds, get_schema
from ember.compiler.ops.params import format_value
from ember.compiler.passes import infer_shapes, infer_types
from ember.runtime.errors import GraphError, ShapeError


def one_node(op: str, attrs: dict | None = None) -> Graph:
    """A graph of one `op` node (all outputs) whose inputs are variables named as the schema names them."""
    attrs = {k: format_value(v) for k, v in (attrs or {}).items()}
    schema = get_schema(op)
    names = schema.input_names(schema.parse_params(attrs))
    node = Node(schema.name, tuple(variable(name).output() for name in names), attrs, "node")
    return Graph([Value(node, i) for i in range(node.num_outputs)])


def _inputs(graph: Graph) -> list[Node]:
    return [v.node for v in graph.outputs[0].node.inputs]


def run(op: str, inputs: list, attrs: dict | None = None, is_train: bool = False, seed: int = 0) -> list:
    """Every output (hidden ones too) of the reference of `op` on `inputs`."""
    graph = one_node(op, attrs)
    feeds = {node.name: np.asarray(a) for node, a in zip(_inputs(graph), inputs)}
    values = evaluate(graph, feeds, RefContext(is_train, np.random.default_rng(seed)))
    return [values[v] for v in graph.outputs]


def shapes(op: str, attrs: dict, given: dict) -> dict:
    """Inferred shapes by variable name, and 'output0', 'output1', ... for the node's outputs."""
    graph = one_node(op, attrs)
    inferred = infer_shapes(graph, given)
    result = {node.name: inferred.get(Value(node, 0)) for node in _inputs(graph)}
    result.update({f"output{v.index}": inferred.get(v) for v in graph.outputs})
    return result


def types(op: str, attrs: dict, given: dict) -> dict:
    graph = one_node(op, attrs)
    inferred = infer_types(graph, given)
    result = {node.name: inferred.get(Value(node, 0)) for node in _inputs(graph)}
    result.update({f"output{v.index}": inferred.get(v) for v in graph.outputs})
    return result


def normal(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Schemas: parameters, fusion kinds, aliases, hidden outputs and auxiliary states


def test_fusion_kinds_of_the_nn_ops():
    expected = {
        "Convolution": FusionKind.MATMUL,
        "Pooling": FusionKind.OPAQUE,
        "BatchNorm": FusionKind.OPAQUE,
        "Dropout": FusionKind.OPAQUE,
        "Embedding": FusionKind.OPAQUE,
        "LeakyReLU": FusionKind.ELEMENTWISE,
        "softmax": FusionKind.REDUCE,
        "log_softmax": FusionKind.REDUCE,
        "SoftmaxActivation": FusionKind.REDUCE,
        "SoftmaxOutput": FusionKind.OPAQUE,
        "LinearRegressionOutput": FusionKind.ELEMENTWISE,
        "BlockGrad": FusionKind.ELEMENTWISE,
        "MakeLoss": FusionKind.ELEMENTWISE,
        "make_loss": FusionKind.ELEMENTWISE,
    }
    assert {op: fusion_kinds[op] for op in expected} == expected


def test_aliases_resolve_to_their_ops():
    assert canonical_name("Softmax") == "SoftmaxOutput"
    assert canonical_name("stop_gradient") == "BlockGrad"
    assert "make_loss" in SCHEMAS and get_schema("make_loss").params == ()


def test_every_mxnet_parameter_parses_with_its_default():
    convolution = get_schema("Convolution").parse_params({"kernel": "(3, 3)", "num_filter": "8"})
    assert convolution == {
        "kernel": (3, 3),
        "stride": (),
        "dilate": (),
        "pad": (),
        "num_filter": 8,
        "num_group": 1,
        "workspace": 1024,
        "no_bias": False,
        "cudnn_tune": None,
        "cudnn_off": False,
        "layout": None,
    }
    pooling = get_schema("Pooling").parse_params({})
    assert pooling == {
        "kernel": (),
        "pool_type": "max",
        "global_pool": False,
        "cudnn_off": False,
        "pooling_convention": "valid",
        "stride": (),
        "pad": (),
        "p_value": None,
        "count_include_pad": None,
        "layout": None,
    }
    batchnorm = get_schema("BatchNorm").parse_params({})
    assert batchnorm == {
        "eps": 1e-3,
        "momentum": 0.9,
        "fix_gamma": True,
        "use_global_stats": False,
        "output_mean_var": False,
        "axis": 1,
        "cudnn_off": False,
        "min_calib_range": None,
        "max_calib_range": None,
    }
    softmax_output = get_schema("Softmax").parse_params({})
    assert softmax_output == {
        "grad_scale": 1.0,
        "ignore_label": -1.0,
        "multi_output": False,
        "use_ignore": False,
        "preserve_shape": False,
        "normalization": "null",
        "out_grad": False,
        "smooth_alpha": 0.0,
    }
    assert get_schema("Dropout").parse_params({}) == {
        "p": 0.5,
        "mode": "training",
        "axes": (),
        "cudnn_off": False,
    }
    assert get_schema("LeakyReLU").parse_params({}) == {
        "act_type": "leaky",
        "slope": 0.25,
        "lower_bound": 0.125,
        "upper_bound": 0.334,
    }
    assert get_schema("softmax").parse_params({}) == {
        "axis": -1,
        "temperature": None,
        "dtype": None,
        "use_length": False,
    }


def test_mxnet_written_attributes_load():
    """Attributes as the Gluon export in shared/fixtures/mxnet/mlpnet-symbol.json writes them."""
    pooling = {
        "global_pool": "False",
        "kernel": "(2, 2)",
        "layout": "NCHW",
        "pad": "(0, 0)",
        "pool_type": "max",
        "pooling_convention": "valid",
        "stride": "(2, 2)",
    }
    assert get_schema("Pooling").parse_params(pooling)["stride"] == (2, 2)
    dropout = get_schema("Dropout").parse_params({"axes": "()", "cudnn_off": "False", "p": "0.5"})
    assert dropout["axes"] == ()
    batchnorm = {
        "axis": "1",
        "eps": "1e-05",
        "fix_gamma": "False",
        "momentum": "0.9",
        "use_global_stats": "False",
    }
    assert get_schema("BatchNorm").parse_params(batchnorm)["eps"] == 1e-5


def test_batchnorm_schema_has_aux_states_and_hidden_outputs():
    schema = get_schema("BatchNorm")
    assert schema.input_names({}) == ("data", "gamma", "beta", "moving_mean", "moving_var")
    assert schema.mutable_inputs == ("moving_mean", "moving_var")
    assert dict(schema.input_inits) == {"moving_mean": '["zero", {}]', "moving_var": '["one", {}]'}
    assert schema.all_output_names(schema.parse_params({})) == ("output", "mean", "var")
    assert schema.num_visible_outputs(schema.parse_params({})) == 1
    assert schema.num_visible_outputs(schema.parse_params({"output_mean_var": "True"})) == 3


def test_dropout_and_rrelu_have_a_hidden_mask():
    dropout = get_schema("Dropout")
    assert dropout.all_output_names({}) == ("output", "mask") and dropout.num_visible_outputs({}) == 1
    leaky = get_schema("LeakyReLU")
    rrelu, elu = leaky.parse_params({"act_type": "rrelu"}), leaky.parse_params({"act_type": "elu"})
    assert leaky.all_output_names(rrelu) == ("output", "mask") and leaky.num_visible_outputs(rrelu) == 1
    assert leaky.all_output_names(elu) == ("output",) and leaky.num_outputs(elu) == 1


def test_prelu_alone_takes_gamma_initialised_to_a_quarter():
    leaky = get_schema("LeakyReLU")
    assert leaky.input_names(leaky.parse_params({"act_type": "prelu"})) == ("data", "gamma")
    assert leaky.input_names(leaky.parse_params({"act_type": "gelu"})) == ("data",)
    assert leaky.input_inits["gamma"] == '["Constant", {"value": 0.25}]'


def test_softmax_takes_length_only_with_use_length():
    schema = get_schema("softmax")
    assert schema.input_names(schema.parse_params({})) == ("data",)
    assert schema.input_names(schema.parse_params({"use_length": "True"})) == ("data", "length")


def test_unknown_attribute_is_a_graph_error():
    node = Node("Convolution", (), {"kernel": "(3, 3)", "num_filter": "2", "bogus": "1"}, "conv0")
    with pytest.raises(
        GraphError, match="unknown attribute 'bogus' for operator Convolution \\(node 'conv0'\\)"
    ):
        _ = node.params


def test_missing_required_attribute_is_a_graph_error():
    with pytest.raises(
        GraphError, match="operator Convolution is missing its required attribute 'num_filter'"
    ):
        get_schema("Convolution").parse_params({"kernel": "(3, 3)"})
    with pytest.raises(GraphError, match="missing its required attribute 'input_dim'"):
        get_schema("Embedding").parse_params({"output_dim": "4"})


def test_bad_enum_value_is_a_graph_error():
    with pytest.raises(GraphError, match="bad value for attribute 'pool_type' of operator Pooling"):
        get_schema("Pooling").parse_params({"pool_type": "median"})


# ---------------------------------------------------------------------------------------------
# Convolution


def direct_convolution(x, w, b, stride, pad, dilate, groups):
    """Convolution by loops over every output cell, input channel and kernel tap (channel-first)."""
    batch, channels = x.shape[:2]
    filters, kernel = w.shape[0], w.shape[2:]
    padded = np.zeros((batch, channels) + tuple(n + 2 * p for n, p in zip(x.shape[2:], pad)))
    padded[(slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in zip(pad, x.shape[2:]))] = x
    sizes = [
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, p, d, k, s in zip(x.shape[2:], pad, dilate, kernel, stride)
    ]
    out = np.zeros((batch, filters, *sizes))
    per_group, filters_per_group = channels // groups, filters // groups
    for n, f in product(range(batch), range(filters)):
        first_channel = (f // filters_per_group) * per_group
        for position in product(*map(range, sizes)):
            total = 0.0 if b is None else float(b[f])
            for c, tap in product(range(per_group), product(*map(range, kernel))):
                cell = tuple(o * s + t * d for o, s, t, d in zip(position, stride, tap, dilate))
                total += padded[(n, first_channel + c) + cell] * w[(f, c) + tap]
            out[(n, f) + position] = total
    return out


CONV_SETUPS = [
    # data shape, kernel, stride, pad, dilate, num_filter, num_group, no_bias
    ((2, 4, 6, 5), (3, 2), (2, 1), (1, 2), (1, 2), 6, 2, False),
    ((1, 3, 7, 7), (3, 3), (2, 2), (1, 1), (1, 1), 2, 1, True),
    ((2, 2, 9), (3,), (2,), (1,), (2,), 3, 1, False),
    ((1, 2, 4, 5, 3), (2, 3, 2), (1, 2, 1), (0, 1, 1), (1, 1, 2), 4, 2, False),
]


@pytest.mark.parametrize("data, kernel, stride, pad, dilate, filters, groups, no_bias", CONV_SETUPS)
def test_convolution_matches_direct_loops(data, kernel, stride, pad, dilate, filters, groups, no_bias):
    x = normal(*data, seed=1, dtype=np.float64)
    w = normal(filters, data[1] // groups, *kernel, seed=2, dtype=np.float64)
    b = None if no_bias else normal(filters, seed=3, dtype=np.float64)
    attrs = {
        "kernel": kernel,
        "stride": stride,
        "pad": pad,
        "dilate": dilate,
        "num_filter": filters,
        "num_group": groups,
        "no_bias": no_bias,
    }
    (out,) = run("Convolution", [x, w] + ([] if no_bias else [b]), attrs)
    np.testing.assert_allclose(
        out, direct_convolution(x, w, b, stride, pad, dilate, groups), rtol=1e-12, atol=1e-12
    )


def test_convolution_is_cross_correlation_without_kernel_flip():
    x = np.array([[[1.0, 2.0, 3.0]]], np.float32)
    w = np.array([[[1.0, 0.0]]], np.float32)
    (out,) = run("Convolution", [x, w], {"kernel": (2,), "num_filter": 1, "no_bias": True})
    np.testing.assert_array_equal(out, [[[1.0, 2.0]]])


def test_convolution_nhwc_equals_transposed_nchw():
    x, w, b = normal(2, 3, 6, 5, seed=4), normal(4, 3, 3, 2, seed=5), normal(4, seed=6)
    attrs = {"kernel": (3, 2), "num_filter": 4, "pad": (1, 0)}
    (nchw,) = run("Convolution", [x, w, b], attrs)
    (nhwc,) = run(
        "Convolution", [x.transpose(0, 2, 3, 1), w.transpose(0, 2, 3, 1), b], {**attrs, "layout": "NHWC"}
    )
    np.testing.assert_allclose(nhwc, nchw.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)


def test_convolution_keeps_the_input_dtype():
    for dtype in (np.float16, np.float32, np.float64):
        (out,) = run(
            "Convolution",
            [normal(1, 1, 3, 3, dtype=dtype), normal(1, 1, 2, 2, dtype=dtype)],
            {"kernel": (2, 2), "num_filter": 1, "no_bias": True},
        )
        assert out.dtype == dtype


def test_convolution_output_sizes_observed_in_mxnet():
    inferred = shapes("Convolution", {"kernel": (5, 5), "num_filter": 20}, {"data": (64, 1, 28, 28)})
    assert inferred == {
        "data": (64, 1, 28, 28),
        "weight": (20, 1, 5, 5),
        "bias": (20,),
        "output0": (64, 20, 24, 24),
    }
    strided = shapes(
        "Convolution",
        {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "num_filter": 1},
        {"data": (1, 1, 7, 7)},
    )
    assert strided["output0"] == (1, 1, 4, 4)


def test_convolution_infers_grouped_weight_from_data_only():
    attrs = {"kernel": (3, 3), "num_filter": 6, "num_group": 2}
    inferred = shapes("Convolution", attrs, {"data": (2, 4, 9, 9)})
    assert (
        inferred["weight"] == (6, 2, 3, 3)
        and inferred["bias"] == (6,)
        and inferred["output0"] == (2, 6, 7, 7)
    )
    nhwc = shapes("Convolution", {**attrs, "layout": "NHWC"}, {"data": (2, 9, 9, 4)})
    assert nhwc["weight"] == (6, 3, 3, 2) and nhwc["output0"] == (2, 7, 7, 6)


def test_convolution_infers_data_channels_from_the_weight():
    inferred = shapes(
        "Convolution", {"kernel": (3, 3), "num_filter": 8, "num_group": 2}, {"weight": (8, 3, 3, 3)}
    )
    assert inferred["data"] == (None, 6, None, None) and inferred["output0"] == (None, 8, None, None)


def test_convolution_kernel_larger_than_input_is_a_shape_error():
    graph = one_node("Convolution", {"kernel": (5, 5), "num_filter": 2})
    with pytest.raises(ShapeError, match=r"kernel size \(5, 5\) exceeds the padded input \(3,3\)"):
        infer_shapes(graph, {"data": (1, 1, 3, 3)})
    dilated = one_node("Convolution", {"kernel": (3, 3), "dilate": (2, 2), "pad": (0, 1), "num_filter": 2})
    with pytest.raises(
        ShapeError, match=r"dilated by \(2, 2\) spans \(5, 5\), which exceeds the padded input \(4,6\)"
    ):
        infer_shapes(dilated, {"data": (1, 1, 4, 4)})


def test_convolution_wrong_weight_shape_is_a_shape_error():
    graph = one_node("Convolution", {"kernel": (3, 3), "num_filter": 4})
    with pytest.raises(
        ShapeError, match=r"Provided = \[4,2,3,3\], inferred shape=\(4,3,3,3\) at input 'weight'"
    ):
        infer_shapes(graph, {"data": (2, 3, 7, 7), "weight": (4, 2, 3, 3)})


def test_convolution_channels_must_split_into_groups():
    graph = one_node("Convolution", {"kernel": (1, 1), "num_filter": 4, "num_group": 2})
    with pytest.raises(ShapeError, match="the 3 input channels do not split into num_group=2 groups"):
        infer_shapes(graph, {"data": (1, 3, 4, 4)})


# ---------------------------------------------------------------------------------------------
# Pooling


def pool_shape(data, **attrs):
    return shapes("Pooling", attrs, {"data": data})["output0"]


def test_pooling_output_sizes_observed_in_mxnet():
    assert pool_shape((1, 1, 8, 8), kernel=(3, 3), stride=(2, 2)) == (1, 1, 3, 3)
    assert pool_shape((1, 1, 8, 8), kernel=(3, 3), stride=(2, 2), pooling_convention="full") == (1, 1, 4, 4)
    assert pool_shape((1, 1, 8, 8), kernel=(2, 2)) == (1, 1, 7, 7)  # stride defaults to 1, not the kernel
    assert pool_shape((2, 3, 8, 5), global_pool=True) == (2, 3, 1, 1)
    assert pool_shape((2, 8, 6, 3), kernel=(2, 2), stride=(2, 2), layout="NHWC") == (2, 4, 3, 3)
    assert pool_shape((1, 1, 7), kernel=(3,), stride=(2,), pooling_convention="same") == (1, 1, 4)
    full = {"kernel": (3, 3), "stride": (2, 2), "pooling_convention": "full"}
    (out,) = run("Pooling", [np.zeros((1, 1, 8, 8), np.float32)], full)
    assert out.shape == (1, 1, 4, 4)


def test_avg_pooling_counts_padding_in_the_divisor_by_default():
    ones = np.ones((1, 1, 4, 4), np.float32)
    attrs = {"kernel": (2, 2), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg"}
    (out,) = run("Pooling", [ones], attrs)
    assert out[0, 0, 0, 0] == 0.25 and out[0, 0, 1, 1] == 1.0
    (out,) = run("Pooling", [ones], {**attrs, "count_include_pad": False})
    np.testing.assert_array_equal(out, np.ones((1, 1, 3, 3)))


def test_avg_pooling_full_edge_windows_divide_by_cells_inside():
    data = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    (out,) = run(
        "Pooling",
        [data],
        {"kernel": (3, 3), "stride": (2, 2), "pool_type": "avg", "pooling_convention": "full"},
    )
    assert out[0, 0, 0, 1] == 7.5  # mean of the 6 cells 3, 4, 7, 8, 11, 12
    np.testing.assert_array_equal(out[0, 0], [[6.0, 7.5], [12.0, 13.5]])


def test_max_pooling_pads_with_minus_infinity():
    (out,) = run("Pooling", [np.full((1, 1, 3, 3), -5.0, np.float32)], {"kernel": (3, 3), "pad": (1, 1)})
    np.testing.assert_array_equal(out, np.full((1, 1, 3, 3), -5.0))


def direct_pooling(x, kernel, stride, pad, reduce):
    """2-D pooling by loops over windows of the padded input (padding is NaN, skipped by `reduce`)."""
    padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad], constant_values=np.nan)
    sizes = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(x.shape[2:], pad, kernel, stride)]
    out = np.zeros(x.shape[:2] + tuple(sizes))
    for n, c, i, j in product(range(x.shape[0]), range(x.shape[1]), *map(range, sizes)):
        cells = padded[
            n, c, i * stride[0] : i * stride[0] + kernel[0], j * stride[1] : j * stride[1] + kernel[1]
        ]
        out[n, c, i, j] = reduce(cells[~np.isnan(cells)])
    return out


@pytest.mark.parametrize("pool_type, reduce", [("max", np.max), ("sum", np.sum)])
def test_pooling_matches_direct_loops(pool_type, reduce):
    x = normal(2, 3, 7, 6, seed=7, dtype=np.float64)
    attrs = {"kernel": (3, 2), "stride": (2, 2), "pad": (1, 1), "pool_type": pool_type}
    out = run("Pooling", [x], attrs)[0]
    np.testing.assert_allclose(out, direct_pooling(x, (3, 2), (2, 2), (1, 1), reduce), rtol=1e-12)


def test_avg_pooling_without_padding_cells_matches_direct_mean():
    x = normal(1, 2, 5, 7, seed=8, dtype=np.float64)
    attrs = {
        "kernel": (3, 3),
        "stride": (2, 3),
        "pad": (1, 1),
        "pool_type": "avg",
        "count_include_pad": False,
    }
    (out,) = run("Pooling", [x], attrs)
    np.testing.assert_allclose(out, direct_pooling(x, (3, 3), (2, 3), (1, 1), np.mean), rtol=1e-12)


def test_lp_pooling_is_the_p_norm_of_each_window():
    data = np.array([[[3.0, 4.0]]], np.float32)
    expected = {1: 7.0, 2: 5.0, 3: 91 ** (1 / 3)}
    for p, value in expected.items():
        (out,) = run("Pooling", [data], {"kernel": (2,), "pool_type": "lp", "p_value": p})
        np.testing.assert_allclose(out, [[[value]]], rtol=1e-6)


def test_global_pooling_reduces_the_whole_spatial_extent():
    x = normal(2, 3, 4, 5, 3, seed=9, dtype=np.float64)
    (avg,) = run("Pooling", [x], {"global_pool": True, "pool_type": "avg", "kernel": (2, 2, 2)})
    np.testing.assert_allclose(avg, x.mean(axis=(2, 3, 4), keepdims=True), rtol=1e-12)
    (largest,) = run("Pooling", [x], {"global_pool": True})
    np.testing.assert_array_equal(largest, x.max(axis=(2, 3, 4), keepdims=True))


def test_3d_max_pooling_matches_blockwise_max():
    x = normal(1, 2, 4, 6, 2, seed=10)
    (out,) = run("Pooling", [x], {"kernel": (2, 2, 2), "stride": (2, 2, 2)})
    np.testing.assert_array_equal(out, x.reshape(1, 2, 2, 2, 3, 2, 1, 2).max(axis=(3, 5, 7)))


def test_max_pooling_counts_mxnets_hidden_workspace_only_in_json():
    """MXNet 1.9.1's build counts a workspace in JSON node_row_ptr (fixtures/mlpnet-symbol.json); Ember's
    Pooling has one output and only the JSON writer counts the workspace."""
    pooling = get_schema("Pooling")
    max_2d = pooling.parse_params({"kernel": "(2, 2)"})
    assert pooling.num_outputs(max_2d) == 1 and pooling.num_file_outputs(max_2d) == 2
    for attrs in (
        {"kernel": "(2, 2)", "pool_type": "avg"},
        {"kernel": "(2, 2)", "layout": "NHWC"},
        {"global_pool": "True"},
    ):
        assert pooling.num_file_outputs(pooling.parse_params(attrs)) == 1
    data = np.array([[[[1.0, 9.0, 2.0], [3.0, 4.0, 8.0], [7.0, 5.0, 6.0]]]], np.float32)
    (out,) = run("Pooling", [data], {"kernel": (2, 2)})
    np.testing.assert_array_equal(out, [[[[9.0, 9.0], [7.0, 8.0]]]])
    assert types("Pooling", {"kernel": (2, 2)}, {"data": "float64"}) == {"data": "float64", "output0": "float64"}


def test_pooling_nhwc_equals_transposed_nchw():
    x = normal(2, 3, 5, 4, seed=11)
    attrs = {"kernel": (2, 2), "pool_type": "avg", "pad": (1, 0)}
    (nchw,) = run("Pooling", [x], attrs)
    (nhwc,) = run("Pooling", [x.transpose(0, 2, 3, 1)], {**attrs, "layout": "NHWC"})
    np.testing.assert_allclose(nhwc, nchw.transpose(0, 2, 3, 1), rtol=1e-6)


def test_same_pooling_clips_the_last_window():
    data = np.array([[[1.0, 5.0, 2.0, 0.0, 3.0, 4.0, 9.0]]], np.float32)
    (out,) = run("Pooling", [data], {"kernel": (3,), "stride": (2,), "pooling_convention": "same"})
    np.testing.assert_array_equal(out, [[[5.0, 3.0, 9.0, 9.0]]])  # windows start at 0, 2, 4, 6


@pytest.mark.parametrize(
    "attrs, data, message",
    [
        ({"kernel": (5, 5)}, (1, 1, 4, 4), r"kernel size \(5, 5\) exceeds the padded input \(4,4\)"),
        ({}, (1, 1, 4, 4), "kernel is required unless global_pool is set"),
        ({"kernel": (2, 2), "pool_type": "lp"}, (1, 1, 4, 4), "lp pooling needs p_value 1, 2 or 3, got None"),
        ({"kernel": (2,)}, (1, 1, 4, 4), r"a 1-D kernel \(2,\) needs 3-D data, got 4-D"),
        ({"kernel": (2, 2)}, (4, 4), "Pooling needs 3-D, 4-D or 5-D data"),
        (
            {"kernel": (2, 2), "stride": (1,)},
            (1, 1, 4, 4),
            r"stride \(1,\) must have one entry per kernel axis",
        ),
    ],
)
def test_pooling_shape_errors(attrs, data, message):
    with pytest.raises(ShapeError, match=message):
        infer_shapes(one_node("Pooling", attrs), {"data": data})


# ---------------------------------------------------------------------------------------------
# BatchNorm


def batchnorm_inputs(shape, axis=1, seed=12):
    channels = shape[axis]
    data = normal(*shape, seed=seed, dtype=np.float64) * 3 + 1
    gamma, beta, mean = (normal(channels, seed=seed + i, dtype=np.float64) for i in (1, 2, 3))
    var = np.abs(normal(channels, seed=seed + 4, dtype=np.float64)) + 0.5
    return [data, gamma, beta, mean, var]


def test_batchnorm_training_normalises_by_batch_mean_and_biased_variance():
    inputs = batchnorm_inputs((4, 3, 2, 5))
    data, gamma, beta = inputs[:3]
    out, mean, var = run("BatchNorm", inputs, {"fix_gamma": False, "eps": 1e-3}, is_train=True)
    channel = (None, slice(None), None, None)
    expected_mean = np.array([data[:, c].mean() for c in range(3)])
    expected_var = np.array([((data[:, c] - data[:, c].mean()) ** 2).mean() for c in range(3)])
    expected = (
        gamma[channel] * (data - expected_mean[channel]) / np.sqrt(expected_var[channel] + 1e-3)
        + beta[channel]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(var, 1 / np.sqrt(expected_var + 1e-3), rtol=1e-12)  # MXNet's inverse std


def test_batchnorm_inference_uses_moving_statistics():
    data, gamma, beta, moving_mean, moving_var = inputs = batchnorm_inputs((3, 2, 4))
    out, mean, var = run("BatchNorm", inputs, {"fix_gamma": False})
    channel = (None, slice(None), None)
    expected = (
        gamma[channel] * (data - moving_mean[channel]) / np.sqrt(moving_var[channel] + 1e-3) + beta[channel]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_array_equal(mean, moving_mean)
    np.testing.assert_allclose(var, 1 / np.sqrt(moving_var + 1e-3), rtol=1e-12)


def test_batchnorm_use_global_stats_uses_moving_statistics_in_training():
    inputs = batchnorm_inputs((3, 2, 4))
    inference = run("BatchNorm", inputs, {"fix_gamma": False})
    training = run("BatchNorm", inputs, {"fix_gamma": False, "use_global_stats": True}, is_train=True)
    np.testing.assert_array_equal(training[0], inference[0])


def test_batchnorm_fix_gamma_treats_gamma_as_one():
    data, gamma, beta, moving_mean, moving_var = batchnorm_inputs((3, 2, 4))
    (fixed, *_) = run("BatchNorm", [data, gamma * 5, beta, moving_mean, moving_var], {"fix_gamma": True})
    (ones, *_) = run("BatchNorm", [data, np.ones(2), beta, moving_mean, moving_var], {"fix_gamma": False})
    np.testing.assert_array_equal(fixed, ones)


def test_batchnorm_channel_axis_may_be_last():
    inputs = batchnorm_inputs((6, 3), axis=1)
    data, gamma, beta = inputs[:3]
    out, mean, _ = run("BatchNorm", inputs, {"axis": -1, "fix_gamma": False, "eps": 1e-5}, is_train=True)
    np.testing.assert_allclose(mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        out, gamma * (data - data.mean(0)) / np.sqrt(data.var(0) + 1e-5) + beta, rtol=1e-12
    )


def test_batchnorm_infers_every_vector_from_data():
    inferred = shapes("BatchNorm", {}, {"data": (2, 5, 3, 3)})
    assert inferred == {
        "data": (2, 5, 3, 3),
        "gamma": (5,),
        "beta": (5,),
        "moving_mean": (5,),
        "moving_var": (5,),
        "output0": (2, 5, 3, 3),
        "output1": (5,),
        "output2": (5,),
    }
    assert shapes("BatchNorm", {"axis": -1}, {"data": (4, 7)})["gamma"] == (7,)


def test_batchnorm_wrong_gamma_shape_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"Provided = \[4\], inferred shape=\(5,\) at input 'gamma'"):
        infer_shapes(one_node("BatchNorm"), {"data": (2, 5, 3), "gamma": (4,)})


def test_batchnorm_float16_data_keeps_float32_statistics():
    inferred = types("BatchNorm", {}, {"data": "float16"})
    assert inferred == {
        "data": "float16",
        "gamma": "float32",
        "beta": "float32",
        "moving_mean": "float32",
        "moving_var": "float32",
        "output0": "float16",
        "output1": "float32",
        "output2": "float32",
    }
    data = normal(2, 3, dtype=np.float16)
    vectors = [np.ones(3, np.float32)] * 4
    out, mean, var = run("BatchNorm", [data] + vectors, is_train=True)
    assert (out.dtype, mean.dtype, var.dtype) == (np.float16, np.float32, np.float32)


# ---------------------------------------------------------------------------------------------
# Dropout


def test_dropout_in_training_zeroes_a_fraction_p_and_scales_survivors():
    ones = np.ones((200, 500), np.float32)
    out, mask = run("Dropout", [ones], {"p": 0.3}, is_train=True, seed=1)
    zeroed = np.mean(out == 0)
    assert abs(zeroed - 0.3) < 0.01
    np.testing.assert_array_equal(np.unique(out), np.array([0, 1 / 0.7], np.float32))
    np.testing.assert_array_equal(mask, out)


def test_dropout_is_identity_at_inference():
    x = normal(4, 5)
    out, mask = run("Dropout", [x], {"p": 0.5})
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(mask, np.ones((4, 5)))


def test_dropout_mode_always_drops_at_inference():
    out, _ = run("Dropout", [np.ones((100, 100), np.float32)], {"p": 0.5, "mode": "always"}, seed=2)
    assert 0.45 < np.mean(out == 0) < 0.55 and out.max() == 2.0


def test_dropout_axes_share_one_mask_value_along_them():
    out, mask = run("Dropout", [np.ones((50, 8, 40), np.float32)], {"p": 0.5, "axes": (1,)}, is_train=True)
    assert mask.shape == (50, 1, 40)
    assert np.all(out == out[:, :1, :]) and 0.4 < np.mean(out == 0) < 0.6
    assert shapes("Dropout", {"axes": (1,)}, {"data": (50, 8, 40)})["output1"] == (50, 1, 40)


def test_dropout_with_p_zero_is_identity_in_training():
    x = normal(3, 4)
    out, _ = run("Dropout", [x], {"p": 0.0}, is_train=True)
    np.testing.assert_array_equal(out, x)


# ---------------------------------------------------------------------------------------------
# LeakyReLU


def leaky(x, **attrs):
    return run("LeakyReLU", [np.array(x, np.float64)], attrs)[0]


def test_leaky_relu_values():
    np.testing.assert_allclose(leaky([-2.0, 0.0, 3.0], act_type="leaky", slope=0.1), [-0.2, 0.0, 3.0])
    np.testing.assert_allclose(leaky([-1.0, 2.0], act_type="elu", slope=1.0), [math.exp(-1) - 1, 2.0])
    np.testing.assert_allclose(
        leaky([-1.0, 2.0], act_type="selu"),
        [-1.0507009873554805 * 1.6732632423543772 * (1 - math.exp(-1)), 1.0507009873554805 * 2],
    )


def test_gelu_is_the_erf_form_observed_in_mxnet():
    np.testing.assert_allclose(leaky([-0.5], act_type="gelu"), [-0.15427], atol=5e-6)
    np.testing.assert_allclose(leaky([1.0, 0.0], act_type="gelu"), [0.8413447460685429, 0.0], rtol=1e-12)


def test_prelu_applies_one_slope_per_channel():
    data = -np.ones((2, 3, 2), np.float32)
    gamma = np.array([0.1, 0.2, 0.3], np.float32)
    (out,) = run("LeakyReLU", [data, gamma], {"act_type": "prelu"})
    np.testing.assert_allclose(out, -np.broadcast_to(gamma[None, :, None], (2, 3, 2)))


def test_prelu_infers_gamma_from_data_and_rejects_other_shapes():
    assert shapes("LeakyReLU", {"act_type": "prelu"}, {"data": (4, 6, 5)})["gamma"] == (6,)
    with pytest.raises(ShapeError, match=r"prelu's gamma must have shape \(C,\) = \(6,\), \(1,\)"):
        infer_shapes(one_node("LeakyReLU", {"act_type": "prelu"}), {"data": (4, 6, 5), "gamma": (5,)})


def test_rrelu_uses_random_slopes_in_training_and_their_mean_at_inference():
    x = -np.ones((40, 50))
    out, mask = run("LeakyReLU", [x], {"act_type": "rrelu"}, is_train=True)
    assert mask.min() >= 0.125 and mask.max() <= 0.334 and np.unique(mask).size > 1000
    np.testing.assert_array_equal(out, -mask)
    out, mask = run("LeakyReLU", [x], {"act_type": "rrelu"})
    np.testing.assert_allclose(out, np.full(x.shape, -(0.125 + 0.334) / 2))


# ---------------------------------------------------------------------------------------------
# Embedding


def test_embedding_clips_and_truncates_indices():
    weight = np.arange(6, dtype=np.float32).reshape(3, 2)
    data = np.array([5.0, -1.0, 1.7, 0.0], np.float32)
    (out,) = run("Embedding", [data, weight], {"input_dim": 3, "output_dim": 2})
    np.testing.assert_array_equal(out, weight[[2, 0, 1, 0]])


def test_embedding_shapes_and_dtypes():
    attrs = {"input_dim": 10, "output_dim": 4}
    assert shapes("Embedding", attrs, {"data": (2, 3)}) == {
        "data": (2, 3),
        "weight": (10, 4),
        "output0": (2, 3, 4),
    }
    assert types("Embedding", {**attrs, "dtype": "float16"}, {"data": "int32"})["output0"] == "float16"
    assert types("Embedding", attrs, {"data": "float32", "weight": "float64"})["output0"] == "float64"
    (out,) = run("Embedding", [np.array([1, 2], np.int32), normal(10, 4, dtype=np.float64)], attrs)
    assert out.dtype == np.float64 and out.shape == (2, 4)


# ---------------------------------------------------------------------------------------------
# softmax, log_softmax, SoftmaxActivation


def test_softmax_values():
    (out,) = run("softmax", [np.array([[1.0, 2.0, 3.0]], np.float32)])
    np.testing.assert_allclose(out, [[0.09003057, 0.24472847, 0.66524096]], rtol=1e-6)
    (hot,) = run("softmax", [np.array([[2.0, 4.0, 6.0]], np.float32)], {"temperature": 2.0})
    np.testing.assert_allclose(hot, out, rtol=1e-6)
    (columns,) = run("softmax", [np.array([[1.0, 5.0], [1.0, 5.0]])], {"axis": 0})
    np.testing.assert_allclose(columns, np.full((2, 2), 0.5))


def test_softmax_with_length_masks_each_row():
    data = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]], np.float32)
    (out,) = run("softmax", [data, np.array([2, 0])], {"use_length": True})
    np.testing.assert_allclose(out, [[0.26894142, 0.73105858, 0, 0], [0, 0, 0, 0]], rtol=1e-6)
    assert shapes("softmax", {"use_length": True, "axis": 1}, {"data": (2, 5, 3)})["length"] == (2, 3)


def test_softmax_dtype_parameter_sets_the_output_dtype():
    (out,) = run("softmax", [normal(2, 3)], {"dtype": "float64"})
    assert out.dtype == np.float64
    assert types("softmax", {"dtype": "float16"}, {"data": "float32"})["output0"] == "float16"


def test_log_softmax_is_the_log_of_softmax():
    x = normal(3, 5, seed=13, dtype=np.float64) * 10
    (log,) = run("log_softmax", [x])
    np.testing.assert_allclose(log, np.log(np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)), rtol=1e-9)
    with pytest.raises(ShapeError, match="log_softmax takes no length input"):
        infer_shapes(one_node("log_softmax", {"use_length": True}), {"data": (2, 3)})


def test_softmax_activation_channel_mode_normalises_axis_one():
    data = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)
    (out,) = run("SoftmaxActivation", [data], {"mode": "channel"})
    low, high = 1 / (1 + math.e**2), 1 / (1 + math.e**-2)
    np.testing.assert_allclose(out, [[[low, low], [high, high]]], rtol=1e-6)
    (rows,) = run("SoftmaxActivation", [data])
    np.testing.assert_allclose(rows, np.full((1, 2, 2), [1 / (1 + math.e), 1 / (1 + math.e**-1)]), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Loss heads


def test_softmax_output_forward_is_row_softmax():
    x = np.array([[1, 2, 3], [1, 1, 1], [0, 0, 5], [2, 1, 0]], np.float32)
    (out,) = run("SoftmaxOutput", [x, np.array([2, 0, 1, 0], np.float32)])
    np.testing.assert_allclose(out[0], [0.0900, 0.2447, 0.6652], atol=1e-4)
    np.testing.assert_allclose(out[1], [1 / 3] * 3, rtol=1e-6)


def test_softmax_output_modes_pick_the_softmax_axis():
    x = normal(2, 3, 4, seed=14, dtype=np.float64)
    label = np.zeros((2,))
    (flat,) = run("SoftmaxOutput", [x, label])
    np.testing.assert_allclose(flat.reshape(2, -1).sum(axis=1), [1.0, 1.0])
    (multi,) = run("SoftmaxOutput", [x, np.zeros((2, 4))], {"multi_output": True})
    np.testing.assert_allclose(multi, np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), rtol=1e-12)
    (last,) = run("SoftmaxOutput", [x, np.zeros((2, 3))], {"preserve_shape": True})
    np.testing.assert_allclose(last, np.exp(x) / np.exp(x).sum(axis=2, keepdims=True), rtol=1e-12)


def test_softmax_output_infers_the_label_shape():
    assert shapes("SoftmaxOutput", {}, {"data": (4, 3)})["label"] == (4,)
    assert shapes("SoftmaxOutput", {"preserve_shape": True}, {"data": (2, 5, 3)})["label"] == (2, 5)
    multi = {"multi_output": True}
    assert shapes("SoftmaxOutput", multi, {"data": (2, 3, 5, 5)})["label"] == (2, 25)
    assert shapes("SoftmaxOutput", multi, {"data": (2, 3, 5, 5), "label": (2, 5, 5)})["label"] == (2, 5, 5)
    assert shapes("SoftmaxOutput", multi, {"data": (2, 3, 5, 5), "label": (2, 1, 5, 5)})["label"] == (
        2,
        1,
        5,
        5,
    )
    assert shapes("SoftmaxOutput", {}, {"data": (4, 3), "label": (4, 3)})["label"] == (4, 3)


def test_softmax_output_rejects_a_wrong_label_shape():
    with pytest.raises(
        ShapeError, match=r"label shape \(2,3\) must be \(2,25\) or \(2,5,5\) or \(2,1,5,5\)"
    ):
        infer_shapes(
            one_node("SoftmaxOutput", {"multi_output": True}), {"data": (2, 3, 5, 5), "label": (2, 3)}
        )
    with pytest.raises(ShapeError, match=r"label shape \(3,\) must be \(4,\) for data \(4,3\)"):
        infer_shapes(one_node("Softmax"), {"data": (4, 3), "label": (3,)})


@pytest.mark.parametrize("op", ["LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput"])
def test_regression_label_shapes(op):
    assert shapes(op, {}, {"data": (5, 1)})["label"] == (5,)
    assert shapes(op, {}, {"data": (3, 7)})["label"] == (3, 7)
    assert shapes(op, {}, {"data": (3, 7), "label": (3, 7, 1)})["label"] == (3, 7, 1)
    with pytest.raises(ShapeError, match=r"label shape \(21,\) must have the data's first dim 3 and size 21"):
        infer_shapes(one_node(op), {"data": (3, 7), "label": (21,)})


def test_regression_forward_values():
    x = np.array([[-1.0, 0.0, 2.0]], np.float32)
    label = np.zeros((1, 3), np.float32)
    np.testing.assert_array_equal(run("LinearRegressionOutput", [x, label])[0], x)
    np.testing.assert_array_equal(run("MAERegressionOutput", [x, label])[0], x)
    np.testing.assert_allclose(
        run("LogisticRegressionOutput", [x, label])[0], 1 / (1 + np.exp(-x)), rtol=1e-6
    )


@pytest.mark.parametrize("op", ["MakeLoss", "make_loss", "BlockGrad", "stop_gradient"])
def test_identity_heads_pass_data_through(op):
    x = normal(3, 4, seed=15, dtype=np.float64)
    (out,) = run(op, [x])
    np.testing.assert_array_equal(out, x)
    assert out is not x

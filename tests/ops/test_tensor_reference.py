"""The tensor ops against independent expectations: MXNet's documented examples, NumPy written out
here, two-way shape inference, and the exact errors bad shapes and attributes raise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ember.compiler import Graph, Node, Value, run, variable
from ember.compiler.ops import get_schema
from ember.compiler.ops.params import format_value
from ember.compiler.passes import infer_shapes, infer_types
from ember.runtime.errors import GraphError, MXNetError, ShapeError, TypeInferenceError


def op_graph(op: str, num_inputs: int | None = None, **attrs) -> tuple[Graph, Node]:
    """A graph with one node of `op`, its inputs variables named after the schema's inputs."""
    strings = {k: format_value(v) for k, v in attrs.items()}
    schema = get_schema(op)
    names = schema.input_names(schema.parse_params(strings))
    names = names if num_inputs is None else names[:num_inputs]
    node = Node(schema.name, tuple(variable(n).output() for n in names), strings, "node")
    return Graph([Value(node, i) for i in range(node.num_outputs)]), node


def apply(op: str, *arrays, **attrs) -> list[np.ndarray]:
    """The reference outputs of `op` on `arrays` (lists become float32 arrays)."""
    arrays = [np.asarray(a, dtype=np.float32) if isinstance(a, list) else a for a in arrays]
    graph, node = op_graph(op, len(arrays), **attrs)
    return run(graph, {v.node.name: a for v, a in zip(node.inputs, arrays)})


def apply1(op: str, *arrays, **attrs) -> np.ndarray:
    (out,) = apply(op, *arrays, **attrs)
    return out


def shapes_of(op: str, *shapes, **attrs) -> list:
    """Inferred output shapes of `op` from input shapes (None for an unknown one)."""
    graph, node = op_graph(op, len(shapes), **attrs)
    known = infer_shapes(graph, {v.node.name: s for v, s in zip(node.inputs, shapes)})
    return [known.get(v) for v in graph.outputs]


def assert_array(actual: np.ndarray, expected, dtype="float32") -> None:
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=np.float64), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# elementwise

X = np.array([-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5], dtype=np.float32)


@pytest.mark.parametrize(
    "op, expected",
    [
        ("round", [-3, -2, -1, 0, 1, 2, 3]),  # halves away from zero (std::round)
        ("rint", [-3, -2, -1, 0, 0, 1, 2]),  # floor at exact halves, as MXNet documents rint
        ("fix", [-2, -1, -0, 0, 0, 1, 2]),
        ("floor", [-3, -2, -1, 0, 0, 1, 2]),
        ("ceil", [-2, -1, -0, 0, 1, 2, 3]),
        ("sign", [-1, -1, -1, 0, 1, 1, 1]),
        ("relu", [0, 0, 0, 0, 0.5, 1.5, 2.5]),
        ("abs", [2.5, 1.5, 0.5, 0, 0.5, 1.5, 2.5]),
        ("negative", [2.5, 1.5, 0.5, 0, -0.5, -1.5, -2.5]),
        ("square", [6.25, 2.25, 0.25, 0, 0.25, 2.25, 6.25]),
        ("softsign", [-2.5 / 3.5, -1.5 / 2.5, -0.5 / 1.5, 0, 0.5 / 1.5, 1.5 / 2.5, 2.5 / 3.5]),
        ("sigmoid", [1 / (1 + math.exp(-v)) for v in X]),
        ("log_sigmoid", [-math.log1p(math.exp(-v)) for v in X]),
        ("erf", [math.erf(v) for v in X]),
        ("logical_not", [0, 0, 0, 1, 0, 0, 0]),
    ],
)
def test_unary_values(op, expected):
    assert_array(apply1(op, X), expected)


def test_unary_math_values():
    x = np.array([0.25, 1.0, 4.0], dtype=np.float32)
    assert_array(apply1("sqrt", x), [0.5, 1, 2])
    assert_array(apply1("rsqrt", x), [2, 1, 0.5])
    assert_array(apply1("reciprocal", x), [4, 1, 0.25])
    assert_array(apply1("log2", x), [-2, 0, 2])
    assert_array(apply1("cbrt", np.array([8.0, -27.0], np.float32)), [2, -3])
    assert_array(apply1("exp", np.array([0.0, 1.0], np.float64)), [1, math.e], "float64")


def test_unary_on_integers_computes_in_float_and_truncates():
    x = np.array([2, 9, 10], dtype=np.int32)
    assert_array(apply1("sqrt", x), [1, 3, 3], "int32")
    assert_array(apply1("square", x), [4, 81, 100], "int32")
    assert_array(apply1("_copy", x), [2, 9, 10], "int32")
    assert apply1("identity", x).dtype == np.int32  # alias of _copy


def test_zeros_like_ones_like_keep_dtype():
    x = np.array([[1, 2, 3]], dtype=np.int32)
    assert_array(apply1("zeros_like", x), [[0, 0, 0]], "int32")
    assert_array(apply1("ones_like", x), [[1, 1, 1]], "int32")


def test_binary_values():
    a = np.array([1.0, 4.0, -6.0], np.float32)
    b = np.array([2.0, 4.0, 4.0], np.float32)
    assert_array(apply1("elemwise_add", a, b), [3, 8, -2])
    assert_array(apply1("elemwise_sub", a, b), [-1, 0, -10])
    assert_array(apply1("elemwise_mul", a, b), [2, 16, -24])
    assert_array(apply1("elemwise_div", a, b), [0.5, 1, -1.5])
    assert_array(apply1("_power", a, b), [1, 256, 1296])
    assert_array(apply1("_maximum", a, b), [2, 4, 4])
    assert_array(apply1("_minimum", a, b), [1, 4, -6])
    assert_array(apply1("_hypot", np.array([3.0], np.float32), np.array([4.0], np.float32)), [5])


def test_comparisons_give_zero_one_in_the_input_dtype():
    a, b = np.array([1, 4, 6], np.int32), np.array([2, 4, 4], np.int32)
    assert_array(apply1("_greater", a, b), [0, 0, 1], "int32")
    assert_array(apply1("_equal", a, b), [0, 1, 0], "int32")
    assert_array(apply1("_lesser_equal", a.astype(np.float32), b.astype(np.float32)), [1, 1, 0])
    assert_array(apply1("_logical_xor", [0, 1, 2], [0, 0, 3]), [0, 1, 0])


def test_integer_division_truncates_and_mod_follows_the_divisor():
    a, b = np.array([-7, 7, 7, 5], np.int32), np.array([2, -2, 3, 0], np.int32)
    assert_array(apply1("elemwise_div", a, b), [-3, -3, 2, 0], "int32")
    assert_array(apply1("_mod", a, b), [1, -1, 1, 0], "int32")
    assert_array(apply1("_mod", [-7.0, 7.0], [3.0, -3.0]), [2, -2])


def test_scalar_ops():
    x = np.array([1.0, 2.0, 4.0], np.float32)
    assert_array(apply1("_plus_scalar", x, scalar=1), [2, 3, 5])
    assert_array(apply1("_minus_scalar", x, scalar=1), [0, 1, 3])
    assert_array(apply1("_rminus_scalar", x, scalar=1), [0, -1, -3])
    assert_array(apply1("_div_scalar", x, scalar=2), [0.5, 1, 2])
    assert_array(apply1("_rdiv_scalar", x, scalar=2), [2, 1, 0.5])
    assert_array(apply1("_power_scalar", x, scalar=2), [1, 4, 16])
    assert_array(apply1("_rpower_scalar", x, scalar=2), [2, 4, 16])
    assert_array(apply1("_rmod_scalar", x, scalar=3), [0, 1, 3])
    assert_array(apply1("_maximum_scalar", x, scalar=2), [2, 2, 4])
    assert_array(apply1("_greater_equal_scalar", x, scalar=2), [0, 1, 1])
    assert_array(apply1("_not_equal_scalar", x, scalar=2), [1, 0, 1])


def test_scalar_is_cast_to_integer_data_unless_is_int_is_false():
    x = np.array([1, 2, 3], np.int32)
    assert_array(apply1("_mul_scalar", x, scalar=2.7), [2, 4, 6], "int32")
    assert_array(apply1("_mul_scalar", x, scalar=2.5, is_int=False), [2.5, 5, 7.5], "float64")
    graph, _ = op_graph("_mul_scalar", scalar=2.5, is_int=False)
    assert infer_types(graph, {"data": "int32"})[graph.outputs[0]] == "float64"


def test_clip_and_cast():
    assert_array(apply1("clip", [-2.0, 0.3, 5.0], a_min=-1, a_max=1), [-1, 0.3, 1])
    assert_array(apply1("clip", np.array([-3, 2, 9], np.int32), a_min=-1.5, a_max=4.7), [-1, 2, 4], "int32")
    assert_array(apply1("Cast", [-1.7, 1.7, 2.0], dtype="int32"), [-1, 1, 2], "int32")
    assert_array(apply1("cast", np.array([1, 2], np.int32), dtype="float16"), [1, 2], "float16")
    graph, _ = op_graph("Cast", dtype="float64")
    assert infer_types(graph, {"data": "int8"})[graph.outputs[0]] == "float64"


def test_where_with_same_shape_and_row_condition():
    x, y = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.array([[5.0, 6.0], [7.0, 8.0]], np.float32)
    assert_array(apply1("where", np.array([[0, 1], [-1, 0]], np.float32), x, y), [[5, 2], [3, 8]])
    assert_array(apply1("where", np.array([1, 0], np.float32), x, y), [[1, 2], [7, 8]])
    assert shapes_of("where", (2,), (2, 3), None) == [(2, 3)]
    with pytest.raises(ShapeError, match="1-D condition must have length x.shape\\[0\\] = 2, got 3"):
        shapes_of("where", (3,), (2, 3), (2, 3))


def test_elementwise_errors():
    with pytest.raises(ShapeError) as err:
        shapes_of("elemwise_add", (2, 3), (1, 3))
    assert "elemwise_add" in str(err.value) and "must have the same shape (no broadcasting)" in str(err.value)
    graph, _ = op_graph("elemwise_mul")
    with pytest.raises(TypeInferenceError, match="must have the same dtype"):
        infer_types(graph, {"lhs": "float32", "rhs": "int32"})


def test_elemwise_mul_infers_the_missing_operand_both_ways():
    graph, node = op_graph("elemwise_mul")
    shapes = infer_shapes(graph, {"lhs": (4, 5)})
    assert shapes[node.inputs[1]] == (4, 5)
    assert shapes[graph.outputs[0]] == (4, 5)
    shapes = infer_shapes(graph, {"lhs": (4, None), "rhs": (None, 5)})
    assert shapes[node.inputs[0]] == (4, 5)


# ---------------------------------------------------------------------------------------------
# broadcast


def test_broadcast_binary_values():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    assert_array(apply1("broadcast_add", a, [10.0, 20.0, 30.0]), [[11, 22, 33], [14, 25, 36]])
    assert_array(apply1("broadcast_plus", a, [[1.0], [2.0]]), [[2, 3, 4], [6, 7, 8]])
    assert_array(apply1("broadcast_minus", a, [1.0]), [[0, 1, 2], [3, 4, 5]])
    assert_array(apply1("broadcast_greater", a, [[2.0], [5.0]]), [[0, 0, 1], [0, 0, 1]])
    assert_array(apply1("broadcast_maximum", a, [[2.0], [5.0]]), [[2, 2, 3], [5, 5, 6]])
    assert_array(apply1("broadcast_logical_or", [[0.0], [1.0]], [0.0, 2.0]), [[0, 1], [1, 1]])
    assert shapes_of("broadcast_mul", (3, 1, 5), (4, 1)) == [(3, 4, 5)]
    assert shapes_of("broadcast_mul", (None, 1), (4,)) == [(None, 4)]


def test_broadcast_incompatible_shapes():
    with pytest.raises(
        ShapeError, match=r"operands could not be broadcast together with shapes \(2,3\) \(4,\)"
    ):
        shapes_of("broadcast_add", (2, 3), (4,))


def test_broadcast_to_axis_like():
    assert_array(apply1("broadcast_to", [[1.0, 2.0, 3.0]], shape=(2, 0)), [[1, 2, 3], [1, 2, 3]])
    x = np.array([[[1.0], [2.0]]], np.float32)
    assert_array(apply1("broadcast_axis", x, axis=2, size=3), [[[1, 1, 1], [2, 2, 2]]])
    assert apply1("broadcast_axes", x, axis=(0, 2), size=(2, 3)).shape == (2, 2, 3)
    assert_array(apply1("broadcast_like", [[1.0, 2.0, 3.0]], np.zeros((2, 3), np.float32)), [[1, 2, 3]] * 2)
    assert_array(
        apply1("broadcast_like", [9.0], np.zeros(5, np.float32), lhs_axes=(0,), rhs_axes=(-1,)), [9] * 5
    )
    with pytest.raises(ShapeError, match=r"array cannot be broadcast from \(2,3\) to \(4,3\)"):
        shapes_of("broadcast_to", (2, 3), shape=(4, 3))
    with pytest.raises(ShapeError, match="broadcasting axis 1 must have size 1, got 2"):
        shapes_of("broadcast_axis", (1, 2), axis=1, size=3)


# ---------------------------------------------------------------------------------------------
# reductions

DATA = np.array(
    [[[1, 2], [2, 3], [1, 3]], [[1, 4], [4, 3], [5, 2]], [[7, 1], [7, 2], [7, 3]]], dtype=np.float32
)


def test_sum_documented_examples():
    assert_array(apply1("sum", DATA, axis=1), [[4, 8], [10, 9], [21, 6]])
    assert_array(apply1("sum", DATA, axis=(1, 2)), [12, 19, 27])
    assert_array(apply1("sum_axis", DATA), [58])
    assert_array(apply1("sum", DATA, axis=0, exclude=True), [12, 19, 27])


def test_reduction_shapes_and_values():
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    assert_array(apply1("mean", x, axis=0), [2.5, 3.5, 4.5])
    assert_array(apply1("max", x, axis=1, keepdims=True), [[3], [6]])
    assert_array(apply1("min_axis", x), [1])
    assert_array(apply1("prod", x, axis=-1), [6, 120])
    assert_array(apply1("nansum", [np.nan, 1.0, 2.0]), [3])
    assert_array(apply1("nanprod", [np.nan, 2.0, 3.0]), [6])
    assert_array(apply1("mean", np.array([1, 2, 4], np.int32)), [2], "int32")
    assert shapes_of("sum", (2, 3, 4)) == [(1,)]
    assert shapes_of("sum", (2, 3, 4), axis=(), keepdims=True) == [(1, 1, 1)]
    assert shapes_of("sum", (2, 3, 4), axis=(), exclude=True) == [(1,)]
    assert shapes_of("sum", (2, 3, 4), axis=(0, 1, 2)) == [(1,)]
    assert shapes_of("sum", (2, 3, 4), axis=1, exclude=True, keepdims=True) == [(1, 3, 1)]
    assert shapes_of("sum", (2, None, 4), axis=0) == [(None, 4)]


def test_argmax_argmin_documented_examples():
    x = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], np.float32)
    assert_array(apply1("argmax", x, axis=0), [1, 1, 1])
    assert_array(apply1("argmax", x, axis=1), [2, 2])
    assert_array(apply1("argmax", x, axis=1, keepdims=True), [[2], [2]])
    assert_array(apply1("argmin", x, axis=0), [0, 0, 0])
    assert_array(apply1("argmax", x), [5])
    assert_array(apply1("argmax", np.array([[3, 9], [9, 1]], np.int32), axis=1), [1, 0], "int32")
    assert shapes_of("argmax", (4,), axis=0) == [(1,)]


def test_norm_documented_examples():
    x = np.array([[[1, 2], [3, 4]], [[2, 2], [5, 6]]], dtype=np.float32)
    assert_array(apply1("norm", x, ord=2, axis=1), [[3.1622777, 4.472136], [5.3851647, 6.3245554]])
    assert_array(apply1("norm", x, ord=1, axis=1), [[4, 6], [7, 8]])
    assert_array(apply1("norm", x), [math.sqrt(99)])
    assert_array(
        apply1("norm", x, axis=(1, 2), keepdims=True, out_dtype="float64"),
        [[[math.sqrt(30)]], [[math.sqrt(69)]]],
        "float64",
    )
    with pytest.raises(ShapeError, match="norm supports ord=1 and ord=2 only, got ord=3"):
        shapes_of("norm", (2, 3), ord=3)


def test_reduction_axis_errors():
    with pytest.raises(ShapeError, match="reduction axis 3 is out of range for 2 dimensions"):
        shapes_of("sum", (2, 3), axis=3)
    with pytest.raises(ShapeError, match=r"reduction axes \(1, -1\) have duplicates"):
        shapes_of("mean", (2, 3), axis=(1, -1))
    with pytest.raises(ShapeError, match="axis -3 is out of range for 2 dimensions"):
        shapes_of("argmax", (2, 3), axis=-3)


# ---------------------------------------------------------------------------------------------
# Reshape and the other shape ops

RESHAPE_VERIFIED = [  # MXNET_COMPAT.md 2.7, observed with MXNet 1.9.1
    ((2, 3, 4), (4, 0, 2), False, (4, 3, 2)),
    ((2, 3, 4), (2, 0, 0), False, (2, 3, 4)),
    ((2, 3, 4), (-1,), False, (24,)),
    ((2, 3, 4), (-2,), False, (2, 3, 4)),
    ((2, 3, 4), (2, -2), False, (2, 3, 4)),
    ((2, 3, 4), (-2, 1, 1), False, (2, 3, 4, 1, 1)),
    ((2, 3, 4), (-3, 4), False, (6, 4)),
    ((2, 3, 4), (-3, -2), False, (6, 4)),
    ((2, 3, 4), (-4, 1, 2, -2), False, (1, 2, 3, 4)),
    ((2, 3, 4), (2, -4, -1, 3, -2), False, (2, 1, 3, 4)),
    ((2, 3, 4), (0, -1), False, (2, 12)),
    ((2, 3, 4), (-1, 0), False, (8, 3)),
    ((10, 5, 4), (-1, 0), False, (40, 5)),
    ((10, 5, 4), (-1, 0), True, (50, 4)),
]


@pytest.mark.parametrize("data, shape, reverse, expected", RESHAPE_VERIFIED)
def test_reshape_verified_examples(data, shape, reverse, expected):
    assert shapes_of("Reshape", data, shape=shape, reverse=reverse) == [expected]
    x = np.arange(math.prod(data), dtype=np.float32).reshape(data)
    out = apply1("reshape", x, shape=shape, reverse=reverse)
    assert out.shape == expected
    np.testing.assert_array_equal(out.reshape(-1), np.arange(math.prod(data)))


def test_reshape_legacy_target_shape():
    assert shapes_of("Reshape", (2, 3, 4), target_shape=(0, 4)) == [(6, 4)]
    assert shapes_of("Reshape", (2, 3, 4), target_shape=(7, 0, 3), keep_highest=True) == [(2, 4, 3)]


def test_reshape_infers_the_one_unknown_input_dim_from_the_output():
    data, weight = variable("data"), variable("w")
    reshaped = Node("Reshape", (data.output(),), {"shape": "(-1, 4)"}, "r")
    total = Node("elemwise_add", (reshaped.output(), weight.output()), {}, "add")
    shapes = infer_shapes(Graph([total.output()]), {"data": (None, 3, 4), "w": (6, 4)})
    assert shapes[data.output()] == (2, 3, 4)
    assert shapes[reshaped.output()] == (6, 4)


def test_reshape_errors():
    with pytest.raises(
        ShapeError, match=r"target shape \(5,4\) has 20 elements but the input \(2,3,4\) has 24"
    ):
        shapes_of("Reshape", (2, 3, 4), shape=(5, -1))
    with pytest.raises(ShapeError, match=r"only one dim of the target shape can be inferred \(-1\)"):
        shapes_of("Reshape", (2, 3, 4), shape=(-1, -1))
    with pytest.raises(ShapeError, match="split dims 5, 2 do not divide the input dim 2"):
        shapes_of("Reshape", (2, 3, 4), shape=(-4, 5, 2, -2))
    with pytest.raises(ShapeError, match="shape code -3 reads past the input's 2 dims"):
        shapes_of("Reshape", (2, 3), shape=(2, -3))


def test_flatten_transpose_swapaxes_expand_dims_squeeze():
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    assert apply1("Flatten", x).shape == (1, 6)
    assert shapes_of("flatten", (7,)) == [(7, 1)]
    assert_array(apply1("transpose", [[1.0, 2.0], [3.0, 4.0]]), [[1, 3], [2, 4]])
    assert apply1("transpose", x, axes=(1, 0, 2)).shape == (2, 1, 3)
    np.testing.assert_array_equal(apply1("transpose", x, axes=(2, 0, 1)), np.transpose(x, (2, 0, 1)))
    assert_array(apply1("swapaxes", [[1.0, 2.0, 3.0]], dim1=0, dim2=1), [[1], [2], [3]])
    assert shapes_of("SwapAxis", (2, 3, 4), dim1=0, dim2=2) == [(4, 3, 2)]
    assert shapes_of("expand_dims", (2, 3), axis=-1) == [(2, 3, 1)]
    assert shapes_of("expand_dims", (2, 3), axis=0) == [(1, 2, 3)]
    assert shapes_of("squeeze", (1, 3, 1)) == [(3,)]
    assert shapes_of("squeeze", (1, 1)) == [(1,)]
    assert shapes_of("squeeze", (1, 3, 1), axis=2) == [(1, 3)]


def test_permutation_ops_infer_the_input_from_the_output():
    data, weight = variable("data"), variable("w")
    moved = Node("transpose", (data.output(),), {"axes": "(2, 0, 1)"}, "t")
    total = Node("elemwise_add", (moved.output(), weight.output()), {}, "add")
    shapes = infer_shapes(Graph([total.output()]), {"w": (4, 2, 3)})
    assert shapes[data.output()] == (2, 3, 4)


def test_shape_op_errors():
    with pytest.raises(ShapeError, match=r"cannot squeeze axis 1 of \(1,3\): its size 3 is not 1"):
        shapes_of("squeeze", (1, 3), axis=1)
    with pytest.raises(ShapeError, match=r"axes \(0, 0\) is not a permutation of the input's 2 axes"):
        shapes_of("transpose", (2, 3), axes=(0, 0))
    with pytest.raises(ShapeError, match="axis 3 is out of range for 3 dimensions"):
        shapes_of("expand_dims", (2, 3), axis=3)
    with pytest.raises(ShapeError, match="dim2 2 is out of range for 2 dimensions"):
        shapes_of("SwapAxis", (2, 3), dim1=0, dim2=2)


def test_concat_documented_example():
    x = [[1.0, 1.0], [2.0, 2.0]]
    y = [[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]
    z = [[6.0, 6.0], [7.0, 7.0], [8.0, 8.0]]
    assert_array(apply1("Concat", x, y, z, num_args=3, dim=0), x + y + z)
    assert_array(apply1("concat", y, z, num_args=2), [[3, 3, 6, 6], [4, 4, 7, 7], [5, 5, 8, 8]])


def test_concat_infers_other_dims_and_the_missing_concat_dim():
    assert shapes_of("Concat", (2, 3), (2, 4), num_args=2) == [(2, 7)]
    graph, node = op_graph("Concat", num_args=2)
    shapes = infer_shapes(graph, {"arg0": (2, 3)})
    assert shapes[node.inputs[1]] == (2, None)
    a, b, c = variable("a"), variable("b"), variable("c")
    joined = Node("Concat", (a.output(), b.output()), {"num_args": "2", "dim": "1"}, "cat")
    total = Node("elemwise_add", (joined.output(), c.output()), {}, "add")
    shapes = infer_shapes(Graph([total.output()]), {"a": (2, 3), "c": (2, 7)})
    assert shapes[b.output()] == (2, 4)


def test_concat_errors():
    with pytest.raises(ShapeError, match=r"inputs must match on every dim except dim 1: \(2,3\), \(4,3\)"):
        shapes_of("Concat", (2, 3), (4, 3), num_args=2)
    with pytest.raises(ShapeError, match="dim 2 is out of range for 2 dimensions"):
        shapes_of("Concat", (2, 3), (2, 3), num_args=2, dim=2)


def test_stack():
    out = apply1("stack", [1.0, 2.0], [3.0, 4.0], num_args=2, axis=1)
    assert_array(out, [[1, 3], [2, 4]])
    assert shapes_of("stack", (2, 3), None, (2, 3), num_args=3) == [(3, 2, 3)]
    with pytest.raises(ShapeError, match=r"all inputs must have one shape: \(2,3\), \(3,2\)"):
        shapes_of("stack", (2, 3), (3, 2), num_args=2)


def test_split_documented_examples():
    x = np.array([[[1.0], [2.0]], [[3.0], [4.0]], [[5.0], [6.0]]], np.float32)
    first, second = apply("SliceChannel", x, axis=1, num_outputs=2)
    assert_array(first, [[[1]], [[3]], [[5]]])
    assert_array(second, [[[2]], [[4]], [[6]]])
    first, _ = apply("split", x, axis=1, num_outputs=2, squeeze_axis=True)
    assert_array(first, [[1], [3], [5]])
    parts = apply("split", x, axis=0, num_outputs=3, squeeze_axis=True)
    assert [p.shape for p in parts] == [(2, 1)] * 3
    assert_array(parts[0], [[1], [2]])
    assert get_schema("split").all_output_names({"num_outputs": 1}) == ("output0",)


def test_split_infers_its_input_from_an_output():
    data, weight = variable("data"), variable("w")
    parts = Node("SliceChannel", (data.output(),), {"num_outputs": "3", "axis": "1"}, "s")
    total = Node("elemwise_add", (parts.output(2), weight.output()), {}, "add")
    shapes = infer_shapes(Graph([total.output()]), {"w": (4, 2)})
    assert shapes[data.output()] == (4, 6)
    assert shapes[parts.output(0)] == (4, 2)
    with pytest.raises(ShapeError, match="num_outputs=4 does not evenly divide dim 1 of size 6"):
        shapes_of("SliceChannel", (2, 6), num_outputs=4)


def test_slice_axis_documented_examples():
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    assert_array(apply1("slice_axis", x, axis=0, begin=1, end=3), [[5, 6, 7, 8], [9, 10, 11, 12]])
    assert_array(apply1("slice_axis", x, axis=1, begin=0, end=2), [[1, 2], [5, 6], [9, 10]])
    assert_array(apply1("slice_axis", x, axis=1, begin=-3, end=-1), [[2, 3], [6, 7], [10, 11]])
    assert_array(apply1("slice_axis", x, axis=1, begin=2, end=None), [[3, 4], [7, 8], [11, 12]])
    with pytest.raises(
        ShapeError, match="slice_axis begin=3, end=2 is not a non-empty range of an axis of size 4"
    ):
        shapes_of("slice_axis", (3, 4), axis=1, begin=3, end=2)
    with pytest.raises(ShapeError, match="axis 2 is out of range for 2 dimensions"):
        shapes_of("slice_axis", (3, 4), axis=2, begin=0, end=1)


def test_slice_documented_examples():
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    assert_array(apply1("slice", x, begin=(0, 1), end=(2, 4)), [[2, 3, 4], [6, 7, 8]])
    assert_array(apply1("slice", x, begin=(None, 0), end=(None, 3), step=(-1, 2)), [[9, 11], [5, 7], [1, 3]])
    assert shapes_of("slice", (3, 4), begin=(-10,), end=(100,)) == [(3, 4)]
    with pytest.raises(
        ShapeError, match="slice begin=2, end=1, step=1 selects nothing from an axis of size 3"
    ):
        shapes_of("slice", (3, 4), begin=(2,), end=(1,))


def test_tile_and_repeat_documented_examples():
    x = [[1.0, 2.0], [3.0, 4.0]]
    assert_array(apply1("tile", x, reps=(2, 3)), [[1, 2, 1, 2, 1, 2], [3, 4, 3, 4, 3, 4]] * 2)
    assert_array(apply1("tile", x, reps=(2,)), [[1, 2, 1, 2], [3, 4, 3, 4]])
    assert shapes_of("tile", (2, 2), reps=(2, 2, 3)) == [(2, 4, 6)]
    assert_array(apply1("repeat", x, repeats=2), [1, 1, 2, 2, 3, 3, 4, 4])
    assert_array(apply1("repeat", x, repeats=2, axis=1), [[1, 1, 2, 2], [3, 3, 4, 4]])
    assert_array(apply1("repeat", x, repeats=2, axis=0), [[1, 2], [1, 2], [3, 4], [3, 4]])
    assert_array(apply1("repeat", x, repeats=2, axis=-1), [[1, 1, 2, 2], [3, 3, 4, 4]])


# ---------------------------------------------------------------------------------------------
# indexing


def test_take_documented_examples_and_modes():
    x = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert_array(apply1("take", x, [[0.0, 1.0], [1.0, 2.0]]), [[[1, 2], [3, 4]], [[3, 4], [5, 6]]])
    v = [4.0, 5.0, 6.0]
    assert_array(apply1("take", v, [[0.0, 1.0], [1.0, 2.0]]), [[4, 5], [5, 6]])
    assert_array(apply1("take", v, [-1.0, 5.0]), [4, 6])
    assert_array(apply1("take", v, [-1.0, 4.0], mode="wrap"), [6, 5])
    assert_array(apply1("take", x, [1.0], axis=1), [[2], [4], [6]])
    assert shapes_of("take", (3, 4, 5), (2, 7), axis=1) == [(3, 2, 7, 5)]
    with pytest.raises(MXNetError, match="take operator contains indices out of bound"):
        apply1("take", v, [3.0], mode="raise")


def test_pick_documented_examples():
    x = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert_array(apply1("pick", x, [0.0, 1.0], axis=0), [1, 4])
    assert_array(apply1("pick", x, [0.0, 1.0, 0.0], axis=1), [1, 4, 5])
    assert_array(apply1("pick", x, [2.0, -1.0, -2.0], axis=1, mode="wrap"), [1, 4, 5])
    assert_array(apply1("pick", x, [[1.0], [0.0], [2.0]], axis=1, keepdims=True), [[2], [3], [6]])
    graph, node = op_graph("pick", axis=1)
    assert infer_shapes(graph, {"data": (3, 2)})[node.inputs[1]] == (3,)
    with pytest.raises(
        ShapeError, match=r"index must have shape \(3,\) \(data \(3,2\) without axis 1\), got \(2,\)"
    ):
        shapes_of("pick", (3, 2), (2,), axis=1)


def test_one_hot_documented_examples():
    assert_array(
        apply1("one_hot", [1.0, 0.0, 2.0, 0.0], depth=3), [[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0]]
    )
    out = apply1("one_hot", [1.0, 0.0, 2.0, 0.0], depth=3, on_value=8, off_value=1, dtype="int32")
    assert_array(out, [[1, 8, 1], [8, 1, 1], [1, 1, 8], [8, 1, 1]], "int32")
    assert apply1("one_hot", [[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]], depth=3).shape == (3, 2, 3)
    assert_array(apply1("one_hot", [3.0, -1.0], depth=3), [[0, 0, 0], [0, 0, 0]])
    graph, _ = op_graph("one_hot", depth=4, dtype="float64")
    assert infer_types(graph, {"indices": "int32"})[graph.outputs[0]] == "float64"


# ---------------------------------------------------------------------------------------------
# dot, batch_dot


def test_dot_documented_example_and_numpy():
    x = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    y = np.arange(7, -1, -1, dtype=np.float32).reshape(2, 2, 2)
    out = apply1("dot", x, y)
    # MXNet's docstring gives out[0,0,1,1] = 0 (true) and sum = 84, which no contraction of these
    # arrays produces; np.tensordot is the oracle for the sum.
    assert out.shape == (2, 2, 2, 2) and out[0, 0, 1, 1] == 0
    assert out.sum() == np.tensordot(x, y, axes=1).sum() == 360
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    np.testing.assert_allclose(apply1("dot", a, b), np.einsum("ijk,kl->ijl", a, b), rtol=1e-12)
    a, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 5))
    np.testing.assert_allclose(
        apply1("dot", a, b, transpose_a=True), np.einsum("kij,kl->ijl", a, b), rtol=1e-12
    )
    a, b = rng.standard_normal((2, 4)), rng.standard_normal((5, 3, 4))
    np.testing.assert_allclose(
        apply1("dot", a, b, transpose_b=True), np.einsum("ik,jlk->ijl", a, b), rtol=1e-12
    )
    assert_array(apply1("dot", [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]), [32])
    assert_array(apply1("dot", [1.0, 2.0], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), [9, 12, 15])


def test_dot_shapes_and_errors():
    assert shapes_of("dot", (2, 3, 4), (4, 5)) == [(2, 3, 5)]
    assert shapes_of("dot", (3,), (3,)) == [(1,)]
    assert shapes_of("dot", (4, 3), (5, 3), transpose_b=True) == [(4, 5)]
    with pytest.raises(
        ShapeError, match=r"dot shape error: \(2,3\) X \(4,5\): lhs's contracted dim 3 differs"
    ):
        shapes_of("dot", (2, 3), (4, 5))
    with pytest.raises(ShapeError, match="dot cannot transpose vectors"):
        shapes_of("dot", (3,), (3,), transpose_a=True)


def test_batch_dot():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 4, 5))
    np.testing.assert_allclose(apply1("batch_dot", a, b), np.einsum("bmk,bkn->bmn", a, b), rtol=1e-12)
    a2, b2 = np.swapaxes(a, 1, 2).copy(), np.swapaxes(b, 1, 2).copy()
    out = apply1("batch_dot", a2, b2, transpose_a=True, transpose_b=True)
    np.testing.assert_allclose(out, np.einsum("bmk,bkn->bmn", a, b), rtol=1e-12)
    assert shapes_of("batch_dot", (3, 2, 4), (3, 4, 5)) == [(3, 2, 5)]
    with pytest.raises(
        ShapeError, match=r"batch_dot shape error: \(3,2,4\) X \(3,5,5\): lhs's contracted dim 4"
    ):
        shapes_of("batch_dot", (3, 2, 4), (3, 5, 5))
    with pytest.raises(ShapeError, match=r"batch_dot shape error: \(3,2,4\) X \(2,4,5\): batch dims differ"):
        shapes_of("batch_dot", (3, 2, 4), (2, 4, 5))
    with pytest.raises(
        ShapeError, match=r"batch_dot needs two inputs of one rank >= 3, got \(2,4\) X \(4,5\)"
    ):
        shapes_of("batch_dot", (2, 4), (4, 5))


# ---------------------------------------------------------------------------------------------
# attributes


def test_unknown_and_missing_attributes_raise_graph_errors():
    with pytest.raises(GraphError, match="unknown attribute 'axes' for operator sum"):
        shapes_of("sum", (2, 3), axes=1)
    with pytest.raises(GraphError, match="operator clip is missing its required attribute 'a_max'"):
        shapes_of("clip", (2, 3), a_min=0)
    with pytest.raises(GraphError, match="bad value for attribute 'mode' of operator take"):
        shapes_of("take", (2, 3), (2,), mode="bogus")
    with pytest.raises(GraphError, match="missing its required attribute 'num_args'"):
        op_graph("Concat")
    with pytest.raises(GraphError, match="unknown operator 'no_such_op'"):
        get_schema("no_such_op")


def test_schemas_declare_mxnet_inputs_and_defaults():
    assert get_schema("where").input_names({}) == ("condition", "x", "y")
    assert get_schema("take").input_names({}) == ("a", "indices")
    assert get_schema("pick").input_names({}) == ("data", "index")
    assert get_schema("dot").input_names({}) == ("lhs", "rhs")
    assert get_schema("Concat").input_names({"num_args": 2, "dim": 1}) == ("arg0", "arg1")
    assert get_schema("pick").parse_params({}) == {"axis": -1, "keepdims": False, "mode": "clip"}
    assert get_schema("take").parse_params({}) == {"axis": 0, "mode": "clip"}
    assert get_schema("one_hot").parse_params({"depth": "3"}) == {
        "depth": 3,
        "on_value": 1.0,
        "off_value": 0.0,
        "dtype": "float32",
    }
    assert get_schema("Reshape").parse_params({}) == {
        "shape": (),
        "reverse": False,
        "target_shape": (),
        "keep_highest": False,
    }
    assert get_schema("SliceChannel").parse_params({"num_outputs": "2"}) == {
        "num_outputs": 2,
        "axis": 1,
        "squeeze_axis": False,
    }


def test_add_n_sums_its_inputs_and_requires_one_shape():
    from ember.compiler import Graph, Node, run, variable
    from ember.compiler.passes import infer_shapes
    from ember.runtime.errors import ShapeError

    xs = [variable(f"x{i}") for i in range(3)]
    node = Node("add_n", tuple(x.output() for x in xs), {"num_args": "3"}, "sum3")
    arrays = [np.full((2, 2), float(i + 1), np.float32) for i in range(3)]
    (out,) = run(Graph([node.output()]), {f"x{i}": a for i, a in enumerate(arrays)})
    np.testing.assert_array_equal(out, np.full((2, 2), 6.0, np.float32))
    with pytest.raises(ShapeError, match="sum3 \\(add_n\\)"):
        infer_shapes(Graph([node.output()]), {"x0": (2, 2), "x1": (2, 3)})

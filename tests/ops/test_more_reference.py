"""Array creation, ordering and layout ops against independent expectations: MXNet's documented
examples, NumPy results written out here, two-way shape inference through a neighbouring op, and the
exact errors bad shapes, dtypes and attributes raise."""

from __future__ import annotations

import numpy as np
import pytest
from ember.compiler import Graph, Node, Value, run, variable
from ember.compiler.ops import get_schema
from ember.compiler.ops.params import format_value
from ember.compiler.passes import infer_shapes, infer_types
from ember.runtime.errors import GraphError, MXNetError, ShapeError, TypeInferenceError


def make_node(op: str, inputs=(), name: str = "node", **attrs) -> Node:
    return Node(get_schema(op).name, tuple(inputs), {k: format_value(v) for k, v in attrs.items()}, name)


def op_graph(op: str, num_inputs: int | None = None, **attrs) -> tuple[Graph, Node]:
    """A graph with one node of `op` (every output, hidden ones too), inputs named after the schema's."""
    schema = get_schema(op)
    names = schema.input_names(schema.parse_params({k: format_value(v) for k, v in attrs.items()}))
    names = names if num_inputs is None else names[:num_inputs]
    node = make_node(op, [variable(n).output() for n in names], **attrs)
    return Graph([Value(node, i) for i in range(node.num_outputs)]), node


def apply(op: str, *arrays, **attrs) -> list[np.ndarray]:
    """The reference outputs of `op` on `arrays` (lists become float32 arrays)."""
    arrays = [np.asarray(a, dtype=np.float32) if isinstance(a, list) else a for a in arrays]
    graph, node = op_graph(op, len(arrays), **attrs)
    return run(graph, {v.node.name: a for v, a in zip(node.inputs, arrays)})


def apply1(op: str, *arrays, **attrs) -> np.ndarray:
    return apply(op, *arrays, **attrs)[0]


def shapes_of(op: str, *shapes, **attrs) -> list:
    """Inferred output shapes of `op` from input shapes (None for an unknown one)."""
    graph, node = op_graph(op, len(shapes), **attrs)
    known = infer_shapes(graph, {v.node.name: s for v, s in zip(node.inputs, shapes)})
    return [known.get(v) for v in graph.outputs]


def types_of(op: str, *dtypes, **attrs) -> list:
    graph, node = op_graph(op, len(dtypes), **attrs)
    known = infer_types(graph, {v.node.name: t for v, t in zip(node.inputs, dtypes)})
    return [known.get(v) for v in graph.outputs]


def added_to(node: Node, shape: tuple) -> dict:
    """Shapes inferred for `elemwise_add(node, x)` with x of `shape`: the node's shape comes backward."""
    total = make_node("elemwise_add", [node.output(), variable("x").output()], name="add")
    return infer_shapes(Graph([total.output()]), {"x": shape})


def assert_array(actual: np.ndarray, expected, dtype="float32") -> None:
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=np.float64), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# _zeros, _ones, _full


def test_fill_values_and_dtypes():
    assert_array(apply1("_zeros", shape=(2, 3)), np.zeros((2, 3)))
    assert_array(apply1("_ones", shape=(1, 3), dtype="int32"), [[1, 1, 1]], "int32")
    assert_array(apply1("_zeros", shape=(2,), dtype="bool", ctx="gpu(0)"), [False, False], "bool")
    assert_array(apply1("_full", shape=(2, 2), value=2.5), [[2.5, 2.5], [2.5, 2.5]])
    # static_cast<DType>(value): integers truncate toward zero
    assert_array(apply1("_full", shape=(3,), value=-1.7, dtype="int64"), [-1, -1, -1], "int64")
    assert_array(apply1("_full", shape=(1,), value=0.1, dtype="float64"), [0.1], "float64")


def test_fill_shape_is_legacy_and_two_way():
    assert shapes_of("_zeros", shape=(2, 0, 3)) == [(2, None, 3)]
    assert shapes_of("_ones", shape=()) == [None]
    assert types_of("_full", value=1, dtype="float16") == ["float16"]
    # A known consumer gives the shape where `shape` leaves it open.
    node = make_node("_zeros")
    assert added_to(node, (4, 5))[node.output()] == (4, 5)
    node = make_node("_ones", shape=(4, 0))
    assert added_to(node, (4, 5))[node.output()] == (4, 5)


def test_fill_errors():
    with pytest.raises(
        ShapeError, match=r"must have the same shape .* lhs=\(2,4\) \(from 'node'\), rhs=\(2,3\)"
    ):
        added_to(make_node("_zeros", shape=(2, 4)), (2, 3))
    with pytest.raises(ShapeError, match=r"shape \(2, -1\) cannot have negative dims"):
        shapes_of("_zeros", shape=(2, -1))
    with pytest.raises(MXNetError, match=r"the reference needs a fully known `shape`, got \(2,\?\)") as err:
        apply("_ones", shape=(2, 0))
    assert err.type is MXNetError
    with pytest.raises(
        GraphError,
        match="bad value for attribute 'dtype' of operator _zeros: expected one of float32, float64, "
        "float16, uint8, int8, int32, int64, bool, got 'bfloat16'",
    ):
        shapes_of("_zeros", shape=(2,), dtype="bfloat16")
    with pytest.raises(
        GraphError, match="bad value for attribute 'dtype' of operator _full: expected one of .*, got 'bool'"
    ):
        shapes_of("_full", shape=(2,), value=1, dtype="bool")
    with pytest.raises(GraphError, match="operator _full is missing its required attribute 'value'"):
        shapes_of("_full", shape=(2,))


# ---------------------------------------------------------------------------------------------
# _arange


@pytest.mark.parametrize(
    "attrs, expected, dtype",
    [  # MXNet's documented examples of arange
        ({"start": 3}, [0, 1, 2], "float32"),
        ({"start": 2, "stop": 6}, [2, 3, 4, 5], "float32"),
        ({"start": 2, "stop": 6, "step": 2}, [2, 4], "float32"),
        ({"start": 2, "stop": 6, "step": 1.5, "repeat": 2}, [2, 2, 3.5, 3.5, 5, 5], "float32"),
        ({"start": 2, "stop": 6, "step": 2, "repeat": 3, "dtype": "int32"}, [2, 2, 2, 4, 4, 4], "int32"),
        # and NumPy's: a negative step counts down, the stop excluded
        ({"start": 2, "stop": -1, "step": -0.5, "dtype": "float64"}, [2, 1.5, 1, 0.5, 0, -0.5], "float64"),
        ({"start": 10, "stop": 0, "step": -3, "dtype": "uint8"}, [10, 7, 4, 1], "uint8"),
        # an integer kernel truncates step 0.5 to 0, so every element is start (length from the doubles)
        ({"start": 1, "stop": 4, "step": 0.5, "dtype": "int64"}, [1, 1, 1, 1, 1, 1], "int64"),
    ],
)
def test_arange_values(attrs, expected, dtype):
    assert_array(apply1("_arange", **attrs), expected, dtype)
    assert shapes_of("_arange", **attrs) == [(len(expected),)]
    assert types_of("_arange", **attrs) == [dtype]


def test_arange_infer_range_takes_its_length_from_the_graph():
    assert shapes_of("_arange", start=1, infer_range=True) == [None]
    node = make_node("_arange", start=1, infer_range=True)
    assert added_to(node, (4,))[node.output()] == (4,)
    with pytest.raises(MXNetError, match="the reference needs `stop`: with infer_range") as err:
        apply("_arange", start=1, infer_range=True)
    assert err.type is MXNetError


def test_arange_errors():
    with pytest.raises(ShapeError, match="_arange step cannot be 0"):
        shapes_of("_arange", start=0, stop=3, step=0)
    with pytest.raises(ShapeError, match="_arange repeat must be positive, got 0"):
        shapes_of("_arange", start=3, repeat=0)
    with pytest.raises(ShapeError, match=r"_arange range \(start, stop, step\) = \(5, 2, 1\) is empty"):
        shapes_of("_arange", start=5, stop=2)
    with pytest.raises(ShapeError, match=r"_arange range \(start, stop, step\) = \(0, 3, -1\) is empty"):
        shapes_of("_arange", start=0, stop=3, step=-1)


# ---------------------------------------------------------------------------------------------
# _eye


def test_eye_values():
    assert_array(apply1("_eye", N=3), [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert_array(apply1("_eye", N=2, M=3, k=1, dtype="int32"), [[0, 1, 0], [0, 0, 1]], "int32")
    assert_array(apply1("_eye", N=3, M=2, k=-1, dtype="float64"), [[0, 0], [1, 0], [0, 1]], "float64")
    assert_array(apply1("_eye", N=2, k=5), [[0, 0], [0, 0]])
    assert shapes_of("_eye", N=4, M=0) == [(4, 4)]


def test_eye_errors():
    with pytest.raises(ShapeError, match="_eye N and M must be non-negative, got N=-2, M=0"):
        shapes_of("_eye", N=-2)
    with pytest.raises(GraphError, match="operator _eye is missing its required attribute 'N'"):
        shapes_of("_eye")


# ---------------------------------------------------------------------------------------------
# sort, argsort, topk

X = np.array([[0.3, 0.2, 0.4], [0.1, 0.3, 0.2]], np.float32)  # MXNet's topk and argsort examples
S = np.array([[1, 4], [3, 1]], np.float32)  # MXNet's sort example


def test_sort_documented_examples():
    assert_array(apply1("sort", S), [[1, 4], [1, 3]])
    assert_array(apply1("sort", S, axis=None), [1, 1, 3, 4])
    assert_array(apply1("sort", S, axis=0), [[1, 1], [3, 4]])
    assert_array(apply1("sort", S, is_ascend=False), [[4, 1], [3, 1]])


def test_sort_has_hidden_int32_indices():
    schema = get_schema("sort")
    params = schema.parse_params({})
    assert (schema.num_outputs(params), schema.num_visible_outputs(params)) == (2, 1)
    values, indices = apply("sort", np.array([[5, -2, 9]], np.int32))
    assert_array(values, [[-2, 5, 9]], "int32")
    assert_array(indices, [[1, 0, 2]], "int32")
    assert types_of("sort", "float64") == ["float64", "int32"]
    assert shapes_of("sort", (2, 1, 3), axis=None) == [(6,), (6,)]


def test_argsort_documented_examples():
    assert_array(apply1("argsort", X), [[1, 0, 2], [0, 2, 1]])
    assert_array(apply1("argsort", X, axis=0), [[1, 0, 1], [0, 1, 0]])
    assert_array(apply1("argsort", X, axis=None), [3, 1, 5, 0, 4, 2])
    assert_array(apply1("argsort", X, is_ascend=False, dtype="int64"), [[2, 0, 1], [1, 2, 0]], "int64")


def test_ties_keep_input_order_both_ways():
    ties = np.array([3, 1, 3, 1, 2], np.float32)
    assert_array(apply1("argsort", ties), [1, 3, 4, 0, 2])
    assert_array(apply1("argsort", ties, is_ascend=False), [0, 2, 4, 1, 3])
    assert_array(apply1("topk", ties, k=2), [0, 2])


def test_topk_documented_examples():
    assert_array(apply1("topk", X), [[2], [1]])
    assert_array(apply1("topk", X, ret_typ="value", k=2), [[0.4, 0.3], [0.3, 0.2]])
    assert_array(apply1("topk", X, ret_typ="value", k=2, is_ascend=1), [[0.2, 0.3], [0.1, 0.2]])
    assert_array(apply1("topk", X, axis=0, ret_typ="value", k=2), [[0.3, 0.3, 0.4], [0.1, 0.2, 0.2]])
    values, indices = apply("topk", X, ret_typ="both", k=2)
    assert_array(values, [[0.4, 0.3], [0.3, 0.2]])
    assert_array(indices, [[2, 0], [1, 2]])


def test_topk_mask_flattened_and_all():
    assert_array(apply1("topk", X, ret_typ="mask", k=2), [[1, 0, 1], [0, 1, 1]])
    assert_array(apply1("topk", X, axis=None, ret_typ="mask", k=2), [[1, 0, 1], [0, 0, 0]])
    values, indices = apply("topk", X, axis=None, ret_typ="both", k=3, dtype="int32")
    assert_array(values, [0.4, 0.3, 0.3])
    assert_array(indices, [2, 0, 4], "int32")
    assert_array(apply1("topk", X, k=0, ret_typ="value"), [[0.4, 0.3, 0.2], [0.3, 0.2, 0.1]])
    ints = np.array([[4, -1, 7]], np.int32)
    assert_array(apply1("topk", ints, ret_typ="mask", k=1, is_ascend=True), [[0, 1, 0]], "int32")


def test_topk_outputs_and_dtypes():
    schema = get_schema("topk")
    counts = {
        ret_typ: (schema.num_outputs(p), schema.num_visible_outputs(p))
        for ret_typ in ("value", "indices", "mask", "both")
        for p in [schema.parse_params({"ret_typ": ret_typ})]
    }
    assert counts == {"value": (2, 1), "indices": (1, 1), "mask": (1, 1), "both": (2, 2)}
    assert types_of("topk", "int32") == ["float32"]
    assert types_of("topk", "int32", ret_typ="value") == ["int32", "int32"]
    assert types_of("topk", "float64", ret_typ="both", dtype="uint8") == ["float64", "uint8"]
    assert types_of("topk", "int8", ret_typ="mask") == ["int8"]
    assert shapes_of("topk", (4, 5, 6), axis=1, k=2, ret_typ="both") == [(4, 2, 6), (4, 2, 6)]
    assert shapes_of("topk", (4, 5, 6), axis=None, k=7) == [(7,)]
    assert shapes_of("topk", (4, None, 6), axis=-1, k=2) == [(4, None, 2)]


def test_ordering_errors():
    with pytest.raises(ShapeError, match=r"k=4 must be between 1 and the 3 elements of axis 1 of \(2,3\)"):
        shapes_of("topk", (2, 3), k=4)
    with pytest.raises(ShapeError, match=r"k=7 must be between 1 and the 6 elements of the flattened input"):
        shapes_of("topk", (2, 3), axis=None, k=7)
    with pytest.raises(ShapeError, match="axis 2 is out of range for 2 dimensions"):
        shapes_of("sort", (2, 3), axis=2)
    with pytest.raises(
        ShapeError, match="index dtype uint8 cannot represent the indices of 300 elements exactly"
    ):
        shapes_of("argsort", (2, 300), dtype="uint8")
    assert shapes_of("topk", (2, 300), ret_typ="value", dtype="uint8") == [(2, 1), (2, 1)]
    with pytest.raises(TypeInferenceError, match=r"sort does not support float16 input \(MXNet 1.9.1 has no"):
        types_of("sort", "float16")
    with pytest.raises(TypeInferenceError, match="topk does not support bool input"):
        types_of("topk", "bool", ret_typ="indices")
    with pytest.raises(GraphError, match="bad value for attribute 'ret_typ' of operator topk"):
        shapes_of("topk", (2, 3), ret_typ="values")


# ---------------------------------------------------------------------------------------------
# Pad

# MXNet's documented example: plane (0, 0) of its (2, 2, 2, 3) input
PLANE = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
IMAGE = np.stack([np.stack([PLANE, PLANE + 6]), np.stack([PLANE + 10, PLANE + 16])])
WIDTHS = (0, 0, 0, 0, 1, 1, 1, 1)


def test_pad_modes():
    edge = apply1("pad", IMAGE, mode="edge", pad_width=WIDTHS)
    assert edge.shape == (2, 2, 4, 5)
    assert_array(edge[0, 0], [[1, 1, 2, 3, 3], [1, 1, 2, 3, 3], [4, 4, 5, 6, 6], [4, 4, 5, 6, 6]])
    constant = apply1("Pad", IMAGE, mode="constant", constant_value=0, pad_width=WIDTHS)
    assert_array(constant[0, 0], [[0, 0, 0, 0, 0], [0, 1, 2, 3, 0], [0, 4, 5, 6, 0], [0, 0, 0, 0, 0]])
    reflect = apply1("Pad", IMAGE, mode="reflect", pad_width=WIDTHS)
    assert_array(
        reflect[1, 1],
        [[21, 20, 21, 22, 21], [18, 17, 18, 19, 18], [21, 20, 21, 22, 21], [18, 17, 18, 19, 18]],
    )
    ints = np.arange(4, dtype=np.int32).reshape(1, 1, 2, 2)
    assert_array(
        apply1("Pad", ints, constant_value=-2.7, pad_width=(0, 0, 0, 0, 0, 1, 1, 0)),
        [[[[-2, 0, 1], [-2, 2, 3], [-2, -2, -2]]]],
        "int32",
    )


def test_pad_volume_and_shapes():
    volume = np.ones((1, 1, 1, 1, 2), np.float32)
    out = apply1("Pad", volume, constant_value=5, pad_width=(0, 0, 0, 0, 1, 0, 0, 0, 0, 1))
    assert_array(out, [[[[[5, 5, 5]], [[1, 1, 5]]]]])
    assert shapes_of("Pad", (2, 3, None, 4), pad_width=WIDTHS) == [(2, 3, None, 6)]


def test_pad_errors():
    with pytest.raises(ShapeError, match=r"Pad supports 4-D and 5-D input only, got 3-D input \(2,3,4\)"):
        shapes_of("Pad", (2, 3, 4), pad_width=(0, 0, 1, 1, 1, 1))
    with pytest.raises(ShapeError, match=r"Pad cannot pad the first two axes \(batch and channel\)"):
        shapes_of("Pad", (2, 3, 4, 5), pad_width=(0, 0, 1, 1, 0, 0, 0, 0))
    with pytest.raises(ShapeError, match=r"pad_width \(0, 0, 0, 0, 1, 1\) must have 2 \* ndim = 8 entries"):
        shapes_of("Pad", (2, 3, 4, 5), pad_width=(0, 0, 0, 0, 1, 1))
    with pytest.raises(ShapeError, match=r"pad_width \(0, 0, 0, 0, -1, 0, 0, 0\) cannot be negative"):
        shapes_of("Pad", (2, 3, 4, 5), pad_width=(0, 0, 0, 0, -1, 0, 0, 0))
    with pytest.raises(
        ShapeError,
        match=r"reflect padding needs pad widths smaller than the axis: \(0, 2\) on axis 2 of size 2",
    ):
        shapes_of("Pad", (1, 1, 2, 5), mode="reflect", pad_width=(0, 0, 0, 0, 0, 2, 1, 1))
    with pytest.raises(GraphError, match="operator Pad is missing its required attribute 'pad_width'"):
        shapes_of("Pad", (1, 1, 2, 5))


# ---------------------------------------------------------------------------------------------
# reverse


def test_reverse_documented_examples():
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    assert_array(apply1("reverse", x, axis=0), [[5, 6, 7, 8, 9], [0, 1, 2, 3, 4]])
    assert_array(apply1("flip", x, axis=1), [[4, 3, 2, 1, 0], [9, 8, 7, 6, 5]])
    assert_array(apply1("reverse", x, axis=(0, 1)), [[9, 8, 7, 6, 5], [4, 3, 2, 1, 0]])
    # Each listed axis is flipped once, so an axis listed twice is back in order.
    assert_array(apply1("reverse", x, axis=(1, 1)), x)


def test_reverse_shape_is_two_way():
    node = make_node("reverse", [variable("data").output()], axis=(1,))
    shapes = added_to(node, (2, 3))
    assert shapes[node.inputs[0]] == (2, 3)
    assert shapes_of("reverse", (4, 1, 3), axis=(2,)) == [(4, 1, 3)]


def test_reverse_errors():
    with pytest.raises(ShapeError, match=r"reverse axis -1 must be in \[0, 2\) for 2-D input"):
        shapes_of("reverse", (2, 3), axis=-1)
    with pytest.raises(ShapeError, match=r"reverse axis 2 must be in \[0, 2\) for 2-D input"):
        shapes_of("reverse", (2, 3), axis=(0, 2))


# ---------------------------------------------------------------------------------------------
# reshape_like


def test_reshape_like_documented_examples():
    x = np.arange(1, 7, dtype=np.float32)
    assert_array(apply1("reshape_like", x, np.zeros((3, 2), np.float32)), [[1, 2], [3, 4], [5, 6]])
    ranges = {"lhs_begin": 0, "lhs_end": 1, "rhs_begin": 0, "rhs_end": 2}
    assert shapes_of("reshape_like", (30, 7), (15, 2, 4), **ranges) == [(15, 2, 7)]
    ranges = {"lhs_begin": 0, "lhs_end": 2, "rhs_begin": 1, "rhs_end": 2}
    assert shapes_of("reshape_like", (3, 5), (1, 15, 4), **ranges) == [(15,)]
    ranges = {"lhs_begin": -1, "lhs_end": None, "rhs_begin": 1, "rhs_end": None}
    assert shapes_of("reshape_like", (30, 12), (4, 2, 2, 3), **ranges) == [(30, 2, 2, 3)]


def test_reshape_like_dtype_and_partial_shapes():
    out = apply1("reshape_like", np.array([[1, 2, 3], [4, 5, 6]], np.int32), np.zeros(6, np.float64))
    assert_array(out, [1, 2, 3, 4, 5, 6], "int32")
    assert types_of("reshape_like", "int8", "float32") == ["int8"]
    assert shapes_of("reshape_like", (None, 3), (4, 3), lhs_begin=0, lhs_end=1, rhs_begin=0, rhs_end=1) == [
        (4, 3)
    ]


def test_reshape_like_errors():
    with pytest.raises(
        ShapeError, match=r"cannot reshape lhs \(2,3\) \(6 elements\) to \(4,\) \(4 elements\)"
    ):
        shapes_of("reshape_like", (2, 3), (4,))
    with pytest.raises(
        ShapeError, match="lhs_begin=1, lhs_end=1 is not a non-empty range of the lhs's 2 dims"
    ):
        shapes_of("reshape_like", (2, 3), (6,), lhs_begin=1, lhs_end=1)
    with pytest.raises(
        ShapeError, match="rhs_begin=None, rhs_end=3 is not a non-empty range of the rhs's 2 dims"
    ):
        shapes_of("reshape_like", (2, 3), (3, 2), rhs_end=3)


# ---------------------------------------------------------------------------------------------
# slice_like


def test_slice_like_documented_examples():
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    y = np.zeros((2, 3), np.float32)
    assert_array(apply1("slice_like", x, y), [[1, 2, 3], [5, 6, 7]])
    assert_array(apply1("slice_like", x, y, axes=(0, 1)), [[1, 2, 3], [5, 6, 7]])
    assert_array(apply1("slice_like", x, y, axes=(0,)), [[1, 2, 3, 4], [5, 6, 7, 8]])
    assert_array(apply1("slice_like", x, y, axes=(-1,)), [[1, 2, 3], [5, 6, 7], [9, 10, 11]])
    # inputs of different ranks are allowed with axes in both
    assert shapes_of("slice_like", (2, 3, 4, 5), (1, 2, 3), axes=(0, 2)) == [(1, 3, 3, 5)]


def test_slice_like_dtype():
    out = apply1("slice_like", np.array([[1, 2, 3], [4, 5, 6]], np.int32), np.zeros((1, 2), np.float64))
    assert_array(out, [[1, 2]], "int32")
    assert types_of("slice_like", "uint8", "float32") == ["uint8"]


def test_slice_like_errors():
    with pytest.raises(
        ShapeError,
        match=r"slice_like with no axes slices every axis, so data \(2,3,4,5\) and shape_like \(1,2,3\) need",
    ):
        shapes_of("slice_like", (2, 3, 4, 5), (1, 2, 3))
    with pytest.raises(ShapeError, match="slice_like axis 1: shape_like's size 4 exceeds data's size 3"):
        shapes_of("slice_like", (2, 3), (2, 4))
    with pytest.raises(ShapeError, match=r"slice_like axis 2 exceeds the 2 dims of shape_like \(1,1\)"):
        shapes_of("slice_like", (2, 3, 4), (1, 1), axes=(2,))
    with pytest.raises(ShapeError, match="slice_like axis -4 is out of range for 3 dimensions"):
        shapes_of("slice_like", (2, 3, 4), (1, 1, 1), axes=(-4,))

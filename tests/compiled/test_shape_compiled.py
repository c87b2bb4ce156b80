"""Compiled shape, slicing, join, layout, indexing and array-creation ops against the reference
interpreter, beyond the registry's cases: sizes above and not multiples of 16, size-1 axes, every
parameter the references implement (negative steps, every pad mode, every index mode, out-of-range
and float indices, every creation dtype), training-sized shapes, and chains where these ops fuse with
elementwise ops (their inputs then arrive as lazy expressions, not buffers)."""

from __future__ import annotations

import numpy as np
import pytest

from ember.compiler import Graph, Node, RefContext, Value, evaluate, variable
from ember.compiler.ops import get_schema
from ember.compiler.ops.params import format_value

from ..ops.harness import OpCase, input_dtypes, input_shapes
from .harness import assert_close, compile_graph

RNG = np.random.default_rng(7)


def _ints(low, high, shape, dtype=np.int32):
    return RNG.integers(low, high, shape).astype(dtype)


def _floats(shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _window(shape, begin, end, step=None):
    """The shape `slice` takes out of `shape` (Python slicing clamps as MXNet's slice does)."""
    steps = step or (None,) * len(begin)
    return np.empty(shape)[tuple(slice(b, e, s) for b, e, s in zip(begin, end, steps))].shape


INDICES_37 = np.array([0, 36, 37, 100, -1, -38, 5.9, -0.5, 12.2, np.nan], dtype=np.float32)

RESHAPE_CASES = [
    OpCase("Reshape", [(37, 130)], {"shape": (130, 37)}),
    OpCase("Reshape", [(100, 1, 28, 28)], {"shape": (0, -1)}),
    OpCase("Reshape", [(1,)], {"shape": (1, 1, 1)}),
    OpCase("Reshape", [(6, 37, 5)], {"shape": (-4, 2, -1, -2)}),
    OpCase("Reshape", [(6, 37, 5)], {"shape": (-1, 5), "reverse": True}),
    OpCase("Reshape", [_ints(-9, 9, (37, 2), np.int64)], {"shape": (2, 37)}),
    OpCase("Reshape", [_floats((4, 37), np.float16)], {"shape": (-3,)}),
    OpCase("Flatten", [(100, 1, 28, 28)]),
    OpCase("Flatten", [(37,)]),
    OpCase("Flatten", [(1, 1, 1)]),
    OpCase("squeeze", [(1, 37, 1, 130)]),
    OpCase("squeeze", [(1, 37, 1, 130)], {"axis": (2,)}),
    OpCase("squeeze", [(1, 1)]),
    OpCase("expand_dims", [(37, 130)], {"axis": 1}),
    OpCase("expand_dims", [(37, 130)], {"axis": -3}),
    OpCase("expand_dims", [(1,)], {"axis": 1}),
    OpCase("reshape_like", [(74, 130), (2, 37, 130)]),
    OpCase("reshape_like", [(37, 130), (130, 1)], {"lhs_begin": 1, "rhs_begin": 0}),
]

PERMUTATION_CASES = [
    OpCase("transpose", [(37, 130)]),
    OpCase("transpose", [(100, 784)]),
    OpCase("transpose", [(2, 37, 3, 5)], {"axes": (3, 1, 0, 2)}),
    OpCase("transpose", [(1, 37)], {"axes": (-1, 0)}),
    OpCase("transpose", [_ints(0, 255, (3, 17), np.uint8)]),
    OpCase("SwapAxis", [(3, 37, 5)], {"dim1": 0, "dim2": 2}),
    OpCase("SwapAxis", [(3, 37, 5)], {"dim1": 1, "dim2": 1}),
    OpCase("SwapAxis", [(1, 130)], {"dim1": -2, "dim2": -1}),
]

WINDOW_CASES = [
    OpCase("slice", [(37, 130)], {"begin": (3, -100), "end": (None, 129), "step": (2, 7)}),
    OpCase("slice", [(37, 130)], {"begin": (None, None), "end": (None, None), "step": (-1, -3)}),
    OpCase("slice", [(37, 130)], {"begin": (30, 120), "end": (-40, 2), "step": (-4, -17)}),
    OpCase("slice", [(37, 5, 3)], {"begin": (-500, 1), "end": (500, None), "step": (None, 3)}),
    OpCase("slice", [(1,)], {"begin": (0,), "end": (1,)}),
    OpCase("slice_axis", [(100, 784)], {"axis": 1, "begin": 100, "end": -100}),
    OpCase("slice_axis", [(130, 3)], {"axis": 0, "begin": -37, "end": None}),
    OpCase("slice_axis", [(1, 37)], {"axis": 0, "begin": 0, "end": 1}),
    OpCase("slice_like", [(37, 130), (1, 129)]),
    OpCase("slice_like", [(37, 130, 2), (5, 17)], {"axes": (1,)}),
    OpCase("slice_like", [(37, 130, 2), (20, 1, 1)], {"axes": (0, -1)}),
    OpCase("reverse", [(37, 130)], {"axis": (0, 1)}),
    OpCase("reverse", [(1, 37)], {"axis": (0, 1, 1)}),
    OpCase("reverse", [_ints(-100, 100, (4, 37), np.int64)], {"axis": (1,)}),
    OpCase("tile", [(37,)], {"reps": (3, 2)}),
    OpCase("tile", [(37, 5)], {"reps": (4, 3)}),
    OpCase("tile", [(2, 1, 37)], {"reps": (1, 3)}),
    OpCase("tile", [(1,)], {"reps": (130,)}),
    OpCase("repeat", [(37, 5)], {"repeats": 3, "axis": 0}),
    OpCase("repeat", [(37, 13)], {"repeats": 2}),
    OpCase("repeat", [(37, 5)], {"repeats": 1, "axis": -1}),
    OpCase("repeat", [(1,)], {"repeats": 130}),
    OpCase("tile", [(3, 5)], {"reps": (0, 2)}),  # empty results
    OpCase("repeat", [(3, 5)], {"repeats": 0, "axis": 1}),
    OpCase("repeat", [(3, 5)], {"repeats": 0}),
]

JOIN_CASES = [
    OpCase("Concat", [(100, 37), (100, 130), (100, 1)], {"num_args": 3, "dim": 1}),
    OpCase("Concat", [(100, 784), (100, 10)], {"num_args": 2, "dim": -1}),
    OpCase("Concat", [(5, 3), (1, 3), (37, 3), (2, 3)], {"num_args": 4, "dim": 0}),
    OpCase("Concat", [(37, 2)], {"num_args": 1, "dim": 1}),
    OpCase("Concat", [_ints(-5, 5, (3, 17)), _ints(-5, 5, (3, 2))], {"num_args": 2}),
    OpCase("stack", [(37, 130)] * 3, {"num_args": 3, "axis": 1}),
    OpCase("stack", [(37, 5)] * 2, {"num_args": 2, "axis": -1}),
    OpCase("stack", [(37,)], {"num_args": 1, "axis": 0}),
    OpCase("SliceChannel", [(100, 130)], {"num_outputs": 10, "axis": 1}),
    OpCase("SliceChannel", [(37, 4)], {"num_outputs": 4, "squeeze_axis": True}),
    OpCase("SliceChannel", [(5, 37, 2)], {"num_outputs": 5, "axis": 0, "squeeze_axis": True}),
    OpCase("SliceChannel", [(3, 37)], {"num_outputs": 37, "axis": -1}),
]

PAD_CASES = (
    [
        OpCase(
            "Pad",
            [(2, 3, 37, 13)],
            {"mode": mode, "pad_width": (0, 0, 0, 0, 5, 3, 1, 12), "constant_value": 2.5},
        )
        for mode in ("constant", "edge", "reflect")
    ]
    + [
        OpCase("Pad", [(1, 2, 3, 4, 37)], {"mode": mode, "pad_width": (0, 0, 0, 0, 2, 1, 0, 3, 36, 17)})
        for mode in ("constant", "edge", "reflect")
    ]
    + [
        OpCase("Pad", [(1, 1, 1, 37)], {"mode": "edge", "pad_width": (0, 0, 0, 0, 4, 2, 0, 0)}),
        OpCase(
            "Pad",
            [_ints(-9, 9, (1, 2, 3, 17))],
            {"pad_width": (0, 0, 0, 0, 1, 1, 2, 2), "constant_value": -7.9},
        ),
        OpCase(
            "Pad",
            [_floats((1, 2, 5, 3), np.float16)],
            {"pad_width": (0, 0, 0, 0, 1, 1, 2, 2), "constant_value": 1 / 3},
        ),
        OpCase(
            "Pad",
            [_floats((2, 2, 5, 7), np.float64)],
            {"mode": "reflect", "pad_width": (0, 0, 0, 0, 4, 4, 6, 6)},
        ),
    ]
)

INDEX_CASES = (
    [OpCase("take", [(37, 130), INDICES_37], {"mode": mode}) for mode in ("clip", "wrap")]
    + [
        OpCase("take", [(5, 37), INDICES_37.reshape(2, 5)], {"axis": 1, "mode": "wrap"}),
        OpCase("take", [(5, 37), INDICES_37.reshape(5, 2)], {"axis": -1, "mode": "clip"}),
        OpCase("take", [(1000, 64), _ints(0, 1000, (100, 7), np.int64)], {"mode": "raise"}),
        OpCase("take", [(4, 1, 3), _ints(0, 255, (17,), np.uint8)], {"axis": 0}),
        OpCase("take", [(130,), np.array([[3.0]], dtype=np.float64)]),
        OpCase("take", [(3, 37), np.array(40.0, dtype=np.float32)], {"axis": 1}),  # 0-d indices drop the axis
        OpCase("take", [(3, 37), np.zeros((0,), np.float32)], {"axis": 1}),
        OpCase("pick", [(100, 10), np.array(list(range(-20, 80)), dtype=np.float32) / 3], {"mode": "clip"}),
        OpCase("pick", [(100, 10), _ints(-30, 30, (100,)).astype(np.float32)], {"mode": "wrap"}),
        OpCase("pick", [(100, 10), _ints(0, 10, (100, 1), np.int64)], {"keepdims": True}),
        OpCase("pick", [(37, 130), _ints(-40, 40, (130,)).astype(np.float32)], {"axis": 0, "mode": "wrap"}),
        OpCase("pick", [(3, 37, 2), _ints(0, 37, (3, 1, 2), np.uint8)], {"axis": 1, "keepdims": True}),
        OpCase("pick", [(130,), np.array([129.5], dtype=np.float32)], {"axis": 0}),
    ]
    + [
        OpCase(
            "one_hot",
            [np.array([0.0, 9.0, -1.0, 10.0, 3.9, -0.5, 130.0, 5.0] * 13)],
            {"depth": 10, "dtype": dtype},
        )
        for dtype in ("float32", "float64", "float16", "uint8", "int8", "int32", "int64")
    ]
    + [
        OpCase("one_hot", [_ints(0, 130, (37, 3))], {"depth": 130, "on_value": -2.5, "off_value": 0.75}),
        OpCase("one_hot", [_ints(-2, 3, (100,), np.int64)], {"depth": 1, "dtype": "int32", "on_value": 7}),
    ]
)

CREATION_CASES = (
    [
        OpCase(op, [], {"shape": (37, 130), "dtype": dtype})
        for op in ("_zeros", "_ones")
        for dtype in ("float32", "float16", "int8", "uint8", "int64", "bool")
    ]
    + [
        OpCase("_full", [], {"shape": (37, 130), "value": value, "dtype": dtype})
        for value, dtype in (
            (1 / 3, "float16"),
            (3.7, "uint8"),
            (-1.5, "int8"),
            (-2.5, "float64"),
            (1e10, "int64"),
        )
    ]
    + [
        OpCase("_full", [], {"shape": (1,), "value": 4.25}),
        OpCase("_arange", [], {"start": 0, "stop": 130}),
        OpCase("_arange", [], {"start": 3.5, "stop": 40, "step": 0.3}),
        OpCase("_arange", [], {"start": 0, "stop": 37, "step": 1.5, "dtype": "float16"}),
        OpCase("_arange", [], {"start": 1, "stop": 38, "repeat": 4, "dtype": "int64"}),
        OpCase("_arange", [], {"start": 10, "stop": -27, "step": -1.7, "dtype": "int32"}),
        OpCase("_arange", [], {"start": 250.9, "stop": 270, "dtype": "uint8"}),
        OpCase("_arange", [], {"start": 120, "stop": 140, "step": 1, "repeat": 2, "dtype": "int8"}),
        OpCase("_arange", [], {"start": 37.5}),
        OpCase("_eye", [], {"N": 37, "M": 130, "k": 5}),
        OpCase("_eye", [], {"N": 130, "k": -100, "dtype": "int32"}),
        OpCase("_eye", [], {"N": 37, "M": 17, "k": 200, "dtype": "uint8"}),
        OpCase("_eye", [], {"N": 1, "dtype": "float16"}),
    ]
)

BACKWARD_SLICES = [
    ((37, 130), (3, None), (30, None), (4, -7)),
    ((37, 130), (-1, 120), (None, 2), (-5, -17)),
    ((37, 130, 2), (None,), (None,), None),
    ((130,), (1,), (-1,), (1,)),
    ((1, 37), (0, 36), (1, 37), None),
]

BACKWARD_CASES = (
    [
        OpCase(
            "_backward_slice",
            [_window(shape, b, e, s)],
            {"shape": shape, "begin": b, "end": e, "step": s or ()},
        )
        for shape, b, e, s in BACKWARD_SLICES
    ]
    + [
        OpCase("_backward_pad", [(2, 3, 45, 26)], {"mode": mode, "pad_width": (0, 0, 0, 0, 5, 3, 1, 12)})
        for mode in ("constant", "edge", "reflect")
    ]
    + [
        OpCase(
            "_backward_pad", [(1, 2, 6, 7, 90)], {"mode": mode, "pad_width": (0, 0, 0, 0, 2, 1, 0, 3, 36, 17)}
        )
        for mode in ("constant", "edge", "reflect")
    ]
    + [
        OpCase("_backward_pad", [(1, 1, 7, 37)], {"mode": "edge", "pad_width": (0, 0, 0, 0, 4, 2, 0, 0)}),
        OpCase(
            "_backward_pad",
            [_ints(-9, 9, (1, 2, 7, 9))],
            {"mode": "reflect", "pad_width": (0, 0, 0, 0, 2, 2, 1, 3)},
        ),
        OpCase(
            "_scatter_add_axis",
            [(100, 1), _ints(-3, 13, (100, 1)).astype(np.float32)],
            {"axis": 1, "size": 10},
        ),
        OpCase(
            "_scatter_add_axis", [(1, 100, 784), _ints(0, 37, (1, 100, 1), np.int64)], {"axis": 1, "size": 37}
        ),
        OpCase(
            "_scatter_add_axis",
            [(3, 130, 5), _ints(-300, 300, (3, 130, 1))],
            {"axis": -2, "size": 37, "mode": "wrap"},
        ),
        OpCase("_scatter_add_axis", [_ints(-5, 5, (4, 37)), _ints(0, 3, (4, 37))], {"axis": 1, "size": 3}),
        OpCase(
            "_scatter_add_axis",
            [_floats((2, 37), np.float16), np.zeros((1, 37), np.int32)],
            {"axis": 0, "size": 1},
        ),
        OpCase("_scatter_add_axis", [(37, 1), _ints(0, 130, (37, 1))], {"axis": 0, "size": 130}),
    ]
)

ALL = RESHAPE_CASES + PERMUTATION_CASES + WINDOW_CASES + JOIN_CASES + PAD_CASES + INDEX_CASES + CREATION_CASES
ALL += BACKWARD_CASES


def _compare(graph, feeds, shapes, dtypes, what):
    want = evaluate(graph, feeds, RefContext(False, np.random.default_rng(0)))
    exe, built = compile_graph(graph, shapes, dtypes)
    got = exe(**feeds)
    for position, value in enumerate(graph.outputs):
        assert_close(got[position], want[value], what=f"{what} output {position}")
    return built


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")
@pytest.mark.parametrize("case", ALL, ids=lambda c: c.id)
def test_op_matches_reference(case):
    graph, node = case.graph()
    arrays = case.arrays(np.random.default_rng(0))
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    _compare(graph, feeds, input_shapes(case), input_dtypes(case, arrays), case.id)


# -- chains: the ops read lazy (fused) inputs -----------------------------------------------------------


def _node(op: str, inputs, name: str, **attrs) -> Value:
    schema = get_schema(op)
    node = Node(schema.name, tuple(inputs), {k: format_value(v) for k, v in attrs.items()}, name)
    return Value(node, 0)


def _chain(x: Value, steps) -> Value:
    """x through `steps` (op, attrs), each wrapped in an elementwise op so every step reads a lazy input."""
    for position, (op, attrs) in enumerate(steps):
        x = _node(
            "exp",
            [_node(op, [_node("negative", [x], f"neg{position}")], f"{op}{position}", **attrs)],
            f"e{position}",
        )
    return x


CHAINS = {
    "reshapes": [
        ("expand_dims", {"axis": 1}),
        ("Reshape", {"shape": (37, 1, 130, 1)}),
        ("squeeze", {}),
        ("Reshape", {"shape": (130, 37)}),
        ("Flatten", {}),
    ],
    "windows": [
        ("transpose", {}),
        ("slice", {"begin": (3, None), "end": (-3, None), "step": (2, -3)}),
        ("reverse", {"axis": (0,)}),
        ("tile", {"reps": (2, 1)}),
        ("repeat", {"repeats": 2, "axis": 1}),
        ("SwapAxis", {"dim1": 0, "dim2": 1}),
        ("Reshape", {"shape": (1, 1, 26, -1)}),
        ("Pad", {"mode": "reflect", "pad_width": (0, 0, 0, 0, 3, 2, 1, 1)}),
        ("slice_axis", {"axis": 3, "begin": 1, "end": -1}),
    ],
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_chain_of_fused_ops_matches_reference(name):
    out = _chain(variable("x").output(), CHAINS[name])
    feeds = {"x": _floats((37, 130))}
    built = _compare(Graph([out]), feeds, {"x": (37, 130)}, {"x": "float32"}, name)
    assert len(built.program.kernels) == 1, "the whole chain should fuse into one kernel"


def test_reshapes_of_lazy_inputs_need_no_division():
    """Adding and dropping size-1 axes of a fused (lazy) input is read per dimension."""
    x = variable("x")
    out = _chain(x.output(), CHAINS["reshapes"][:3])
    built = _compare(Graph([out]), {"x": _floats((37, 130))}, {"x": (37, 130)}, {"x": "float32"}, "unit axes")
    text = str(built.program)
    assert "div(" not in text and "mod(" not in text, text


def test_concat_stack_split_in_one_kernel():
    """Joining lazy parts and splitting the result again, all fused."""
    a, b = variable("a"), variable("b")
    parts = [_node("exp", [a.output()], "ea"), _node("negative", [b.output()], "nb")]
    joined = _node("Concat", parts, "cat", num_args=2, dim=1)
    stacked = _node("stack", [joined, _node("abs", [joined], "absj")], "stk", num_args=2, axis=0)
    split = Node(
        "SliceChannel", (stacked,), {"num_outputs": "2", "axis": "0", "squeeze_axis": "True"}, "split"
    )
    outputs = [_node("sqrt", [Value(split, i)], f"out{i}") for i in range(2)]
    feeds = {"a": _floats((100, 37)), "b": _floats((100, 13))}
    _compare(
        Graph(outputs), feeds, {"a": (100, 37), "b": (100, 13)}, {"a": "float32", "b": "float32"}, "join"
    )


def test_gather_of_lazy_data_and_indices():
    """take and pick whose data and indices are both computed in the same kernel."""
    data, index = variable("data"), variable("index")
    taken = _node(
        "take", [_node("exp", [data.output()], "ed"), _node("floor", [index.output()], "fi")], "take", axis=1
    )
    picked = _node("pick", [taken, _node("abs", [index.output()], "ai")], "pick", axis=1, mode="wrap")
    feeds = {"data": _floats((100, 10)), "index": (RNG.standard_normal(100) * 8).astype(np.float32)}
    _compare(Graph([picked]), feeds, {"data": (100, 10), "index": (100,)}, {}, "gathers")

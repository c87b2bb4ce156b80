"""Shape/type cases for the tensor ops (elementwise, broadcast, reduce, shape, indexing, matmul).

Most ops get a 1-D case and a 3-D case with a size-1 and an odd dim; integer and float64 inputs
(NumPy arrays) check that dtypes are kept or changed as MXNet does.
"""

import numpy as np

from ember.compiler.ops.elementwise import BINARY, ELEMWISE_BINARY, SCALAR_OPS, UNARY
from ember.compiler.ops.reduce import REDUCERS, SEARCHERS

from .harness import OpCase

INTS = np.array([[-3, 0, 2], [5, -1, 7]], dtype=np.int32)
FLOAT64 = np.linspace(-0.9, 0.9, 15).reshape(5, 1, 3)
INDICES = np.array([[0.0, 2.0], [4.0, 9.0], [-1.0, 3.0]], dtype=np.float32)

CASES: list[OpCase] = []

for _op in UNARY:
    CASES += [OpCase(_op, [(5,)]), OpCase(_op, [(2, 1, 3)]), OpCase(_op, [INTS]), OpCase(_op, [FLOAT64])]

for _op in ELEMWISE_BINARY:
    CASES += [
        OpCase(_op, [(5,), (5,)]),
        OpCase(_op, [(2, 1, 3), (2, 1, 3)]),
        OpCase(_op, [INTS, INTS[::-1].copy() + 1]),
        OpCase(_op, [FLOAT64, FLOAT64 * 2]),
    ]

for _op in SCALAR_OPS:
    CASES += [
        OpCase(_op, [(5,)], {"scalar": 2.5}),
        OpCase(_op, [(2, 1, 3)], {"scalar": -1}),
        OpCase(_op, [INTS], {"scalar": 3}),
        OpCase(_op, [INTS], {"scalar": 0.5, "is_int": False}),
        OpCase(_op, [FLOAT64], {"scalar": 0.25}),
    ]

CASES += [
    OpCase("clip", [(5,)], {"a_min": -0.5, "a_max": 0.5}),
    OpCase("clip", [(2, 1, 3)], {"a_min": 0, "a_max": 1}),
    OpCase("clip", [INTS], {"a_min": -1.5, "a_max": 4.7}),
    OpCase("Cast", [(5,)], {"dtype": "int32"}),
    OpCase("Cast", [(2, 1, 3)], {"dtype": "float16"}),
    OpCase("Cast", [INTS], {"dtype": "float64"}),
    OpCase("where", [(5,), (5,), (5,)]),
    OpCase("where", [(2,), (2, 1, 3), (2, 1, 3)]),
    OpCase("where", [np.array([1.0, 0.0]), INTS, INTS * 2]),
]

for _key in BINARY:
    _op = f"broadcast_{_key}"
    CASES += [
        OpCase(_op, [(5,), (1,)]),
        OpCase(_op, [(3, 1, 5), (4, 1)]),
        OpCase(_op, [INTS, np.array([2], dtype=np.int32)]),
        OpCase(_op, [FLOAT64, FLOAT64[:1]]),
    ]

CASES += [
    OpCase("broadcast_to", [(1,)], {"shape": (5,)}),
    OpCase("broadcast_to", [(2, 1, 3)], {"shape": (0, 4, 0)}),
    OpCase("broadcast_to", [INTS[:1]], {"shape": (3, 0)}),
    OpCase("broadcast_axis", [(1,)], {"axis": 0, "size": 3}),
    OpCase("broadcast_axis", [(1, 3, 1)], {"axis": (0, -1), "size": (3, 5)}),
    OpCase("broadcast_like", [(1,), (5,)]),
    OpCase("broadcast_like", [(2, 1, 3), (2, 4, 3)]),
    OpCase("broadcast_like", [(2, 1, 3), (5, 7)], {"lhs_axes": (1,), "rhs_axes": (0,)}),
]

for _op in REDUCERS:
    CASES += [
        OpCase(_op, [(5,)]),
        OpCase(_op, [(2, 1, 3)], {"axis": 1, "keepdims": True}),
        OpCase(_op, [(2, 1, 3)], {"axis": (0, 2)}),
        OpCase(_op, [(2, 1, 3)], {"axis": -1, "exclude": True}),
        OpCase(_op, [(2, 1, 3)], {"axis": (), "keepdims": True}),
        OpCase(_op, [(2, 1, 3)], {"axis": (0, 1, 2), "exclude": True}),
        OpCase(_op, [INTS], {"axis": 0}),
        OpCase(_op, [FLOAT64], {"axis": (1, 2), "exclude": True, "keepdims": True}),
    ]

for _op in SEARCHERS:
    CASES += [
        OpCase(_op, [(5,)]),
        OpCase(_op, [(5,)], {"axis": 0, "keepdims": True}),
        OpCase(_op, [(2, 1, 3)], {"axis": 2}),
        OpCase(_op, [(2, 1, 3)], {"keepdims": True}),
        OpCase(_op, [INTS], {"axis": -2}),
        OpCase(_op, [FLOAT64], {"axis": 0, "keepdims": True}),
    ]

CASES += [
    OpCase("norm", [(5,)]),
    OpCase("norm", [(2, 1, 3)], {"ord": 1, "axis": 2, "keepdims": True}),
    OpCase("norm", [(2, 1, 3)], {"axis": (0, 2), "out_dtype": "float64"}),
    OpCase("norm", [FLOAT64], {"axis": 0}),
]

# Reshape: every example verified against MXNet 1.9.1 in MXNET_COMPAT.md 2.7, and more.
RESHAPE_EXAMPLES = [
    ((2, 3, 4), {"shape": (4, 0, 2)}),
    ((2, 3, 4), {"shape": (2, 0, 0)}),
    ((2, 3, 4), {"shape": (-1,)}),
    ((2, 3, 4), {"shape": (-2,)}),
    ((2, 3, 4), {"shape": (2, -2)}),
    ((2, 3, 4), {"shape": (-2, 1, 1)}),
    ((2, 3, 4), {"shape": (-3, 4)}),
    ((2, 3, 4), {"shape": (-3, -2)}),
    ((2, 3, 4), {"shape": (-4, 1, 2, -2)}),
    ((2, 3, 4), {"shape": (2, -4, -1, 3, -2)}),
    ((2, 3, 4), {"shape": (0, -1)}),
    ((2, 3, 4), {"shape": (-1, 0)}),
    ((10, 5, 4), {"shape": (-1, 0)}),
    ((10, 5, 4), {"shape": (-1, 0), "reverse": True}),
    ((24,), {"shape": (2, 3, 4)}),
    ((2, 1, 3), {"shape": (-1,)}),
    ((2, 1, 3), {"target_shape": (3, 0)}),
    ((2, 1, 3), {"target_shape": (0, 3), "keep_highest": True}),
]
CASES += [OpCase("Reshape", [shape], attrs) for shape, attrs in RESHAPE_EXAMPLES]
CASES += [OpCase("Reshape", [INTS], {"shape": (-1,)}), OpCase("Reshape", [FLOAT64], {"shape": (-3, 3)})]

CASES += [
    OpCase("Flatten", [(5,)]),
    OpCase("Flatten", [(2, 1, 3)]),
    OpCase("Flatten", [FLOAT64]),
    OpCase("transpose", [(5,)]),
    OpCase("transpose", [(2, 1, 3)]),
    OpCase("transpose", [(2, 1, 3)], {"axes": (2, 0, 1)}),
    OpCase("transpose", [INTS]),
    OpCase("SwapAxis", [(5,)]),
    OpCase("SwapAxis", [(2, 1, 3)], {"dim1": 0, "dim2": 2}),
    OpCase("SwapAxis", [FLOAT64], {"dim1": -1, "dim2": 1}),
    OpCase("expand_dims", [(5,)], {"axis": 0}),
    OpCase("expand_dims", [(2, 1, 3)], {"axis": -1}),
    OpCase("expand_dims", [INTS], {"axis": 1}),
    OpCase("squeeze", [(5,)]),
    OpCase("squeeze", [(1,)]),
    OpCase("squeeze", [(2, 1, 3)]),
    OpCase("squeeze", [(1, 3, 1)], {"axis": (0, -1)}),
    OpCase("squeeze", [FLOAT64], {"axis": 1}),
    OpCase("Concat", [(5,), (3,)], {"num_args": 2, "dim": 0}),
    OpCase("Concat", [(2, 1, 3), (2, 4, 3), (2, 2, 3)], {"num_args": 3}),
    OpCase("Concat", [INTS, INTS], {"num_args": 2, "dim": -1}),
    OpCase("stack", [(5,), (5,)], {"num_args": 2}),
    OpCase("stack", [(2, 1, 3)] * 3, {"num_args": 3, "axis": -1}),
    OpCase("stack", [INTS], {"num_args": 1, "axis": 1}),
    OpCase("SliceChannel", [(6,)], {"num_outputs": 3, "axis": 0}),
    OpCase("SliceChannel", [(2, 3, 1)], {"num_outputs": 3, "squeeze_axis": True}),
    OpCase("SliceChannel", [(2, 1, 3)], {"num_outputs": 1}),
    OpCase("SliceChannel", [FLOAT64], {"num_outputs": 5, "axis": 0}),
    OpCase("slice_axis", [(5,)], {"axis": 0, "begin": 1, "end": None}),
    OpCase("slice_axis", [(2, 1, 3)], {"axis": -1, "begin": -2, "end": -1}),
    OpCase("slice_axis", [INTS], {"axis": 1, "begin": 0, "end": 2}),
    OpCase("slice", [(5,)], {"begin": (1,), "end": (None,)}),
    OpCase("slice", [(5,)], {"begin": (None,), "end": (None,), "step": (-2,)}),
    OpCase("slice", [(2, 1, 3)], {"begin": (None, 0, 2), "end": (None, 1, 0), "step": (1, 1, -1)}),
    OpCase("slice", [FLOAT64], {"begin": (-4, None), "end": (100, None), "step": (2, None)}),
    OpCase("tile", [(5,)], {"reps": (2,)}),
    OpCase("tile", [(2, 1, 3)], {"reps": (2, 2)}),
    OpCase("tile", [(3,)], {"reps": (2, 1, 3)}),
    OpCase("tile", [INTS], {"reps": ()}),
    OpCase("repeat", [(5,)], {"repeats": 2}),
    OpCase("repeat", [(2, 1, 3)], {"repeats": 3, "axis": 1}),
    OpCase("repeat", [INTS], {"repeats": 2, "axis": -1}),
    OpCase("take", [(5,), INDICES]),
    OpCase("take", [(2, 1, 3), np.array([0, 2, -1], dtype=np.int32)], {"axis": 2, "mode": "wrap"}),
    OpCase("take", [INTS, np.array([1.7, 0.0])], {"axis": 0}),
    OpCase("pick", [(5,), np.array([3.0], dtype=np.float32)], {"axis": 0}),
    OpCase("pick", [(2, 1, 3), np.array([[0.0], [7.0]])], {"axis": 2}),
    OpCase(
        "pick", [(2, 1, 3), np.array([[[2.0]], [[-1.0]]])], {"axis": -1, "keepdims": True, "mode": "wrap"}
    ),
    OpCase("pick", [INTS, np.array([1, 0, 1], dtype=np.int32)], {"axis": 0}),
    OpCase("one_hot", [np.array([0.0, 2.0, 5.0])], {"depth": 5}),
    OpCase("one_hot", [np.array([[1], [3]], dtype=np.int32)], {"depth": 3, "dtype": "int32", "on_value": 7}),
    OpCase("dot", [(5,), (5,)]),
    OpCase("dot", [(2, 1, 3), (3, 4)]),
    OpCase("dot", [(3,), (3, 5)]),
    OpCase("dot", [(2, 3), (3,)]),
    OpCase("dot", [(3, 2, 1), (3, 5)], {"transpose_a": True}),
    OpCase("dot", [(2, 3), (5, 1, 3)], {"transpose_b": True}),
    OpCase("dot", [(3, 2), (5, 3)], {"transpose_a": True, "transpose_b": True}),
    OpCase("dot", [FLOAT64[:, 0, :], FLOAT64[0].T.copy()]),
    OpCase("batch_dot", [np.ones((3, 1, 2), np.float32), np.ones((3, 2, 5), np.float32)]),
    OpCase(
        "batch_dot",
        [np.ones((3, 2, 1), np.float32), np.ones((3, 5, 2), np.float32)],
        {"transpose_a": True, "transpose_b": True},
    ),
    OpCase("batch_dot", [FLOAT64, FLOAT64.transpose(0, 2, 1).copy()]),
]

CASES += [
    OpCase("add_n", [(1, 3), (1, 3), (1, 3)], {"num_args": 3}),
    OpCase("add_n", [(5,)], {"num_args": 1}),
]

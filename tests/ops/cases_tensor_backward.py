"""Shape/type cases for the backward-only helper ops of tensor_backward.py.

Each case is the adjoint of a forward case: `grad` has the shape the forward op produced, and the
attributes say what the forward op read (the sliced shape, the pad widths, the gathered axis).
"""

import numpy as np

from .harness import OpCase

FLOAT64_GRAD = np.linspace(-1.0, 1.0, 9).reshape(3, 1, 3)

CASES: list[OpCase] = [
    OpCase("_backward_slice", [(1, 3)], {"shape": (3, 5), "begin": (1, None), "end": (2, 3)}),
    OpCase("_backward_slice", [(2, 1, 3)], {"shape": (5, 1, 3), "begin": (0,), "end": (None,), "step": (3,)}),
    OpCase(
        "_backward_slice",
        [(3, 2)],
        {"shape": (7, 4), "begin": (None, -1), "end": (None, 0), "step": (-3, -2)},
    ),
    OpCase("_backward_slice", [FLOAT64_GRAD], {"shape": (3, 1, 5), "begin": (0, 0, 1), "end": (3, 1, 4)}),
    OpCase("_backward_pad", [(1, 3, 4, 7)], {"mode": "constant", "pad_width": (0, 0, 0, 0, 1, 0, 2, 2)}),
    OpCase("_backward_pad", [(2, 1, 5, 5)], {"mode": "edge", "pad_width": (0, 0, 0, 0, 2, 0, 1, 1)}),
    OpCase(
        "_backward_pad", [(1, 2, 5, 3, 7)], {"mode": "reflect", "pad_width": (0, 0, 0, 0, 1, 1, 1, 0, 2, 2)}
    ),
    OpCase(
        "_scatter_add_axis",
        [(2, 3), np.array([[0, 4, 4], [1, 2, -1]], dtype=np.float32)],
        {"axis": 1, "size": 5},
    ),
    OpCase(
        "_scatter_add_axis",
        [(1, 3, 2), np.array([[[0], [7], [2]]], dtype=np.int32)],
        {"axis": -2, "size": 3, "mode": "wrap"},
    ),
    OpCase("_scatter_add_axis", [FLOAT64_GRAD, np.zeros((3, 1, 1), dtype=np.int64)], {"axis": 1, "size": 1}),
]

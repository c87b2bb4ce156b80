"""Shape/type cases for the backward ops (compiler/ops/nn_backward.py).

Each case feeds a backward op what a gradient rule would: the output gradient and the forward values
it reads, shaped as the forward op makes them.
"""

import numpy as np

from .harness import OpCase


def _normal(*shape, dtype=np.float32):
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)


def _indices(rows, *shape, dtype=np.float32):
    """Indices in [-1, rows], so some are clipped (or out of range for SoftmaxOutput)."""
    return np.random.default_rng(rows).integers(-1, rows + 1, shape).astype(dtype)


CONV_2D = {"kernel": (3, 3), "num_filter": 4}
CONV_1D = {"kernel": (3,), "stride": (2,), "pad": (1,), "num_filter": 3, "no_bias": True}
CONV_NHWC_GROUPS = {"kernel": (3, 3), "stride": (2, 1), "num_filter": 6, "num_group": 2, "layout": "NHWC"}
CONV_3D = {"kernel": (2, 2, 2), "dilate": (2, 1, 1), "num_filter": 2}

CASES = [
    # Convolution: out_grad and weight (data gradient), out_grad and data (weight gradient)
    OpCase(
        "_backward_Convolution_data", [(2, 4, 5, 5), (4, 3, 3, 3)], {**CONV_2D, "data_shape": (2, 3, 7, 7)}
    ),
    OpCase("_backward_Convolution_data", [(1, 3, 5), (3, 2, 3)], {**CONV_1D, "data_shape": (1, 2, 9)}),
    OpCase(
        "_backward_Convolution_data",
        [(1, 2, 3, 6), (6, 3, 3, 2)],
        {**CONV_NHWC_GROUPS, "data_shape": (1, 5, 5, 4)},
    ),
    OpCase(
        "_backward_Convolution_data",
        [_normal(1, 2, 3, 3, 2, dtype=np.float64), _normal(2, 2, 2, 2, 2, dtype=np.float64)],
        {**CONV_3D, "data_shape": (1, 2, 5, 4, 3)},
    ),
    OpCase("_backward_Convolution_weight", [(2, 4, 5, 5), (2, 3, 7, 7)], CONV_2D),
    OpCase("_backward_Convolution_weight", [(1, 3, 5), (1, 2, 9)], CONV_1D),
    OpCase("_backward_Convolution_weight", [(1, 2, 3, 6), (1, 5, 5, 4)], CONV_NHWC_GROUPS),
    OpCase(
        "_backward_Convolution_weight",
        [_normal(1, 2, 3, 3, 2, dtype=np.float64), _normal(1, 2, 5, 4, 3, dtype=np.float64)],
        CONV_3D,
    ),
    # Pooling: out_grad, data, output
    OpCase(
        "_backward_Pooling", [(1, 3, 3, 3), (1, 3, 8, 8), (1, 3, 3, 3)], {"kernel": (3, 3), "stride": (2, 2)}
    ),
    OpCase(
        "_backward_Pooling",
        [(2, 1, 4, 4), (2, 1, 7, 7), (2, 1, 4, 4)],
        {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg", "pooling_convention": "full"},
    ),
    OpCase("_backward_Pooling", [(1, 2, 8), (1, 2, 9), (1, 2, 8)], {"kernel": (2,), "pool_type": "sum"}),
    OpCase("_backward_Pooling", [(2, 3, 1, 1), (2, 3, 5, 5), (2, 3, 1, 1)], {"global_pool": True}),
    OpCase(
        "_backward_Pooling",
        [(1, 2, 2, 2), (1, 2, 5, 5), (1, 2, 2, 2)],
        {"kernel": (3, 3), "stride": (2, 2), "pool_type": "lp", "p_value": 3},
    ),
    OpCase(
        "_backward_Pooling",
        [(1, 1, 4), (1, 1, 7), (1, 1, 4)],
        {"kernel": (3,), "stride": (2,), "pooling_convention": "same"},
    ),
    OpCase(
        "_backward_Pooling", [(1, 4, 4, 3), (1, 5, 5, 3), (1, 4, 4, 3)], {"kernel": (2, 2), "layout": "NHWC"}
    ),
    # BatchNorm: out_grad, data, gamma, mean, invstd
    OpCase("_backward_BatchNorm", [(2, 3, 5, 5), (2, 3, 5, 5), (3,), (3,), (3,)], is_train=True),
    OpCase("_backward_BatchNorm", [(5, 1), (5, 1), (1,), (1,), (1,)], {"axis": -1, "fix_gamma": False}),
    OpCase(
        "_backward_BatchNorm",
        [_normal(4, 3, 3, dtype=np.float16), _normal(4, 3, 3, dtype=np.float16), (3,), (3,), (3,)],
        {"fix_gamma": False},
        is_train=True,
    ),
    # SoftmaxOutput: output, label (, head_grad with out_grad)
    OpCase("_backward_SoftmaxOutput", [(4, 3), _indices(3, 4)]),
    OpCase("_backward_SoftmaxOutput", [(2, 3, 5), _indices(3, 2, 5)], {"multi_output": True}),
    OpCase(
        "_backward_SoftmaxOutput",
        [(2, 3, 5), _indices(3, 2, 1, 5)],
        {"multi_output": True, "normalization": "valid"},
    ),
    OpCase("_backward_SoftmaxOutput", [(2, 1, 3), _indices(3, 2, 1)], {"preserve_shape": True}),
    OpCase("_backward_SoftmaxOutput", [(3, 5), _normal(3, 5)], {"grad_scale": 2.0}),
    OpCase(
        "_backward_SoftmaxOutput",
        [_normal(3, 7, dtype=np.float64), _indices(7, 3, dtype=np.int32), _normal(3, 7, dtype=np.float64)],
        {"out_grad": True, "normalization": "batch", "smooth_alpha": 0.1},
    ),
    # Embedding: out_grad, indices
    OpCase("_backward_Embedding", [(3, 5, 4), _indices(7, 3, 5)], {"input_dim": 7, "output_dim": 4}),
    OpCase(
        "_backward_Embedding",
        [_normal(1, 5, dtype=np.float64), _indices(3, 1, dtype=np.int32)],
        {"input_dim": 3, "output_dim": 5},
    ),
    OpCase("_backward_Embedding", [(2, 3, 1, 1), _indices(2, 2, 3, 1)], {"input_dim": 2, "output_dim": 1}),
]

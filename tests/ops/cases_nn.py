"""Shape/type cases for the neural-network, softmax and loss ops (compiler/ops/nn.py, softmax.py, loss.py)."""

import numpy as np

from .harness import OpCase


def _normal(*shape, dtype=np.float32):
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)


def _ones(*shape, dtype=np.float32):
    return np.ones(shape, dtype)


def _indices(rows, *shape, dtype=np.float32):
    """Indices in [-1, rows], so some are clipped."""
    return np.random.default_rng(rows).integers(-1, rows + 1, shape).astype(dtype)


def _batchnorm_inputs(data, channels, dtype=np.float32):
    """data plus gamma, beta, moving_mean and a positive moving_var, all of `dtype`."""
    return [
        data,
        _normal(channels, dtype=dtype),
        _normal(channels, dtype=dtype),
        _normal(channels, dtype=dtype),
        _ones(channels, dtype=dtype) * 2,
    ]


def _norm_inputs(data, entries, dtype=np.float32):
    """data plus gamma and beta of `entries` elements, all of `dtype`."""
    return [data, _normal(entries, dtype=dtype), _normal(entries + 1, dtype=dtype)[1:]]


CASES = [
    OpCase("FullyConnected", [(5, 3), (4, 3), (4,)], {"num_hidden": 4}),
    OpCase("FullyConnected", [(1, 3, 7, 7), (1, 147), (1,)], {"num_hidden": 1}),
    OpCase("FullyConnected", [(2, 3, 5), (7, 5)], {"num_hidden": 7, "no_bias": True, "flatten": False}),
    OpCase("FullyConnected", [(3,), (2, 1), (2,)], {"num_hidden": 2}),
    OpCase("Activation", [(1,)], {"act_type": "relu"}),
    OpCase("Activation", [(3, 5)], {"act_type": "sigmoid"}),
    OpCase("Activation", [(2, 1, 7)], {"act_type": "tanh"}),
    OpCase("Activation", [(9,)], {"act_type": "softrelu"}),
    OpCase("Activation", [(4, 3)], {"act_type": "softsign"}),
    # Convolution
    OpCase("Convolution", [(2, 3, 7, 7), (4, 3, 3, 3), (4,)], {"kernel": (3, 3), "num_filter": 4}),
    OpCase(
        "Convolution",
        [(1, 2, 9), (3, 2, 3)],
        {"kernel": (3,), "stride": (2,), "pad": (1,), "num_filter": 3, "no_bias": True},
    ),
    OpCase(
        "Convolution",
        [(1, 2, 5, 4, 3), (2, 2, 2, 2, 2), (2,)],
        {"kernel": (2, 2, 2), "dilate": (2, 1, 1), "num_filter": 2},
    ),
    OpCase(
        "Convolution",
        [(2, 4, 5, 5), (6, 2, 3, 3), (6,)],
        {"kernel": (3, 3), "stride": (2, 1), "pad": (1, 0), "num_filter": 6, "num_group": 2},
    ),
    OpCase(
        "Convolution",
        [(1, 5, 5, 3), (2, 3, 3, 3), (2,)],
        {"kernel": (3, 3), "num_filter": 2, "layout": "NHWC"},
    ),
    OpCase(
        "Convolution",
        [
            _normal(2, 1, 5, 5, dtype=np.float64),
            _normal(3, 1, 2, 2, dtype=np.float64),
            _normal(3, dtype=np.float64),
        ],
        {"kernel": (2, 2), "num_filter": 3},
    ),
    # Deconvolution: stride with pad and adj, groups with dilation, target_shape, 1-D, 3-D, channel-last
    OpCase(
        "Deconvolution",
        [(2, 3, 4, 3), (3, 2, 3, 3), (2,)],
        {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "adj": (1, 0), "num_filter": 2, "no_bias": False},
    ),
    OpCase(
        "Deconvolution",
        [(1, 4, 3, 5), (4, 3, 2, 2)],
        {"kernel": (2, 2), "dilate": (2, 1), "num_filter": 6, "num_group": 2},
    ),
    OpCase(
        "Deconvolution",
        [(2, 2, 5), (2, 1, 3)],
        {"kernel": (3,), "stride": (2,), "target_shape": (10,), "num_filter": 1},
    ),
    OpCase(
        "Deconvolution",
        [(1, 2, 2, 3, 2), (2, 3, 2, 1, 3), (3,)],
        {"kernel": (2, 1, 3), "stride": (2, 1, 3), "pad": (0, 0, 1), "num_filter": 3, "no_bias": False},
    ),
    OpCase(
        "Deconvolution",
        [(1, 3, 5, 4), (4, 3, 3, 1), (2,)],
        {
            "kernel": (3, 3),
            "stride": (1, 2),
            "num_filter": 2,
            "num_group": 2,
            "no_bias": False,
            "layout": "NHWC",
        },
    ),
    OpCase(
        "Deconvolution",
        [_normal(1, 2, 3, 3, dtype=np.float64), _normal(2, 3, 3, 3, dtype=np.float64)],
        {"kernel": (3, 3), "stride": (2, 2), "pad": (2, 2), "num_filter": 3},
    ),
    # Pooling
    OpCase("Pooling", [(1, 3, 8, 8)], {"kernel": (3, 3), "stride": (2, 2)}),
    OpCase(
        "Pooling",
        [(2, 1, 7, 7)],
        {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg", "pooling_convention": "full"},
    ),
    OpCase("Pooling", [(1, 2, 9)], {"kernel": (2,), "pool_type": "sum"}),
    OpCase("Pooling", [(1, 1, 5, 5, 5)], {"kernel": (2, 2, 2), "stride": (2, 2, 2)}),
    OpCase("Pooling", [(2, 3, 5, 5)], {"global_pool": True, "pool_type": "avg"}),
    OpCase("Pooling", [(1, 2, 5, 5)], {"kernel": (2, 2), "pool_type": "lp", "p_value": 2}),
    OpCase("Pooling", [(1, 2, 5, 5)], {"kernel": (3, 3), "pool_type": "lp", "p_value": 3, "stride": (2, 2)}),
    OpCase(
        "Pooling",
        [(1, 1, 5, 6)],
        {"kernel": (2, 2), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg", "count_include_pad": False},
    ),
    OpCase("Pooling", [(1, 5, 5, 3)], {"kernel": (2, 2), "layout": "NHWC"}),
    OpCase("Pooling", [(1, 1, 7)], {"kernel": (3,), "stride": (2,), "pooling_convention": "same"}),
    OpCase("Pooling", [_normal(1, 3, 5, 5, dtype=np.float64)], {"kernel": (3, 3), "pool_type": "avg"}),
    # BatchNorm
    OpCase("BatchNorm", _batchnorm_inputs(_normal(2, 3, 5, 5), 3)),
    OpCase(
        "BatchNorm",
        _batchnorm_inputs(_normal(1, 3, 4), 3),
        {"fix_gamma": False, "output_mean_var": True},
        is_train=True,
    ),
    OpCase("BatchNorm", _batchnorm_inputs(_normal(5, 1), 1), {"axis": -1}, is_train=True),
    OpCase(
        "BatchNorm",
        _batchnorm_inputs(_normal(4, 3, 3, dtype=np.float16), 3),
        {"use_global_stats": True},
        is_train=True,
    ),
    OpCase(
        "BatchNorm",
        _batchnorm_inputs(_normal(3, 7, dtype=np.float64), 7, np.float64),
        {"eps": 1e-5},
        is_train=True,
    ),
    # LayerNorm, InstanceNorm, GroupNorm (hidden mean and std/var outputs included)
    OpCase("LayerNorm", [(2, 5, 3), (3,), (3,)]),
    OpCase("LayerNorm", [(3, 1, 5), (1,), (1,)], {"axis": 1, "output_mean_var": True}),
    OpCase("LayerNorm", [(7,), (7,), (7,)], {"eps": 1e-3}),
    OpCase("LayerNorm", _norm_inputs(_normal(2, 3, 4, dtype=np.float64), 2, np.float64), {"axis": 0}),
    OpCase("LayerNorm", _norm_inputs(_normal(3, 5, dtype=np.float16), 5, np.float16), {"output_mean_var": 1}),
    OpCase("InstanceNorm", [(2, 3, 5), (3,), (3,)]),
    OpCase("InstanceNorm", [(1, 3, 4, 5), (3,), (3,)], {"eps": 1e-5}),
    OpCase("InstanceNorm", [(3, 1, 1), (1,), (1,)]),
    OpCase("InstanceNorm", _norm_inputs(_normal(2, 2, 3, 3, dtype=np.float64), 2, np.float64)),
    OpCase("GroupNorm", [(2, 6, 3), (2,), (2,)], {"num_groups": 2, "output_mean_var": True}),
    OpCase("GroupNorm", [(1, 5, 3, 3), (1,), (1,)]),
    OpCase("GroupNorm", [(3, 6, 1), (6,), (6,)], {"num_groups": 6, "eps": 1e-3}),
    OpCase("GroupNorm", _norm_inputs(_normal(2, 4, 5, dtype=np.float16), 2, np.float16), {"num_groups": 2}),
    OpCase(
        "GroupNorm", _norm_inputs(_normal(2, 3, 2, 2, dtype=np.float64), 3, np.float64), {"num_groups": 3}
    ),
    # Dropout
    OpCase("Dropout", [(3, 5)], {"p": 0.3}, is_train=True),
    OpCase("Dropout", [(1, 4, 7)], {"axes": (1,)}, is_train=True),
    OpCase("Dropout", [(2, 3)]),
    OpCase("Dropout", [(5,)], {"p": 0.5}, is_train=True),
    OpCase("Dropout", [(5, 1)], {"mode": "always", "p": 0.2}),
    OpCase("Dropout", [_normal(3, 3, dtype=np.float64)], {"p": 0.5}, is_train=True),
    # LeakyReLU
    OpCase("LeakyReLU", [(3, 1)], {"act_type": "leaky", "slope": 0.1}),
    OpCase("LeakyReLU", [(2, 3, 5), (3,)], {"act_type": "prelu"}),
    OpCase("LeakyReLU", [(2, 1, 3), (1,)], {"act_type": "prelu"}),
    OpCase("LeakyReLU", [(5, 3)], {"act_type": "rrelu"}, is_train=True),
    OpCase("LeakyReLU", [(1, 5)], {"act_type": "rrelu"}),
    OpCase("LeakyReLU", [(7,)], {"act_type": "elu"}),
    OpCase("LeakyReLU", [(3, 3)], {"act_type": "selu"}),
    OpCase("LeakyReLU", [_normal(1, 9, dtype=np.float64)], {"act_type": "gelu"}),
    OpCase("LeakyReLU", [_normal(2, 3, dtype=np.float16)], {"act_type": "gelu"}),
    # Embedding
    OpCase("Embedding", [_indices(7, 3, 5), (7, 4)], {"input_dim": 7, "output_dim": 4}),
    OpCase(
        "Embedding",
        [_indices(3, 1, dtype=np.int32), _normal(3, 5, dtype=np.float64)],
        {"input_dim": 3, "output_dim": 5},
    ),
    OpCase("Embedding", [_indices(2, 2, 3, 1), (2, 1)], {"input_dim": 2, "output_dim": 1}),
    # softmax, log_softmax, SoftmaxActivation
    OpCase("softmax", [(3, 5)]),
    OpCase(
        "softmax", [(2, 5, 3), np.array([[5, 1, 0], [2, 3, 4]], np.int32)], {"axis": 1, "use_length": True}
    ),
    OpCase("softmax", [(7,), np.array([4], np.int32)], {"use_length": True}),
    OpCase("softmax", [(1, 3)], {"temperature": 2.0, "dtype": "float64"}),
    OpCase("softmax", [_normal(4, 3, dtype=np.float16)], {"axis": 0}),
    OpCase("log_softmax", [(1, 5)]),
    OpCase("log_softmax", [(5,)]),
    OpCase("log_softmax", [_normal(3, 7, dtype=np.float64)], {"axis": 0, "temperature": 0.5}),
    OpCase("SoftmaxActivation", [(1, 2, 2)], {"mode": "channel"}),
    OpCase("SoftmaxActivation", [(3, 5)]),
    OpCase("SoftmaxActivation", [(7,)]),
    # loss heads
    OpCase("SoftmaxOutput", [(4, 3), _indices(3, 4)]),
    OpCase("SoftmaxOutput", [(2, 3, 5), _indices(3, 2, 5)], {"multi_output": True}),
    OpCase("SoftmaxOutput", [(2, 3, 5), _indices(3, 2, 1, 5)], {"multi_output": True}),
    OpCase("SoftmaxOutput", [(2, 1, 3), _indices(3, 2, 1)], {"preserve_shape": True}),
    OpCase("SoftmaxOutput", [(3, 5), _normal(3, 5)]),
    OpCase(
        "SoftmaxOutput",
        [_normal(3, 7, dtype=np.float64), _indices(7, 3, dtype=np.float64)],
        {"normalization": "valid", "use_ignore": True},
    ),
    OpCase("LinearRegressionOutput", [(5, 1), (5,)]),
    OpCase("LinearRegressionOutput", [(3, 7), (3, 7)], {"grad_scale": 2.0}),
    OpCase("LinearRegressionOutput", [(2, 3, 5), (2, 15)]),
    OpCase("LogisticRegressionOutput", [(3, 7), (3, 7)]),
    OpCase("LogisticRegressionOutput", [(1, 1), (1,)]),
    OpCase("LogisticRegressionOutput", [(3, 1, 5), (3, 1, 5)]),
    OpCase("MAERegressionOutput", [(1, 3), (1, 3)]),
    OpCase("MAERegressionOutput", [(5,), (5,)]),
    OpCase("MAERegressionOutput", [_normal(5, 2, dtype=np.float64), _normal(5, 2, dtype=np.float64)]),
    OpCase("MakeLoss", [(3, 1)], {"grad_scale": 0.5}),
    OpCase("MakeLoss", [(3,)]),
    OpCase("MakeLoss", [(1, 3, 5)], {"normalization": "batch"}),
    OpCase("make_loss", [(5,)]),
    OpCase("make_loss", [(1, 2)]),
    OpCase("make_loss", [(2, 3, 5)]),
    OpCase("BlockGrad", [(1, 7)]),
    OpCase("BlockGrad", [(1,)]),
    OpCase("BlockGrad", [(3, 5, 1)]),
]

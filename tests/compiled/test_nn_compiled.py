"""Compiled activations, softmaxes, loss heads, BlockGrad and inference-mode Dropout match the reference
interpreter on the cases the registry's lack: sizes above and off multiples of 16, size 1, every
parameter combination, every dtype, extreme values (overflowing exponentials, infinities, NaN) and
training-sized batches. (Dropout in training and rrelu's random slopes: test_random_ops.py.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ember.compiler.ops.nn import ACTIVATIONS

from ..ops.harness import OpCase
from .test_ops_compiled import test_compiled_op_matches_reference as matches_reference


def normal(*shape, dtype=np.float32, scale=1.0):
    return (np.random.default_rng(sum(shape) + 7).standard_normal(shape) * scale).astype(dtype)


def integers(low, high, *shape, dtype=np.int32):
    """Uniform integers in [low, high]."""
    return np.random.default_rng(sum(shape) + 3).integers(low, high + 1, shape).astype(dtype)


def labels(classes, *shape, dtype=np.float32):
    """Class labels in [-1, classes], some with fractions (truncated), so some are out of range."""
    whole = integers(-1, classes, *shape).astype(np.float64)
    fraction = np.where(np.arange(whole.size).reshape(shape) % 3 == 0, 0.7, 0.0)
    return (whole + np.sign(whole + 0.5) * fraction).astype(dtype)


# Infinities, NaN, zeros of both signs and values whose exponential overflows float32 and float64.
EXTREMES = np.array(
    [-1e4, -800.0, -90.0, -1.0, -0.0, 0.0, 1e-8, 0.5, 20.0, 90.0, 800.0, np.inf, -np.inf, np.nan]
)
SIZES = [(1,), (37,), (130, 37), (100, 784)]
OTHER_DTYPES = [np.float64, np.float16]

ACTIVATION_CASES = (
    [OpCase("Activation", [shape], {"act_type": act}) for act in ACTIVATIONS for shape in SIZES]
    + [OpCase("Activation", [EXTREMES.astype(np.float32)], {"act_type": act}) for act in ACTIVATIONS]
    + [OpCase("Activation", [EXTREMES], {"act_type": act}) for act in ACTIVATIONS]
    + [
        OpCase("Activation", [normal(13, 37, dtype=t)], {"act_type": act})
        for act in ACTIVATIONS
        for t in OTHER_DTYPES
    ]
    # integers are computed in float32 (8-bit) or float64 (32-bit and more), then truncated: tanh(10) is 1
    # in float32, 0.99999... in float64 (beyond 12 it is within an ulp of 1 and libraries differ)
    + [
        OpCase("Activation", [integers(-12, 12, 41, dtype=t)], {"act_type": act})
        for act in ACTIVATIONS
        for t in (np.int8, np.int32, np.int64, np.uint8)
    ]
)

LEAKY_PARAMS = [
    {"act_type": "leaky"},
    {"act_type": "leaky", "slope": -0.5},
    {"act_type": "elu"},
    {"act_type": "elu", "slope": 2.0},
    {"act_type": "selu"},
    {"act_type": "gelu"},
    {"act_type": "rrelu"},
    {"act_type": "rrelu", "lower_bound": 0.1, "upper_bound": 0.9},
]
PRELU = {"act_type": "prelu"}

LEAKY_CASES = (
    [OpCase("LeakyReLU", [shape], params) for params in LEAKY_PARAMS for shape in SIZES]
    + [OpCase("LeakyReLU", [EXTREMES.astype(np.float32)], params) for params in LEAKY_PARAMS]
    + [OpCase("LeakyReLU", [normal(5, 37, dtype=t)], params) for params in LEAKY_PARAMS for t in OTHER_DTYPES]
    + [OpCase("LeakyReLU", [integers(-9, 9, 5, 7)], params) for params in LEAKY_PARAMS]
    + [
        OpCase("LeakyReLU", [(100, 37, 5), (37,)], PRELU),
        OpCase("LeakyReLU", [(2, 130, 3, 3), (130,)], PRELU),
        OpCase("LeakyReLU", [(3, 37), (1,)], PRELU),
        OpCase("LeakyReLU", [(1, 1), (1,)], PRELU),
        OpCase("LeakyReLU", [(4, 17), (4, 17)], PRELU),
        OpCase("LeakyReLU", [(100, 784), (784,)], PRELU),
        OpCase("LeakyReLU", [normal(3, 5, 7, dtype=np.float64), normal(5, dtype=np.float64)], PRELU),
        OpCase("LeakyReLU", [normal(3, 5, 7, dtype=np.float16), normal(5, dtype=np.float16)], PRELU),
    ]
)

# Rows with huge, infinite and NaN entries: the softmax must subtract the row maximum first.
HARD_ROWS = np.stack(
    [
        np.full(7, -np.inf),
        np.array([1000.0, 999.0, -1000.0, 0.0, 1.0, 2.0, 3.0]),
        np.array([-np.inf, 5.0, -np.inf, 1.0, 0.0, 0.0, 0.0]),
        np.array([np.inf, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        np.array([np.nan, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        np.full(7, 3.0),
    ]
).astype(np.float32)

SOFTMAX_PARAMS = [
    {},
    {"axis": 0},
    {"temperature": 0.5},
    {"temperature": 3.0, "axis": 0},
    {"dtype": "float64"},
    {"dtype": "float16"},
]
SOFTMAX_CASES = [
    OpCase(op, [shape], params)
    for op in ("softmax", "log_softmax")
    for params in SOFTMAX_PARAMS
    for shape in [(130, 37), (1,), (37,), (100, 10), (1, 1)]
] + [
    OpCase(op, inputs, params)
    for op in ("softmax", "log_softmax")
    for inputs, params in [
        ([(3, 37, 17)], {"axis": 1}),
        ([(3, 37, 17)], {"axis": -3}),
        ([(2, 1, 5)], {"axis": 1}),
        ([HARD_ROWS], {}),
        ([normal(130, 37, scale=300)], {}),
        ([normal(13, 37, dtype=np.float64)], {"axis": 0}),
        ([normal(13, 37, dtype=np.float64)], {"dtype": "float32"}),
        ([normal(5, 37, dtype=np.float16)], {}),
        ([integers(-5, 5, 4, 9)], {}),
        ([integers(-5, 5, 4, 9)], {"dtype": "float32"}),
    ]
]

LENGTH_CASES = [
    OpCase("softmax", [(6, 37), np.array([0, 1, 37, 40, -2, 18], np.int32)], {"use_length": True}),
    OpCase("softmax", [(37,), np.array([20], np.int64)], {"use_length": True}),
    OpCase("softmax", [(37, 3), np.array([2.9, 37.5, 0.2], np.float32)], {"axis": 0, "use_length": True}),
    OpCase(
        "softmax",
        [(2, 17, 5), integers(0, 17, 2, 5)],
        {"axis": 1, "use_length": True, "temperature": 2.0, "dtype": "float64"},
    ),
    OpCase("softmax", [HARD_ROWS, np.array([7, 7, 2, 0, 1, 7], np.int32)], {"use_length": True}),
]

SOFTMAX_ACTIVATION_CASES = [
    OpCase("SoftmaxActivation", inputs, params)
    for inputs, params in [
        ([(130, 37)], {}),
        ([(1,)], {}),
        ([(1, 1)], {"mode": "channel"}),
        ([(2, 37, 5, 3)], {"mode": "channel"}),
        ([(4, 17)], {"mode": "channel"}),
        ([(2, 37, 5, 3)], {"mode": "instance"}),
        ([HARD_ROWS], {}),
        ([normal(3, 17, 4, dtype=np.float64)], {"mode": "channel"}),
        ([normal(3, 17, dtype=np.float16)], {}),
    ]
]

# (params, (data shape, label shape)) of each SoftmaxOutput layout and label shape it accepts; the
# first four get every gradient option, the others a few
SOFTMAX_OUTPUT_LAYOUTS = [
    ({}, [(100, 10), (100,)]),
    ({}, [(4, 3, 5), (4, 3)]),
    ({"preserve_shape": True}, [(3, 5, 17), (3, 5)]),
    ({"multi_output": True}, [(4, 37, 7), (4, 7)]),
    ({"preserve_shape": True}, [(130, 37), (130,)]),
    ({"multi_output": True}, [(4, 37, 7), (4, 1, 7)]),
    ({"multi_output": True}, [(2, 5, 3, 4), (2, 12)]),
    ({"multi_output": True}, [(2, 5, 3, 4), (2, 3, 4)]),
    ({"multi_output": True}, [(3, 6), (3, 1)]),
    ({}, [(1, 1), (1,)]),  # one class: smooth_alpha would divide by 0 classes - 1
]
FULLY_TESTED_LAYOUTS = SOFTMAX_OUTPUT_LAYOUTS[:4]


def _label_for(shapes):
    data, label = shapes
    return labels(data[1] if len(data) > 1 else 1, *label)


SOFTMAX_OUTPUT_CASES = [
    OpCase("SoftmaxOutput", [shapes[0], _label_for(shapes)], params)
    for params, shapes in SOFTMAX_OUTPUT_LAYOUTS
] + [
    OpCase("SoftmaxOutput", [(37, 130), normal(37, 130)], {"grad_scale": 3.0, "normalization": "valid"}),
    OpCase(
        "SoftmaxOutput",
        [normal(5, 37, dtype=np.float64), labels(37, 5, dtype=np.float64)],
        {"use_ignore": True},
    ),
    OpCase(
        "SoftmaxOutput",
        [normal(5, 37, dtype=np.float16), labels(37, 5, dtype=np.float16)],
        {"smooth_alpha": 0.1},
    ),
    OpCase("SoftmaxOutput", [normal(6, 7, scale=500), labels(7, 6)], {}),
]

# every combination of SoftmaxOutput's gradient options
GRAD_OPTIONS = [
    {"normalization": normalization, "use_ignore": use_ignore, "smooth_alpha": alpha, "out_grad": out_grad}
    for normalization, use_ignore, alpha, out_grad in itertools.product(
        ("null", "batch", "valid"), (False, True), (0.0, 0.2), (False, True)
    )
]


def _softmax_output_grad_case(layout, options, **extra):
    params, shapes = layout
    data = normal(*shapes[0])
    head = [normal(*shapes[0], scale=2)] if options["out_grad"] else []
    return OpCase(
        "_backward_SoftmaxOutput", [data, _label_for(shapes)] + head, {**params, **options, **extra}
    )


SOME_GRAD_OPTIONS = [
    {"normalization": "valid", "use_ignore": True, "smooth_alpha": 0.0, "out_grad": True},
    {"normalization": "batch", "use_ignore": False, "smooth_alpha": 0.0, "out_grad": False},
    {"normalization": "null", "use_ignore": True, "smooth_alpha": 0.0, "out_grad": False},
]

SOFTMAX_OUTPUT_GRAD_CASES = (
    [
        _softmax_output_grad_case(layout, options)
        for layout in FULLY_TESTED_LAYOUTS
        for options in GRAD_OPTIONS
    ]
    + [
        _softmax_output_grad_case(layout, options)
        for layout in SOFTMAX_OUTPUT_LAYOUTS[4:]
        for options in SOME_GRAD_OPTIONS
    ]
    + [
        _softmax_output_grad_case(layout, options, ignore_label=2.0, grad_scale=0.5)
        for layout in (SOFTMAX_OUTPUT_LAYOUTS[1], SOFTMAX_OUTPUT_LAYOUTS[3])
        for options in GRAD_OPTIONS
        if options["use_ignore"] or options["normalization"] == "valid"
    ]
    + [
        OpCase("_backward_SoftmaxOutput", [(37, 130), normal(37, 130)], {"grad_scale": 3.0}),
        OpCase(
            "_backward_SoftmaxOutput",
            [
                normal(37, 130, dtype=np.float64),
                normal(37, 130, dtype=np.float64),
                normal(37, 130, dtype=np.float64),
            ],
            {"out_grad": True, "normalization": "valid"},
        ),
        OpCase("_backward_SoftmaxOutput", [(100, 10), integers(-1, 10, 100)], {"normalization": "valid"}),
        OpCase(
            "_backward_SoftmaxOutput",
            [normal(5, 37, dtype=np.float64), labels(37, 5, dtype=np.float64)],
            {"use_ignore": True, "ignore_label": 3.0, "smooth_alpha": 0.5},
        ),
        OpCase(
            "_backward_SoftmaxOutput",
            [normal(5, 37, dtype=np.float16), labels(37, 5, dtype=np.int32)],
            {"normalization": "batch"},
        ),
        OpCase("_backward_SoftmaxOutput", [(1, 1), np.zeros(1, np.float32)], {"normalization": "valid"}),
    ]
)

REGRESSION_CASES = [
    OpCase(op, inputs, params)
    for op in ("LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput")
    for inputs, params in [
        ([(100, 1), (100,)], {}),
        ([(37, 130), (37, 130)], {"grad_scale": 0.5}),
        ([(1,), (1,)], {}),
        ([(2, 37, 5), (2, 185)], {}),
        ([EXTREMES.astype(np.float32), EXTREMES.astype(np.float32)], {}),
        ([normal(13, 7, dtype=np.float64), normal(13, 7, dtype=np.float64)], {}),
        ([normal(13, 7, dtype=np.float16), normal(13, 7, dtype=np.float16)], {}),
        ([integers(-3, 3, 5, 3), integers(-3, 3, 5, 3)], {}),
    ]
]

IDENTITY_CASES = [
    OpCase(op, [data], params)
    for op, params in [
        ("MakeLoss", {}),
        ("MakeLoss", {"grad_scale": 2.0, "normalization": "valid", "valid_thresh": 0.5}),
        ("MakeLoss", {"normalization": "batch"}),
        ("make_loss", {}),
        ("BlockGrad", {}),
        ("stop_gradient", {}),
    ]
    for data in [(1,), (37, 130), EXTREMES, integers(-5, 5, 3, 17), integers(0, 1, 9, dtype=np.bool_)]
]

# in inference (mode='training') Dropout is the identity with a mask of ones, whatever p and axes
DROPOUT_INFERENCE_CASES = [
    OpCase("Dropout", [data], params)
    for params in [{}, {"p": 0.3}, {"p": 1.0}, {"p": 0.5, "axes": (0,)}, {"p": 0.2, "axes": (1, 2)}]
    for data in [(1, 1, 1), (37, 130, 3), normal(3, 17, 1, dtype=np.float64), integers(-5, 5, 4, 3, 2)]
]

ALL_EXTRA_CASES = (
    ACTIVATION_CASES
    + LEAKY_CASES
    + SOFTMAX_CASES
    + LENGTH_CASES
    + SOFTMAX_ACTIVATION_CASES
    + SOFTMAX_OUTPUT_CASES
    + SOFTMAX_OUTPUT_GRAD_CASES
    + REGRESSION_CASES
    + IDENTITY_CASES
    + DROPOUT_INFERENCE_CASES
)


def _unique_ids(cases):
    """The cases, their ids numbered where several differ only in their data arrays."""
    seen: dict[str, int] = {}
    for case in cases:
        count = seen.get(case.id, 0)
        seen[case.id] = count + 1
        if count:
            case.id = f"{case.id}#{count}"
    return cases


@pytest.mark.parametrize("case", _unique_ids(ALL_EXTRA_CASES), ids=lambda c: c.id)
def test_compiled_matches_reference(case):
    matches_reference(case)

"""Compiled contractions (dot, batch_dot, FullyConnected, Convolution and its data and weight gradients)
match the reference interpreter on the cases the registry's lack: sizes above and off multiples of 16,
size-1 axes, every transpose, flatten and bias option, 1-D, 2-D and 3-D convolutions in every layout
with strides, dilations, padding and groups, every dtype (float16 accumulated as NumPy does, integers
wrapping or truncated as the references do, bools), and training-sized shapes (MNIST batches). Also:
a GEMM writes straight into its kernel's output buffer, with the bias and activation fused after it,
and a LeNet-like training step (forward and every gradient) matches the reference at training scale."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember.compiler import Graph, Node, Value, evaluate, variable
from ember.compiler.ops import get_schema
from ember.compiler.ops.conv import conv_shape
from ember.compiler.ops.params import format_value
from ember.compiler.passes import infer_shapes
from ember.compiler.passes.autodiff import gradients
from ember.compiler.program import GemmStage

from ..ops.harness import OpCase
from .harness import assert_close, compile_graph
from .test_ops_compiled import test_compiled_op_matches_reference as matches_reference


def exact(*shape, dtype=np.float32):
    """Multiples of 1/16 in [-1, 1]: every sum of their products is exact in float32 (and its rounding to
    float16 the same in any order), so a GEMM must match the reference whatever its summation order.
    (Normal data would not: summed over ~100 terms, float32 results differ between summation orders by
    more than the comparison's tolerance, even between an exact sum and NumPy's own.)"""
    return (integers(-16, 16, *shape) / 16).astype(dtype)


def integers(low, high, *shape, dtype=np.int32):
    """Uniform integers in [low, high]."""
    return np.random.default_rng(sum(shape) + 5).integers(low, high + 1, shape).astype(dtype)


def typed(dtype, *shapes) -> list[np.ndarray]:
    """Arrays of `shapes` in `dtype`: exact floats, integers whose int8 products overflow, or bools."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        return [exact(*shape, dtype=dtype) for shape in shapes]
    if kind == "b":
        return [integers(0, 1, *shape).astype(bool) for shape in shapes]
    return [integers(0 if kind == "u" else -20, 20, *shape, dtype=dtype) for shape in shapes]


def case(op: str, shapes, attrs=None, dtype=np.float32) -> OpCase:
    """An `op` case on `typed` inputs of `shapes`; its id names the dtype unless float32."""
    made = OpCase(op, typed(dtype, *shapes), attrs or {})
    made.id += "" if dtype == np.float32 else f"<{np.dtype(dtype).name}>"
    return made


DTYPES = [np.float64, np.float16, np.int32, np.int64, np.int8, np.uint8, np.bool_]

# Normal data, contracting few terms (float32 rounding stays within the tolerance): ordinary values.
ROUNDING_CASES = [
    OpCase("FullyConnected", [(37, 13), (130, 13), (130,)], {"num_hidden": 130}),
    OpCase("dot", [(13, 37), (13, 130)], {"transpose_a": True}),
    OpCase("batch_dot", [(3, 37, 9), (3, 19, 9)], {"transpose_b": True}),
    OpCase(
        "Convolution", [(3, 2, 17, 9), (5, 2, 3, 3), (5,)], {"kernel": (3, 3), "pad": (1, 1), "num_filter": 5}
    ),
]

# -- FullyConnected -------------------------------------------------------------------------------

FC_CASES = [
    case("FullyConnected", [(100, 784), (128, 784), (128,)], {"num_hidden": 128}),
    case("FullyConnected", [(100, 784), (10, 784)], {"num_hidden": 10, "no_bias": True}),
    case("FullyConnected", [(3, 37), (130, 37), (130,)], {"num_hidden": 130}),
    case("FullyConnected", [(37, 130), (1, 130), (1,)], {"num_hidden": 1}),
    case("FullyConnected", [(1, 1), (1, 1), (1,)], {"num_hidden": 1}),
    case("FullyConnected", [(5, 2, 3, 7), (37, 42), (37,)], {"num_hidden": 37}),
    case("FullyConnected", [(37,), (130, 1), (130,)], {"num_hidden": 130}),
    case("FullyConnected", [(2, 3, 37), (130, 37), (130,)], {"num_hidden": 130, "flatten": False}),
    case("FullyConnected", [(37,), (17, 37)], {"num_hidden": 17, "flatten": False, "no_bias": True}),
    case("FullyConnected", [(1, 1, 37), (3, 37)], {"num_hidden": 3, "flatten": False, "no_bias": True}),
] + [case("FullyConnected", [(7, 300), (37, 300), (37,)], {"num_hidden": 37}, dtype) for dtype in DTYPES]

# -- dot and batch_dot ----------------------------------------------------------------------------

TRANSPOSES = [{}, {"transpose_a": True}, {"transpose_b": True}, {"transpose_a": True, "transpose_b": True}]


def _dot_shapes(m: tuple, k: int, n: tuple, params: dict) -> list[tuple]:
    """lhs and rhs shapes for dot (m..., k) . (k, n...) with the transposes of `params`."""
    lhs = (k, *m) if params.get("transpose_a") else (*m, k)
    rhs = (*n, k) if params.get("transpose_b") else (k, *n)
    return [lhs, rhs]


DOT_CASES = (
    [case("dot", _dot_shapes((37,), 130, (37,), p), p) for p in TRANSPOSES]
    + [case("dot", _dot_shapes((2, 19), 37, (3, 13), p), p) for p in TRANSPOSES]
    + [case("dot", _dot_shapes((1,), 1, (1,), p), p) for p in TRANSPOSES]
    + [
        case("dot", [(100, 784), (784, 128)]),
        case("dot", [(100, 128), (128, 784)]),  # FullyConnected's gradients
        case("dot", [(100, 128), (100, 784)], {"transpose_a": True}),
        case("dot", [(130,), (130,)]),
        case("dot", [(1,), (1,)]),
        case("dot", [(130,), (130, 37)]),
        case("dot", [(37, 130), (130,)]),
        case("dot", [(130,), (37, 130)], {"transpose_b": True}),
        case("dot", [(130,), (130, 37)], {"transpose_a": True}),
        case("dot", [(37, 1, 130), (130, 1, 3)]),
    ]
    + [case("dot", [(13, 300), (300, 37)], {}, dtype) for dtype in DTYPES]
    + [case("dot", [(300, 13), (37, 300)], TRANSPOSES[3], dtype) for dtype in DTYPES]
)


def _batch_shapes(batch: tuple, m: int, k: int, n: int, params: dict) -> list[tuple]:
    lhs = (*batch, k, m) if params.get("transpose_a") else (*batch, m, k)
    rhs = (*batch, n, k) if params.get("transpose_b") else (*batch, k, n)
    return [lhs, rhs]


BATCH_DOT_CASES = (
    [case("batch_dot", _batch_shapes((5,), 37, 130, 19, p), p) for p in TRANSPOSES]
    + [case("batch_dot", _batch_shapes((2, 3), 7, 17, 1, p), p) for p in TRANSPOSES]
    + [case("batch_dot", _batch_shapes((1,), 1, 1, 1, p), p) for p in TRANSPOSES]
    + [case("batch_dot", _batch_shapes((64,), 20, 576, 25, {}), {})]
    + [case("batch_dot", [(3, 7, 300), (3, 300, 5)], {}, dtype) for dtype in DTYPES]
)

# -- Convolution and its gradients ------------------------------------------------------------------


def conv_cases(data, weight, attrs, dtype=np.float32, bias=True) -> list[OpCase]:
    """The forward case (with a bias unless `bias` is False) and both gradient cases of one geometry."""
    filters = attrs["num_filter"]
    params = get_schema("Convolution").parse_params({k: format_value(v) for k, v in attrs.items()})
    out = tuple(conv_shape(params, [data, weight, (filters,)], [None])[1][0])
    forward = attrs if bias else dict(attrs, no_bias=True)
    extra = [(filters,)] if bias else []
    return [
        case("Convolution", [data, weight, *extra], forward, dtype),
        case("_backward_Convolution_data", [out, weight], dict(attrs, data_shape=data), dtype),
        case("_backward_Convolution_weight", [out, data], attrs, dtype),
    ]


CONV_GEOMETRIES = [
    # MNIST LeNet: the realistic sizes, and a second layer with several input channels
    ((64, 1, 28, 28), (20, 1, 5, 5), {"kernel": (5, 5), "num_filter": 20}),
    ((64, 20, 12, 12), (50, 20, 5, 5), {"kernel": (5, 5), "num_filter": 50}),
    # 1-D
    ((3, 5, 37), (7, 5, 3), {"kernel": (3,), "num_filter": 7}),
    ((3, 4, 37), (6, 2, 3), {"kernel": (3,), "stride": (2,), "dilate": (2,), "pad": (1,), "num_filter": 6, "num_group": 2}),
    ((1, 1, 1), (1, 1, 1), {"kernel": (1,), "num_filter": 1}),
    ((2, 3, 5), (4, 3, 5), {"kernel": (5,), "pad": (2,), "num_filter": 4}),
    # 2-D
    ((2, 3, 37, 19), (5, 3, 3, 3), {"kernel": (3, 3), "stride": (2, 3), "pad": (1, 2), "num_filter": 5}),
    ((2, 3, 17, 17), (4, 3, 3, 2), {"kernel": (3, 2), "dilate": (2, 3), "pad": (2, 0), "num_filter": 4}),
    ((3, 6, 9, 9), (6, 1, 3, 3), {"kernel": (3, 3), "pad": (1, 1), "num_filter": 6, "num_group": 6}),
    ((2, 4, 7, 8), (6, 2, 3, 3), {"kernel": (3, 3), "stride": (2, 2), "num_filter": 6, "num_group": 2}),
    ((1, 4, 7, 8), (6, 2, 3, 3), {"kernel": (3, 3), "pad": (1, 1), "num_filter": 6, "num_group": 2}),
    ((2, 130, 4, 4), (37, 130, 1, 1), {"kernel": (1, 1), "num_filter": 37}),
    ((2, 3, 5, 5), (4, 3, 5, 5), {"kernel": (5, 5), "num_filter": 4}),
    ((2, 3, 1, 1), (4, 3, 3, 3), {"kernel": (3, 3), "pad": (1, 1), "num_filter": 4}),
    # 2-D channel-last
    ((2, 9, 8, 3), (5, 3, 3, 3), {"kernel": (3, 3), "pad": (1, 1), "num_filter": 5, "layout": "NHWC"}),
    (
        (3, 11, 9, 4),
        (6, 3, 2, 2),
        {"kernel": (3, 2), "stride": (2, 1), "dilate": (1, 2), "pad": (1, 1), "num_filter": 6, "num_group": 2,
         "layout": "NHWC"},
    ),
    ((1, 5, 5, 4), (4, 3, 3, 1), {"kernel": (3, 3), "num_filter": 4, "num_group": 4, "layout": "NHWC"}),
    # 3-D
    ((2, 3, 5, 6, 7), (4, 3, 2, 3, 2), {"kernel": (2, 3, 2), "stride": (1, 2, 2), "pad": (1, 0, 1), "num_filter": 4}),
    ((2, 4, 5, 4, 6), (4, 2, 2, 2, 2), {"kernel": (2, 2, 2), "dilate": (2, 1, 2), "num_filter": 4, "num_group": 2}),
    ((2, 5, 6, 4, 3), (4, 2, 3, 2, 3), {"kernel": (2, 3, 2), "pad": (1, 1, 0), "num_filter": 4, "layout": "NDHWC"}),
    (
        (2, 4, 5, 6, 4),
        (4, 2, 2, 3, 2),
        {"kernel": (2, 2, 3), "stride": (2, 1, 1), "num_filter": 4, "num_group": 2, "layout": "NDHWC"},
    ),
]  # fmt: skip

CONV_CASES = [case for data, weight, attrs in CONV_GEOMETRIES for case in conv_cases(data, weight, attrs)]
CONV_CASES += conv_cases(
    (2, 4, 9, 9), (6, 2, 3, 3), {"kernel": (3, 3), "num_filter": 6, "num_group": 2}, bias=False
)
CONV_CASES += [
    case
    for dtype in DTYPES
    for case in conv_cases((2, 4, 9, 7), (6, 2, 3, 3), {"kernel": (3, 3), "pad": (1, 1), "num_filter": 6, "num_group": 2}, dtype)
]  # fmt: skip
# int8 sums beyond the type: the references sum in float64 and cast back, keeping the low bits
CONV_CASES += conv_cases((2, 8, 6, 6), (4, 8, 3, 3), {"kernel": (3, 3), "num_filter": 4}, dtype=np.int8)

ALL = ROUNDING_CASES + FC_CASES + DOT_CASES + BATCH_DOT_CASES + CONV_CASES


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("case", ALL, ids=lambda c: c.id)
def test_contraction_matches_reference(case):
    matches_reference(case)


def test_ids_are_unique():
    ids = [case.id for case in ALL]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


# -- fusion: the GEMM writes the kernel's output, bias and activation follow in place ------------------


def _node(op: str, inputs, name: str, **attrs) -> Value:
    node = Node(get_schema(op).name, tuple(inputs), {k: format_value(v) for k, v in attrs.items()}, name)
    return Value(node, 0)


def _layer(op: str, shapes: dict, **attrs) -> Graph:
    """`op` of variables named after `shapes` (in order), then a relu."""
    layer = _node(op, [variable(name).output() for name in shapes], "layer", **attrs)
    return Graph([_node("Activation", [layer], "act", act_type="relu")])


@pytest.mark.parametrize(
    "op, shapes, attrs",
    [
        ("FullyConnected", {"x": (100, 784), "w": (128, 784), "b": (128,)}, {"num_hidden": 128}),
        ("Convolution", {"x": (64, 1, 28, 28), "w": (20, 1, 5, 5), "b": (20,)}, {"kernel": (5, 5), "num_filter": 20}),
    ],
)  # fmt: skip
def test_gemm_writes_the_output_and_the_epilogue_fuses(op, shapes, attrs):
    graph = _layer(op, shapes, **attrs)
    _, built = compile_graph(graph, shapes)
    program = built.program
    (kernel,) = program.kernels
    gemms = [stage for stage in kernel.stages if isinstance(stage, GemmStage)]
    assert len(gemms) == 1 and gemms[0].c.buffer == program.outputs[0][1], str(program)
    assert kernel.stages[-2] is gemms[0], "one loop adds the bias and applies the relu: " + str(program)


# -- a LeNet-like training step ------------------------------------------------------------------------


def test_lenet_training_step_matches_reference():
    """Forward outputs and every parameter gradient of conv-relu-conv-relu-fc-softmax on an MNIST batch
    of 64, at training scale (data and parameters in [-0.1, 0.1]), as the reference computes them."""
    data = mx.sym.var("data")
    conv1 = mx.sym.Convolution(data, name="conv1", kernel=(5, 5), num_filter=20)
    relu1 = mx.sym.Activation(conv1, name="relu1", act_type="relu")
    conv2 = mx.sym.Convolution(relu1, name="conv2", kernel=(5, 5), stride=(2, 2), pad=(1, 1), num_filter=50)
    relu2 = mx.sym.Activation(conv2, name="relu2", act_type="relu")
    fc = mx.sym.FullyConnected(mx.sym.Flatten(relu2), name="fc", num_hidden=10)
    symbol = mx.sym.SoftmaxOutput(fc, name="softmax")
    arg_shapes, _, _ = symbol.infer_shape(data=(64, 1, 28, 28))
    shapes = dict(zip(symbol.list_arguments(), arg_shapes))
    forward = symbol._graph
    params = [v.output() for v in forward.variables if v.name not in ("data", "softmax_label")]
    graph = Graph(list(forward.outputs) + gradients(forward, infer_shapes(forward, shapes), params, [None]))
    rng = np.random.default_rng(0)
    feeds = {name: rng.uniform(-0.1, 0.1, shape).astype(np.float32) for name, shape in shapes.items()}
    feeds["softmax_label"] = rng.integers(0, 10, 64).astype(np.float32)
    exe, _ = compile_graph(graph, shapes, optimize=True, is_train=True)
    got = exe(**{name: value for name, value in feeds.items() if name in exe.input_names})
    want = evaluate(graph, feeds)
    for position, value in enumerate(graph.outputs):
        assert_close(got[position], want[value], what=f"output {position}")

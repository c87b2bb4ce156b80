"""Gradient rules of the tensor ops (elementwise, broadcast, reduce, shape, join, slicing, indexing,
matmul, init_ops, sorting, layout) and of the backward helpers in tensor_backward.py.

Each GRAD_CASE is checked against central finite differences in float64; inputs are chosen away from
kinks (abs at 0, clip bounds, max ties, mod's integer ratios) so the differences are well defined.
The backward graph of each case must also pass shape and dtype inference, giving every gradient its
input's shape and dtype, since the compiler infers the backward graph like any other.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember.compiler import Graph, Node, RefContext, Value, evaluate, variable
from ember.compiler.ops import SCHEMAS, grad_rules, reference_rules
from ember.compiler.passes import infer_shapes, infer_types
from ember.compiler.passes.autodiff import gradients

from .grad_harness import check_gradient, symbolic_gradients
from .harness import OpCase, input_shapes


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """The gradient checks run executors compiled from their first run (not 'tiered'), as before: the
    float64 programs stay covered, and Dropout's re-seeded mask never changes tier mid-check."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")


TENSOR_MODULES = (
    "elementwise",
    "broadcast",
    "reduce",
    "shape",
    "join",
    "slicing",
    "indexing",
    "matmul",
    "init_ops",
    "sorting",
    "layout",
    "tensor_backward",
)

_rng = np.random.default_rng(7)


def normal(*shape) -> np.ndarray:
    return _rng.standard_normal(shape)


def uniform(low: float, high: float, *shape) -> np.ndarray:
    return _rng.uniform(low, high, shape)


def signs(*shape) -> np.ndarray:
    return np.where(_rng.random(shape) < 0.5, -1.0, 1.0)


def away_from_zero(*shape) -> np.ndarray:
    """|x| in [0.3, 1.5], either sign: clear of the kinks of abs, sign-like ops and 1/x."""
    return signs(*shape) * uniform(0.3, 1.5, *shape)


def positive(*shape) -> np.ndarray:
    return uniform(0.5, 2.0, *shape)


def unit(*shape) -> np.ndarray:
    """In (-0.8, 0.8): inside the domains of arcsin, arccos and arctanh."""
    return uniform(-0.8, 0.8, *shape)


def ratio_safe(*shape) -> tuple[np.ndarray, np.ndarray]:
    """(numerator, divisor) factors for mod: |a| = k + [0.3, 0.7] and |b| in [1, 1.05], so a / b stays
    at least 0.19 from an integer for every pairing, however the two broadcast."""
    return (
        signs(*shape) * (_rng.integers(0, 3, shape) + uniform(0.3, 0.7, *shape)),
        signs(*shape) * uniform(1.0, 1.05, *shape),
    )


def distinct(*shape) -> np.ndarray:
    """A permutation of well-spaced values: no ties for max, min, sort or topk."""
    size = int(np.prod(shape))
    return (_rng.permutation(size) * 0.37 - size * 0.15).reshape(shape)


def case(
    op: str, inputs: list, attrs: dict | None = None, skip: tuple[int, ...] = ()
) -> tuple[OpCase, tuple]:
    return OpCase(op, inputs, attrs or {}), skip


# ---------------------------------------------------------------------------------------------
# elementwise.py

UNARY_DOMAINS = {
    "exp": normal,
    "log": positive,
    "log2": positive,
    "log10": positive,
    "log1p": lambda *s: uniform(-0.5, 1.5, *s),
    "expm1": normal,
    "sqrt": positive,
    "rsqrt": positive,
    "cbrt": away_from_zero,
    "rcbrt": away_from_zero,
    "square": normal,
    "abs": away_from_zero,
    "negative": normal,
    "reciprocal": away_from_zero,
    "sin": normal,
    "cos": normal,
    "tan": unit,
    "arcsin": unit,
    "arccos": unit,
    "arctan": normal,
    "sinh": normal,
    "cosh": normal,
    "tanh": normal,
    "arcsinh": normal,
    "arccosh": lambda *s: uniform(1.2, 3.0, *s),
    "arctanh": unit,
    "degrees": normal,
    "radians": normal,
    "sigmoid": normal,
    "log_sigmoid": normal,
    "relu": away_from_zero,
    "softsign": away_from_zero,
    "erf": normal,
    "_copy": normal,
}
# Zero gradient (MXNet's too): checked against differences that are zero away from the steps.
ZERO_GRADIENT_UNARY = ("sign", "floor", "ceil", "round", "rint", "fix", "trunc", "logical_not", "zeros_like")

ELEMENTWISE_CASES = [
    *[case(op, [domain(3, 5)]) for op, domain in UNARY_DOMAINS.items()],
    *[case(op, [domain(1, 4, 1)]) for op, domain in UNARY_DOMAINS.items()],
    *[case(op, [away_from_zero(2, 1, 3) + 0.25]) for op in ZERO_GRADIENT_UNARY],
    case("elemwise_add", [(3, 5), (3, 5)]),
    case("elemwise_sub", [(1, 7), (1, 7)]),
    case("elemwise_mul", [(2, 1, 3), (2, 1, 3)]),
    case("elemwise_div", [normal(3, 5), away_from_zero(3, 5)]),
    case("_mod", list(ratio_safe(3, 5))),
    case("_power", [positive(1, 7), normal(1, 7)]),
    case("_maximum", [normal(3, 5), normal(3, 5)]),
    case("_minimum", [normal(2, 1, 3), normal(2, 1, 3)]),
    case("_hypot", [away_from_zero(3, 5), normal(3, 5)]),
    case("_greater", [normal(3, 5), normal(3, 5)]),
    case("_logical_and", [normal(1, 3), normal(1, 3)]),
    case("_plus_scalar", [(3, 5)], {"scalar": 2.5}),
    case("_minus_scalar", [(1, 7)], {"scalar": -1.5}),
    case("_rminus_scalar", [(2, 1, 3)], {"scalar": 0.5}),
    case("_mul_scalar", [(3, 5)], {"scalar": -1.5}),
    case("_div_scalar", [(1, 7)], {"scalar": 0.7}),
    case("_rdiv_scalar", [away_from_zero(3, 5)], {"scalar": 2.0}),
    case("_power_scalar", [positive(3, 5)], {"scalar": 2.5}),
    case("_power_scalar", [normal(1, 7)], {"scalar": 3.0}),
    case("_rpower_scalar", [normal(3, 5)], {"scalar": 1.7}),
    case("_rpower_scalar", [normal(2, 1, 3)], {"scalar": 0.5}),
    case("_mod_scalar", [np.array([[0.3, 1.2, -0.5], [2.5, -1.6, 0.1]])], {"scalar": 0.9}),
    case("_rmod_scalar", [np.array([[0.7, 1.1, -0.9], [2.1, -1.3, 0.5]])], {"scalar": 2.3}),
    case("_maximum_scalar", [away_from_zero(3, 5) + 0.2], {"scalar": 0.2}),
    case("_minimum_scalar", [away_from_zero(1, 7) - 0.4], {"scalar": -0.4}),
    case("_hypot_scalar", [normal(3, 5)], {"scalar": 1.5}),
    case("_lesser_equal_scalar", [normal(3, 5)], {"scalar": 0.1}),
    case(
        "clip", [np.array([[-1.2, -0.4, 0.0, 0.3], [0.59, 0.61, 2.0, -0.51]])], {"a_min": -0.5, "a_max": 0.6}
    ),
    case("clip", [normal(1, 7)], {"a_min": 0.0, "a_max": 10.0}),
    case("Cast", [(3, 5)], {"dtype": "float64"}),
    case("where", [np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 2.0]]), (2, 3), (2, 3)], skip=(0,)),
    case("where", [np.array([0, 1, 1], dtype=np.int32), (3, 1, 5), (3, 1, 5)], skip=(0,)),
    case("add_n", [(3, 5), (3, 5), (3, 5)], {"num_args": 3}),
    case("add_n", [(1, 7)], {"num_args": 1}),
]

# ---------------------------------------------------------------------------------------------
# broadcast.py: both operands stretched, each in turn, and a rank difference

BROADCAST_PAIRS = [((3, 1, 5), (1, 4, 1)), ((1, 3), (5, 3)), ((2, 3), (3,)), ((1,), (3, 1))]


def _broadcast_operands(key: str, lhs: tuple, rhs: tuple) -> list:
    if key == "div":
        return [normal(*lhs), away_from_zero(*rhs)]
    if key == "mod":
        return [ratio_safe(*lhs)[0], ratio_safe(*rhs)[1]]
    if key == "power":
        return [positive(*lhs), normal(*rhs)]
    if key == "hypot":
        return [away_from_zero(*lhs), away_from_zero(*rhs)]
    return [normal(*lhs), normal(*rhs)]


BROADCAST_CASES = [
    *[
        case(f"broadcast_{key}", _broadcast_operands(key, lhs, rhs))
        for key in ("add", "sub", "mul", "div", "mod", "power", "maximum", "minimum", "hypot")
        for lhs, rhs in BROADCAST_PAIRS
    ],
    case("broadcast_greater", [normal(3, 1), normal(1, 4)]),
    case("broadcast_to", [(3, 1, 1)], {"shape": (3, 4, 5)}),
    case("broadcast_to", [(1, 3)], {"shape": (4, 0)}),
    case("broadcast_to", [(2, 3)], {"shape": (2, 3)}),
    case("broadcast_axis", [(1, 3, 1)], {"axis": (0, 2), "size": (2, 5)}),
    case("broadcast_axis", [(3, 1)], {"axis": -1, "size": 4}),
    case("broadcast_like", [(1, 3), (5, 3)]),
    case("broadcast_like", [(2, 1, 3), (5,)], {"lhs_axes": (1,), "rhs_axes": (0,)}),
    case("broadcast_like", [(1, 1), (3, 1)], {"lhs_axes": (0, -1), "rhs_axes": (0, 1)}),
]

# ---------------------------------------------------------------------------------------------
# reduce.py

REDUCE_ATTRS = [
    {},
    {"axis": 1, "keepdims": True},
    {"axis": (0, 2)},
    {"axis": -1},
    {"axis": (1,), "exclude": True},
    {"axis": (0, -1), "exclude": True, "keepdims": True},
    {"axis": ()},
]


def _reduce_input(op: str, shape: tuple) -> np.ndarray:
    if op in ("prod", "nanprod"):
        return away_from_zero(*shape)
    return distinct(*shape)


REDUCE_CASES = [
    *[
        case(op, [_reduce_input(op, (3, 1, 5))], attrs)
        for op in ("sum", "mean", "max", "min", "prod", "nansum", "nanprod")
        for attrs in REDUCE_ATTRS
    ],
    *[
        case(op, [_reduce_input(op, (7,))])
        for op in ("sum", "mean", "max", "min", "prod", "nansum", "nanprod")
    ],
    case("argmax", [distinct(3, 5)], {"axis": 1}),
    case("argmin", [distinct(1, 7)]),
    case("norm", [away_from_zero(3, 1, 5)]),
    case("norm", [away_from_zero(3, 1, 5)], {"ord": 1}),
    case("norm", [normal(3, 1, 5)], {"axis": (0, -1), "keepdims": True}),
    case("norm", [away_from_zero(2, 3).astype(np.float32)], {"ord": 1, "axis": 1, "out_dtype": "float64"}),
    case("norm", [normal(7)], {"axis": 0}),
]

# ---------------------------------------------------------------------------------------------
# matmul.py

DOT_CASES = [
    case("dot", [(3, 4), (4, 5)]),
    case("dot", [(4, 3), (4, 5)], {"transpose_a": True}),
    case("dot", [(3, 4), (5, 4)], {"transpose_b": True}),
    case("dot", [(4, 3), (5, 4)], {"transpose_a": True, "transpose_b": True}),
    case("dot", [(2, 3, 4), (4, 1, 5)]),
    case("dot", [(4, 2, 1), (4, 3)], {"transpose_a": True}),
    case("dot", [(2, 3), (5, 1, 3)], {"transpose_b": True}),
    case("dot", [(3, 2, 1), (5, 1, 3)], {"transpose_a": True, "transpose_b": True}),
    case("dot", [(5,), (5,)]),
    case("dot", [(3,), (3, 4)]),
    case("dot", [(4, 3), (3,)]),
    case("dot", [(3,), (3, 4)], {"transpose_a": True}),
    case("dot", [(3,), (4, 3)], {"transpose_b": True}),
    case("dot", [(1, 1), (1, 3)]),
    *[
        case("batch_dot", [lhs, rhs], {"transpose_a": ta, "transpose_b": tb})
        for ta, tb, lhs, rhs in (
            (False, False, (2, 3, 4), (2, 4, 5)),
            (True, False, (2, 4, 3), (2, 4, 5)),
            (False, True, (2, 3, 4), (2, 5, 4)),
            (True, True, (2, 4, 3), (2, 5, 4)),
            (False, False, (3, 1, 1, 4), (3, 1, 4, 1)),
        )
    ],
]

# ---------------------------------------------------------------------------------------------
# shape.py, join.py, slicing.py, layout.py

SHAPE_CASES = [
    case("Reshape", [(2, 3, 4)], {"shape": (-1, 4)}),
    case("Reshape", [(2, 3, 4)], {"shape": (0, -3)}),
    case("Reshape", [(1, 6)], {"shape": (3, -1), "reverse": True}),
    case("Flatten", [(2, 3, 1)]),
    case("Flatten", [(5,)]),
    case("transpose", [(2, 3, 4)]),
    case("transpose", [(2, 1, 3)], {"axes": (1, 0, 2)}),
    case("transpose", [(2, 5, 3)], {"axes": (-1, 0, 1)}),
    case("SwapAxis", [(2, 1, 3)], {"dim1": 0, "dim2": -1}),
    case("expand_dims", [(3, 5)], {"axis": -1}),
    case("expand_dims", [(7,)], {"axis": 0}),
    case("squeeze", [(1, 3, 1)]),
    case("squeeze", [(1, 3, 1)], {"axis": (0,)}),
    case("Concat", [(2, 1, 3), (2, 4, 3), (2, 2, 3)], {"num_args": 3, "dim": 1}),
    case("Concat", [(3, 1), (3, 5)], {"num_args": 2, "dim": -1}),
    case("Concat", [(1, 3)], {"num_args": 1, "dim": 0}),
    case("stack", [(2, 3), (2, 3), (2, 3)], {"num_args": 3, "axis": 0}),
    case("stack", [(1, 5), (1, 5)], {"num_args": 2, "axis": -1}),
    case("SliceChannel", [(2, 6, 1)], {"num_outputs": 3}),
    case("SliceChannel", [(3, 1, 5)], {"num_outputs": 3, "axis": 0, "squeeze_axis": True}),
    case("SliceChannel", [(2, 5)], {"num_outputs": 1, "axis": -1}),
    case("slice_axis", [(3, 5)], {"axis": 1, "begin": 1, "end": None}),
    case("slice_axis", [(2, 1, 7)], {"axis": -1, "begin": -3, "end": -1}),
    case("slice", [(5, 3)], {"begin": (1, None), "end": (None, 2)}),
    case("slice", [(7, 4, 1)], {"begin": (None, -1), "end": (None, 0), "step": (2, -2)}),
    case("slice", [(5, 3)], {"begin": (4,), "end": (None,), "step": (-3,)}),
    case("tile", [(1, 3)], {"reps": (2, 1, 3)}),
    case("tile", [(2, 3)], {"reps": (3,)}),
    case("repeat", [(2, 3)], {"repeats": 3}),
    case("repeat", [(2, 1, 3)], {"repeats": 2, "axis": -1}),
    case("repeat", [(5,)], {"repeats": 1, "axis": 0}),
    case(
        "Pad",
        [(1, 2, 3, 4)],
        {"mode": "constant", "pad_width": (0, 0, 0, 0, 1, 2, 0, 1), "constant_value": 1.5},
    ),
    case("Pad", [(2, 1, 3, 3)], {"mode": "edge", "pad_width": (0, 0, 0, 0, 2, 1, 1, 3)}),
    case("Pad", [(1, 2, 4, 3)], {"mode": "reflect", "pad_width": (0, 0, 0, 0, 3, 1, 2, 2)}),
    case("Pad", [(1, 1, 2, 3, 2)], {"mode": "edge", "pad_width": (0, 0, 0, 0, 1, 1, 0, 2, 1, 1)}),
    case("Pad", [(1, 1, 3, 2, 5)], {"mode": "reflect", "pad_width": (0, 0, 0, 0, 2, 0, 1, 1, 0, 4)}),
    case("reverse", [(3, 1, 5)], {"axis": (0, 2)}),
    case("reverse", [(2, 3)], {"axis": (1, 1, 0)}),
    case("reshape_like", [(2, 3, 4), (6, 4)]),
    case(
        "reshape_like", [(2, 3, 5), (1, 6, 7)], {"lhs_begin": 0, "lhs_end": 2, "rhs_begin": 1, "rhs_end": 2}
    ),
    case("slice_like", [(4, 5, 3), (2, 5, 1)]),
    case("slice_like", [(4, 5, 3), (3, 1, 2)], {"axes": (0, -1)}),
]

# ---------------------------------------------------------------------------------------------
# indexing.py, sorting.py

INDEXING_CASES = [
    case("take", [(5, 3), np.array([[0, 4], [2, 2]], dtype=np.int32)], skip=(1,)),
    case(
        "take", [(2, 3, 4), np.array([-1.0, 4.0, 1.0], dtype=np.float32)], {"axis": 1, "mode": "wrap"}, (1,)
    ),
    case("take", [(5,), np.array([3.0, 3.0, 0.0], dtype=np.float32)], skip=(1,)),
    case("take", [(3, 1, 5), np.array([-2, 7, 1], dtype=np.int64)], {"axis": -1}, (1,)),
    case("take", [(4, 3), np.array([[1]], dtype=np.int32)], {"mode": "raise"}, (1,)),
    case("pick", [(3, 4), np.array([0.0, 3.0, 1.0], dtype=np.float32)], skip=(1,)),
    case("pick", [(3, 4), np.array([[2, 0, 1, 2]], dtype=np.int32)], {"axis": 0, "keepdims": True}, (1,)),
    case("pick", [(2, 5, 1), np.array([[-1], [7]], dtype=np.int32)], {"axis": 1, "mode": "wrap"}, (1,)),
    case("pick", [(7,), np.array([9], dtype=np.int32)], {"axis": 0}, (1,)),
    case("sort", [distinct(3, 5)]),
    case("sort", [distinct(3, 1, 5)], {"axis": 0, "is_ascend": False}),
    case("sort", [distinct(2, 3)], {"axis": None}),
    case("topk", [distinct(3, 5)], {"k": 2, "ret_typ": "value"}),
    case("topk", [distinct(3, 1, 5)], {"axis": 0, "k": 3, "ret_typ": "both", "is_ascend": True}),
    case("topk", [distinct(2, 3)], {"axis": None, "k": 4, "ret_typ": "value"}),
    case("topk", [distinct(1, 7)], {"k": 0, "ret_typ": "value"}),
    case("topk", [distinct(3, 5)], {"k": 2, "ret_typ": "indices"}),
    case("topk", [distinct(3, 5)], {"k": 2, "ret_typ": "mask"}),
    case("argsort", [distinct(3, 5)]),
]

# ---------------------------------------------------------------------------------------------
# tensor_backward.py: each is linear in its gradient input

HELPER_CASES = [
    case("_backward_slice", [(1, 3)], {"shape": (3, 5), "begin": (1, None), "end": (2, 3)}),
    case(
        "_backward_slice",
        [(3, 2)],
        {"shape": (7, 4), "begin": (None, -1), "end": (None, 0), "step": (-3, -2)},
    ),
    case("_backward_pad", [(1, 3, 4, 7)], {"mode": "constant", "pad_width": (0, 0, 0, 0, 1, 0, 2, 2)}),
    case("_backward_pad", [(2, 1, 5, 5)], {"mode": "edge", "pad_width": (0, 0, 0, 0, 2, 0, 1, 1)}),
    case(
        "_backward_pad", [(1, 2, 5, 3, 7)], {"mode": "reflect", "pad_width": (0, 0, 0, 0, 1, 1, 1, 0, 2, 2)}
    ),
    case(
        "_scatter_add_axis",
        [(2, 3), np.array([[0, 4, 4], [1, 2, -1]], dtype=np.float32)],
        {"axis": 1, "size": 5},
        (1,),
    ),
    case(
        "_scatter_add_axis",
        [(3, 4, 2), np.array([[[0], [7], [2], [-4]]], dtype=np.int32)],
        {"axis": -2, "size": 3, "mode": "wrap"},
        (1,),
    ),
    case(
        "_scatter_add_axis", [(3, 2), np.array([[1], [0], [1]], dtype=np.int32)], {"axis": 0, "size": 2}, (1,)
    ),
]

GRAD_CASES = (
    ELEMENTWISE_CASES
    + BROADCAST_CASES
    + REDUCE_CASES
    + DOT_CASES
    + SHAPE_CASES
    + INDEXING_CASES
    + HELPER_CASES
)


def _case_id(item) -> str:
    return item.id if isinstance(item, OpCase) else ""


@pytest.mark.parametrize("case, skip", GRAD_CASES, ids=_case_id)
def test_gradient_matches_finite_differences(case, skip):
    check_gradient(case, skip)


# Cases whose float16 or float32 outputs finite differences cannot resolve: inference checks only.
INFERENCE_ONLY_CASES = [
    case("norm", [normal(3, 2).astype(np.float32)], {"axis": 0, "out_dtype": "float16"}),
    case("Cast", [normal(3, 2).astype(np.float64)], {"dtype": "float32"}),
    case("Cast", [(1, 3)], {"dtype": "float16"}),
    case(
        "_scatter_add_axis",
        [normal(2, 3).astype(np.float16), np.array([[1, 0, 1]])],
        {"axis": 0, "size": 2},
        (1,),
    ),
]


@pytest.mark.parametrize("case, skip", GRAD_CASES + INFERENCE_ONLY_CASES, ids=_case_id)
def test_backward_graph_infers_input_shapes_and_dtypes(case, skip):
    graph, node = case.graph()
    arrays = case.arrays(np.random.default_rng(0))
    given_shapes = input_shapes(case)
    given_dtypes = {v.node.name: a.dtype.name for v, a in zip(node.inputs, arrays)}
    shapes = infer_shapes(graph, given_shapes)
    dtypes = infer_types(graph, given_dtypes)
    visible = [Value(node, i) for i in range(node.num_visible_outputs)]
    heads = [variable(f"head_grad{i}").output() for i in range(len(visible))]
    wrt = [i for i in range(len(node.inputs)) if i not in skip]
    grads = gradients(Graph(visible), shapes, [node.inputs[i] for i in wrt], heads, dtypes)
    present = [(i, grad) for i, grad in zip(wrt, grads) if grad is not None]
    if not present:
        return
    backward = Graph([grad for _, grad in present])
    names = {h.node.name: v for h, v in zip(heads, visible)}
    backward_shapes = infer_shapes(backward, {**given_shapes, **{n: shapes[v] for n, v in names.items()}})
    backward_dtypes = infer_types(backward, {**given_dtypes, **{n: dtypes[v] for n, v in names.items()}})
    for i, grad in present:
        assert backward_shapes[grad] == shapes[node.inputs[i]], f"input {i}"
        assert backward_dtypes[grad] == dtypes[node.inputs[i]], f"input {i}"


def test_every_tensor_op_has_a_gradient_rule():
    ops = [op for op in SCHEMAS if reference_rules[op].__module__.rsplit(".", 1)[-1] in TENSOR_MODULES]
    assert len(ops) > 150
    assert [op for op in ops if op not in grad_rules] == []


def test_every_differentiable_tensor_op_has_a_gradient_case():
    """Ops whose rule passes a gradient somewhere are each checked by at least one GRAD_CASE."""
    covered = {c.op for c, _ in GRAD_CASES}
    no_inputs = {op for op in SCHEMAS if SCHEMAS[op].inputs == ()}
    ops = [op for op in SCHEMAS if reference_rules[op].__module__.rsplit(".", 1)[-1] in TENSOR_MODULES]
    lacking = [
        op
        for op in ops
        if op not in covered
        and op not in no_inputs
        and grad_rules[op].__name__ not in ("_no_gradient", "_non_differentiable")
    ]
    assert lacking == []


def test_nan_elements_get_no_gradient_from_nansum_and_nanprod():
    x = np.array([[1.5, np.nan, -2.0], [np.nan, 0.5, 3.0]])
    head = np.array([2.0, -1.0])
    expected = {
        "nansum": np.array([[2.0, 0.0, 2.0], [0.0, -1.0, -1.0]]),
        "nanprod": np.array([[2.0 * -2.0, 0.0, 2.0 * 1.5], [0.0, -1.0 * 3.0, -1.0 * 0.5]]),
    }
    for op, want in expected.items():
        (grad,) = symbolic_gradients(OpCase(op, [x], {"axis": 1}), [x], [head], [0], seed=0)
        np.testing.assert_allclose(grad, want, rtol=1e-12)


def test_slice_channel_gives_unused_parts_zero_gradient():
    x, head = variable("x"), variable("head")
    node = Node("SliceChannel", (x.output(),), {"num_outputs": "3"}, "split")
    shapes = infer_shapes(Graph([Value(node, 1)]), {"x": (2, 6)})
    (grad,) = gradients(Graph([Value(node, 1)]), shapes, [x.output()], [head.output()])
    dy = np.arange(4.0).reshape(2, 2) + 1
    values = evaluate(Graph([grad]), {"x": np.zeros((2, 6)), "head": dy}, RefContext())
    np.testing.assert_array_equal(
        values[grad], np.concatenate([np.zeros((2, 2)), dy, np.zeros((2, 2))], axis=1)
    )


def test_max_ties_each_get_the_whole_gradient_as_in_mxnet():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
    head = np.array([0.5, -2.0])
    (grad,) = symbolic_gradients(OpCase("max", [x], {"axis": 1}), [x], [head], [0], seed=0)
    np.testing.assert_array_equal(grad, [[0.0, 0.5, 0.5], [-2.0, -2.0, 0.0]])


def test_maximum_tie_sends_the_gradient_to_lhs_as_in_mxnet():
    lhs, rhs = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    head = np.array([1.0, 1.0, 1.0])
    grads = symbolic_gradients(OpCase("_maximum", [lhs, rhs]), [lhs, rhs], [head], [0, 1], seed=0)
    np.testing.assert_array_equal(grads[0], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(grads[1], [0.0, 1.0, 0.0])
    grads = symbolic_gradients(OpCase("_minimum", [lhs, rhs]), [lhs, rhs], [head], [0, 1], seed=0)
    np.testing.assert_array_equal(grads[0], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(grads[1], [0.0, 0.0, 1.0])


def test_clip_passes_the_gradient_at_its_bounds_as_in_mxnet():
    x = np.array([-1.0, -0.5, 0.0, 0.6, 0.7])
    head = np.ones(5)
    (grad,) = symbolic_gradients(OpCase("clip", [x], {"a_min": -0.5, "a_max": 0.6}), [x], [head], [0], seed=0)
    np.testing.assert_array_equal(grad, [0.0, 1.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("executor", ["reference", "compiled"])
def test_rdiv_scalar_gradient_rounds_as_mxnet(executor, monkeypatch):
    """d(s / x) is MXNet's rdiv_grad, out_grad * (-s / x^2) in the data's dtype, bit for bit."""
    monkeypatch.setenv("EMBER_EXECUTOR", executor)
    x = np.array([0.7, 1.5, -2.5, 0.3], np.float32)
    dy = np.full(4, 0.7, np.float32)
    ex = (2.0 / mx.sym.Variable("x")).bind(mx.cpu(), {"x": mx.nd.array(x)}, args_grad={"x": mx.nd.zeros(4)})
    ex.forward(is_train=True)
    ex.backward([mx.nd.array(dy)])
    np.testing.assert_array_equal(ex.grad_dict["x"].asnumpy(), dy * (np.float32(-2.0) / (x * x)))

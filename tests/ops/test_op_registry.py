"""Every op is complete in the registry, its shape/type rules agree with its NumPy reference, and the
facts its schema declares (loss head, reshape, random draws, context reads) are what its rules do."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

from ember.compiler import Graph, Node, RefContext, evaluate, run, variable
from ember.compiler.ops import SCHEMAS, draws_random, missing_entries, reference_rules
from ember.compiler.ops.params import format_value
from ember.compiler.passes import infer_shapes, infer_types
from ember.compiler.passes.autodiff import gradients

from .cases_more import CASES as MORE_CASES
from .cases_nn import CASES as NN_CASES
from .cases_nn_backward import CASES as NN_BACKWARD_CASES
from .cases_tensor import CASES as TENSOR_CASES
from .cases_tensor_backward import CASES as TENSOR_BACKWARD_CASES
from .harness import input_dtypes, input_shapes

ALL_CASES = NN_CASES + TENSOR_CASES + MORE_CASES + NN_BACKWARD_CASES + TENSOR_BACKWARD_CASES


def test_every_op_has_every_required_rule():
    assert missing_entries() == {}


def test_every_op_has_cases_with_size_one_and_odd_dims():
    covered: dict[str, set[str]] = {}
    for case in ALL_CASES:
        dims = [d for item in case.inputs for d in (item.shape if isinstance(item, np.ndarray) else tuple(item))]
        if not case.inputs:  # array creation: the dims come from attributes, so count the output's
            graph, _ = case.graph()
            dims = [d for shape in infer_shapes(graph, {}).values() for d in shape]
        info = covered.setdefault(case.op, set())
        if 1 in dims:
            info.add("one")
        if any(d > 1 and d % 2 for d in dims):
            info.add("odd")
    lacking = {op: sorted({"one", "odd"} - covered.get(op, set())) for op in SCHEMAS}
    assert {op: v for op, v in lacking.items() if v} == {}


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_inferred_shapes_and_types_match_reference(case):
    rng = np.random.default_rng(0)
    graph, node = case.graph()
    arrays = case.arrays(rng)
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    values = evaluate(graph, feeds, RefContext(case.is_train, rng))
    shapes = infer_shapes(graph, input_shapes(case))
    dtypes = infer_types(graph, input_dtypes(case, arrays))
    for value in graph.outputs:
        out = values[value]
        assert isinstance(out, np.ndarray), f"output {value.index} is {type(out)}"
        assert shapes[value] == out.shape, f"output {value.index}"
        assert dtypes[value] == out.dtype.name, f"output {value.index}"


# ---------------------------------------------------------------------------------------------
# Schema facts against the rules


def _declaring(field: str) -> set[str]:
    """The ops whose schema sets `field` (to anything but False)."""
    return {op for op, schema in SCHEMAS.items() if getattr(schema, field) is not False}


def test_exactly_the_ops_whose_reference_reads_its_context_declare_reads_context():
    reads_ctx = {
        op for op, rule in reference_rules.items() if len(re.findall(r"\bctx\b", inspect.getsource(rule))) > 1
    }
    expected = {"BatchNorm", "_backward_BatchNorm", "Dropout", "LeakyReLU"}
    assert reads_ctx == _declaring("reads_context") == expected


def test_every_op_whose_results_differ_between_seeds_declares_draws_random():
    differing = set()
    for case in ALL_CASES:
        graph, node = case.graph()
        arrays = case.arrays(np.random.default_rng(0))
        feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
        first, second = (run(graph, feeds, is_train=True, seed=seed) for seed in (1, 2))
        if any(a.shape != b.shape or a.tobytes() != b.tobytes() for a, b in zip(first, second)):
            differing.add(case.op)
            assert draws_random(node), f"{case.id} draws random numbers"
    assert differing == _declaring("draws_random") == {"Dropout", "LeakyReLU"}
    assert _declaring("draws_random") <= _declaring("reads_context")


@pytest.mark.parametrize(
    "op_name, attrs, draws",
    [
        ("Dropout", {"p": 0.5}, True),
        ("LeakyReLU", {"act_type": "rrelu"}, True),
        ("LeakyReLU", {"act_type": "leaky"}, False),
    ],
)
def test_draws_random_says_whether_two_seeds_give_two_results(op_name, attrs, draws):
    x = variable("x").output()
    node = Node(op_name, (x,), {k: format_value(v) for k, v in attrs.items()}, "node")
    graph, data = Graph([node.output()]), {"x": -np.ones((50,), np.float32)}
    first, second = (run(graph, data, is_train=True, seed=seed)[0] for seed in (1, 2))
    assert draws_random(node) is draws
    assert np.array_equal(first, second) is not draws


RESHAPE_CASES = [case for case in ALL_CASES if SCHEMAS[case.op].reshapes_input]


def test_the_reshapes_are_the_reshape_family_and_each_has_cases():
    expected = {"Reshape", "Flatten", "expand_dims", "squeeze", "reshape_like"}
    assert _declaring("reshapes_input") == expected
    assert {case.op for case in RESHAPE_CASES} == expected


@pytest.mark.parametrize("case", RESHAPE_CASES, ids=lambda c: c.id)
def test_a_reshape_returns_input_0s_elements_in_row_major_order(case):
    graph, node = case.graph()
    arrays = case.arrays(np.random.default_rng(0))
    out = run(graph, {v.node.name: a for v, a in zip(node.inputs, arrays)})[0]
    assert out.dtype == arrays[0].dtype
    np.testing.assert_array_equal(out.reshape(-1), arrays[0].reshape(-1))


LOSS_CASES = [case for case in ALL_CASES if SCHEMAS[case.op].loss_head and not case.attrs.get("out_grad")]


def test_every_loss_head_has_cases():
    assert {case.op for case in LOSS_CASES} == _declaring("loss_head")


@pytest.mark.parametrize("case", LOSS_CASES, ids=lambda c: c.id)
def test_a_loss_head_gives_its_gradient_without_a_head_gradient_and_ignores_one_given(case):
    graph, node = case.graph()
    arrays = case.arrays(np.random.default_rng(0))
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    shapes = infer_shapes(graph, input_shapes(case))
    head = variable("head").output()
    feeds["head"] = np.full(shapes[node.output(0)], 3.0, arrays[0].dtype)
    data = node.inputs[0]
    (plain,), (weighted,) = (gradients(Graph([node.output(0)]), shapes, [data], [h]) for h in (None, head))
    assert plain is not None
    values = evaluate(Graph([plain, weighted]), feeds)
    np.testing.assert_array_equal(values[plain], values[weighted])

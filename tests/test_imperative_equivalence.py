"""Imperative `mx.nd` + `mx.autograd` against the symbolic executor, for every op case of the registry.

(a) `mx.nd.<op>(*inputs, **attrs)` gives exactly what `mx.sym.<op>` bound and run forward gives; (b)
autograd's gradients for random head gradients equal the executor's backward with the same heads;
(c) for a representative set of twice-differentiable ops, `autograd.grad(..., create_graph=True)`
differentiated again matches central differences of the first-order gradient in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember import autograd
from ember.base import MXNetError
from ember.compiler import RefContext, evaluate
from ember.compiler.ops import aux_update_rules, get_schema, grad_rules
from ember.compiler.ops.elementwise import UNARY
from ember.compiler.ops.registry import _no_gradient, _non_differentiable

from .ops.harness import OpCase
from .ops.test_op_registry import ALL_CASES

# Some registry cases feed ops inputs outside their domain (log of a negative): both sides give NaN
# silently, as MXNet does, and NumPy's warnings about it are noise here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SEED = 7  # mx.random.seed before each side's forward: Dropout and rrelu draw the same numbers on both

# Beyond the registry's cases: where's 1-D condition selects rows of a square x, where NumPy
# broadcasting would silently select columns instead.
EXTRA_CASES = [
    OpCase("where", [np.array([1.0, 0.0, 1.0], np.float32), (3, 3), (3, 3)]),
]
CASES = ALL_CASES + EXTRA_CASES


@pytest.fixture(autouse=True)
def reference_executor(monkeypatch):
    """Symbolic executors interpret the graph with the reference rules, as the imperative engine does,
    so the two front ends must agree bit for bit."""
    monkeypatch.setenv("EMBER_EXECUTOR", "reference")


# ---------------------------------------------------------------------------------------------
# The two front ends on one case


def _input_names(case: OpCase) -> tuple[tuple[str, ...], set[int]]:
    """The op's input names and the indices of its auxiliary-state (mutable) inputs."""
    schema = get_schema(case.op)
    names = schema.input_names(schema.parse_params(case.string_attrs()))
    return names, {i for i, n in enumerate(names) if n in schema.mutable_inputs}


def _grad_inputs(case: OpCase, arrays: list[np.ndarray]) -> list[int]:
    """The inputs to differentiate: every floating input that is not an auxiliary state."""
    _, aux = _input_names(case)
    return [i for i, a in enumerate(arrays) if a.dtype.kind == "f" and i not in aux]


def _as_list(out) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _nd(array: np.ndarray):
    return mx.nd.array(array, dtype=array.dtype)


def imperative(case: OpCase, arrays: list[np.ndarray], heads, wrt: list[int]):
    """(outputs, gradients by input index, inputs after) of `mx.nd.<op>`. With `heads` (a list, or
    "loss" for a loss head's own gradient) the call is recorded and differentiated: one output by
    `out.backward(head)`, several by `autograd.backward(outputs, heads)`."""
    inputs = [_nd(a) for a in arrays]
    for i in wrt:
        inputs[i].attach_grad()
    function = getattr(mx.nd, case.op)
    mx.random.seed(SEED)
    if heads is None:
        with autograd.train_mode() if case.is_train else autograd.predict_mode():
            outputs = _as_list(function(*inputs, **case.attrs))
        return [o.asnumpy() for o in outputs], {}, [x.asnumpy() for x in inputs]
    with autograd.record(train_mode=case.is_train):
        outputs = _as_list(function(*inputs, **case.attrs))
    if heads == "loss":
        autograd.backward(outputs, train_mode=case.is_train)
    elif len(outputs) == 1:
        outputs[0].backward(_nd(heads[0]), train_mode=case.is_train)
    else:
        autograd.backward(outputs, [_nd(h) for h in heads], train_mode=case.is_train)
    grads = {i: inputs[i].grad.asnumpy() for i in wrt}
    return [o.asnumpy() for o in outputs], grads, [x.asnumpy() for x in inputs]


def symbolic(case: OpCase, arrays: list[np.ndarray], heads, wrt: list[int]):
    """The same from `mx.sym.<op>` bound to the arrays: forward, then `backward(heads)` (none for "loss")."""
    names, aux = _input_names(case)
    symbol = getattr(mx.sym, case.op)(*[mx.sym.var(n) for n in names], name="node", **case.attrs)
    args = {n: _nd(a) for i, (n, a) in enumerate(zip(names, arrays)) if i not in aux}
    aux_states = {names[i]: _nd(arrays[i]) for i in sorted(aux)}
    grads = {names[i]: mx.nd.zeros(arrays[i].shape, dtype=arrays[i].dtype) for i in wrt}
    executor = symbol.bind(mx.cpu(), args=args, args_grad=grads or None, aux_states=aux_states or None)
    mx.random.seed(SEED)
    outputs = [o.asnumpy() for o in executor.forward(is_train=case.is_train)]
    assert executor.tier == "reference"
    if heads is not None:
        executor.backward(None if heads == "loss" else [_nd(h) for h in heads])
    state = {**args, **aux_states}
    return outputs, {i: grads[names[i]].asnumpy() for i in wrt}, [state[n].asnumpy() for n in names]


def assert_same(actual, expected, what: str) -> None:
    """Equal bit for bit, dtype and shape included; `what` names the values and the two sides."""
    assert len(actual) == len(expected), f"{what}: {len(actual)} vs {len(expected)} values"
    for index, (a, b) in enumerate(zip(actual, expected)):
        assert a.dtype == b.dtype, f"{what} {index}: dtype {a.dtype} vs {b.dtype}"
        assert a.shape == b.shape, f"{what} {index}: shape {a.shape} vs {b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=f"{what} {index}")


def _random_heads(outputs: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One head gradient per output: normal noise of the output's dtype (ones for integer outputs)."""
    return [rng.standard_normal(o.shape).astype(o.dtype) if o.dtype.kind == "f" else np.ones_like(o)
            for o in outputs]  # fmt: skip


def _differentiable(case: OpCase) -> bool:
    return grad_rules[get_schema(case.op).name] is not _no_gradient


# ---------------------------------------------------------------------------------------------
# (a) forward values, every case


def registry_reference(case: OpCase, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The visible outputs of the case's one-node graph (its attributes as MXNet's strings) under the
    registry's reference interpreter: what both front ends must reproduce."""
    graph, node = case.graph()
    feeds = {v.node.name: a for v, a in zip(node.inputs, arrays)}
    values = evaluate(graph, feeds, RefContext(case.is_train, np.random.default_rng(SEED)))
    return [np.asarray(values[v]) for v in graph.outputs[: node.num_visible_outputs]]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_imperative_forward_equals_symbolic_forward_and_the_reference(case):
    arrays = case.arrays(np.random.default_rng(0))
    outputs, _, inputs_after = imperative(case, arrays, None, [])
    expected, _, expected_inputs_after = symbolic(case, arrays, None, [])
    assert_same(outputs, expected, "output, imperative vs symbolic,")
    if case.op not in aux_update_rules:
        # A training-mode BatchNorm call updates its moving statistics at once; an executor does at
        # its backward (frontend/ndarray/aux_updates.py says why). Test (b) compares after the step.
        assert_same(inputs_after, expected_inputs_after, "input after forward, imperative vs symbolic,")
    assert_same(expected, registry_reference(case, arrays), "output, symbolic vs the registry's reference,")


# ---------------------------------------------------------------------------------------------
# (b) gradients, every case with a floating input (integer inputs take no gradient; creation ops have
# no inputs). Ops without a gradient must give zeros, as MXNet's grad_req 'write' does.

GRAD_CASES = [c for c in CASES if _grad_inputs(c, c.arrays(np.random.default_rng(0)))]


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: c.id)
def test_autograd_gradients_equal_executor_backward(case):
    rng = np.random.default_rng(0)
    arrays = case.arrays(rng)
    wrt = _grad_inputs(case, arrays)
    heads = _random_heads(imperative(case, arrays, None, [])[0], rng)
    if grad_rules[get_schema(case.op).name] is _non_differentiable:
        # a backward op (`_backward_Convolution_data`, ...): both front ends refuse, as MXNet does
        for front_end in (imperative, symbolic):
            with pytest.raises(MXNetError, match="non-differentiable"):
                front_end(case, arrays, heads, wrt)
        return
    outputs, grads, inputs_after = imperative(case, arrays, heads, wrt)
    expected, expected_grads, expected_inputs_after = symbolic(case, arrays, heads, wrt)
    assert_same(outputs, expected, "output, imperative vs symbolic,")
    assert_same(
        [grads[i] for i in wrt], [expected_grads[i] for i in wrt], "gradient, imperative vs symbolic,"
    )
    # BatchNorm's training step updates its moving statistics (and, with fix_gamma, sets gamma to 1)
    assert_same(inputs_after, expected_inputs_after, "input after backward, imperative vs symbolic,")
    if not _differentiable(case):
        for i in wrt:
            np.testing.assert_array_equal(grads[i], 0, err_msg=f"{case.op} passes no gradient to input {i}")


LOSS_CASES = [c for c in GRAD_CASES if get_schema(c.op).loss_head]


@pytest.mark.parametrize("case", LOSS_CASES, ids=lambda c: c.id)
def test_a_loss_head_gives_the_same_gradient_without_head_gradients(case):
    """A loss head's gradient is fixed: `backward()` with no head gradient on both sides gives what
    random head gradients give (they are ignored)."""
    rng = np.random.default_rng(0)
    arrays = case.arrays(rng)
    wrt = _grad_inputs(case, arrays)
    heads = _random_heads(imperative(case, arrays, None, [])[0], rng)
    _, grads, _ = imperative(case, arrays, "loss", wrt)
    _, expected, _ = symbolic(case, arrays, "loss", wrt)
    _, weighted, _ = imperative(case, arrays, heads, wrt)
    assert_same([grads[i] for i in wrt], [expected[i] for i in wrt], "gradient, imperative vs symbolic,")
    assert_same([grads[i] for i in wrt], [weighted[i] for i in wrt], "gradient, no head vs random heads,")


# ---------------------------------------------------------------------------------------------
# (c) second-order gradients against central differences of the first-order gradient, float64
#
# s(x) = sum_i <G_i(x), v_i> with G = autograd.grad(square(op(x)), x, head_grads=h): the square makes
# G depend on x for linear ops too (reshape, slice, sum, ...), so every case has a non-zero answer.
# Inputs stay away from kinks (0 for relu/abs, ties for max) and inside each op's domain.

_DOMAIN = np.random.default_rng(3)


def _away_from_zero(*shape) -> np.ndarray:
    """Values of magnitude in [0.2, 0.9], random signs, all distinct."""
    values = _DOMAIN.uniform(0.2, 0.9, shape) * _DOMAIN.choice([-1.0, 1.0], shape)
    return values.astype(np.float64)


def _positive(*shape, low=0.2, high=0.9) -> np.ndarray:
    return _DOMAIN.uniform(low, high, shape).astype(np.float64)


_UNARY_INPUTS = {"arccosh": lambda: _positive(2, 3, low=1.2, high=2.0)}
_POSITIVE_ONLY = {"log", "log10", "log2", "sqrt", "rsqrt", "cbrt", "rcbrt"}


def _unary_case(op: str) -> OpCase:
    if op in _UNARY_INPUTS:
        return OpCase(op, [_UNARY_INPUTS[op]()])
    return OpCase(op, [_positive(2, 3) if op in _POSITIVE_ONLY else _away_from_zero(2, 3)])


SMOOTH_UNARY = [op for op, unary in UNARY.items() if unary.grad]
SECOND_ORDER_CASES = [
    *[_unary_case(op) for op in SMOOTH_UNARY],
    *[OpCase(op, [_positive(2, 3), _positive(2, 3, low=1.1, high=1.9)])
      for op in ("elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_power", "_maximum",
                 "_minimum", "_hypot")],
    *[OpCase(op, [_positive(2, 3)], {"scalar": 1.5})
      for op in ("_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar",
                 "_rdiv_scalar", "_power_scalar", "_rpower_scalar", "_hypot_scalar", "_maximum_scalar",
                 "_minimum_scalar")],
    *[OpCase(f"broadcast_{key}", [_positive(2, 3), _positive(1, 3, low=1.1, high=1.9)])
      for key in ("add", "sub", "mul", "div", "power", "maximum", "minimum", "hypot")],
    OpCase("broadcast_to", [_away_from_zero(1, 3)], {"shape": (2, 3)}),
    OpCase("broadcast_axis", [_away_from_zero(2, 1)], {"axis": 1, "size": 3}),
    OpCase("broadcast_like", [_away_from_zero(1, 3), _away_from_zero(2, 3)]),
    OpCase("dot", [_away_from_zero(2, 3), _away_from_zero(3, 2)]),
    OpCase("dot", [_away_from_zero(3, 2), _away_from_zero(2, 3)], {"transpose_a": True, "transpose_b": True}),
    OpCase("batch_dot", [_away_from_zero(2, 1, 3), _away_from_zero(2, 3, 2)]),
    OpCase("FullyConnected", [_away_from_zero(2, 3), _away_from_zero(2, 3), _away_from_zero(2)],
           {"num_hidden": 2}),
    OpCase("FullyConnected", [_away_from_zero(1, 2, 3), _away_from_zero(2, 3)],
           {"num_hidden": 2, "no_bias": True, "flatten": False}),
    OpCase("softmax", [_away_from_zero(2, 3)]),
    OpCase("softmax", [_away_from_zero(3, 2)], {"axis": 0, "temperature": 2.0}),
    OpCase("log_softmax", [_away_from_zero(2, 3)]),
    OpCase("SoftmaxActivation", [_away_from_zero(2, 3)]),
    *[OpCase(op, [_away_from_zero(2, 3)], {"axis": 1})
      for op in ("sum", "mean", "prod", "max", "min", "nansum")],
    OpCase("sum", [_away_from_zero(2, 3)]),
    OpCase("norm", [_away_from_zero(2, 3)], {"ord": 2, "axis": 1}),
    OpCase("Reshape", [_away_from_zero(2, 3)], {"shape": (3, 2)}),
    OpCase("Flatten", [_away_from_zero(2, 1, 3)]),
    OpCase("transpose", [_away_from_zero(2, 3)]),
    OpCase("SwapAxis", [_away_from_zero(2, 1, 3)], {"dim1": 0, "dim2": 2}),
    OpCase("expand_dims", [_away_from_zero(2, 3)], {"axis": 1}),
    OpCase("squeeze", [_away_from_zero(2, 1, 3)]),
    OpCase("slice", [_away_from_zero(3, 4)], {"begin": (1, None), "end": (3, None), "step": (1, -2)}),
    OpCase("slice_axis", [_away_from_zero(2, 4)], {"axis": 1, "begin": 1, "end": 3}),
    OpCase("Concat", [_away_from_zero(2, 1), _away_from_zero(2, 2)], {"num_args": 2, "dim": 1}),
    OpCase("stack", [_away_from_zero(2), _away_from_zero(2)], {"num_args": 2}),
    OpCase("SliceChannel", [_away_from_zero(2, 4)], {"num_outputs": 2}),
    OpCase("add_n", [_away_from_zero(2, 2), _away_from_zero(2, 2), _away_from_zero(2, 2)], {"num_args": 3}),
    OpCase("tile", [_away_from_zero(2)], {"reps": (2, 2)}),
    OpCase("repeat", [_away_from_zero(2, 2)], {"repeats": 2, "axis": 0}),
    OpCase("reverse", [_away_from_zero(2, 3)], {"axis": (1,)}),
    OpCase("clip", [_away_from_zero(2, 3)], {"a_min": -0.5, "a_max": 0.5}),
    OpCase("take", [_away_from_zero(3, 2), np.array([2.0, 0.0, 2.0])]),
    OpCase("pick", [_away_from_zero(2, 3), np.array([2.0, 0.0])], {"axis": 1}),
    OpCase("where", [np.array([1.0, 0.0]), _away_from_zero(2, 2), _away_from_zero(2, 2)]),
    OpCase("Pad", [_away_from_zero(1, 1, 2, 2)], {"mode": "edge", "pad_width": (0, 0, 0, 0, 1, 0, 0, 1)}),
    *[OpCase("Activation", [_away_from_zero(2, 3)], {"act_type": act})
      for act in ("relu", "sigmoid", "tanh", "softrelu", "softsign")],
    *[OpCase("LeakyReLU", [_away_from_zero(2, 3)], {"act_type": act})
      for act in ("leaky", "elu", "selu", "gelu")],
    OpCase("LeakyReLU", [_away_from_zero(2, 3), _positive(3)], {"act_type": "prelu"}),
]  # fmt: skip


# Inputs that select or give a shape and take no gradient: left out of the second-order checks.
_SELECTOR_INPUTS = {"broadcast_like": {1}, "where": {0}, "take": {1}, "pick": {1}, "Embedding": {0}}


def _second_order_inputs(case: OpCase, arrays: list[np.ndarray]) -> list[int]:
    return [i for i in _grad_inputs(case, arrays) if i not in _SELECTOR_INPUTS.get(case.op, ())]


def _first_order(case, arrays, wrt, heads, project, create_graph=False):
    """s = sum_i <G_i, project_i> for G the gradient of <heads, square(op(x))> w.r.t. the inputs `wrt`;
    with `create_graph`, also backward of s, returning each input's second-order gradient."""
    inputs = [_nd(a) for a in arrays]
    for i in wrt:
        inputs[i].attach_grad()
    with autograd.record():
        squares = [mx.nd.square(o) for o in _as_list(getattr(mx.nd, case.op)(*inputs, **case.attrs))]
        grads = autograd.grad(squares, [inputs[i] for i in wrt], [_nd(h) for h in heads],
                              create_graph=create_graph, retain_graph=create_graph)  # fmt: skip
    if not create_graph:
        return sum(float(np.vdot(g.asnumpy(), v)) for g, v in zip(grads, project))
    autograd.backward(grads, [_nd(v) for v in project])
    return [inputs[i].grad.asnumpy() for i in wrt]


def _central_differences(case, arrays, wrt, heads, project, eps=1e-5) -> list[np.ndarray]:
    """d s / d x by central differences, element by element."""
    result = []
    for i in wrt:
        grad = np.zeros_like(arrays[i])
        for index in np.ndindex(arrays[i].shape):
            values = []
            for step in (eps, -eps):
                moved = [a.copy() for a in arrays]
                moved[i][index] += step
                values.append(_first_order(case, moved, wrt, heads, project))
            grad[index] = (values[0] - values[1]) / (2 * eps)
        result.append(grad)
    return result


def _second_order_problem(case: OpCase):
    """(inputs, wrt, head gradients, projection) of a second-order check, drawn from a fixed seed."""
    rng = np.random.default_rng(1)
    arrays = case.arrays(rng)
    wrt = _second_order_inputs(case, arrays)
    outputs = _as_list(getattr(mx.nd, case.op)(*[_nd(a) for a in arrays], **case.attrs))
    heads = [rng.standard_normal(o.shape) for o in outputs]
    return arrays, wrt, heads, [rng.standard_normal(arrays[i].shape) for i in wrt]


def _assert_matches_central_differences(case, arrays, wrt, heads, project, second) -> None:
    expected = _central_differences(case, arrays, wrt, heads, project)
    for i, got, want in zip(wrt, second, expected):
        message = f"second-order gradient of input {i}"
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=message)


@pytest.mark.parametrize("case", SECOND_ORDER_CASES, ids=lambda c: c.id)
def test_second_order_gradient_matches_central_differences(case):
    arrays, wrt, heads, project = _second_order_problem(case)
    second = _first_order(case, arrays, wrt, heads, project, create_graph=True)
    _assert_matches_central_differences(case, arrays, wrt, heads, project, second)


# Ops whose backward op has no gradient rule in the registry: MXNet 1.9.1 refuses a second-order
# gradient through them ("Operator ... is non-differentiable because it didn't register FGradient
# attribute"); Ember must either raise likewise or give the true value, never a silent zero.
NO_SECOND_ORDER_CASES = [
    OpCase("Convolution", [_away_from_zero(1, 1, 3, 3), _away_from_zero(1, 1, 2, 2)],
           {"kernel": (2, 2), "num_filter": 1, "no_bias": True}),
    OpCase("Pooling", [_away_from_zero(1, 1, 3, 3)], {"kernel": (2, 2), "pool_type": "avg"}),
    OpCase("Embedding", [np.array([0.0, 2.0, 2.0]), _away_from_zero(3, 2)],
           {"input_dim": 3, "output_dim": 2}),
]  # fmt: skip


@pytest.mark.parametrize("case", NO_SECOND_ORDER_CASES, ids=lambda c: c.id)
def test_second_order_through_a_backward_op_without_gradient_raises_or_is_right(case):
    arrays, wrt, heads, project = _second_order_problem(case)
    try:
        second = _first_order(case, arrays, wrt, heads, project, create_graph=True)
    except MXNetError as err:
        assert "differentiable" in str(err), str(err)
        return
    _assert_matches_central_differences(case, arrays, wrt, heads, project, second)

"""`mx.autograd` against MXNet 1.9.1's behaviour (MXNET_COMPAT.md 3.4): the recording and training flags,
marked variables and their grad_req, backward/grad with head gradients, higher-order gradients, graph
retention, the errors MXNet raises, in-place updates while recording, Dropout and BatchNorm in training
and prediction, get_symbol and autograd.Function. Expected values are analytic or NumPy-computed; the
cases follow MXNet's tests/python/unittest/test_autograd.py and test_higher_order_grad.py.
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

import ember as mx
from ember import autograd as ag
from ember.base import MXNetError

nd = mx.nd

NOT_IN_GRAPH = "Cannot differentiate node because it is not in a computational graph"
IN_PLACE = "Inplace operations (+=, -=, x[:]=, etc) are not supported when recording with autograd"


@pytest.fixture(autouse=True)
def flags_off_after_each_test():
    """Every test must leave recording and training off; reset them so one failure does not cascade."""
    yield
    left_on = (ag.is_recording(), ag.is_training())
    ag.set_recording(False)
    ag.set_training(False)
    assert left_on == (False, False)


def close(array, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(array.asnumpy(), np.asarray(expected, dtype=np.float32), rtol=rtol, atol=atol)


def variable(values) -> nd.NDArray:
    x = nd.array(values)
    x.attach_grad()
    return x


# -- flags ---------------------------------------------------------------------------------------


def test_flags_are_off_outside_any_scope():
    assert (ag.is_recording(), ag.is_training()) == (False, False)


@pytest.mark.parametrize(
    "scope, inside",
    [
        (lambda: ag.record(), (True, True)),
        (lambda: ag.record(train_mode=False), (True, False)),
        (lambda: ag.pause(), (False, False)),
        (lambda: ag.pause(train_mode=True), (False, True)),
        (lambda: ag.train_mode(), (False, True)),
        (lambda: ag.predict_mode(), (False, False)),
    ],
    ids=["record", "record-predict", "pause", "pause-train", "train_mode", "predict_mode"],
)
def test_each_scope_sets_its_flags_and_restores_them(scope, inside):
    with scope():
        assert (ag.is_recording(), ag.is_training()) == inside
    assert (ag.is_recording(), ag.is_training()) == (False, False)


def test_nested_scopes_restore_the_enclosing_flags():
    seen = []
    flags = lambda: (ag.is_recording(), ag.is_training())  # noqa: E731
    with ag.record():
        seen.append(flags())
        with ag.predict_mode():
            seen.append(flags())  # recording stays on
            with ag.train_mode():
                seen.append(flags())
            seen.append(flags())
        with ag.pause():
            seen.append(flags())
            with ag.record(train_mode=False):
                seen.append(flags())
            seen.append(flags())
        seen.append(flags())
    seen.append(flags())
    assert seen == [
        (True, True), (True, False), (True, True), (True, False),
        (False, False), (True, False), (False, False), (True, True), (False, False),
    ]  # fmt: skip


def test_set_recording_and_set_training_return_the_previous_value():
    assert ag.set_recording(True) is False
    assert ag.is_recording()
    assert ag.set_recording(True) is True
    assert ag.set_recording(False) is True
    assert ag.set_training(True) is False
    assert ag.is_training()
    assert ag.set_training(False) is True
    assert (ag.is_recording(), ag.is_training()) == (False, False)


def test_flags_are_per_thread():
    seen = {}

    def other_thread():
        seen["while main records"] = (ag.is_recording(), ag.is_training())
        with ag.record(train_mode=False):
            seen["own scope"] = (ag.is_recording(), ag.is_training())

    with ag.record():
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        seen["main after"] = (ag.is_recording(), ag.is_training())
    assert seen == {
        "while main records": (False, False),
        "own scope": (True, False),
        "main after": (True, True),
    }


# -- variables and grad_req ----------------------------------------------------------------------


def test_attach_grad_gives_a_zero_gradient_and_only_leaves_have_one():
    x = nd.array([1.0, 2.0, 3.0])
    assert x.grad is None
    x.attach_grad()
    close(x.grad, [0, 0, 0])
    assert x.grad.shape == x.shape and x.grad.dtype is np.float32
    with ag.record():
        y = x * 2
        assert y.grad is None
        y.backward(out_grad=nd.ones_like(y))
    close(x.grad, [2, 2, 2])


def test_grad_req_write_overwrites_on_every_backward():
    x = nd.ones(3)
    x.attach_grad()
    for _ in range(2):
        with ag.record():
            y = x * 2
        y.backward()
    close(x.grad, [2, 2, 2])


def test_grad_req_add_accumulates_across_backward_calls():
    x = nd.ones(3)
    x.attach_grad(grad_req="add")
    for _ in range(2):
        with ag.record():
            y = x * 2
        y.backward()
    close(x.grad, [4, 4, 4])


def test_grad_req_null_leaves_its_gradient_untouched():
    x, w = variable([1.0, 2.0]), variable([3.0, 4.0])
    x.attach_grad(grad_req="null")
    with ag.record():
        y = x * w
    y.backward()
    close(x.grad, [0, 0])
    close(w.grad, [1, 2])


def test_backward_with_no_variable_that_requires_a_gradient_raises():
    # MXNet: "There are no inputs in computation graph that require gradients."
    x = nd.array([1.0, 2.0])
    x.attach_grad(grad_req="null")
    with ag.record():
        y = x * 3
    with pytest.raises(MXNetError, match="no inputs in computation graph that require gradients"):
        y.backward()


def test_attach_grad_rejects_an_unknown_grad_req():
    with pytest.raises(MXNetError, match="'sum'"):
        nd.ones(2).attach_grad(grad_req="sum")


def test_attach_grad_again_starts_from_a_zero_gradient():
    x = variable([1.0, 2.0])
    with ag.record():
        y = x * x
    y.backward()
    close(x.grad, [2, 4])
    x.attach_grad()
    close(x.grad, [0, 0])


def test_mark_variables_writes_into_the_given_arrays_with_per_variable_reqs():
    x, y = nd.array([1.0, 2.0]), nd.array([3.0, 4.0])
    gx, gy = nd.zeros(2), nd.array([10.0, 10.0])
    ag.mark_variables([x, y], [gx, gy], grad_reqs=["write", "add"])
    assert x.grad is gx and y.grad is gy
    with ag.record():
        z = x * y
    z.backward()
    close(gx, [3, 4])  # dz/dx = y
    close(gy, [11, 12])  # 10 + dz/dy = 10 + x


def test_mark_variables_with_a_single_array():
    x, gx = nd.array([2.0]), nd.zeros(1)
    ag.mark_variables(x, gx)
    with ag.record():
        y = x * x * x
    y.backward()
    close(gx, [12])


@pytest.mark.parametrize(
    "variables, gradients, reqs",
    [
        ([nd.ones(2), nd.ones(2)], [nd.zeros(2)], "write"),
        ([nd.ones(2)], [nd.zeros(2)], ["write", "add"]),
        ([nd.ones(2)], [nd.zeros(3)], "write"),
    ],
    ids=["gradient-count", "req-count", "gradient-shape"],
)
def test_mark_variables_mismatches_raise(variables, gradients, reqs):
    with pytest.raises(MXNetError, match="mark_variables"):
        ag.mark_variables(variables, gradients, reqs)


def test_fresh_grad_is_set_by_backward_only_for_variables_reached():
    # MXNet test_detach_updated_grad
    x, y = nd.ones((2, 2)), nd.ones((2, 2))
    dx, dy = nd.zeros((2, 2)), nd.zeros((2, 2))
    ag.mark_variables([x, y], [dx, dy])
    assert (x._fresh_grad, y._fresh_grad) == (False, False)
    with ag.record():
        (x + 2 + y).backward()
    close(dx, np.ones((2, 2)))
    assert (x._fresh_grad, y._fresh_grad) == (True, True)

    dx[:] = 0
    x._fresh_grad = y._fresh_grad = False
    with ag.record():
        x2 = (x + 2).detach()
        (x2 + y).backward()
    close(dx, np.zeros((2, 2)))
    assert (x._fresh_grad, y._fresh_grad) == (False, True)


# -- backward and grad ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "f, df",
    [
        (lambda x: nd.exp(x), lambda x: np.exp(x)),
        (lambda x: x / 2, lambda x: np.full_like(x, 0.5)),
        (lambda x: x**2, lambda x: 2 * x),
        (lambda x: nd.sum(x * x), lambda x: 2 * x),
    ],
    ids=["exp", "half", "square", "sum-of-squares"],
)
def test_first_order_gradients_of_unary_functions(f, df):
    values = np.random.default_rng(1).uniform(size=(4, 5)).astype(np.float32)
    x = variable(values)
    with ag.record():
        y = f(x)
    y.backward()
    close(x.grad, df(values))
    np.testing.assert_allclose(y.asnumpy(), f(nd.array(values)).asnumpy())  # recording changes no value


def test_gradients_of_binary_functions():
    rng = np.random.default_rng(2)
    xv, yv = rng.uniform(size=(4, 5)).astype(np.float32), rng.uniform(size=(4, 5)).astype(np.float32)
    for f, expected in [
        (lambda x, y: x + y, (np.ones_like(xv), np.ones_like(yv))),
        (lambda x, y: x * y, (yv, xv)),
        (lambda x, y: x + x * y, (1 + yv, xv)),
    ]:
        x, y = variable(xv), variable(yv)
        with ag.record():
            z = f(x, y)
        z.backward()
        close(x.grad, expected[0])
        close(y.grad, expected[1])


def test_backward_of_a_broadcast_sums_over_the_broadcast_axes():
    x, b = variable(np.arange(6).reshape(2, 3)), variable([1.0, 2.0, 3.0])
    with ag.record():
        y = x * b.reshape((1, 3))
    y.backward()
    close(x.grad, [[1, 2, 3], [1, 2, 3]])
    close(b.grad, [3, 5, 7])  # column sums of x


def test_backward_weights_the_head_with_out_grad():
    x = variable([1.0, 2.0, 3.0])
    with ag.record():
        y = x * x
    y.backward(out_grad=nd.array([1.0, 0.0, -2.0]))
    close(x.grad, [2, 0, -12])


def test_backward_of_several_heads_with_head_grads():
    # MXNet test_out_grads: a None head gradient means ones
    x, dx = nd.ones((3, 5)), nd.zeros((3, 5))
    ag.mark_variables([x], [dx])
    with ag.record():
        a, b, c = nd.split(x, axis=0, num_outputs=3, squeeze_axis=True)
        ag.backward([a, b, c], [None, nd.array([1, 2, 3, 4, 5]), nd.array([5, 4, 3, 2, 1])])
    close(dx, [[1, 1, 1, 1, 1], [1, 2, 3, 4, 5], [5, 4, 3, 2, 1]])


def test_backward_of_two_heads_sums_their_gradients():
    x = variable([1.0, 2.0])
    with ag.record():
        y1, y2 = x * x, x * 3
    ag.backward([y1, y2], [nd.array([1.0, 1.0]), nd.array([2.0, 0.0])])
    close(x.grad, [2 + 6, 4 + 0])


def test_grad_returns_new_arrays_and_does_not_touch_grad():
    x, y = variable([1.0, 2.0]), variable([3.0, 5.0])
    with ag.record():
        z = x * y + x
    gx, gy = ag.grad(z, [x, y])
    close(gx, [4, 6])
    close(gy, [1, 2])
    close(x.grad, [0, 0])
    close(y.grad, [0, 0])
    assert gx is not x.grad


def test_grad_with_head_grads():
    x = variable([1.0, 2.0])
    with ag.record():
        z = x * x
    (gx,) = ag.grad(z, [x], head_grads=nd.array([3.0, -1.0]))
    close(gx, [6, -4])


def test_grad_of_a_single_variable_returns_a_list_as_mxnet_does():
    # MXNet 1.9.1's autograd.grad wraps `variables` in a list before its final isinstance check, so a
    # single NDArray variable still gives a one-element list (its tests index the result with [0]).
    x = variable([1.0, 2.0, 3.0])
    with ag.record():
        y = x * x
    result = ag.grad(y, x)
    assert isinstance(result, list) and len(result) == 1
    close(result[0], [2, 4, 6])


def test_grad_with_create_graph_can_be_differentiated_again():
    # MXNet test_gradient: z = exp(x) + x at x = 1
    x = variable([1.0])
    with ag.record():
        z = nd.elemwise_add(nd.exp(x), x)
    (dx,) = ag.grad(z, [x], create_graph=True)
    assert abs(dx.asscalar() - (math.e + 1)) < 1e-6
    dx.backward()
    assert abs(x.grad.asscalar() - math.e) < 1e-6


def test_second_derivative_of_a_cube():
    x = variable([0.5, 1.0, 2.0])
    with ag.record():
        y = x**3
        (dy,) = ag.grad(y, [x], create_graph=True)
    close(dy, [0.75, 3, 12])  # 3 x^2
    dy.backward()
    close(x.grad, [3, 6, 12])  # 6 x


# -- higher order (MXNet test_higher_order_grad, with analytic derivatives) -----------------------


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name -> (op, input values, second derivative); the domain is chosen for each op
SECOND_ORDER = {
    "sin": (nd.sin, None, lambda x: -np.sin(x)),
    "cos": (nd.cos, None, lambda x: -np.cos(x)),
    "tan": (nd.tan, None, lambda x: 2 * np.tan(x) / np.cos(x) ** 2),
    "sinh": (nd.sinh, None, np.sinh),
    "cosh": (nd.cosh, None, np.cosh),
    "tanh": (nd.tanh, None, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "arcsin": (nd.arcsin, "unit", lambda x: x / (1 - x**2) ** 1.5),
    "arccos": (nd.arccos, "unit", lambda x: -x / (1 - x**2) ** 1.5),
    "arctan": (nd.arctan, None, lambda x: -2 * x / (1 + x**2) ** 2),
    "arcsinh": (nd.arcsinh, None, lambda x: -x / (1 + x**2) ** 1.5),
    "arccosh": (nd.arccosh, "above-one", lambda x: -x / (x**2 - 1) ** 1.5),
    "arctanh": (nd.arctanh, "unit", lambda x: 2 * x / (1 - x**2) ** 2),
    "log": (nd.log, "positive", lambda x: -1 / x**2),
    "log2": (nd.log2, "positive", lambda x: -1 / (x**2 * math.log(2))),
    "log10": (nd.log10, "positive", lambda x: -1 / (x**2 * math.log(10))),
    "log1p": (nd.log1p, "positive", lambda x: -1 / (1 + x) ** 2),
    "expm1": (nd.expm1, None, np.exp),
    "exp": (nd.exp, None, np.exp),
    "square": (nd.square, None, lambda x: np.full_like(x, 2)),
    "reciprocal": (nd.reciprocal, "positive", lambda x: 2 / x**3),
    "sigmoid": (nd.sigmoid, None, lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x))),
    "sqrt": (nd.sqrt, "positive", lambda x: -1 / (4 * x**1.5)),
    "cbrt": (nd.cbrt, "positive", lambda x: -2 / (9 * np.cbrt(x**5))),
    "rsqrt": (nd.rsqrt, "positive", lambda x: 3 / (4 * x**2.5)),
    "rcbrt": (nd.rcbrt, "positive", lambda x: 4 / (9 * np.cbrt(x**7))),
    "relu": (nd.relu, None, np.zeros_like),
    "abs": (nd.abs, None, np.zeros_like),
    "clip": (lambda x: nd.clip(x, -0.5, 0.5), None, np.zeros_like),
    "radians": (nd.radians, None, np.zeros_like),
    "dropout": (nd.Dropout, None, np.zeros_like),
    "cube": (lambda x: x**3, None, lambda x: 6 * x),
}

DOMAINS = {
    None: lambda rng, shape: rng.uniform(-1.5, 1.5, shape),
    "unit": lambda rng, shape: rng.uniform(-0.9, 0.9, shape),
    "positive": lambda rng, shape: rng.uniform(0.5, 3.0, shape),
    "above-one": lambda rng, shape: rng.uniform(1.5, 4.0, shape),
}


def nth_order_gradients(op, values: np.ndarray, order: int, rng):
    """The first `order` gradients of op at `values`, each taken with a random head gradient, as
    MXNet's check_nth_order_unary does; returns (gradients, head gradients)."""
    x = variable(values)
    grads, heads = [], []
    with ag.record():
        y = op(x)
        for _ in range(order):
            head = nd.array(rng.normal(size=values.shape))
            y = ag.grad(y, [x], head_grads=head, create_graph=True, retain_graph=True)[0]
            grads.append(y.asnumpy())
            heads.append(head.asnumpy())
    return grads, heads


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 1, 3)])
def test_second_order_gradient(name, shape):
    op, domain, second = SECOND_ORDER[name]
    rng = np.random.default_rng(7)
    values = DOMAINS[domain](rng, shape).astype(np.float32)
    (_, computed), heads = nth_order_gradients(op, values, 2, rng)
    expected = second(values.astype(np.float64)) * heads[0] * heads[1]
    np.testing.assert_allclose(computed, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "name, third",
    [
        ("sin", lambda x: -np.cos(x)),
        ("cos", np.sin),
        ("log", lambda x: 2 / x**3),
        ("exp", np.exp),
        ("cube", lambda x: np.full_like(x, 6)),
    ],
)
def test_third_order_gradient(name, third):
    op, domain, _ = SECOND_ORDER[name]
    rng = np.random.default_rng(11)
    values = DOMAINS[domain](rng, (2, 3)).astype(np.float32)
    grads, heads = nth_order_gradients(op, values, 3, rng)
    expected = third(values.astype(np.float64)) * heads[0] * heads[1] * heads[2]
    np.testing.assert_allclose(grads[2], expected, rtol=1e-4, atol=1e-5)


def test_third_order_of_square_is_zero():
    rng = np.random.default_rng(12)
    values = rng.uniform(-1, 1, (4,)).astype(np.float32)
    grads, _ = nth_order_gradients(nd.square, values, 3, rng)
    np.testing.assert_array_equal(grads[2], np.zeros(4, np.float32))


def test_tanh_first_order_with_a_head_gradient():
    rng = np.random.default_rng(3)
    values = rng.uniform(-2, 2, (3, 4)).astype(np.float32)
    (first,), (head,) = nth_order_gradients(nd.tanh, values, 1, rng)
    np.testing.assert_allclose(first, (1 - np.tanh(values) ** 2) * head, rtol=1e-6, atol=1e-6)


def test_second_order_of_power_in_both_arguments():
    xv, yv = np.array([1.5, 2.0, 2.5], np.float32), np.array([2.5, 3.0, 1.2], np.float32)
    x, y = variable(xv), variable(yv)
    with ag.record():
        z = nd.power(x, y)
        gx, gy = ag.grad(z, [x, y], create_graph=True, retain_graph=True)
        (gxx,) = ag.grad(gx, [x], create_graph=True, retain_graph=True)
        (gyy,) = ag.grad(gy, [y], create_graph=True, retain_graph=True)
    close(gx, yv * xv ** (yv - 1), rtol=1e-5)
    close(gy, xv**yv * np.log(xv), rtol=1e-5)
    close(gxx, yv * (yv - 1) * xv ** (yv - 2), rtol=1e-5)
    close(gyy, xv**yv * np.log(xv) ** 2, rtol=1e-5)


def test_second_order_through_fully_connected():
    # MXNet test_dense_backward_flatten: y = x w^T + b
    x = variable(np.arange(6).reshape(2, 3))
    w, b = variable(np.full((2, 3), 0.5)), variable([0.5, 0.5])
    o_y = nd.array(np.arange(4).reshape(2, 2))
    o_x = nd.array(np.arange(6).reshape(2, 3))
    with ag.record():
        y = nd.FullyConnected(x, w, b, num_hidden=2)
        (x_grad,) = ag.grad(y, [x], head_grads=o_y, create_graph=True, retain_graph=True)
        (w_grad_grad,) = ag.grad(x_grad, [w], head_grads=o_x, create_graph=False)
    close(x_grad, o_y.asnumpy() @ w.asnumpy())
    close(w_grad_grad, o_y.asnumpy().T @ o_x.asnumpy())


# -- retain_graph ----------------------------------------------------------------------------------


def test_second_backward_without_retain_graph_raises_mxnets_error():
    x = variable(np.ones((2, 2)))
    with ag.record():
        y = x + 1
    y.backward()
    with pytest.raises(MXNetError, match=NOT_IN_GRAPH) as info:
        y.backward()
    assert "retain_graph=True" in str(info.value)


def test_retain_graph_allows_a_second_backward_with_the_same_gradient():
    x = variable([1.0, 2.0, 3.0])
    with ag.record():
        y = x * x
    y.backward(retain_graph=True)
    first = x.grad.asnumpy()
    y.backward()
    close(x.grad, first)
    close(x.grad, [2, 4, 6])


def test_retained_graph_accumulates_with_grad_req_add():
    # MXNet test_retain_grad
    x, dx = nd.ones((2, 2)), nd.zeros((2, 2))
    ag.mark_variables([x], [dx], grad_reqs="add")
    with ag.record():
        y = x + 1
        y.backward(retain_graph=True)
        y.backward(retain_graph=False)
    close(dx, np.full((2, 2), 2))


def test_grad_retains_the_graph_only_when_it_creates_one():
    x = variable([2.0])
    with ag.record():
        y = x * x
    ag.grad(y, [x])  # retain_graph defaults to create_graph=False
    with pytest.raises(MXNetError, match=NOT_IN_GRAPH):
        y.backward()
    with ag.record():
        y = x * x
    ag.grad(y, [x], create_graph=True)
    y.backward()
    close(x.grad, [4])


# -- errors ----------------------------------------------------------------------------------------


def test_backward_of_an_array_that_was_never_recorded_raises():
    with pytest.raises(MXNetError, match=NOT_IN_GRAPH):
        nd.ones(3).backward()
    x = variable([1.0, 2.0])
    y = x * 2  # outside record
    with pytest.raises(MXNetError, match=NOT_IN_GRAPH):
        y.backward()
    with ag.record():
        with ag.pause():
            z = x * 2
    with pytest.raises(MXNetError, match=NOT_IN_GRAPH):
        z.backward()


def test_grad_with_respect_to_an_unmarked_array_raises():
    x, a = variable([1.0, 2.0]), nd.array([3.0, 4.0])
    with ag.record():
        y = x * a
    # MXNet counts variables from 1 in this message
    with pytest.raises(MXNetError, match="Cannot differentiate with respect to the 2-th variable"):
        ag.grad(y, [x, a])


def test_head_gradient_count_mismatch_raises():
    x = variable([1.0, 2.0, 3.0])
    with ag.record():
        y = x * 2
    with pytest.raises(MXNetError, match="1 heads but 2 head gradients"):
        ag.backward([y], [nd.ones(3), nd.ones(3)])


def test_head_gradient_shape_mismatch_names_both_shapes():
    x = variable([1.0, 2.0, 3.0])
    with ag.record():
        y = x * 2
    with pytest.raises(MXNetError, match=r"\(4,\).*\(3,\)"):
        y.backward(nd.ones(4))
    with pytest.raises(MXNetError, match=r"\(2, 2\).*\(3,\)"):
        ag.grad(y, [x], head_grads=nd.ones((2, 2)))


def test_heads_must_be_ndarrays():
    with pytest.raises(MXNetError, match="heads must be an NDArray or a list of NDArrays"):
        ag.backward([np.ones(2)])


# -- in-place updates ------------------------------------------------------------------------------


def _add_in_place(x, y):
    x += 1


def _sub_in_place(x, y):
    x -= 1


def _slice_assign(x, y):
    x[1:3] = 0


def _assign_all(x, y):
    x[:] = nd.ones(3)


def _scale_recorded_result(x, y):
    y *= 2


def _out_into_recorded_result(x, y):
    nd.exp(x, out=y)


def _out_into_variable(x, y):
    nd.exp(nd.ones(3), out=x)


@pytest.mark.parametrize(
    "update",
    [_add_in_place, _sub_in_place, _slice_assign, _assign_all, _scale_recorded_result,
     _out_into_recorded_result, _out_into_variable],
)  # fmt: skip
def test_in_place_update_of_a_recorded_array_while_recording_raises(update):
    x = variable([1.0, 2.0, 3.0])
    with ag.record():
        y = x * 2
        with pytest.raises(MXNetError) as info:
            update(x, y)
    assert IN_PLACE in str(info.value)
    close(x, [1, 2, 3])


def test_in_place_updates_of_unrecorded_arrays_are_allowed_while_recording():
    x = variable([1.0, 2.0])
    counter = nd.zeros(2)
    with ag.record():
        counter += 1
        counter[:] = counter * 5
        y = x * counter
    y.backward()
    close(counter, [5, 5])
    close(x.grad, [5, 5])


def test_out_into_a_fresh_array_is_recorded():
    x = variable([0.0, 1.0])
    target = nd.zeros(2)
    with ag.record():
        nd.exp(x, out=target)
        y = target * 2
    y.backward()
    close(x.grad, 2 * np.exp([0.0, 1.0]))


def test_sgd_update_outside_record_keeps_the_variable():
    # minimise sum((w - 3)^2) with w -= lr * w.grad, as training loops written for MXNet do
    w = variable([0.0, 1.0])
    marked_grad = w.grad
    lr = 0.25
    for _ in range(2):
        with ag.record():
            loss = nd.sum((w - 3) ** 2)
        loss.backward()
        w -= lr * w.grad
    # each step maps w to w - 0.25 * 2 (w - 3) = (w + 3) / 2
    close(w, [2.25, 2.5])
    assert w.grad is marked_grad
    close(w.grad, [-3, -2])  # the gradient at the second step's w = [1.5, 2]


# -- detach and views ------------------------------------------------------------------------------


def test_detach_stops_the_gradient_and_shares_data():
    x = variable([1.0, 2.0, 3.0])
    with ag.record():
        y = x * 2
        d = y.detach()
        z = d * x
    z.backward()
    close(x.grad, [2, 4, 6])  # d/dx (const * x) with const = 2x
    close(d, [2, 4, 6])
    assert d.grad is None


def test_gradient_through_a_first_axis_slice():
    x = variable([1.0, 2.0, 3.0, 4.0])
    with ag.record():
        y = x[1:3] * 2
    y.backward()
    close(x.grad, [0, 2, 2, 0])


def test_gradient_through_integer_indexing():
    x = variable([[1.0, 2.0], [3.0, 4.0]])
    with ag.record():
        row = x[1] * 3
        element = x[0, 1] * 5
    ag.backward([row, element])
    assert element.shape == (1,)
    close(x.grad, [[0, 5], [3, 3]])


def test_gradient_through_reshape():
    x = variable([[1.0, 2.0], [3.0, 4.0]])
    with ag.record():
        y = x.reshape((4,)) * nd.array([1.0, 2.0, 3.0, 4.0])
    y.backward()
    close(x.grad, [[1, 2], [3, 4]])


def test_gradient_through_a_slice_of_another_axis():
    x = variable([[1.0, 2.0], [3.0, 4.0]])
    with ag.record():
        y = x[:, 1] * nd.array([10.0, 20.0])
    y.backward()
    close(x.grad, [[0, 10], [0, 20]])


def test_gather_with_a_list_of_indices_has_a_gradient():
    x = variable([1.0, 2.0, 3.0])
    with ag.record():
        y = x[[2, 0]] * nd.array([10.0, 100.0])
    close(y, [30, 100])
    y.backward()
    close(x.grad, [100, 0, 10])
    with ag.record():
        y = x[[0, 0, 1]]
    y.backward()
    close(x.grad, [2, 1, 0])  # a repeated index accumulates


# -- Dropout ---------------------------------------------------------------------------------------


def test_dropout_while_training_drops_and_scales():
    mx.random.seed(5)
    x = nd.ones((20, 20))
    for p in (0.5, 0.2):
        with ag.record():
            y = nd.Dropout(x, p=p).asnumpy()
        assert set(np.unique(y)) == {0.0, np.float32(1 / (1 - p))}
        assert abs((y == 0).mean() - p) < 0.1


@pytest.mark.parametrize(
    "scope",
    [lambda: ag.record(train_mode=False), lambda: ag.pause(), ag.predict_mode],
    ids=["record-predict", "pause", "predict_mode"],
)
def test_dropout_is_the_identity_outside_training(scope):
    x = nd.array(np.arange(1, 101).reshape(10, 10))
    with ag.record():
        with scope():
            y = nd.Dropout(x, p=0.5)
    close(y, x.asnumpy())
    close(nd.Dropout(x, p=0.5), x.asnumpy())  # outside any scope


def test_dropout_in_train_mode_without_recording_drops():
    mx.random.seed(6)
    with ag.train_mode():
        y = nd.Dropout(nd.ones((10, 10)), p=0.5).asnumpy()
    assert y.max() == 2 and y.min() == 0


def test_dropout_gradient_uses_the_forward_mask():
    # MXNet test_is_train: with x = ones and a ones head gradient, x.grad equals y
    mx.random.seed(7)
    x = variable(np.ones((10, 10)))
    with ag.record():
        y = nd.Dropout(x, p=0.5)
        assert y.asnumpy().max() == 2 and y.asnumpy().min() == 0
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), y.asnumpy())
    with ag.record(train_mode=False):
        y = nd.Dropout(x, p=0.5)
    y.backward(train_mode=False)
    np.testing.assert_array_equal(x.grad.asnumpy(), np.ones((10, 10), np.float32))


# -- BatchNorm -------------------------------------------------------------------------------------


def batchnorm_inputs():
    data = nd.array([[0.0, 1.0, 2.0], [3.0, 5.0, 4.0], [6.0, 9.0, 6.0], [9.0, 13.0, 8.0]])
    gamma, beta = nd.array([2.0, 3.0, 4.0]), nd.array([0.5, -1.0, 0.0])
    moving_mean, moving_var = nd.array([1.0, 2.0, 3.0]), nd.array([4.0, 1.0, 0.25])
    return data, gamma, beta, moving_mean, moving_var


EPS = 1e-3  # MXNet's BatchNorm default


def test_batchnorm_while_training_uses_the_batch_statistics():
    data, gamma, beta, mm, mv = batchnorm_inputs()
    d = data.asnumpy()
    with ag.record():
        fixed = nd.BatchNorm(data, gamma, beta, mm, mv)  # fix_gamma=True: gamma is taken as 1
        scaled = nd.BatchNorm(data, gamma, beta, mm, mv, fix_gamma=False)
    normalized = (d - d.mean(0)) / np.sqrt(d.var(0) + EPS)
    close(fixed, normalized + beta.asnumpy(), rtol=1e-5, atol=1e-5)
    close(scaled, normalized * gamma.asnumpy() + beta.asnumpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "scope", [lambda: ag.record(train_mode=False), ag.predict_mode, lambda: ag.pause()],
    ids=["record-predict", "predict_mode", "outside-record"],
)  # fmt: skip
def test_batchnorm_outside_training_uses_the_moving_statistics(scope):
    data, gamma, beta, mm, mv = batchnorm_inputs()
    with scope():
        y = nd.BatchNorm(data, gamma, beta, mm, mv, fix_gamma=False)
    normalized = (data.asnumpy() - mm.asnumpy()) / np.sqrt(mv.asnumpy() + EPS)
    expected = normalized * gamma.asnumpy() + beta.asnumpy()
    close(y, expected, rtol=1e-5, atol=1e-5)
    close(mm, [1, 2, 3])  # prediction never moves the statistics
    close(mv, [4, 1, 0.25])


def test_batchnorm_training_step_updates_the_moving_statistics():
    # MXNet updates the moving mean and (biased) variance in place with momentum 0.9: on the CPU in the
    # backward pass, with cuDNN in the forward pass; after forward + backward both agree.
    data, gamma, beta, mm, mv = batchnorm_inputs()
    data.attach_grad()
    d = data.asnumpy()
    with ag.record():
        y = nd.BatchNorm(data, gamma, beta, mm, mv, momentum=0.9)
    y.backward()
    close(mm, 0.9 * np.array([1, 2, 3]) + 0.1 * d.mean(0), rtol=1e-5)
    close(mv, 0.9 * np.array([4, 1, 0.25]) + 0.1 * d.var(0), rtol=1e-5)


def test_batchnorm_gradient_in_training_mode():
    data, gamma, beta, mm, mv = batchnorm_inputs()
    data.attach_grad()
    gamma.attach_grad()
    beta.attach_grad()
    head = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, 1.0], [0.0, 3.0, -2.0], [1.0, 1.0, 1.0]], np.float32)
    with ag.record():
        y = nd.BatchNorm(data, gamma, beta, mm, mv, fix_gamma=False)
    y.backward(nd.array(head))
    d, g = data.asnumpy().astype(np.float64), gamma.asnumpy()
    inv_std = 1 / np.sqrt(d.var(0) + EPS)
    x_hat = (d - d.mean(0)) * inv_std
    n = d.shape[0]
    expected_dx = g * inv_std / n * (n * head - head.sum(0) - x_hat * (head * x_hat).sum(0))
    close(data.grad, expected_dx, rtol=1e-4, atol=1e-5)
    close(gamma.grad, (head * x_hat).sum(0), rtol=1e-4, atol=1e-5)
    close(beta.grad, head.sum(0))


# -- get_symbol ------------------------------------------------------------------------------------


def test_get_symbol_has_one_argument_per_variable_read():
    # MXNet test_get_symbol
    x = variable([1.0])
    with ag.record():
        y = x * x + 2 * x - 1
    assert len(ag.get_symbol(y).list_arguments()) == 1
    z = variable([1.0])
    with ag.record():
        y = x * x + 2 * z - 1
    assert len(ag.get_symbol(y).list_arguments()) == 2


def test_get_symbol_records_mxnets_ops_and_computes_the_same_value():
    x = variable([2.0])
    with ag.record():
        y = x * x + 2 * x - 1
    symbol = ag.get_symbol(y)
    ops = [node["op"] for node in json.loads(symbol.tojson())["nodes"]]
    assert ops == ["null", "broadcast_mul", "_mul_scalar", "broadcast_add", "_minus_scalar"]
    assert len(symbol.list_outputs()) == 1
    (value,) = symbol.eval(ctx=mx.cpu(), **{symbol.list_arguments()[0]: nd.array([3.0])})
    close(value, [14])  # 9 + 6 - 1


def test_get_symbol_of_an_unrecorded_array_raises():
    with pytest.raises(MXNetError, match="get_symbol"):
        ag.get_symbol(nd.ones(2))


# -- autograd.Function -----------------------------------------------------------------------------


class _DivideAndMultiply(ag.Function):
    """m = x / y, n = x * y, with the gradient written out by hand."""

    def forward(self, x, y):
        self.save_for_backward(x, y)
        return x / y, x * y

    def backward(self, dm, dn):
        x, y = self.saved_tensors
        return dm / y + dn * y, dn * x - dm * x / y / y


def test_function_uses_its_own_backward():
    # MXNet test_function: the hand-written gradient equals the one autograd derives
    xv, yv = np.array([1.0, 2.0, 0.5]), np.array([3.0, 4.0, 2.0])
    x, y = variable(xv), variable(yv)
    with ag.record():
        m, n = _DivideAndMultiply()(x, y)
        ag.backward([m, n])
    close(m, xv / yv)
    close(n, xv * yv)
    close(x.grad, 1 / yv + yv)
    close(y.grad, xv - xv / yv**2)


def test_function_instance_can_be_called_once():
    f = _DivideAndMultiply()
    f(nd.ones(2), nd.ones(2))
    with pytest.raises(MXNetError, match="only be called once"):
        f(nd.ones(2), nd.ones(2))


# -- review findings: each a wrong result once -------------------------------------------------------


def test_signed_zero_and_nan_scalars_are_separate_call_signatures():
    a = mx.nd.ones((3,))
    np.testing.assert_array_equal((a / 0.0).asnumpy(), [np.inf] * 3)
    np.testing.assert_array_equal((a / -0.0).asnumpy(), [-np.inf] * 3)
    assert np.signbit((a * -0.0).asnumpy()).all() and not np.signbit((a * 0.0).asnumpy()).any()
    assert np.isnan((a * float("nan")).asnumpy()).all()


def test_a_recorded_gather_with_negative_indices_sends_the_gradient_to_those_rows():
    x = mx.nd.arange(6).reshape((3, 2))
    x.attach_grad()
    with ag.record():
        y = x[[-1, 0]]
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [[1, 1], [0, 0], [1, 1]])


def test_grad_with_create_graph_never_returns_the_callers_head_gradient_itself():
    head = mx.nd.array([1.0, 2.0, 3.0])
    x = mx.nd.ones((3,))
    x.attach_grad()
    with ag.record():
        y = x + 1
    (g,) = ag.grad(y, [x], head_grads=head, create_graph=True)
    g[:] = 7
    np.testing.assert_array_equal(head.asnumpy(), [1.0, 2.0, 3.0])


def test_a_function_whose_backward_returns_none_is_an_mxnet_error():
    class NoGradient(ag.Function):
        def forward(self, x):
            return x * 2

        def backward(self, dy):
            return None

    x = mx.nd.ones((2,))
    x.attach_grad()
    with ag.record():
        y = NoGradient()(x)
    with pytest.raises(
        MXNetError, match="NoGradient.backward must return NDArrays; gradient 0 is a NoneType"
    ):
        y.backward()


# -- assignment of a recorded array into a fresh one (MXNet's _slice_assign under autograd) ------------


@pytest.mark.parametrize(
    "key, value_shape",
    [
        (1, (3,)),
        (slice(1, 3), (2, 3)),
        ((0, slice(0, 3, 2)), (2,)),
        ((slice(0, 4, 2), 1), (1,)),
        ((2, 1), (1,)),
    ],
)
def test_assigning_a_recorded_array_passes_the_window_of_the_gradient(key, value_shape):
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((4, 3)).astype(np.float32)
    value = mx.nd.array(rng.standard_normal(value_shape).astype(np.float32))
    value.attach_grad()
    x = mx.nd.zeros((4, 3))
    with ag.record():
        x[key] = value * 2
        loss = (x * mx.nd.array(weights)).sum()
    loss.backward()
    expected_x = np.zeros((4, 3), np.float32)
    expected_x[key] = np.broadcast_to(value.asnumpy() * 2, np.shape(expected_x[key]) or (1,)).reshape(
        np.shape(expected_x[key])
    )
    np.testing.assert_array_equal(x.asnumpy(), expected_x)
    window = np.zeros((4, 3), np.float32)
    window[key] = 1
    want = (2 * weights * window)[key]  # d loss / d value, summed where the value was broadcast
    want = want.reshape(-1).sum(keepdims=True) if value_shape == (1,) else np.reshape(want, value_shape)
    np.testing.assert_allclose(value.grad.asnumpy(), want, rtol=1e-6)


def test_assigning_into_an_array_already_recorded_is_mxnets_in_place_error():
    value = mx.nd.ones((3,))
    value.attach_grad()
    x = mx.nd.zeros((4, 3))
    with ag.record():
        x[0] = value
        with pytest.raises(MXNetError, match="Inplace operations"):
            x[1] = value


def test_assigning_a_recorded_array_through_a_gather_key_is_refused_with_the_reason():
    value = mx.nd.ones((2, 3))
    value.attach_grad()
    x = mx.nd.zeros((4, 3))
    with ag.record(), pytest.raises(MXNetError, match="assign through ints and slices"):
        x[[0, 2]] = value

"""Graphs far larger than a model usually is: no recursion grows with their size, and they compile.

A 1,000-input add_n and a 1,000-part Concat once raised RecursionError (their expressions nested one
level per input); every walk over an expression (and comparing two) is iterative now, add_n still
adds left to right as MXNet does, and a wide Concat stores its parts instead of selecting among them.
Values are checked against NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
from llvmlite import ir

import ember as mx
from ember.codegen.llvm_types import F32, I64
from ember.codegen.scalar import ExprEmitter
from ember.compiler.lowering import expr as E


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """These tests are about compiled programs: executors compile from their first run, not 'tiered'."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")


WIDE = 1000
DEEP = 20_000  # far past Python's default recursion limit (1,000 frames)


def _inputs(count, shape):
    rng = np.random.default_rng(0)
    return {f"x{i}": rng.uniform(-1, 1, shape).astype(np.float32) for i in range(count)}


def test_add_n_of_1000_inputs_trains():
    feeds = _inputs(WIDE, (2, 3))
    total = mx.sym.add_n(*[mx.sym.var(name) for name in feeds])
    loss = mx.sym.MakeLoss(mx.sym.sum(total * total))
    ex = loss.simple_bind(mx.cpu(), **{name: (2, 3) for name in feeds})
    ex.forward(is_train=True, **feeds)
    ex.backward()
    expected_sum = np.sum(np.stack(list(feeds.values()), dtype=np.float64), axis=0)
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), np.sum(expected_sum**2), rtol=1e-4)
    for name in ("x0", "x499", "x999"):  # d(sum(s^2))/dx_i = 2 s for every input
        np.testing.assert_allclose(ex.grad_dict[name].asnumpy(), 2 * expected_sum, rtol=1e-4, atol=1e-4)


def test_concat_of_1000_parts_trains():
    feeds = _inputs(WIDE, (2, 1, 3))
    joined = mx.sym.Concat(*[mx.sym.var(name) for name in feeds], dim=1)
    loss = mx.sym.MakeLoss(mx.sym.sum(joined * joined))
    ex = loss.simple_bind(mx.cpu(), **{name: (2, 1, 3) for name in feeds})
    ex.forward(is_train=True, **feeds)
    ex.backward()
    expected = np.concatenate(list(feeds.values()), axis=1)
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), np.sum(expected.astype(np.float64) ** 2), rtol=1e-5)
    for name in ("x0", "x500", "x999"):  # d(sum(c^2))/dx_i = 2 x_i
        np.testing.assert_array_equal(ex.grad_dict[name].asnumpy(), 2 * feeds[name])


def test_inference_of_a_1000_part_concat_matches_numpy():
    feeds = _inputs(WIDE, (2, 1, 3))
    joined = mx.sym.Concat(*[mx.sym.var(name) for name in feeds], dim=1)
    (out,) = mx.compile(joined * 2.0, {name: (2, 1, 3) for name in feeds})(**feeds)
    np.testing.assert_array_equal(out, np.concatenate(list(feeds.values()), axis=1) * 2.0)


def test_a_wide_concat_of_computed_parts_matches_numpy():
    """Parts that are expressions (not buffers) and of two shapes, past the select-join limit."""
    x = mx.sym.var("x")
    parts = [mx.sym.tanh(x + float(i)) for i in range(9)] + [mx.sym.slice_axis(x, axis=1, begin=0, end=2)]
    value = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    (out,) = mx.compile(mx.sym.Concat(*parts, dim=1), {"x": (3, 4)})(x=value)
    expected = np.concatenate([np.tanh(value + i) for i in range(9)] + [value[:, :2]], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def _deep_product(depth: int, leaf: E.Expr) -> E.Expr:
    e = leaf
    for _ in range(depth):
        e = E.Call("mul", (e, leaf))
    return e


def test_expression_walks_comparison_and_printing_are_iterative():
    leaf = E.Load("x", E.index(0), "float32")
    deep = _deep_product(DEEP, leaf)
    assert len(E.walk((deep,))) == DEEP + 2  # the products, the load and its index constant
    order = E.post_order((deep,))
    assert len(order) == DEEP + 2 and order[-1] is deep and order.index(leaf) < order.index(deep.args[0])
    twin = _deep_product(DEEP, E.Load("x", E.index(0), "float32"))  # equal, but built separately
    other = _deep_product(DEEP, E.Load("y", E.index(0), "float32"))
    assert deep == twin and deep is not twin and deep != other and hash(deep) == hash(twin)
    shallower = _deep_product(2_000, leaf)  # the text itself grows with the square of the depth
    assert E.format_expr(shallower) == "mul(" * 2_000 + "x[0]" + ", x[0])" * 2_000


def test_codegen_emits_a_very_deep_expression():
    module = ir.Module(name="deep")
    fn = ir.Function(module, ir.FunctionType(F32, [ir.PointerType(F32)]), "deep")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    emitter = ExprEmitter(builder, lambda buffer, dtype: fn.args[0], {"i": ir.Constant(I64, 0)})
    builder.ret(emitter.emit(_deep_product(DEEP, E.Load("x", E.index(0), "float32"))))
    text = str(fn)
    assert text.count("fmul") == DEEP and text.count("load") == 1  # the shared load is emitted once

"""The math namespaces pointwise formulas are written over (ops/mathspace.py, lowering/exprmath.py):
one protocol, NumPy's dtype semantics, and gradient terms that become exactly the nodes they need."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ember.compiler import Graph, variable
from ember.compiler.lowering import expr as E
from ember.compiler.lowering.exprmath import ExprMath, Sym
from ember.compiler.ops.elementwise import BINARY, UNARY, graph_math
from ember.compiler.ops.mathspace import NumpyMath
from ember.compiler.passes.autodiff import GradBuilder

PROTOCOL = (
    "exp", "log", "log2", "log10", "log1p", "expm1", "sqrt", "cbrt", "abs", "sign", "floor", "ceil", "trunc",
    "round", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh",
    "arctanh", "erf", "maximum", "minimum", "hypot", "where", "indicator", "div", "mod", "dtype", "cast",
    "widen", "integer", "truth", "constant", "full_like", "data_dependent",
)  # fmt: skip


@pytest.mark.parametrize("namespace", [NumpyMath, ExprMath], ids=lambda m: m.__name__)
def test_each_namespace_offers_the_whole_protocol(namespace):
    assert [name for name in PROTOCOL if not hasattr(namespace, name)] == []


def test_numpy_division_and_mod_follow_mxnet_on_integers():
    a = np.array([7, -7, 7, -7, 5, 0], np.int32)
    b = np.array([2, 2, -2, -2, 0, 3], np.int32)
    assert NumpyMath.div(a, b).tolist() == [3, -3, -3, 3, 0, 0]  # C division, 0 for a zero divisor
    assert NumpyMath.mod(a, b).tolist() == [1, 1, -1, -1, 0, 0]  # the divisor's sign
    assert NumpyMath.round(np.array([0.5, -0.5, 1.5, 2.5, -2.4])).tolist() == [1.0, -1.0, 2.0, 3.0, -2.0]


def test_formulas_apply_the_same_dtype_rules_in_every_namespace():
    assert NumpyMath.constant(2.7, "int32").tolist() == 2  # scalars truncate into integer data
    assert ExprMath.constant(2.7, "int32").e == E.const(2, "int32")
    assert NumpyMath.widen(np.zeros(2, np.float16)).dtype == np.float32
    assert ExprMath.widen(Sym(E.Var("i"))).e.dtype == "float64"  # int64 data computes in float64
    assert UNARY["rint"].formula(NumpyMath, np.array([1.5, -1.5, 2.5, 0.4])).tolist() == [1.0, -2.0, 2.0, 0.0]


def test_expression_operators_read_bools_as_numpy_does():
    a, b = Sym(E.Load("a", E.index(0), "bool")), Sym(E.Load("b", E.index(0), "bool"))
    assert (a + b).e.fn == "or" and (a * b).e.fn == "and" and (a - b).e.fn == "xor"
    assert (a > b).e.args[0].dtype == "int32"  # bools compare as numbers
    x = Sym(E.Load("x", E.index(0), "float32"))
    assert (1 - x).e == E.call("sub", E.const(1, "float32"), x.e)  # numbers take the value's dtype
    assert ExprMath.div(x, x).e == E.div(x.e, x.e)


def _builder_and_leaves(broadcast: bool = False):
    g = GradBuilder({})
    m = graph_math(g, broadcast)
    return m, m.leaf(variable("x").output()), m.leaf(variable("y").output())


def _ops(m, *terms) -> list[str]:
    graph = Graph([m.build(t) for t in terms])
    return [node.op for node in graph.nodes if not node.is_variable]


def test_gradient_terms_become_the_ops_their_operators_name():
    m, x, y = _builder_and_leaves()
    assert _ops(m, x + y, x - 2, 2 - x, 2 + x, 2 < x, x / y, m.maximum(3, x)) == [
        "elemwise_add",
        "_minus_scalar",
        "_rminus_scalar",
        "_plus_scalar",
        "_greater_scalar",
        "elemwise_div",
        "_maximum_scalar",
    ]
    m, x, y = _builder_and_leaves(broadcast=True)
    assert _ops(m, x * y, m.square(x) >= y) == ["broadcast_mul", "square", "broadcast_greater_equal"]


def test_gradient_terms_simplify_unit_factors_and_compute_numbers_as_c_does():
    m, x, _ = _builder_and_leaves()
    assert m.build(x * 1) is m.build(x)
    assert _ops(m, x * -1) == ["negative"]
    assert m.log(0.0) == -math.inf and math.isnan(m.log(-1.0)) and m.floor(-1.5) == -2.0


def test_unused_parts_of_a_gradient_formula_never_become_nodes():
    """_rpower_scalar (s ** x) uses the right side of power's gradient only."""
    m, x, _ = _builder_and_leaves()
    out, dy = m.leaf(variable("out").output()), m.leaf(variable("dy").output())
    d_lhs, d_rhs = BINARY["power"].grad(m, 1.7, x, out, dy)
    assert _ops(m, d_rhs) == ["_mul_scalar", "elemwise_mul"]  # dy * (out * log 1.7)
    slope = d_lhs.args[1]  # x * 1.7 ** (x - 1)
    assert d_lhs.value is None and slope.value is None

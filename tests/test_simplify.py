"""The simplification passes one by one: each algebra rule (and where it declines), CSE, DCE, folding.

Every test states the rewritten graph's ops in topological order ("null" is a variable) and checks,
through the reference interpreter, that the graph computes what it computed before.
"""

from __future__ import annotations

import numpy as np
import pytest

from ember.base import GraphError
from ember.compiler import Graph, Node, TensorType, Value, run, variable
from ember.compiler.ops.params import format_value
from ember.compiler.ops.registry import SCHEMAS
from ember.compiler.passes import infer_shapes, infer_types
from ember.compiler.passes.simplify import (
    algebra_rules,
    common_subexpression_elimination,
    dead_code_elimination,
    fold_constants,
    simplify_algebra,
)

# ---------------------------------------------------------------------------------------------
# Helpers


def op(op_name: str, *inputs: Value, name: str | None = None, **params) -> Value:
    """Output 0 of a new node `op_name(*inputs)`; parameters are stored as MXNet stores them."""
    attrs = {k: format_value(v) for k, v in params.items()}
    return Node(op_name, inputs, attrs, name or op_name.strip("_").lower()).output()


def ops(graph: Graph) -> list[str]:
    return [node.op for node in graph.nodes]


def facts(graph: Graph, shapes: dict, dtypes: dict | None = None):
    """Inferred shapes and dtypes of every value; variables are float32 unless `dtypes` says otherwise."""
    dtypes = {name: (dtypes or {}).get(name, "float32") for name in shapes}
    return infer_shapes(graph, shapes), infer_types(graph, dtypes)


def feeds_for(shapes: dict, dtypes: dict | None = None, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape in shapes.items():
        dtype = np.dtype((dtypes or {}).get(name, "float32"))
        values = rng.integers(-9, 10, shape) if dtype.kind in "iu" else rng.uniform(-2, 2, shape)
        feeds[name] = values.astype(dtype)
    return feeds


def assert_same_results(before: Graph, after: Graph, feeds: dict, exact: bool = True) -> None:
    """Both graphs give arrays of one shape and dtype; equal ones, or close ones where `exact` is False."""
    for old, new in zip(run(before, feeds), run(after, feeds), strict=True):
        assert new.shape == old.shape and new.dtype == old.dtype
        if exact:
            np.testing.assert_array_equal(new, old)
        else:
            np.testing.assert_allclose(new, old, rtol=1e-6)


def simplified(output_of, shapes: dict, dtypes: dict | None = None) -> tuple[Graph, Graph]:
    """(graph, simplify_algebra(graph)) for the graph `output_of(*variables)` over `shapes`' variables."""
    variables = [variable(name).output() for name in shapes]
    outputs = output_of(*variables)
    graph = Graph(outputs if isinstance(outputs, list) else [outputs])
    value_shapes, value_dtypes = facts(graph, shapes, dtypes)
    return graph, simplify_algebra(graph, value_shapes, value_dtypes)


X = {"x": (2, 3)}

# ---------------------------------------------------------------------------------------------
# Algebra: each rule, and a case where it must decline


def scalar(kind: str, x: Value, value: float, **params) -> Value:
    """`_<kind>_scalar(x, value)`: scalar("mul", x, 2) is x*2."""
    return op(f"_{kind}_scalar", x, scalar=value, **params)


def rewrite(test_id, output_of, expected, shapes=X, dtypes=None, exact=True):
    """A case where simplify_algebra rewrites `output_of(*variables)` to a graph of ops `expected`;
    `exact=False` where floats are reassociated and results may differ in rounding."""
    return pytest.param(output_of, shapes, dtypes, expected, exact, id=test_id)


def decline(test_id, output_of, shapes=X, dtypes=None):
    return pytest.param(output_of, shapes, dtypes, id=test_id)


XY = {"x": (2, 3), "y": (2, 3)}
X3 = {"x": (2, 3, 4)}

REWRITES = [
    rewrite("x*1", lambda x: scalar("mul", x, 1), ["null"]),
    rewrite("x/1", lambda x: scalar("div", x, 1.0), ["null"]),
    rewrite("x**1", lambda x: scalar("power", x, 1), ["null"]),
    rewrite("x+0", lambda x: scalar("plus", x, 0), ["null"]),
    rewrite("x-0", lambda x: scalar("minus", x, 0), ["null"]),
    rewrite("x*1 int", lambda x: scalar("mul", x, 1), ["null"], dtypes={"x": "int32"}),
    rewrite("(x*a)*b to x", lambda x: scalar("mul", scalar("mul", x, 2), 0.5), ["null"]),
    rewrite(
        "(x*a)*b", lambda x: scalar("mul", scalar("mul", x, 3), 0.1), ["null", "_mul_scalar"], exact=False
    ),
    rewrite(
        "(x*a)*b int",
        lambda x: scalar("mul", scalar("mul", x, 3), -2),
        ["null", "_mul_scalar"],
        dtypes={"x": "int8"},
    ),
    rewrite(
        "(x+a)+b", lambda x: scalar("plus", scalar("plus", x, 1.5), 2), ["null", "_plus_scalar"], exact=False
    ),
    rewrite(
        "(x+a)+b int to x",
        lambda x: scalar("plus", scalar("plus", x, 4), -4),
        ["null"],
        dtypes={"x": "int64"},
    ),
    rewrite("--x", lambda x: op("negative", op("negative", x)), ["null"]),
    rewrite("---x", lambda x: op("negative", op("negative", op("negative", x))), ["null", "negative"]),
    rewrite("reshape to own shape", lambda x: op("Reshape", x, shape=(-1, 3)), ["null"]),
    rewrite(
        "reshape of reshape",
        lambda x: op("Reshape", op("Reshape", x, shape=(6,)), shape=(3, 2)),
        ["null", "Reshape"],
    ),
    rewrite(
        "reshape of reshape back",
        lambda x: op("Reshape", op("Reshape", x, shape=(6,)), shape=(2, 3)),
        ["null"],
    ),
    rewrite("flatten of expand_dims", lambda x: op("Flatten", op("expand_dims", x, axis=2)), ["null"]),
    rewrite("squeeze(expand_dims)", lambda x: op("squeeze", op("expand_dims", x, axis=1), axis=1), ["null"]),
    rewrite(
        "squeeze(expand_dims) other axis",
        lambda x: op("squeeze", op("expand_dims", x, axis=0), axis=2),
        ["null", "Reshape"],
        shapes={"x": (2, 1)},
    ),
    rewrite("transpose twice", lambda x: op("transpose", op("transpose", x)), ["null"]),
    rewrite(
        "transpose composed",
        lambda x: op("transpose", op("transpose", x, axes=(1, 0, 2)), axes=(0, 2, 1)),
        ["null", "transpose"],
        shapes=X3,
    ),
    rewrite(
        "swapaxes undone",
        lambda x: op("transpose", op("SwapAxis", x, dim1=0, dim2=2), axes=(2, 1, 0)),
        ["null"],
        shapes=X3,
    ),
    rewrite("identity transpose", lambda x: op("transpose", x, axes=(0, 1)), ["null"]),
    rewrite("cast to own dtype", lambda x: op("Cast", x, dtype="float32"), ["null"]),
    rewrite("copy", lambda x: op("_copy", x), ["null"]),
    rewrite("x + zeros_like", lambda x, y: op("elemwise_add", x, op("zeros_like", y)), ["null"], shapes=XY),
    rewrite("zeros + x", lambda x: op("elemwise_add", op("_zeros", shape=(2, 3)), x), ["null"]),
    rewrite("x - zeros", lambda x: op("elemwise_sub", x, op("zeros_like", x)), ["null"]),
    rewrite("x * ones_like", lambda x, y: op("elemwise_mul", x, op("ones_like", y)), ["null"], shapes=XY),
    rewrite("ones * x", lambda x: op("elemwise_mul", op("_ones", shape=(2, 3)), x), ["null"]),
    rewrite("x / ones", lambda x: op("elemwise_div", x, op("ones_like", x)), ["null"]),
    rewrite(
        "sum over a size-1 axis",
        lambda x: op("sum", x, axis=1, keepdims=True),
        ["null"],
        shapes={"x": (2, 1, 3)},
    ),
    rewrite("sum over no axes", lambda x: op("sum", x, axis=(0, 1), exclude=True), ["null"]),
    rewrite(
        "sum of one element", lambda x: op("sum", x), ["null"], shapes={"x": (1,)}, dtypes={"x": "float16"}
    ),
    rewrite(
        "int mean over size 1",
        lambda x: op("mean", x, axis=0, keepdims=True),
        ["null"],
        shapes={"x": (1, 4)},
        dtypes={"x": "int32"},
    ),
    rewrite("max over size 1", lambda x: op("max", x, axis=0, keepdims=True), ["null"], shapes={"x": (1, 4)}),
    rewrite("broadcast_to own shape", lambda x: op("broadcast_to", x, shape=(2, 3)), ["null"]),
    rewrite("broadcast_to with 0 codes", lambda x: op("broadcast_to", x, shape=(0, 3)), ["null"]),
]

DECLINES = [
    decline("x*2", lambda x: scalar("mul", x, 2)),
    decline(
        "x*1 promoting int to float64", lambda x: scalar("mul", x, 1, is_int=False), dtypes={"x": "int32"}
    ),
    decline(
        "(x*a)*b int, a not an integer",
        lambda x: scalar("mul", scalar("mul", x, 1.5), 2),
        dtypes={"x": "int32"},
    ),
    decline(
        "(x*a)*b int, a*b out of range",
        lambda x: scalar("mul", scalar("mul", x, 16), 16),
        dtypes={"x": "int8"},
    ),
    decline("(x*a)*b float, a overflows", lambda x: scalar("mul", scalar("mul", x, 1e300), 1e-300)),
    decline("(x*a)-b", lambda x: scalar("minus", scalar("mul", x, 2), 2)),
    decline("-x", lambda x: op("negative", x)),
    decline("reshape to another shape", lambda x: op("Reshape", x, shape=(3, 2))),
    decline("squeeze changes the shape", lambda x: op("squeeze", x), shapes={"x": (2, 1)}),
    decline("transpose", lambda x: op("transpose", x)),
    decline("cast to another dtype", lambda x: op("Cast", x, dtype="float64")),
    decline("0 - x", lambda x: op("elemwise_sub", op("zeros_like", x), x)),
    decline("x * zeros", lambda x: op("elemwise_mul", x, op("zeros_like", x))),
    decline("sum over an axis", lambda x: op("sum", x, axis=1, keepdims=True)),
    decline(
        "broadcast_to a larger shape", lambda x: op("broadcast_to", x, shape=(2, 3)), shapes={"x": (1, 3)}
    ),
]


@pytest.mark.parametrize("output_of, shapes, dtypes, expected, exact", REWRITES)
def test_algebra_rule_rewrites(output_of, shapes, dtypes, expected, exact):
    before, after = simplified(output_of, shapes, dtypes)
    assert ops(after) == expected
    assert_same_results(before, after, feeds_for(shapes, dtypes), exact)


@pytest.mark.parametrize("output_of, shapes, dtypes", DECLINES)
def test_algebra_rule_declines(output_of, shapes, dtypes):
    before, after = simplified(output_of, shapes, dtypes)
    assert ops(after) == ops(before)
    assert all(new is old for new, old in zip(after.nodes, before.nodes, strict=True))


@pytest.mark.parametrize(
    "output_of, shapes, expected",
    [
        (
            lambda x: scalar("mul", scalar("mul", x, 3, name="a"), 0.1, name="b"),
            X,
            ("_mul_scalar", "scalar", 3 * 0.1),
        ),
        (
            lambda x: op("Reshape", op("Reshape", x, shape=(6,), name="a"), shape=(3, -1), name="b"),
            X,
            ("Reshape", "shape", (3, 2)),
        ),
        (
            lambda x: op("transpose", op("transpose", x, axes=(1, 0, 2), name="a"), axes=(0, 2, 1), name="b"),
            X3,
            ("transpose", "axes", (1, 2, 0)),
        ),
    ],
    ids=["scalars", "reshapes", "transposes"],
)
def test_a_composed_node_is_named_after_the_outer_one(output_of, shapes, expected):
    _, after = simplified(output_of, shapes)
    (node,) = after.nodes[1:]
    op_name, param, value = expected
    assert (node.op, node.name, node.params[param]) == (op_name, "b", value)


def test_rules_that_need_shapes_or_dtypes_decline_without_them():
    x = variable("x").output()
    graph = Graph(
        [op("Reshape", x, shape=(2, 3)), op("Cast", x, dtype="float32"), op("_mul_scalar", x, scalar=1)]
    )
    after = simplify_algebra(graph, {})
    assert ops(after) == ["null", "Reshape", "Cast"]  # x*1 needs neither: is_int keeps the dtype
    shapes, dtypes = facts(graph, X)
    assert ops(simplify_algebra(graph, shapes)) == ["null", "Cast"]
    assert ops(simplify_algebra(graph, shapes, dtypes)) == ["null"]


def test_rewritten_outputs_point_at_the_replacements_and_surviving_values_keep_their_names():
    def output_of(x):
        relu = op("relu", x, name="relu")
        return [op("_mul_scalar", x, scalar=1, name="scaled"), op("negative", op("negative", relu)), relu]

    before, after = simplified(output_of, X)
    assert [v.node.name for v in after.outputs] == ["x", "relu", "relu"]
    assert after.outputs[0].node is before.nodes[0] and after.outputs[1] == after.outputs[2]
    assert_same_results(before, after, feeds_for(X))


def test_a_rewrite_deep_in_the_graph_rebuilds_the_nodes_above_it_under_their_names():
    def output_of(x):
        return op("tanh", op("exp", op("_copy", x, name="c"), name="e"), name="t")

    before, after = simplified(output_of, X)
    assert [(n.op, n.name) for n in after.nodes] == [("null", "x"), ("exp", "e"), ("tanh", "t")]
    assert before.nodes[2].inputs[0].node.op == "_copy"  # the input graph is untouched
    assert_same_results(before, after, feeds_for(X))


def test_a_rule_whose_replacement_changes_the_type_is_reported(monkeypatch):
    def wrong_rule(node, facts):  # returns x for sum(x, axis=1): (2, 3) -> (2,)
        return node.inputs[0]

    monkeypatch.setitem(algebra_rules, "sum", [wrong_rule])
    with pytest.raises(GraphError, match=r"replacement must keep the shape and dtype"):
        simplified(lambda x: op("sum", x, axis=1), X)


def test_every_algebra_rule_is_keyed_by_a_registered_op():
    assert set(algebra_rules) <= set(SCHEMAS)


def test_algebra_reaches_its_fixpoint_in_one_call():
    def output_of(x):
        y = op("_mul_scalar", op("_mul_scalar", op("_mul_scalar", x, scalar=2), scalar=0.5), scalar=1)
        z = op("Reshape", op("transpose", op("transpose", op("Reshape", y, shape=(3, 2)))), shape=(2, 3))
        return op("negative", op("negative", op("elemwise_add", z, op("zeros_like", y))))

    _, after = simplified(output_of, X)
    assert ops(after) == ["null"]
    shapes, dtypes = facts(after, X)
    again = simplify_algebra(after, shapes, dtypes)
    assert all(a is b for a, b in zip(again.nodes, after.nodes))


# ---------------------------------------------------------------------------------------------
# Common subexpression elimination


def test_cse_merges_equal_nodes_transitively_and_keeps_the_first_name():
    x = variable("x").output()
    a, b = op("exp", x, name="a"), op("exp", x, name="b")
    graph = Graph([op("elemwise_add", op("log", a, name="la"), op("log", b, name="lb"), name="sum")])
    after = common_subexpression_elimination(graph)
    assert [(n.op, n.name) for n in after.nodes] == [
        ("null", "x"),
        ("exp", "a"),
        ("log", "la"),
        ("elemwise_add", "sum"),
    ]
    (add,) = after.nodes[3:]
    assert add.inputs[0] == add.inputs[1]
    assert_same_results(graph, after, feeds_for(X))


def test_cse_compares_parsed_parameters():
    x = variable("x").output()
    same = Graph([op("_mul_scalar", x, scalar="2"), op("_mul_scalar", x, scalar="2.0")])
    assert ops(common_subexpression_elimination(same)) == ["null", "_mul_scalar"]
    different = Graph([op("_mul_scalar", x, scalar=2), op("_mul_scalar", x, scalar=3)])
    assert ops(common_subexpression_elimination(different)) == ["null", "_mul_scalar", "_mul_scalar"]
    hidden = Graph([op("exp", x), Node("exp", (x,), {"__ctx_group__": "dev1"}, "exp2").output()])
    assert len(common_subexpression_elimination(hidden).nodes) == 3


def test_cse_never_merges_random_ops_or_variables():
    x, y = variable("x").output(), variable("x").output()
    graph = Graph(
        [
            op("Dropout", x, p=0.5),
            op("Dropout", x, p=0.5),
            op("LeakyReLU", x, act_type="rrelu"),
            op("LeakyReLU", x, act_type="rrelu"),
            op("LeakyReLU", x, act_type="leaky"),
            op("LeakyReLU", x, act_type="leaky"),
            op("exp", y),
        ]
    )
    after = common_subexpression_elimination(graph)
    assert ops(after) == ["null", "Dropout", "Dropout", "LeakyReLU", "LeakyReLU", "LeakyReLU", "null", "exp"]
    assert after.outputs[4] == after.outputs[5]


def test_cse_merges_multi_output_nodes_output_by_output():
    x = variable("x").output()
    first = Node("SliceChannel", (x,), {"num_outputs": "3", "axis": "1"}, "s1")
    second = Node("SliceChannel", (x,), {"num_outputs": "3", "axis": "1"}, "s2")
    graph = Graph([first.output(2), second.output(0), second.output(2)])
    after = common_subexpression_elimination(graph)
    assert ops(after) == ["null", "SliceChannel"]
    assert [v.index for v in after.outputs] == [2, 0, 2]
    assert_same_results(graph, after, feeds_for(X))


# ---------------------------------------------------------------------------------------------
# Dead code elimination


def test_dce_keeps_what_the_outputs_read_and_prunes_types():
    x = variable("x").output()
    kept, dropped = op("exp", x), op("log", x)
    graph = Graph([kept, dropped])
    shapes, dtypes = facts(graph, X)
    typed = Graph([kept], {v: TensorType(shapes[v], dtypes[v]) for v in shapes})
    after = dead_code_elimination(typed)
    assert ops(after) == ["null", "exp"]
    assert set(after.types) == {x, kept}
    assert dead_code_elimination(Graph([kept])).types is None


def test_dce_keeps_multi_output_nodes_whole():
    x, gamma, beta, mean, var = (variable(n).output() for n in ("x", "gamma", "beta", "mean", "var"))
    norm = Node("BatchNorm", (x, gamma, beta, mean, var), {}, "bn")
    after = dead_code_elimination(Graph([norm.output(0)]))
    assert after.nodes[-1] is norm and after.nodes[-1].num_outputs == 3


def test_nodes_a_rewrite_leaves_unread_are_gone():
    x = variable("x").output()
    graph = Graph([op("elemwise_add", op("exp", x), op("zeros_like", op("tanh", x)))])
    shapes, dtypes = facts(graph, X)
    assert ops(dead_code_elimination(simplify_algebra(graph, shapes, dtypes))) == ["null", "exp"]


# ---------------------------------------------------------------------------------------------
# Constant folding


def test_a_uniform_constant_subgraph_becomes_one_full_node_named_after_its_root():
    ones = op("_ones", shape=(2, 3), name="ones")
    three = op("_plus_scalar", op("_mul_scalar", ones, scalar=2), scalar=1, name="three")
    graph = Graph([op("elemwise_mul", variable("x").output(), three, name="out")])
    after = fold_constants(graph)
    assert ops(after) == ["null", "_full", "elemwise_mul"]
    full = after.nodes[1]
    assert (full.name, full.params["shape"], full.params["dtype"], full.params["value"]) == (
        "three",
        (2, 3),
        "float32",
        3.0,
    )
    assert_same_results(graph, after, feeds_for(X))


@pytest.mark.parametrize(
    "constant, expected_op",
    [
        (lambda: op("_mul_scalar", op("_ones", shape=(4,)), scalar=0), "_zeros"),
        (lambda: op("_power_scalar", op("_full", shape=(4,), value=7), scalar=0), "_ones"),
        (lambda: op("negative", op("_zeros", shape=(4,))), "_full"),  # -0.0 is not _zeros' +0.0
        (lambda: op("_mul_scalar", op("_ones", shape=(2, 2), dtype="int32"), scalar=5), "_full"),
        (lambda: op("_eye", N=1), "_ones"),
        (lambda: op("sum", op("_arange", start=0, stop=4)), "_full"),
        (lambda: op("_greater_scalar", op("_ones", shape=(3,), dtype="bool"), scalar=0), "_ones"),
    ],
    ids=["zeros", "ones", "negative zero", "int32", "eye(1)", "sum of arange", "bool"],
)
def test_uniform_constants_become_the_fill_op_that_gives_them_exactly(constant, expected_op):
    graph = Graph([constant()])
    after = fold_constants(graph)
    assert ops(after) == [expected_op]
    (old,), (new,) = run(graph, {}), run(after, {})
    assert (new.dtype, new.shape, new.tobytes()) == (old.dtype, old.shape, old.tobytes())


def test_non_uniform_constants_stay_but_their_uniform_parts_fold():
    arange = op("_arange", start=0, stop=6)
    zeros = op("_mul_scalar", op("_ones", shape=(6,)), scalar=0, name="z")
    graph = Graph([op("elemwise_add", arange, zeros, name="sum"), op("_mul_scalar", arange, scalar=2)])
    after = fold_constants(graph)
    assert ops(after) == ["_arange", "_zeros", "elemwise_add", "_mul_scalar"]
    assert_same_results(graph, after, {})


def test_folding_leaves_random_and_unevaluable_constants_alone():
    dropout = op("Dropout", op("_ones", shape=(8,)), p=0.5, mode="always")
    unknown = op("_zeros")  # its shape comes from its consumer: no value on its own
    graph = Graph([dropout, op("elemwise_add", variable("x").output(), unknown)])
    assert ops(fold_constants(graph)) == ops(graph)
    assert fold_constants(Graph([op("_full", shape=(2,), value=0)])).nodes[0].op == "_full"  # fills stay

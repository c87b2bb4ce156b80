"""Op details found in review: contradictory facts give ShapeError (never a crash), MXNet's rounding,
BatchNorm's inverse-std output, float16 activations, Python 2 tuples, clip with inverted bounds."""

import ember as mx
import numpy as np
import pytest
from ember.compiler import Graph, Node, variable
from ember.compiler.ops import get_schema
from ember.compiler.ops.params import parse_tuple
from ember.compiler.passes import infer_shapes
from ember.runtime.errors import GraphError, MXNetError, ShapeError


def clash_graph(op, attrs, out_shape, in_shape):
    """op(x) whose output is pinned to `out_shape` by one consumer and whose input is pinned to
    `in_shape` by another, so the rule sees both facts at once."""
    x, y, z = variable("x"), variable("y"), variable("z")
    n = Node(op, (x.output(),), attrs, "n")
    a = Node("elemwise_add", (n.output(), y.output()), {}, "a")
    b = Node("elemwise_add", (x.output(), z.output()), {}, "b")
    return Graph((a.output(), b.output())), {"y": out_shape, "z": in_shape}


# 1. rank contradictions crash permutation / split rules with IndexError or plain ValueError
@pytest.mark.parametrize(
    "op,attrs,out_shape,in_shape",
    [
        ("transpose", {}, (3, 2), (2, 3, 4)),  # IndexError
        ("transpose", {"axes": "(1,0)"}, (2, 4, 3), (3, 6)),  # ValueError: tuple.index
        ("SwapAxis", {"dim1": "0", "dim2": "1"}, (4,), (4, 4, 2)),  # IndexError
        ("SliceChannel", {"num_outputs": "2"}, (6,), (6, 2, 1)),  # IndexError
    ],
)
def test_rank_clash_raises_shape_error(op, attrs, out_shape, in_shape):
    g, given = clash_graph(op, attrs, out_shape, in_shape)
    with pytest.raises(ShapeError):
        infer_shapes(g, given)


# 2. Reshape: split code -4 with a 0 operand -> ZeroDivisionError (MXNet: SIGFPE; Ember must raise clearly)
def test_reshape_split_by_zero():
    with pytest.raises(MXNetError):
        mx.nd.Reshape(mx.nd.ones((2, 3)), shape=(-4, -1, 0, -2))


# 3. rint: MXNet rounds n.5 down (documented: rint([-1.5, 1.5, -1.9, 1.9, 2.1]) = [-2, 1, -2, 2, 2])
def test_rint_halves():
    out = mx.nd.rint(mx.nd.array([-1.5, 1.5, -1.9, 1.9, 2.1, 0.5, 2.5, -0.5])).asnumpy()
    np.testing.assert_array_equal(out, [-2, 1, -2, 2, 2, 0, 2, -1])


# 4. FullyConnected infers nothing unless data is fully known (MXNet needs only its rank)
def test_fc_partial_data():
    d, w, b = variable("data"), variable("w"), variable("b")
    fc = Node("FullyConnected", (d.output(), w.output(), b.output()), {"num_hidden": "10"}, "fc")
    s = infer_shapes(Graph((fc.output(),)), {"data": (None, 784)})
    assert s.get(w.output()) == (10, 784)
    assert s.get(b.output()) == (10,)
    assert s.get(fc.output()) == (None, 10)


# 5. 0-d shapes meet rules written for tensors: a ShapeError naming the node, not a crash
@pytest.mark.parametrize(
    "op,attrs,ins",
    [
        ("dot", {}, [(), (3,)]),
        ("LinearRegressionOutput", {}, [(4, 3), ()]),
        ("where", {}, [(6,), (), ()]),
    ],
)
def test_zero_d_shapes_give_shape_errors(op, attrs, ins):
    schema = get_schema(op)
    names = schema.input_names(schema.parse_params(attrs))
    variables = [variable(n) for n in names]
    node = Node(op, tuple(v.output() for v in variables), attrs, "n")
    with pytest.raises(ShapeError, match=f"Error in operator n \\({op}\\)"):
        infer_shapes(Graph((node.output(),)), dict(zip(names, ins)))


def test_symbol_infer_shape_partial_round_trip():
    data = mx.sym.Variable("data")
    fc = mx.sym.FullyConnected(data, num_hidden=3, name="fc")
    args, _, _ = fc.infer_shape_partial()  # [(), (), ()]: () = unknown
    fc.infer_shape_partial(**dict(zip(fc.list_arguments(), args)))  # IndexError today


# 6. attribute strings: "inf"/"nan"/"1e400" for int params escape as OverflowError/ValueError; "(3L, 3L)" is legal in MXNet
@pytest.mark.parametrize("text", ["inf", "nan", "1e400", "(inf,)"])
def test_int_params_bad_numbers_raise_graph_error(text):
    with pytest.raises(GraphError):
        get_schema("Convolution").parse_params({"kernel": text, "num_filter": "2"})
    with pytest.raises(GraphError):
        get_schema("SliceChannel").parse_params({"num_outputs": text})


def test_python2_long_suffix_tuple():
    assert parse_tuple("(3L, 3L)") == (3, 3)


# 7. Convolution backward inference produces a negative input dim instead of a ShapeError
def test_conv_backward_negative_dim():
    d, w, y = variable("data"), variable("w"), variable("y")
    conv = Node(
        "Convolution",
        (d.output(), w.output()),
        {"kernel": "(1,1)", "pad": "(2,2)", "num_filter": "4", "no_bias": "True"},
        "conv",
    )
    add = Node("elemwise_add", (conv.output(), y.output()), {}, "add")
    try:
        s = infer_shapes(Graph((add.output(),)), {"data": (2, 3, None, None), "y": (2, 4, 1, 1)})
    except ShapeError:
        return
    assert all(dim is None or dim >= 0 for dim in s[d.output()]), s[d.output()]


# 8. BatchNorm's `var` output: MXNet's CPU kernel stores 1/sqrt(var + eps) there (batch_norm.cc, VARIANCE_TO_INVSTD)
def test_batchnorm_var_output_is_invstd():
    x = mx.nd.array(np.arange(8, dtype=np.float32).reshape(2, 2, 2))
    mv = np.array([4.0, 0.25])
    _, _, var = mx.nd.BatchNorm(
        x,
        mx.nd.ones((2,)),
        mx.nd.zeros((2,)),
        mx.nd.zeros((2,)),
        mx.nd.array(mv),
        output_mean_var=True,
        eps=1e-3,
    )
    np.testing.assert_allclose(var.asnumpy(), 1 / np.sqrt(mv + 1e-3), rtol=1e-5)


# 9. Activation(sigmoid) on float16 underflows to 0 (exp(-x) overflows fp16); MXNet computes exp in double
def test_activation_sigmoid_fp16():
    x = mx.nd.array(np.array([-12.0], np.float16), dtype="float16")
    assert mx.nd.Activation(x, act_type="sigmoid").asnumpy()[0] > 0


# 10. mx.nd lets raw exceptions out of references (interpreter wraps them in MXNetError; invoke doesn't)
@pytest.mark.parametrize(
    "call",
    [
        lambda: mx.nd.take(mx.nd.ones((3, 2)), mx.nd.array([5]), mode="raise"),
        lambda: mx.nd.argmax(mx.nd.ones((4,)), axis=1),
        lambda: mx.nd.concat(),
        lambda: mx.nd.max(mx.nd.zeros((2, 0))),
    ],
)
def test_nd_errors_are_mxnet_errors(call):
    with pytest.raises(MXNetError):
        call()


# 11. clip with a_min > a_max: MXNet's kernel is `x > a_max ? a_max : x < a_min ? a_min : x`
def test_clip_inverted_bounds():
    out = mx.nd.clip(mx.nd.array([0.0, 1.5, 3.0]), a_min=2, a_max=1).asnumpy()
    np.testing.assert_array_equal(out, [2, 1, 1])

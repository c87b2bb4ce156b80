"""NDArray semantics (MXNET_COMPAT.md 3.1-3.3) and the `mx.nd.<Op>` functions generated from the registry."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import ember.ndarray as nd
from ember.compiler.ops import ALIASES, SCHEMAS
from ember.context import cpu, cpu_pinned
from ember.runtime.errors import GraphError, MXNetError, ShapeError, TypeInferenceError


def require_ops(*names):
    missing = [n for n in names if n not in SCHEMAS and n not in ALIASES]
    if missing:
        pytest.skip(f"op(s) {', '.join(missing)} not registered in ember.compiler.ops yet")


def grid(rows=3, cols=4, dtype="float32"):
    return nd.array(np.arange(rows * cols).reshape(rows, cols), dtype=dtype)


def check(array, expected, dtype=np.float32):
    assert isinstance(array, nd.NDArray)
    assert array.dtype is dtype
    np.testing.assert_allclose(array.asnumpy(), np.asarray(expected, dtype=dtype), rtol=1e-6)
    assert array.shape == np.asarray(expected).shape


# -- creation and properties (3.1) ------------------------------------------------------------


def test_array_defaults_to_float32_for_every_non_ndarray_source():
    assert nd.array([1, 2]).dtype is np.float32
    assert nd.array(np.arange(3)).dtype is np.float32  # int64 source
    assert nd.array(np.ones(2, dtype=np.float64)).dtype is np.float32
    assert nd.array([[1, 2]], dtype="int32").dtype is np.int32
    assert nd.array([1, 0], dtype=np.bool_).dtype is np.bool_


def test_array_from_ndarray_keeps_its_dtype_and_copies():
    source = nd.array([1, 2], dtype="int64")
    result = nd.array(source)
    assert result.dtype is np.int64
    result[:] = 9
    check(source, [1, 2], np.int64)
    assert nd.array(source, dtype="float16").dtype is np.float16


def test_array_from_a_scalar_has_shape_one():
    check(nd.array(5), [5.0])


def test_creation_functions():
    check(nd.zeros((2, 3)), np.zeros((2, 3)))
    check(nd.ones(3, dtype="int32"), [1, 1, 1], np.int32)
    check(nd.full((2,), 7.5), [7.5, 7.5])
    check(nd.full((2,), 7.5, dtype="int32"), [7, 7], np.int32)
    check(nd.empty((0, 4)), np.zeros((0, 4)))
    check(nd.arange(3), [0, 1, 2])
    check(nd.arange(1, 7, 2, repeat=2), [1, 1, 3, 3, 5, 5])
    check(nd.arange(0, 1, 0.25, dtype="float64"), [0, 0.25, 0.5, 0.75], np.float64)


def test_zeros_like_ones_like_keep_shape_and_dtype():
    x = grid(dtype="int32")
    check(nd.zeros_like(x), np.zeros((3, 4)), np.int32)
    check(nd.ones_like(x), np.ones((3, 4)), np.int32)
    check(x.zeros_like(), np.zeros((3, 4)), np.int32)


def test_concat_and_stack():
    a, b = nd.array([[1, 2]]), nd.array([[3, 4]])
    check(nd.concat(a, b, dim=0), [[1, 2], [3, 4]])
    check(nd.concat(a, b), [[1, 2, 3, 4]])  # dim=1 by default
    check(nd.stack(a, b), [[[1, 2]], [[3, 4]]])
    check(nd.stack(a, b, axis=1), [[[1, 2], [3, 4]]])
    check(nd.concatenate([a, b]), [[1, 2], [3, 4]])


def test_properties():
    x = grid()
    assert x.shape == (3, 4) and isinstance(x.shape, tuple)
    assert x.dtype is np.float32
    assert x.context == cpu(0) and x.ctx == cpu(0)
    assert (x.ndim, x.size, x.stype, len(x)) == (2, 12, "default", 3)
    check(x.T, np.arange(12).reshape(3, 4).T)
    vector = nd.array([1, 2])
    assert vector.T is vector


def test_repr_is_mxnets():
    assert repr(nd.array([[1, 2], [3, 4]])) == "\n[[1. 2.]\n [3. 4.]]\n<NDArray 2x2 @cpu(0)>"
    assert str(nd.array([1, 2, 3], dtype="int32")) == "\n[1 2 3]\n<NDArray 3 @cpu(0)>"
    assert repr(nd.zeros((1,), ctx=cpu_pinned(0))).endswith("<NDArray 1 @cpu_pinned(0)>")


# -- conversion --------------------------------------------------------------------------------


def test_asnumpy_is_a_copy():
    x = nd.array([1, 2])
    copied = x.asnumpy()
    copied[0] = 100
    check(x, [1, 2])
    np.testing.assert_array_equal(np.asarray(x), [1, 2])


def test_asscalar():
    value = nd.array([3.5]).asscalar()
    assert value == 3.5 and isinstance(value, np.float32)
    with pytest.raises(ValueError, match=r"The current array is not a scalar: .* shape \(2,\)"):
        nd.array([1, 2]).asscalar()


def test_float_of_an_ndarray_is_a_type_error_as_in_mxnet_1x():
    with pytest.raises(TypeError):
        float(nd.array([1.0]))


def test_bool_of_an_ndarray():
    assert bool(nd.array([2.0])) is True
    assert bool(nd.zeros((0,))) is False
    with pytest.raises(ValueError, match="ambiguous"):
        bool(nd.array([1, 2]))


def test_astype():
    x = nd.array([1.7, -2.5])
    check(x.astype("int32"), [1, -2], np.int32)
    assert x.astype(np.float32, copy=False) is x
    same = x.astype("float32")
    assert same is not x
    same[:] = 0
    check(x, [1.7, -2.5])


def test_copy_copyto_and_as_in_context():
    x = nd.array([1, 2])
    y = x.copy()
    y[:] = 5
    check(x, [1, 2])
    target = nd.zeros((2,), dtype="int32")
    assert x.copyto(target) is target
    check(target, [1, 2], np.int32)
    moved = x.copyto(cpu(1))
    assert moved.context == cpu(1)
    check(moved, [1, 2])
    assert x.as_in_context(cpu(0)) is x
    assert x.as_in_context(cpu(2)).context == cpu(2)
    with pytest.raises(ShapeError, match=r"cannot copy an array of shape \(2,\) into one of shape \(3,\)"):
        x.copyto(nd.zeros((3,)))


def test_wait_and_iteration():
    x = grid(2, 2)
    assert x.wait_to_read() is None and nd.waitall() is None
    rows = list(x)
    assert len(rows) == 2
    check(rows[1], [2, 3])


def test_pickle_and_deepcopy_round_trip():
    x = nd.array([[1, 2], [3, 4]], dtype="int64")
    for restored in (pickle.loads(pickle.dumps(x)), copy.deepcopy(x)):
        check(restored, [[1, 2], [3, 4]], np.int64)
        assert restored.context == cpu(0)


# -- arithmetic (3.2) -------------------------------------------------------------------------


def test_arithmetic_with_scalars_keeps_float32():
    x = nd.array([1, 2, 4])
    check(x + 1, [2, 3, 5])
    check(1.5 + x, [2.5, 3.5, 5.5])
    check(x - 1, [0, 1, 3])
    check(10 - x, [9, 8, 6])
    check(x * 2, [2, 4, 8])
    check(2 * x, [2, 4, 8])
    check(x / 4, [0.25, 0.5, 1])
    check(4 / x, [4, 2, 1])
    check(x % 3, [1, 2, 1])
    check(7 % x, [0, 1, 3])
    check(x**2, [1, 4, 16])
    check(2**x, [2, 4, 16])
    check(-x, [-1, -2, -4])
    check(x + np.float64(0.5), [1.5, 2.5, 4.5])


def test_scalar_takes_the_array_dtype():
    x = nd.array([1, 2], dtype="int32")
    check(x + 2.5, [3, 4], np.int32)
    check(x * 3, [3, 6], np.int32)


def test_arithmetic_between_ndarrays_broadcasts():
    a = nd.array([[1, 2, 3], [4, 5, 6]])
    b = nd.array([10, 20, 30])
    check(a + b, [[11, 22, 33], [14, 25, 36]])
    check(b - a, [[9, 18, 27], [6, 15, 24]])
    check(a * nd.array([[2], [3]]), [[2, 4, 6], [12, 15, 18]])
    check(a / a, np.ones((2, 3)))
    check(a ** nd.array([2, 1, 0]), [[1, 2, 1], [16, 5, 1]])


def test_arithmetic_with_numpy_arrays():
    a = nd.array([[1, 2], [3, 4]])
    check(a + np.array([1, 1]), [[2, 3], [4, 5]])
    check(np.array([10, 20]) - a, [[9, 18], [7, 16]])
    check(np.ones((2, 2)) * a, [[1, 2], [3, 4]])


def test_incompatible_shapes_raise_shape_error_naming_op_and_shapes():
    with pytest.raises(ShapeError, match=r"broadcast_add.*\(2,3\).*\(4,3\)"):
        nd.ones((2, 3)) + nd.ones((4, 3))


def test_mixed_dtypes_raise_type_error():
    with pytest.raises(TypeInferenceError, match=r"broadcast_add.*float32.*float64"):
        nd.ones((2,)) + nd.ones((2,), dtype="float64")


def test_unsupported_operand_type():
    with pytest.raises(TypeError):
        nd.ones((2,)) + "a"
    assert (nd.ones((2,)) == None) is False  # falls back to identity, as Python does


def test_comparisons_return_zero_one_in_the_operand_dtype():
    x = nd.array([1, 2, 3])
    check(x == 2, [0, 1, 0])
    check(x != 2, [1, 0, 1])
    check(x > 2, [0, 0, 1])
    check(x >= 2, [0, 1, 1])
    check(x < 2, [1, 0, 0])
    check(x <= 2, [1, 1, 0])
    check(2 < x, [0, 0, 1])
    check(x == nd.array([1, 0, 3]), [1, 0, 1])
    check(nd.array([1, 5], dtype="int32") > 2, [0, 1], np.int32)


def test_module_level_binary_functions():
    x = nd.array([1, 5])
    check(nd.maximum(x, 3), [3, 5])
    check(nd.minimum(x, nd.array([2, 2])), [1, 2])
    check(nd.add(x, x), [2, 10])
    check(nd.subtract(10, x), [9, 5])
    assert nd.multiply(2, 3) == 6
    with pytest.raises(TypeError, match="unsupported operand types NDArray and str"):
        nd.add(x, "b")


def test_in_place_operators_mutate_the_array():
    x = nd.array([[1, 2], [3, 4]])
    alias, row = x, x[1]
    x += 1
    x -= nd.array([1, 0])
    x *= 2
    x /= nd.array([[2], [1]])
    assert x is alias
    check(x, [[1, 3], [6, 10]])
    check(row, [6, 10])
    x %= 3
    check(x, [[1, 0], [0, 1]])


def test_in_place_cannot_grow_the_array():
    x = nd.ones((1, 2))
    with pytest.raises(ShapeError, match=r"produced shape \(2, 2\) but its out= array has shape \(1, 2\)"):
        x += nd.ones((2, 2))


# -- indexing (3.3) ---------------------------------------------------------------------------


def test_slices_and_integers_along_axis_0_are_views():
    x = grid()
    x[1:3][:] = 5
    check(x, [[0, 1, 2, 3], [5, 5, 5, 5], [5, 5, 5, 5]])
    x[1][:] = 7
    check(x[1], [7, 7, 7, 7])
    x[-1][0:2] = 8
    check(x[2], [8, 8, 5, 5])


def test_reshape_is_a_view():
    x = grid()
    flat = x.reshape(-1)
    flat[0] = 100
    assert x[0, 0].asscalar() == 100
    x[:] = 1
    check(flat, np.ones(12))


def test_other_axis_slices_are_copies():
    x = grid()
    column = x[:, 1]
    check(column, [1, 5, 9])
    column[:] = -1
    check(x[:, 1], [1, 5, 9])
    stepped = x[::2]
    check(stepped, [[0, 1, 2, 3], [8, 9, 10, 11]])
    stepped[:] = 0
    assert x.sum().asscalar() == 66


def test_integer_index_of_every_axis_gives_shape_1():
    x = grid()
    check(x[1, 2], [6])
    check(nd.array([4, 5, 6])[1], [5])
    check(x[-1, -1], [11])


def test_advanced_indexing_gathers():
    x = grid()
    check(x[[2, 0]], [[8, 9, 10, 11], [0, 1, 2, 3]])
    check(x[:, [0, 2]], [[0, 2], [4, 6], [8, 10]])
    check(x[nd.array([1, 1])], [[4, 5, 6, 7], [4, 5, 6, 7]])
    check(x[np.array([0, 2]), np.array([3, 1])], [3, 9])
    gathered = x[[0]]
    gathered[:] = 50
    assert x[0, 0].asscalar() == 0


def test_out_of_range_index():
    with pytest.raises(IndexError):
        grid()[3]


def test_assignment():
    x = nd.zeros((3, 3))
    x[:] = 1
    check(x, np.ones((3, 3)))
    x[1:3] = nd.array([[2, 2, 2], [3, 3, 3]])
    x[:, 1] = 9
    check(x, [[1, 9, 1], [2, 9, 2], [3, 9, 3]])
    x[0] = np.array([4, 5, 6])
    x[2, 2] = nd.array([7])
    x[[1, 2], 0] = 0
    check(x, [[4, 5, 6], [0, 9, 2], [0, 9, 7]])
    x[1:2] = [1, 2, 3]
    check(x[1], [1, 2, 3])


def test_assignment_with_a_wrong_shape():
    x = nd.zeros((3, 3))
    with pytest.raises(
        ShapeError, match=r"cannot assign a value of shape \(2,\) to an NDArray slice of shape \(3, 3\)"
    ):
        x[:] = np.array([1, 2])


# -- reshape -----------------------------------------------------------------------------------

RESHAPES = [  # MXNET_COMPAT.md 2.7, verified on MXNet with input (2, 3, 4)
    ((4, 0, 2), (4, 3, 2)),
    ((2, 0, 0), (2, 3, 4)),
    ((-1,), (24,)),
    ((-2,), (2, 3, 4)),
    ((2, -2), (2, 3, 4)),
    ((-2, 1, 1), (2, 3, 4, 1, 1)),
    ((-3, 4), (6, 4)),
    ((-3, -2), (6, 4)),
    ((-4, 1, 2, -2), (1, 2, 3, 4)),
    ((2, -4, -1, 3, -2), (2, 1, 3, 4)),
    ((0, -1), (2, 12)),
    ((-1, 0), (8, 3)),
]


@pytest.mark.parametrize("codes,expected", RESHAPES, ids=str)
def test_reshape_special_codes(codes, expected):
    x = nd.arange(24).reshape(2, 3, 4)
    result = x.reshape(codes)
    assert result.shape == expected
    check(result, np.arange(24).reshape(expected))


def test_reshape_call_forms_and_reverse():
    x = nd.zeros((10, 5, 4))
    assert x.reshape(-1, 0).shape == (40, 5)
    assert x.reshape((-1, 0), reverse=True).shape == (50, 4)
    assert x.reshape(shape=(20, 10)).shape == (20, 10)
    assert nd.reshape(x, shape=(2, -1)).shape == (2, 100)


def test_reshape_errors():
    with pytest.raises(ShapeError, match="Reshape"):
        nd.zeros((2, 3)).reshape(4, 2)
    with pytest.raises(TypeError, match="Got unknown keywords in reshape: order"):
        nd.zeros((2, 3)).reshape((3, 2), order="F")


# -- methods built on registry ops -------------------------------------------------------------


def test_reductions():
    x = grid()
    check(x.sum(), [66])
    check(x.sum(axis=1), [6, 22, 38])
    check(x.sum(axis=0, keepdims=True), [[12, 15, 18, 21]])
    check(x.mean(axis=1), [1.5, 5.5, 9.5])
    check(x.max(), [11])
    check(x.min(axis=0), [0, 1, 2, 3])
    check(x.argmax(axis=1), [3, 3, 3])
    check(nd.sum(x, 1), [6, 22, 38])  # positional parameters follow the inputs, as in MXNet


def test_unary_math_methods():
    x = nd.array([1.0, 4.0])
    check(x.exp(), np.exp([1.0, 4.0]))
    check(x.log(), np.log([1.0, 4.0]))
    check(x.sqrt(), [1, 2])
    check(x.square(), [1, 16])
    check(nd.array([-1.5, 2]).abs(), [1.5, 2])
    check(nd.array([-2, 0.5, 3]).clip(-1, 1), [-1, 0.5, 1])
    check(nd.array([-2, 3]).relu(), [0, 3])
    check(nd.array([0.0]).sigmoid(), [0.5])
    check(nd.array([0.0, 1.0]).tanh(), np.tanh([0.0, 1.0]))


def test_shape_methods():
    x = grid(2, 3)
    check(x.transpose(), np.arange(6).reshape(2, 3).T)
    check(x.expand_dims(axis=0), np.arange(6).reshape(1, 2, 3))
    check(nd.zeros((2, 1, 3)).squeeze(), np.zeros((2, 3)))
    check(nd.zeros((2, 3, 4)).flatten(), np.zeros((2, 12)))
    check(nd.array([1, 2]).broadcast_to((2, 2)), [[1, 2], [1, 2]])


def test_softmax_method():
    require_ops("softmax")
    check(nd.array([[0.0, 0.0], [0.0, np.log(3.0)]]).softmax(), [[0.5, 0.5], [0.25, 0.75]])


def test_one_hot_method():
    require_ops("one_hot")
    check(nd.array([1, 0]).one_hot(3), [[0, 1, 0], [1, 0, 0]])


def test_dot():
    require_ops("dot")
    a, b = nd.array([[1, 2], [3, 4]]), nd.array([[1], [1]])
    check(nd.dot(a, b), [[3], [7]])
    check(nd.dot(a, b, transpose_a=True), [[4], [6]])


# -- the generated op functions ----------------------------------------------------------------


def test_every_registered_op_and_alias_has_a_function():
    missing = [name for name in list(SCHEMAS) + list(ALIASES) if not callable(getattr(nd, name, None))]
    assert missing == []
    assert nd.FullyConnected.__name__ == "FullyConnected"
    assert "num_hidden (required): number of output units" in nd.FullyConnected.__doc__


def test_op_inputs_positional_or_by_name():
    x, w, b = nd.array([[1, 2]]), nd.array([[1, 1], [2, 0]]), nd.array([10, 20])
    expected = [[13, 22]]
    check(nd.FullyConnected(x, w, b, num_hidden=2), expected)
    check(nd.FullyConnected(data=x, weight=w, bias=b, num_hidden=2, name="fc1"), expected)
    check(nd.FullyConnected(x, weight=w, bias=b, num_hidden=2), expected)
    check(nd.FullyConnected(x, w, num_hidden=2, no_bias=True), [[3, 2]])
    check(nd.Activation(nd.array([-1, 1]), act_type="relu"), [0, 1])


def test_op_out_argument_writes_into_the_array():
    out = nd.zeros((2,))
    result = nd.Activation(nd.array([-1, 1]), act_type="relu", out=out)
    assert result is out
    check(out, [0, 1])


def test_op_wrong_shapes_name_op_and_shapes():
    with pytest.raises(
        ShapeError, match=r"FullyConnected.*weight.*Input shapes: data=\(2,3\).*weight=\(4,5\)"
    ):
        nd.FullyConnected(nd.ones((2, 3)), nd.ones((4, 5)), nd.ones((4,)), num_hidden=4)


def test_op_argument_errors():
    x = nd.ones((2, 3))
    with pytest.raises(MXNetError, match="operator FullyConnected is missing its input"):
        nd.FullyConnected(x, bias=nd.ones((4,)), num_hidden=4)
    with pytest.raises(
        MXNetError, match=r"operator FullyConnected takes 3 inputs \(data, weight, bias\), got 2"
    ):
        nd.FullyConnected(x, nd.ones((4, 3)), num_hidden=4)
    with pytest.raises(MXNetError, match="has no input named 'weights'"):
        nd.FullyConnected(x, weights=nd.ones((4, 3)), num_hidden=4, no_bias=True)
    with pytest.raises(GraphError, match="unknown attribute 'act' for operator Activation"):
        nd.Activation(x, act="relu")
    with pytest.raises(GraphError, match="missing its required attribute 'act_type'"):
        nd.Activation(x)
    with pytest.raises(TypeError, match="expects NDArray inputs"):
        from ember.ndarray.register import invoke

        invoke("Activation", [np.ones(2)], {"act_type": "relu"})


def test_op_with_several_outputs_returns_a_list():
    require_ops("split")
    parts = nd.split(grid(2, 4), num_outputs=2, axis=1)
    assert isinstance(parts, list) and len(parts) == 2
    check(parts[1], [[2, 3], [6, 7]])


def test_op_results_do_not_alias_inputs():
    require_ops("identity")
    x = nd.array([1, 2])
    y = nd.identity(x)
    y[:] = 0
    check(x, [1, 2])


# -- the host buffer (Ember's addition: how compiled programs share an array's memory) ---------------


def test_host_buffer_is_the_live_memory():
    a = nd.zeros((2, 3))
    buffer = a.host_buffer()
    buffer[0, 1] = 5.0
    assert a.asnumpy()[0, 1] == 5.0 and a.host_buffer() is buffer


def test_adopt_host_buffer_shares_memory_both_ways():
    a = nd.array([[1, 2], [3, 4]])
    arena = np.zeros(8, np.float32)
    view = arena[2:6].reshape(2, 2)
    view[...] = a.host_buffer()
    a.adopt_host_buffer(view)
    a += 1
    np.testing.assert_array_equal(arena, [0, 0, 2, 3, 4, 5, 0, 0])
    view[0, 0] = 9
    assert a.asnumpy()[0, 0] == 9


def test_adopt_host_buffer_needs_the_same_shape_and_dtype():
    a = nd.zeros((2, 2))
    with pytest.raises(ShapeError, match=r"the buffer is float32\[4\], the array float32\[2, 2\]"):
        a.adopt_host_buffer(np.zeros(4, np.float32))
    with pytest.raises(ShapeError, match=r"the buffer is float64\[2, 2\]"):
        a.adopt_host_buffer(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="needs a NumPy array, not NDArray"):
        a.adopt_host_buffer(nd.zeros((2, 2)))


def test_nd_random_is_mx_random_sampling():
    import ember as mx
    from ember.ndarray import random as nd_random

    assert mx.nd.random is nd_random
    assert mx.random.uniform is nd_random.uniform and mx.random.normal is nd_random.normal
    assert mx.random.randint is nd_random.randint and mx.nd.random.seed is mx.random.seed
    mx.random.seed(5)
    first = mx.nd.random.normal(shape=(3,)).asnumpy()
    mx.random.seed(5)
    np.testing.assert_array_equal(mx.random.normal(shape=(3,)).asnumpy(), first)

"""NDArray semantics MXNet 1.9.1 programs rely on (MXNET_COMPAT.md 3.1-3.3), following MXNet's
tests/python/unittest/test_ndarray.py: which indexing results are views and which are copies, legacy
index shapes, comparisons, broadcasting, reflected and in-place arithmetic, contexts, repr, save/load
and waitall. Expected values come from NumPy or are written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember.base import MXNetError

nd = mx.nd


def grid(rows=3, cols=4) -> nd.NDArray:
    return nd.array(np.arange(rows * cols).reshape(rows, cols))


def same(array, expected, dtype=np.float32):
    assert array.dtype is dtype
    np.testing.assert_array_equal(array.asnumpy(), np.asarray(expected, dtype=dtype))


# -- views share memory (first axis, reshape) ------------------------------------------------------


def test_writing_through_a_first_axis_slice_writes_the_array():
    a = grid()
    a[1:3][:] = 5
    same(a, [[0, 1, 2, 3], [5, 5, 5, 5], [5, 5, 5, 5]])


def test_writing_through_an_integer_index_writes_the_row():
    a = grid()
    a[1][:] = 7
    a[-1][:] = 9
    same(a, [[0, 1, 2, 3], [7, 7, 7, 7], [9, 9, 9, 9]])


def test_a_view_sees_later_writes_to_its_array():
    a = grid()
    view = a[1:3]
    a[:] = 0
    same(view, np.zeros((2, 4)))


def test_a_view_of_a_view_still_shares_memory():
    a = grid()
    inner = a[1:3][1:2]
    inner[:] = -1
    same(a, [[0, 1, 2, 3], [4, 5, 6, 7], [-1, -1, -1, -1]])


def test_reshape_is_a_view_both_ways():
    a = grid()
    flat = a.reshape((12,))
    flat[0:2] = 100  # a first-axis slice assignment on the view
    same(a[0], [100, 100, 2, 3])
    a[2][:] = 1
    same(flat[8:], [1, 1, 1, 1])
    assert a.reshape(-1, 6).shape == (2, 6)


def test_in_place_arithmetic_on_a_view_updates_the_array():
    a = grid()
    row = a[1]
    row += 10
    row *= 2
    same(a, [[0, 1, 2, 3], [28, 30, 32, 34], [8, 9, 10, 11]])


# -- copies (other axes, steps, gathers, explicit copies) ------------------------------------------


@pytest.mark.parametrize(
    "index",
    [(slice(None), 1), (slice(None), slice(1, 3)), slice(None, None, 2), [2, 0], (slice(None), [0, 2])],
    ids=["column", "column-slice", "stepped-rows", "row-gather", "column-gather"],
)
def test_these_indexing_results_are_copies(index):
    a = grid()
    before = a.asnumpy()
    part = a[index]
    np.testing.assert_array_equal(part.asnumpy(), before[index])
    part[:] = -7
    same(a, before)


def test_copy_astype_and_asnumpy_do_not_share_memory():
    a = grid()
    copied, cast, host = a.copy(), a.astype("float64"), a.asnumpy()
    a[:] = 3
    same(copied, np.arange(12).reshape(3, 4))
    same(cast, np.arange(12).reshape(3, 4), dtype=np.float64)
    assert host[2, 3] == 11


# -- legacy index shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "index, shape",
    [((1, 1), (1,)), (1, (4,)), (slice(1, 2), (1, 4)), ((1, slice(None)), (4,)), ((-1, -1), (1,))],
    ids=["element", "row", "one-row-slice", "row-and-all", "negative-element"],
)
def test_index_result_shapes(index, shape):
    a = grid()
    assert a[index].shape == shape


def test_element_index_value():
    a = grid()
    same(a[1, 2], [6])
    same(a[-1, -1], [11])
    assert a[2, 3].asscalar() == 11


# -- comparisons -----------------------------------------------------------------------------------


def test_comparisons_give_zero_one_arrays_of_the_operand_dtype():
    x, y = nd.array([1, 2, 3]), nd.array([3, 2, 1])
    for result, expected in [
        (x == y, [0, 1, 0]), (x != y, [1, 0, 1]), (x > y, [0, 0, 1]),
        (x >= y, [0, 1, 1]), (x < y, [1, 0, 0]), (x <= y, [1, 1, 0]),
        (x >= 2, [0, 1, 1]), (x == 3, [0, 0, 1]), (2 < x, [0, 0, 1]),
    ]:  # fmt: skip
        same(result, expected)
    integers = nd.array([1, 2, 3], dtype="int32")
    same(integers < 2, [1, 0, 0], dtype=np.int32)


def test_comparisons_between_arrays_broadcast():
    column, row = nd.array([[1], [2]]), nd.array([[0, 1, 2]])
    same(column > row, [[1, 0, 0], [1, 1, 0]])


# -- broadcasting and reflected operators ----------------------------------------------------------


def test_arithmetic_between_arrays_broadcasts():
    column, row = nd.array([[1], [2]]), nd.array([[0, 1, 2]])
    same(column + row, [[1, 2, 3], [2, 3, 4]])
    same(column * row, [[0, 1, 2], [0, 2, 4]])
    same(grid(2, 3) - nd.array([1, 1, 1]), [[-1, 0, 1], [2, 3, 4]])
    same(nd.array([[2], [4]]) / nd.array([1, 2]), [[2, 1], [4, 2]])


def test_incompatible_shapes_raise_naming_the_shapes():
    with pytest.raises(MXNetError, match=r"broadcast_add.*\(2, ?3\).*\(4,\)"):
        grid(2, 3) + nd.array([1, 2, 3, 4])


@pytest.mark.parametrize(
    "compute, expected",
    [
        (lambda x: 2 - x, [1.0, 0.0, -2.0]),
        (lambda x: 2 / x, [2.0, 1.0, 0.5]),
        (lambda x: 2**x, [2.0, 4.0, 16.0]),
        (lambda x: 7 % x, [0.0, 1.0, 3.0]),
        (lambda x: 2 + x, [3.0, 4.0, 6.0]),
        (lambda x: 2 * x, [2.0, 4.0, 8.0]),
        (lambda x: -x, [-1.0, -2.0, -4.0]),
        (lambda x: x**2, [1.0, 4.0, 16.0]),
    ],
    ids=["rsub", "rdiv", "rpow", "rmod", "radd", "rmul", "neg", "pow"],
)
def test_scalar_operators_keep_float32(compute, expected):
    x = nd.array([1, 2, 4])
    same(compute(x), expected)
    same(x, [1, 2, 4])  # the operand is unchanged


# -- in-place operators ----------------------------------------------------------------------------


def test_in_place_operators_mutate_the_same_array():
    x = nd.array([1, 2, 3])
    alias, identity = x, id(x)
    x += 1
    x *= 4
    x -= 2
    x /= 2
    assert id(x) == identity and alias is x
    same(alias, [3, 5, 7])
    x += nd.array([1, 1, 1])
    same(alias, [4, 6, 8])


def test_in_place_with_a_broadcast_operand():
    x = nd.zeros((2, 3))
    x += nd.array([1, 2, 3])
    same(x, [[1, 2, 3], [1, 2, 3]])


# -- contexts --------------------------------------------------------------------------------------


def test_with_a_context_sets_the_default_for_new_arrays():
    assert mx.current_context() == mx.cpu(0)
    with mx.cpu(1):
        assert mx.current_context() == mx.cpu(1)
        a, b = nd.zeros(2), nd.array([1, 2])
        with mx.cpu(2):
            assert nd.ones(1).context == mx.cpu(2)
        assert nd.ones(1).context == mx.cpu(1)
    assert (a.context, b.context) == (mx.cpu(1), mx.cpu(1))
    assert nd.zeros(2).context == mx.cpu(0)


def test_results_stay_on_their_operands_context():
    a = nd.ones(2, ctx=mx.cpu(3))
    assert (a + 1).context == mx.cpu(3)
    assert a.as_in_context(mx.cpu(3)) is a
    moved = a.as_in_context(mx.cpu(0))
    assert moved.context == mx.cpu(0)
    same(moved, [1, 1])


# -- repr ------------------------------------------------------------------------------------------


def test_repr_is_the_values_then_shape_and_context():
    assert repr(nd.zeros((2, 3))) == "\n[[0. 0. 0.]\n [0. 0. 0.]]\n<NDArray 2x3 @cpu(0)>"
    assert repr(nd.array([1, 2, 3])) == "\n[1. 2. 3.]\n<NDArray 3 @cpu(0)>"
    assert repr(nd.ones((1, 1, 2), ctx=mx.cpu(1))).endswith("<NDArray 1x1x2 @cpu(1)>")
    assert str(nd.ones(2)) == repr(nd.ones(2))


# -- save / load -----------------------------------------------------------------------------------


def test_save_and_load_a_list_keeps_order_values_and_dtypes(tmp_path):
    path = str(tmp_path / "arrays.nd")
    arrays = [nd.array([[1.5, 2]]), nd.array([3, 4, 5], dtype="int32"), nd.zeros((2, 1, 2))]
    nd.save(path, arrays)
    loaded = nd.load(path)
    assert isinstance(loaded, list) and len(loaded) == 3
    for original, back in zip(arrays, loaded):
        assert back.shape == original.shape and back.dtype is original.dtype
        np.testing.assert_array_equal(back.asnumpy(), original.asnumpy())


def test_save_and_load_a_dict_keeps_the_names(tmp_path):
    path = str(tmp_path / "params.nd")
    nd.save(path, {"arg:w": nd.array([[1, 2], [3, 4]]), "aux:mean": nd.array([0.5])})
    loaded = nd.load(path)
    assert isinstance(loaded, dict) and sorted(loaded) == ["arg:w", "aux:mean"]
    same(loaded["arg:w"], [[1, 2], [3, 4]])
    same(loaded["aux:mean"], [0.5])


def test_a_single_saved_array_loads_as_a_one_element_list(tmp_path):
    path = str(tmp_path / "one.nd")
    nd.save(path, nd.array([7, 8]))
    loaded = nd.load(path)
    assert isinstance(loaded, list) and len(loaded) == 1
    same(loaded[0], [7, 8])


def test_saving_something_else_raises_mxnets_type_error(tmp_path):
    with pytest.raises(TypeError, match="save only accept dict str->NDArray or list of NDArray"):
        nd.save(str(tmp_path / "bad.nd"), [np.ones(2)])


# -- synchronisation -------------------------------------------------------------------------------


def test_waitall_and_wait_to_read_return_none_and_values_are_ready():
    a = nd.ones((2, 2)) * 3
    assert a.wait_to_read() is None
    assert nd.waitall() is None
    same(a, np.full((2, 2), 3))

"""`mx.test_utils`: MXNet 1.9.1's helpers for testing operators and models, with its signatures.

Comparisons (`assert_almost_equal`, ...) use MXNet's per-dtype tolerances (`default_rtols`); the
symbol checks (`check_symbolic_forward/backward`, `check_numeric_gradient`, `check_consistency`)
bind executors. Data helpers read local files only: Ember has no network access, so `download`,
`get_mnist`, `get_cifar10`, ... use files already on disk and name the ones they expect otherwise.
Sparse storage and Gluon helpers raise MXNetError saying so.
"""

from __future__ import annotations

import bz2
import contextlib
import math
import numbers
import os
import platform
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import numpy.testing as npt

from ember.runtime.errors import MXNetError

from . import random
from .context import Context, current_context, num_gpus
from .io.base import DataIter
from .io.idx import read_idx
from .ndarray import NDArray, arange, array
from .symbol import Symbol

_default_ctx: Context | None = None


# -- defaults and tolerances --------------------------------------------------------------------


def default_context() -> Context:
    """The context tests run on: the one `set_default_context` chose, else the current context."""
    return _default_ctx or current_context()


def set_default_context(ctx: Context) -> None:
    """Make `ctx` the context `default_context()` returns."""
    global _default_ctx
    _default_ctx = ctx


def default_dtype():
    """The dtype tests use by default: numpy.float32."""
    return np.float32


def default_rtols() -> dict:
    """MXNet's default relative tolerance for comparing data of each dtype."""
    return {
        np.dtype(np.float16): 1e-2,
        np.dtype(np.float32): 1e-4,
        np.dtype(np.float64): 1e-5,
        **{np.dtype(t): 0 for t in (bool, np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64)},
    }


def default_atols() -> dict:
    """MXNet's default absolute tolerance for comparing data of each dtype."""
    return {
        np.dtype(np.float16): 1e-1,
        np.dtype(np.float32): 1e-3,
        np.dtype(np.float64): 1e-20,
        **{np.dtype(t): 0 for t in (bool, np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64)},
    }


def default_numeric_eps() -> dict:
    """The finite-difference step of each floating dtype (powers of two, exact as input deltas)."""
    return {
        np.dtype(np.float16): 1.0 / 2**6,
        np.dtype(np.float32): 1.0 / 2**9,
        np.dtype(np.float64): 1.0 / 2**14,
    }


def effective_dtype(dat) -> np.dtype:
    """The dtype whose tolerances apply to `dat` (its own: Ember's GPU kernels do not use TF32)."""
    return np.dtype(dat.dtype)


def get_tolerance(dat, tol, default_tol):
    """`tol` if it is a number, else its entry (a dtype -> tolerance dict) or `default_tol`'s for dat."""
    if isinstance(tol, numbers.Number):
        return tol
    dtype = effective_dtype(dat)
    tol = {} if tol is None else tol
    if dtype not in tol and dtype not in default_tol:
        raise MXNetError(f"no default tolerance for dtype {dtype.name}; pass rtol and atol explicitly")
    return tol.get(dtype, default_tol.get(dtype))


def get_tols(x, y, rtol, atol):
    """(rtol, atol) for comparing x with y: given numbers as they are, else the larger default of the two."""
    x, y = (np.asarray(v) if not hasattr(v, "dtype") else v for v in (x, y))
    rtol = max(get_tolerance(x, rtol, default_rtols()), get_tolerance(y, rtol, default_rtols()))
    atol = max(get_tolerance(x, atol, default_atols()), get_tolerance(y, atol, default_atols()))
    return rtol, atol


def get_atol(atol=None, dtype=np.dtype(np.float64)):
    """`atol`, or the default absolute tolerance of `dtype`."""
    return default_atols()[np.dtype(dtype)] if atol is None else atol


def get_rtol(rtol=None, dtype=np.dtype(np.float64)):
    """`rtol`, or the default relative tolerance of `dtype`."""
    return default_rtols()[np.dtype(dtype)] if rtol is None else rtol


def get_etol(etol=None):
    """`etol` (the fraction of elements allowed to mismatch), 0 by default."""
    return 0 if etol is None else etol


# -- random data --------------------------------------------------------------------------------


def random_arrays(*shapes):
    """Standard-normal float32 NumPy arrays of the given shapes (one array if one shape)."""
    arrays = [
        np.array(np.random.randn(), dtype=default_dtype())
        if len(s) == 0
        else np.random.randn(*s).astype(default_dtype())
        for s in shapes
    ]
    return arrays[0] if len(arrays) == 1 else arrays


def random_uniform_arrays(*shapes, **kwargs):
    """Uniform NumPy arrays of the given shapes; keywords low=0.0, high=1.0, dtype=float32."""
    low, high = kwargs.pop("low", 0.0), kwargs.pop("high", 1.0)
    dtype = kwargs.pop("dtype", default_dtype())
    if kwargs:
        raise TypeError(f"Got unexpected argument/s : {list(kwargs)}")
    return [np.random.uniform(low, high, size=s).astype(dtype) for s in shapes]


def random_sample(population, k):
    """`k` elements of `population` in random order, without repetition."""
    if not 0 <= k <= len(population):
        raise MXNetError(f"random_sample: k={k} must be between 0 and len(population)={len(population)}")
    population_copy = list(population)
    np.random.shuffle(population_copy)
    return population_copy[0:k]


def rand_ndarray(
    shape,
    stype="default",
    density=None,
    dtype=None,
    modifier_func=None,
    shuffle_csr_indices=False,
    distribution=None,
    ctx=None,
):
    """A standard-normal NDArray of `shape` (dense storage only)."""
    if stype != "default":
        _no_sparse("rand_ndarray", stype)
    return array(random_arrays(shape), dtype=dtype, ctx=ctx or default_context())


def rand_shape_2d(dim0=10, dim1=10, allow_zero_size=False):
    """A random 2-D shape with dims in [1, dimN] ([0, dimN] with allow_zero_size)."""
    low = 0 if allow_zero_size else 1
    return np.random.randint(low, dim0 + 1), np.random.randint(low, dim1 + 1)


def rand_shape_3d(dim0=10, dim1=10, dim2=10, allow_zero_size=False):
    """A random 3-D shape with dims in [1, dimN] ([0, dimN] with allow_zero_size)."""
    low = 0 if allow_zero_size else 1
    return (
        np.random.randint(low, dim0 + 1),
        np.random.randint(low, dim1 + 1),
        np.random.randint(low, dim2 + 1),
    )


def rand_shape_nd(num_dim, dim=10, allow_zero_size=False):
    """A random `num_dim`-D shape with dims in [1, dim] ([0, dim] with allow_zero_size)."""
    low = 0 if allow_zero_size else 1
    return tuple(np.random.randint(low, dim + 1, size=num_dim))


def rand_coord_2d(x_low, x_high, y_low, y_high):
    """A random int64 point with x in [x_low, x_high) and y in [y_low, y_high)."""
    return np.random.randint(x_low, x_high, dtype=np.int64), np.random.randint(y_low, y_high, dtype=np.int64)


def assign_each(the_input, function):
    """`function` applied to each element of `the_input` (float64 result; a copy when function is None)."""
    if function is None:
        return np.array(the_input)
    return (
        np.vectorize(function, otypes=[np.float64])(the_input)
        if np.size(the_input)
        else np.zeros(np.shape(the_input))
    )


def assign_each2(input1, input2, function):
    """`function` applied to each pair of elements of two same-shaped arrays (float64 result)."""
    if function is None:
        return np.array(input1)
    if np.shape(input1) != np.shape(input2):
        raise MXNetError(f"assign_each2: shapes {np.shape(input1)} and {np.shape(input2)} differ")
    return (
        np.vectorize(function, otypes=[np.float64])(input1, input2)
        if np.size(input1)
        else np.zeros(np.shape(input1))
    )


def create_2d_tensor(rows, columns, dtype=np.int64):
    """A (rows, columns) NDArray whose row i holds i (a large-tensor test helper)."""
    column = arange(0, rows, dtype=dtype).reshape(rows, 1)
    return column.broadcast_to((rows, columns))


def create_vector(size, dtype=np.int64):
    """The NDArray [0, 1, ..., size-1] (a large-vector test helper)."""
    return arange(0, size, dtype=dtype)


def get_identity_mat(size):
    """The (size, size) float32 identity as an NDArray."""
    return array(np.eye(size, dtype=np.float32))


def get_identity_mat_batch(size):
    """Two stacked (size, size) identities as a (2, size, size) NDArray."""
    return array(np.stack([np.eye(size, dtype=np.float32)] * 2))


def np_reduce(dat, axis, keepdims, numpy_reduce_func):
    """`numpy_reduce_func` over `axis` (an int, a sequence, or None for all), one axis at a time."""
    axes = [axis] if isinstance(axis, int) else (list(axis) if axis is not None else list(range(dat.ndim)))
    axes = [a % dat.ndim for a in axes] if dat.ndim else axes
    ret = dat
    for i in sorted(axes, reverse=True):
        ret = numpy_reduce_func(ret, axis=i)
    if keepdims:
        ret = np.reshape(ret, tuple(1 if i in axes else d for i, d in enumerate(dat.shape)))
    return ret


def collapse_sum_like(a, shape):
    """`a` summed over the axes a broadcast from `shape` would have added or stretched."""
    shape = tuple(shape)
    if len(a.shape) < len(shape):
        raise MXNetError(f"collapse_sum_like: {a.shape} has fewer axes than {shape}")
    if np.prod(shape) == 0 or a.size == 0:
        return np.zeros(shape, dtype=a.dtype)
    lead = len(a.shape) - len(shape)
    stretched = [lead + i for i, s in enumerate(shape) if s != a.shape[lead + i]]
    if any(shape[i - lead] != 1 for i in stretched):
        raise MXNetError(f"collapse_sum_like: {shape} does not broadcast to {a.shape}")
    return np.sum(a, axis=tuple(range(lead)) + tuple(stretched)).reshape(shape)


def _matrix_with_eigenvalues(eigenvalues: np.ndarray, basis: np.ndarray) -> np.ndarray:
    return basis @ np.diag(eigenvalues) @ np.linalg.inv(basis)


def new_matrix_with_real_eigvals_2d(n):
    """A random (n, n) matrix with real eigenvalues in [-10, 10) and a well-conditioned eigenbasis."""
    while True:
        basis = np.random.uniform(-1.0, 1.0, (n, n)) + 2 * np.eye(n)
        if np.linalg.cond(basis) < 3:
            return _matrix_with_eigenvalues(np.random.uniform(-10.0, 10.0, n), basis)


def new_matrix_with_real_eigvals_nd(shape):
    """A batch of `new_matrix_with_real_eigvals_2d(shape[-1])` of the given shape."""
    count = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return np.array([new_matrix_with_real_eigvals_2d(shape[-1]) for _ in range(count)]).reshape(shape)


def new_orthonormal_matrix_2d(n):
    """A random (n, n) orthonormal matrix."""
    return np.linalg.qr(np.random.randn(n, n))[0]


def new_sym_matrix_with_real_eigvals_2d(n):
    """A random symmetric (n, n) matrix with eigenvalues in [-10, 10)."""
    q = new_orthonormal_matrix_2d(n)
    return q.T @ np.diag(np.random.uniform(-10.0, 10.0, n)) @ q


def new_sym_matrix_with_real_eigvals_nd(shape):
    """A batch of `new_sym_matrix_with_real_eigvals_2d(shape[-1])` of the given shape."""
    count = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return np.array([new_sym_matrix_with_real_eigvals_2d(shape[-1]) for _ in range(count)]).reshape(shape)


# -- comparisons --------------------------------------------------------------------------------


def _numpy(value) -> np.ndarray:
    return value.asnumpy() if isinstance(value, NDArray) else np.asarray(value)


def same(a, b) -> bool:
    """Whether two arrays have the same shape and elements."""
    return np.array_equal(_numpy(a), _numpy(b))


def checkShapes(a, b):
    """AssertionError unless `a` and `b` have the same shape."""
    if np.shape(a) != np.shape(b):
        raise AssertionError(
            npt.build_err_msg(
                [a, b], err_msg=f"a.shape = {np.shape(a)} and b.shape = {np.shape(b)} are not equal"
            )
        )


def almost_equal(a, b, rtol=None, atol=None, equal_nan=False, use_broadcast=True):
    """Whether |a - b| <= atol + rtol*|b| everywhere (rtol 1e-5 and atol 1e-20 when not given)."""
    if not use_broadcast:
        checkShapes(a, b)
    return bool(
        np.allclose(_numpy(a), _numpy(b), rtol=get_rtol(rtol), atol=get_atol(atol), equal_nan=equal_nan)
    )


def find_max_violation(a, b, rtol=None, atol=None):
    """(index, ratio) of the element where |a - b| most exceeds atol + rtol*|b| (MXNet <= 1.7's name)."""
    return _find_max_violation(_numpy(a), _numpy(b), get_rtol(rtol), get_atol(atol))


def _find_max_violation(a, b, rtol, atol):
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    absdiff = np.where(np.equal(a, b), 0, np.abs(a - b))  # equal infinities are no violation
    violation = absdiff / (atol + rtol * np.abs(b) + 1e-20)
    loc = np.unravel_index(
        int(np.nanargmax(violation)) if not np.isnan(violation).all() else 0, violation.shape
    )
    return tuple(int(i) for i in loc), float(violation[loc])


def locationError(a, b, index, names, maxError=False):
    """'Location of [maximum ]error: <index>, <name a>=<a[index]>, <name b>=<b[index]>'."""
    maximum = "maximum " if maxError else ""
    return f"Location of {maximum}error: {index}, {names[0]}={a[index]:.8f}, {names[1]}={b[index]:.8f}"


def _mismatch_report(a, b, rtol, atol, names, equal_nan, mismatches) -> str:
    """MXNet's failure message: the worst violation, the share of mismatches and the worst ones listed."""
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    index, rel = _find_max_violation(a, b, rtol, atol)
    if index == ():
        return f"Error {rel:f} exceeds tolerance rtol={rtol:e}, atol={atol:e}.\n"
    lines = [f"*** Maximum errors for vector of size {a.size}:  rtol={rtol}, atol={atol}"]
    a_left, b_left, count, worst = a.copy(), b.copy(), 1, (index, rel)
    while count <= a.size:
        if count <= mismatches[0]:
            lines.append(f"{count:3d}: Error {rel:f}  {locationError(a, b, index, names)}")
        a_left[index] = b_left[index] = 0
        if np.allclose(a_left, b_left, rtol=rtol, atol=atol, equal_nan=equal_nan):
            break
        count += 1
        if not (count <= mismatches[1] or mismatches[1] <= 0):
            break
        index, rel = _find_max_violation(a_left, b_left, rtol, atol)
    degree = "at least " if mismatches[1] > 0 and count > mismatches[1] else ""
    head = (
        f"Error {worst[1]:f} exceeds tolerance rtol={rtol:e}, atol={atol:e} (mismatch {degree}"
        f"{100 * count / a.size:f}%).\n{locationError(a, b, worst[0], names, maxError=True)}"
    )
    return head + "\n" + "\n".join(lines)


def _raise_mismatch(a, b, rtol, atol, names, equal_nan, mismatches):
    message = _mismatch_report(a, b, rtol, atol, names, equal_nan, mismatches)
    with np.printoptions(threshold=4, suppress=True):
        raise AssertionError(npt.build_err_msg([a, b], err_msg=message, names=tuple(names)))


def assert_almost_equal(
    a, b, rtol=None, atol=None, names=("a", "b"), equal_nan=False, use_broadcast=True, mismatches=(10, 10)
):
    """AssertionError unless |a - b| <= atol + rtol*|b| everywhere.

    rtol/atol default per dtype (the larger of a's and b's, `default_rtols`); the message gives the
    worst violation, the share of mismatching elements and the worst `mismatches[0]` of them.
    """
    if not use_broadcast:
        checkShapes(a, b)
    rtol, atol = get_tols(a, b, rtol, atol)
    a, b = _numpy(a), _numpy(b)
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        npt.assert_equal(a, b)
        return
    if np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan):
        return
    _raise_mismatch(a, b, rtol, atol, names, equal_nan, mismatches)


def assert_allclose(a, b, rtol=1e-07, atol=0, equal_nan=True):
    """`assert_almost_equal` with NumPy's defaults (rtol 1e-7, atol 0, NaNs equal)."""
    assert_almost_equal(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def assert_almost_equal_with_err(
    a, b, rtol=None, atol=None, etol=None, names=("a", "b"), equal_nan=False, mismatches=(10, 10)
):
    """`assert_almost_equal` that tolerates a fraction `etol` of mismatching elements."""
    etol = get_etol(etol)
    if etol <= 0:
        assert_almost_equal(
            a, b, rtol=rtol, atol=atol, names=names, equal_nan=equal_nan, mismatches=mismatches
        )
        return
    rtol, atol = get_tols(a, b, rtol, atol)
    a, b = _numpy(a), _numpy(b)
    close = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if 1 - np.count_nonzero(close) / close.size > etol:
        _raise_mismatch(a, b, rtol, atol, names, equal_nan, mismatches)


def _without_nans(a, b):
    a, b = np.array(_numpy(a), copy=True), np.array(_numpy(b), copy=True)
    nan_mask = np.logical_or(np.isnan(a), np.isnan(b))
    a[nan_mask], b[nan_mask] = 0, 0
    return a, b


def almost_equal_ignore_nan(a, b, rtol=None, atol=None):
    """`almost_equal` counting positions where either is NaN as equal (MXNet <= 1.7's helper)."""
    return almost_equal(*_without_nans(a, b), rtol, atol)


def assert_almost_equal_ignore_nan(a, b, rtol=None, atol=None, names=("a", "b")):
    """`assert_almost_equal` counting positions where either array is NaN as equal."""
    assert_almost_equal(*_without_nans(a, b), rtol, atol, names)


def assert_exception(f, exception_type, *args, **kwargs):
    """AssertionError unless `f(*args, **kwargs)` raises `exception_type`."""
    try:
        f(*args, **kwargs)
    except exception_type:
        return
    raise AssertionError(f"{getattr(f, '__name__', f)} did not raise {exception_type.__name__}")


def retry(n):
    """Decorator: run a stochastic test up to `n` times, failing only if every run fails."""
    if n <= 0:
        raise MXNetError(f"retry: n must be positive, got {n}")

    def decorate(f):
        def wrapper(*args, **kwargs):
            for attempt in range(n):
                try:
                    return f(*args, **kwargs)
                except AssertionError:
                    if attempt == n - 1:
                        raise

        return wrapper

    return decorate


def same_array(array1, array2):
    """Whether two NDArrays share memory (writing into the first shows in the second)."""
    array1[:] += 1
    if not same(array1.asnumpy(), array2.asnumpy()):
        array1[:] -= 1
        return False
    array1[:] -= 1
    return same(array1.asnumpy(), array2.asnumpy())


def compare_ndarray_tuple(t1, t2, rtol=None, atol=None):
    """`assert_almost_equal` over two (nested) tuples of arrays; nothing when either is None."""
    if t1 is None or t2 is None:
        return
    if isinstance(t1, tuple):
        for s1, s2 in zip(t1, t2):
            compare_ndarray_tuple(s1, s2, rtol, atol)
    else:
        assert_almost_equal(t1, t2, rtol=rtol, atol=atol)


def same_symbol_structure(sym1, sym2):
    """Whether the two symbols' graphs have the same op at every node position."""
    import json

    nodes1, nodes2 = json.loads(sym1.tojson())["nodes"], json.loads(sym2.tojson())["nodes"]
    return all(n1["op"] == n2["op"] for n1, n2 in zip(nodes1, nodes2))


# -- symbol checks ------------------------------------------------------------------------------


def _check_dtype(what: str, dtype, allow_asnumpy: bool = True) -> None:
    if (allow_asnumpy and isinstance(dtype, str) and dtype == "asnumpy") or dtype in (
        np.float16,
        np.float32,
        np.float64,
    ):
        return
    raise MXNetError(f"{what}: dtype must be np.float16, np.float32 or np.float64, got {dtype!r}")


def _as_array(value, dtype) -> np.ndarray:
    """A location value as a NumPy copy: floating values in `dtype` unless it is "asnumpy"; integer
    values (indices, labels) keep their dtype, which Ember's ops need (MXNet casts them too)."""
    value = _numpy(value)
    if isinstance(dtype, str) or value.dtype.kind != "f":
        return np.array(value, copy=True)
    return np.array(value, dtype=dtype)


def _parse_location(sym, location, dtype=default_dtype()) -> "OrderedDict[str, np.ndarray]":
    """`location` (a list in argument order, or a dict naming every argument) as sorted NumPy arrays."""
    names = sym.list_arguments()
    if isinstance(location, Mapping):
        if set(location) != set(names):
            raise MXNetError(
                f"Symbol arguments and keys of the given location do not match. "
                f"symbol args:{sorted(names)}, location.keys():{sorted(location)}"
            )
        pairs = location.items()
    elif isinstance(location, (list, tuple)):
        if len(location) != len(names):
            raise MXNetError(f"location has {len(location)} arrays for the {len(names)} arguments {names}")
        pairs = zip(names, location)
    else:
        raise MXNetError(f"location must be a list or a dict of arrays, not {type(location).__name__}")
    return OrderedDict(sorted((n, _as_array(v, dtype)) for n, v in pairs))


def _parse_aux_states(sym, aux_states, dtype=default_dtype()):
    """`aux_states` (None, a list in order, or a dict naming every auxiliary state) as NumPy arrays."""
    if aux_states is None:
        return None
    names = sym.list_auxiliary_states()
    if isinstance(aux_states, Mapping):
        if set(aux_states) != set(names):
            raise MXNetError(
                f"Symbol aux_states names and given aux_states do not match. "
                f"symbol aux_names:{sorted(names)}, aux_states.keys:{sorted(aux_states)}"
            )
        pairs = aux_states.items()
    else:
        pairs = zip(names, aux_states)
    return {n: _as_array(v, dtype) for n, v in pairs}


def _bind(sym, location: dict, aux_states, grad_req, dtype, ctx, grads: dict | None = None):
    """An executor over NDArray copies of `location` (floating ones in `dtype`) and `aux_states`;
    `grads` (name -> initial gradient values) default to zeros for every argument."""
    from .symbol.binding import bind

    def float_in(v):
        v = _numpy(v)
        return np.array(v, dtype=dtype if v.dtype.kind == "f" and not isinstance(dtype, str) else v.dtype)

    args = {n: NDArray(float_in(v), ctx) for n, v in location.items()}
    if grads is None:
        grads = {n: np.zeros(a.shape) for n, a in args.items()}
    args_grad = {n: NDArray(np.array(g, dtype=args[n].dtype), ctx) for n, g in grads.items()}
    aux = None
    if aux_states is not None:
        aux_dict = (
            aux_states
            if isinstance(aux_states, Mapping)
            else dict(zip(sym.list_auxiliary_states(), aux_states))
        )
        aux = {n: NDArray(float_in(v), ctx) for n, v in aux_dict.items()}
    return bind(sym, ctx, args=args, args_grad=args_grad, grad_req=grad_req, aux_states=aux)


def _restore_aux(executor, aux_states) -> None:
    for name, value in (aux_states or {}).items():
        executor.aux_dict[name].host_buffer()[...] = value


def _seeded_forward(executor, is_train: bool, seed: int, aux_states=None) -> list[np.ndarray]:
    """A forward pass whose random draws (Dropout masks) and aux states repeat from call to call."""
    _restore_aux(executor, aux_states)
    random.seed(seed)
    return [o.asnumpy() for o in executor.forward(is_train=is_train)]


def _finite_differences(executor, names, eps: float, objective) -> dict[str, np.ndarray]:
    """(objective(x + eps/2) - objective(x - eps/2)) / eps for each element of each named argument."""
    result = {}
    for name in names:
        flat = executor.arg_dict[name].host_buffer().reshape(-1)
        grad = np.zeros(flat.size, np.float64)
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + eps / 2.0
            plus = objective()
            flat[k] = original - eps / 2.0
            minus = objective()
            flat[k] = original
            grad[k] = (plus - minus) / eps
        result[name] = grad.reshape(executor.arg_dict[name].shape)
    return result


def numeric_grad(
    executor, location, aux_states=None, eps=1e-4, use_forward_train=True, dtype=default_dtype()
):
    """Finite-difference gradients of the sum of the executor's first output, by argument name.

    `location` maps argument names to the values to evaluate at (written into the executor);
    integer-valued arguments get zero gradients.
    """
    _check_dtype("numeric_grad", dtype, allow_asnumpy=False)
    for name, value in location.items():
        executor.arg_dict[name][:] = np.asarray(value, dtype=executor.arg_dict[name].dtype)
    aux = {n: np.asarray(v) for n, v in aux_states.items()} if aux_states is not None else None
    floating = [n for n, v in location.items() if np.asarray(v).dtype.kind == "f"]
    seed = int(np.random.randint(2**31))

    def first_output_sum() -> float:
        return float(np.sum(_seeded_forward(executor, use_forward_train, seed, aux)[0], dtype=np.float64))

    grads = _finite_differences(executor, floating, eps, first_output_sum)
    return {n: grads.get(n, np.zeros(np.shape(v))).astype(dtype) for n, v in location.items()}


def _one_tier():
    """Executors made meanwhile stay on one engine: a tiered one would switch to compiled programs
    part way through the finite differences, and Dropout draws a different stream on each tier.
    An explicit EMBER_EXECUTOR ('compiled', 'reference') is kept."""
    from .engine_switches import EXECUTOR_ENV

    if os.environ.get(EXECUTOR_ENV, "tiered") in ("", "tiered"):
        return environment(EXECUTOR_ENV, "reference")
    return contextlib.nullcontext()


def _grad_requests(sym, location, grad_nodes) -> dict[str, str]:
    """grad_req by argument for `grad_nodes` (None: every floating argument; a list: 'write'; a dict)."""
    if grad_nodes is None:
        return {n: "write" for n in sym.list_arguments() if location[n].dtype.kind == "f"}
    if isinstance(grad_nodes, Mapping):
        return dict(grad_nodes)
    if isinstance(grad_nodes, (list, tuple)):
        return {n: "write" for n in grad_nodes}
    raise MXNetError(
        f"grad_nodes must be None, a list of names or a dict name -> grad_req, not {grad_nodes!r}"
    )


def check_numeric_gradient(
    sym,
    location,
    aux_states=None,
    numeric_eps=None,
    rtol=None,
    atol=None,
    grad_nodes=None,
    use_forward_train=True,
    ctx=None,
    grad_stype_dict=None,
    dtype=default_dtype(),
):
    """AssertionError unless backward matches finite differences of sum(outputs * random projections).

    The projections are uniform in [0.1, 1.1) (NumPy's global generator); `numeric_eps` and the
    tolerances default per dtype. `grad_nodes` (names, or a dict name -> grad_req) limits which
    arguments are checked; run in float64 for tight tolerances.
    """
    _check_dtype("check_numeric_gradient", dtype, allow_asnumpy=False)
    if grad_stype_dict and any(s not in (None, "default") for s in grad_stype_dict.values()):
        _no_sparse("check_numeric_gradient", grad_stype_dict)
    ctx = ctx or default_context()
    location = _parse_location(sym, location, dtype)
    aux = _parse_aux_states(sym, aux_states, dtype)
    requests = _grad_requests(sym, location, grad_nodes)
    initial = {n: np.random.normal(0, 0.01, size=location[n].shape) for n in requests}
    grad_req = {n: requests.get(n, "null") for n in sym.list_arguments()}
    with _one_tier():
        executor = _bind(sym, location, aux, grad_req, dtype, ctx, grads=initial)
    initial = {n: executor.grad_dict[n].asnumpy() for n in requests}  # as stored, in dtype
    seed = int(np.random.randint(2**31))
    outputs = _seeded_forward(executor, use_forward_train, seed, aux)  # the mode the differences use
    projections = [(np.random.rand(*o.shape) + 0.1).astype(o.dtype) for o in outputs]
    eps = get_tolerance(outputs[0], numeric_eps, default_numeric_eps())
    if dtype in (np.float16, np.float32) and eps < 1e-5:
        raise MXNetError(f"check_numeric_gradient: numeric_eps={eps} is too small for {np.dtype(dtype).name}")
    executor.backward([NDArray(p, ctx) for p in projections])
    symbolic = {n: executor.grad_dict[n].asnumpy() for n in requests}

    def projected() -> float:
        outs = _seeded_forward(executor, use_forward_train, seed, aux)
        return float(sum(np.sum(o.astype(np.float64) * p) for o, p in zip(outs, projections)))

    numeric = _finite_differences(
        executor, [n for n in requests if location[n].dtype.kind == "f"], eps, projected
    )
    for name, req in requests.items():
        _compare_gradient(name, req, numeric.get(name), symbolic[name], initial[name], rtol, atol, dtype)


def _compare_gradient(name, req, numeric, symbolic, initial, rtol, atol, dtype):
    """Compare one argument's gradient as its grad_req says: written, added to `initial`, or untouched."""
    names = (f"NUMERICAL_{name}", f"BACKWARD_{name}")
    numeric = None if numeric is None else numeric.astype(dtype)
    if req == "write":
        assert_almost_equal(numeric, symbolic, rtol, atol, names)
    elif req == "add":
        assert_almost_equal(numeric, symbolic - initial, rtol, atol, names)
    elif req == "null":
        assert_almost_equal(initial, symbolic, rtol, atol, names)
    else:
        raise MXNetError(f"Invalid grad_req {req} for argument {name}")


def check_symbolic_forward(
    sym,
    location,
    expected,
    rtol=None,
    atol=None,
    aux_states=None,
    ctx=None,
    equal_nan=False,
    dtype=default_dtype(),
):
    """AssertionError unless the forward outputs equal `expected` (a list, or a dict by output name).

    Returns the executor's outputs (NDArrays).
    """
    _check_dtype("check_symbolic_forward", dtype)
    ctx = ctx or default_context()
    location = _parse_location(sym, location, dtype)
    executor = _bind(sym, location, _parse_aux_states(sym, aux_states, dtype), "null", dtype, ctx)
    executor.forward(is_train=False)
    if isinstance(expected, Mapping):
        expected = [expected[n] for n in sym.list_outputs()]
    for name, exp, out in zip(sym.list_outputs(), expected, executor.outputs):
        assert_almost_equal(
            _numpy(exp), out, rtol, atol, (f"EXPECTED_{name}", f"FORWARD_{name}"), equal_nan=equal_nan
        )
    return executor.outputs


def _head_grads(out_grads, dtype, ctx):
    """out_grads (None, a list, or a dict by output name) as NDArrays."""

    def convert(v):
        if isinstance(v, NDArray) or v is None:
            return v
        v = np.asarray(v)
        return NDArray(np.array(v, dtype=v.dtype if isinstance(dtype, str) else dtype), ctx)

    if out_grads is None:
        return None
    if isinstance(out_grads, Mapping):
        return {k: convert(v) for k, v in out_grads.items()}
    return [convert(v) for v in out_grads]


def check_symbolic_backward(
    sym,
    location,
    out_grads,
    expected,
    rtol=None,
    atol=None,
    aux_states=None,
    grad_req="write",
    ctx=None,
    grad_stypes=None,
    equal_nan=False,
    dtype=default_dtype(),
):
    """AssertionError unless the gradients after forward(is_train=True) and backward(out_grads) equal
    `expected` (a list in argument order, or a dict by name). Returns the gradient NDArrays by name.

    Gradient arrays start from random values, so 'add' is checked as (result - start) and 'null' as
    untouched.
    """
    _check_dtype("check_symbolic_backward", dtype)
    if grad_stypes and any(s not in (None, "default") for s in grad_stypes.values()):
        _no_sparse("check_symbolic_backward", grad_stypes)
    ctx = ctx or default_context()
    location = _parse_location(sym, location, dtype)
    if isinstance(expected, (list, tuple)):
        expected = dict(zip(sym.list_arguments(), expected))
    expected = {k: _numpy(v) for k, v in expected.items()}
    initial = {k: np.random.normal(size=location[k].shape) for k, _ in sorted(expected.items())}
    names = sym.list_arguments()
    if isinstance(grad_req, str):
        grad_req = {k: grad_req for k in names}
    elif isinstance(grad_req, (list, tuple)):
        grad_req = dict(zip(names, grad_req))
    requests = {n: grad_req.get(n, "null") if n in expected else "null" for n in names}
    executor = _bind(
        sym, location, _parse_aux_states(sym, aux_states, dtype), requests, dtype, ctx, grads=initial
    )
    initial = {n: executor.grad_dict[n].asnumpy() for n in expected}
    executor.forward(is_train=True)
    executor.backward(_head_grads(out_grads, dtype, ctx))
    grads = {n: executor.grad_dict[n] for n in expected}
    for name, exp in expected.items():
        labels = (f"EXPECTED_{name}", f"BACKWARD_{name}")
        got, req = grads[name].asnumpy(), grad_req.get(name, "write")
        pairs = {"write": (exp, got), "add": (exp, got - initial[name]), "null": (initial[name], got)}
        if req not in pairs:
            raise MXNetError(f"Invalid grad_req {req} for argument {name}")
        assert_almost_equal(*pairs[req], rtol, atol, labels, equal_nan=equal_nan)
    return grads


def simple_forward(sym, ctx=None, is_train=False, **inputs):
    """The outputs (NumPy; one array if one output) of `sym` on the keyword NumPy inputs."""
    ctx = ctx or default_context()
    executor = sym.bind(ctx, args={k: array(v, ctx=ctx) for k, v in inputs.items()})
    executor.forward(is_train=is_train)
    outputs = [x.asnumpy() for x in executor.outputs]
    return outputs[0] if len(outputs) == 1 else outputs


def check_speed(sym, location=None, ctx=None, N=20, grad_req=None, typ="whole", **kwargs):
    """Seconds per forward+backward (typ 'whole') or per forward (typ 'forward'), averaged over N runs."""
    if typ not in ("whole", "forward"):
        raise ValueError('typ can only be "whole" or "forward".')
    ctx = ctx or default_context()
    grad_req = grad_req or "write"
    if location is None:
        exe = sym.simple_bind(grad_req=grad_req, ctx=ctx, **kwargs)
        location = {k: np.random.normal(size=arr.shape, scale=1.0) for k, arr in exe.arg_dict.items()}
    else:
        if not isinstance(location, dict):
            raise MXNetError(f'check_speed: expect dict, get "location"={location}')
        exe = sym.simple_bind(grad_req=grad_req, ctx=ctx, **{k: v.shape for k, v in location.items()})
    for name, value in location.items():
        exe.arg_dict[name][:] = np.asarray(value).astype(exe.arg_dict[name].dtype)

    def step():
        exe.forward(is_train=typ == "whole")
        if typ == "whole":
            exe.backward(out_grads=exe.outputs)

    step()  # warm up (and compile)
    tic = time.time()
    for _ in range(N):
        step()
    return (time.time() - tic) / N


def _smaller_dtype(dt1, dt2):
    """The less precise of two dtypes (dt1 when dt2 is None)."""
    return dt1 if dt2 is None or np.dtype(dt1).itemsize < np.dtype(dt2).itemsize else dt2


def _consistency_inputs(executor, arg_params, aux_params, scale, use_uniform, rand_type):
    """Fill in random arguments (sorted by name, for reproducibility) and zero aux states not given."""
    for name, arr in sorted(executor.arg_dict.items()):
        if name not in arg_params:
            draw = (
                np.random.uniform(-0.92 * scale, 0.92 * scale, size=arr.shape)
                if use_uniform
                else np.random.normal(size=arr.shape, scale=scale)
            )
            arg_params[name] = draw.astype(rand_type)
    for name in executor.aux_dict:
        aux_params.setdefault(name, 0)


def _compare_consistency(
    exe_list, gt, gt_idx, names_arrays, rtol, atol, equal_nan, raise_on_err, phase, dtypes
):
    for i, exe in enumerate(exe_list):
        if i == gt_idx:
            continue
        for name, arr in names_arrays(exe):
            if gt[name] is None:
                if arr is not None:
                    raise AssertionError(
                        f"{phase}: {name} has a gradient in context {i} but not in the ground truth"
                    )
                continue
            rt, at = rtol, atol
            small_arr, small_gt = (
                _smaller_dtype(arr.dtype, dtypes[i]),
                _smaller_dtype(gt[name].dtype, dtypes[gt_idx]),
            )
            if phase == "Train" and (small_arr != arr.dtype or small_gt != gt[name].dtype):
                rt, at = get_tols(arr.astype(small_arr), gt[name].astype(small_gt), rtol, atol)
            try:
                assert_almost_equal(arr, gt[name], rtol=rt, atol=at, equal_nan=equal_nan)
            except AssertionError as err:
                print(f"{phase} Err: ctx {i} vs ctx {gt_idx} at {name}")
                traceback.print_exc()
                if raise_on_err:
                    raise
                print(str(err))


def check_consistency(
    sym,
    ctx_list,
    scale=1.0,
    grad_req="write",
    arg_params=None,
    aux_params=None,
    rtol=None,
    atol=None,
    raise_on_err=True,
    ground_truth=None,
    equal_nan=False,
    use_uniform=False,
    rand_type=np.float64,
):
    """Check `sym` (or one symbol per entry) gives the same outputs and gradients in every context.

    `ctx_list` holds simple_bind arguments, e.g. `{'ctx': mx.cpu(0), 'data': (2, 3),
    'type_dict': {'data': np.float16}}`; the most precise output dtype is the ground truth unless
    `ground_truth` is given, and tolerances default per dtype. Returns the ground truth dict.
    """
    if len(ctx_list) <= 1:
        raise MXNetError("check_consistency needs at least two entries in ctx_list")
    syms = [sym] * len(ctx_list) if isinstance(sym, Symbol) else list(sym)
    if len(syms) != len(ctx_list):
        raise MXNetError(f"check_consistency: {len(syms)} symbols for {len(ctx_list)} contexts")
    output_names, arg_names = syms[0].list_outputs(), syms[0].list_arguments()
    if any(s.list_arguments() != arg_names or s.list_outputs() != output_names for s in syms):
        raise MXNetError("check_consistency: the symbols must have the same arguments and outputs")
    exe_list = [s.simple_bind(grad_req=grad_req, **c) for s, c in zip(syms, ctx_list)]
    arg_params = {} if arg_params is None else arg_params
    aux_params = {} if aux_params is None else aux_params
    _consistency_inputs(exe_list[0], arg_params, aux_params, scale, use_uniform, rand_type)
    for exe in exe_list:
        for name, arr in exe.arg_dict.items():
            arr[:] = np.asarray(arg_params[name]).astype(arr.dtype)
        for name, arr in exe.aux_dict.items():
            arr[:] = aux_params[name]
        if grad_req == "add":
            for arr in exe.grad_arrays:
                if arr is not None:
                    arr[:] = 0
    dtypes = [np.dtype(exe.outputs[0].dtype) for exe in exe_list]
    gt_idx = int(np.argmax([d.itemsize for d in dtypes]))

    def ground(include_grads: bool):
        if ground_truth is not None:
            return ground_truth
        truth = dict(exe_list[gt_idx].output_dict)
        return {**truth, **exe_list[gt_idx].grad_dict} if include_grads else truth

    for exe in exe_list:
        exe.forward(is_train=False)
    _compare_consistency(
        exe_list,
        ground(False),
        gt_idx,
        lambda e: zip(output_names, e.outputs),
        rtol,
        atol,
        equal_nan,
        raise_on_err,
        "Predict",
        dtypes,
    )
    if grad_req != "null":
        _consistency_train(exe_list)
        _compare_consistency(
            exe_list,
            ground(True),
            gt_idx,
            lambda e: zip(output_names + arg_names, list(e.outputs) + list(e.grad_arrays)),
            rtol,
            atol,
            equal_nan,
            raise_on_err,
            "Train",
            dtypes,
        )
    return ground(grad_req != "null")


def _consistency_train(exe_list) -> None:
    """Forward in training mode, then backward with the first executor's outputs, cast to the least
    precise output dtype, as head gradients for every executor."""
    for exe in exe_list:
        exe.forward(is_train=True)
    least = [out.dtype for out in exe_list[0].outputs]
    for exe in exe_list:
        least = [_smaller_dtype(out.dtype, dt) for out, dt in zip(exe.outputs, least)]
    golden = [out.asnumpy().astype(dt) for out, dt in zip(exe_list[0].outputs, least)]
    for exe in exe_list:
        exe.backward([NDArray(g.astype(out.dtype), exe.context) for g, out in zip(golden, exe.outputs)])


def compare_optimizer(
    opt1,
    opt2,
    shape,
    dtype,
    w_stype="default",
    g_stype="default",
    rtol=1e-4,
    atol=1e-5,
    compare_states=True,
    ntensors=1,
):
    """Assert two optimizers give the same states and weights after one update from the same start."""
    if w_stype != "default" or g_stype != "default":
        _no_sparse("compare_optimizer", w_stype if w_stype != "default" else g_stype)
    shapes = shape if isinstance(shape, list) else [shape]
    if not isinstance(shape, list) and ntensors != 1:
        raise MXNetError("compare_optimizer: ntensors must be 1 for a single shape")
    ctx = default_context()
    for index, s in enumerate(shapes):
        w2 = random.uniform(shape=s, ctx=ctx, dtype=dtype)
        g2 = random.uniform(shape=s, ctx=ctx, dtype=dtype)
        w1, g1 = w2.copy(), g2.copy()
        state1 = opt1.create_state_multi_precision(index, w1)
        state2 = opt2.create_state_multi_precision(index, w2)
        if compare_states:
            compare_ndarray_tuple(state1, state2)
        opt1.update_multi_precision(index, w1, g1, state1)
        opt2.update_multi_precision(index, w2, g2, state2)
        if compare_states:
            compare_ndarray_tuple(state1, state2, rtol=rtol, atol=atol)
        assert_almost_equal(w1, w2, rtol=rtol, atol=atol)


# -- data files (local only) --------------------------------------------------------------------


def _no_download(what: str, url: str, expected: list[str]):
    """MXNetError: Ember does not download; name the local files that would have been used."""
    files = ", ".join(os.path.abspath(f) for f in expected)
    return MXNetError(
        f"{what}: Ember has no network access by design and does not download {url}; "
        f"put the file(s) there yourself: {files}"
    )


def download(url, fname=None, dirname=None, overwrite=False, retries=5):
    """The local path MXNet would download `url` to, if that file exists (never downloads).

    MXNet skips the download when the file exists and `overwrite` is False; Ember only has that case.
    """
    if retries < 0:
        raise MXNetError("Number of retries should be at least 0")
    fname = fname if fname is not None else url.split("/")[-1]
    if dirname is not None:
        fname = os.path.join(dirname, fname)
    if overwrite or not os.path.exists(fname):
        raise _no_download("download", url, [fname])
    return fname


_DEFAULT_MODELS = (
    "imagenet1k-inception-bn",
    "imagenet1k-resnet-18",
    "imagenet1k-resnet-34",
    "imagenet1k-resnet-50",
    "imagenet1k-resnet-101",
    "imagenet1k-resnet-152",
    "imagenet1k-resnext-50",
    "imagenet1k-resnext-101",
    "imagenet1k-resnext-101-64x4d",
    "imagenet11k-resnet-152",
    "imagenet11k-place365ch-resnet-152",
    "imagenet11k-place365ch-resnet-50",
)


def download_model(model_name, dst_dir="./", meta_info=None):
    """(prefix, 0) of a model's `<prefix>-symbol.json` and `<prefix>-0000.params` already in `dst_dir`;
    (None, 0) for an unknown model name."""
    known = dict(meta_info) if meta_info is not None else {name: {} for name in _DEFAULT_MODELS}
    if model_name not in known:
        return (None, 0)
    prefix = os.path.join(dst_dir, model_name)
    expected = [prefix + "-symbol.json", prefix + "-0000.params"]
    if not all(os.path.exists(f) for f in expected):
        raise _no_download("download_model", f"the {model_name} model", expected)
    return (prefix, 0)


MNIST_FILES = {
    "train_data": "train-images-idx3-ubyte",
    "train_label": "train-labels-idx1-ubyte",
    "test_data": "t10k-images-idx3-ubyte",
    "test_label": "t10k-labels-idx1-ubyte",
}


def _find_local(folders, stem: str) -> str | None:
    """The first of folder/stem and folder/stem.gz that exists, over `folders`."""
    for folder in folders:
        for candidate in (os.path.join(folder, stem), os.path.join(folder, stem + ".gz")):
            if os.path.exists(candidate):
                return candidate
    return None


def get_mnist(path=None):
    """MNIST as MXNet's `get_mnist()` returns it, read from local IDX files (raw or .gz).

    MXNet downloads the four .gz files into the current folder; Ember reads them from there (or from
    `path`, an Ember addition), raw or gzipped. Images come back float32 (N, 1, 28, 28) divided by
    255, labels int8.
    """
    folders = [path] if path is not None else ["."]
    files = {key: _find_local(folders, stem) for key, stem in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, f in files.items() if f is None]
    if missing:
        where = os.path.abspath(folders[0])
        raise MXNetError(
            f"get_mnist: {', '.join(m + '[.gz]' for m in missing)} not found in {where} "
            "(Ember has no network access by design and does not download data)"
        )
    result = {}
    for key, file in files.items():
        if key.endswith("data"):
            images = read_idx(file, "get_mnist image file", 3)
            result[key] = (
                images.reshape(images.shape[0], 1, images.shape[1], images.shape[2]).astype(np.float32) / 255
            )
        else:
            result[key] = read_idx(file, "get_mnist label file", 1).astype(np.int8)
    return result


def get_mnist_ubyte():
    """Check that data/ holds the four MNIST IDX files MXNet would extract there (raw or .gz)."""
    missing = [stem for stem in MNIST_FILES.values() if _find_local(["data"], stem) is None]
    if missing:
        raise _no_download("get_mnist_ubyte", "mnist.zip", [os.path.join("data", m) for m in missing])


def get_mnist_pkl():
    """Check that data/mnist.pkl.gz exists (MXNet downloads it there)."""
    if not os.path.exists(os.path.join("data", "mnist.pkl.gz")):
        raise _no_download("get_mnist_pkl", "mnist.pkl.gz", [os.path.join("data", "mnist.pkl.gz")])


def get_cifar10():
    """Check that data/cifar/ holds train.rec, test.rec, train.lst and test.lst (MXNet extracts them)."""
    expected = [os.path.join("data", "cifar", f) for f in ("train.rec", "test.rec", "train.lst", "test.lst")]
    if not all(os.path.exists(f) for f in expected):
        raise _no_download("get_cifar10", "cifar10.zip", expected)


def get_mnist_iterator(batch_size, input_shape, num_parts=1, part_index=0):
    """(train, validation) MNISTIters over data/'s MNIST files (flat unless input_shape is 3-D)."""
    from .io import MNISTIter

    get_mnist_ubyte()
    flat = len(input_shape) != 3
    common = dict(
        input_shape=input_shape, batch_size=batch_size, flat=flat, num_parts=num_parts, part_index=part_index
    )
    train = MNISTIter(
        image=_find_local(["data"], MNIST_FILES["train_data"]),
        label=_find_local(["data"], MNIST_FILES["train_label"]),
        shuffle=True,
        **common,
    )
    val = MNISTIter(
        image=_find_local(["data"], MNIST_FILES["test_data"]),
        label=_find_local(["data"], MNIST_FILES["test_label"]),
        **common,
    )
    return (train, val)


def get_zip_data(data_dir, url, data_origin_name):
    """Nothing if data_dir/data_origin_name exists (MXNet then skips download and extraction)."""
    origin = os.path.join(data_dir, data_origin_name)
    if not os.path.exists(origin):
        raise _no_download("get_zip_data", url, [origin])


def get_bz2_data(data_dir, data_name, url, data_origin_name):
    """data_dir/data_name, decompressed from a local data_dir/data_origin_name if needed (then removed)."""
    target, origin = os.path.join(data_dir, data_name), os.path.join(data_dir, data_origin_name)
    if os.path.exists(target):
        return
    if not os.path.exists(origin):
        raise _no_download("get_bz2_data", url, [origin])
    with bz2.BZ2File(origin, "rb") as source, open(target, "wb") as sink:
        for line in source:
            sink.write(line)
    os.remove(origin)


def get_im2rec_path(home_env="MXNET_HOME"):
    """The path of tools/im2rec.py under $MXNET_HOME (Ember ships none: OSError unless you provide it)."""
    base = os.environ.get(home_env, os.path.dirname(os.path.abspath(__file__)))
    for candidate in (
        os.path.join(base, "tools", "im2rec.py"),
        os.path.join(base, "..", "..", "tools", "im2rec.py"),
    ):
        if os.path.isfile(candidate):
            return candidate
    raise OSError(f"Could not find path to tools/im2rec.py (looked under {base}; Ember does not ship im2rec)")


class DummyIter(DataIter):
    """An iterator that returns the first batch of `real_iter` forever (for speed tests)."""

    def __init__(self, real_iter):
        super().__init__(real_iter.batch_size)
        self.real_iter = real_iter
        self.provide_data = real_iter.provide_data
        self.provide_label = real_iter.provide_label
        self.the_batch = next(real_iter)

    def __iter__(self):
        return self

    def next(self):
        """The first batch of the real iterator, every time; never StopIteration."""
        return self.the_batch


# -- environment --------------------------------------------------------------------------------


@contextlib.contextmanager
def environment(*args):
    """Set environment variables for a `with` body and restore them afterwards, even on errors.

    Takes a name and a value, or a dict name -> value; a value of None unsets the variable.
    """
    if len(args) == 1 and isinstance(args[0], dict):
        env_vars = args[0]
    elif len(args) == 2:
        env_vars = {args[0]: args[1]}
    else:
        raise MXNetError("environment() expects one dict arg or two args: env var name and value")
    snapshot = {name: os.environ.get(name) for name in env_vars}
    _set_environ(env_vars)
    try:
        yield
    finally:
        _set_environ(snapshot)


def _set_environ(env_vars: dict) -> None:
    for name, value in env_vars.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def set_env_var(key, val, default_val=""):
    """Set environment variable `key` to `val`; return its previous value (`default_val` if unset).
    (MXNet <= 1.7's helper; `environment` replaced it.)"""
    previous = os.environ.get(key, default_val)
    os.environ[key] = val
    return previous


@contextlib.contextmanager
def discard_stderr():
    """Send everything written to standard error (file descriptor 2 included) to /dev/null meanwhile."""
    with open(os.devnull, "w") as bit_bucket:
        try:
            stderr_fileno = sys.stderr.fileno()
        except (AttributeError, ValueError, OSError):  # stderr is not a file (pytest's capture, ...)
            with contextlib.redirect_stderr(bit_bucket):
                yield
            return
        sys.stderr.flush()
        old_stderr = os.dup(stderr_fileno)
        try:
            os.dup2(bit_bucket.fileno(), stderr_fileno)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(old_stderr, stderr_fileno)
            os.close(old_stderr)


def is_cd_run():
    """Whether the CD_JOB environment variable is '1' (a continuous-delivery run)."""
    return os.environ.get("CD_JOB", 0) == "1"


def is_aarch64_run():
    """Whether this machine is an aarch64 one."""
    return platform.machine() == "aarch64"


def list_gpus():
    """range(number of GPUs): [0, ..., n-1], empty without a GPU."""
    return range(num_gpus())


def has_tvm_ops():
    """False: Ember has no TVM-generated operators."""
    return False


def is_op_runnable():
    """True: every Ember op runs on every context (no TVM ops need a compute capability)."""
    return True


# -- distribution checks ------------------------------------------------------------------------


def gen_buckets_probs_with_ppf(ppf, nbuckets):
    """`nbuckets` equal-probability buckets [(ppf(i/n), ppf((i+1)/n))] and their probabilities."""
    if nbuckets <= 0:
        raise MXNetError(f"gen_buckets_probs_with_ppf: nbuckets must be positive, got {nbuckets}")
    probs = [1.0 / nbuckets] * nbuckets
    return [(ppf(i / float(nbuckets)), ppf((i + 1) / float(nbuckets))) for i in range(nbuckets)], probs


def mean_check(generator, mu, sigma, nsamples=1000000):
    """Whether the mean of `generator(nsamples)` lies within mu +- 3 sigma/sqrt(nsamples)."""
    mean = np.array(generator(nsamples)).mean()
    return bool(mu - 3 * sigma / np.sqrt(nsamples) < mean < mu + 3 * sigma / np.sqrt(nsamples))


def var_check(generator, sigma, nsamples=1000000):
    """Whether the variance of `generator(nsamples)` lies within sigma^2 +- 3 sqrt(2 sigma^4/(n-1))."""
    var = np.array(generator(nsamples)).var(ddof=1)
    bound = 3 * np.sqrt(2 * sigma**4 / (nsamples - 1))
    return bool(sigma**2 - bound < var < sigma**2 + bound)


def _chi2_survival(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-square(dof): the regularized upper incomplete gamma Q(dof/2, x/2)."""
    a, x = dof / 2.0, statistic / 2.0
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # the series for P(a, x) converges fast here
        term = total = 1.0 / a
        n = a
        while abs(term) > 1e-15 * abs(total):
            n += 1
            term *= x / n
            total += term
        return max(0.0, 1.0 - total * math.exp(log_front))
    # the continued fraction for Q(a, x) (modified Lentz)
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return math.exp(log_front) * h


def chi_square_check(generator, buckets, probs, nsamples=1000000):
    """(p value, observed counts, expected counts) of a chi-square test of `generator`'s samples.

    `buckets` are (low, high) ranges for a continuous distribution or the values of a discrete one;
    `probs` their true probabilities. A p value above 0.05 usually means the generator fits.
    """
    if not isinstance(buckets, list) or len(probs) != len(buckets):
        raise MXNetError("chi_square_check: buckets must be a list with one probability in probs per bucket")
    samples = np.asarray(generator(nsamples))
    expected = (nsamples * np.array(probs, dtype=np.float32)).astype(np.int32)
    if isinstance(buckets[0], (list, tuple)):
        edges = np.array([edge for bucket in buckets for edge in bucket], dtype=np.float32)
        if np.any(np.diff(edges) < 0):
            raise MXNetError("chi_square_check: buckets must be ascending and must not overlap")
        ids = np.searchsorted(edges, samples, side="right") // 2
        observed = np.array([(ids == i).sum() for i in range(len(buckets))])
    else:
        observed = np.array([(samples == value).sum() for value in buckets])
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return _chi2_survival(statistic, len(buckets) - 1), observed, expected


def verify_generator(generator, buckets, probs, nsamples=1000000, nrepeat=5, success_rate=0.2, alpha=0.05):
    """Run `chi_square_check` `nrepeat` times; AssertionError unless a share >= success_rate of the
    p values exceed alpha. Returns the p values."""
    results = [chi_square_check(generator, buckets, probs, nsamples) for _ in range(nrepeat)]
    p_values = [r[0] for r in results]
    if (np.array(p_values) > alpha).sum() < nrepeat * success_rate:
        raise AssertionError(
            f"Generator test fails, Chi-square p={p_values}, obs_freq={[r[1] for r in results]}, "
            f"expected_freq={[r[2] for r in results]}.\nbuckets={buckets}, probs={probs}"
        )
    return p_values


# -- what Ember does not have -------------------------------------------------------------------


def _no_sparse(what: str, stype) -> None:
    raise MXNetError(f"{what}: storage type {stype!r} is not supported: Ember has dense NDArrays only")


def shuffle_csr_column_indices(csr):
    """Not supported: Ember has no CSR arrays."""
    _no_sparse("shuffle_csr_column_indices", "csr")


def rand_sparse_ndarray(
    shape,
    stype,
    density=None,
    dtype=None,
    distribution=None,
    data_init=None,
    rsp_indices=None,
    modifier_func=None,
    shuffle_csr_indices=False,
    ctx=None,
):
    """Not supported: Ember has no sparse arrays."""
    _no_sparse("rand_sparse_ndarray", stype)


def create_sparse_array(
    shape,
    stype,
    data_init=None,
    rsp_indices=None,
    dtype=None,
    modifier_func=None,
    density=0.5,
    shuffle_csr_indices=False,
):
    """Not supported: Ember has no sparse arrays."""
    _no_sparse("create_sparse_array", stype)


def create_sparse_array_zd(
    shape,
    stype,
    density,
    data_init=None,
    rsp_indices=None,
    dtype=None,
    modifier_func=None,
    shuffle_csr_indices=False,
):
    """Not supported: Ember has no sparse arrays."""
    _no_sparse("create_sparse_array_zd", stype)


def check_gluon_hybridize_consistency(
    net_builder, data_l, numpy_func=None, test_grad=True, rtol=1e-4, atol=1e-4
):
    """Not supported: Ember has no Gluon (mx.gluon) and no mx.np arrays."""
    raise MXNetError(
        "check_gluon_hybridize_consistency: Ember has no Gluon HybridBlocks; "
        "check symbols with check_consistency instead"
    )

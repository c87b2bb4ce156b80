"""`mx.test_utils`: MXNet's helpers for testing operators and models.

`check_numeric_gradient` compares an executor's backward pass with central finite differences of a
random projection of the outputs; `check_symbolic_forward`/`check_symbolic_backward` compare with
expected arrays; `get_mnist` reads MNIST from local IDX files (there is no download).
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from ember.runtime.errors import MXNetError

from . import random
from .context import Context, cpu
from .io.idx import read_idx
from .ndarray import NDArray

_default_ctx: Context | None = None


def default_context() -> Context:
    """The context tests run on (`cpu()` unless `set_default_context` changed it)."""
    return _default_ctx or cpu()


def set_default_context(ctx: Context) -> None:
    global _default_ctx
    _default_ctx = ctx


def default_dtype():
    return np.float32


def _numpy(value) -> np.ndarray:
    return value.asnumpy() if isinstance(value, NDArray) else np.asarray(value)


def assert_almost_equal(a, b, rtol=None, atol=None, names=("a", "b"), equal_nan=False, use_broadcast=True, mismatches=(10, 10)):
    """Assert |a - b| <= atol + rtol * |b| elementwise (MXNet's defaults: rtol 1e-5, atol 1e-20 for float64)."""
    a, b = _numpy(a), _numpy(b)
    rtol = 1e-5 if rtol is None else rtol
    atol = 1e-20 if atol is None else atol
    if not use_broadcast and a.shape != b.shape:
        raise AssertionError(f"shapes differ: {names[0]} {a.shape} vs {names[1]} {b.shape}")
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan, err_msg=f"{names[0]} vs {names[1]}")


def same(a, b) -> bool:
    """Whether two arrays are exactly equal."""
    return np.array_equal(_numpy(a), _numpy(b))


def _location_dict(sym, location) -> dict[str, np.ndarray]:
    names = sym.list_arguments()
    if isinstance(location, Mapping):
        missing = [n for n in names if n not in location]
        if missing:
            raise MXNetError(f"location lacks {', '.join(missing)}")
        return {k: _numpy(v) for k, v in location.items()}
    if len(location) != len(names):
        raise MXNetError(f"location has {len(location)} arrays for {len(names)} arguments")
    return {n: _numpy(v) for n, v in zip(names, location)}


def _bind(sym, location: dict, aux_states, grad_req, dtype, ctx):
    from .symbol.binding import bind

    args = {n: NDArray(np.array(v, dtype=dtype if v.dtype.kind == "f" else v.dtype), ctx) for n, v in location.items()}
    grads = {n: NDArray(np.zeros_like(a.host_buffer()), ctx) for n, a in args.items()}
    aux = None
    if aux_states is not None:
        aux_dict = aux_states if isinstance(aux_states, Mapping) else dict(zip(sym.list_auxiliary_states(), aux_states))
        aux = {n: NDArray(np.array(_numpy(v), dtype=dtype), ctx) for n, v in aux_dict.items()}
    return bind(sym, ctx, args=args, args_grad=grads, grad_req=grad_req, aux_states=aux)


def _seeded_forward(executor, is_train: bool, seed: int):
    """A forward pass whose random draws (Dropout masks) repeat from one call to the next."""
    random.seed(seed)
    return [o.asnumpy() for o in executor.forward(is_train=is_train)]


def check_numeric_gradient(sym, location, aux_states=None, numeric_eps=1e-3, rtol=1e-2, atol=None,
                           grad_nodes=None, use_forward_train=True, ctx=None, grad_stype_dict=None,
                           dtype=default_dtype()):
    """Assert that backward matches central differences of sum(outputs * random projections).

    `grad_nodes` (names) limits which arguments are checked; run in float64 for tight tolerances.
    """
    ctx = ctx or default_context()
    location = _location_dict(sym, location)
    nodes = list(grad_nodes) if grad_nodes is not None else [n for n, v in location.items() if v.dtype.kind == "f"]
    grad_req = {n: ("write" if n in nodes else "null") for n in sym.list_arguments()}
    executor = _bind(sym, location, aux_states, grad_req, dtype, ctx)
    seed = int(np.random.default_rng().integers(2**31))
    outputs = _seeded_forward(executor, use_forward_train, seed)
    rng = np.random.default_rng(seed)
    projections = [rng.standard_normal(o.shape).astype(dtype) for o in outputs]
    executor.backward([NDArray(p, ctx) for p in projections])
    symbolic = {n: executor.grad_dict[n].asnumpy() for n in nodes}

    def projected() -> float:
        return float(sum(np.sum(o.astype(np.float64) * p) for o, p in zip(_seeded_forward(executor, use_forward_train, seed), projections)))

    for name in nodes:
        array = executor.arg_dict[name].host_buffer()
        numeric = np.zeros(array.shape, np.float64)
        flat, out = array.reshape(-1), numeric.reshape(-1)
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + numeric_eps
            plus = projected()
            flat[k] = original - numeric_eps
            minus = projected()
            flat[k] = original
            out[k] = (plus - minus) / (2 * numeric_eps)
        assert_almost_equal(symbolic[name], numeric, rtol=rtol, atol=atol if atol is not None else 1e-8,
                            names=(f"BACKWARD_{name}", f"NUMERICAL_{name}"))


def check_symbolic_forward(sym, location, expected, rtol=1e-4, atol=None, aux_states=None, ctx=None,
                           equal_nan=False, dtype=default_dtype()):
    """Assert the forward outputs equal `expected` (a list, or a dict by output name)."""
    executor = _bind(sym, _location_dict(sym, location), aux_states, "null", dtype, ctx or default_context())
    outputs = [o.asnumpy() for o in executor.forward(is_train=False)]
    if isinstance(expected, Mapping):
        expected = [expected[n] for n in sym.list_outputs()]
    for name, out, exp in zip(sym.list_outputs(), outputs, expected):
        assert_almost_equal(out, _numpy(exp), rtol=rtol, atol=atol, names=(f"EXPECTED_{name}", f"FORWARD_{name}"),
                            equal_nan=equal_nan)
    return outputs


def check_symbolic_backward(sym, location, out_grads, expected, rtol=1e-5, atol=None, aux_states=None,
                            grad_req="write", ctx=None, grad_stypes=None, equal_nan=False, dtype=default_dtype()):
    """Assert the gradients after forward(is_train=True) and backward(out_grads) equal `expected`."""
    location = _location_dict(sym, location)
    if isinstance(expected, Sequence) and not isinstance(expected, Mapping):
        expected = dict(zip(sym.list_arguments(), expected))
    executor = _bind(sym, location, aux_states, grad_req, dtype, ctx or default_context())
    executor.forward(is_train=True)
    grads = None if out_grads is None else [NDArray(np.asarray(_numpy(g), dtype), executor.context) for g in out_grads]
    executor.backward(grads)
    for name, exp in expected.items():
        if exp is None:
            continue
        assert_almost_equal(executor.grad_dict[name], _numpy(exp), rtol=rtol, atol=atol,
                            names=(f"EXPECTED_{name}", f"BACKWARD_{name}"), equal_nan=equal_nan)
    return {n: g.asnumpy() for n, g in executor.grad_dict.items() if g is not None}


def get_mnist(path: str | None = None) -> dict[str, np.ndarray]:
    """MNIST as MXNet's `get_mnist` returns it, read from local IDX files (raw or .gz).

    `path` (default $MXNET_HOME/mnist, else ./mnist) must hold train-images-idx3-ubyte,
    train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally
    gzipped. Images come back as float32 (N, 1, 28, 28) divided by 255, labels as int8, as MXNet's.
    """
    folder = path or os.path.join(os.environ.get("MXNET_HOME", "."), "mnist")
    files = {}
    for key, stem in (("train_data", "train-images-idx3-ubyte"), ("train_label", "train-labels-idx1-ubyte"),
                      ("test_data", "t10k-images-idx3-ubyte"), ("test_label", "t10k-labels-idx1-ubyte")):
        found = [os.path.join(folder, stem + ext) for ext in ("", ".gz") if os.path.exists(os.path.join(folder, stem + ext))]
        if not found:
            raise MXNetError(f"get_mnist: {stem}[.gz] not found in {folder} (Ember does not download data)")
        files[key] = found[0]
    images = {k: read_idx(files[k], "get_mnist image file", 3) for k in ("train_data", "test_data")}
    labels = {k: read_idx(files[k], "get_mnist label file", 1) for k in ("train_label", "test_label")}
    result = {k: v.reshape(v.shape[0], 1, v.shape[1], v.shape[2]).astype(np.float32) / 255 for k, v in images.items()}
    result.update({k: v.astype(np.int8) for k, v in labels.items()})
    return result


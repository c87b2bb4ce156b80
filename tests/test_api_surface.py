"""The public names of MXNet 1.9.1's mx.nd (dense), mx.base and mx.context exist in Ember with the same
signatures, or raise MXNetError saying why they are not supported (an unsupported function may take
(*args, **kwargs): every call raises).

The oracle is tests/data/mxnet_api/*.json, written by generate.py beside them from the mxnet 1.9.1
wheel. Each inventory test collects every gap and fails once, listing them all.
"""

from __future__ import annotations

import inspect
import json
import pathlib
import warnings

import numpy as np
import pytest

import ember
import ember.base as base
import ember.context as context
import ember.ndarray as nd
from ember.base import MXNetError

DATA = pathlib.Path(__file__).parent / "data" / "mxnet_api"
NDARRAY = json.loads((DATA / "ndarray.json").read_text())
BASE = json.loads((DATA / "base.json").read_text())
CONTEXT = json.loads((DATA / "context.json").read_text())
AUTOGRAD = json.loads((DATA / "autograd.json").read_text())
NOT_IMPLEMENTED = "of MXNet 1.9.1 is not implemented in Ember"

# Where Ember's signature differs from MXNet's on purpose (name -> why); each is checked to exist.
DEVIATIONS = {
    "NDArray": "constructed from a NumPy array (data, ctx, writable), not a C handle: Ember has no C library",
    "NDArray.handle": "the ctypes handle of MXNet's C library: Ember has no C library",
}


def param_texts(obj, drop_self: bool = False) -> list[str]:
    """Parameters as generate.py writes them ('ctx=None', '*args'), annotations dropped, MXNet's
    module names read as Ember's."""
    texts, star_seen = [], False
    params = list(inspect.signature(obj).parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    for p in params:
        star_seen |= p.kind is p.VAR_POSITIONAL
        if p.kind is p.KEYWORD_ONLY and not star_seen:
            texts.append("*")
            star_seen = True
        texts.append(str(p.replace(annotation=inspect.Parameter.empty)))
    return texts


def expected_params(entry: dict) -> list[str]:
    """MXNet's parameters, with its "not given" sentinel `_Null` read as None (what Ember's Python
    functions use for the same) and its module names as Ember's."""
    return [text.replace("=_Null", "=None").replace("'mxnet.", "'ember.") for text in entry["params"]]


def raises_not_implemented(function) -> bool:
    """Whether calling `function` without arguments raises the MXNetError of an unsupported name."""
    try:
        function()
    except MXNetError as err:
        return NOT_IMPLEMENTED in str(err)
    except Exception:  # noqa: BLE001 - any other failure means the name is meant to work
        return False
    return False


def signature_gap(where: str, obj, entry: dict, drop_self: bool = False) -> str | None:
    """None when `obj` takes the parameters `entry` lists, else a line saying how it differs."""
    try:
        mine = param_texts(obj, drop_self)
    except (TypeError, ValueError):
        return f"{where}: no inspectable signature"
    wanted = expected_params(entry)
    return None if mine == wanted else f"{where}: ({', '.join(mine)}) != MXNet's ({', '.join(wanted)})"


def entry_gap(where: str, value, entry: dict) -> str | None:
    """Why `value` does not match the inventory `entry` (None when it does)."""
    if where in DEVIATIONS:
        return None
    kind = entry["kind"]
    if kind == "function":
        gap = signature_gap(where, value, entry)
        return None if gap is None or raises_not_implemented(value) else gap
    if kind in ("operator", "class"):
        return None if callable(value) else f"{where}: not callable"
    return None


def module_gaps(module, entries: dict, prefix: str) -> list[str]:
    gaps = []
    for name, entry in sorted(entries.items()):
        where = f"{prefix}{name}"
        if not hasattr(module, name):
            gaps.append(f"{where}: missing")
            continue
        gaps.append(entry_gap(where, getattr(module, name), entry))
    return [g for g in gaps if g]


def report(gaps: list[str]) -> str:
    return f"{len(gaps)} gap(s) against MXNet 1.9.1:\n" + "\n".join(gaps)


# -- the inventories -----------------------------------------------------------------------------------


def test_every_mx_nd_name_exists_with_mxnet_signature():
    gaps = module_gaps(nd, NDARRAY["functions"], "mx.nd.")
    assert not gaps, report(gaps)


@pytest.mark.parametrize("submodule", sorted(NDARRAY["submodules"]))
def test_every_mx_nd_submodule_name_exists(submodule):
    gaps = module_gaps(getattr(nd, submodule), NDARRAY["submodules"][submodule], f"mx.nd.{submodule}.")
    assert not gaps, report(gaps)


def test_every_ndarray_member_exists_with_mxnet_signature():
    instance = nd.ones((2, 3))
    gaps = []
    for name, entry in sorted(NDARRAY["NDArray"].items()):
        where = f"NDArray.{name}"
        if where in DEVIATIONS:
            continue
        raw = inspect.getattr_static(nd.NDArray, name, None)
        if entry["kind"] == "method":
            method = getattr(nd.NDArray, name, None)
            gap = f"{where}: missing" if raw is None else signature_gap(where, method, entry, True)
        elif entry["kind"] == "property":
            gap = None if isinstance(raw, property) else f"{where}: missing (a property in MXNet)"
        else:
            gap = None if hasattr(instance, name) else f"{where}: missing (an attribute in MXNet)"
        gaps.append(gap)
    gaps = [g for g in gaps if g]
    assert not gaps, report(gaps)


def test_every_mx_base_name_exists():
    gaps = []
    for name, entry in sorted(BASE["names"].items()):
        where = f"mx.base.{name}"
        value = getattr(base, name, None)
        if value is None:
            gaps.append(f"{where}: missing")
        elif entry["kind"] == "class":
            gaps.extend(f"{where}: not a subclass of {b}" for b in entry.get("bases", [])
                        if b not in [c.__name__ for c in value.__mro__])
        elif entry["kind"] == "alias":
            same = _type_name(value) == entry["of"]
            gaps.append(None if same else f"{where}: {value} is not {entry['of']}")
        elif entry["kind"] == "value" and "value" in entry:
            names = [_type_name(v) for v in value]
            gaps.append(None if names == entry["value"] else f"{where}: {names} != {entry['value']}")
        else:
            gaps.append(entry_gap(where, value, entry))
    gaps = [g for g in gaps if g]
    assert not gaps, report(gaps)


def _type_name(cls: type) -> str:
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"


def test_every_mx_context_name_exists():
    gaps = module_gaps(context, CONTEXT["names"], "mx.context.")
    for name, entry in sorted(CONTEXT["Context"].items()):
        where = f"Context.{name}"
        if entry["kind"] == "method":
            gaps.append(signature_gap(where, getattr(context.Context, name), entry, True))
        elif entry["kind"] == "value":
            value = {str(k): v for k, v in getattr(context.Context, name).items()}
            gaps.append(None if value == entry["value"] else f"{where}: {value} != {entry['value']}")
        elif not hasattr(context.cpu(), name):
            gaps.append(f"{where}: missing")
    gaps = [g for g in gaps if g]
    assert not gaps, report(gaps)


def test_every_mx_autograd_name_exists_with_mxnet_signature():
    from ember import autograd

    gaps = module_gaps(autograd, AUTOGRAD["names"], "mx.autograd.")
    for name, entry in sorted(AUTOGRAD["Function"].items()):
        gaps.append(signature_gap(f"Function.{name}", getattr(autograd.Function, name), entry, True))
    gaps = [g for g in gaps if g]
    assert not gaps, report(gaps)


def test_every_missing_operator_raises_saying_why():
    """Each MXNet op Ember's registry lacks either forwards (sampling ops, aliases) or raises."""
    from ember.compiler.ops import ALIASES, SCHEMAS
    from ember.ndarray import unsupported

    forwarded = set(unsupported.RANDOM_OPS) | set(unsupported.ALIASES_OF_REGISTERED)
    silent = []
    for name, entry in NDARRAY["functions"].items():
        if entry["kind"] != "operator" or name in SCHEMAS or name in ALIASES or name in forwarded:
            continue
        try:
            getattr(nd, name)()
            silent.append(f"{name}: ran")
        except MXNetError as err:
            if f"operator {name} {NOT_IMPLEMENTED}: " not in str(err):
                silent.append(f"{name}: {err}")
    assert not silent, report(silent)


# -- values and messages -------------------------------------------------------------------------------

X = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], dtype=np.float32)


def test_fluent_methods_equal_the_ops():
    x = nd.array(X)
    np.testing.assert_allclose(x.sum(axis=1).asnumpy(), X.sum(axis=1))
    np.testing.assert_allclose(x.clip(-1, 2).asnumpy(), np.clip(X, -1, 2))
    np.testing.assert_allclose(x.slice(begin=(0, 1), end=(2, 3)).asnumpy(), X[:, 1:3])
    np.testing.assert_allclose(x.sign().asnumpy(), np.sign(X))
    np.testing.assert_allclose(x.nanprod().asnumpy(), [X.prod()])
    np.testing.assert_allclose(x.zeros_like().asnumpy(), np.zeros_like(X))
    e = np.exp(X - X.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(x.softmax().asnumpy(), e / e.sum(axis=-1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(x.broadcast_like(nd.zeros((3, 2, 3))).asnumpy(), np.broadcast_to(X, (3, 2, 3)))


def test_inplace_fluent_methods_are_views():
    x = nd.array(X)
    flat = x.expand_dims(1, inplace=True)
    assert flat.shape == (2, 1, 3)
    flat[:] = -1
    np.testing.assert_allclose(x.asnumpy(), -np.ones((2, 3)))
    assert nd.zeros((1, 3, 1)).squeeze(inplace=True).shape == (3,)
    assert nd.zeros((1, 1)).squeeze(inplace=True).shape == (1,)
    assert nd.zeros((2, 3, 4)).flatten(inplace=True).shape == (2, 12)
    with pytest.raises(MXNetError, match=r"squeeze: target axis 1 must be size 1, got 3"):
        nd.zeros((1, 3)).squeeze(axis=1, inplace=True)


def test_fluent_method_of_a_missing_op_raises_like_mx_nd():
    with pytest.raises(MXNetError, match=rf"^operator diag {NOT_IMPLEMENTED}: it is not yet in Ember's op"):
        nd.array(X).diag()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nd.RNN(), r"operator RNN .* recurrent and sequence operators come with the model breadth"),
        (lambda: nd.cast_storage(nd.ones((2, 2)), stype="csr"), r"operator cast_storage .* sparse storage"),
        (lambda: nd.Custom(op_type="x"), r"operator Custom .* Custom \(Python-defined\) operators"),
        (lambda: nd.linalg.det(nd.ones((2, 2))), r"operator linalg.det .* no kernels for factorizations"),
        (lambda: nd.sparse.csr_matrix(X), r"function sparse.csr_matrix .* sparse storage"),
        (lambda: nd.sparse.CSRNDArray(), r"class sparse.CSRNDArray .* sparse storage"),
        (lambda: nd.zeros((2,), stype="row_sparse"), r"zeros: storage type 'row_sparse' is not supported"),
        (lambda: nd.CachedOp(None), r"function CachedOp .* compile a Symbol"),
        (lambda: nd.numpy.zeros((2,)), r"ember.ndarray.numpy.zeros is not implemented in Ember: MXNet's"),
        (lambda: nd.contrib.box_nms(nd.ones((2, 6))), r"operator contrib.box_nms .* not in Ember's registry"),
        (lambda: nd.image.resize(nd.ones((2, 2, 3))), r"operator image.resize .* not in Ember's op registry"),
    ],
)
def test_unsupported_names_raise_a_clear_error(call, message):
    with pytest.raises(MXNetError, match=message):
        call()


def test_sparse_classes_exist_for_isinstance_checks():
    assert not isinstance(nd.ones((2,)), nd.sparse.CSRNDArray)
    assert issubclass(nd.sparse.RowSparseNDArray, nd.sparse.BaseSparseNDArray)


def test_alias_of_a_registered_op_forwards():
    np.testing.assert_allclose(nd.crop(nd.array(X), begin=(0, 1), end=(1, 3)).asnumpy(), X[:1, 1:3])


def test_creation_functions_match_numpy():
    np.testing.assert_allclose(nd.linspace(0, 1, 5, endpoint=False).asnumpy(), [0, 0.2, 0.4, 0.6, 0.8])
    assert nd.linspace(0, 10, 3, dtype="int32").asnumpy().tolist() == [0, 5, 10]
    np.testing.assert_array_equal(nd.eye(2, 3, 1).asnumpy(), np.eye(2, 3, 1))
    assert nd.eye(3, dtype="int32").dtype == np.int32
    assert nd.moveaxis(nd.zeros((2, 3, 4)), [0, 1], [-1, -2]).shape == (4, 3, 2)


def test_split_v2_sections_and_indices():
    x = nd.array(np.arange(12).reshape(3, 4))
    assert [p.shape for p in nd.split_v2(x, (1, 3), axis=1)] == [(3, 1), (3, 2), (3, 1)]
    parts = nd.split_v2(x, 3, axis=0, squeeze_axis=True)
    np.testing.assert_array_equal(parts[2].asnumpy(), [8, 9, 10, 11])
    assert nd.split_v2(x, 1).shape == (3, 4)
    assert [p.shape for p in x.split_v2((0,))] == [(0, 4), (3, 4)]
    with pytest.raises(ValueError, match="array split does not result in an equal division"):
        nd.split_v2(x, 2)


def test_histogram_onehot_and_logical_functions():
    counts, edges = nd.histogram(nd.array([0.5, 1.5, 2.5, 2.9, 4, 5]), bins=5, range=(0, 5))
    assert counts.asnumpy().tolist() == [1, 1, 2, 0, 2] and counts.dtype == np.int64
    np.testing.assert_array_equal(edges.asnumpy(), [0, 1, 2, 3, 4, 5])
    out = nd.zeros((3, 4))
    assert nd.onehot_encode(nd.array([1, 0, 3]), out) is out
    np.testing.assert_array_equal(out.asnumpy(), np.eye(4)[[1, 0, 3]])
    assert nd.logical_and(nd.array([0, 1, 2]), nd.array([1, 1, 0])).asnumpy().tolist() == [0, 1, 0]
    assert nd.logical_xor(nd.array([0, 1, 2]), 1).asnumpy().tolist() == [1, 0, 0]
    assert nd.logical_or(0, nd.array([0, 1])).asnumpy().tolist() == [0, 1]


def test_numpy_and_dlpack_exchange_share_memory():
    source = np.arange(6, dtype=np.float32).reshape(2, 3)
    shared = nd.from_numpy(source)
    shared[0, 0] = 7
    assert source[0, 0] == 7 and not source.flags.writeable
    with pytest.raises(ValueError, match="Only c-contiguous arrays are supported for zero-copy"):
        nd.from_numpy(np.ones((3, 2)).T)
    capsule = nd.to_dlpack_for_read(nd.ones((2, 2)))
    np.testing.assert_array_equal(nd.from_dlpack(capsule).asnumpy(), np.ones((2, 2)))
    with pytest.raises(MXNetError, match="DLTensor capsules can be consumed only once"):
        nd.from_dlpack(capsule)


def test_linalg_products_match_numpy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(nd.linalg.syrk(nd.array(a), alpha=2).asnumpy(), 2 * a @ a.T)
    np.testing.assert_allclose(nd.linalg.gemm2(nd.array(a), nd.array(a), transpose_b=True).asnumpy(), a @ a.T)
    batch = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    got = nd.linalg.gemm(nd.array(batch), nd.array(batch), nd.ones((2, 3, 3)), transpose_a=True, beta=2)
    np.testing.assert_allclose(got.asnumpy(), batch.transpose(0, 2, 1) @ batch + 2)


def test_contrib_value_tests_and_control_flow():
    x = nd.array([np.inf, -np.inf, np.nan, 1])
    assert nd.contrib.isinf(x).asnumpy().tolist() == [1, 1, 0, 0]
    assert nd.contrib.isnan(x).asnumpy().tolist() == [0, 0, 1, 0]
    assert nd.contrib.isfinite(x).asnumpy().tolist() == [0, 0, 0, 1]
    outs, states = nd.contrib.foreach(lambda d, s: (d + s[0], [s[0] + d]), nd.array(X), [nd.zeros((3,))])
    np.testing.assert_allclose(outs.asnumpy(), [X[0], X[1] + X[0]])
    np.testing.assert_allclose(states[0].asnumpy(), X.sum(axis=0))
    outs, final = nd.contrib.while_loop(
        lambda i, s: i < 3, lambda i, s: ([s], [i + 1, s + i]), [nd.array([0]), nd.array([1])], 5
    )
    assert outs[0].asnumpy().ravel().tolist() == [1, 1, 2, 0, 0]  # MXNet pads past the last step
    assert [v.asscalar() for v in final] == [3, 4]
    assert nd.contrib.cond(nd.array([0]), lambda: "then", lambda: "else") == "else"


def test_image_to_tensor_and_normalize():
    image = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    tensor = nd.image.to_tensor(nd.array(image, dtype="uint8"))
    np.testing.assert_allclose(tensor.asnumpy(), image.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    normalized = nd.image.normalize(nd.ones((3, 1, 2)), mean=(0.5, 0.25, 0), std=(2, 4, 1))
    np.testing.assert_allclose(normalized.asnumpy().ravel(), [0.25, 0.25, 0.1875, 0.1875, 1, 1])
    np.testing.assert_array_equal(nd.image.flip_left_right(nd.array(image)).asnumpy(), image[:, ::-1])
    with pytest.raises(MXNetError, match=r"image.normalize: the input must be CHW .* got shape \(2, 2, 2\)"):
        nd.image.normalize(nd.ones((2, 2, 2)))


def test_sampling_op_names_forward_to_mx_nd_random():
    assert nd.random_uniform(0, 1, shape=(4,)).shape == (4,)
    values = nd.uniform(low=2, high=3, shape=(100,)).asnumpy()
    assert values.min() >= 2 and values.max() < 3


# -- mx.base and mx.context ---------------------------------------------------------------------------


def test_error_classes_have_mxnet_messages():
    def concat():
        pass

    err = base.NotImplementedForSymbol(concat, "Concat", 1)
    assert isinstance(err, MXNetError)
    assert str(err) == (
        "Function concat (namely operator \"Concat\") with arguments (<class 'int'>) is not implemented for "
        "Symbol and only available in NDArray."
    )
    assert str(base.NotSupportedForSparseNDArray(concat, None)) == (
        "Function concat is not supported for SparseNDArray and only available in NDArray."
    )
    assert base.error_types["NotImplementedForSymbol"] is base.NotImplementedForSymbol


def test_register_error_and_helpers():
    @base.register_error
    class MyError(MXNetError):
        pass

    assert base.error_types["MyError"] is MyError
    assert base.py_str(b"caf\xc3\xa9") == "café"
    assert isinstance(np.int64(3), base.integer_types) and isinstance("s", base.string_types)
    assert base.mx_real_t is np.float32


def test_data_dir_follows_mxnet_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    assert base.data_dir() == str(tmp_path)
    monkeypatch.delenv("MXNET_HOME")
    assert base.data_dir().endswith(".mxnet")


def test_default_ctx_is_deprecated_and_sets_the_default():
    with pytest.warns(DeprecationWarning, match="Context.default_ctx has been deprecated"):
        assert ember.Context.default_ctx == ember.cpu(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ember.Context.default_ctx = ember.cpu(2)
        assert ember.current_context() == ember.cpu(2)
        with ember.cpu(3):
            assert ember.current_context() == ember.cpu(3)
        assert ember.current_context() == ember.cpu(2)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ember.Context.default_ctx = ember.cpu(0)


def test_gpu_memory_info_without_a_gpu_is_a_device_error():
    if context.num_gpus() > 0:
        pytest.skip("this machine has a GPU: gpu_memory_info's no-GPU error cannot be seen here")
    with pytest.raises(base.DeviceError, match="no NVIDIA GPU is available"):
        context.gpu_memory_info(0)

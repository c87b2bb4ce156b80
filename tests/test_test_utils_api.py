"""`mx.test_utils` against MXNet 1.9.1: every public name with MXNet's parameters (inventory in
tests/data/mxnet_api/test_utils.json), and the behaviour of the comparison, gradient, environment,
shape and MNIST helpers, with expected values computed by hand or by NumPy."""

from __future__ import annotations

import ast
import gzip
import inspect
import json
import os
import pathlib

import numpy as np
import pytest

import ember as mx
from ember import test_utils as tu
from ember.base import MXNetError

INVENTORY = json.loads((pathlib.Path(__file__).parent / "data" / "mxnet_api" / "test_utils.json").read_text())
# Ember's additions: trailing optional parameters that MXNet's calls never pass.
EMBER_EXTRA = {"get_mnist": ["path"]}
# MXNet <= 1.7 names that 1.9.1 dropped; Ember keeps them for old test code.
LEGACY = ["almost_equal_ignore_nan", "find_max_violation", "set_env_var"]
MNIST_DIR = pathlib.Path("/work/shared/data/mnist")


def _mxnet_parameters(text: str) -> list[tuple[str, str, object]]:
    """(name, kind, default) for MXNet's parameter list text; defaults evaluated as MXNet would."""
    args = ast.parse(f"def f({text}): pass").body[0].args
    scope = {"np": np, "default_dtype": tu.default_dtype}
    defaults = [None] * (len(args.args) - len(args.defaults)) + [
        eval(compile(ast.Expression(d), "", "eval"), scope) for d in args.defaults
    ]
    params = [(a.arg, "POSITIONAL_OR_KEYWORD", d) for a, d in zip(args.args, defaults)]
    if args.vararg:
        params.append((args.vararg.arg, "VAR_POSITIONAL", None))
    if args.kwarg:
        params.append((args.kwarg.arg, "VAR_KEYWORD", None))
    return params


def _ember_parameters(name: str) -> list[tuple[str, str, object]]:
    target = getattr(tu, name)
    signature = inspect.signature(target.__init__ if inspect.isclass(target) else target)
    params = [p for p in signature.parameters.values() if p.name != "self"]
    params = [p for p in params if p.name not in EMBER_EXTRA.get(name, [])]
    return [
        (p.name, p.kind.name, None if p.default is inspect.Parameter.empty else p.default) for p in params
    ]


@pytest.mark.parametrize("name", sorted(INVENTORY))
def test_every_mxnet_name_exists_with_mxnet_parameters(name):
    expected, got = _mxnet_parameters(INVENTORY[name]), _ember_parameters(name)
    assert [(n, k) for n, k, _ in got] == [(n, k) for n, k, _ in expected]
    for (pname, _, want), (_, _, have) in zip(expected, got):
        assert have == want or (have is want), f"{name}({pname}=...): MXNet {want!r}, Ember {have!r}"


def test_every_public_function_is_in_the_inventory_or_legacy():
    public = {
        n
        for n, v in vars(tu).items()
        if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == tu.__name__
    }
    assert public - set(INVENTORY) == set(LEGACY)


UNSUPPORTED = {
    "shuffle_csr_column_indices": lambda: tu.shuffle_csr_column_indices(None),
    "rand_sparse_ndarray": lambda: tu.rand_sparse_ndarray((2, 2), "csr"),
    "rand_ndarray": lambda: tu.rand_ndarray((2, 2), "row_sparse"),
    "create_sparse_array": lambda: tu.create_sparse_array((2, 2), "csr"),
    "create_sparse_array_zd": lambda: tu.create_sparse_array_zd((2, 2), "row_sparse", 0.5),
    "check_gluon_hybridize_consistency": lambda: tu.check_gluon_hybridize_consistency(None, []),
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_helpers_raise_a_clear_mxneterror(name):
    with pytest.raises(MXNetError, match="dense NDArrays only|no Gluon"):
        UNSUPPORTED[name]()


def test_downloads_use_local_files_or_name_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MXNetError, match=r"no network access.*data/mnist\.pkl\.gz"):
        tu.get_mnist_pkl()
    with pytest.raises(MXNetError, match=r"no network access.*data/cifar/train\.rec"):
        tu.get_cifar10()
    with pytest.raises(MXNetError, match=r"does not download http://x/y\.zip.*d/y\.zip"):
        tu.get_zip_data("d", "http://x/y.zip", "y.zip")
    with pytest.raises(MXNetError, match=r"no network access.*m-symbol\.json"):
        tu.download_model("m", meta_info={"m": {}})
    assert tu.download_model("unknown-model") == (None, 0)
    (tmp_path / "f.bin").write_bytes(b"x")
    assert tu.download("http://host/f.bin") == "f.bin"  # present: MXNet skips the download too
    with pytest.raises(MXNetError, match=r"does not download http://host/f\.bin"):
        tu.download("http://host/f.bin", overwrite=True)
    import bz2

    (tmp_path / "k.bz2").write_bytes(bz2.compress(b"line1\nline2\n"))
    tu.get_bz2_data(".", "k.txt", "http://host/k.bz2", "k.bz2")
    assert (tmp_path / "k.txt").read_bytes() == b"line1\nline2\n" and not (tmp_path / "k.bz2").exists()


# -- comparisons ----------------------------------------------------------------------------------


def test_default_tolerances_follow_the_dtypes():
    assert tu.get_tols(np.float16(1), np.float64(1), None, None) == (1e-2, 1e-1)
    assert tu.get_tols(np.zeros(2, np.float32), np.zeros(2, np.float32), None, None) == (1e-4, 1e-3)
    assert tu.get_tols(np.zeros(2), np.zeros(2), None, None) == (1e-5, 1e-20)
    assert tu.get_tols(np.zeros(2, np.int32), np.zeros(2), 0.5, {np.dtype(np.float64): 7}) == (0.5, 7)
    assert tu.get_rtol() == 1e-5 and tu.get_atol(dtype=np.float32) == 1e-3 and tu.get_etol() == 0


def test_assert_almost_equal_passes_within_and_fails_outside_the_float32_tolerance():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    tu.assert_almost_equal(a, a * (1 + 5e-5))  # float32: rtol 1e-4
    tu.assert_almost_equal(mx.nd.array(a), a + 5e-4)  # atol 1e-3
    with pytest.raises(AssertionError):
        tu.assert_almost_equal(a, a * (1 + 5e-3))
    with pytest.raises(AssertionError):
        tu.assert_almost_equal(a.astype(np.float64), a.astype(np.float64) * (1 + 5e-5))  # float64: 1e-5
    tu.assert_almost_equal(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), equal_nan=True)
    with pytest.raises(AssertionError):
        tu.assert_almost_equal(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))
    tu.assert_almost_equal(np.ones((2, 3)), np.ones(3))  # broadcasts
    with pytest.raises(AssertionError, match=r"a\.shape = \(2, 3\) and b\.shape = \(3,\) are not equal"):
        tu.assert_almost_equal(np.ones((2, 3)), np.ones(3), use_broadcast=False)


def test_assert_almost_equal_message_names_the_worst_mismatches():
    a = np.zeros((2, 3))
    b = np.zeros((2, 3))
    a[1, 2], a[0, 1] = 5.0, 1.0  # worst at (1, 2), then (0, 1); 2 of 6 elements
    with pytest.raises(AssertionError) as info:
        tu.assert_almost_equal(a, b, rtol=0.1, atol=0.5, names=("GOT", "WANT"))
    message = str(info.value)
    assert (
        "Error 10.000000 exceeds tolerance rtol=1.000000e-01, atol=5.000000e-01 (mismatch 33.333333%)"
        in message
    )
    assert "Location of maximum error: (1, 2), GOT=5.00000000, WANT=0.00000000" in message
    assert "  1: Error 10.000000  Location of error: (1, 2), GOT=5.00000000" in message
    assert "  2: Error 2.000000  Location of error: (0, 1), GOT=1.00000000" in message
    with pytest.raises(AssertionError, match=r"mismatch at least 33\.333333%"):  # MXNet counts one past
        tu.assert_almost_equal(a, b, rtol=0.1, atol=0.5, mismatches=(1, 1))


def test_error_rate_and_nan_ignoring_variants():
    a, b = np.arange(10.0), np.arange(10.0)
    b[3] += 1
    tu.assert_almost_equal_with_err(a, b, etol=0.2)  # 10% mismatch allowed
    with pytest.raises(AssertionError, match=r"\(3,\)"):
        tu.assert_almost_equal_with_err(a, b, etol=0.05)
    tu.assert_almost_equal_ignore_nan(np.array([np.nan, 2.0]), np.array([7.0, 2.0]))
    assert tu.almost_equal_ignore_nan(np.array([1.0, np.nan]), np.array([1.0, 0.0]))
    assert tu.almost_equal(np.array([1.0]), np.array([1.0 + 1e-6]))
    assert not tu.almost_equal(np.array([1.0]), np.array([1.0 + 1e-4]))
    assert tu.find_max_violation(np.array([0.0, 3.0]), np.array([0.0, 1.0]), rtol=0, atol=1)[0] == (1,)
    assert tu.same(mx.nd.array([1, 2]), np.array([1, 2], np.float32)) and not tu.same(np.ones(2), np.ones(3))


def test_assert_exception_and_retry():
    tu.assert_exception(int, ValueError, "x")
    with pytest.raises(AssertionError, match="did not raise ValueError"):
        tu.assert_exception(int, ValueError, "3")
    calls = []

    @tu.retry(3)
    def flaky():
        calls.append(1)
        assert len(calls) == 2

    flaky()
    assert len(calls) == 2


# -- random data and shapes -----------------------------------------------------------------------


def test_rand_shapes_stay_in_range():
    np.random.seed(0)
    shapes = [tu.rand_shape_2d(3, 4) for _ in range(200)]
    assert {s[0] for s in shapes} == {1, 2, 3} and {s[1] for s in shapes} == {1, 2, 3, 4}
    assert {d for _ in range(100) for d in tu.rand_shape_3d(2, 2, 2, allow_zero_size=True)} == {0, 1, 2}
    nd_shape = tu.rand_shape_nd(4, dim=5)
    assert len(nd_shape) == 4 and all(1 <= d <= 5 for d in nd_shape)
    x, y = tu.rand_coord_2d(0, 3, 10, 11)
    assert 0 <= x < 3 and y == 10 and x.dtype == np.int64


def test_random_arrays_and_rand_ndarray():
    single = tu.random_arrays((2, 3))
    assert single.shape == (2, 3) and single.dtype == np.float32
    pair = tu.random_arrays((2,), ())
    assert [p.shape for p in pair] == [(2,), ()]
    arr = tu.rand_ndarray((3, 4), dtype="float64")
    assert arr.shape == (3, 4) and arr.dtype == np.float64
    assert sorted(tu.random_sample(list(range(5)), 5)) == list(range(5))
    assert tu.random_uniform_arrays((2,), low=5, high=6)[0].min() >= 5


def test_small_numpy_helpers():
    data = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(
        tu.np_reduce(data, (0, 2), True, np.sum), data.sum(axis=(0, 2), keepdims=True)
    )
    np.testing.assert_array_equal(tu.collapse_sum_like(data, (3, 1)), data.sum(axis=(0, 2)).reshape(3, 1))
    np.testing.assert_array_equal(tu.assign_each(np.array([1.0, 2.0]), lambda v: v * 10), [10.0, 20.0])
    np.testing.assert_array_equal(tu.create_2d_tensor(3, 2).asnumpy(), [[0, 0], [1, 1], [2, 2]])
    assert tu.create_vector(4).asnumpy().tolist() == [0, 1, 2, 3]
    sym = tu.new_sym_matrix_with_real_eigvals_2d(4)
    np.testing.assert_allclose(sym, sym.T, atol=1e-12)
    assert np.all(np.isreal(np.linalg.eigvals(tu.new_matrix_with_real_eigvals_2d(3))))


# -- environment ----------------------------------------------------------------------------------


def test_environment_sets_and_restores_variables(monkeypatch):
    monkeypatch.setenv("EMBER_TU_A", "old")
    monkeypatch.delenv("EMBER_TU_B", raising=False)
    with pytest.raises(RuntimeError):
        with tu.environment({"EMBER_TU_A": "new", "EMBER_TU_B": "1"}):
            assert os.environ["EMBER_TU_A"] == "new" and os.environ["EMBER_TU_B"] == "1"
            raise RuntimeError("restored even so")
    assert os.environ["EMBER_TU_A"] == "old" and "EMBER_TU_B" not in os.environ
    with tu.environment("EMBER_TU_A", None):
        assert "EMBER_TU_A" not in os.environ
    assert os.environ["EMBER_TU_A"] == "old"
    with pytest.raises(MXNetError, match="one dict arg or two args"):
        with tu.environment("EMBER_TU_A"):
            pass
    assert tu.set_env_var("EMBER_TU_B", "2", default_val="none") == "none" and os.environ["EMBER_TU_B"] == "2"
    monkeypatch.delenv("EMBER_TU_B")


def test_default_context_and_small_queries():
    assert tu.default_context() == mx.cpu(0) and tu.default_dtype() is np.float32
    tu.set_default_context(mx.cpu(1))
    try:
        assert tu.default_context() == mx.cpu(1)
    finally:
        tu.set_default_context(None)
    assert tu.has_tvm_ops() is False and tu.is_op_runnable() is True
    assert list(tu.list_gpus()) == list(range(mx.context.num_gpus()))
    with tu.environment("CD_JOB", "1"):
        assert tu.is_cd_run()


# -- symbol checks ----------------------------------------------------------------------------------


def test_check_symbolic_forward_and_backward_return_ndarrays():
    x = mx.sym.Variable("x")
    y = x * x * 3
    location = {"x": np.array([[1.0, 2.0], [-1.0, 0.5]])}
    (out,) = tu.check_symbolic_forward(y, location, [3 * location["x"] ** 2])
    assert isinstance(out, mx.nd.NDArray)
    grads = tu.check_symbolic_backward(y, location, [np.ones((2, 2))], {"x": 6 * location["x"]})
    np.testing.assert_allclose(grads["x"].asnumpy(), 6 * location["x"], rtol=1e-6)
    tu.check_symbolic_backward(y, location, [np.ones((2, 2))], {"x": 6 * location["x"]}, grad_req="add")
    with pytest.raises(AssertionError, match="EXPECTED_x"):
        tu.check_symbolic_backward(y, location, [np.ones((2, 2))], {"x": 5 * location["x"]})
    with pytest.raises(MXNetError, match="keys of the given location do not match"):
        tu.check_symbolic_forward(y, {"z": np.ones(2)}, [np.ones(2)])


def test_check_numeric_gradient_catches_a_wrong_gradient():
    from ember.compiler.ops import grad_rules

    data = mx.sym.Variable("data")
    sym = mx.sym.tanh(data)
    location = {"data": np.random.default_rng(0).normal(size=(3, 4))}
    tu.check_numeric_gradient(sym, location, dtype=np.float64)  # MXNet's float64 defaults
    original = grad_rules["tanh"]
    try:
        grad_rules["tanh"] = lambda g, node, dy: [dy[0]]  # wrong: ignores 1 - tanh^2
        with pytest.raises(AssertionError, match=r"NUMERICAL_data=.*BACKWARD_data="):
            tu.check_numeric_gradient(sym, location, dtype=np.float64)
    finally:
        grad_rules["tanh"] = original


def test_numeric_grad_differentiates_the_first_output_sum():
    x = mx.sym.Variable("x")
    executor = (x * x).simple_bind(mx.cpu(), x=(3,))
    grads = tu.numeric_grad(executor, {"x": np.array([1.0, -2.0, 0.5])}, eps=1e-3, dtype=np.float64)
    np.testing.assert_allclose(grads["x"], [2.0, -4.0, 1.0], rtol=1e-4)  # a float32 executor


def test_check_consistency_compares_float64_float32_float16():
    sym = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=3, name="fc")
    ctx_list = [
        {"ctx": mx.cpu(0), "data": (2, 4), "type_dict": {"data": t}}
        for t in (np.float64, np.float32, np.float16)
    ]
    truth = tu.check_consistency(sym, ctx_list)
    assert truth["fc_output"].dtype == np.float64 and truth["fc_weight"].shape == (3, 4)
    with pytest.raises(AssertionError):
        tu.check_consistency(sym, ctx_list, ground_truth={**truth, "fc_output": truth["fc_output"] + 1})


def test_simple_forward_and_check_speed():
    x = mx.sym.Variable("x")
    np.testing.assert_allclose(tu.simple_forward(x * 2, x=np.array([1.0, 2.0])), [2.0, 4.0])
    assert tu.check_speed(x * 2, location={"x": np.ones(3)}, N=2, typ="forward") >= 0
    with pytest.raises(ValueError, match="whole"):
        tu.check_speed(x * 2, location={"x": np.ones(3)}, typ="nope")


# -- distribution checks ------------------------------------------------------------------------------


def test_chi_square_check_accepts_a_right_generator_and_rejects_a_wrong_one():
    from statistics import NormalDist

    np.random.seed(1)

    def ppf(q):
        return -np.inf if q == 0 else np.inf if q == 1 else NormalDist().inv_cdf(q)

    buckets, probs = tu.gen_buckets_probs_with_ppf(ppf, 5)
    assert probs == [0.2] * 5 and buckets[0][0] == -np.inf and buckets[-1][1] == np.inf
    p, observed, expected = tu.chi_square_check(lambda n: np.random.normal(size=n), buckets, probs, 50000)
    assert p > 0.001 and observed.sum() == 50000 and list(expected) == [10000] * 5
    assert tu.chi_square_check(lambda n: np.random.normal(0.1, 1, size=n), buckets, probs, 50000)[0] < 1e-6
    tu.verify_generator(
        lambda n: np.random.randint(0, 3, n), [0, 1, 2], [1 / 3] * 3, nsamples=3000, nrepeat=3
    )
    with pytest.raises(AssertionError, match="Generator test fails"):
        tu.verify_generator(lambda n: np.zeros(n), [0, 1], [0.5, 0.5], nsamples=1000, nrepeat=2)
    assert tu.mean_check(lambda n: np.random.normal(0, 1, n), 0, 1.0, 20000)
    assert tu.var_check(lambda n: np.random.normal(0, 2, n), 2.0, 20000)


def test_chi2_survival_matches_known_values():
    # scipy.stats.chi2.sf: (3.84146, 1) -> 0.05, (11.0705, 5) -> 0.05, (2, 2) -> exp(-1)
    assert tu._chi2_survival(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)
    assert tu._chi2_survival(11.070497693516351, 5) == pytest.approx(0.05, rel=1e-9)
    assert tu._chi2_survival(2.0, 2) == pytest.approx(np.exp(-1), rel=1e-12)


# -- MNIST --------------------------------------------------------------------------------------------


def _link_test_set_as_both_splits(folder: pathlib.Path) -> None:
    folder.mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        source = MNIST_DIR / f"t10k-{kind}-ubyte.gz"
        for split in ("train", "t10k"):
            (folder / f"{split}-{kind}-ubyte.gz").symlink_to(source)


def test_get_mnist_iterator_reads_the_local_mnist_test_set(tmp_path, monkeypatch):
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the MNIST test set is not under {MNIST_DIR}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MXNetError, match=r"no network access.*data/train-images-idx3-ubyte"):
        tu.get_mnist_iterator(100, (784,))
    _link_test_set_as_both_splits(tmp_path / "data")
    train, val = tu.get_mnist_iterator(100, (784,))
    batches = list(val)
    assert batches[0].data[0].shape == (100, 784) and batches[0].label[0].shape == (100,)
    with gzip.open(MNIST_DIR / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)
    seen = np.concatenate([b.label[0].asnumpy() for b in batches]).astype(np.int64)
    # both iterators shuffle (MNISTIter's default, which MXNet's validation iterator keeps)
    np.testing.assert_array_equal(np.bincount(seen, minlength=10), np.bincount(labels, minlength=10))
    assert sum(1 for _ in train) == 100  # 10000 images, batches of 100
    images, _ = tu.get_mnist_iterator(50, (1, 28, 28))
    assert next(images).data[0].shape == (50, 1, 28, 28)


def test_get_mnist_reads_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MXNetError, match=r"train-images-idx3-ubyte\[\.gz\].* not found"):
        tu.get_mnist()
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for split in ("train", "t10k"):
        (tmp_path / f"{split}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(np.array([2051, 2, 28, 28], ">u4").tobytes() + images.tobytes())
        )
        (tmp_path / f"{split}-labels-idx1-ubyte").write_bytes(
            np.array([2049, 2], ">u4").tobytes() + bytes([3, 7])
        )
    mnist = tu.get_mnist()
    assert mnist["train_data"].shape == (2, 1, 28, 28) and mnist["train_data"].dtype == np.float32
    np.testing.assert_allclose(mnist["test_data"][1, 0, 0, :2], np.array([784, 785]) % 256 / 255, rtol=1e-6)
    assert mnist["test_label"].tolist() == [3, 7] and mnist["test_label"].dtype == np.int8


def test_dummy_iter_repeats_the_first_batch():
    real = mx.io.NDArrayIter(np.arange(8.0).reshape(4, 2), batch_size=2)
    dummy = tu.DummyIter(real)
    first, second = next(dummy), next(dummy)
    assert first is second and dummy.batch_size == 2
    np.testing.assert_array_equal(first.data[0].asnumpy(), [[0, 1], [2, 3]])

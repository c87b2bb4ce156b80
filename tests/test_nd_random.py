"""`mx.nd.random` / `mx.random` against MXNet 1.9.1: signatures, moments within statistical bounds,
per-element (NDArray) parameters, shapes and dtypes, seeding, errors, and the op-level names."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import ember as mx
from ember.base import MXNetError
from ember.ndarray import random as ndr
from ember.test_utils import chi_square_check

N = 40000

# MXNet 1.9.1's python/mxnet/ndarray/random.py parameters (its _Null defaults are None here).
SIGNATURES = {
    "uniform": "low=0 high=1 shape dtype ctx out **kwargs",
    "normal": "loc=0 scale=1 shape dtype ctx out **kwargs",
    "randn": "*shape **kwargs",
    "poisson": "lam=1 shape dtype ctx out **kwargs",
    "exponential": "scale=1 shape dtype ctx out **kwargs",
    "gamma": "alpha=1 beta=1 shape dtype ctx out **kwargs",
    "negative_binomial": "k=1 p=1 shape dtype ctx out **kwargs",
    "generalized_negative_binomial": "mu=1 alpha=1 shape dtype ctx out **kwargs",
    "multinomial": "data shape get_prob=False out dtype=int32 **kwargs",
    "shuffle": "data **kwargs",
    "randint": "low high shape dtype ctx out **kwargs",
}


def _describe(fn) -> str:
    parts = []
    for p in inspect.signature(fn).parameters.values():
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(p.kind.name, "")
        absent = p.default is inspect.Parameter.empty or p.default is None
        parts.append(prefix + p.name + ("" if absent else f"={p.default}"))
    return " ".join(parts)


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signatures_and_mx_random_aliases(name):
    assert _describe(getattr(ndr, name)) == SIGNATURES[name]
    assert getattr(mx.random, name) is getattr(ndr, name)


# (function, scalar kwargs, mean, variance) with the distributions' textbook moments
MOMENTS = [
    (ndr.uniform, {"low": -1.0, "high": 3.0}, 1.0, 16 / 12),
    (ndr.normal, {"loc": 2.0, "scale": 0.5}, 2.0, 0.25),
    (ndr.exponential, {"scale": 2.0}, 2.0, 4.0),
    (ndr.gamma, {"alpha": 3.0, "beta": 0.5}, 1.5, 0.75),
    (ndr.poisson, {"lam": 4.0}, 4.0, 4.0),
    (ndr.negative_binomial, {"k": 3.0, "p": 0.4}, 3 * 0.6 / 0.4, 3 * 0.6 / 0.16),
    (ndr.generalized_negative_binomial, {"mu": 2.0, "alpha": 0.5}, 2.0, 2.0 + 0.5 * 4.0),
    (ndr.generalized_negative_binomial, {"mu": 3.0, "alpha": 0.0}, 3.0, 3.0),
    (ndr.randint, {"low": -2, "high": 5}, 1.0, (7**2 - 1) / 12),
]


@pytest.mark.parametrize("fn, kwargs, mean, var", MOMENTS, ids=lambda v: getattr(v, "__name__", None))
def test_sample_moments_within_five_standard_errors(fn, kwargs, mean, var):
    mx.random.seed(11)
    samples = fn(shape=(N,), **kwargs).asnumpy().astype(np.float64)
    assert abs(samples.mean() - mean) < 5 * np.sqrt(var / N)
    # the variance of the sample variance is at most a few times var^2 * 2 / N for these tails
    assert abs(samples.var() - var) < 10 * var * np.sqrt(2.0 / N)


def test_normal_passes_a_chi_square_test():
    from statistics import NormalDist

    edges = [NormalDist().inv_cdf(q) for q in (0.2, 0.4, 0.6, 0.8)]
    buckets = list(zip([-np.inf, *edges], [*edges, np.inf]))
    mx.random.seed(3)
    p, _, _ = chi_square_check(lambda n: ndr.normal(shape=n).asnumpy(), buckets, [0.2] * 5, 50000)
    assert p > 0.001


def test_per_element_parameters_append_the_sample_shape():
    mx.random.seed(5)
    loc, scale = mx.nd.array([0.0, 100.0]), mx.nd.array([1.0, 1.0])
    samples = ndr.normal(loc, scale, shape=(3, 500))
    assert samples.shape == (2, 3, 500) and samples.dtype == np.float32
    means = samples.asnumpy().reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(means, [0.0, 100.0], atol=0.15)
    assert ndr.uniform(mx.nd.array([[0.0], [5.0]], dtype="float64"), mx.nd.array([[1.0], [6.0]])).shape == (
        2,
        1,
    )
    assert (
        ndr.uniform(mx.nd.array([0.0], dtype="float64"), mx.nd.array([1.0], dtype="float64")).dtype
        == np.float64
    )
    lam = ndr.poisson(mx.nd.array([0.0, 0.0]), shape=4).asnumpy()
    np.testing.assert_array_equal(lam, np.zeros((2, 4)))


def test_shapes_dtypes_and_out():
    assert ndr.uniform().shape == (1,) and ndr.uniform().dtype == np.float32
    assert ndr.normal(shape=5, dtype="float64").dtype == np.float64
    assert ndr.randint(0, 3).dtype == np.int32 and ndr.randint(0, 3, shape=2, dtype="int64").dtype == np.int64
    assert ndr.randn(2, 3).shape == (2, 3) and ndr.randn().shape == (1,)
    out = mx.nd.zeros((2, 2), dtype="float64")
    assert ndr.uniform(5, 6, out=out) is out and out.asnumpy().min() >= 5
    assert ndr.gamma(shape=(2, 3), ctx=mx.cpu(1)).context == mx.cpu(1)
    assert ndr.uniform_like(mx.nd.zeros((3, 2), dtype="float16")).dtype == np.float16


def test_multinomial_and_shuffle():
    mx.random.seed(2)
    probs = mx.nd.array([[0.0, 0.25, 0.75], [1.0, 0.0, 0.0]])
    draws, log_p = ndr.multinomial(probs, shape=4000, get_prob=True)
    assert draws.shape == (2, 4000) and draws.dtype == np.int32
    counts = np.bincount(draws.asnumpy()[0], minlength=3)
    assert counts[0] == 0 and abs(counts[2] / 4000 - 0.75) < 0.03
    np.testing.assert_array_equal(draws.asnumpy()[1], 0)
    np.testing.assert_allclose(log_p.asnumpy()[1], 0.0)
    assert ndr.multinomial(mx.nd.array([0.5, 0.5])).shape == (1,)
    data = mx.nd.array(np.arange(12).reshape(6, 2))
    shuffled = ndr.shuffle(data).asnumpy()
    assert sorted(map(tuple, shuffled)) == sorted(map(tuple, data.asnumpy()))
    np.testing.assert_array_equal(data.asnumpy(), np.arange(12).reshape(6, 2))  # input unchanged


def test_seed_repeats_sampling_dropout_and_initializers():
    def draws():
        x = mx.nd.ones((4, 50))
        with mx.autograd.train_mode():
            dropped = mx.nd.Dropout(x, p=0.5)
        weight = mx.nd.zeros((3, 3))
        mx.init.Xavier()(mx.init.InitDesc("fc_weight"), weight)
        return [ndr.uniform(shape=3), ndr.poisson(2, shape=3), ndr.shuffle(mx.nd.arange(5)), dropped, weight]

    mx.random.seed(123)
    first = [a.asnumpy() for a in draws()]
    mx.random.seed(123, ctx=mx.cpu())
    second = [a.asnumpy() for a in draws()]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    mx.random.seed(124)
    assert not np.array_equal(ndr.uniform(shape=3).asnumpy(), first[0])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ndr.normal(0, -1), r"normal: requires scale > 0, got loc=0\.0, scale=-1\.0"),
        (lambda: ndr.uniform(2, 1), r"uniform: requires low <= high, got low=2\.0, high=1\.0"),
        (lambda: ndr.gamma(alpha=0), r"gamma: requires alpha > 0"),
        (lambda: ndr.exponential(scale=0), r"exponential: requires scale > 0"),
        (lambda: ndr.poisson(-1), r"poisson: requires lam >= 0"),
        (lambda: ndr.negative_binomial(1, 1.5), r"negative_binomial: requires 0 < p <= 1"),
        (lambda: ndr.generalized_negative_binomial(1, -1), r"requires alpha >= 0"),
        (lambda: ndr.randint(3, 3), r"randint: requires low < high"),
        (
            lambda: ndr.uniform(mx.nd.array([0, 2]), mx.nd.array([1, 1])),
            r"low=2\.0, high=1\.0 \(element \(1,\)\)",
        ),
        (
            lambda: ndr.uniform(0, mx.nd.array([1])),
            r"must all be numbers or all NDArrays, got low=int, high=NDArray",
        ),
        (lambda: ndr.normal(mx.nd.ones(2), mx.nd.ones(3)), r"one shape, got loc\(2,\), scale\(3,\)"),
        (lambda: ndr.uniform(shape=(2, -1)), r"negative dimension"),
        (lambda: ndr.uniform(dtype="int32"), r"dtype must be one of float16, float32, float64, got int32"),
        (lambda: ndr.uniform(bogus=1), r"unknown argument\(s\) bogus"),
        (lambda: ndr.uniform(shape=3, out=mx.nd.zeros(2)), r"out has shape \(2,\), the samples \(3,\)"),
        (lambda: mx.random.seed(1, ctx="tpu"), r"unknown device type 'tpu'"),
    ],
)
def test_bad_parameters_raise_mxneterror_naming_them(call, message):
    with pytest.raises(MXNetError, match=message):
        call()


def test_seed_state_must_be_an_int():
    with pytest.raises(ValueError, match="seed_state must be int"):
        mx.random.seed(1.5)


def test_op_level_names():
    mx.random.seed(9)
    assert ndr.OP_NAMES["random_uniform"](0, 1, shape=(2, 2)).shape == (2, 2)
    rate = ndr.OP_NAMES["random_exponential"](lam=4.0, shape=(N,)).asnumpy()
    assert abs(rate.mean() - 0.25) < 5 * 0.25 / np.sqrt(N)  # lam is the rate at op level
    sampled = ndr.OP_NAMES["sample_normal"](
        mu=mx.nd.array([0.0, 50.0]), sigma=mx.nd.array([1.0, 1.0]), shape=2
    )
    assert sampled.shape == (2, 2) and sampled.asnumpy()[1].min() > 40
    assert ndr.OP_NAMES["shuffle"] is ndr.shuffle and ndr.OP_NAMES["sample_multinomial"] is ndr.multinomial
    with pytest.raises(MXNetError, match="needs NDArrays mu, sigma"):
        ndr.OP_NAMES["sample_normal"](0.0, 1.0)

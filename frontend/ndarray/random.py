"""`mx.nd.random` (also `mx.random`'s sampling functions): MXNet 1.9.1's samplers, drawing from
`ember.random.generator()` so that `mx.random.seed` repeats them.

Each sampler takes either numbers (`shape` samples, default `(1,)`, float32 unless `dtype`) or
NDArrays of one shape `s` (`s + shape` samples, one set per parameter element, in the parameters'
dtype and context), or fills `out=`. `DISTRIBUTIONS` is the rule table: parameters, their checks and
the NumPy draw. `OP_NAMES` are the op-level names MXNet also puts in `mx.nd` (`random_uniform`,
`sample_normal`, `shuffle`, ...).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ember.runtime.errors import MXNetError

from ..context import current_context
from ..random import generator, seed  # noqa: F401  (mx.nd.random.seed and .generator, as before)
from .ndarray import NDArray, np_dtype

__all__ = [
    "exponential",
    "exponential_like",
    "gamma",
    "gamma_like",
    "generalized_negative_binomial",
    "generalized_negative_binomial_like",
    "generator",
    "multinomial",
    "negative_binomial",
    "negative_binomial_like",
    "normal",
    "normal_like",
    "poisson",
    "poisson_like",
    "randint",
    "randn",
    "seed",
    "shuffle",
    "uniform",
    "uniform_like",
]

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int32", "int64")


@dataclass(frozen=True)
class Distribution:
    """A sampler's parameters, their checks and the draw.

    `checks` are (requirement text, predicate over the parameters by name); a predicate works on
    numbers and NumPy arrays alike. `draw(gen, *params, size)` returns float64 or int64 samples.
    """

    params: tuple[str, ...]
    checks: tuple[tuple[str, Callable], ...]
    draw: Callable
    dtypes: tuple[str, ...] = FLOAT_DTYPES
    default_dtype: str = "float32"


def _generalized_negative_binomial(gen, mu, alpha, size):
    """Poisson(Gamma(1/alpha, mu*alpha)), or Poisson(mu) where alpha is 0 (MXNet's construction)."""
    mu, alpha = np.broadcast_to(mu, size), np.broadcast_to(alpha, size)
    safe = np.where(alpha > 0, alpha, 1.0)
    rates = np.where(alpha > 0, gen.gamma(1.0 / safe, mu * safe, size), mu)
    return gen.poisson(rates, size)


DISTRIBUTIONS: dict[str, Distribution] = {
    "uniform": Distribution(
        ("low", "high"),
        (("low <= high", lambda p: p["low"] <= p["high"]),),
        lambda gen, low, high, size: gen.uniform(low, high, size),
    ),
    "normal": Distribution(
        ("loc", "scale"),
        (("scale > 0", lambda p: p["scale"] > 0),),
        lambda gen, loc, scale, size: gen.normal(loc, scale, size),
    ),
    "gamma": Distribution(
        ("alpha", "beta"),
        (("alpha > 0", lambda p: p["alpha"] > 0), ("beta > 0", lambda p: p["beta"] > 0)),
        lambda gen, alpha, beta, size: gen.gamma(alpha, beta, size),
    ),
    "exponential": Distribution(  # the Python API's parameter: scale, the mean
        ("scale",),
        (("scale > 0", lambda p: p["scale"] > 0),),
        lambda gen, scale, size: gen.exponential(scale, size),
    ),
    "exponential_rate": Distribution(  # the op-level parameter: lam, the rate
        ("lam",),
        (("lam > 0", lambda p: p["lam"] > 0),),
        lambda gen, lam, size: gen.exponential(1.0 / np.asarray(lam, np.float64), size),
    ),
    "poisson": Distribution(
        ("lam",), (("lam >= 0", lambda p: p["lam"] >= 0),), lambda gen, lam, size: gen.poisson(lam, size)
    ),
    "negative_binomial": Distribution(
        ("k", "p"),
        (("k > 0", lambda p: p["k"] > 0), ("0 < p <= 1", lambda p: (p["p"] > 0) & (p["p"] <= 1))),
        lambda gen, k, p, size: gen.negative_binomial(k, p, size),
    ),
    "generalized_negative_binomial": Distribution(
        ("mu", "alpha"),
        (("mu >= 0", lambda p: p["mu"] >= 0), ("alpha >= 0", lambda p: p["alpha"] >= 0)),
        _generalized_negative_binomial,
    ),
    "randint": Distribution(
        ("low", "high"),
        (("low < high", lambda p: p["low"] < p["high"]),),
        lambda gen, low, high, size: gen.integers(low, high, size, dtype=np.int64),
        INT_DTYPES,
        "int32",
    ),
}


# -- the shared machinery ----------------------------------------------------------------------


def _shape_tuple(api: str, shape) -> tuple[int, ...]:
    """`shape` (an int or a sequence of ints) as a tuple; MXNetError for anything else."""
    dims = (shape,) if isinstance(shape, numbers.Integral) else shape
    if not isinstance(dims, (tuple, list)) or not all(isinstance(d, numbers.Integral) for d in dims):
        raise MXNetError(f"{api}: shape must be an int or a tuple of ints, got {shape!r}")
    if any(d < 0 for d in dims):
        raise MXNetError(f"{api}: shape {shape!r} has a negative dimension")
    return tuple(int(d) for d in dims)


def _output_dtype(api: str, allowed: tuple[str, ...], dtype, fallback) -> np.dtype:
    """The requested dtype if it is an allowed one (MXNetError else), or `fallback`'s."""
    if dtype is None:
        return np_dtype(fallback)
    name = np_dtype(dtype).name
    if name not in allowed:
        raise MXNetError(f"{api}: dtype must be one of {', '.join(allowed)}, got {name}")
    return np.dtype(name)


def _check(api: str, dist: Distribution, values: dict) -> None:
    """MXNetError naming the parameters of the first requirement some value breaks."""
    for text, predicate in dist.checks:
        ok = np.asarray(predicate(values))
        if not ok.all():
            where = tuple(int(i) for i in np.unravel_index(int(np.argmin(ok)), ok.shape)) if ok.ndim else ()
            got = ", ".join(f"{n}={np.broadcast_to(v, ok.shape)[where].item()!r}" for n, v in values.items())
            at = f" (element {where})" if where else ""
            raise MXNetError(f"{api}: requires {text}, got {got}{at}")


def _reject_kwargs(api: str, kwargs: dict) -> None:
    """MXNet hands extra keyword arguments to the op, which refuses any it does not know."""
    unknown = sorted(k for k in kwargs if k != "name")
    if unknown:
        raise MXNetError(f"{api}: unknown argument(s) {', '.join(unknown)}")


def _mixed_types(api: str, names, params) -> MXNetError:
    kinds = ", ".join(f"{n}={type(p).__name__}" for n, p in zip(names, params))
    return MXNetError(f"{api}: distribution parameters must all be numbers or all NDArrays, got {kinds}")


def _emit(api: str, values: np.ndarray, dtype: np.dtype, ctx, out):
    """Write `values` into `out` (converted to its dtype) or wrap them as a new NDArray on `ctx`."""
    if out is None:
        return NDArray(np.ascontiguousarray(values, dtype=dtype), current_context() if ctx is None else ctx)
    if tuple(out.shape) != tuple(values.shape):
        raise MXNetError(f"{api}: out has shape {tuple(out.shape)}, the samples {tuple(values.shape)}")
    if isinstance(out, NDArray):
        out[:] = values.astype(out.dtype, copy=False)
    else:
        out[...] = values
    return out


def _sample(api: str, name: str, params: list, shape, dtype, ctx, out, kwargs: dict):
    """Draw from DISTRIBUTIONS[name] with numbers or NDArrays as parameters (MXNet's two paths)."""
    _reject_kwargs(api, kwargs)
    dist = DISTRIBUTIONS[name]
    if isinstance(params[0], NDArray):
        return _sample_per_element(api, dist, params, shape, dtype, out)
    if not all(isinstance(p, numbers.Real) for p in params):
        raise _mixed_types(api, dist.params, params)
    cast = int if name == "randint" else float
    values = {n: cast(p) for n, p in zip(dist.params, params)}
    _check(api, dist, values)
    if shape is not None:
        size = _shape_tuple(api, shape)
    else:
        size = tuple(out.shape) if out is not None else (1,)
    fallback = out.dtype if out is not None and dtype is None else dist.default_dtype
    samples = dist.draw(generator(), *values.values(), size=size)
    return _emit(api, samples, _output_dtype(api, dist.dtypes, dtype, fallback), ctx, out)


def _sample_per_element(api: str, dist: Distribution, params: list, shape, dtype, out):
    """`shape` samples for each element of NDArray parameters of one shape (MXNet's _sample_* ops)."""
    if not all(isinstance(p, NDArray) for p in params):
        raise _mixed_types(api, dist.params, params)
    arrays = [p.asnumpy() for p in params]
    if any(a.shape != arrays[0].shape for a in arrays):
        shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(dist.params, arrays))
        raise MXNetError(f"{api}: parameter arrays must have one shape, got {shapes}")
    _check(api, dist, dict(zip(dist.params, arrays)))
    extra = _shape_tuple(api, shape) if shape is not None else ()
    size = arrays[0].shape + extra
    columns = [a.reshape(a.shape + (1,) * len(extra)).astype(np.float64) for a in arrays]
    samples = dist.draw(generator(), *columns, size=size)
    fallback = out.dtype if out is not None and dtype is None else arrays[0].dtype
    return _emit(api, samples, _output_dtype(api, dist.dtypes, dtype, fallback), params[0].context, out)


# -- mx.nd.random's functions ------------------------------------------------------------------


def uniform(low=0, high=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from U[low, high): `shape` of them (default `(1,)`), or `shape` per element of NDArray
    `low`/`high` (output shape `low.shape + shape`), or into `out`. float32 unless `dtype`."""
    return _sample("mx.nd.random.uniform", "uniform", [low, high], shape, dtype, ctx, out, kwargs)


def normal(loc=0, scale=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from N(loc, scale**2), shaped as `uniform`'s (scale must be > 0)."""
    return _sample("mx.nd.random.normal", "normal", [loc, scale], shape, dtype, ctx, out, kwargs)


def randn(*shape, **kwargs):
    """Normal samples of shape `shape` (given as separate ints); `loc`, `scale`, `dtype`, `ctx`, `out`
    as keywords."""
    loc, scale = kwargs.pop("loc", 0), kwargs.pop("scale", 1)
    dtype, ctx, out = kwargs.pop("dtype", None), kwargs.pop("ctx", None), kwargs.pop("out", None)
    dims = shape if shape else (None if out is not None or isinstance(loc, NDArray) else (1,))
    return _sample("mx.nd.random.randn", "normal", [loc, scale], dims, dtype, ctx, out, kwargs)


def poisson(lam=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from Poisson(lam) (lam >= 0), as floating-point numbers, shaped as `uniform`'s."""
    return _sample("mx.nd.random.poisson", "poisson", [lam], shape, dtype, ctx, out, kwargs)


def exponential(scale=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from the exponential distribution of mean `scale` (rate 1/scale), shaped as `uniform`'s."""
    return _sample("mx.nd.random.exponential", "exponential", [scale], shape, dtype, ctx, out, kwargs)


def gamma(alpha=1, beta=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from Gamma(shape alpha, scale beta), mean alpha*beta, shaped as `uniform`'s."""
    return _sample("mx.nd.random.gamma", "gamma", [alpha, beta], shape, dtype, ctx, out, kwargs)


def negative_binomial(k=1, p=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Failures before the k-th success with success probability p (mean k(1-p)/p), as floats."""
    api = "mx.nd.random.negative_binomial"
    return _sample(api, "negative_binomial", [k, p], shape, dtype, ctx, out, kwargs)


def generalized_negative_binomial(mu=1, alpha=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Negative binomial samples of mean `mu` and variance mu + alpha*mu**2 (Poisson when alpha is 0)."""
    api = "mx.nd.random.generalized_negative_binomial"
    return _sample(api, "generalized_negative_binomial", [mu, alpha], shape, dtype, ctx, out, kwargs)


def randint(low, high, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Integers drawn uniformly from [low, high) (int32 unless dtype is 'int64'), or into `out`."""
    if isinstance(low, NDArray) or isinstance(high, NDArray):
        raise MXNetError("mx.nd.random.randint: low and high must be integers, not NDArrays")
    return _sample("mx.nd.random.randint", "randint", [low, high], shape, dtype, ctx, out, kwargs)


MULTINOMIAL_DTYPES = ("int32", "int64", "uint8", *FLOAT_DTYPES)


def multinomial(data, shape=None, get_prob=False, out=None, dtype="int32", **kwargs):
    """Category indices drawn from the distributions along `data`'s last axis (each summing to 1).

    The result has shape `data.shape[:-1] + shape` (one draw per distribution without `shape`; (1,)
    for a single distribution); with `get_prob=True` also the log-probabilities of the draws.
    """
    api = "mx.nd.random.multinomial"
    _reject_kwargs(api, kwargs)
    if not isinstance(data, NDArray):
        raise MXNetError(f"{api}: data must be an NDArray of probabilities, not {type(data).__name__}")
    probs = data.asnumpy().astype(np.float64)
    if probs.ndim == 0 or probs.shape[-1] == 0:
        raise MXNetError(f"{api}: data must have a last axis of categories, got shape {probs.shape}")
    if (probs < 0).any():
        raise MXNetError(f"{api}: the probabilities in data must be >= 0")
    extra = _shape_tuple(api, shape) if shape is not None else ()
    flat = probs.reshape(-1, probs.shape[-1])
    draws = generator().random((flat.shape[0], int(np.prod(extra, dtype=np.int64))))
    cdf = np.cumsum(flat, axis=1)
    picks = np.minimum((draws[:, :, None] >= cdf[:, None, :]).sum(axis=2), flat.shape[1] - 1)
    out_shape = (probs.shape[:-1] + extra) or (1,)
    samples = _emit(
        api,
        picks.reshape(out_shape),
        _output_dtype(api, MULTINOMIAL_DTYPES, dtype, "int32"),
        data.context,
        out,
    )
    if not get_prob:
        return samples
    with np.errstate(divide="ignore"):
        log_prob = np.log(np.take_along_axis(flat, picks, axis=1)).reshape(out_shape)
    return [samples, NDArray(log_prob.astype(data.dtype), data.context)]


def shuffle(data, **kwargs):
    """A copy of `data` with its first axis randomly permuted (into `out=` when given)."""
    out = kwargs.pop("out", None)
    _reject_kwargs("mx.nd.random.shuffle", kwargs)
    if not isinstance(data, NDArray):
        raise MXNetError(f"mx.nd.random.shuffle: data must be an NDArray, not {type(data).__name__}")
    values = data.asnumpy()
    if values.ndim:
        values = values[generator().permutation(values.shape[0])]
    return _emit("mx.nd.random.shuffle", values, values.dtype, data.context, out)


# -- the `*_like` ops and the op-level names MXNet also puts in mx.nd ----------------------------


def _given(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict:
    """Parameters given by position (in `names` order) or by keyword (taken out of `kwargs`)."""
    return {**dict(zip(names, args)), **{k: kwargs.pop(k) for k in names if k in kwargs}}


def _like(dist_name: str, api: str, defaults: dict):
    """A `<dist>_like(data, <params>, out=None, name=None)` op: samples of data's shape and dtype."""
    dist = DISTRIBUTIONS[dist_name]

    def sampler(data=None, *args, out=None, name=None, **kwargs):
        values = {**defaults, **_given(dist.params, args, kwargs)}
        if not isinstance(data, NDArray):
            raise MXNetError(f"{api}: data must be an NDArray, not {type(data).__name__}")
        dtype = data.dtype if np_dtype(data.dtype).name in dist.dtypes else None
        params = [values[p] for p in dist.params]
        return _sample(api, dist_name, params, data.shape, dtype, data.context, out, kwargs)

    sampler.__name__ = api.rsplit(".", 1)[1]
    sampler.__doc__ = f"Samples of `data`'s shape, dtype and context from the {dist_name} distribution."
    return sampler


uniform_like = _like("uniform", "mx.nd.random.uniform_like", {"low": 0.0, "high": 1.0})
normal_like = _like("normal", "mx.nd.random.normal_like", {"loc": 0.0, "scale": 1.0})
gamma_like = _like("gamma", "mx.nd.random.gamma_like", {"alpha": 1.0, "beta": 1.0})
exponential_like = _like("exponential_rate", "mx.nd.random.exponential_like", {"lam": 1.0})
poisson_like = _like("poisson", "mx.nd.random.poisson_like", {"lam": 1.0})
negative_binomial_like = _like("negative_binomial", "mx.nd.random.negative_binomial_like", {"k": 1, "p": 1.0})
_GNB_DEFAULTS = {"mu": 1.0, "alpha": 1.0}
generalized_negative_binomial_like = _like(
    "generalized_negative_binomial", "mx.nd.random.generalized_negative_binomial_like", _GNB_DEFAULTS
)


def _number_op(dist_name: str, api: str, defaults: dict):
    """An op-level sampler with number parameters (`mx.nd.random_uniform(low, high, shape, ctx, dtype)`)."""
    dist = DISTRIBUTIONS[dist_name]

    def sampler(*args, shape=None, ctx=None, dtype=None, out=None, **kwargs):
        values = {**defaults, **_given(dist.params, args, kwargs)}
        missing = [p for p in dist.params if p not in values]
        if missing:
            raise MXNetError(f"{api}: missing required argument(s) {', '.join(missing)}")
        return _sample(api, dist_name, [values[p] for p in dist.params], shape, dtype, ctx, out, kwargs)

    sampler.__name__ = api.rsplit(".", 1)[1]
    sampler.__doc__ = f"MXNet's op-level {dist_name} sampler, number parameters {', '.join(dist.params)}."
    return sampler


def _array_op(dist_name: str, api: str, inputs: tuple[str, ...]):
    """An op-level per-element sampler (`mx.nd.sample_normal(mu, sigma, shape)`, NDArrays only);
    `inputs` are the op's names for the parameter arrays."""

    def sampler(*args, shape=None, dtype=None, out=None, **kwargs):
        arrays = list(_given(inputs, args, kwargs).values())
        if len(arrays) != len(inputs) or not all(isinstance(a, NDArray) for a in arrays):
            raise MXNetError(f"{api}: needs NDArrays {', '.join(inputs)}")
        return _sample(api, dist_name, arrays, shape, dtype, None, out, kwargs)

    sampler.__name__ = api.rsplit(".", 1)[1]
    sampler.__doc__ = f"MXNet's per-element {dist_name} sampler: `shape` samples per element of the inputs."
    return sampler


# name in mx.nd -> function; the lead's `mx.nd` namespace takes these as they are.
OP_NAMES: dict[str, Callable] = {
    "uniform": _number_op("uniform", "mx.nd.uniform", {"low": 0.0, "high": 1.0}),
    "normal": _number_op("normal", "mx.nd.normal", {"loc": 0.0, "scale": 1.0}),
    "random_uniform": _number_op("uniform", "mx.nd.random_uniform", {"low": 0.0, "high": 1.0}),
    "random_normal": _number_op("normal", "mx.nd.random_normal", {"loc": 0.0, "scale": 1.0}),
    "random_gamma": _number_op("gamma", "mx.nd.random_gamma", {"alpha": 1.0, "beta": 1.0}),
    "random_exponential": _number_op("exponential_rate", "mx.nd.random_exponential", {"lam": 1.0}),
    "random_poisson": _number_op("poisson", "mx.nd.random_poisson", {"lam": 1.0}),
    "random_negative_binomial": _number_op(
        "negative_binomial", "mx.nd.random_negative_binomial", {"k": 1, "p": 1.0}
    ),
    "random_generalized_negative_binomial": _number_op(
        "generalized_negative_binomial", "mx.nd.random_generalized_negative_binomial", _GNB_DEFAULTS
    ),
    "random_randint": _number_op("randint", "mx.nd.random_randint", {}),
    "sample_uniform": _array_op("uniform", "mx.nd.sample_uniform", ("low", "high")),
    "sample_normal": _array_op("normal", "mx.nd.sample_normal", ("mu", "sigma")),
    "sample_gamma": _array_op("gamma", "mx.nd.sample_gamma", ("alpha", "beta")),
    "sample_exponential": _array_op("exponential_rate", "mx.nd.sample_exponential", ("lam",)),
    "sample_poisson": _array_op("poisson", "mx.nd.sample_poisson", ("lam",)),
    "sample_negative_binomial": _array_op("negative_binomial", "mx.nd.sample_negative_binomial", ("k", "p")),
    "sample_generalized_negative_binomial": _array_op(
        "generalized_negative_binomial", "mx.nd.sample_generalized_negative_binomial", ("mu", "alpha")
    ),
    "sample_multinomial": multinomial,
    "shuffle": shuffle,
}

"""`mx.init` / `mx.initializer`: how parameters get their first values, as in MXNet 1.9.1.

An initializer is called as `init(InitDesc(name, attrs), arr)` and fills `arr` in place. A variable's
`__init__` attribute (the JSON of another initializer, e.g. BatchNorm's `["zero", {}]`) wins; otherwise
the name's suffix picks the rule (`weight` -> the initializer's own, `bias` -> 0, `gamma` -> 1, ...).
Random draws come from `ember.random`'s generator, so `mx.random.seed` makes them repeat.
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings

import numpy as np

from . import random
from .metric.registry import Registry
from .ndarray.ndarray import NDArray
from .ndarray.random import normal, uniform

__all__ = [
    "Bilinear",
    "Constant",
    "InitDesc",
    "Initializer",
    "LSTMBias",
    "Load",
    "MSRAPrelu",
    "Mixed",
    "Normal",
    "One",
    "Orthogonal",
    "Uniform",
    "Xavier",
    "Zero",
    "alias",
    "create",
    "register",
]


class InitDesc(str):
    """A variable's name (the string itself) with its symbol `attrs` and the `global_init` fallback."""

    def __new__(cls, name: str, attrs: dict | None = None, global_init=None):
        desc = super().__new__(cls, name)
        desc.attrs = attrs or {}
        desc.global_init = global_init
        return desc


def _assign(arr, value) -> None:
    """Fill `arr` (an NDArray or a NumPy array) in place with `value`, cast to its dtype."""
    if isinstance(arr, NDArray):
        arr[:] = np.asarray(value).astype(arr.dtype, copy=False)
    else:
        arr[...] = value


# Name suffix -> the Initializer method filling such a variable, tried in order (MXNet's table).
# The moving_*/running_* rows cover batch-norm statistics of graphs without `__init__` attributes.
SUFFIX_RULES = (
    ("weight", "_init_weight"),
    ("bias", "_init_bias"),
    ("gamma", "_init_gamma"),
    ("beta", "_init_beta"),
    ("min", "_init_zero"),
    ("max", "_init_one"),
    ("weight_quantize", "_init_quantized_weight"),
    ("bias_quantize", "_init_quantized_bias"),
    ("moving_mean", "_init_zero"),
    ("running_mean", "_init_zero"),
    ("moving_var", "_init_one"),
    ("running_var", "_init_one"),
    ("moving_inv_var", "_init_zero"),
    ("moving_avg", "_init_zero"),
)

# The deprecated `init(name_str, arr)` form: MXNet's order of rules for it.
LEGACY_SUFFIX_RULES = (
    ("bias", "_init_bias"),
    ("gamma", "_init_gamma"),
    ("beta", "_init_beta"),
    ("weight", "_init_weight"),
    ("moving_mean", "_init_zero"),
    ("moving_var", "_init_one"),
    ("moving_inv_var", "_init_zero"),
    ("moving_avg", "_init_zero"),
    ("min", "_init_zero"),
    ("max", "_init_one"),
)


class Initializer:
    """Base class: subclasses implement `_init_weight(name, arr)`; the other rules are fixed values."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._verbose = False
        self._print_func = None

    def set_verbosity(self, verbose: bool = False, print_func=None) -> Initializer:
        """Log each initialised array with `print_func(arr)` (default: its root mean square)."""
        self._verbose = verbose
        if print_func is None:

            def print_func(x):
                values = np.asarray(x.asnumpy() if isinstance(x, NDArray) else x, dtype=np.float64)
                return str(float(np.linalg.norm(values) / math.sqrt(values.size)))

        self._print_func = print_func
        return self

    def _verbose_print(self, desc, init, arr) -> None:
        if self._verbose and self._print_func:
            logging.info("Initialized %s as %s: %s", desc, init, self._print_func(arr))  # noqa: LOG015 (as MXNet)

    def dumps(self) -> str:
        """The JSON `[name, kwargs]` that `create` (and a variable's `__init__` attribute) reads back."""
        return json.dumps([self.__class__.__name__.lower(), self._kwargs])

    def __call__(self, desc, arr) -> None:
        """Fill `arr` for the variable `desc` (an InitDesc; a plain name takes the deprecated path)."""
        if not isinstance(desc, InitDesc):
            self._legacy_init(desc, arr)
            return
        if desc.global_init is None:
            desc.global_init = self
        init = desc.attrs.get("__init__", "")
        if init:
            create(init)._init_weight(desc, arr)
            self._verbose_print(desc, init, arr)
            return
        for suffix, method in SUFFIX_RULES:
            if desc.endswith(suffix):
                getattr(self, method)(desc, arr)
                self._verbose_print(desc, suffix, arr)
                return
        self._init_default(desc, arr)

    def _legacy_init(self, name, arr) -> None:
        warnings.warn(
            "Calling initializer with init(str, NDArray) has been deprecated."
            "please use init(mx.init.InitDesc(...), NDArray) instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        if not isinstance(name, str):
            raise TypeError("name must be string")
        if not isinstance(arr, NDArray):
            raise TypeError("arr must be NDArray")
        if name.startswith("upsampling"):
            self._init_bilinear(name, arr)
        elif name.startswith("stn_loc") and name.endswith("weight"):
            self._init_zero(name, arr)
        elif name.startswith("stn_loc") and name.endswith("bias"):
            self._init_loc_bias(name, arr)
        else:
            for suffix, method in LEGACY_SUFFIX_RULES:
                if name.endswith(suffix):
                    getattr(self, method)(name, arr)
                    return
            self._init_default(name, arr)

    def _init_bilinear(self, _, arr) -> None:
        _assign(arr, bilinear_kernel(arr.shape))

    def _init_loc_bias(self, _, arr) -> None:
        if arr.shape[0] != 6:
            raise ValueError(f"a spatial-transformer location bias has 6 entries, got shape {arr.shape}")
        _assign(arr, np.array([1.0, 0, 0, 0, 1.0, 0]))

    def _init_zero(self, _, arr) -> None:
        _assign(arr, 0.0)

    def _init_one(self, _, arr) -> None:
        _assign(arr, 1.0)

    def _init_bias(self, _, arr) -> None:
        _assign(arr, 0.0)

    def _init_gamma(self, _, arr) -> None:
        _assign(arr, 1.0)

    def _init_beta(self, _, arr) -> None:
        _assign(arr, 0.0)

    def _init_quantized_bias(self, _, arr) -> None:
        _assign(arr, 0)

    def _init_quantized_weight(self, _, arr) -> None:
        _assign(arr, random.generator().integers(-127, 127, size=arr.shape).astype(np.int8))

    def _init_weight(self, name, arr) -> None:
        raise NotImplementedError("Must override it")

    def _init_default(self, name, _) -> None:
        raise ValueError(
            f"Unknown initialization pattern for {name}. "
            'Default initialization is now limited to "weight", "bias", "gamma" (1.0), and "beta" (0.0).'
            "Please use mx.sym.Variable(init=mx.init.*) to set initialization pattern"
        )


_registry = Registry(Initializer, "initializer")
register = _registry.register
alias = _registry.alias
create = _registry.create


def bilinear_kernel(shape) -> np.ndarray:
    """The bilinear-upsampling kernel of a 4-D `(out, in, h, w)` weight, as float32."""
    if len(shape) != 4:
        raise ValueError(f"the bilinear initializer needs a 4-D weight (out, in, h, w), got shape {shape}")
    f = math.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    x = np.arange(shape[3])
    y = np.arange(shape[2])
    kernel = np.outer(1 - np.abs(y / f - c), 1 - np.abs(x / f - c))
    return np.broadcast_to(kernel, tuple(shape)).astype(np.float32)


class Load:
    """Values from a `.params` file or a dict of name -> NDArray (`arg:`/`aux:` prefixes dropped).

    Names not found go to `default_init`; a missing name without one, or a shape mismatch, raises.
    """

    def __init__(self, param, default_init=None, verbose: bool = False):
        if isinstance(param, str):
            from .ndarray import load

            param = load(param)
        if not isinstance(param, dict):
            raise TypeError(
                f"Load needs a dict of name -> NDArray or a .params file of one, got {type(param)}"
            )
        self.param = {}
        for name, arr in param.items():
            key = name[4:] if name.startswith(("arg:", "aux:")) else name
            self.param[key] = arr
        self.default_init = default_init
        self.verbose = verbose

    def __call__(self, name, arr) -> None:
        if name in self.param:
            loaded = self.param[name]
            if tuple(arr.shape) != tuple(loaded.shape):
                raise ValueError(
                    f"Parameter {name} cannot be initialized from loading. "
                    f"Shape mismatch, target {tuple(arr.shape)} vs loaded {tuple(loaded.shape)}"
                )
            _assign(arr, loaded.asnumpy() if isinstance(loaded, NDArray) else loaded)
            if self.verbose:
                logging.info("Initialized %s by loading", name)  # noqa: LOG015 (as MXNet)
            return
        if self.default_init is None:
            raise ValueError(
                f"Cannot Initialize {name}. Not found in loaded param and no default Initializer is provided."
            )
        self.default_init(name, arr)
        if self.verbose:
            logging.info("Initialized %s by default", name)  # noqa: LOG015 (as MXNet)


class Mixed:
    """Initializers chosen by regular expression on the name: the first pattern that matches wins."""

    def __init__(self, patterns, initializers):
        if len(patterns) != len(initializers):
            raise ValueError(f"{len(patterns)} patterns for {len(initializers)} initializers")
        self.map = list(zip([re.compile(p) for p in patterns], initializers))

    def __call__(self, name, arr) -> None:
        for pattern, init in self.map:
            if pattern.match(name):
                init(name, arr)
                return
        raise ValueError(
            f"Parameter name {name} did not match any pattern. "
            'Consider add a ".*" pattern at the and with default Initializer.'
        )


@register
@alias("zeros")
class Zero(Initializer):
    """Weights 0."""

    def _init_weight(self, _, arr) -> None:
        _assign(arr, 0)


@register
@alias("ones")
class One(Initializer):
    """Weights 1."""

    def _init_weight(self, _, arr) -> None:
        _assign(arr, 1)


@register
class Constant(Initializer):
    """Weights set to `value`: a scalar, or an array broadcast to the weight's shape."""

    def __init__(self, value):
        super().__init__(value=value)
        self.value = value

    def _init_weight(self, _, arr) -> None:
        value = self.value.asnumpy() if isinstance(self.value, NDArray) else self.value
        _assign(arr, np.broadcast_to(np.asarray(value), tuple(arr.shape)))

    def dumps(self) -> str:
        value = self._kwargs["value"]
        if not np.isscalar(value):
            value = value.asnumpy() if isinstance(value, NDArray) else np.asarray(value)
            value = value.tolist()
        return json.dumps([self.__class__.__name__.lower(), {**self._kwargs, "value": value}])


@register
class Uniform(Initializer):
    """Weights drawn from U(-scale, scale)."""

    def __init__(self, scale=0.07):
        super().__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, _, arr) -> None:
        uniform(-self.scale, self.scale, out=arr)


@register
class Normal(Initializer):
    """Weights drawn from N(0, sigma**2)."""

    def __init__(self, sigma=0.01):
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, _, arr) -> None:
        normal(0, self.sigma, out=arr)


@register
class Orthogonal(Initializer):
    """A scaled orthogonal matrix (Saxe et al. 2013): rows orthonormal when out <= prod(in dims).

    The singular vectors of a `rand_type` ('uniform' or 'normal') random matrix, times `scale`.
    """

    def __init__(self, scale=1.414, rand_type="uniform"):
        super().__init__(scale=scale, rand_type=rand_type)
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, _, arr) -> None:
        nout = arr.shape[0]
        nin = int(np.prod(arr.shape[1:]))
        if self.rand_type == "uniform":
            tmp = random.generator().uniform(-1.0, 1.0, size=(nout, nin))
        elif self.rand_type == "normal":
            tmp = random.generator().normal(0.0, 1.0, size=(nout, nin))
        else:
            raise ValueError(f"Unknown rand_type {self.rand_type!r}; expected 'uniform' or 'normal'")
        u, _, v = np.linalg.svd(tmp, full_matrices=False)
        res = u if u.shape == tmp.shape else v
        _assign(arr, self.scale * res.reshape(arr.shape))


@register
class Xavier(Initializer):
    """Weights scaled by fan: U(-s, s) ('uniform') or N(0, s**2) ('gaussian'), s = sqrt(magnitude / f).

    For a weight `(out, in, *kernel)`, fan_in = in * prod(kernel), fan_out = out * prod(kernel), and
    f is their mean ('avg'), fan_in ('in') or fan_out ('out').
    """

    def __init__(self, rnd_type="uniform", factor_type="avg", magnitude=3):
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = float(magnitude)

    def _init_weight(self, name, arr) -> None:
        shape = arr.shape
        if len(shape) < 2:
            raise ValueError(
                f"Xavier initializer cannot be applied to vector {name}. It requires at least 2D."
            )
        receptive_field = float(np.prod(shape[2:])) if len(shape) > 2 else 1.0
        fan_in, fan_out = shape[1] * receptive_field, shape[0] * receptive_field
        factors = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}
        if self.factor_type not in factors:
            raise ValueError(f"Incorrect factor type {self.factor_type!r}; expected 'avg', 'in' or 'out'")
        scale = math.sqrt(self.magnitude / factors[self.factor_type])
        if self.rnd_type == "uniform":
            uniform(-scale, scale, out=arr)
        elif self.rnd_type == "gaussian":
            normal(0, scale, out=arr)
        else:
            raise ValueError(f"Unknown random type {self.rnd_type!r}; expected 'uniform' or 'gaussian'")


@register
class MSRAPrelu(Xavier):
    """He et al.'s initialization for (P)ReLU nets: gaussian Xavier with magnitude 2 / (1 + slope**2)."""

    def __init__(self, factor_type="avg", slope=0.25):
        super().__init__("gaussian", factor_type, 2.0 / (1 + slope**2))
        self._kwargs = {"factor_type": factor_type, "slope": slope}


@register
class Bilinear(Initializer):
    """The bilinear-interpolation kernel, for the weight of an upsampling Deconvolution."""

    def _init_weight(self, _, arr) -> None:
        _assign(arr, bilinear_kernel(arr.shape))


@register
class LSTMBias(Initializer):
    """LSTM biases: 0, except `forget_bias` on the forget gate (the second of the four gates)."""

    def __init__(self, forget_bias=1.0):
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _init_weight(self, name, arr) -> None:
        values = np.zeros(arr.shape)
        num_hidden = arr.shape[0] // 4
        values[num_hidden : 2 * num_hidden] = self.forget_bias
        _assign(arr, values)

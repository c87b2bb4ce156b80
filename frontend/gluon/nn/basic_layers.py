"""Gluon's basic layers (MXNet 1.9.1's `gluon.nn.basic_layers`): containers, Dense, Dropout, Flatten,
Lambda and Identity. Parameter names, prefixes and reprs follow MXNet 1.x (`dense0_weight`)."""

from __future__ import annotations

import warnings

from ... import ndarray
from ..block import Block, HybridBlock
from ..errors import InvalidValue
from .activations import Activation


class _Container:
    """What Sequential and HybridSequential share: children added in order, indexing and slicing."""

    _summary_row = False  # `summary()` shows the children, not the container

    def add(self, *blocks) -> None:
        """Append `blocks`."""
        for block in blocks:
            self.register_child(block)

    def _run_children(self, x):
        for block in self._children.values():
            x = block(x)
        return x

    def __getitem__(self, key):
        layers = list(self._children.values())[key]
        if not isinstance(layers, list):
            return layers
        net = type(self)(prefix=self._prefix)
        with net.name_scope():
            net.add(*layers)
        return net

    def __len__(self) -> int:
        return len(self._children)


class Sequential(_Container, Block):
    """Children run one after another (`add` appends)."""

    def forward(self, x):
        return self._run_children(x)

    def hybridize(self, active=True, **kwargs) -> None:
        if self._children and all(isinstance(c, HybridBlock) for c in self._children.values()):
            warnings.warn(
                f"All children of this Sequential layer '{self.prefix}' are HybridBlocks. Consider using "
                "HybridSequential for the best performance.",
                stacklevel=2,
            )
        super().hybridize(active, **kwargs)


class HybridSequential(_Container, HybridBlock):
    """Sequential whose children are HybridBlocks: the whole stack traces into one graph."""

    def hybrid_forward(self, F, x):
        return self._run_children(x)


class Dense(HybridBlock):
    """`y = activation(x W^T + b)`; `in_units=0` leaves the input size to the first call."""

    def __init__(self, units, activation=None, use_bias=True, flatten=True, dtype="float32",
                 weight_initializer=None, bias_initializer="zeros", in_units=0, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self._flatten = flatten
        with self.name_scope():
            self._units = units
            self._in_units = in_units
            self.weight = self.params.get("weight", shape=(units, in_units), init=weight_initializer,
                                          dtype=dtype, allow_deferred_init=True)  # fmt: skip
            if use_bias:
                self.bias = self.params.get("bias", shape=(units,), init=bias_initializer, dtype=dtype,
                                            allow_deferred_init=True)  # fmt: skip
            else:
                self.bias = None
            self.act = Activation(activation, prefix=activation + "_") if activation is not None else None

    def hybrid_forward(self, F, x, weight, bias=None):
        out = F.FullyConnected(x, weight, bias, no_bias=bias is None, num_hidden=self._units,
                               flatten=self._flatten, name="fwd")  # fmt: skip
        return self.act(out) if self.act is not None else out

    def __repr__(self) -> str:
        shape = self.weight.shape
        act = self.act if self.act else "linear"
        return f"{self.__class__.__name__}({shape[1] if shape[1] else None} -> {shape[0]}, {act})"


class Dropout(HybridBlock):
    """Zeroes elements with probability `rate` while training (scaled by 1/(1-rate)), along `axes`."""

    def __init__(self, rate, axes=(), **kwargs):
        super().__init__(**kwargs)
        self._rate = rate
        self._axes = axes

    def hybrid_forward(self, F, x):
        if self._rate > 0:
            return F.Dropout(x, p=self._rate, axes=self._axes, name="fwd", cudnn_off=False)
        return F.identity(x)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p = {self._rate}, axes={self._axes})"


class Flatten(HybridBlock):
    """Collapses every axis but the first."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def hybrid_forward(self, F, x):
        return F.Flatten(x)

    def __repr__(self) -> str:
        return self.__class__.__name__


class Identity(HybridBlock):
    """Returns its input."""

    def __init__(self, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)

    def hybrid_forward(self, F, x):
        return x


class Lambda(Block):
    """Wraps a function of NDArrays (or the name of an `mx.nd` function) as a Block."""

    def __init__(self, function, prefix=None):
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            if not hasattr(ndarray, function):
                raise InvalidValue(f"Function name {function} is not found in ndarray.")
            self._func_impl = getattr(ndarray, function)
        elif callable(function):
            self._func_impl = function
        else:
            raise InvalidValue(f"Unrecognized function in lambda: {function} of type {type(function)}")

    def forward(self, *args):
        return self._func_impl(*args)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._func_impl.__name__})"


class HybridLambda(HybridBlock):
    """Wraps a function `f(F, *args)` (or the name of a function both `mx.nd` and `mx.sym` have)."""

    _runs_user_code = True

    def __init__(self, function, prefix=None):
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            from ... import symbol

            if not hasattr(ndarray, function) or not hasattr(symbol, function):
                raise InvalidValue(f"Function name {function} is not found in symbol/ndarray.")
            self._func_name = function
            self._func = lambda F, *args: getattr(F, function)(*args)
        elif callable(function):
            self._func_name = function.__name__
            self._func = function
        else:
            raise InvalidValue(f"Unrecognized function in lambda: {function} of type {type(function)}")

    def hybrid_forward(self, F, x, *args):
        return self._func(F, x, *args)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._func_name})"

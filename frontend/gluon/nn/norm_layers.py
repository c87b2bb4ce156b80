"""Gluon's normalization layers, Embedding and the concurrent containers (MXNet 1.9.1 keeps them in
`gluon.nn.basic_layers` and `gluon.contrib.nn`). Parameter names (`batchnorm0_gamma`, `running_mean`...),
their grad_req and initializers, reprs and deferred initialization of `in_channels` follow MXNet 1.x.
"""

from __future__ import annotations

import numpy as np

from ember.runtime.errors import MXNetError, ShapeError

from ... import ndarray
from ...ndarray import NDArray
from ..block import HybridBlock
from .basic_layers import HybridSequential, Sequential


def _kwargs_repr(kwargs: dict) -> str:
    """`key=repr(value)` joined by commas, in the kwargs' order (MXNet's norm-layer reprs)."""
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())


def _scale_and_shift(block: HybridBlock, channels: int, scale: bool, center: bool, gamma_init, beta_init):
    """The `gamma` and `beta` Parameters of a normalization layer; grad_req 'null' when unused."""
    for name, used, init in (("gamma", scale, gamma_init), ("beta", center, beta_init)):
        param = block.params.get(name, grad_req="write" if used else "null", shape=(channels,), init=init,
                                 allow_deferred_init=True, differentiable=used)  # fmt: skip
        setattr(block, name, param)


def _check_channels(block: HybridBlock, x, axis: int) -> None:
    """ShapeError naming `block` when the NDArray `x` lacks `axis` or its size there contradicts the
    (known) size of gamma."""
    if not isinstance(x, NDArray):
        return
    if not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"{type(block).__name__} ({block.name}): axis {axis} is out of range for input of "
                         f"shape {x.shape}")  # fmt: skip
    expected = block.gamma.shape[0]
    if expected and x.shape[axis] != expected:
        raise ShapeError(
            f"{type(block).__name__} ({block.name}) has parameters for {expected} channels, got input of "
            f"shape {x.shape} with {x.shape[axis]} on axis {axis}"
        )


# ---------------------------------------------------------------------------------------------
# BatchNorm


class _BatchNorm(HybridBlock):
    """BatchNorm's body: four Parameters (gamma, beta, running_mean, running_var) and one BatchNorm op;
    `fuse_relu` applies relu after it (BatchNormReLU)."""

    def __init__(self, axis=1, momentum=0.9, epsilon=1e-5, center=True, scale=True, use_global_stats=False,
                 fuse_relu=False, beta_initializer="zeros", gamma_initializer="ones",
                 running_mean_initializer="zeros", running_variance_initializer="ones", in_channels=0,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self._kwargs = {"axis": axis, "eps": epsilon, "momentum": momentum, "fix_gamma": not scale,
                        "use_global_stats": use_global_stats}  # fmt: skip
        self.fuse_relu = fuse_relu
        if in_channels != 0:
            self.in_channels = in_channels
        _scale_and_shift(self, in_channels, scale, center, gamma_initializer, beta_initializer)
        self.running_mean = self.params.get("running_mean", grad_req="null", shape=(in_channels,),
                                            init=running_mean_initializer, allow_deferred_init=True,
                                            differentiable=False)  # fmt: skip
        self.running_var = self.params.get("running_var", grad_req="null", shape=(in_channels,),
                                           init=running_variance_initializer, allow_deferred_init=True,
                                           differentiable=False)  # fmt: skip

    def cast(self, dtype) -> None:
        """As MXNet: float16 BatchNorm keeps float32 parameters (the op computes in float32)."""
        super().cast("float32" if np.dtype(dtype).name == "float16" else dtype)

    def forward(self, x, *args):
        _check_channels(self, x, self._kwargs["axis"])
        return super().forward(x, *args)

    def hybrid_forward(self, F, x, gamma, beta, running_mean, running_var):
        out = F.BatchNorm(x, gamma, beta, running_mean, running_var, name="fwd", **self._kwargs)
        # MXNet fuses this into _contrib_BatchNormWithReLU; Ember composes the two registry ops
        return F.relu(out) if self.fuse_relu else out

    def __repr__(self) -> str:
        channels = self.gamma.shape[0] or None
        return f"{type(self).__name__}({_kwargs_repr(self._kwargs)}, in_channels={channels})"


class BatchNorm(_BatchNorm):
    """Normalizes each channel (`axis`) by the batch's mean and variance while training, by the running
    statistics otherwise; the running statistics move towards the batch's by `1 - momentum` per step."""

    def __init__(self, axis=1, momentum=0.9, epsilon=1e-5, center=True, scale=True, use_global_stats=False,
                 beta_initializer="zeros", gamma_initializer="ones", running_mean_initializer="zeros",
                 running_variance_initializer="ones", in_channels=0, **kwargs):  # fmt: skip
        super().__init__(axis, momentum, epsilon, center, scale, use_global_stats, False, beta_initializer,
                         gamma_initializer, running_mean_initializer, running_variance_initializer,
                         in_channels, **kwargs)  # fmt: skip


class BatchNormReLU(_BatchNorm):
    """BatchNorm followed by relu."""

    def __init__(self, axis=1, momentum=0.9, epsilon=1e-5, center=True, scale=True, use_global_stats=False,
                 beta_initializer="zeros", gamma_initializer="ones", running_mean_initializer="zeros",
                 running_variance_initializer="ones", in_channels=0, **kwargs):  # fmt: skip
        super().__init__(axis, momentum, epsilon, center, scale, use_global_stats, True, beta_initializer,
                         gamma_initializer, running_mean_initializer, running_variance_initializer,
                         in_channels, **kwargs)  # fmt: skip


class SyncBatchNorm(BatchNorm):
    """BatchNorm whose statistics MXNet gathers across `num_devices` GPUs (gluon.contrib.nn). Ember runs
    one device per process, so only `num_devices=1` is accepted, where it is BatchNorm over axis 1."""

    def __init__(self, in_channels=0, num_devices=None, momentum=0.9, epsilon=1e-5, center=True, scale=True,
                 use_global_stats=False, beta_initializer="zeros", gamma_initializer="ones",
                 running_mean_initializer="zeros", running_variance_initializer="ones",
                 **kwargs):  # fmt: skip
        super().__init__(1, momentum, epsilon, center, scale, use_global_stats, beta_initializer,
                         gamma_initializer, running_mean_initializer, running_variance_initializer,
                         in_channels, **kwargs)  # fmt: skip
        num_devices = 1 if num_devices is None else num_devices
        if num_devices != 1:
            raise MXNetError(
                f"SyncBatchNorm ({self.name}): num_devices={num_devices} is not supported: Ember "
                "synchronizes no statistics across devices (use num_devices=1)"
            )
        self._kwargs = {"eps": epsilon, "momentum": momentum, "fix_gamma": not scale,
                        "use_global_stats": use_global_stats, "ndev": num_devices,
                        "key": self.prefix}  # fmt: skip

    def forward(self, x, *args):
        _check_channels(self, x, 1)
        return HybridBlock.forward(self, x, *args)

    def hybrid_forward(self, F, x, gamma, beta, running_mean, running_var):
        stats = {key: self._kwargs[key] for key in ("eps", "momentum", "fix_gamma", "use_global_stats")}
        return F.BatchNorm(x, gamma, beta, running_mean, running_var, name="fwd", axis=1, **stats)


# ---------------------------------------------------------------------------------------------
# Layer, instance and group normalization


class _ChannelNorm(HybridBlock):
    """The repr the three normalization layers share (their op named by `op`)."""

    op = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_kwargs_repr(self._kwargs)}, in_channels={self.gamma.shape[0]})"


class InstanceNorm(_ChannelNorm):
    """Normalizes each sample's each channel (`axis`) over its spatial axes."""

    op = "InstanceNorm"

    def __init__(self, axis=1, epsilon=1e-5, center=True, scale=False, beta_initializer="zeros",
                 gamma_initializer="ones", in_channels=0, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self._kwargs = {"eps": epsilon, "axis": axis, "center": center, "scale": scale}
        self._axis = axis
        self._epsilon = epsilon
        _scale_and_shift(self, in_channels, scale, center, gamma_initializer, beta_initializer)

    def hybrid_forward(self, F, x, gamma, beta):
        if self._axis == 1:
            return F.InstanceNorm(x, gamma, beta, name="fwd", eps=self._epsilon)
        x = x.swapaxes(1, self._axis)
        return F.InstanceNorm(x, gamma, beta, name="fwd", eps=self._epsilon).swapaxes(1, self._axis)


class LayerNorm(_ChannelNorm):
    """Normalizes each sample over `axis` (default the last)."""

    op = "LayerNorm"

    def __init__(self, axis=-1, epsilon=1e-5, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", in_channels=0, prefix=None, params=None):  # fmt: skip
        super().__init__(prefix=prefix, params=params)
        self._kwargs = {"eps": epsilon, "axis": axis, "center": center, "scale": scale}
        self._axis = axis
        self._epsilon = epsilon
        self._center = center
        self._scale = scale
        _scale_and_shift(self, in_channels, scale, center, gamma_initializer, beta_initializer)

    def hybrid_forward(self, F, data, gamma, beta):
        return F.LayerNorm(data, gamma=gamma, beta=beta, axis=self._axis, eps=self._epsilon)


class GroupNorm(_ChannelNorm):
    """Normalizes each sample's channels in `num_groups` groups; gamma and beta have one entry per group."""

    op = "GroupNorm"

    def __init__(self, num_groups=1, epsilon=1e-5, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", prefix=None, params=None):  # fmt: skip
        super().__init__(prefix=prefix, params=params)
        self._kwargs = {"eps": epsilon, "num_groups": num_groups, "center": center, "scale": scale}
        self._num_groups = num_groups
        self._epsilon = epsilon
        self._center = center
        self._scale = scale
        _scale_and_shift(self, num_groups, scale, center, gamma_initializer, beta_initializer)

    def hybrid_forward(self, F, data, gamma, beta):
        return F.GroupNorm(data, gamma=gamma, beta=beta, num_groups=self._num_groups, eps=self._epsilon)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_kwargs_repr(self._kwargs)})"


# ---------------------------------------------------------------------------------------------
# Embedding


class Embedding(HybridBlock):
    """Maps integer indices (any shape) to rows of a learned (input_dim, output_dim) weight."""

    def __init__(self, input_dim, output_dim, dtype="float32", weight_initializer=None, sparse_grad=False,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if sparse_grad:
            raise MXNetError(
                f"Embedding ({self.name}): sparse_grad=True needs row_sparse gradients, which Ember does not "
                "support (it has dense arrays only): use sparse_grad=False"
            )
        self._kwargs = {"input_dim": input_dim, "output_dim": output_dim, "dtype": dtype,
                        "sparse_grad": sparse_grad}  # fmt: skip
        self.weight = self.params.get("weight", shape=(input_dim, output_dim), init=weight_initializer,
                                      dtype=dtype, allow_deferred_init=True)  # fmt: skip

    def hybrid_forward(self, F, x, weight):
        return F.Embedding(x, weight, name="fwd", **self._kwargs)

    def __repr__(self) -> str:
        kw = self._kwargs
        return f"{type(self).__name__}({kw['input_dim']} -> {kw['output_dim']}, {kw['dtype']})"


# ---------------------------------------------------------------------------------------------
# Concurrent containers (gluon.contrib.nn in MXNet 1.9.1)


class Concurrent(Sequential):
    """Feeds the input to every child and concatenates their outputs along `axis`."""

    def __init__(self, axis=-1, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        self.axis = axis

    def forward(self, x):
        return ndarray.concat(*(block(x) for block in self._children.values()), dim=self.axis)


class HybridConcurrent(HybridSequential):
    """Concurrent whose children are HybridBlocks: traces into one graph."""

    def __init__(self, axis=-1, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        self.axis = axis

    def hybrid_forward(self, F, x):
        return F.concat(*(block(x) for block in self._children.values()), dim=self.axis)


__all__ = [
    "BatchNorm", "BatchNormReLU", "Concurrent", "Embedding", "GroupNorm", "HybridConcurrent", "InstanceNorm",
    "LayerNorm", "SyncBatchNorm",
]  # fmt: skip

"""Gluon's convolution, transposed-convolution, pooling and padding layers (MXNet 1.9.1's
`gluon.nn.conv_layers`). Each layer calls one registry op through `F` (Convolution, Deconvolution, Pooling,
pad); parameter names (`conv0_weight`), weight shapes per layout, reprs, constructor checks and deferred
initialization of `in_channels` follow MXNet 1.x.
"""

from __future__ import annotations

from numbers import Number

from ember.runtime.errors import MXNetError, ShapeError

from ...ndarray import NDArray
from ..block import HybridBlock
from ..errors import check
from .activations import Activation


def _per_axis(value, count: int):
    """An int repeated once per spatial axis; a tuple or list as given (MXNet keeps it as is)."""
    return (value,) * count if isinstance(value, Number) else value


def _check_rank(layer: HybridBlock, x, layout: str) -> None:
    """ShapeError naming `layer` when the NDArray `x` does not have one axis per letter of `layout`."""
    if isinstance(x, NDArray) and x.ndim != len(layout):
        raise ShapeError(
            f"{type(layer).__name__} ({layer.name}) expects {len(layout)}-D input in layout {layout}, "
            f"got shape {x.shape}"
        )


def _in_layout(out_axis: int, in_axis: int, kernel, layout: str) -> tuple:
    """A kernel-shaped array's shape in `layout`: `out_axis` where N is, `in_axis` where C is, the
    kernel sizes on the spatial axes (MXNet stores weights in the data's layout: OIHW, OHWI...)."""
    spatial = iter(kernel)
    return tuple(out_axis if a == "N" else in_axis if a == "C" else next(spatial) for a in layout)


# ---------------------------------------------------------------------------------------------
# Convolution and transposed convolution


class _Conv(HybridBlock):
    """The shared body of ConvND and ConvNDTranspose: weight (and bias) Parameters shaped by the op
    (`op_name`: Convolution or Deconvolution) and the layout, and an optional activation after it."""

    def __init__(self, channels, kernel_size, strides, padding, dilation, groups, layout, in_channels=0,
                 activation=None, use_bias=True, weight_initializer=None, bias_initializer="zeros",
                 op_name="Convolution", adj=None, prefix=None, params=None):  # fmt: skip
        super().__init__(prefix=prefix, params=params)
        with self.name_scope():
            self._channels = channels
            self._in_channels = in_channels
            dims = len(kernel_size)
            self._op_name = op_name
            self._kwargs = {
                "kernel": kernel_size, "stride": _per_axis(strides, dims),
                "dilate": _per_axis(dilation, dims), "pad": _per_axis(padding, dims), "num_filter": channels,
                "num_group": groups, "no_bias": not use_bias, "layout": layout,
            }  # fmt: skip
            if adj is not None:
                self._kwargs["adj"] = adj
            self._check_geometry()
            self.weight = self.params.get("weight", shape=self._weight_shape(), init=weight_initializer,
                                          allow_deferred_init=True)  # fmt: skip
            if use_bias:
                self.bias = self.params.get("bias", shape=(channels,), init=bias_initializer,
                                            allow_deferred_init=True)  # fmt: skip
            else:
                self.bias = None
            self.act = Activation(activation, prefix=activation + "_") if activation is not None else None

    def _check_geometry(self) -> None:
        """MXNetError where the op would refuse the arguments (MXNet finds these at construction too)."""
        kw, dims, layer = self._kwargs, len(self._kwargs["kernel"]), type(self).__name__
        for label, value in (("strides", kw["stride"]), ("padding", kw["pad"]), ("dilation", kw["dilate"])):
            if len(value) != dims:
                raise MXNetError(
                    f"{layer}: {label} {value} must have one entry per kernel axis, as kernel_size "
                    f"{kw['kernel']} has"
                )
        groups = kw["num_group"]
        for label, count in (("channels", self._channels), ("in_channels", self._in_channels)):
            if count % groups:
                raise MXNetError(f"{layer}: {label}={count} must be a multiple of groups={groups}")

    def _transposed(self) -> bool:
        return self._op_name == "Deconvolution"

    def _weight_shape(self) -> tuple:
        """Convolution: (channels, in_channels / groups, *kernel); Deconvolution: (in_channels,
        channels / groups, *kernel); both in the layout's axis order. 0 marks what the input decides."""
        groups, kernel, layout = self._kwargs["num_group"], self._kwargs["kernel"], self._kwargs["layout"]
        if self._transposed():
            return _in_layout(self._in_channels, self._channels // groups, kernel, layout)
        return _in_layout(self._channels, self._in_channels // groups, kernel, layout)

    def _expected_in_channels(self) -> int:
        """The input channels the (initialized) weight fits; 0 while unknown."""
        shape, layout = self.weight.shape, self._kwargs["layout"]
        if self._transposed():
            return shape[layout.index("N")]
        return shape[layout.index("C")] * self._kwargs["num_group"]

    def forward(self, x, *args):
        layout = self._kwargs["layout"]
        _check_rank(self, x, layout)
        expected = self._expected_in_channels()
        if isinstance(x, NDArray) and expected and x.shape[layout.index("C")] != expected:
            raise ShapeError(
                f"{type(self).__name__} ({self.name}) has weights for {expected} input channels, got input "
                f"of shape {x.shape} with {x.shape[layout.index('C')]} channels (layout {layout})"
            )
        return super().forward(x, *args)

    def hybrid_forward(self, F, x, weight, bias=None):
        op = getattr(F, self._op_name)
        inputs = (x, weight) if bias is None else (x, weight, bias)
        out = op(*inputs, name="fwd", **self._kwargs)
        return self.act(out) if self.act is not None else out

    def _alias(self) -> str:
        return "conv"

    def __repr__(self) -> str:
        kw, dims = self._kwargs, len(self._kwargs["kernel"])
        shape = self.weight.shape
        parts = [f"{shape[1] if shape[1] else None} -> {shape[0]}", f"kernel_size={kw['kernel']}",
                 f"stride={kw['stride']}"]  # fmt: skip
        # MXNet compares with tuples, so a list argument is always shown; output_padding never is
        optional = (("padding", kw["pad"], (0,) * dims), ("dilation", kw["dilate"], (1,) * dims),
                    ("groups", kw["num_group"], 1))  # fmt: skip
        parts += [f"{label}={value}" for label, value, default in optional if value != default]
        if self.bias is None:
            parts.append("bias=False")
        if self.act:
            parts.append(repr(self.act))
        return f"{type(self).__name__}({', '.join(parts)})"


def _conv_args(dims: int, kernel_size, layout: str, layouts: tuple, layout_message: str, output_padding=None,
               kwargs=None):  # fmt: skip
    """Checks shared by the ConvND constructors: (kernel_size tuple, output_padding tuple, op_name)."""
    check(layout in layouts, layout_message)
    kernel_size = _per_axis(kernel_size, dims)
    check(len(kernel_size) == dims, f"kernel_size must be a number or a list of {dims} ints")
    if output_padding is not None:
        output_padding = _per_axis(output_padding, dims)
        check(len(output_padding) == dims, f"output_padding must be a number or a list of {dims} ints")
    default_op = "Convolution" if output_padding is None else "Deconvolution"
    return kernel_size, output_padding, kwargs.pop("op_name", default_op)


_LAYOUT_MESSAGES = {
    1: (("NCW",), "Only supports 'NCW' layout for now"),
    2: (("NCHW", "NHWC"), "Only supports 'NCHW' and 'NHWC' layout for now"),
    3: (("NCDHW", "NDHWC"), "Only supports 'NCDHW' and 'NDHWC' layout for now"),
}


class Conv1D(_Conv):
    """1-D convolution over (batch, channels, width) input."""

    def __init__(self, channels, kernel_size, strides=1, padding=0, dilation=1, groups=1, layout="NCW",
                 activation=None, use_bias=True, weight_initializer=None, bias_initializer="zeros",
                 in_channels=0, **kwargs):  # fmt: skip
        kernel_size, _, op_name = _conv_args(1, kernel_size, layout, *_LAYOUT_MESSAGES[1], kwargs=kwargs)
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
                         activation, use_bias, weight_initializer, bias_initializer, op_name,
                         **kwargs)  # fmt: skip


class Conv2D(_Conv):
    """2-D convolution over NCHW (or NHWC) input."""

    def __init__(self, channels, kernel_size, strides=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                 layout="NCHW", activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer="zeros", in_channels=0, **kwargs):  # fmt: skip
        kernel_size, _, op_name = _conv_args(2, kernel_size, layout, *_LAYOUT_MESSAGES[2], kwargs=kwargs)
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
                         activation, use_bias, weight_initializer, bias_initializer, op_name,
                         **kwargs)  # fmt: skip


class Conv3D(_Conv):
    """3-D convolution over NCDHW (or NDHWC) input."""

    def __init__(self, channels, kernel_size, strides=(1, 1, 1), padding=(0, 0, 0), dilation=(1, 1, 1),
                 groups=1, layout="NCDHW", activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer="zeros", in_channels=0, **kwargs):  # fmt: skip
        kernel_size, _, op_name = _conv_args(3, kernel_size, layout, *_LAYOUT_MESSAGES[3], kwargs=kwargs)
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
                         activation, use_bias, weight_initializer, bias_initializer, op_name,
                         **kwargs)  # fmt: skip


class Conv1DTranspose(_Conv):
    """1-D transposed convolution (Deconvolution); `output_padding` adds cells at the end of the output."""

    def __init__(self, channels, kernel_size, strides=1, padding=0, output_padding=0, dilation=1, groups=1,
                 layout="NCW", activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer="zeros", in_channels=0, **kwargs):  # fmt: skip
        kernel_size, output_padding, op_name = _conv_args(1, kernel_size, layout, *_LAYOUT_MESSAGES[1],
                                                          output_padding, kwargs)  # fmt: skip
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
                         activation, use_bias, weight_initializer, bias_initializer, op_name=op_name,
                         adj=output_padding, **kwargs)  # fmt: skip
        self.outpad = output_padding


class Conv2DTranspose(_Conv):
    """2-D transposed convolution (Deconvolution) over NCHW (or NHWC) input."""

    def __init__(self, channels, kernel_size, strides=(1, 1), padding=(0, 0), output_padding=(0, 0),
                 dilation=(1, 1), groups=1, layout="NCHW", activation=None, use_bias=True,
                 weight_initializer=None, bias_initializer="zeros", in_channels=0, **kwargs):  # fmt: skip
        kernel_size, output_padding, op_name = _conv_args(2, kernel_size, layout, *_LAYOUT_MESSAGES[2],
                                                          output_padding, kwargs)  # fmt: skip
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
                         activation, use_bias, weight_initializer, bias_initializer, op_name=op_name,
                         adj=output_padding, **kwargs)  # fmt: skip
        self.outpad = output_padding


class Conv3DTranspose(_Conv):
    """3-D transposed convolution (Deconvolution) over NCDHW (or NDHWC) input."""

    def __init__(self, channels, kernel_size, strides=(1, 1, 1), padding=(0, 0, 0), output_padding=(0, 0, 0),
                 dilation=(1, 1, 1), groups=1, layout="NCDHW", activation=None, use_bias=True,
                 weight_initializer=None, bias_initializer="zeros", in_channels=0, **kwargs):  # fmt: skip
        kernel_size, output_padding, op_name = _conv_args(3, kernel_size, layout, *_LAYOUT_MESSAGES[3],
                                                          output_padding, kwargs)  # fmt: skip
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
                         activation, use_bias, weight_initializer, bias_initializer, op_name=op_name,
                         adj=output_padding, **kwargs)  # fmt: skip
        self.outpad = output_padding


# ---------------------------------------------------------------------------------------------
# Pooling


class _Pooling(HybridBlock):
    """The shared body of the pooling layers: one Pooling op; `strides=None` means the pool size and
    `ceil_mode` is MXNet's 'full' pooling convention."""

    def __init__(self, pool_size, strides, padding, ceil_mode, global_pool, pool_type, layout,
                 count_include_pad=None, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        dims = len(pool_size)
        self._kwargs = {
            "kernel": pool_size, "stride": _per_axis(pool_size if strides is None else strides, dims),
            "pad": _per_axis(padding, dims), "global_pool": global_pool, "pool_type": pool_type,
            "layout": layout, "pooling_convention": "full" if ceil_mode else "valid",
        }  # fmt: skip
        if count_include_pad is not None:
            self._kwargs["count_include_pad"] = count_include_pad

    def _alias(self) -> str:
        return "pool"

    def forward(self, x, *args):
        _check_rank(self, x, self._kwargs["layout"])
        return super().forward(x, *args)

    def hybrid_forward(self, F, x):
        return F.Pooling(x, name="fwd", **self._kwargs)

    def __repr__(self) -> str:
        kw = self._kwargs
        return (
            f"{type(self).__name__}(size={kw['kernel']}, stride={kw['stride']}, padding={kw['pad']}, "
            f"ceil_mode={kw['pooling_convention'] == 'full'}, global_pool={kw['global_pool']}, "
            f"pool_type={kw['pool_type']}, layout={kw['layout']})"
        )


# spatial dims -> (layouts, MXNet's message for another layout)
_POOL_LAYOUTS = {
    1: (("NCW", "NWC"), "Only NCW and NWC layouts are valid for 1D Pooling"),
    2: (("NCHW", "NHWC"), "Only NCHW and NHWC layouts are valid for 2D Pooling"),
    3: (("NCDHW", "NDHWC"), "Only NCDHW and NDHWC layouts are valid for 3D Pooling"),
}


def _pool_size(dims: int, pool_size, layout: str) -> tuple:
    """MXNet's constructor checks: the layout fits `dims` and pool_size has `dims` entries."""
    layouts, message = _POOL_LAYOUTS[dims]
    check(layout in layouts, message)
    pool_size = _per_axis(pool_size, dims)
    check(len(pool_size) == dims, f"pool_size must be a number or a list of {dims} ints")
    return pool_size


class MaxPool1D(_Pooling):
    """Max over windows of the width axis."""

    def __init__(self, pool_size=2, strides=None, padding=0, layout="NCW", ceil_mode=False, **kwargs):
        super().__init__(_pool_size(1, pool_size, layout), strides, padding, ceil_mode, False, "max", layout,
                         **kwargs)  # fmt: skip


class MaxPool2D(_Pooling):
    """Max over 2-D windows."""

    def __init__(self, pool_size=(2, 2), strides=None, padding=0, layout="NCHW", ceil_mode=False, **kwargs):
        super().__init__(_pool_size(2, pool_size, layout), strides, padding, ceil_mode, False, "max", layout,
                         **kwargs)  # fmt: skip


class MaxPool3D(_Pooling):
    """Max over 3-D windows."""

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding=0, ceil_mode=False, layout="NCDHW",
                 **kwargs):  # fmt: skip
        super().__init__(_pool_size(3, pool_size, layout), strides, padding, ceil_mode, False, "max", layout,
                         **kwargs)  # fmt: skip


class AvgPool1D(_Pooling):
    """Mean over windows of the width axis; `count_include_pad` counts padded cells in the divisor."""

    def __init__(self, pool_size=2, strides=None, padding=0, layout="NCW", ceil_mode=False,
                 count_include_pad=True, **kwargs):  # fmt: skip
        super().__init__(_pool_size(1, pool_size, layout), strides, padding, ceil_mode, False, "avg", layout,
                         count_include_pad, **kwargs)  # fmt: skip


class AvgPool2D(_Pooling):
    """Mean over 2-D windows."""

    def __init__(self, pool_size=(2, 2), strides=None, padding=0, ceil_mode=False, layout="NCHW",
                 count_include_pad=True, **kwargs):  # fmt: skip
        super().__init__(_pool_size(2, pool_size, layout), strides, padding, ceil_mode, False, "avg", layout,
                         count_include_pad, **kwargs)  # fmt: skip


class AvgPool3D(_Pooling):
    """Mean over 3-D windows."""

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding=0, ceil_mode=False, layout="NCDHW",
                 count_include_pad=True, **kwargs):  # fmt: skip
        super().__init__(_pool_size(3, pool_size, layout), strides, padding, ceil_mode, False, "avg", layout,
                         count_include_pad, **kwargs)  # fmt: skip


class _GlobalPooling(_Pooling):
    """Pooling over the whole spatial extent (one output cell per channel)."""

    dims, pool_type = 0, ""

    def __init__(self, layout, **kwargs):
        ones = _pool_size(self.dims, 1, layout)
        super().__init__(ones, None, 0, True, True, self.pool_type, layout, **kwargs)


class GlobalMaxPool1D(_GlobalPooling):
    """Max over the width axis."""

    dims, pool_type = 1, "max"

    def __init__(self, layout="NCW", **kwargs):
        super().__init__(layout, **kwargs)


class GlobalMaxPool2D(_GlobalPooling):
    """Max over both spatial axes."""

    dims, pool_type = 2, "max"

    def __init__(self, layout="NCHW", **kwargs):
        super().__init__(layout, **kwargs)


class GlobalMaxPool3D(_GlobalPooling):
    """Max over the three spatial axes."""

    dims, pool_type = 3, "max"

    def __init__(self, layout="NCDHW", **kwargs):
        super().__init__(layout, **kwargs)


class GlobalAvgPool1D(_GlobalPooling):
    """Mean over the width axis."""

    dims, pool_type = 1, "avg"

    def __init__(self, layout="NCW", **kwargs):
        super().__init__(layout, **kwargs)


class GlobalAvgPool2D(_GlobalPooling):
    """Mean over both spatial axes."""

    dims, pool_type = 2, "avg"

    def __init__(self, layout="NCHW", **kwargs):
        super().__init__(layout, **kwargs)


class GlobalAvgPool3D(_GlobalPooling):
    """Mean over the three spatial axes."""

    dims, pool_type = 3, "avg"

    def __init__(self, layout="NCDHW", **kwargs):
        super().__init__(layout, **kwargs)


# ---------------------------------------------------------------------------------------------
# Padding


class ReflectionPad2D(HybridBlock):
    """Pads the two spatial axes of NCHW input with their reflection; `padding` is an int (every side)
    or the 8 widths (before, after) of the four axes, as `F.pad` takes them."""

    def __init__(self, padding=0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, Number):
            padding = (0, 0, 0, 0) + (padding,) * 4
        check(len(padding) == 8, f"ReflectionPad2D: padding must be an int or 8 widths, got {padding}")
        self._padding = padding

    def forward(self, x, *args):
        _check_rank(self, x, "NCHW")
        return super().forward(x, *args)

    def hybrid_forward(self, F, x):
        return F.pad(x, mode="reflect", pad_width=self._padding)


__all__ = [
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalAvgPool1D", "GlobalAvgPool2D",
    "GlobalAvgPool3D", "ReflectionPad2D",
]  # fmt: skip

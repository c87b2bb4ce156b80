"""MXNet's `mxnet.base` names: the exception classes users catch, and the small helpers user code imports
(`string_types`, `numeric_types`, `py_str`, `register_error`, `data_dir`, `classproperty`, ...).

The exception classes live in `ember.runtime.errors`; this module re-exports them and adds MXNet's two
message-formatting errors. MXNet's C-API plumbing (ctypes handles, `c_str`, `check_call`) has no
counterpart: Ember has no C library (tests/data/mxnet_api/base.json lists why each is left out).
"""

from __future__ import annotations

import os

import numpy as np

from ember.runtime.errors import (  # noqa: F401
    ArtifactError,
    CompileError,
    DeviceError,
    DiskFullError,
    EmberError,
    GraphError,
    MXNetError,
    ShapeError,
    TypeInferenceError,
)

__all__ = [
    "MXNetError",
    "EmberError",
    "ShapeError",
    "TypeInferenceError",
    "GraphError",
    "CompileError",
    "ArtifactError",
    "DiskFullError",
    "DeviceError",
    "NotImplementedForSymbol",
    "NotSupportedForSparseNDArray",
]

# Python 2 names MXNet 1.x still exports, and the type tuples its code (and user code) tests against.
basestring = str
long = int
string_types = (str,)
integer_types = (int, long, np.int32, np.int64)
numeric_types = (float, int, long, np.generic)
mx_real_t = np.float32

# Error class name -> class, as MXNet's FFI error handler looks them up (`register_error` adds to it).
error_types: dict[str, type] = {}


def py_str(x: bytes) -> str:
    """UTF-8 bytes (from a C string) as a str."""
    return x.decode("utf-8")


def register_error(func_name=None, cls=None):
    """Register an error class in `error_types` under its name (or `func_name`); usable as a decorator,
    `@register_error`, `@register_error("Name")`, or as a call `register_error("Name", cls)`."""
    if callable(func_name):
        func_name, cls = func_name.__name__, func_name

    def register(error_class):
        name = func_name if isinstance(func_name, str) else error_class.__name__
        error_types[name] = error_class
        return error_class

    return register if cls is None else register(cls)


def _unsupported_message(function, alias, args, what: str) -> str:
    """MXNet's text: 'Function f (namely operator "op") with arguments (<class ...>) is <what>.'"""
    message = f"Function {function}"
    if alias:
        message += f' (namely operator "{alias}")'
    if args:
        message += f" with arguments ({', '.join(args)})"
    return f"{message} is {what}."


class _NotForThisKind(MXNetError):
    """A function called on a kind of array it does not serve; `WHAT` says which."""

    WHAT = ""

    def __init__(self, function, alias, *args):
        super().__init__()
        self.function = function.__name__
        self.alias = alias
        self.args = [str(type(a)) for a in args]

    def __str__(self) -> str:
        return _unsupported_message(self.function, self.alias, self.args, self.WHAT)


@register_error
class NotImplementedForSymbol(_NotForThisKind):
    """A function that exists for NDArray only, called on a Symbol."""

    WHAT = "not implemented for Symbol and only available in NDArray"


class NotSupportedForSparseNDArray(_NotForThisKind):
    """A function that exists for dense NDArrays only, called on a sparse one."""

    WHAT = "not supported for SparseNDArray and only available in NDArray"


for _builtin in (ValueError, TypeError, AttributeError, IndexError, NotImplementedError):
    register_error(_builtin.__name__, _builtin)


def data_dir_default() -> str:
    """Where MXNet keeps downloaded data when MXNET_HOME is unset: ~/.mxnet (%APPDATA%\\mxnet on Windows)."""
    if os.name == "nt":
        return os.path.join(os.environ.get("APPDATA", ""), "mxnet")
    return os.path.join(os.path.expanduser("~"), ".mxnet")


def data_dir() -> str:
    """The data folder: $MXNET_HOME, else `data_dir_default()`."""
    return os.getenv("MXNET_HOME", data_dir_default())


class _ClassPropertyDescriptor:
    """A property read (and, with a `_ClassPropertyMeta` class, written) on the class itself."""

    def __init__(self, fget, fset=None):
        self.fget, self.fset = fget, fset

    def __get__(self, obj, cls=None):
        return self.fget(cls if cls is not None else type(obj))

    def __set__(self, obj, value):
        if self.fset is None:
            raise MXNetError("cannot set a class property that has no setter")
        return self.fset(obj if isinstance(obj, type) else type(obj), value)

    def setter(self, func):
        """Add the function that sets the property; returns the descriptor."""
        self.fset = func
        return self


class _ClassPropertyMeta(type):
    """Metaclass that sends `Cls.name = value` to a class property's setter."""

    def __setattr__(cls, key, value):
        descriptor = cls.__dict__.get(key)
        if isinstance(descriptor, _ClassPropertyDescriptor):
            return descriptor.__set__(cls, value)
        return super().__setattr__(key, value)


def classproperty(func):
    """Decorator: a read-only property of the class (settable in classes made `with_metaclass(
    _ClassPropertyMeta)`, as `Context.default_ctx` is)."""
    return _ClassPropertyDescriptor(func)


def with_metaclass(meta, *bases):
    """A base class whose metaclass is `meta`, for `class C(with_metaclass(Meta, Base)): ...`."""
    return meta("_WithMetaclassBase", bases or (object,), {})

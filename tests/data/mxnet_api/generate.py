"""Writes ndarray.json, base.json, context.json and autograd.json beside this file: the public names of
MXNet 1.9.1's `mxnet.ndarray` (dense), `mxnet.base`, `mxnet.context` and `mxnet.autograd`, with each
Python-defined signature.

Run it with MXNet 1.9.1 installed (`pip install mxnet==1.9.1 'numpy<1.24'` in a separate virtual
environment); Ember's tests read the JSON only and never import MXNet.
"""

from __future__ import annotations

import ctypes
import inspect
import json
import pathlib
import types

import mxnet as mx
from mxnet.base import _LIB, c_str, py_str

HERE = pathlib.Path(__file__).parent
OP_PREFIXES = ("", "_linalg_", "_contrib_", "_image_", "_random_", "_sparse_", "_sample_")

# Why the other public names of mxnet.base are not API that Ember, which has no C library, offers.
BASE_EXCLUDED = (
    (lambda n: n.endswith("Handle"), "a ctypes handle type of MXNet's C library"),
    (lambda n: n.startswith(("mx_int", "mx_uint", "mx_float")), "a ctypes scalar type of MXNet's C API"),
    (lambda n: n in ("add_fileline_to_docstring", "build_param_doc"),
     "docstring generation for MXNet's generated operator functions"),
    (lambda n: n == "MXCallbackList", "the callback table of Custom operators, which Ember does not support"),
    (lambda n: True, "marshalling for MXNet's C API (C strings, arrays, error codes)"),
)
BASE_PUBLIC = ("MXNetError", "NotImplementedForSymbol", "NotSupportedForSparseNDArray", "register_error",
               "error_types", "string_types", "numeric_types", "integer_types", "basestring", "long",
               "py_str", "data_dir", "data_dir_default", "mx_real_t", "classproperty", "with_metaclass")
MODULE_NAMES = ("atexit", "ctypes", "inspect", "os", "platform", "re", "sys", "libinfo")


def param_texts(signature: inspect.Signature, drop_self: bool) -> list[str]:
    """Each parameter as source text ('ctx=None', '*args', '**kwargs'), with a bare '*' before
    keyword-only parameters as in a def line; annotations dropped."""
    texts, star_seen = [], False
    params = list(signature.parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            star_seen = True
        if p.kind is p.KEYWORD_ONLY and not star_seen:
            texts.append("*")
            star_seen = True
        texts.append(str(p.replace(annotation=inspect.Parameter.empty)))
    return texts


def op_handle_name(name: str) -> str | None:
    """The registered (canonical) C++ op name behind an op name or alias; None when none exists."""
    handle = ctypes.c_void_p()
    if _LIB.NNGetOpHandle(c_str(name), ctypes.byref(handle)) != 0 or not handle.value:
        return None
    real = ctypes.c_char_p()
    desc, ret = ctypes.c_char_p(), ctypes.c_char_p()
    num = ctypes.c_uint()
    names, types_, descs = (ctypes.POINTER(ctypes.c_char_p)() for _ in range(3))
    _LIB.NNGetOpInfo(handle, ctypes.byref(real), ctypes.byref(desc), ctypes.byref(num), ctypes.byref(names),
                     ctypes.byref(types_), ctypes.byref(descs), ctypes.byref(ret))
    return py_str(real.value)


def is_python_defined(value) -> bool:
    """True for functions written in a .py file; MXNet generates its op functions from strings."""
    code = getattr(value, "__code__", None)
    return code is not None and code.co_filename.endswith(".py")


def describe(value, name: str, prefix: str = "") -> dict:
    """{kind, params[, op]} of one module attribute."""
    if isinstance(value, types.ModuleType):
        return {"kind": "module"}
    if inspect.isclass(value) and not value.__module__.startswith("mxnet"):
        return {"kind": "alias", "of": type_name(value)}
    if inspect.isclass(value):
        entry = {"kind": "class", "params": param_texts(inspect.signature(value.__init__), True)}
        bases = [b.__name__ for b in value.__bases__ if b is not object]
        return {**entry, "bases": bases} if bases else entry
    if callable(value):
        params = param_texts(inspect.signature(value), False)
        if is_python_defined(value):
            return {"kind": "function", "params": params}
        op = next(filter(None, (op_handle_name(p + name) for p in (prefix, *OP_PREFIXES))), None)
        return {"kind": "operator", "op": op, "params": params}
    if isinstance(value, tuple) and all(inspect.isclass(v) for v in value):
        return {"kind": "value", "type": "tuple", "value": [type_name(v) for v in value]}
    return {"kind": "value", "type": type(value).__name__}


def type_name(cls: type) -> str:
    """'int', 'numpy.float32': a class by the name user code would spell."""
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"


def module_entries(module, names, prefix: str = "") -> dict:
    return {n: describe(getattr(module, n), n, prefix) for n in sorted(set(names))}


def ndarray_members() -> dict:
    """NDArray's public members (methods, properties, attributes) and its operator methods."""
    cls = mx.nd.NDArray
    members = {}
    for name in sorted(dir(cls)):
        if name.startswith("_") and not (name.startswith("__") and name in vars(cls)):
            continue
        if name in ("__init__", "__module__", "__doc__", "__slots__", "__del__", "__dict__", "__weakref__"):
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, property):
            members[name] = {"kind": "property", "settable": raw.fset is not None}
        elif inspect.isfunction(raw):
            members[name] = {"kind": "method", "params": param_texts(inspect.signature(raw), True)}
        elif type(raw).__name__ == "member_descriptor":
            members[name] = {"kind": "attribute"}
        else:
            members[name] = {"kind": "value", "type": type(raw).__name__}
    return members


def ndarray_inventory() -> dict:
    nd = mx.nd
    top = [n for n in nd.__all__ if not n.startswith("_")]
    submodules = {}
    for sub, prefix in (("random", "_random_"), ("linalg", "_linalg_"), ("contrib", "_contrib_"),
                        ("image", "_image_"), ("sparse", "_sparse_")):
        module = getattr(nd, sub)
        submodules[sub] = module_entries(module, [n for n in module.__all__ if not n.startswith("_")], prefix)
    return {
        "about": "Public names of MXNet 1.9.1's mxnet.ndarray (its __all__, less private and NumPy-API "
                 "names), of NDArray, and of mx.nd.random/linalg/contrib/image/sparse; "
                 "made by generate.py from the mxnet 1.9.1 wheel.",
        "functions": module_entries(nd, top),
        "NDArray": ndarray_members(),
        "submodules": submodules,
    }


def base_inventory() -> dict:
    base = mx.base
    public = [n for n in dir(base) if not n.startswith("_") and n not in MODULE_NAMES]
    return {
        "about": "Public names of MXNet 1.9.1's mxnet.base that user code imports; made by generate.py.",
        "names": module_entries(base, BASE_PUBLIC),
        "excluded": {n: next(why for test, why in BASE_EXCLUDED if test(n))
                     for n in sorted(public) if n not in BASE_PUBLIC},
    }


def context_inventory() -> dict:
    ctx = mx.context
    names = ["Context", "cpu", "gpu", "cpu_pinned", "current_context", "num_gpus", "gpu_memory_info"]
    cls = ctx.Context
    members = {}
    for name in ("device_type", "device_typeid", "device_id", "devtype2str", "devstr2type", "default_ctx",
                 "empty_cache", "__enter__", "__exit__", "__eq__", "__hash__", "__str__", "__repr__"):
        raw = inspect.getattr_static(cls, name, None)
        if inspect.isfunction(raw):
            members[name] = {"kind": "method", "params": param_texts(inspect.signature(raw), True)}
        elif isinstance(raw, property):
            members[name] = {"kind": "property"}
        elif type(raw).__name__ == "_MXClassPropertyDescriptor":
            members[name] = {"kind": "classproperty"}
        elif isinstance(raw, dict):
            members[name] = {"kind": "value", "type": "dict", "value": {str(k): v for k, v in raw.items()}}
        else:
            members[name] = {"kind": "attribute"}
    return {
        "about": "Public names of MXNet 1.9.1's mxnet.context and Context's members; made by generate.py.",
        "names": module_entries(ctx, names),
        "Context": members,
    }


def autograd_inventory() -> dict:
    """mxnet.autograd's public functions and Function's methods (its names without a leading _)."""
    module = mx.autograd
    names = [n for n in dir(module) if not n.startswith("_") and not isinstance(getattr(module, n), types.ModuleType)
             and getattr(getattr(module, n), "__module__", None) == module.__name__]
    function_members = {name: {"kind": "method", "params": param_texts(inspect.signature(getattr(
        module.Function, name)), True)} for name in ("forward", "backward", "save_for_backward", "__call__")}
    return {
        "about": "Public names of MXNet 1.9.1's mxnet.autograd and Function's methods; made by generate.py.",
        "names": module_entries(module, names),
        "Function": function_members,
    }


def main() -> None:
    for file, inventory in (("ndarray.json", ndarray_inventory()), ("base.json", base_inventory()),
                            ("context.json", context_inventory()), ("autograd.json", autograd_inventory())):
        (HERE / file).write_text(json.dumps(inventory, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

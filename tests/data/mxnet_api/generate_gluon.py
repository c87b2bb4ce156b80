"""Writes gluon.json beside this file: the public names of MXNet 1.9.1's `mxnet.gluon` modules, with
each class's constructor and public methods and each function's signature.

Run it with MXNet 1.9.1 installed (`pip install mxnet==1.9.1 'numpy<1.24'` in a separate virtual
environment); Ember's tests read the JSON only and never import MXNet.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pathlib
import types

from generate import param_texts

HERE = pathlib.Path(__file__).parent
MODULES = (
    "gluon", "gluon.nn", "gluon.loss", "gluon.data", "gluon.data.vision", "gluon.data.vision.transforms",
    "gluon.utils", "gluon.model_zoo.vision", "gluon.rnn",
)  # fmt: skip


def public_names(module) -> list[str]:
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    return sorted(n for n in names if not isinstance(getattr(module, n, None), types.ModuleType))


def signature_of(value, drop_self: bool) -> list[str] | None:
    try:
        return param_texts(inspect.signature(value), drop_self)
    except (TypeError, ValueError):
        return None


def describe_class(cls) -> dict:
    methods = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") and name not in ("__call__",):
            continue
        if not (inspect.isfunction(member) or isinstance(member, property)):
            continue
        owner = next((c for c in cls.__mro__ if name in vars(c)), None)
        if owner is None or not owner.__module__.startswith("mxnet.gluon"):
            continue
        if isinstance(member, property):
            methods[name] = {"kind": "property"}
        else:
            methods[name] = {"kind": "method", "params": signature_of(member, True)}
    return {"kind": "class", "params": signature_of(cls.__init__, True), "members": methods}


def inventory() -> dict:
    import mxnet as mx  # noqa: F401 (the modules below hang off it)

    found = {}
    for dotted in MODULES:
        module = importlib.import_module(f"mxnet.{dotted}")
        entries = {}
        for name in public_names(module):
            value = getattr(module, name)
            if inspect.isclass(value):
                entries[name] = describe_class(value)
            elif callable(value):
                entries[name] = {"kind": "function", "params": signature_of(value, False)}
            else:
                entries[name] = {"kind": "value"}
        found[dotted] = entries
    return {"about": "Public names of MXNet 1.9.1's mxnet.gluon modules; made by generate_gluon.py.",
            "modules": found}  # fmt: skip


if __name__ == "__main__":
    (HERE / "gluon.json").write_text(json.dumps(inventory(), indent=1, sort_keys=True) + "\n")

"""Every public name of MXNet 1.9.1's `mxnet.gluon` modules (tests/data/mxnet_api/gluon.json, taken from
the real wheel by generate_gluon.py) exists in Ember with the same constructor/function signature and
the same public methods - or is listed in NOT_YET with the issue that brings it. The test also fails
when a listed name has arrived, so the list is always the true to-do list."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from ember.base import MXNetError
from ember.gluon import Block

from ..test_api_surface import param_texts

INVENTORY = json.loads((Path(__file__).resolve().parent.parent / "data/mxnet_api/gluon.json").read_text())
MODULES = INVENTORY["modules"]

# module -> why a whole module is not there yet
MODULES_NOT_YET = {
    "gluon.rnn": "issue 15 (recurrent networks: the RNN op and cells)",
}
# (module, name) -> why
NOT_YET: dict = {}
# (module, name) -> why: present, and constructing it raises MXNetError saying so
UNSUPPORTED = {
    ("gluon.data.vision.transforms", name): "its arithmetic is not reproduced yet"
    for name in ("RandomSaturation", "RandomHue", "RandomLighting", "RandomColorJitter", "Rotate",
                 "RandomRotation")
}  # fmt: skip
# member name -> why, for every Block class
MEMBERS_NOT_YET = {
    "register_op_hook": "issue 14: per-op monitor callbacks of hybridized blocks are still to come",
}


def _ember_module(dotted: str):
    try:
        return importlib.import_module(f"ember.{dotted}")
    except ImportError:
        return None


def _normal(texts):
    """Default values that are objects compare by class (`<...initializer.Uniform object at 0x..>`)."""
    if texts is None:
        return None
    texts = [re.sub(r"<(?:mxnet|ember)\.([\w.]+) object at 0x[0-9a-f]+>", r"<\1>", t) for t in texts]
    # defaults under the user's MXNet home (`root='/root/.mxnet/models'`) depend on where it ran
    return [re.sub(r"'[^']*/\.mxnet/", "'<mxnet home>/", t) for t in texts]


CASES = [(module, name) for module, entries in MODULES.items() for name in entries]


@pytest.mark.parametrize("module,name", CASES, ids=[f"{m}.{n}" for m, n in CASES])
def test_name_exists_with_mxnet_signature(module, name):
    entry = MODULES[module][name]
    ember_module = _ember_module(module)
    why = MODULES_NOT_YET.get(module) or NOT_YET.get((module, name))
    present = ember_module is not None and hasattr(ember_module, name)
    if why is not None:
        assert not present, f"{module}.{name} has arrived: take it off the not-yet list ({why})"
        pytest.skip(f"not yet: {why}")
    assert present, f"ember.{module} lacks {name}"
    value = getattr(ember_module, name)
    if (module, name) in UNSUPPORTED:
        with pytest.raises(MXNetError, match="not supported in Ember"):
            value(*[0] * len([p for p in entry["params"] if "=" not in p and not p.startswith("*")]))
        return
    if entry["kind"] == "function" and entry["params"] is not None:
        assert _normal(param_texts(value, False)) == _normal(entry["params"])
    if entry["kind"] != "class":
        return
    if entry["params"] is not None:
        assert _normal(param_texts(value.__init__, True)) == _normal(entry["params"]), f"{name}.__init__"
    for member, facts in entry["members"].items():
        if member in MEMBERS_NOT_YET and issubclass(value, Block):
            assert not hasattr(value, member), f"{name}.{member} has arrived: take it off MEMBERS_NOT_YET"
            continue
        assert hasattr(value, member), f"{module}.{name} lacks {member}"
        if facts["kind"] == "method" and facts["params"] is not None:
            got = _normal(param_texts(getattr(value, member), True))
            assert got == _normal(facts["params"]), f"{name}.{member}"

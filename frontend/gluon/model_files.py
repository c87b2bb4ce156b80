"""`Block.save(prefix)` / `Block.load(prefix)` (MXNet 1.9): a model's structure and traced graphs in
`<prefix>-model.json`, its parameters in `<prefix>-model.params` (`save_parameters`).

The JSON nests one entry per Block, keyed `<class name lower-cased><n>` with n counting Blocks in
depth-first order: the Block's name when saved (`orig_name`), its children's structural names by child
name (`children`), and for a HybridBlock whether it was hybridized with, if so, its traced graph
(`symbol`, `inputs` as symbol JSON) and input/output formats. Loading walks a freshly built model in the
same order, so the model must be built the same way: it gives each Block its saved name, renames its
Parameters and children to match, restores traced graphs, then loads the parameters.
"""

from __future__ import annotations

import json
from collections import OrderedDict

from ember.runtime.files import write_atomic

from .. import symbol
from ..base import MXNetError


def save_model(net, prefix: str) -> None:
    """Write `<prefix>-model.json` and `<prefix>-model.params` for `net`."""
    structure: dict = {}
    counter = [0]

    def describe(block, parent: dict) -> None:
        entry: dict = {"orig_name": block.name}
        parent[f"{type(block).__name__.lower()}{counter[0]}"] = entry
        if _is_hybrid(block):
            if block._cached_graph:
                inputs, out = block._cached_graph
                entry.update(in_format=block._in_format, out_format=block._out_format,
                             inputs=[s.tojson() for s in inputs], symbol=out.tojson())  # fmt: skip
            entry["hybridized"] = bool(block._cached_graph)
        entry["children"] = {child.name: key for key, child in block._children.items()}
        for child in block._children.values():
            counter[0] += 1
            describe(child, entry)

    describe(net, structure)
    write_atomic(f"{prefix}-model.json", [json.dumps(structure).encode()], MXNetError)
    net.save_parameters(f"{prefix}-model.params")


def load_model(net, prefix: str) -> None:
    """Give `net` (built as the saved model was) the saved names, graphs and parameters."""
    try:
        with open(f"{prefix}-model.json") as handle:
            structure = json.load(handle)
    except (OSError, ValueError) as err:
        raise MXNetError(f"cannot read the model structure {prefix}-model.json: {err}") from None
    counter = [0]

    def restore(block, parent: dict) -> None:
        key = f"{type(block).__name__.lower()}{counter[0]}"
        if key not in parent:
            raise MXNetError(
                f"{prefix}-model.json has no entry {key!r}: the model must be built as the saved one was "
                "(same Blocks, same order)"
            )
        entry = parent[key]
        block._name = entry["orig_name"]
        if _is_hybrid(block):
            block._cached_executors = {}  # bound to the old names and graph
        if _is_hybrid(block) and entry.get("hybridized"):
            block._in_format, block._out_format = entry["in_format"], entry["out_format"]
            inputs = [symbol.load_json(s) for s in entry["inputs"]]
            block._cached_graph = (inputs, symbol.load_json(entry["symbol"]))
            block._active = True
        params = block.params
        renamed = OrderedDict()
        for name, param in params._params.items():
            renamed[f"{block.name}_{name[len(params._prefix):]}"] = param
        params._params = renamed
        for child in block._children.values():
            counter[0] += 1
            restore(child, entry)
        block._children = OrderedDict(
            (entry["children"].get(child.name, key), child) for key, child in block._children.items()
        )

    restore(net, structure)
    net.load_parameters(f"{prefix}-model.params")


def _is_hybrid(block) -> bool:
    """Whether `block` is a HybridBlock (it has a traced-graph slot; block.py imports this module)."""
    return hasattr(block, "_cached_graph")

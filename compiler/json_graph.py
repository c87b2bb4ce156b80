"""Graph <-> MXNet symbol JSON (`-symbol.json`), byte-compatible with what MXNet 1.9.1 writes.

`graph_to_json` writes the dmlc JSON layout MXNet produces (MXNET_COMPAT.md section 1.7).
`graph_from_json` reads files from MXNet 1.9.1 and older (legacy `param`/`attr` keys, missing
auxiliary inputs, hidden-key renames, `__init__` stamping), and raises `GraphError` naming what is
wrong: malformed JSON, an unknown op, an unknown attribute, a bad input reference. Nothing in the
file is trusted: every field's type is checked, a node may only read nodes listed before it (so a
file cannot describe a cycle), a variadic op's input count must match the inputs listed, and an op's
output count is bounded, so no attribute value can make the reader allocate without limit.
"""

from __future__ import annotations

import json
import logging

from ember.runtime.errors import GraphError

from .ir import VARIABLE, Attrs, Graph, Node, Value
from .ops.registry import SCHEMAS, canonical_name, get_schema

MXNET_VERSION = 10901  # the MXNet version whose files we write (1.9.1)
HIDDEN_KEYS = ("ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage", "profiler_scope")
# Far beyond any real op's outputs (SliceChannel of a few thousand); a larger `num_outputs` in a file
# would only make every list of output names as long, so it is refused as corrupt.
MAX_NODE_OUTPUTS = 1 << 20

# ---------------------------------------------------------------------------------------------
# Writing


def graph_to_json(graph: Graph) -> str:
    """MXNet's JSON text for `graph`, formatted exactly as MXNet 1.9.1's writer formats it."""
    nodes = graph.nodes
    ids = {id(n): i for i, n in enumerate(nodes)}
    row_ptr = [0]
    for node in nodes:
        row_ptr.append(row_ptr[-1] + (1 if node.is_variable else node.schema.num_file_outputs(node.params)))
    fields = [
        ("nodes", _multiline_list([_node_json(n, ids) for n in nodes], 1)),
        ("arg_nodes", _pod_array([str(ids[id(n)]) for n in nodes if n.is_variable], 1)),
        ("node_row_ptr", _pod_array([str(r) for r in row_ptr], 1)),
        ("heads", _pod_array([_entry([ids[id(v.node)], v.index, 0]) for v in graph.outputs], 1)),
        ("attrs", '{"mxnet_version": ["int", %d]}' % MXNET_VERSION),
    ]
    return _object(fields, 0)


def _node_json(node: Node, ids: dict) -> str:
    fields = [("op", _string(node.op)), ("name", _string(node.name))]
    if node.attrs:
        fields.append(("attrs", _attrs_json(node.attrs, 3)))
    mutable = _mutable_slots(node)
    entries = [[ids[id(v.node)], v.index, 1 if i in mutable else 0] for i, v in enumerate(node.inputs)]
    fields.append(("inputs", _pod_array([_entry(e) for e in entries], 3)))
    return _object(fields, 2)


def _mutable_slots(node: Node) -> set[int]:
    if node.is_variable or not node.schema.mutable_inputs:
        return set()
    names = node.schema.input_names(node.params)
    return {i for i, name in enumerate(names) if name in node.schema.mutable_inputs}


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _object(fields: list[tuple[str, str]], depth: int) -> str:
    inner = "  " * (depth + 1)
    body = ", \n".join(f"{inner}{_string(k)}: {v}" for k, v in fields)
    return "{\n" + body + "\n" + "  " * depth + "}"


def _attrs_json(attrs: Attrs, depth: int) -> str:
    items = [(k, _string(v)) for k, v in attrs]
    if len(items) == 1:
        return "{" + f"{_string(items[0][0])}: {items[0][1]}" + "}"
    return _object(items, depth)


def _multiline_list(items: list[str], depth: int) -> str:
    inner = "  " * (depth + 1)
    return "[\n" + ", \n".join(inner + item for item in items) + "\n" + "  " * depth + "]"


def _pod_array(items: list[str], depth: int) -> str:
    """An array of plain values: inline up to 10 elements, one per line beyond (dmlc's rule)."""
    if len(items) <= 10:
        return "[" + ", ".join(items) + "]"
    return _multiline_list(items, depth)


def _entry(entry: list[int]) -> str:
    return "[" + ", ".join(map(str, entry)) + "]"


# ---------------------------------------------------------------------------------------------
# Reading


def graph_from_json(text: str) -> Graph:
    """The graph described by MXNet symbol JSON `text` (any version MXNet could write)."""
    try:
        doc = json.loads(text)
    except (ValueError, TypeError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise GraphError(f"symbol JSON is not valid JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) or "heads" not in doc:
        raise GraphError("symbol JSON must be an object with 'nodes' and 'heads' lists")
    version = _file_version(doc)
    if version > MXNET_VERSION:
        logging.warning("symbol JSON was written by MXNet version %d, newer than %d", version, MXNET_VERSION)
    raw_nodes = [_raw_node(entry, i) for i, entry in enumerate(doc["nodes"])]
    _move_input_multipliers(raw_nodes)
    if version < 904:
        _stamp_input_inits(raw_nodes)
    built: list[Node] = []
    for index, raw in enumerate(raw_nodes):
        built.append(_build_node(raw, index, built, version))
    heads = [_entry_value(e, built, len(built), "heads") for e in _as_list(doc["heads"], "heads")]
    return Graph(heads)


def _file_version(doc: dict) -> int:
    try:
        return int(doc.get("attrs", {}).get("mxnet_version", ["int", 800])[1])
    except (AttributeError, IndexError, TypeError, ValueError, KeyError, OverflowError):
        raise GraphError("symbol JSON has a malformed 'attrs.mxnet_version'") from None


def _as_list(value, where: str) -> list:
    if not isinstance(value, list):
        raise GraphError(f"symbol JSON field {where} must be a list")
    return value


def _raw_node(entry, index: int) -> dict:
    """One node's JSON as {op, name, attrs (upgraded hidden keys), inputs}."""
    if not isinstance(entry, dict) or "op" not in entry or "name" not in entry:
        raise GraphError(f"symbol JSON node {index} must be an object with 'op' and 'name'")
    op, name = _text(entry["op"], f"node {index}'s 'op'"), _text(entry["name"], f"node {index}'s 'name'")
    attrs = {}
    for key in ("param", "attr", "attrs"):  # older files split op params and user attrs
        section = entry.get(key) or {}
        if not isinstance(section, dict):
            raise GraphError(f"symbol JSON node {index} ({name!r}) has a non-object {key!r}")
        where = f"node {index} ({name!r}) attribute"
        for attr, value in section.items():  # a key is a string, but may hold a lone surrogate too
            attrs[_text(attr, f"{where} name")] = _text(value, f"{where} {attr!r}")
    for key in HIDDEN_KEYS:
        if key in attrs:
            attrs[f"__{key}__"] = attrs.pop(key)
    inputs = _as_list(entry.get("inputs", []), f"nodes[{index}].inputs")
    return {"op": op, "name": name, "attrs": attrs, "inputs": inputs}


def _text(value, where: str) -> str:
    """`value` if it is a string UTF-8 can encode (JSON allows lone surrogates; files cannot hold them)."""
    if not isinstance(value, str):
        raise GraphError(f"symbol JSON {where} must be a string, got {type(value).__name__} {value!r:.60}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise GraphError(f"symbol JSON {where} is not valid Unicode text: {value!r:.60}") from None
    return value


def _move_input_multipliers(raw_nodes: list[dict]) -> None:
    """Legacy `<input>_lr_mult` on an op becomes `__lr_mult__` on the variable in that input slot."""
    for raw in raw_nodes:
        keys = [k for k in raw["attrs"] if k.endswith(("_lr_mult", "_wd_mult")) and not k.startswith("__")]
        if raw["op"] == VARIABLE or not keys:
            continue
        slots = _input_slots(raw, raw_nodes)
        for key in keys:
            input_name, mult = key[: -len("_lr_mult")], key[-len("lr_mult") :]
            target = slots.get(input_name)
            if target is not None and target["op"] == VARIABLE:
                target["attrs"][f"__{mult}__"] = raw["attrs"][key]
            del raw["attrs"][key]


def _input_slots(raw: dict, raw_nodes: list[dict]) -> dict[str, dict]:
    """Input name -> the raw node feeding that slot of op node `raw` (empty if the op is unknown)."""
    try:
        schema = get_schema(canonical_name(raw["op"]))
        params = {k: v for k, v in raw["attrs"].items() if not k.endswith(("_lr_mult", "_wd_mult"))}
        names = _input_names(schema, schema.parse_params(params, raw["name"]), len(raw["inputs"]), "")
    except GraphError:
        return {}  # reported with the node's position when the node is built
    slots = {}
    for name, entry in zip(names, raw["inputs"]):
        if isinstance(entry, list) and entry and isinstance(entry[0], int) and 0 <= entry[0] < len(raw_nodes):
            slots[name] = raw_nodes[entry[0]]
    return slots


def _input_names(schema, params: dict, given: int, where: str) -> tuple[str, ...]:
    """The op's input names; a variadic op must count exactly the `given` inputs (MXNet checks the
    same), which also keeps a corrupt count from building a list of that many names."""
    if schema.variadic and params[schema.variadic] != given:
        raise GraphError(
            f"symbol JSON {where}: operator {schema.name} has {schema.variadic}={params[schema.variadic]}, "
            f"but {given} inputs are listed"
        )
    return schema.input_names(params)


def _is_index(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _entry_value(entry, built: list[Node], limit: int, where: str) -> Value:
    if not isinstance(entry, list) or len(entry) not in (2, 3) or not all(_is_index(x) for x in entry):
        raise GraphError(
            f"symbol JSON {where}: input entry {entry!r} must be [node_id, output_index, version]"
        )
    node_id, index = entry[0], entry[1]
    if not 0 <= node_id < limit:
        raise GraphError(
            f"symbol JSON {where}: input entry {entry!r} refers to a node that does not precede it"
        )
    node = built[node_id]
    if not 0 <= index < node.num_outputs:
        raise GraphError(
            f"symbol JSON {where}: input entry {entry!r} reads output {index} of {node.name!r}, "
            f"which has {node.num_outputs}"
        )
    return Value(node, index)


def _build_node(raw: dict, index: int, built: list[Node], version: int) -> Node:
    where = f"node {index} ({raw['name']!r})"
    if raw["op"] == VARIABLE:
        return Node(VARIABLE, (), Attrs(raw["attrs"]), raw["name"])
    op = canonical_name(raw["op"])
    try:
        schema = get_schema(op)
    except GraphError:
        raise GraphError(f"symbol JSON {where} uses unknown operator {raw['op']!r}") from None
    attrs = dict(raw["attrs"])
    if version < 905 and op in ("argmax", "argmin") and attrs.get("axis") == "-1":
        del attrs["axis"]
    inputs = [_entry_value(e, built, index, where) for e in raw["inputs"]]
    if schema.variadic and schema.variadic not in attrs:
        attrs[schema.variadic] = str(len(inputs))
    node = Node(op, tuple(inputs), Attrs(attrs), raw["name"])
    node.params  # parse now, so a bad attribute is reported here, naming the node
    names = _input_names(schema, node.params, len(inputs), where)
    if node.num_outputs > MAX_NODE_OUTPUTS:
        raise GraphError(
            f"symbol JSON {where}: operator {op} would have {node.num_outputs} outputs, "
            f"more than the {MAX_NODE_OUTPUTS} any graph file may give one node"
        )
    if len(inputs) < len(names) and version < 900:
        inputs += [_legacy_input(schema, raw["name"], n, attrs) for n in names[len(inputs) :]]
        node = Node(op, tuple(inputs), node.attrs, raw["name"])
    if len(inputs) != len(names):
        raise GraphError(
            f"symbol JSON {where}: operator {op} takes {len(names)} inputs ({', '.join(names)}), "
            f"got {len(inputs)}"
        )
    return node


def _legacy_input(schema, node_name: str, input_name: str, op_attrs: dict) -> Value:
    """A variable for an input that files older than 0.9.0 did not record (auxiliary states); like
    MXNet's automatic inputs it carries the op's attributes."""
    attrs = dict(op_attrs)
    if input_name in schema.input_inits:
        attrs["__init__"] = schema.input_inits[input_name]
    return Value(Node(VARIABLE, (), Attrs(attrs), f"{node_name}_{input_name}"))


def _stamp_input_inits(raw_nodes: list[dict]) -> None:
    """Pre-0.9.4 files: give auxiliary inputs the `__init__` MXNet stamps on them."""
    for raw in raw_nodes:
        if raw["op"] == VARIABLE:
            continue
        inits = (
            get_schema(canonical_name(raw["op"])).input_inits if canonical_name(raw["op"]) in SCHEMAS else {}
        )
        for name, source in _input_slots(raw, raw_nodes).items():
            if name in inits and source["op"] == VARIABLE:
                source["attrs"].setdefault("__init__", inits[name])

"""`Symbol`: MXNet's symbolic handle on a set of graph outputs.

A Symbol holds a tuple of IR `Value`s; everything else (argument lists, shape and type inference,
JSON) is computed from the graph those values reach. Operator overloading follows MXNet: `+ - * /`
between Symbols are element-wise ops with no broadcasting, with scalars the `_*_scalar` ops.
"""

from __future__ import annotations

import copy
import warnings
from typing import Iterator

import numpy as np

from ember.compiler import Attrs, Graph, Node, Value, format_graph, run
from ember.compiler.json_graph import HIDDEN_KEYS, graph_to_json
from ember.compiler.ops.rules import is_known
from ember.compiler.passes import infer_shapes, infer_types
from ember.compiler.passes.infer_shapes import legacy_to_partial
from ember.runtime.errors import GraphError, MXNetError, ShapeError
from ember.runtime.files import write_atomic


class Symbol:
    """A symbolic expression: one or more outputs of an immutable dataflow graph."""

    __slots__ = ("_outputs",)

    def __init__(self, outputs):
        self._outputs = tuple(outputs)

    # -- structure ---------------------------------------------------------------------------

    @property
    def _graph(self) -> Graph:
        return Graph(self._outputs)

    __array_priority__ = 1000.0  # NumPy defers `np.float32(2) * symbol` to Symbol.__rmul__

    @property
    def name(self) -> str | None:
        """The node name when every output comes from one node; None for a group of several nodes."""
        nodes = {id(v.node) for v in self._outputs}
        return self._outputs[0].node.name if len(nodes) == 1 else None

    def _aux_ids(self) -> set[int]:
        """Ids of variables that feed an auxiliary (mutable) input slot."""
        aux = set()
        for node in self._graph.nodes:
            if node.is_variable or not node.schema.mutable_inputs:
                continue
            names = node.schema.input_names(node.params)
            for name, value in zip(names, node.inputs):
                if name in node.schema.mutable_inputs and value.node.is_variable:
                    aux.add(id(value.node))
        return aux

    def _variables(self, want_aux: bool | None) -> list[Node]:
        aux = self._aux_ids()
        return [v for v in self._graph.variables if want_aux is None or (id(v) in aux) == want_aux]

    def list_arguments(self) -> list[str]:
        """Names of the variable inputs that are not auxiliary states, in MXNet's DFS order."""
        return [v.name for v in self._variables(False)]

    def list_auxiliary_states(self) -> list[str]:
        """Names of the auxiliary states (BatchNorm moving statistics), in DFS order."""
        return [v.name for v in self._variables(True)]

    def list_inputs(self) -> list[str]:
        """Names of every variable, arguments and auxiliary states, in DFS order."""
        return [v.name for v in self._variables(None)]

    def list_outputs(self) -> list[str]:
        """Output names: `<node>_output` (`_output<i>` or declared names for several outputs)."""
        return [output_name(v) for v in self._outputs]

    def get_internals(self) -> "Symbol":
        """A group of every node's outputs, variables included, in DFS order."""
        return Symbol(Value(n, i) for n in self._graph.nodes for i in range(n.num_visible_outputs))

    def get_children(self) -> "Symbol | None":
        """The inputs of this symbol's head node(s) as a group; None when there are none (a variable)."""
        heads = list({id(v.node): v.node for v in self._outputs}.values())
        inputs = [value for node in heads for value in node.inputs]
        return Symbol(inputs) if inputs else None

    def __len__(self) -> int:
        return len(self._outputs)

    def __iter__(self) -> Iterator["Symbol"]:
        return (Symbol([v]) for v in self._outputs)

    def __getitem__(self, index) -> "Symbol":
        if isinstance(index, str):
            names = self.list_outputs()
            if index not in names:
                raise ValueError(f"cannot find output that matches name {index!r}; outputs are {names}")
            index = names.index(index)
        if isinstance(index, slice):
            return Symbol(self._outputs[index])
        if not isinstance(index, int):
            raise TypeError(
                f"symbol index must be an int, a slice or an output name, not {type(index).__name__}"
            )
        if not -len(self._outputs) <= index < len(self._outputs):
            raise IndexError(f"symbol has {len(self._outputs)} outputs; index {index} is out of range")
        return Symbol([self._outputs[index]])

    # -- attributes --------------------------------------------------------------------------

    def attr(self, key: str) -> str | None:
        """Attribute `key` of this symbol's node; `name` is the node's name, and MXNet's hidden keys
        are found under their plain names too (`lr_mult` finds `__lr_mult__`)."""
        node = self._outputs[0].node
        if key == "name":
            return node.name
        value = node.attrs.get(key)
        if value is None and key in HIDDEN_KEYS:
            value = node.attrs.get(f"__{key}__")
        return value

    def list_attr(self, recursive: bool = False) -> dict[str, str]:
        """This node's attributes, hidden keys (`__lr_mult__`) also under their plain names."""
        if recursive:
            raise DeprecationWarning(
                "Symbol.list_attr with recursive=True has been deprecated. Please use attr_dict instead."
            )
        return _with_plain_hidden_keys(self._outputs[0].node.attrs)

    def attr_dict(self) -> dict[str, dict[str, str]]:
        """Node name -> attributes (as `list_attr` shows them), for every node that has attributes."""
        return {n.name: _with_plain_hidden_keys(n.attrs) for n in self._graph.nodes if n.attrs}

    def _set_attr(self, **kwargs) -> None:
        """Set string attributes on this symbol's node, in place (MXNet's handles are mutable).

        Meant for hidden attributes on variables before a graph is compiled (Gluon uses it); an op's
        parameters cannot be changed this way.
        """
        node = self._outputs[0].node
        attrs = node.attrs.as_dict()
        for key, value in kwargs.items():
            if not isinstance(value, str):
                raise ValueError("Set Attr only accepts string values")
            key = f"__{key}__" if key in HIDDEN_KEYS else key
            if not node.is_variable and not (key.startswith("__") and key.endswith("__")):
                raise MXNetError(f"_set_attr cannot change parameter {key!r} of operator node {node.name!r}")
            attrs[key] = value
        object.__setattr__(node, "attrs", Attrs(attrs))

    # -- shape and type inference ------------------------------------------------------------

    def _given(self, args, kwargs, what: str) -> dict:
        names = self.list_arguments()
        given = {}
        if args:
            if len(args) > len(names):
                raise MXNetError(f"{what}: {len(args)} positional values given for {len(names)} arguments")
            given.update({n: a for n, a in zip(names, args) if a is not None})
        inputs = set(self.list_inputs())
        for key, value in kwargs.items():
            if key not in inputs:
                raise MXNetError(
                    f"{what}: {key!r} is not an input of this symbol; its inputs are {sorted(inputs)}"
                )
            if value is not None:
                given[key] = value
        return given

    def _infer_shape_values(self, args, kwargs):
        given = {}
        for key, shape in self._given(args, kwargs, "infer_shape").items():
            if not isinstance(shape, (tuple, list)):
                raise TypeError(f"Arguments need to be shapes (tuple), but {key!r} is {shape!r}")
            given[key] = legacy_to_partial(tuple(shape))
        try:
            return infer_shapes(self._graph, given)
        except ShapeError as err:
            listed = "".join(f"  {k}: {_legacy(v)}\n" for k, v in given.items())
            raise ShapeError(f"infer_shape error. Arguments:\n{listed}{err}") from None

    def _shape_lists(self, shapes):
        def of(var_names):
            index = {v.name: v for v in self._graph.variables}
            return [shapes.get(Value(index[n], 0)) for n in var_names]

        return (
            of(self.list_arguments()),
            [shapes.get(v) for v in self._outputs],
            of(self.list_auxiliary_states()),
        )

    def infer_shape(self, *args, **kwargs):
        """(arg_shapes, out_shapes, aux_shapes) from known input shapes; (None, None, None) if undecided."""
        shapes = self._infer_shape_values(args, kwargs)
        lists = self._shape_lists(shapes)
        if all(is_known(s) for group in lists for s in group):
            return tuple([tuple(s) for s in group] for group in lists)
        unknown = [(n, _legacy(s)) for n, s in zip(self.list_arguments(), lists[0]) if not is_known(s)]
        warnings.warn(
            "Cannot decide shape for the following arguments (0s in shape means unknown dimensions). "
            "Consider providing them as input:\n\t" + _listing(unknown),
            stacklevel=2,
        )
        return None, None, None

    def infer_shape_partial(self, *args, **kwargs):
        """Like `infer_shape` but never gives up: unknown shapes are `()`, unknown dims `0`."""
        lists = self._shape_lists(self._infer_shape_values(args, kwargs))
        return tuple([_legacy(s) for s in group] for group in lists)

    def _type_lists(self, args, kwargs):
        dtypes = infer_types(self._graph, self._given(args, kwargs, "infer_type"))
        index = {v.name: v for v in self._graph.variables}

        def of(values):
            return [None if dtypes.get(v) is None else np.dtype(dtypes[v]).type for v in values]

        return (
            of(Value(index[n], 0) for n in self.list_arguments()),
            of(self._outputs),
            of(Value(index[n], 0) for n in self.list_auxiliary_states()),
        )

    def infer_type(self, *args, **kwargs):
        """(arg_types, out_types, aux_types) as NumPy type classes; (None, None, None) if undecided."""
        lists = self._type_lists(args, kwargs)
        if all(t is not None for group in lists for t in group):
            return lists
        unknown = [(n, None) for n, t in zip(self.list_arguments(), lists[0]) if t is None]
        warnings.warn(
            "Cannot decide type for the following arguments. Consider providing them as input:\n\t"
            + _listing(unknown),
            stacklevel=2,
        )
        return None, None, None

    def infer_type_partial(self, *args, **kwargs):
        """Like `infer_type` but never gives up: unknown types are None."""
        return self._type_lists(args, kwargs)

    # -- evaluation --------------------------------------------------------------------------

    def eval(self, ctx=None, **kwargs) -> list:
        """The outputs (NDArrays) for the inputs given by name, computed in inference mode.

        Runs the reference interpreter; the compiled executor arrives with the compiler issue.
        """
        from ..ndarray import NDArray

        missing = [name for name in self.list_inputs() if name not in kwargs]
        if missing:
            raise MXNetError(f"eval: no value given for input(s) {', '.join(missing)}")
        feeds = {k: v.asnumpy() if isinstance(v, NDArray) else np.asarray(v) for k, v in kwargs.items()}
        self._infer_shape_values((), {k: v.shape for k, v in feeds.items()})
        return [NDArray(out, ctx) for out in run(self._graph, feeds)]

    # -- composition and copying -------------------------------------------------------------

    def __call__(self, *args, **kwargs) -> "Symbol":
        """A copy with variables replaced by the given symbols (by name, or positionally)."""
        result = copy.copy(self)
        result._compose(*args, **kwargs)
        return result

    def _compose(self, *args, name=None, **kwargs) -> None:
        """Replace variables, in place, by single-output symbols: positionally in `list_inputs`
        order, or by name; `name` renames the head node."""
        if args and kwargs:
            raise TypeError(
                "compose only accept input Symbols either as positional or keyword arguments, not both"
            )
        if len(self._outputs) == 1 and self._outputs[0].node.is_variable:
            raise MXNetError(f"Variable {self.name!r} cannot be composed")
        inputs = self.list_inputs()
        if len(args) > len(inputs):
            raise MXNetError(f"compose: {len(args)} positional symbols given for {len(inputs)} inputs")
        unknown = sorted(set(kwargs) - set(inputs))
        if unknown:
            raise MXNetError(f"compose: keyword argument {unknown[0]!r} is not an input; inputs are {inputs}")
        mapping = {**dict(zip(inputs, args)), **kwargs}
        for key, value in mapping.items():
            if not isinstance(value, Symbol) or len(value) != 1:
                raise TypeError(f"compose: the value for {key!r} must be a single-output Symbol")
        outputs = _substitute(self._outputs, {k: v._outputs[0] for k, v in mapping.items()})
        if name is not None:
            outputs = _rename_head(outputs, name)
        self._outputs = tuple(outputs)

    def __copy__(self) -> "Symbol":
        return Symbol(self._outputs)

    def __deepcopy__(self, memo) -> "Symbol":
        return Symbol(self._outputs)

    def __getstate__(self) -> dict:
        """Pickled as its JSON, as MXNet does (so deep graphs pickle without recursion)."""
        return {"handle": self.tojson()}

    def __setstate__(self, state: dict) -> None:
        from ember.compiler.json_graph import graph_from_json

        handle = state.get("handle") if isinstance(state, dict) else None
        if not isinstance(handle, str):
            got = type(state).__name__  # never the state's repr, which may be huge
            if isinstance(state, dict):
                got = f"a dict whose handle is {type(handle).__name__}"
            raise GraphError(
                f"a pickled Symbol's state must be a dict whose 'handle' is its JSON text, got {got}"
            )
        self._outputs = tuple(graph_from_json(handle).outputs)

    # -- serialisation -----------------------------------------------------------------------

    def tojson(self, remove_amp_cast: bool = True) -> str:
        """MXNet's JSON text for this symbol."""
        return graph_to_json(self._graph)

    def save(self, fname: str, remove_amp_cast: bool = True) -> None:
        """Write `tojson()` to `fname` atomically (a failed write, a full disk too, keeps the old file)."""
        write_text_atomic(fname, self.tojson())

    def debug_str(self) -> str:
        """A readable listing of the graph, one line per node."""
        return format_graph(self._graph)

    def __repr__(self) -> str:
        if len(self._outputs) == 1:
            return f"<Symbol {self.name}>"
        return f"<Symbol group [{', '.join(n.name for n in (v.node for v in self._outputs))}]>"

    def __str__(self) -> str:
        return self.__repr__()

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self):
        raise NotImplementedError("a Symbol has no truth value; comparisons build symbolic nodes")


def output_name(value: Value) -> str:
    """MXNet's name for one output: the variable's name, or `<node>_<output suffix>`."""
    node = value.node
    if node.is_variable:
        return node.name
    return f"{node.name}_{node.schema.all_output_names(node.params)[value.index]}"


class NotImplementedForSymbol(MXNetError):
    """An operation NDArray supports but Symbol does not (in-place arithmetic, truth values)."""


def _in_place(symbol_text: str):
    def method(self, other):
        raise NotImplementedForSymbol(
            f"in-place {symbol_text} is not supported for Symbol; write `x = x {symbol_text[:-1]} y`"
        )

    return method


for _method, _text in (
    ("__iadd__", "+="),
    ("__isub__", "-="),
    ("__imul__", "*="),
    ("__itruediv__", "/="),
    ("__imod__", "%="),
):
    setattr(Symbol, _method, _in_place(_text))


def _with_plain_hidden_keys(attrs) -> dict[str, str]:
    """MXNet lists a hidden attribute (`__lr_mult__`) under its plain name (`lr_mult`) too."""
    listed = attrs.as_dict()
    for key in HIDDEN_KEYS:
        if f"__{key}__" in listed:
            listed[key] = listed[f"__{key}__"]
    return listed


def _listing(entries) -> str:
    """MXNet's warning list: `name: value` lines, cut to 10 with '...'."""
    lines = [f"{name}: {value}" for name, value in entries[:10]] + (["..."] if len(entries) > 10 else [])
    return "\n\t".join(lines)


def _rename_head(outputs: list[Value], name: str) -> list[Value]:
    """`outputs` with their (one) head node renamed."""
    head = outputs[0].node
    renamed = Node(head.op, head.inputs, head.attrs, name)
    return [Value(renamed, v.index) if v.node is head else v for v in outputs]


def _legacy(shape) -> tuple:
    """A partial shape in MXNet's legacy form: () when unknown, 0 for unknown dims."""
    return () if shape is None else tuple(0 if d is None else d for d in shape)


def _substitute(outputs, replacements: dict[str, Value]) -> list[Value]:
    """`outputs` with every variable named in `replacements` replaced; shared nodes stay shared."""
    rebuilt: dict[int, Node] = {}

    def new_value(value: Value) -> Value:
        node = value.node
        if node.is_variable and node.name in replacements:
            return replacements[node.name]
        return Value(rebuilt[id(node)], value.index)

    for node in Graph(outputs).nodes:
        if node.is_variable:
            rebuilt[id(node)] = node
        else:
            rebuilt[id(node)] = Node(node.op, tuple(new_value(v) for v in node.inputs), node.attrs, node.name)
    return [new_value(v) for v in outputs]


def write_text_atomic(fname: str, text: str) -> None:
    """Write `text` (UTF-8) to `fname` atomically."""
    write_atomic(fname, [text.encode("utf-8")], MXNetError)

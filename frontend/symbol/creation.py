"""Creating symbols: variables, operator functions generated from the op registry, groups, files.

An operator function (`mx.sym.FullyConnected(data, num_hidden=128)`) names its node through the
current `NameManager`, stores its parameters as MXNet stores them (`str(value)`), and creates any
tensor input it was not given as a variable `<node>_<input>` (`fullyconnected0_weight`) carrying a
copy of the op's attributes, as MXNet 1.9.1 does.
"""

from __future__ import annotations

from ember.compiler import VARIABLE, Attrs, Node, Value
from ember.compiler.dtypes import DTYPE_CODES, dtype_name
from ember.compiler.json_graph import HIDDEN_KEYS, graph_from_json
from ember.compiler.ops.params import format_value
from ember.compiler.ops.registry import OpSchema
from ember.runtime.errors import ArtifactError, GraphError, MXNetError
from ember.runtime.files import open_regular_file

from ..attribute import AttrScope
from ..name import NameManager
from .symbol import Symbol


def Variable(
    name, attr=None, shape=None, lr_mult=None, wd_mult=None, dtype=None, init=None, stype=None, **kwargs
):
    """A symbolic variable; optional facts are stored as hidden attributes (`__shape__`, ...)."""
    if not isinstance(name, str):
        raise TypeError("Expect a string for variable `name`")
    attrs = dict(AttrScope.current.get(attr))
    hidden = {
        "__shape__": None if shape is None else format_value(shape),
        "__lr_mult__": None if lr_mult is None else format_value(lr_mult),
        "__wd_mult__": None if wd_mult is None else format_value(wd_mult),
        "__dtype__": None if dtype is None else str(DTYPE_CODES[dtype_name(dtype)]),
        "__init__": None if init is None else (init if isinstance(init, str) else init.dumps()),
        "__storage_type__": None if stype is None else str({"default": 0, "row_sparse": 1, "csr": 2}[stype]),
    }
    attrs.update({k: v for k, v in hidden.items() if v is not None})
    for key, value in kwargs.items():
        if not (key.startswith("__") and key.endswith("__")):
            raise ValueError(
                f"Attribute name={key} is not supported. Additional attributes must start and end with "
                "double underscores, e.g, __yourattr__"
            )
        attrs[key] = str(value)
    return Symbol([Value(Node(VARIABLE, (), Attrs(_rename_hidden(attrs)), name))])


var = Variable


def Group(symbols) -> Symbol:
    """One symbol whose outputs are the outputs of `symbols`, in order."""
    symbols = list(symbols)
    if not symbols or not all(isinstance(s, Symbol) for s in symbols):
        raise TypeError("Expected a list of symbols as input")
    return Symbol([v for s in symbols for v in s._outputs])


def load_json(json_str: str) -> Symbol:
    """The symbol described by MXNet JSON text."""
    if not isinstance(json_str, str):
        raise TypeError("json_str needs to be a string")
    return Symbol(graph_from_json(json_str).outputs)


def load(fname: str) -> Symbol:
    """The symbol saved in `fname` (a `-symbol.json` file written by MXNet or Ember)."""
    if not isinstance(fname, str):
        raise TypeError("fname needs to be a string")
    try:
        with open(fname, encoding="utf-8", opener=open_regular_file) as f:  # a FIFO or device is refused
            text = f.read()
    except OSError as err:
        raise ArtifactError(f"cannot read symbol file {fname}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise GraphError(f"symbol file {fname} is not UTF-8 text: {err.reason} at byte {err.start}") from None
    try:
        return load_json(text)
    except GraphError as err:
        raise GraphError(f"{fname}: {err}") from None


def _check_deprecated_input_attrs(params: dict) -> None:
    """`weight_lr_mult=0.1` on an op was MXNet's old way to set a variable attribute; MXNet refuses it."""
    for key, value in params.items():
        for hidden in HIDDEN_KEYS:
            if key != hidden and key.endswith("_" + hidden):
                raise MXNetError(
                    f"setting variable attributes with {key} is deprecated. please instead use\n"
                    f"w = Variable({hidden}={value})\nsym = YourSymbolName({key[: -len(hidden) - 1]}=w)"
                )


def _rename_hidden(attrs: dict) -> dict:
    """MXNet keeps `lr_mult` and friends as `__lr_mult__`."""
    return {(f"__{k}__" if k in HIDDEN_KEYS else k): v for k, v in attrs.items()}


# ---------------------------------------------------------------------------------------------
# Operator functions


def make_op_function(schema: OpSchema, func_name: str):
    """The `mx.sym.<func_name>` function creating nodes of `schema`'s op."""
    hint = func_name.lower()

    def op_function(*args, name=None, attr=None, out=None, **kwargs):
        args, kwargs = _positional_params(schema, args, kwargs)
        symbol_kwargs = {k: v for k, v in kwargs.items() if isinstance(v, Symbol)}
        params = {
            k: format_value(v)
            for k, v in kwargs.items()
            if k not in symbol_kwargs and (v is not None or schema.keeps_none(k))
        }
        _check_deprecated_input_attrs(params)
        if schema.variadic:
            if not args:
                raise MXNetError(f"{func_name} needs at least one input symbol")
            params.setdefault(schema.variadic, str(len(args)))
        node_name = NameManager.current.get(name, hint)
        attrs = _rename_hidden({**params, **AttrScope.current.get(attr)})
        parsed = schema.parse_params(attrs, node_name)
        inputs = _gather_inputs(schema, schema.input_names(parsed), args, symbol_kwargs, node_name, attrs)
        node = Node(schema.name, tuple(inputs), Attrs(attrs), node_name)
        return Symbol([Value(node, i) for i in range(schema.num_visible_outputs(parsed))])

    op_function.__name__ = func_name
    op_function.__qualname__ = func_name
    op_function.__doc__ = _docstring(schema, func_name)
    return op_function


def _positional_params(schema: OpSchema, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """MXNet's generated signatures list the tensor inputs, then the parameters in declared order, so
    `Dropout(x, 0.5)` sets p: positional values after the leading Symbols fill parameters in order."""
    slots = len(schema.declared_inputs())
    count = 0
    while count < len(args) and (isinstance(args[count], Symbol) or (args[count] is None and count < slots)):
        count += 1
    extra, args = args[count:], args[:count]
    while args and args[-1] is None:  # an absent optional input (`FullyConnected(x, w, None)`)
        args = args[:-1]
    missing = [i for i, a in enumerate(args) if a is None]
    if missing:
        raise TypeError(f"{schema.name}: input {missing[0]} is None but a later input is given")
    if schema.variadic or not extra:
        return args, kwargs
    if len(extra) > len(schema.params):
        raise MXNetError(f"{schema.name} got {len(extra)} positional parameters; it has {len(schema.params)}")
    params = dict(kwargs)
    for param, value in zip(schema.params, extra):
        if param.name in params:
            raise TypeError(f"{schema.name} got multiple values for parameter {param.name!r}")
        params[param.name] = value
    return args, params


def _gather_inputs(schema, names, args, symbol_kwargs, node_name, attrs) -> list[Value]:
    if len(args) > len(names):
        raise MXNetError(
            f"{schema.name} takes at most {len(names)} tensor inputs ({', '.join(names)}), got {len(args)}"
        )
    unknown = set(symbol_kwargs) - set(names)
    if unknown:
        raise MXNetError(
            f"{schema.name} has no input named {sorted(unknown)[0]!r}; its inputs are {', '.join(names)}"
        )
    given = dict(zip(names, args))
    given.update(symbol_kwargs)
    inputs = []
    for input_name in names:
        symbol = given.get(input_name)
        if symbol is None:
            inputs.append(_auto_variable(schema, node_name, input_name, attrs))
            continue
        if not isinstance(symbol, Symbol):
            raise TypeError(
                f"input {input_name!r} of {node_name} must be a Symbol, not {type(symbol).__name__}"
            )
        if len(symbol) != 1:
            raise MXNetError(
                f"input {input_name!r} of {node_name} is a group of {len(symbol)} symbols; pass one"
            )
        if input_name in schema.mutable_inputs and not symbol._outputs[0].node.is_variable:
            raise MXNetError(
                f"input {input_name!r} of {node_name} is mutated by {schema.name}; it must be a Variable"
            )
        inputs.append(symbol._outputs[0])
    return inputs


def _auto_variable(schema, node_name: str, input_name: str, attrs: dict) -> Value:
    """The variable MXNet creates for a missing input: the op's attributes, plus a stamped `__init__`."""
    var_attrs = dict(attrs)
    if input_name in schema.input_inits:
        var_attrs["__init__"] = schema.input_inits[input_name]
    return Value(Node(VARIABLE, (), Attrs(var_attrs), f"{node_name}_{input_name}"))


def _docstring(schema: OpSchema, func_name: str) -> str:
    lines = [schema.doc or f"The {schema.name} operator.", ""]
    if not schema.variadic and not callable(schema.inputs):
        lines.append("Inputs: " + ", ".join(schema.inputs))
    elif schema.variadic:
        lines.append("Inputs: any number of symbols (positional)")
    for param in schema.params:
        default = "required" if repr(param.default) == "REQUIRED" else f"default {param.default!r}"
        lines.append(f"  {param.name} ({default}): {param.doc}")
    lines.append("  name: the node's name (automatic when omitted); attr: extra string attributes")
    return "\n".join(lines)
